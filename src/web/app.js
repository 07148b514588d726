// The supervisors' dashboard and console: plain JavaScript over the gocua API, no outside
// resources. The progress view is here; the console's screens are in console.js.
import { fieldLabel as F, label } from "/field/vocabulary.js";
import { $, API, call, download as downloadFile, el, lower, num, pct, send, session, tokens } from "/assets/api.js";
import * as console_ from "/assets/console.js";

// `view` counts views: an answer that arrives after the user moved on is dropped.
const state = { campaign: null, trail: [], role: null, view: 0, me: null };

// A household or person whose personal data was removed (retention, erasure) has no name.
const ANONYMIZED = "(đã ẩn danh)";

function showLogin() {
  tokens.clear();
  $("dashboard").hidden = true;
  $("new-password").hidden = true;
  $("who").hidden = true;
  $("login").hidden = false;
}
session.ended = showLogin;

// The one-time password the user just logged in with, kept in memory only until they set
// their own.
let oneTime = null;

/// A user with a one-time password sets their own before anything else.
function askNewPassword() {
  $("login").hidden = true;
  $("dashboard").hidden = true;
  $("new-password").hidden = false;
  $("current-label").hidden = oneTime !== null;
  $("current-password").required = oneTime === null;
}

async function setPassword(ev) {
  ev.preventDefault();
  const error = $("new-password-error");
  error.textContent = "";
  if ($("new-password-1").value !== $("new-password-2").value) {
    error.textContent = "Hai lần nhập mật khẩu mới không giống nhau.";
    return;
  }
  try {
    await send("POST", "/auth/password", { current: oneTime ?? $("current-password").value, new: $("new-password-1").value });
    oneTime = null;
    for (const id of ["current-password", "new-password-1", "new-password-2"]) $(id).value = "";
    $("new-password").hidden = true;
    start();
  } catch (e) {
    const code = e.problem?.errors?.[0]?.code;
    error.textContent = code === "wrong_password" ? "Mật khẩu dùng một lần không đúng."
      : code === "unchanged" ? "Hãy chọn mật khẩu khác mật khẩu dùng một lần."
        : code === "too_short" ? "Mật khẩu cần từ 8 đến 256 ký tự." : e.message;
  }
}

async function login(ev) {
  ev.preventDefault();
  $("login-error").textContent = "";
  const r = await fetch(`${API}/auth/login`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: $("username").value.trim(), password: $("password").value }),
  });
  if (!r.ok) {
    $("login-error").textContent = r.status === 401 ? "Sai tên đăng nhập hoặc mật khẩu." : `Lỗi ${r.status}`;
    return;
  }
  const t = await r.json();
  tokens.set(t);
  oneTime = t.must_change_password ? $("password").value : null;
  $("password").value = "";
  if (t.must_change_password) askNewPassword();
  else start();
}

async function start() {
  $("login").hidden = true;
  try {
    let me;
    try {
      me = await call("/me");
    } catch (e) {
      if (e.problem?.code === "password_change_required") return askNewPassword();
      throw e;
    }
    state.me = me;
    state.role = me.role;
    $("who-name").textContent = `${me.username} (${me.role === "admin" ? "quản trị" : me.role === "supervisor" ? "giám sát" : "cán bộ"})`;
    $("who").hidden = false;
    document.querySelectorAll(".supervisor").forEach((b) => { b.hidden = me.role === "canvasser"; });
    await loadCampaigns();
    $("dashboard").hidden = false;
    $("new-password").hidden = true;
    if (!state.campaign) {
      $("error").textContent = me.role === "admin" ? "Chưa có chiến dịch nào: tạo chiến dịch ở mục Chiến dịch & chỉ tiêu." : "Chưa có chiến dịch nào.";
    }
    if (me.role !== "canvasser") pending();
    const top = (await call("/areas?per_page=500")).items;
    if (top.length === 1) {
      state.trail = [top[0]];
      show();
    } else {
      choose(top);
    }
  } catch (e) {
    $("error").textContent = e.message;
  }
}

async function loadCampaigns() {
  const list = (await call("/campaigns")).items;
  const select = $("campaign");
  select.replaceChildren(...list.map((c) => el("option", { value: c.id }, c.name)));
  if (!list.some((c) => c.id === state.campaign)) state.campaign = list.length ? list[0].id : null;
  select.value = state.campaign ?? "";
}

// ---- the console's screens (console.js), over the area and campaign chosen ----

