// The canvassers' field app: the screens over the sync engine (sync.js). Everything the
// user does is an op queued on the phone; sync sends it when there is a signal.

import { Engine, LoginNeeded, OfflineError, ServerError, keysOf, workedCampaigns } from "./sync.js";
import { INSTALLED, LOW_STORAGE_BYTES, REVISIT, VALUES, fieldLabel as label, label as valueLabel } from "./vocabulary.js";
import { IdbStore } from "./idbstore.js";
import { MemoryStore } from "./memstore.js";
import { matches, terms } from "./text.js";
import { candidates } from "./duplicates.js";
import { Schedule } from "./schedule.js";

const GPS_WAIT_MS = 5000;
const PAGE = 100;

// The fields' and the values' labels come from the one vocabulary (vocabulary.js).
// The value set of each field that takes one.
const SET_OF = { sex: "sex", smartphone: "smartphone", priority: "priority", status: "adoption_status", outcome: "outcome" };
const valueOf = (field, value) => valueLabel(SET_OF[field], value);

/// What a rejected op means to the user, and what to do.
const REJECTION = {
  deleted: "Hộ hoặc nhân khẩu này đã bị xóa trên máy chủ, nên thay đổi không được ghi. Cán bộ giám sát sẽ xem lại; không cần làm gì thêm.",
  validation_failed: "Dữ liệu chưa hợp lệ nên không được ghi. Hãy mở hộ và nhập lại.",
  out_of_scope: "Hộ này không thuộc địa bàn được giao cho bạn. Hãy liên hệ cán bộ giám sát.",
  not_found: "Không tìm thấy hộ hoặc nhân khẩu trên máy chủ. Hãy đồng bộ lại rồi kiểm tra.",
};
// A household or member whose personal data was removed (retention, erasure) has no name.
const ANONYMIZED = "(đã ẩn danh)";
const headName = (hh) => hh.head_name || ANONYMIZED;
const memberName = (m) => m.full_name || ANONYMIZED;
const born = (m) => (m.birth_year ? ` (${m.birth_year})` : m.birth_decade ? ` (sinh thập niên ${m.birth_decade})` : "");
const rejectionText = (code) => REJECTION[code] ?? `Lỗi của ứng dụng (${code}). Hãy báo cho quản trị viên.`;

let engine;
let schedule;
let persisted = null;
let listLimit = PAGE;
const ui = { q: "", village: "", filter: "" };

function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c !== null && c !== undefined && c !== false) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

const $ = (id) => document.getElementById(id);
const when = (iso) => (iso ? new Date(iso).toLocaleString("vi-VN", { hour: "2-digit", minute: "2-digit", day: "2-digit", month: "2-digit" }) : "chưa");

// ---- start ----

async function start() {
  const started = performance.now();
  let store;
  try {
    store = await IdbStore.open();
    performance.mark("gocua-store-open");
  } catch (_) {
    store = new MemoryStore();
    alertBox("Trình duyệt không cho lưu dữ liệu trên máy: dữ liệu sẽ mất khi đóng trang.");
  }
  const version = document.querySelector('meta[name="gocua-version"]')?.content || "unknown";
  engine = await Engine.open(store, { fetch: (...a) => fetch(...a), version,
    storage: async () => (await navigator.storage?.estimate?.()) ?? null });
  // Timings the benchmark reads (benches/field.rs): what the user waits for.
  schedule = new Schedule({ run: () => syncNow() });
  // From the start of the page load: the app's code ran (`startMs`), its copy was read from
  // storage (`loadedMs`), the first list showed households (`openMs`, in `render`).
  window.gocua = { engine, schedule, ready: false, timings: { startMs: started, loadedMs: performance.now() }, syncs: 0 };
  engine.onChange(renderBar);
  window.addEventListener("online", () => syncNow());
  window.addEventListener("offline", renderBar);
  window.addEventListener("hashchange", () => {
    render();
    offerUpdate();
  });
  // Out of sight, the app does not sync (battery, data); back in sight, it syncs at once.
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "hidden") {
      clearTimeout(retryTimer);
      schedule.pause();
    } else {
      schedule.resume();
    }
  });
  // A form that holds what the user typed is not thrown away by an update.
  document.addEventListener("input", (e) => e.target.closest?.("form")?.setAttribute("data-dirty", ""));
  $("sync").addEventListener("click", () => syncNow(true));
  $("update-now").addEventListener("click", () => applyUpdate());
  registerWorker();
  checkStorage();
  renderBar();
  render();
  if (engine.loggedIn) syncNow();
  else schedule.after(false);
  window.gocua.ready = true;
}

// ---- updates ----

