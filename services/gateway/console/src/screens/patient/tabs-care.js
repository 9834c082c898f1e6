// Patient page tabs: follow-up plans (tasks, answers), messages (with resend), complaints.
import { get, post } from "../../core/api.js";
import { h, replace } from "../../core/dom.js";
import { fmtDate, fmtDateTime, t } from "../../core/i18n.js";
import { word } from "./messages.js";
import { load } from "./tabs-visits.js";
import { hasRole } from "../../core/session.js";
import { action, badge, button, errorBox, section, table, toast } from "../../core/ui.js";

const enc = encodeURIComponent;

function answersOf(response) {
  const answers = response.answers || {};
  const entries = Object.entries(answers);
  if (!entries.length) return h("p", { class: "empty" }, t("hl.plan.no_answers"));
  return h(
    "dl",
    { class: "answers" },
    entries.map(([question, value]) =>
      h("div", {}, h("dt", {}, question), h("dd", {}, typeof value === "object" ? JSON.stringify(value) : String(value))),
    ),
    response.score !== undefined && response.score !== null
      ? h("div", {}, h("dt", {}, t("hl.plan.score")), h("dd", {}, String(response.score)))
      : null,
  );
}

function taskTable(tasks, ctx) {
  return table(
    [
      { label: "hl.plan.task", value: (task) => task.title || task.kind },
      { label: "hl.plan.due", value: (task) => fmtDateTime(task.due_at) },
      { label: "common.status", value: (task) => badge(word("hl.task.status", task.status)) },
      {
        label: "hl.plan.answers",
        value: (task) => {
          if (!task.response_id) return "—";
          const spot = h("div", {});
          const box = errorBox();
          const show = button("hl.plan.show_answers", () =>
            action(show, box, async () => {
              const response = await get(
                `/v1/followup/questionnaire-responses/${enc(task.response_id)}`,
                {},
                { reason: ctx.reason },
              );
              replace(spot, answersOf(response));
            }),
          );
          return h("div", {}, show, box, spot);
        },
      },
    ],
    tasks,
    { empty: "hl.plan.no_tasks" },
  );
}

export async function plansTab(el, ctx) {
  const answer = await load(el, () =>
    get(`/v1/followup/patients/${enc(ctx.id)}/plans`, {}, { reason: ctx.reason }),
  );
  const plans = answer?.items ?? [];
  if (!plans.length) {
    el.append(section("hl.patient.tab.plans", h("p", { class: "empty" }, t("common.empty"))));
    return;
  }
  for (const plan of plans) {
    const tasks = h("div", {});
    el.append(
      section(
        "hl.patient.tab.plans",
        h(
          "p",
          {},
          `${plan.template_name || plan.template || ""} · ${t("hl.plan.started")} ${fmtDate(plan.started_at)} · `,
          badge(word("hl.plan.status", plan.status)),
          plan.risk_level ? [" ", badge(word("hl.risk", plan.risk_level), plan.risk_level === "high" ? "bad" : "warn")] : null,
        ),
        tasks,
      ),
    );
    const full = await load(tasks, () =>
      get(`/v1/followup/plans/${enc(plan.plan_id)}`, {}, { reason: ctx.reason }),
    );
    if (full) tasks.append(taskTable(full.tasks || [], ctx));
  }
}

export async function messagesTab(el, ctx) {
  const items = await load(el, () =>
    get(`/v1/notifications/patients/${enc(ctx.id)}/messages`, {}, { reason: ctx.reason }),
  );
  if (!items) return;
  const mayResend = hasRole("admin", "agent"); // admins, and agents for the caller (a reason)
  const kinds = { sent: "ok", delivered: "ok", failed: "bad", queued: "warn", scheduled: "warn" };
  el.append(
    section(
      "hl.patient.tab.messages",
      table(
        [
          { label: "hl.message.when", value: (m) => fmtDateTime(m.created_at) },
          { label: "hl.message.kind", value: (m) => word("hl.kind", m.kind) },
          { label: "hl.message.channel", value: (m) => word("hl.message.channel", m.channel) },
          { label: "hl.message.address", value: (m) => m.address_masked || "—" },
          {
            label: "common.status",
            value: (m) => h("span", {}, badge(word("hl.message.status", m.status), kinds[m.status] ?? ""), m.last_error ? ` ${m.last_error}` : ""),
          },
          {
            label: "common.actions",
            value: (m) => {
              if (m.status !== "failed" || !mayResend) return "—";
              const box = errorBox();
              const resend = button("hl.message.resend", () =>
                action(resend, box, async () => {
                  await post(`/v1/notifications/admin/messages/${enc(m.id)}/retry`, undefined, { reason: ctx.reason });
                  resend.replaceWith(badge(t("hl.message.status.queued"), "warn"));
                  toast(t("hl.message.resent"));
                }),
              );
              return h("div", {}, resend, box);
            },
          },
        ],
        items,
      ),
    ),
  );
}

export async function complaintsTab(el, ctx) {
  const answer = await load(el, () =>
    get("/v1/followup/complaints", { patient_id: ctx.id }, { reason: ctx.reason }),
  );
  const items = (answer?.items ?? []).filter((c) => c.patient_id === ctx.id);
  el.append(
    section(
      "hl.patient.tab.complaints",
      table(
        [
          { label: "hl.complaint.received", value: (c) => fmtDateTime(c.received_at) },
          { label: "hl.complaint.category", value: (c) => c.category },
          { label: "hl.complaint.description", value: (c) => c.description },
          { label: "common.status", value: (c) => badge(word("hl.complaint.status", c.status), c.overdue ? "bad" : "") },
          { label: "hl.complaint.deadline", value: (c) => fmtDateTime(c.deadline_at) },
        ],
        items,
      ),
    ),
  );
}
