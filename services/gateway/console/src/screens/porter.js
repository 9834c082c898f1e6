// A porter's next job with its steps.
import { h, replace } from "../core/dom.js";
import { get, post, put } from "../core/api.js";
import { t } from "../core/i18n.js";
import {
  action,
  askReason,
  badge,
  button,
  countdown,
  errorBox,
  field,
  input,
  section,
  table,
  toast,
} from "../core/ui.js";
import { NEXT_STEPS, priorityBadge, route, stateBadge } from "./transport/texts.js";

const R = "/v1/referrals";
const SEQUENCE = ["accept", "picked_up", "arrived", "handed_over", "returned", "completed"];
const REACHED = {
  accept: "en_route",
  picked_up: "with_patient",
  arrived: "arrived",
  handed_over: "handed_over",
  returned: "returned",
  completed: "completed",
};
const ORDER = ["assigned", ...SEQUENCE.map((s) => REACHED[s])];

export default {
  path: "/porter",
  nav: "nav.porter",
  roles: ["nurse"],
  render(root) {
    const box = errorBox();
    const duty = h("div", {});
    const next = h("div", {});
    const rest = h("div", {});
    const zone = input("zone", { maxlength: 40 });

    async function step(btn, job, name) {
      let reason;
      if (name === "cannot_complete") {
        reason = await askReason("porter.cannot_complete.reason");
        if (!reason) return;
      }
      await action(btn, box, async () => {
        await post(`${R}/transports/${job.transport_id}/steps`, reason ? { step: name, reason } : { step: name });
        toast(t("porter.step.done", { step: t(`porter.step.${name}`) }));
        await load();
      });
    }

    function stepButtons(job) {
      const allowed = NEXT_STEPS[job.state] || [];
      const at = ORDER.indexOf(job.state);
      const buttons = SEQUENCE.map((name) => {
        const done = ORDER.indexOf(REACHED[name]) <= at && name !== "returned";
        const btn = button(`porter.step.${name}`, () => step(btn, job, name), allowed[0] === name ? "primary" : "");
        btn.disabled = !allowed.includes(name);
        if (done) btn.classList.add("step-done");
        return btn;
      });
      const fail = button("porter.cannot_complete", () => step(fail, job, "cannot_complete"), "danger");
      return h("div", { class: "steps", role: "group", "aria-label": t("porter.steps") }, buttons, fail);
    }

    function card(job) {
      const row = (key, value) => [h("dt", {}, t(key)), h("dd", {}, value)];
      return h(
        "div",
        { class: "job-card" },
        h(
          "dl",
          {},
          row("transport.id", job.transport_id),
          row("transport.patient", job.patient_id),
          row("transport.route", route(job)),
          row("transport.mode", t(`transport.mode.${job.mode}`)),
          job.needs.length ? row("transport.needs", job.needs.map((n) => t(`transport.need.${n}`)).join("、")) : null,
          row("transport.priority", priorityBadge(job.priority)),
          row("transport.state", stateBadge(job.state)),
          ["assigned", "en_route"].includes(job.state) ? row("transport.pickup_clock", countdown(job.pickup_due_at)) : null,
          job.note ? row("transport.note", job.note) : null,
        ),
        stepButtons(job),
      );
    }

    function dutyPart(onDuty, zoneName) {
      const on = button("porter.go_on", () => setDuty(on, true), onDuty ? "" : "primary");
      const off = button("porter.go_off", () => setDuty(off, false));
      if (zoneName && !zone.value) zone.value = zoneName;
      return h(
        "div",
        { class: "row" },
        h("p", {}, badge(t(onDuty ? "porter.on_duty" : "porter.off_duty"), onDuty ? "ok" : ""), zoneName ? ` ${zoneName}` : ""),
        field("transport.zone", zone),
        on,
        off,
      );
    }

    async function setDuty(btn, onDuty) {
      await action(btn, box, async () => {
        const zoneName = zone.value.trim() || null;
        const after = await put(`${R}/porters/me/duty`, { on_duty: onDuty, zone: onDuty ? zoneName : null });
        toast(onDuty ? t("porter.duty.done.on", { zone: after.duty_zone || "—" }) : t("porter.duty.done.off"));
        await load();
      });
    }

    async function load() {
      await action(null, box, async () => {
        const mine = await get(`${R}/porters/me/next`);
        const first = mine.jobs[0];
        replace(duty, dutyPart(mine.on_duty, first?.from?.zone));
        replace(next, mine.next ? card(mine.next) : h("p", { class: "empty" }, t("porter.none")));
        const others = mine.jobs.filter((j) => j.transport_id !== mine.next?.transport_id);
        replace(
          rest,
          table(
            [
              { label: "transport.id", value: (j) => j.transport_id },
              { label: "transport.route", value: (j) => route(j) },
              { label: "transport.mode", value: (j) => t(`transport.mode.${j.mode}`) },
              { label: "transport.priority", value: (j) => priorityBadge(j.priority) },
              { label: "transport.state", value: (j) => stateBadge(j.state) },
              { label: "transport.pickup_clock", value: (j) => (["assigned", "en_route"].includes(j.state) ? countdown(j.pickup_due_at) : "—") },
            ],
            others,
            { caption: "porter.jobs" },
          ),
        );
      });
    }

    root.append(
      h("h1", {}, t("nav.porter")),
      box,
      section("porter.duty", duty),
      section("porter.next", next),
      section("porter.jobs", rest),
    );
    load();
    const timer = setInterval(load, 20000);
    return () => clearInterval(timer);
  },
};
