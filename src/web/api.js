// What every screen of the dashboard and console shares: the API calls with the session's
// tokens, and building elements. Plain JavaScript over the public gocua API.

export const API = "/api/v1";
export const $ = (id) => document.getElementById(id);

export const num = (n) => (n === null || n === undefined ? "—" : Number(n).toLocaleString("vi-VN"));
export const pct = (n) => (n === null || n === undefined ? "—" : `${Number(n).toLocaleString("vi-VN")}%`);
// A value's label inside a sentence (labels start with a capital).
export const lower = (text) => text.charAt(0).toLowerCase() + text.slice(1);
/// A moment in Vietnam time, to the minute; "—" for none.
export const when = (iso) => (iso
  ? new Date(iso).toLocaleString("vi-VN", { timeZone: "Asia/Ho_Chi_Minh", hour: "2-digit", minute: "2-digit", day: "2-digit", month: "2-digit", year: "numeric" })
  : "—");

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v === true) e.setAttribute(k, "");
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

export const tokens = {
  get access() { return sessionStorage.getItem("access"); },
  get refresh() { return sessionStorage.getItem("refresh"); },
  set(t) { sessionStorage.setItem("access", t.access_token); sessionStorage.setItem("refresh", t.refresh_token); },
  clear() { sessionStorage.removeItem("access"); sessionStorage.removeItem("refresh"); },
};

/// What to do when the session is gone (the login screen); set by the page.
export const session = { ended: () => {} };

async function refresh() {
  if (!tokens.refresh) return false;
  const r = await fetch(`${API}/auth/refresh`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ refresh_token: tokens.refresh }),
  });
  if (!r.ok) return false;
  tokens.set(await r.json());
  return true;
}

/// A refused call: the answer's status and its problem+json body.
export class Refused extends Error {
  constructor(status, problem) {
    super(`Lỗi ${status}: ${problem?.detail || "không rõ"}`);
    this.status = status;
    this.problem = problem || {};
  }
}

/// Makes a call with the access token, refreshing it once when it has expired; answers the
/// response, or throws `Refused`.
async function fetchWithToken(path, init = {}) {
  const go = () => fetch(`${API}${path}`, { ...init, headers: { ...(init.headers || {}), authorization: `Bearer ${tokens.access}` } });
  let r = await go();
  if (r.status === 401 && (await refresh())) r = await go();
  if (r.status === 401) { session.ended(); throw new Refused(401, { detail: "Phiên đăng nhập đã hết, hãy đăng nhập lại." }); }
  if (!r.ok) {
    let problem = { detail: r.statusText };
    try { problem = await r.json(); } catch (_) { /* not JSON */ }
    throw new Refused(r.status, problem);
  }
  return r;
}

/// GETs a path: its JSON, or with `raw` the response (for files).
export async function call(path, raw = false) {
  const r = await fetchWithToken(path);
  return raw ? r : r.json();
}

/// Sends a JSON body; answers the JSON reply (none for 204).
export async function send(method, path, body, headers = {}) {
  const r = await fetchWithToken(path, {
    method,
    headers: { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return r.status === 204 ? null : r.json();
}

/// Sends a file (CSV or XLSX) as the body; answers the JSON reply.
export async function upload(path, file) {
  const xlsx = /\.xlsx$/i.test(file.name || "");
  const type = xlsx ? "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" : "text/csv";
  const r = await fetchWithToken(path, { method: "POST", headers: { "content-type": type }, body: file });
  return r.json();
}

/// Fetches an export and hands it to the browser as a file.
export async function download(path) {
  const r = await call(path, true);
  const name = (r.headers.get("content-disposition") || "").match(/filename="([^"]+)"/);
  const url = URL.createObjectURL(await r.blob());
  const a = el("a", { href: url, download: name ? name[1] : "gocua" });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/// A table: headers, and a row of cells per item; each cell is text or an element.
export function table(headers, rows, attrs = {}) {
  return el("table", attrs,
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.map((cells) => (cells instanceof Node ? cells
      : el("tr", {}, cells.map((c, i) => el("td", { "data-label": headers[i] }, c)))))));
}
