// Small pieces the referral screens share: urgency and status badges, the SLA clock.
import { h } from "../../core/dom.js";
import { has, t } from "../../core/i18n.js";
import { badge, countdown } from "../../core/ui.js";
import "./messages.js";

const URGENCY_KIND = { emergency: "bad", urgent: "warn", routine: "" };
const BAD = new Set(["rejected", "cancelled", "entered_in_error", "booking_failed", "no_show"]);
const GOOD = new Set(["booked", "arrived", "summary_sent", "accepted"]);

/** A translated word for key prefix + value, or the value itself. */
export function word(prefix, value) {
  if (value === null || value === undefined || value === "") return "—";
  return has(`${prefix}.${value}`) ? t(`${prefix}.${value}`) : String(value);
}

export function urgencyBadge(urgency) {
  return badge(word("referrals.urgency", urgency), URGENCY_KIND[urgency] ?? "");
}

export function statusText(status) {
  return word("referrals.st", status);
}

export function businessBadge(value) {
  const kind = BAD.has(value) ? "bad" : GOOD.has(value) ? "ok" : "warn";
  return badge(word("referrals.bs", value), kind);
}

/** The SLA clock of a case still waiting for its receiver, else a dash. */
export function slaClock(item) {
  return item.due_at ? countdown(item.due_at) : h("span", {}, "—");
}

export function bookingText(booking) {
  if (!booking?.starts_at) return null;
  const place = [booking.department_name || booking.department_id, booking.resource_name]
    .filter(Boolean)
    .join(" · ");
  return place;
}
