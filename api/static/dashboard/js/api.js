// The API key and the JSON endpoints. The key lives in this tab's sessionStorage and goes
// out only as an Authorization header; it is never put in a URL.
export const API = "/api/v1/orchestrator";
const KEY = "orchestrator.apiKey";

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export const session = {
  get key() { return sessionStorage.getItem(KEY); },
  set key(value) { sessionStorage.setItem(KEY, value); },
  clear() { sessionStorage.removeItem(KEY); },
};

let onUnauthorized = () => {};
export function whenUnauthorized(handler) { onUnauthorized = handler; }

async function call(method, path, body) {
  const headers = { Accept: "application/json", Authorization: `Bearer ${session.key}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(API + path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store",
  });
  const data = await response.json().catch(() => null);
  if (response.ok || (path === "/health" && data)) return data; // an unhealthy /health (503) still reports
  const message = data?.error?.message || `${response.status} ${response.statusText}`;
  if (response.status === 401) onUnauthorized(message);
  throw new ApiError(response.status, message);
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body);

export function query(params) {
  const pairs = Object.entries(params).filter(([, v]) => v !== null && v !== undefined && v !== "");
  return pairs.length ? "?" + new URLSearchParams(pairs).toString() : "";
}
