// Every call to the CareLoop API: the staff member's token, the access reason, If-Match and
// Idempotency-Key headers, one refresh on an expired token, and RFC 9457 problems turned
// into ApiError (shown by ui.js in the staff member's language).
import { current, save } from "./session.js";

export class ApiError extends Error {
  constructor(status, problem = {}) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code || (status === 0 ? "network_error" : `http_${status}`);
    this.title = problem.title || "";
    this.detail = problem.detail || "";
    this.detailZh = problem.detail_zh || "";
    this.errors = problem.errors || [];
    this.problem = problem;
  }
}

function url(path, query) {
  const target = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value === null || value === undefined || value === "") continue;
    if (Array.isArray(value)) value.forEach((v) => target.searchParams.append(name, v));
    else target.searchParams.set(name, value);
  }
  return target.pathname + target.search;
}

export function authHeaders() {
  const session = current();
  return session ? { authorization: `Bearer ${session.access_token}` } : {};
}

let refreshing = null;

async function refresh() {
  const session = current();
  if (!session?.refresh_token) return false;
  refreshing ??= (async () => {
    try {
      const answer = await fetch("/v1/auth/refresh", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ refresh_token: session.refresh_token }),
      });
      if (!answer.ok) return false;
      const pair = await answer.json();
      save({ ...current(), ...pair });
      return true;
    } catch {
      return false;
    } finally {
      setTimeout(() => (refreshing = null), 0);
    }
  })();
  return refreshing;
}

async function problemOf(answer) {
  const text = await answer.text();
  try {
    return JSON.parse(text);
  } catch {
    return { title: answer.statusText, detail: text.slice(0, 200) };
  }
}

/** The whole answer: {data, etag, status, headers}. */
export async function request(path, options = {}) {
  const { method = "GET", body, query, reason, ifMatch, idempotencyKey, signal } = options;
  const headers = { accept: "application/json", ...authHeaders() };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (reason) headers["x-access-reason*"] = `UTF-8''${encodeURIComponent(reason)}`;
  if (ifMatch) headers["if-match"] = ifMatch;
  if (idempotencyKey) headers["idempotency-key"] = idempotencyKey;
  let answer;
  try {
    answer = await fetch(url(path, query), {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, { code: "network_error", detail: String(error) });
  }
  if (answer.status === 401 && !options.retried && (await refresh())) {
    return request(path, { ...options, retried: true });
  }
  if (answer.status === 401 && current()) {
    save(null); // the login ended (expired, revoked): back to the login screen
  }
  if (!answer.ok) throw new ApiError(answer.status, await problemOf(answer));
  const type = answer.headers.get("content-type") || "";
  const data =
    answer.status === 204 ? null : type.includes("json") ? await answer.json() : await answer.text();
  return { data, etag: answer.headers.get("etag"), status: answer.status, headers: answer.headers };
}

/** The answer's body only. */
export async function api(path, options = {}) {
  return (await request(path, options)).data;
}

export const get = (path, query, options = {}) => api(path, { ...options, query });
export const post = (path, body, options = {}) => api(path, { ...options, method: "POST", body });
export const put = (path, body, options = {}) => api(path, { ...options, method: "PUT", body });

export function newKey() {
  return crypto.randomUUID();
}
