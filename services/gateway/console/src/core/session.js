// The staff member's login: tokens in this tab's sessionStorage (gone with the tab), who
// they are (GET /v1/auth/me), and a clean logout that ends the login on the server too.
const KEY = "careloop.console.session";
const listeners = new Set();

export function current() {
  try {
    return JSON.parse(sessionStorage.getItem(KEY) || "null");
  } catch {
    return null;
  }
}

export function save(session) {
  if (session) sessionStorage.setItem(KEY, JSON.stringify(session));
  else sessionStorage.removeItem(KEY);
  for (const listener of listeners) listener(session);
}

export function onSessionChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

export function me() {
  return current()?.me ?? null;
}

export function hasRole(...roles) {
  const mine = me()?.roles ?? [];
  return roles.some((role) => mine.includes(role));
}

export function orgId() {
  return me()?.org_id ?? null;
}
