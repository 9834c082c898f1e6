// Every screen of the console, in the order of the navigation; and what runs beside them
// (the incoming call pop for agents).
import home from "./home.js";

export const SCREENS = [home];

export function startGlobal() {
  const stops = [];
  return () => stops.forEach((stop) => stop());
}