// A new version of the app waits (its worker is installed, not yet in charge) until no form
// holds input, or until the user taps "Cập nhật"; then it takes over and the page reloads
// into it, so that no stale shell talks to a new server.
let waiting = null;
let updating = false;

const formHoldsInput = () => document.querySelector("form[data-dirty]") !== null;

function registerWorker() {
  if (!("serviceWorker" in navigator)) return;
  let controlled = Boolean(navigator.serviceWorker.controller);
  navigator.serviceWorker.addEventListener("controllerchange", () => {
    // The first worker taking charge of a page it did not load is no new version.
    if (!controlled) {
      controlled = true;
      return;
    }
    // Another tab applied the update: this page reloads too, unless a form holds input.
    if (updating || !formHoldsInput()) {
      location.reload();
      return;
    }
    waiting = "reload";
    renderUpdate();
  });
  watchWorker();
}

let workerRetry = null;
const watched = new WeakSet();

/// Registers the worker (again, if an earlier try failed) and watches for a new version.
/// A register or install that fails (no network, a shell file cut off) is tried again
/// 30 s later while the phone is online and the app in sight, and after every sync.
async function watchWorker() {
  clearTimeout(workerRetry);
  try {
    const reg = await navigator.serviceWorker.register("/field/sw.js", { scope: "/field/" });
    const offer = () => {
      if (reg.waiting && navigator.serviceWorker.controller) {
        waiting = reg.waiting;
        offerUpdate();
      }
    };
    const watch = (w) => {
      if (!w || watched.has(w)) return;
      watched.add(w);
      w.addEventListener("statechange", () => {
        if (w.state === "installed") offer();
        else if (w.state === "redundant" && !reg.active && !reg.installing && !reg.waiting) retryWorker();
      });
    };
    reg.addEventListener("updatefound", () => watch(reg.installing));
    watch(reg.installing);
    offer();
  } catch (_) {
    retryWorker();
  }
}

function retryWorker() {
  clearTimeout(workerRetry);
  workerRetry = setTimeout(() => {
    if (navigator.onLine && document.visibilityState !== "hidden") watchWorker();
    else retryWorker();
  }, 30000);
}

/// Asks the server whether there is a new version, or registers the worker if it is not in
/// charge yet (its install can fail on a bad signal).
async function checkForUpdate() {
  if (!("serviceWorker" in navigator)) return;
  const reg = await navigator.serviceWorker.getRegistration("/field/").catch(() => null);
  if (reg?.active || reg?.installing || reg?.waiting) reg.update().catch(() => {});
  else watchWorker();
}

function offerUpdate() {
  if (!waiting) return;
  if (!formHoldsInput()) applyUpdate();
  else renderUpdate();
}

function applyUpdate() {
  if (!waiting) return;
  updating = true;
  if (waiting === "reload") location.reload();
  else waiting.postMessage({ type: "take-over" });
}

function renderUpdate() {
  $("update").hidden = !waiting;
}

// ---- sync ----

let syncTimer = null;
let retryTimer = null;
let retryMs = 0;

/// Syncs now (or soon after an edit); never two at once. A sync that found no network or
/// no server is tried again after 5 s, then after twice as long each time, up to a minute.
async function syncNow(byHand = false) {
  if (!engine?.loggedIn || engine.mustChangePassword || (!navigator.onLine && !byHand)) {
    schedule.after(false);
    renderBar();
    return;
  }
  clearTimeout(retryTimer);
  let moved = false;
  window.gocua.syncs += 1;
  try {
    const started = performance.now();
    const r = await engine.sync();
    moved = r.pushed + r.pulled > 0;
    window.gocua.timings.lastSyncMs = performance.now() - started;
    retryMs = 0;
    checkForUpdate();
    checkStorage();
  } catch (e) {
    if (e instanceof LoginNeeded) render();
    else if (!(e instanceof OfflineError)) alertBox(`Đồng bộ không thành công: ${e.message}`);
    if (e instanceof OfflineError && navigator.onLine && document.visibilityState !== "hidden") {
      retryMs = Math.min(60000, retryMs ? retryMs * 2 : 5000);
      retryTimer = setTimeout(() => syncNow(), retryMs);
    }
  }
  schedule.after(moved);
  renderBar();
  // New data on screen, unless the user is typing: a form is not wiped under their thumb.
  const typing = document.activeElement?.closest?.("form") && document.activeElement.tagName !== "BUTTON";
  if (!typing && !location.hash.startsWith("#/new")) render();
}

function syncSoon() {
  clearTimeout(syncTimer);
  syncTimer = setTimeout(() => syncNow(), 1500);
}

