// The console's one way to the API: same-origin fetches that carry the session cookie, the
// session's CSRF token on every write, and the API's `{error, detail}` turned into an Error.

let csrfToken = "";

/** Remembers the CSRF token of the current session (kept in memory only). */
export function setCsrfToken(token) {
  csrfToken = token || "";
}

/** An error the API answered: `status`, and the API's `error` and `detail` texts. */
export class ApiError extends Error {
  constructor(status, body) {
    const detail = (body && (body.detail || body.error)) || `HTTP ${status}`;
    super(detail);
    this.status = status;
    this.error = body && body.error;
    this.detail = detail;
    this.fieldErrors = (body && body.errors) || [];
  }
}

let onUnauthorized = () => {};

/** What to do when the session has ended (a 401 from any call). */
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

/**
 * Calls the API. `body` is sent as JSON unless it is FormData. Resolves to the parsed JSON
 * (or null for an empty answer), or with `withHeaders` to `{body, headers}` for lists that
 * carry their next page in a header; rejects with an ApiError.
 */
export async function api(method, path, body, { quiet401 = false, withHeaders = false } = {}) {
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin", cache: "no-store" };
  if (method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = csrfToken;
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, { error: "Network error", detail: "the server cannot be reached: " + e.message });
  }
  const text = await response.text();
  let parsed = null;
  if (text) {
    try { parsed = JSON.parse(text); } catch { parsed = { detail: text.slice(0, 300) }; }
  }
  if (!response.ok) {
    const error = new ApiError(response.status, parsed);
    if (response.status === 401 && !quiet401) onUnauthorized(error);
    throw error;
  }
  return withHeaders ? { body: parsed, headers: response.headers } : parsed;
}

export const get = (path, opts) => api("GET", path, undefined, opts);
export const post = (path, body) => api("POST", path, body === undefined ? {} : body);
export const put = (path, body) => api("PUT", path, body);
export const patch = (path, body) => api("PATCH", path, body);
export const del = (path) => api("DELETE", path);

/** `path` with the defined, non-empty entries of `params` as its query string. */
export function withQuery(path, params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== "") q.set(k, v);
  }
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}
