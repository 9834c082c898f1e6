// The access reason a staff member gave for a patient (search, call pop), kept in memory
// for this tab only, so the patient page and booking do not ask again.
import { askReason } from "../../core/ui.js";

const reasons = new Map();

export function rememberReason(patientId, reason) {
  if (patientId && reason) reasons.set(patientId, reason);
}

export function knownReason(patientId) {
  return reasons.get(patientId) || "";
}

/** The reason for this patient: the remembered one, or asked for (null if refused). */
export async function reasonFor(patientId) {
  const known = knownReason(patientId);
  if (known) return known;
  const asked = await askReason("hl.patient.reason_title");
  rememberReason(patientId, asked);
  return asked;
}
