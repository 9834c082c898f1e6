// Every screen of the console, in the order of the navigation (a module may export one
// screen or a list), and what runs beside them: the incoming call pop for agents.
import { hasRole } from "../core/session.js";
import appeals from "./appeals.js";
import beds from "./beds.js";
import { startCallPop } from "./callpop.js";
import complaints from "./complaints.js";
import dashboard from "./dashboard.js";
import followup from "./followup.js";
import home from "./home.js";
import patients from "./patients.js";
import porter from "./porter.js";
import referrals from "./referrals.js";
import transport from "./transport.js";

export const SCREENS = [
  home,
  patients,
  appeals,
  referrals,
  followup,
  complaints,
  beds,
  transport,
  porter,
  dashboard,
].flat();

export function startGlobal() {
  const stops = [];
  if (hasRole("agent")) stops.push(startCallPop());
  return () => stops.forEach((stop) => stop());
}