/// Runs a local edit, then refreshes the screen and syncs when there is a signal.
/// Answers whether the edit was stored: when the phone could not store it (its storage
/// full), the screen stays as it is, form and all, and the user hears why.
async function edit(f) {
  const started = performance.now();
  try {
    await f();
  } catch (e) {
    notStored(e);
    return false;
  }
  render();
  // From the tap to the screen showing it (benches/field.rs).
  window.gocua.timings.lastEditMs = performance.now() - started;
  offerUpdate();
  syncSoon();
  return true;
}

let storageLeft = null;

/// An edit the phone could not store: nothing of it is queued (each op is one IndexedDB
/// transaction, all or nothing), and the user is told why.
function notStored(e) {
  const full = e?.name === "QuotaExceededError" || /quota/i.test(String(e?.message));
  alertBox(full
    ? "Máy đã hết chỗ lưu nên thay đổi này CHƯA được lưu. Hãy xóa bớt ảnh, video hoặc ứng dụng không dùng, rồi bấm lưu lại."
    : "Máy không ghi được thay đổi này vào bộ nhớ nên nó CHƯA được lưu. Hãy bấm lưu lại; nếu vẫn không được, hãy mở lại ứng dụng.", "not-stored");
  console.error(e);
  engine.noteError(full ? "storage_full" : "storage_failed");
  checkStorage();
}

/// How much room the browser still gives the app; a warning below 50 MB.
function checkStorage() {
  navigator.storage?.estimate?.().then((e) => {
    storageLeft = Math.max(0, e.quota - e.usage);
    renderAlerts();
  }).catch(() => {});
}

// ---- the bar and the alerts ----

function renderBar() {
  if (!engine) return;
  const online = navigator.onLine && engine.meta.last_error !== "offline";
  $("net").dataset.online = online ? "yes" : "no";
  $("net").textContent = online ? "Trực tuyến" : "Ngoại tuyến";
  const n = engine.pendingCount();
  $("pending").dataset.count = String(n);
  $("pending").textContent = `${n} thay đổi chờ gửi`;
  $("last-sync").textContent = `Đồng bộ: ${when(engine.meta.last_sync)}`;
  $("sync").disabled = !engine.loggedIn;
  renderAlerts();
}

function alertBox(text, kind) {
  $("alerts").append(h("div", { class: `alert ${kind || ""}`, role: "alert" }, text, " ",
    h("button", { class: "ghost", onclick: (ev) => ev.target.parentElement.remove() }, "Đóng")));
}

function renderAlerts() {
  const box = $("alerts");
  box.querySelectorAll(".rejection, .persist, .low-storage").forEach((e) => e.remove());
  if (storageLeft !== null && storageLeft < LOW_STORAGE_BYTES) {
    box.append(h("div", { class: "alert info low-storage", role: "status" },
      `Máy sắp hết chỗ lưu: ứng dụng chỉ còn ${(storageLeft / 1048576).toFixed(1)} MB. `,
      "Hãy đồng bộ khi có sóng và xóa bớt ảnh, video hoặc ứng dụng không dùng, để thay đổi mới không bị từ chối."));
  }
  if (persisted === false) {
    box.append(h("div", { class: "alert info persist" },
      "Trình duyệt chưa cho lưu trữ lâu dài: khi máy đầy bộ nhớ, thay đổi chưa gửi có thể mất. ",
      "Hãy thêm ứng dụng vào màn hình chính và đồng bộ khi có sóng. ",
      h("button", { class: "ghost", onclick: () => { persisted = null; renderAlerts(); } }, "Đã hiểu")));
  }
  box.querySelectorAll(".merged").forEach((e) => e.remove());
  for (const m of (engine.meta.merges || []).filter((x) => !x.read)) {
    const to = engine.view().households.get(engine.survivorOf(m.from));
    box.append(h("div", { class: "alert info merged", role: "status", "data-from": m.from, "data-to": m.to },
      `Hộ ${m.head_name || "(không tên)"} đã được gộp vào hộ ${to ? headName(to) : "khác"}. `,
      "Thay đổi chưa gửi của hộ cũ sẽ được ghi vào hộ này.",
      h("div", {},
        to ? h("button", { class: "ghost", onclick: () => { location.hash = `#/h/${to.id}`; } }, "Mở hộ") : null, " ",
        h("button", { class: "ghost", onclick: () => engine.dismissMerge(m.from) }, "Đã hiểu"))));
  }
  for (const r of engine.meta.rejections || []) {
    const hh = engine.view().households.get(r.household_id);
    const what = hh ? `hộ ${headName(hh)}` : "một hộ";
    const fields = (r.error?.fields || []).map((f) => `${label(f.field)}: ${f.message}`).join("; ");
    box.append(h("div", { class: "alert rejection", role: "alert", "data-code": r.error?.code },
      h("strong", {}, `Thay đổi ở ${what} không được ghi. `), rejectionText(r.error?.code),
      fields ? h("div", { class: "muted" }, fields) : null,
      h("div", {}, h("button", { class: "ghost", onclick: () => engine.dismissRejection(r.seq) }, "Đã hiểu"))));
  }
}

