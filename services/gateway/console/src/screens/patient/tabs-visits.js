// Patient page tabs: appointments (cancel, reschedule), referrals, and bans with appeals.
import { get, newKey, post } from "../../core/api.js";
import { h, replace } from "../../core/dom.js";
import { fmtDate, fmtDateTime, t } from "../../core/i18n.js";
import { word } from "./messages.js";
import { hasRole, orgId } from "../../core/session.js";
import { action, askReason, badge, button, errorBox, section, table, toast } from "../../core/ui.js";
import { sessionLabel, sessionTable, sessionsOf } from "./sessions.js";

const enc = encodeURIComponent;
const ACTIVE = new Set(["booked", "checked_in"]);

export function statusBadge(status, prefix) {
  const kind = { booked: "ok", checked_in: "ok", cancelled: "", no_show: "bad", failed: "bad" };
  return badge(word(prefix, status), kind[status] ?? "");
}

/** Load into el: errors show in an error box there, with what could be shown empty. */
export async function load(el, fn) {
  const box = errorBox();
  el.append(box);
  try {
    return await fn();
  } catch (error) {
    box.show(error);
    return null;
  }
}

function appointmentRows(items, ctx, reload) {
  const canChange = hasRole("agent", "nurse");
  const act = (a) => {
    if (!canChange || !ACTIVE.has(a.status)) return "—";
    const box = errorBox();
    const picker = h("div", { class: "reschedule-picker" });
    const cancel = button("hl.appointment.cancel", async () => {
      const why = await askReason("hl.appointment.cancel_title");
      if (!why) return;
      await action(cancel, box, async () => {
        await post(`/v1/appointments/appointments/${enc(a.id)}/cancel`, { reason: why }, { reason: ctx.reason });
        toast(t("hl.appointment.cancelled_toast"));
        reload();
      });
    }, "danger");
    const move = button("hl.appointment.reschedule", () =>
      action(move, box, async () => {
        const sessions = await sessionsOf(a.org_id, a.resource_id);
        const key = newKey(); // one attempt: a retry of the same move reuses it
        replace(
          picker,
          sessionTable(
            sessions,
            async (session, chosen) => {
              const why = await askReason("hl.appointment.reschedule_title");
              if (!why) return;
              await action(chosen, box, async () => {
                await post(
                  `/v1/appointments/appointments/${enc(a.id)}/reschedule`,
                  { schedule_id: session.id },
                  { reason: why, idempotencyKey: `${key}-${session.id}` },
                );
                toast(t("hl.appointment.rescheduled_toast", { to: sessionLabel(session) }));
                reload();
              });
            },
            { exclude: a.schedule_id, chooseKey: "hl.appointment.move_here" },
          ),
        );
      }),
    );
    return h("div", {}, h("div", { class: "row" }, cancel, move), box, picker);
  };
  return [
    { label: "hl.appointment.when", value: (a) => `${fmtDate(a.clinic_date)} ${word("hl.session", a.session)}` },
    { label: "hl.appointment.doctor", value: (a) => `${a.department_name} · ${a.resource_name}` },
    { label: "hl.appointment.number", value: (a) => String(a.number) },
    { label: "hl.appointment.channel", value: (a) => word("hl.channel", a.channel) },
    { label: "common.status", value: (a) => statusBadge(a.status, "hl.appointment.status") },
    { label: "common.actions", value: act },
  ];
}

export async function appointmentsTab(el, ctx) {
  const reload = async () => {
    const fresh = h("div", {});
    await appointmentsTab(fresh, ctx);
    el.replaceWith(fresh);
    el = fresh;
  };
  const items = await load(el, () =>
    get(`/v1/appointments/staff/patients/${enc(ctx.id)}/appointments`, {}, { reason: ctx.reason }),
  );
  if (!items) return;
  const now = Date.now();
  const upcoming = items.filter((a) => ACTIVE.has(a.status) && new Date(a.ends_at).getTime() >= now);
  const past = items.filter((a) => !upcoming.includes(a));
  el.append(
    section("hl.appointment.upcoming", table(appointmentRows(upcoming, ctx, reload), upcoming)),
    section("hl.appointment.past", table(appointmentRows(past, ctx, reload), past)),
  );
}

