// Transport dispatch board: open requests with SLA clocks, the porters (duty, load).
import { h, replace } from "../core/dom.js";
import { get, post } from "../core/api.js";
import { t } from "../core/i18n.js";
import { orgId } from "../core/session.js";
import { action, askReason, button, countdown, errorBox, section, table, toast } from "../core/ui.js";
import { LIVE, priorityBadge, route, stateBadge } from "./transport/texts.js";
import { requestForm } from "./transport/request.js";
import { assignForm, loadPorters, portersTable } from "./transport/porters.js";

const R = "/v1/referrals/transports";
const RESPONDED = ["requested", "assigned"]; // the response clock runs until accepted
const PICKED = ["requested", "assigned", "en_route"]; // the pickup clock until picked up

function clock(item, states, due) {
  return states.includes(item.state) && item[due] ? countdown(item[due]) : "—";
}

export default {
  path: "/transport",
  nav: "nav.transport",
  roles: ["coordinator", "admin"],
  render(root) {
    const org = orgId();
    const box = errorBox();
    const board = h("div", { class: "transport-board" });
    const formSlot = h("div", {});
    const load = h("div", {});
    let porters = [];

    async function cancel(btn, item) {
      const why = await askReason("transport.cancel.reason");
      if (!why) return;
      await action(btn, box, async () => {
        await post(`${R}/${item.transport_id}/cancel`, { reason: why });
        toast(t("transport.cancel.done"));
        await refresh();
      });
    }

    function actions(item) {
      const movable = ["requested", "assigned", "en_route"].includes(item.state);
      if (!movable) return "—";
      const assign = button(item.porter_id ? "transport.reassign" : "transport.assign", () => {
        replace(formSlot, assignForm(item, porters, () => (replace(formSlot), refresh())));
        formSlot.querySelector("select, input")?.focus();
      });
      const stop = button("transport.cancel", () => cancel(stop, item), "danger");
      return h("div", { class: "steps" }, assign, stop);
    }

    async function refresh() {
      await action(null, box, async () => {
        const [all, roster] = await Promise.all([get(R, { org_id: org }), loadPorters(org)]);
        const items = all.items.filter((i) => LIVE.includes(i.state));
        porters = roster;
        const names = new Map(porters.map((p) => [p.porter_id, p.name]));
        replace(
          board,
          table(
            [
              { label: "transport.id", value: (i) => i.transport_id },
              { label: "transport.patient", value: (i) => i.patient_id },
              { label: "transport.route", value: (i) => route(i) },
              { label: "transport.mode", value: (i) => t(`transport.mode.${i.mode}`) },
              { label: "transport.priority", value: (i) => priorityBadge(i.priority) },
              { label: "transport.state", value: (i) => stateBadge(i.state) },
              {
                label: "transport.porter",
                value: (i) =>
                  i.porter_id ? `${names.get(i.porter_id) || ""} ${i.porter_id}`.trim() : t("transport.unassigned"),
              },
              { label: "transport.response_clock", value: (i) => clock(i, RESPONDED, "response_due_at") },
              { label: "transport.pickup_clock", value: (i) => clock(i, PICKED, "pickup_due_at") },
              { label: "common.actions", value: actions },
            ],
            items,
            { caption: "transport.open" },
          ),
        );
        replace(load, portersTable(porters));
      });
    }

    const again = button("common.refresh", () => action(again, box, () => refresh()));
    root.append(
      h("h1", {}, t("nav.transport")),
      section("transport.open", h("div", { class: "actions" }, again), box, board, formSlot),
      section("transport.porters", h("p", { class: "hint" }, t("transport.porters.note")), load),
      section("transport.request", requestForm(() => refresh())),
    );
    refresh();
    const timer = setInterval(() => {
      if (!formSlot.firstChild) refresh();
    }, 30000);
    return () => clearInterval(timer);
  },
};