// ---- routing ----

function render() {
  const main = $("main");
  main.replaceChildren();
  if (!engine.loggedIn) return main.append(loginView());
  if (engine.mustChangePassword) return main.append(passwordView());
  const [, route, id] = location.hash.split("/");
  if (route === "h" && id) {
    // A household merged into another on the server: its page is the survivor's now.
    const to = engine.survivorOf(id);
    if (to !== id && !engine.view().households.has(id)) {
      location.hash = `#/h/${to}`;
      return undefined;
    }
    return main.append(householdView(id));
  }
  if (route === "new") return main.append(newHouseholdView());
  if (route === "me") return main.append(settingsView());
  main.append(listView());
  // The first list with households after the app opened, from the start of the page load.
  const t = window.gocua.timings;
  if (t.openMs === undefined && engine.view().households.size) t.openMs = performance.now();
  warmKeys();
}

// ---- login ----

function loginView() {
  const again = engine.meta.login_needed;
  const error = h("p", { class: "alert", hidden: true, role: "alert" });
  const form = h("form", { class: "stack", id: "login" },
    h("h1", {}, "Đăng nhập"),
    again ? h("p", { class: "notice" }, `Phiên đăng nhập đã hết. Đăng nhập lại để gửi ${engine.pendingCount()} thay đổi đang chờ; không mất dữ liệu.`) : null,
    h("label", { for: "username" }, "Tên đăng nhập"),
    h("input", { id: "username", name: "username", autocomplete: "username", required: true, value: engine.meta.user?.username }),
    h("label", { for: "password" }, "Mật khẩu"),
    h("input", { id: "password", name: "password", type: "password", autocomplete: "current-password", required: true }),
    h("button", { type: "submit" }, "Đăng nhập"), error);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    try {
      await engine.login(form.username.value, form.password.value);
      persisted = await askPersistence();
      location.hash = "#/";
      // The one-time password given this once: the user sets their own first.
      oneTimePassword = engine.mustChangePassword ? form.password.value : null;
      render();
      if (!engine.mustChangePassword) await syncNow(true);
    } catch (e) {
      error.hidden = false;
      error.textContent = e instanceof OfflineError ? "Không có kết nối mạng: cần có sóng để đăng nhập lần đầu."
        : e instanceof ServerError && e.status === 401 ? "Sai tên đăng nhập hoặc mật khẩu."
          : e.message;
    }
  });
  return form;
}

// The one-time password the user just logged in with, kept in memory only until they set
// their own.
let oneTimePassword = null;

function passwordView() {
  const error = h("p", { class: "alert", hidden: true, role: "alert" });
  const form = h("form", { class: "stack", id: "new-password" },
    h("h1", {}, "Đặt mật khẩu của bạn"),
    h("p", { class: "notice" }, "Bạn vừa đăng nhập bằng mật khẩu dùng một lần. Hãy đặt mật khẩu riêng (ít nhất 8 ký tự) trước khi làm việc."),
    oneTimePassword ? null : [
      h("label", { for: "current" }, "Mật khẩu dùng một lần"),
      h("input", { id: "current", name: "current", type: "password", autocomplete: "current-password", required: true }),
    ],
    h("label", { for: "new1" }, "Mật khẩu mới"),
    h("input", { id: "new1", name: "new1", type: "password", autocomplete: "new-password", minlength: 8, required: true }),
    h("label", { for: "new2" }, "Nhập lại mật khẩu mới"),
    h("input", { id: "new2", name: "new2", type: "password", autocomplete: "new-password", minlength: 8, required: true }),
    h("button", { type: "submit" }, "Lưu mật khẩu"), error);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.hidden = true;
    const say = (text) => { error.hidden = false; error.textContent = text; };
    if (form.new1.value !== form.new2.value) return say("Hai lần nhập mật khẩu mới không giống nhau.");
    try {
      await engine.changePassword(oneTimePassword ?? form.current.value, form.new1.value);
      oneTimePassword = null;
      render();
      await syncNow(true);
    } catch (e) {
      const field = e instanceof ServerError ? e.problem.errors?.[0] : null;
      say(e instanceof OfflineError ? "Không có kết nối mạng: cần có sóng để đặt mật khẩu."
        : field?.code === "wrong_password" ? "Mật khẩu dùng một lần không đúng."
          : field?.code === "unchanged" ? "Hãy chọn mật khẩu khác mật khẩu dùng một lần."
            : field?.code === "too_short" ? "Mật khẩu cần từ 8 đến 256 ký tự."
              : e.message);
    }
  });
  return form;
}