function openScreen(name) {
  state.screen = name;
  document.querySelectorAll("#screens button").forEach((b) => b.setAttribute("aria-selected", String(b.dataset.screen === name)));
  const progress = name === "progress";
  $("console").hidden = progress;
  $("pending").hidden = !progress || $("pending-list").children.length === 0;
  if (progress) {
    if (state.trail.length) show(); else $("choose").hidden = false;
    return;
  }
  $("report").hidden = true;
  $("choose").hidden = true;
  crumbs();
  if (!state.trail.length) {
    $("console").replaceChildren(el("p", { class: "note" }, "Chọn một địa bàn ở mục Tiến độ trước."));
    return;
  }
  console_.open(name, {
    area: current(), campaign: state.campaign, role: state.role, me: state.me,
    campaignsChanged: async () => { await loadCampaigns(); $("error").textContent = ""; return state.campaign; },
    targetsChanged: () => {},
  });
}

function choose(areas) {
  $("report").hidden = true;
  $("choose").hidden = false;
  $("crumbs").replaceChildren();
  $("choose-list").replaceChildren(...areas.map((a) =>
    el("li", {}, el("a", { href: "#", onclick: (e) => { e.preventDefault(); state.trail = [a]; show(); } },
      `${label("area_level", a.level)}: ${a.name}`))));
}

const current = () => state.trail[state.trail.length - 1];
const query = (extra = "") => `campaign=${state.campaign}&area=${current().id}${extra}`;

function crumbs() {
  const parts = [];
  state.trail.forEach((a, i) => {
    if (i) parts.push(el("span", { class: "sep" }, "›"));
    parts.push(i === state.trail.length - 1
      ? el("b", {}, a.name)
      : el("a", { onclick: () => { state.trail = state.trail.slice(0, i + 1); show(); } }, a.name));
  });
  $("crumbs").replaceChildren(...parts);
}

function bar(row) {
  const p = row.target_progress;
  const width = p === null ? 0 : Math.min(100, p);
  const cls = p === null ? "fill" : p >= 100 ? "fill done" : p < 50 ? "fill low" : "fill";
  const text = row.target
    ? `${pct(row.rate)} · đạt ${pct(p)} chỉ tiêu${row.target_inherited ? " (theo cấp trên)" : ""}`
    : `${pct(row.rate)} · chưa có chỉ tiêu`;
  return el("div", { class: "bar", title: text, "data-progress": p ?? "" },
    el("div", { class: cls, style: `width:${width}%` }), el("span", { class: "label" }, text));
}

function figure(value, text) {
  return el("div", { class: "figure" }, el("b", {}, value), el("span", {}, text));
}

async function show() {
  if (state.screen && state.screen !== "progress") return openScreen(state.screen);
  const view = ++state.view;
  $("choose").hidden = true;
  crumbs();
  if (!state.campaign) return;
  $("error").textContent = "";
  try {
    const [p, conflicts] = await Promise.all([
      call(`/reports/progress?${query()}`),
      state.role === "canvasser" ? null : call(`/conflicts?status=open&per_page=1&area=${current().id}`),
    ]);
    if (view !== state.view) return;
    const a = p.area;
    // The trend's rate is over registered persons: only such a target can be drawn on it.
    state.goal = a.target && a.target.kind === "rate_registered" ? a.target.value : null;
    $("summary").replaceChildren(
      el("h2", {}, `${a.name} — ${p.subject.campaign_name}`),
      bar(a),
      el("div", { class: "figures" },
        figure(pct(a.rate), `đã cài trên ${lower(label("denominator", a.denominator))}`),
        figure(a.target ? (a.target.kind === "count" ? num(a.target.value) : pct(a.target.value)) : "—", "chỉ tiêu"),
        figure(num(a.remaining), "lượt cài còn thiếu"),
        figure(`${num(a.installed)} / ${num(a.denominator_value)}`, "người đã cài"),
        figure(`${num(a.households_visited)} / ${num(a.households)}`, "hộ đã thăm"),
        figure(num(a.priority_pending), "đối tượng ưu tiên chưa cài"),
        conflicts ? figure(num(conflicts.total), "xung đột chưa xử lý") : null));
    $("children-title").textContent = p.children.length
      ? `Các đơn vị trực thuộc (${p.children.length})` : "Không có đơn vị trực thuộc";
    const waiting = p.not_yet_assigned;
    $("areas").replaceChildren(...p.children.map((c) => {
      const drill = c.level !== "village";
      return el("li", {
        class: drill ? "area-row drill" : "area-row", "data-id": c.area_id, "data-level": c.level,
        onclick: drill ? () => { state.trail.push({ id: c.area_id, name: c.name, level: c.level }); show(); } : null,
      },
      el("span", { class: "rank", title: "Xếp hạng" }, c.rank ?? "—"),
      el("span", { class: "name" }, c.name, el("small", {}, `${num(c.installed)} / ${num(c.denominator_value)} ${lower(label("denominator", c.denominator))}`)),
      bar(c),
      el("span", { class: c.priority_pending ? "priority" : "priority none" },
        c.priority_pending ? `${num(c.priority_pending)} ưu tiên chưa cài` : "Ưu tiên: đủ"));
    }), ...(waiting ? [el("li", { class: "area-row unassigned", id: "unassigned" },
      el("span", { class: "rank" }, "—"),
      el("span", { class: "name" }, "Chưa xếp", el("small", {}, `${num(waiting.villages)} thôn chờ xếp về xã mới`)),
      el("span", {}, `${num(waiting.households)} hộ, ${num(waiting.installed)} / ${num(waiting.persons)} người đã cài (không tính vào các dòng trên)`),
      el("span", { class: waiting.priority_total - waiting.priority_installed ? "priority" : "priority none" },
        `${num(waiting.priority_total - waiting.priority_installed)} ưu tiên chưa cài`))] : []));
    $("report").hidden = false;
    trend(view);
    openList(state.list || "priority-pending", view);
  } catch (e) {
    $("error").textContent = e.message;
  }
}

