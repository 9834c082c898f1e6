// Cells the complaints board and a complaint's page share: the status, the owner, the
// patient link, and the feedback deadline (due date, working-day rule, days left/overdue).
import { h } from "../../core/dom.js";
import { fmtDateTime, t } from "../../core/i18n.js";
import { link } from "../../core/router.js";
import { me } from "../../core/session.js";
import { badge, countdown } from "../../core/ui.js";

const STATUS_KIND = { received: "warn", in_progress: "warn", resolved: "ok", closed: "ok", withdrawn: "" };
const RULE_DAYS = { on_the_spot: 0, investigation: 5, multi_department: 10 };
const DAY = 24 * 3600 * 1000;

export function statusBadge(status) {
  return badge(t(`complaints.status.${status}`), STATUS_KIND[status] ?? "");
}

export function ownerText(ownerId) {
  if (!ownerId) return "—";
  return ownerId === me()?.id ? `${t("complaints.me")} (${ownerId})` : ownerId;
}

export function patientCell(patientId) {
  if (!patientId) return "—";
  return h("a", { href: link(`/patients/${encodeURIComponent(patientId)}`) }, patientId);
}

/** The due date, the rule (n working days) and a countdown, or an overdue badge. */
export function deadlineCell(c) {
  const days = RULE_DAYS[c.complexity];
  const rule = days === 0 ? t("complaints.deadline_same_day") : t("complaints.deadline_rule", { days });
  const parts = [h("span", {}, fmtDateTime(c.deadline_at)), " ", h("small", { class: "hint" }, `(${rule})`), " "];
  const open = ["received", "in_progress"].includes(c.status);
  if (!open) return h("span", {}, parts, badge(t("complaints.done")));
  const left = new Date(c.deadline_at).getTime() - Date.now();
  if (c.overdue || left < 0) {
    const late = Math.floor(-left / DAY);
    return h(
      "span",
      {},
      parts,
      badge(late >= 1 ? t("complaints.overdue", { days: late }) : t("complaints.overdue_today"), "bad"),
    );
  }
  if (left < DAY) return h("span", {}, parts, countdown(c.deadline_at));
  const kind = left < 2 * DAY ? "warn" : "ok";
  return h("span", {}, parts, badge(t("complaints.days_left", { days: Math.floor(left / DAY) }), kind));
}