/// Asks the browser to keep this site's storage under pressure; `false` when it refuses.
async function askPersistence() {
  try {
    if (!navigator.storage?.persist) return false;
    return (await navigator.storage.persisted()) || (await navigator.storage.persist());
  } catch (_) {
    return false;
  }
}

// ---- the household list ----

function campaigns() {
  return workedCampaigns(engine.meta.reference?.campaigns || [], new Date().toISOString().slice(0, 10));
}

function campaignId() {
  const list = campaigns();
  const chosen = list.find((c) => c.id === engine.meta.campaign);
  return (chosen || list[0])?.id;
}

function villages() {
  return (engine.meta.reference?.areas || []).filter((a) => a.level === "village");
}

function householdFlags(hh, camp) {
  const visits = hh.visits.filter((v) => v.campaign_id === camp);
  const priorityPending = hh.members.filter((m) => m.priority && m.priority !== "none" && !INSTALLED.includes(engine.adoption(m.id, camp))).length;
  return {
    visited: visits.length > 0,
    revisit: visits.length > 0 && REVISIT.includes(visits[0].outcome),
    priorityPending,
  };
}

/// Vietnamese order for the list (one collator: `localeCompare` with a locale makes one per
/// call on some browsers).
const COLLATOR = new Intl.Collator("vi");

// The search keys are worked out a slice at a time once the list shows, so that the first
// search finds them ready and opening the app never waits for them.
let warming = null;
function warmKeys() {
  if (warming) return;
  const all = [...engine.view().households.values()];
  let i = 0;
  const step = () => {
    const end = Math.min(i + 250, all.length);
    for (; i < end; i += 1) keysOf(all[i]);
    warming = i < all.length ? setTimeout(step, 0) : null;
  };
  warming = setTimeout(step, 0);
}

function listView() {
  const camp = campaignId();
  const list = campaigns();
  const all = [...engine.view().households.values()];
  const t = terms(ui.q);
  const started = performance.now();
  const shown = all.filter((hh) => {
    if (ui.village && hh.area_id !== ui.village) return false;
    if (t.length && !matches(t, keysOf(hh))) return false;
    if (!ui.filter) return true;
    const f = householdFlags(hh, camp);
    if (ui.filter === "unvisited") return !f.visited;
    if (ui.filter === "priority") return f.priorityPending > 0;
    return f.revisit;
  }).sort((a, b) => COLLATOR.compare(String(a.address), String(b.address)) || COLLATOR.compare(String(a.head_name), String(b.head_name)));
  const ul = h("ul", { class: "list", id: "households", "data-count": String(shown.length) },
    shown.slice(0, listLimit).map((hh) => {
      const f = householdFlags(hh, camp);
      return h("li", { "data-id": hh.id }, h("a", { href: `#/h/${hh.id}` },
        h("span", { class: "name" }, headName(hh)),
        f.priorityPending ? h("span", { class: "badge warn" }, `${f.priorityPending} ưu tiên chưa cài`) : null,
        f.visited ? h("span", { class: "badge ok" }, "Đã thăm") : null,
        h("div", { class: "muted" }, `${hh.address} · ${hh.members.length} nhân khẩu`)));
    }));
  window.gocua.timings.lastFilterMs = performance.now() - started;
  const search = h("input", { id: "q", type: "search", placeholder: "Tìm tên, địa chỉ (không cần dấu)", value: ui.q, autocomplete: "off" });
  search.addEventListener("input", () => {
    ui.q = search.value;
    listLimit = PAGE;
    const pos = search.selectionStart;
    render();
    const again = $("q");
    again.focus();
    again.setSelectionRange(pos, pos);
  });
  const chip = (value, text, key) => h("button", {
    type: "button", "aria-pressed": String(ui[key] === value), "data-filter": value,
    onclick: () => { ui[key] = ui[key] === value && value !== "" ? "" : value; listLimit = PAGE; render(); },
  }, text);
  return h("section", {},
    h("div", { class: "row" }, h("h1", {}, "Hộ gia đình"), h("a", { href: "#/me", class: "muted" }, engine.user?.username)),
    list.length > 1 ? h("label", { for: "campaign" }, "Chiến dịch") : null,
    list.length > 1 ? h("select", { id: "campaign", onchange: (ev) => engine.commit({ meta: { campaign: ev.target.value } }).then(render) },
      list.map((c) => h("option", { value: c.id, selected: c.id === camp }, c.name))) : h("p", { class: "muted" }, list[0]?.name || "Chưa có chiến dịch"),
    h("div", { class: "chips" }, chip("", "Tất cả thôn", "village"), villages().map((v) => chip(v.id, v.name, "village"))),
    search,
    h("div", { class: "chips" }, chip("unvisited", "Chưa thăm", "filter"), chip("priority", "Ưu tiên chưa cài", "filter"), chip("revisit", "Cần quay lại", "filter")),
    h("p", { class: "muted" }, `${shown.length} hộ`),
    ul,
    shown.length > listLimit ? h("button", { class: "ghost", onclick: () => { listLimit += PAGE; render(); } }, "Xem thêm") : null,
    h("a", { href: "#/new" }, h("button", { class: "fab", type: "button", id: "new-household" }, "+ Thêm hộ")));
}