export async function referralsTab(el, ctx) {
  const answer = await load(el, () =>
    get(`/v1/referrals/patients/${enc(ctx.id)}/referrals`, {}, { reason: ctx.reason }),
  );
  const items = Array.isArray(answer) ? answer : (answer?.items ?? []);
  el.append(
    section(
      "hl.patient.tab.referrals",
      table(
        [
          { label: "hl.referral.created", value: (r) => fmtDateTime(r.created_at) },
          { label: "hl.referral.direction", value: (r) => word("hl.referral.direction", r.direction) },
          { label: "hl.referral.urgency", value: (r) => word("hl.referral.urgency", r.urgency) },
          { label: "hl.referral.route", value: (r) => `${r.referring_org_id} → ${r.receiving_org_id}` },
          { label: "common.status", value: (r) => badge(word("hl.referral.status", r.business_status || r.status)) },
        ],
        items,
      ),
    ),
  );
}

function offences(status) {
  const line = (key, o) =>
    o ? t("hl.ban.offence", { what: t(key), count: o.count, threshold: o.threshold, days: o.window_days }) : "—";
  return h(
    "ul",
    {},
    h("li", {}, line("hl.ban.no_shows", status.no_shows)),
    h("li", {}, line("hl.ban.late_cancels", status.late_cancels)),
  );
}

export async function bansTab(el, ctx) {
  const status = await load(el, () =>
    get(
      `/v1/appointments/patients/${enc(ctx.id)}/booking-status`,
      { org_id: orgId() },
      { reason: ctx.reason },
    ),
  );
  if (!status) return;
  const box = errorBox();
  const again = async () => {
    const fresh = h("div", {});
    await bansTab(fresh, ctx);
    el.replaceWith(fresh);
  };
  const state = status.banned
    ? badge(t("hl.ban.banned_until", { until: fmtDateTime(status.banned_until) }), "bad")
    : badge(t("hl.ban.none"), "ok");
  const parts = [h("p", {}, state), offences(status)];
  const appeal = status.appeal;
  if (appeal) {
    parts.push(
      h("h3", {}, t("hl.ban.appeal")),
      h("p", {}, `${fmtDateTime(appeal.at)} · ${appeal.reason || ""} · `, badge(word("hl.appeal.status", appeal.status))),
    );
    if (appeal.status === "pending" && hasRole("agent", "admin")) {
      parts.push(h("div", { class: "row" }, ...decisionButtons(appeal, box, again)));
    }
  }
  if (status.banned && hasRole("admin")) {
    const lift = button("hl.ban.override", async () => {
      const why = await askReason("hl.ban.override_title");
      if (!why) return;
      await action(lift, box, async () => {
        await post(`/v1/appointments/patients/${enc(ctx.id)}/ban-override`, {
          reason: why,
          org_id: status.org_id || orgId(),
        });
        toast(t("hl.ban.overridden"));
        await again();
      });
    }, "danger");
    parts.push(h("div", { class: "row" }, lift));
  }
  el.append(section("hl.patient.tab.bans", ...parts, box));
}

/** Approve / reject buttons for a pending appeal (the note is asked for). */
export function decisionButtons(appeal, box, done) {
  const decide = (approve) => {
    const key = approve ? "hl.appeal.approve" : "hl.appeal.reject";
    const b = button(key, async () => {
      const note = await askReason(approve ? "hl.appeal.approve_title" : "hl.appeal.reject_title");
      if (!note) return;
      await action(b, box, async () => {
        await post(`/v1/appointments/appeals/${enc(appeal.id)}/decision`, { approve, note });
        toast(t(approve ? "hl.appeal.approved" : "hl.appeal.rejected"));
        await done();
      });
    }, approve ? "primary" : "danger");
    return b;
  };
  return [decide(true), decide(false)];
}
