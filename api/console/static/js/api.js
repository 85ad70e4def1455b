// The console speaks the same JSON API as every other client, with a personal API key kept in
// this tab's sessionStorage only (never in a URL, never in localStorage).

const KEY = "flagship.personal_api_key";

export class ApiError extends Error {
  constructor(status, body) {
    const detail = (body && (body.detail || body.message || body.error)) || `Request failed (${status})`;
    super(detail);
    this.status = status;
    this.body = body || {};
    this.code = this.body.code || null;
    this.attr = this.body.attr || null;
  }
}

export const session = {
  key: () => sessionStorage.getItem(KEY),
  set: (value) => sessionStorage.setItem(KEY, value),
  clear: () => sessionStorage.removeItem(KEY),
  project: null,
  user: null,
  config: {},
  // Bumped on every navigation: a view whose data arrives after the next navigation draws nothing.
  view: 0,
};

let onUnauthorized = () => {};
export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

// A throttled request (429, e.g. the per-process limit on result queries) is sent again after the
// server's Retry-After, a few times, as any well-behaved client would.
const THROTTLED_ATTEMPTS = 8;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function send(path, init) {
  for (let attempt = 1; ; attempt++) {
    let response;
    try {
      response = await fetch(path, init);
    } catch (err) {
      throw new ApiError(0, { detail: "Flagship did not answer. Is it running?" });
    }
    if (response.status !== 429 || attempt >= THROTTLED_ATTEMPTS) return response;
    const wait = Number(response.headers.get("Retry-After")) || 1;
    await sleep(Math.min(wait, 10) * 1000);
  }
}

export async function request(method, path, body, { key = session.key(), quiet401 = false } = {}) {
  const headers = { Accept: "application/json" };
  if (key) headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await send(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { detail: text.slice(0, 200) };
  }
  if (!response.ok) {
    const error = new ApiError(response.status, data);
    if (response.status === 401 && !quiet401) onUnauthorized(error);
    throw error;
  }
  return data;
}

export const get = (path, options) => request("GET", path, undefined, options);
export const post = (path, body, options) => request("POST", path, body === undefined ? {} : body, options);

export function projectPath(path) {
  return `/api/projects/${session.project.id}/${path}`;
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== null && v !== undefined && v !== "") search.set(k, v);
  const text = search.toString();
  return text ? `?${text}` : "";
}