// ---- forms ----

let fieldIds = 0;

/// A labelled input, select or textarea; `name` is the field's name.
function field(name, { type = "text", value, options, required, inputmode } = {}) {
  fieldIds += 1;
  const id = `f-${name}-${fieldIds}`;
  let input;
  if (options) {
    input = h("select", { id, name }, options.map((o) => h("option", { value: o, selected: o === value }, valueOf(name, o))));
  } else if (type === "textarea") {
    input = h("textarea", { id, name, rows: 2 }, value ?? "");
  } else {
    input = h("input", { id, name, type, value: value ?? "", required, inputmode });
  }
  return [h("label", { for: id }, label(name)), input];
}

/// The changed fields of a form against `current` (numbers as numbers, empty as null).
function changes(form, names, current = {}) {
  const out = {};
  for (const n of names) {
    const el = form.elements[n];
    if (!el) continue;
    let v = el.value.trim();
    if (n === "birth_year") v = v ? Number(v) : null;
    else if (v === "" && ["phone", "sex"].includes(n)) v = null;
    if ((current[n] ?? (n === "notes" ? "" : null)) !== v) out[n] = v;
  }
  return out;
}

function position() {
  return new Promise((resolve) => {
    if (!navigator.geolocation) return resolve(null);
    let done = false;
    const finish = (v) => { if (!done) { done = true; resolve(v); } };
    setTimeout(() => finish(null), GPS_WAIT_MS);
    navigator.geolocation.getCurrentPosition(
      (p) => finish({ lat: Number(p.coords.latitude.toFixed(6)), lon: Number(p.coords.longitude.toFixed(6)), accuracy: Math.round(p.coords.accuracy) }),
      () => finish(null),
      { enableHighAccuracy: true, timeout: GPS_WAIT_MS, maximumAge: 60000 },
    );
  });
}

// ---- a household ----

function householdView(id) {
  const hh = engine.view().households.get(id);
  if (!hh) return h("section", {}, h("p", {}, "Không có hộ này (có thể đã bị xóa)."), h("a", { href: "#/" }, "← Danh sách"));
  const camp = campaignId();
  const notices = (engine.meta.notices || []).filter((n) => n.household_id === id);
  return h("section", { id: "household", "data-id": id },
    h("a", { href: "#/" }, "← Danh sách"),
    h("h1", {}, headName(hh)),
    h("p", {}, hh.address, hh.phone ? ` · ${hh.phone}` : ""),
    hh.notes ? h("p", { class: "muted" }, hh.notes) : null,
    notices.map((n) => noticeView(n, hh)),
    details("Sửa thông tin hộ", householdForm(hh), "edit-household-box"),
    h("h2", {}, `Nhân khẩu (${hh.members.length})`),
    hh.members.map((m) => memberView(m, camp)),
    details("+ Thêm nhân khẩu", memberForm(id), "add-member"),
    h("h2", {}, "Lượt thăm"),
    visitForm(id, camp),
    h("ul", { class: "list", id: "visits" }, hh.visits.map((v) => h("li", {}, h("div", { class: "visit" },
      `${when(v.visited_at)} · ${valueOf("outcome", v.outcome)}`, v.notes ? ` · ${v.notes}` : "",
      v.lat != null ? h("span", { class: "muted" }, ` (${v.lat}, ${v.lon})`) : null)))),
    h("p", {}, h("button", { class: "danger", type: "button", onclick: () => {
      if (confirm(`Xóa hộ ${headName(hh)}?`)) edit(() => engine.deleteHousehold(id)).then((ok) => { if (ok) location.hash = "#/"; });
    } }, "Xóa hộ")));
}

function details(title, body, id) {
  return h("details", { class: "card", id }, h("summary", {}, title), body);
}

/// A merged edit: the values that won are on screen; say which of the user's lost.
function noticeView(n, hh) {
  const lost = Object.entries(n.data || {}).filter(([k, v]) => {
    const current = n.type === "household.upsert" ? hh[k] : hh.members.find((m) => m.id === n.entity_id)?.[k];
    return current !== v && k !== "campaign_id";
  });
  return h("div", { class: "notice", role: "status" },
    "Một chỉnh sửa khác cùng lúc đã được giữ thay cho giá trị của bạn",
    lost.length ? `: ${lost.map(([k, v]) => `${label(k)} “${v ?? ""}”`).join(", ")}` : "",
    ". Cán bộ giám sát sẽ xem xét. ",
    h("button", { class: "ghost", onclick: () => engine.dismissNotice(n.seq).then(render) }, "Đã hiểu"));
}