// Villages of split communes waiting for a person to place them (admins and supervisors).
async function pending() {
  try {
    const list = await call("/areas/pending");
    $("pending").hidden = list.length === 0;
    $("pending-list").replaceChildren(...list.map((p) => {
      const select = el("select", { "aria-label": `Xã mới cho ${p.village.name}` },
        p.candidates.map((c) => el("option", { value: c.id }, c.name)));
      const result = el("span", { class: "error" });
      const button = el("button", { type: "button", onclick: async () => {
        button.disabled = true;
        try {
          await send("POST", `/areas/${p.village.id}/place`, { commune_id: select.value });
          await pending();
          if (state.trail.length) show();
        } catch (e) {
          result.textContent = e.message;
          button.disabled = false;
        }
      } }, "Xếp vào xã này");
      return el("li", { class: "pending-row", "data-id": p.village.id },
        el("b", {}, p.village.name), ` (${p.commune.name} cũ, ${num(p.households)} hộ) → `,
        p.candidates.length ? [select, " ", button] : "chưa có xã đề xuất, quản trị viên xếp qua API", " ", result);
    }));
  } catch (e) {
    $("error").textContent = e.message;
  }
}

async function trend(view) {
  const area = current().id;
  const t = await call(`/reports/trend?${query()}`);
  if (view !== state.view) return;
  $("trend").dataset.area = area;
  const s = t.series[0];
  const W = 640, H = 180, L = 34, B = 22;
  const max = Math.max(10, state.goal || 0, ...s.cumulative_rate.map((r) => r || 0));
  const x = (i) => L + (i * (W - L - 8)) / Math.max(1, t.days.length - 1);
  const y = (v) => H - B - (v / max) * (H - B - 10);
  const points = s.cumulative_rate.map((r, i) => `${x(i).toFixed(1)},${y(r || 0).toFixed(1)}`).join(" ");
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "Tỷ lệ cài đặt lũy kế theo ngày");
  const add = (tag, attrs, text) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.append(e);
  };
  add("line", { class: "axis", x1: L, y1: H - B, x2: W - 8, y2: H - B });
  add("line", { class: "axis", x1: L, y1: 10, x2: L, y2: H - B });
  add("text", { x: 2, y: 14 }, `${Math.round(max)}%`);
  add("text", { x: 2, y: H - B }, "0%");
  if (t.days.length) {
    add("text", { x: L, y: H - 4 }, t.days[0].split("-").reverse().join("/"));
    add("text", { x: W - 80, y: H - 4 }, t.days[t.days.length - 1].split("-").reverse().join("/"));
  }
  if (state.goal) {
    add("line", { class: "goal", x1: L, y1: y(state.goal), x2: W - 8, y2: y(state.goal) });
    add("text", { x: W - 110, y: y(state.goal) + 14 }, `Chỉ tiêu ${state.goal}%`);
  }
  add("polyline", { class: "line", points });
  $("trend").replaceChildren(svg,
    el("p", {}, `Lũy kế: ${num(s.cumulative[s.cumulative.length - 1] || 0)} người đã cài, ${pct(s.cumulative_rate[s.cumulative_rate.length - 1])} nhân khẩu.`));
}

