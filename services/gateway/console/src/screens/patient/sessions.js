// Sessions of a doctor with their remaining numbers per pool (the hotline's and the
// public one), each with a "choose" button: used by booking and by rescheduling.
import { get } from "../../core/api.js";
import { h } from "../../core/dom.js";
import { fmtDate, fmtNumber, t } from "../../core/i18n.js";
import { word } from "./messages.js";
import { table } from "../../core/ui.js";

export function sessionsOf(orgId, resourceId) {
  return get("/v1/appointments/schedules", { org_id: orgId, resource_id: resourceId });
}

export function remaining(session, pool) {
  const value = session.remaining?.[pool];
  return value === undefined ? "—" : fmtNumber(value);
}

export function sessionLabel(session) {
  return `${fmtDate(session.clinic_date)} ${word("hl.session", session.session)} · ${session.resource_name}`;
}

/** A table of sessions; onChoose(session, button) when one is chosen. */
export function sessionTable(sessions, onChoose, { exclude, chooseKey = "hl.booking.choose" } = {}) {
  const rows = sessions.filter((s) => s.id !== exclude);
  return table(
    [
      { label: "hl.booking.date", value: (s) => fmtDate(s.clinic_date) },
      { label: "hl.booking.session", value: (s) => word("hl.session", s.session) },
      { label: "hl.booking.doctor", value: (s) => s.resource_name },
      { label: "hl.booking.fee", value: (s) => fmtNumber((s.fee_cents || 0) / 100, 2) },
      { label: "hl.booking.left_hotline", value: (s) => remaining(s, "hotline") },
      { label: "hl.booking.left_public", value: (s) => remaining(s, "public") },
      {
        label: "common.actions",
        value: (s) => {
          const choose = h(
            "button",
            { type: "button", "aria-label": `${t(chooseKey)} ${sessionLabel(s)}` },
            t(chooseKey),
          );
          choose.addEventListener("click", () => onChoose(s, choose));
          return choose;
        },
      },
    ],
    rows,
    { empty: "hl.booking.no_sessions", caption: "hl.booking.sessions" },
  );
}