function householdForm(hh) {
  const names = ["head_name", "address", "phone", "notes"];
  const form = h("form", { class: "stack", id: "edit-household" },
    names.map((n) => field(n, { value: hh[n], type: n === "notes" ? "textarea" : n === "phone" ? "tel" : "text", required: ["head_name", "address"].includes(n) })),
    h("button", { type: "submit" }, "Lưu"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const c = changes(form, names, hh);
    if (Object.keys(c).length) edit(() => engine.updateHousehold(hh.id, c));
  });
  return form;
}

function memberView(m, camp) {
  const status = engine.adoption(m.id, camp);
  const set = (name) => (ev) => edit(() => engine.updateMember(m.id, { [name]: ev.target.value }));
  return h("div", { class: "card member", "data-id": m.id },
    h("div", { class: "name" }, memberName(m), born(m) ? h("span", { class: "muted" }, born(m)) : ""),
    h("div", { class: "row" },
      h("select", { "aria-label": label("priority"), name: "priority", onchange: set("priority") },
        VALUES.priority.map((p) => h("option", { value: p, selected: (m.priority || "none") === p }, valueOf("priority", p)))),
      h("select", { "aria-label": label("smartphone"), name: "smartphone", onchange: set("smartphone") },
        VALUES.smartphone.map((p) => h("option", { value: p, selected: (m.smartphone || "unknown") === p }, valueOf("smartphone", p))))),
    camp ? h("div", { class: "statuses", role: "group", "aria-label": label("status") },
      VALUES.adoption_status.map((s) => h("button", {
        type: "button", "data-status": s, "aria-pressed": String(status === s),
        onclick: () => edit(() => engine.setAdoption(m.id, camp, s)),
      }, valueOf("status", s)))) : null,
    details("Sửa / xóa", h("div", {}, memberForm(m.household_id, m),
      h("button", { class: "danger", type: "button", onclick: () => {
        if (confirm(`Xóa nhân khẩu ${memberName(m)}?`)) edit(() => engine.deleteMember(m.id));
      } }, "Xóa nhân khẩu"))));
}

function memberForm(householdId, m) {
  const names = ["full_name", "birth_year", "sex", "phone", "smartphone", "priority", "notes"];
  const form = h("form", { class: "stack member-form" },
    field("full_name", { value: m?.full_name, required: true }),
    field("birth_year", { type: "number", value: m?.birth_year, inputmode: "numeric" }),
    field("sex", { options: ["", ...VALUES.sex], value: m?.sex ?? "" }),
    field("phone", { type: "tel", value: m?.phone }),
    field("smartphone", { options: VALUES.smartphone, value: m?.smartphone ?? "unknown" }),
    field("priority", { options: VALUES.priority, value: m?.priority ?? "none" }),
    field("notes", { type: "textarea", value: m?.notes }),
    h("button", { type: "submit" }, m ? "Lưu" : "Thêm nhân khẩu"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (m) {
      const c = changes(form, names, m);
      if (Object.keys(c).length) edit(() => engine.updateMember(m.id, c));
    } else {
      const c = changes(form, names, {});
      edit(() => engine.createMember(householdId, c));
    }
  });
  return form;
}

function visitForm(householdId, camp) {
  const state = h("p", { class: "muted", id: "gps" });
  const form = h("form", { class: "stack", id: "visit" },
    field("outcome", { options: VALUES.outcome }), field("notes", { type: "textarea" }),
    h("button", { type: "submit", disabled: !camp }, "Ghi nhận lượt thăm"), state);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const outcome = form.elements.outcome.value;
    const notes = form.elements.notes.value.trim();
    const visitedAt = new Date().toISOString();
    state.textContent = "Đang lấy vị trí…";
    const p = await position();
    const data = { campaign_id: camp, visited_at: visitedAt, outcome, notes };
    if (p) Object.assign(data, { lat: p.lat, lon: p.lon });
    if (!(await edit(() => engine.recordVisit(householdId, data)))) {
      state.textContent = "";
      return;
    }
    const s = $("gps");
    if (s) s.textContent = p ? `Đã ghi kèm vị trí (sai số ±${p.accuracy} m).` : "Đã ghi, không có vị trí.";
  });
  return form;
}

// ---- a new household ----

/// A village's commune, from the reference data.
function communeOf(village) {
  return engine.meta.reference?.areas?.find((a) => a.id === village)?.parent_id ?? village;
}