const LISTS = {
  "priority-pending": {
    path: "/lists/priority-pending",
    cols: [[F("full_name"), (r) => r.full_name || ANONYMIZED], [F("priority"), (r) => label("priority", r.priority)],
      [F("status"), (r) => label("adoption_status", r.status || "not_yet")], [F("phone"), (r) => r.phone || r.household_phone || ""],
      [F("address"), (r) => `${r.address} (${r.village})`], ["Lần thăm gần nhất", (r) => visit(r.last_visit)]],
  },
  unvisited: {
    path: "/lists/unvisited",
    cols: [[F("head_name"), (r) => r.head_name || ANONYMIZED], [F("address"), (r) => r.address], [F("village"), (r) => r.village],
      ["Nhân khẩu", (r) => r.members], ["Ưu tiên", (r) => r.priority_members]],
  },
  revisit: {
    path: "/lists/revisit",
    cols: [[F("head_name"), (r) => r.head_name || ANONYMIZED], [F("address"), (r) => r.address], [F("village"), (r) => r.village],
      [F("phone"), (r) => r.phone || ""], ["Lần thăm gần nhất", (r) => visit(r.last_visit)]],
  },
  activity: {
    path: "/reports/activity",
    cols: [["Ngày", (r) => r.day.split("-").reverse().join("/")], ["Cán bộ", (r) => r.full_name || r.username],
      ["Lần thăm", (r) => r.visits], ["Số hộ", (r) => r.households], ["Cài đặt", (r) => r.installs],
      ["Phút giữa hai lần thăm (trung vị)", (r) => r.median_minutes_between_visits ?? "—"],
      ["Cảnh báo", (r) => (r.far_visits || r.too_soon_visits)
        ? `${r.far_visits} xa nhà, ${r.too_soon_visits} quá gần lần trước` : ""]],
  },
};

function visit(v) {
  if (!v) return "";
  const d = new Date(v.visited_at);
  return `${d.toLocaleString("vi-VN", { timeZone: "Asia/Ho_Chi_Minh" })} — ${label("outcome", v.outcome)}`;
}

async function openList(name, view = state.view) {
  state.list = name;
  const area = current().id;
  document.querySelectorAll(".tabs button").forEach((b) => b.setAttribute("aria-selected", String(b.dataset.list === name)));
  const spec = LISTS[name];
  const box = $("list");
  try {
    const data = await call(`${spec.path}?${query(name === "activity" ? "" : "&per_page=50")}`);
    if (view !== state.view || state.list !== name) return;
    box.dataset.area = area;
    const rows = data.items || data.rows;
    const total = data.total ?? rows.length;
    box.replaceChildren(
      el("p", {}, `${num(total)} mục${rows.length < total ? ` (hiện ${rows.length} mục đầu)` : ""}.`),
      el("table", {},
        el("thead", {}, el("tr", {}, spec.cols.map(([h]) => el("th", {}, h)))),
        el("tbody", {}, rows.map((r) => el("tr", {}, spec.cols.map(([h, f]) => el("td", { "data-label": h }, f(r))))))),
      el("p", { class: "exports" }, "Xuất danh sách này: ",
        el("button", { type: "button", onclick: () => download(spec.path, "csv") }, "CSV"), " ",
        el("button", { type: "button", onclick: () => download(spec.path, "xlsx") }, "Excel")));
  } catch (e) {
    box.replaceChildren(el("p", { class: "error" }, e.message));
  }
}

// Exports need the token, so they are fetched and handed to the browser as a file.
async function download(path, format, plain) {
  try {
    const q = plain ? `area=${current().id}&campaign=${state.campaign}` : query();
    await downloadFile(`${path}.${format}?${q}`);
  } catch (e) {
    $("error").textContent = e.message;
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("login").addEventListener("submit", login);
  $("logout").addEventListener("click", async () => {
    try {
      await fetch(`${API}/auth/logout`, {
        method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify({ refresh_token: tokens.refresh }),
      });
    } catch (_) { /* offline: the tokens are dropped anyway */ }
    showLogin();
  });
  $("campaign").addEventListener("change", (e) => { state.campaign = e.target.value; if (state.trail.length) show(); });
  $("new-password").addEventListener("submit", setPassword);
  document.querySelectorAll("#screens button").forEach((b) => b.addEventListener("click", () => openScreen(b.dataset.screen)));
  document.querySelectorAll(".tabs button").forEach((b) => b.addEventListener("click", () => openList(b.dataset.list)));
  document.querySelectorAll("button[data-export]").forEach((b) =>
    b.addEventListener("click", () => download(b.dataset.export, b.dataset.format, b.dataset.plain)));
  if (tokens.access) start(); else showLogin();
});