function newHouseholdView() {
  const vs = villages();
  const form = h("form", { class: "stack", id: "new" },
    h("a", { href: "#/" }, "← Danh sách"),
    h("h1", {}, "Thêm hộ"),
    h("label", { for: "f-area_id" }, label("area_id")),
    h("select", { id: "f-area_id", name: "area_id", required: true }, vs.map((v) => h("option", { value: v.id, selected: v.id === ui.village }, v.name))),
    field("head_name", { required: true }), field("address", { required: true }),
    field("phone", { type: "tel" }), field("notes", { type: "textarea" }),
    h("button", { type: "submit" }, "Lưu hộ"), h("p", { class: "muted", id: "gps" }));
  const warning = h("div", { id: "maybe-same", class: "notice", hidden: true, role: "alert" });
  form.insertBefore(warning, form.querySelector("button[type=submit]"));
  let different = false;
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const data = { area_id: form.elements.area_id.value, ...changes(form, ["head_name", "address", "phone", "notes"], {}) };
    // The phone's copy of the commune first: a household registered already is opened, not
    // typed again. Saving anyway is the canvasser's call.
    const found = different ? [] : candidates({ ...data, members: [] }, [...engine.view().households.values()], communeOf);
    if (found.length) {
      warning.hidden = false;
      warning.replaceChildren(
        h("p", {}, h("b", {}, "Có thể trùng với hộ đã có:")),
        ...found.map((c) => h("p", { class: "candidate" },
          `${headName(c.household)} — ${c.household.address} (${valueLabel("duplicate_rule", c.rule).toLowerCase()}) `,
          h("a", { href: `#/h/${c.household.id}`, class: "button" }, "Mở hộ này"))),
        h("button", { type: "button", class: "ghost", id: "not-same", onclick: () => { different = true; form.requestSubmit(); } },
          "Đây là hộ khác, vẫn lưu"));
      return;
    }
    $("gps").textContent = "Đang lấy vị trí…";
    const p = await position();
    if (p) Object.assign(data, { lat: p.lat, lon: p.lon });
    let id;
    try {
      id = await engine.createHousehold(data);
    } catch (e) {
      $("gps").textContent = "";
      notStored(e);
      return;
    }
    location.hash = `#/h/${id}`;
    syncSoon();
  });
  return form;
}

// ---- the user and the phone's storage ----

function settingsView() {
  const used = h("p", { id: "storage" }, "Đang tính dung lượng…");
  navigator.storage?.estimate?.().then((e) => {
    used.textContent = `Dữ liệu trên máy: ${(e.usage / 1048576).toFixed(1)} MB (còn trống ${(Math.max(0, e.quota - e.usage) / 1048576).toFixed(0)} MB).`;
  }).catch(() => { used.textContent = ""; });
  navigator.storage?.persisted?.().then((p) => { persisted = p; renderAlerts(); }).catch(() => {});
  return h("section", {},
    h("a", { href: "#/" }, "← Danh sách"),
    h("h1", {}, engine.user?.username),
    h("p", {}, `${engine.view().households.size} hộ trên máy · ${engine.pendingCount()} thay đổi chờ gửi`),
    used,
    reportBox(),
    h("button", { class: "danger", id: "logout", type: "button", onclick: async () => {
      const n = engine.pendingCount();
      if (n > 0 && !confirm(`Còn ${n} thay đổi chưa gửi. Đăng xuất sẽ XÓA chúng khỏi máy. Vẫn đăng xuất?`)) return;
      await engine.logout(true);
      location.hash = "#/";
      render();
    } }, "Đăng xuất"));
}

/// "Gửi báo cáo lỗi": the phone's report (its version, what waits, its storage, its last
/// errors as codes; nothing personal) goes to the server at once, for the supervisor.
function reportBox() {
  const state = h("p", { class: "muted", id: "report-state", role: "status" });
  const errors = engine.lastErrors();
  return h("div", { class: "stack" },
    h("p", { class: "muted" }, errors.length
      ? `Lỗi gần đây: ${errors.map((e) => `${e.code} (${when(e.at)})`).join(", ")}.`
      : "Không có lỗi gần đây."),
    h("button", { type: "button", id: "send-report", onclick: async (ev) => {
      ev.target.disabled = true;
      state.textContent = "Đang gửi…";
      const sent = await engine.report().catch(() => false);
      state.textContent = sent
        ? `Đã gửi báo cáo lúc ${when(new Date().toISOString())}. Cán bộ giám sát sẽ thấy trên bảng điều khiển.`
        : "Chưa gửi được (không có mạng hoặc máy chủ không trả lời). Hãy thử lại khi có sóng.";
      ev.target.disabled = false;
    } }, "Gửi báo cáo lỗi"),
    state);
}

start();
