// The console's screens (docs/CONSOLE.md): the team, accounts from a spreadsheet and their
// printable sheet, campaigns and targets, conflicts, who covers what, the audit trail and
// the household register import. Each is a client of the public API.
import { LOW_STORAGE_BYTES, fieldLabel, label } from "/field/vocabulary.js";
import { call, download, el, num, Refused, send, table, upload, when } from "/assets/api.js";

const ROLE = { admin: "Quản trị", supervisor: "Giám sát", canvasser: "Cán bộ" };
// A phone that has not synced for this long is marked.
const SILENT_MS = 2 * 24 * 3600 * 1000;
// A conflict's field: its label, or the whole record when it was deleted.
const fieldName = (f) => (f === "*" ? "Cả bản ghi (đã bị xóa)" : fieldLabel(f));
const SET_OF = { sex: "sex", smartphone: "smartphone", priority: "priority", status: "adoption_status" };
const ACTIONS = {
  login: "Đăng nhập", login_failed: "Đăng nhập sai", login_throttled: "Đăng nhập bị chặn tạm",
  user_created: "Tạo tài khoản", user_changed: "Sửa tài khoản", user_areas_set: "Giao địa bàn",
  password_reset: "Đặt lại mật khẩu", password_changed: "Đổi mật khẩu",
  campaign_created: "Tạo chiến dịch", campaign_changed: "Sửa chiến dịch",
  target_set: "Đặt chỉ tiêu", target_cleared: "Bỏ chỉ tiêu riêng",
  conflict_resolved: "Xử lý xung đột", export: "Xuất dữ liệu", village_created: "Tạo thôn",
  households_imported: "Nhập sổ hộ", areas_imported: "Nhập đơn vị hành chính",
};

/// The screen's context, set by the page: the area and campaign chosen, who is logged in.
let ctx = null;
const box = () => document.getElementById("console");
const areaNames = new Map();

/// Opens a screen in the console's box.
export async function open(name, context) {
  ctx = context;
  const screen = SCREENS[name];
  box().dataset.screen = name;
  box().replaceChildren(el("p", { class: "muted" }, "Đang tải…"));
  try {
    await screen();
  } catch (e) {
    box().replaceChildren(el("p", { class: "error", role: "alert" }, e.message));
  }
}

const mayManage = (u) => ctx.role === "admin" || u.role === "canvasser";
const manageableRoles = () => (ctx.role === "admin" ? ["canvasser", "supervisor", "admin"] : ["canvasser"]);
const valueText = (field, v) => (v === null || v === undefined || v === "" ? "—"
  : SET_OF[field] ? label(SET_OF[field], String(v)) : typeof v === "object" ? JSON.stringify(v) : String(v));
const silent = (iso) => !iso || Date.now() - new Date(iso).getTime() > SILENT_MS;

async function namesOf(ids) {
  const missing = ids.filter((id) => !areaNames.has(id));
  await Promise.all(missing.map(async (id) => {
    try { areaNames.set(id, (await call(`/areas/${id}`)).name); } catch (_) { areaNames.set(id, "?"); }
  }));
  return ids.map((id) => areaNames.get(id));
}

function message(text, kind = "note") {
  return el("p", { class: kind, role: kind === "error" ? "alert" : "status" }, text);
}

// ---- the team ----

async function team(filter = {}) {
  const q = new URLSearchParams({ area: ctx.area.id, per_page: "200" });
  if (filter.q) q.set("q", filter.q);
  if (filter.role) q.set("role", filter.role);
  const page = await call(`/users?${q}`);
  const users = page.items;
  await namesOf([...new Set(users.flatMap((u) => u.area_ids))]);
  const search = el("input", { id: "team-q", type: "search", placeholder: "Tìm theo tên", value: filter.q || "" });
  const role = el("select", { id: "team-role" }, el("option", { value: "" }, "Mọi vai trò"),
    Object.entries(ROLE).map(([k, v]) => el("option", { value: k, selected: filter.role === k }, v)));
  const apply = () => team({ q: search.value.trim(), role: role.value });
  search.addEventListener("change", apply);
  role.addEventListener("change", apply);
  const result = el("div", { id: "team-result" });
  box().replaceChildren(
    el("div", { class: "card" },
      el("h2", {}, `Đội — ${ctx.area.name}`),
      el("div", { class: "toolbar" }, search, role,
        el("button", { type: "button", id: "new-user", onclick: () => newUser(result) }, "Thêm người"),
        el("button", { type: "button", id: "import-users", onclick: () => importAccounts() }, "Tạo tài khoản từ bảng tính")),
      result,
      el("p", {}, `${num(page.total)} người.`),
      table([fieldLabel("full_name"), "Vai trò", "Địa bàn", "Trạng thái", "Đăng nhập gần nhất", fieldLabel("phone"), ""],
        users.map((u) => userRow(u, result)), { id: "team" })));
}

/// What is wrong with a phone, as it last reported: little storage left, its latest error.
function trouble(p) {
  const parts = [];
  if (p.storage_free_bytes !== null && p.storage_free_bytes !== undefined && p.storage_free_bytes < LOW_STORAGE_BYTES) {
    parts.push(`còn ${(p.storage_free_bytes / 1048576).toFixed(1)} MB bộ nhớ`);
  }
  const last = p.last_error ?? p.last_errors?.at(-1);
  if (last) parts.push(`lỗi ${last.code} lúc ${when(last.at)}`);
  return parts.join(" · ");
}

function userRow(u, result) {
  const phones = u.phones.length ? u.phones.map((p) => el("div", { class: silent(p.last_sync_at) ? "phone silent" : "phone" },
    `Đồng bộ ${when(p.last_sync_at)}`, p.app_version ? ` · bản ${p.app_version}` : "",
    p.pending_changes ? el("b", { class: "waiting" }, ` · ${num(p.pending_changes)} thay đổi chờ gửi`) : "",
    trouble(p) ? el("b", { class: "trouble" }, ` · ${trouble(p)}`) : ""))
    : el("span", { class: "muted" }, "Chưa đồng bộ");
  const actions = mayManage(u) && u.id !== ctx.me.id ? [
    el("button", { type: "button", class: "reset", onclick: () => resetPassword(u, result) }, "Đặt lại mật khẩu"),
    el("button", { type: "button", class: "areas", onclick: () => assignAreas(u, result) }, "Giao địa bàn"),
    u.active
      ? el("button", { type: "button", class: "deactivate", onclick: (ev) => deactivate(u, ev.target, result) }, "Khóa")
      : el("button", { type: "button", class: "reactivate", onclick: () => setActive(u, true, result) }, "Mở khóa"),
  ] : [];
  return el("tr", { "data-username": u.username, class: u.active ? "" : "inactive" },
    el("td", { "data-label": fieldLabel("full_name") }, el("b", {}, u.full_name || u.username), el("small", {}, ` ${u.username}`), u.phone ? el("small", {}, ` · ${u.phone}`) : ""),
    el("td", { "data-label": "Vai trò" }, ROLE[u.role] || u.role),
    el("td", { "data-label": "Địa bàn" }, u.area_ids.map((id) => areaNames.get(id)).join(", ") || "—"),
    el("td", { "data-label": "Trạng thái" }, u.active ? "Đang hoạt động" : "Đã khóa", u.must_change_password ? el("small", {}, " · chưa đổi mật khẩu") : ""),
    el("td", { "data-label": "Đăng nhập gần nhất" }, when(u.last_login_at)),
    el("td", { "data-label": fieldLabel("phone") }, phones),
    el("td", { class: "actions" }, actions));
}

/// Shows a one-time password once, with its printable card.
function oneTime(result, account) {
  result.replaceChildren(el("div", { class: "card notice", id: "one-time" },
    el("p", {}, `Mật khẩu dùng một lần của ${account.username}: `, el("code", { class: "otp" }, account.one_time_password)),
    el("p", { class: "muted" }, "Mật khẩu chỉ hiện lần này. Người dùng phải đổi mật khẩu khi đăng nhập lần đầu."),
    el("button", { type: "button", onclick: () => printSheet([account]) }, "In phiếu")));
}

async function resetPassword(u, result) {
  try {
    const r = await send("POST", `/users/${u.id}/password-reset`, {});
    oneTime(result, { ...r, full_name: u.full_name });
  } catch (e) {
    result.replaceChildren(message(e.message, "error"));
  }
}

async function setActive(u, active, result) {
  try {
    await send("PATCH", `/users/${u.id}`, { active });
    await team();
  } catch (e) {
    result.replaceChildren(message(e.message, "error"));
  }
}

/// Deactivating ends the user's sessions at once; with changes waiting on their phones, the
/// console says how many and asks first.
function deactivate(u, button, result) {
  const waiting = u.phones.reduce((n, p) => n + (p.pending_changes || 0), 0);
  if (!waiting) return setActive(u, false, result);
  result.replaceChildren(el("div", { class: "card warn", id: "confirm-deactivate" },
    el("p", {}, `Điện thoại của ${u.full_name || u.username} còn ${num(waiting)} thay đổi chưa gửi. Khi khóa tài khoản, các thay đổi này vẫn nằm trên điện thoại nhưng không gửi được cho đến khi mở khóa.`),
    el("button", { type: "button", id: "confirm", onclick: () => setActive(u, false, result) }, "Vẫn khóa"), " ",
    el("button", { type: "button", class: "ghost", onclick: () => result.replaceChildren() }, "Thôi")));
  button.blur();
}

/// A picker of areas under the console's area: browse the tree or search names as search
/// does (accents and case aside); the chosen ones are kept in `chosen` (id -> name).
function areaPicker(chosen) {
  const list = el("ul", { class: "plain picker-list" });
  const chips = el("p", { class: "chips" });
  const drawChips = () => chips.replaceChildren(...(chosen.size
    ? [...chosen].map(([id, name]) => el("span", { class: "chip" }, name, " ",
      el("button", { type: "button", class: "ghost", "aria-label": `Bỏ ${name}`, onclick: () => { chosen.delete(id); drawChips(); show(items); } }, "×")))
    : [el("span", { class: "muted" }, "Chưa chọn địa bàn")]));
  let items = [];
  const show = (areas) => {
    items = areas;
    list.replaceChildren(...areas.map((a) => el("li", { "data-id": a.id },
      el("label", {}, el("input", { type: "checkbox", checked: chosen.has(a.id), onchange: (ev) => {
        if (ev.target.checked) chosen.set(a.id, a.name); else chosen.delete(a.id);
        drawChips();
      } }), ` ${label("area_level", a.level)}: ${a.name}`),
      a.level !== "village" ? el("button", { type: "button", class: "ghost", onclick: () => browse(a) }, "Mở ›") : "")));
  };
  const browse = async (a) => show((await call(`/areas?parent=${a.id}&per_page=500`)).items);
  const search = el("input", { type: "search", class: "picker-search", placeholder: "Tìm xã, thôn…" });
  search.addEventListener("input", async () => {
    const q = search.value.trim();
    if (!q) return browse(ctx.area);
    const found = (await call(`/areas?q=${encodeURIComponent(q)}&per_page=30`)).items;
    if (search.value.trim() === q) show(found);
  });
  drawChips();
  show([ctx.area]);
  browse(ctx.area);
  return el("div", { class: "picker" }, search, list, chips);
}

function newUser(result) {
  const chosen = new Map();
  const field = (id, text, attrs = {}) => el("label", {}, text, el("input", { id, name: id, ...attrs }));
  const form = el("form", { class: "card", id: "user-form" },
    el("h3", {}, "Thêm người"),
    field("new-username", "Tên đăng nhập", { required: true, pattern: "[A-Za-z0-9._\\-]{2,40}", autocomplete: "off" }),
    field("new-full-name", fieldLabel("full_name")),
    field("new-phone", fieldLabel("phone"), { type: "tel" }),
    el("label", {}, "Vai trò", el("select", { id: "new-role" }, manageableRoles().map((r) => el("option", { value: r }, ROLE[r])))),
    el("p", {}, "Địa bàn:"), areaPicker(chosen),
    el("button", { type: "submit", id: "create-user" }, "Tạo tài khoản"), " ",
    el("button", { type: "button", class: "ghost", onclick: () => result.replaceChildren() }, "Thôi"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const made = await send("POST", "/users", {
        username: form.querySelector("#new-username").value.trim(),
        full_name: form.querySelector("#new-full-name").value.trim(),
        phone: form.querySelector("#new-phone").value.trim(),
        role: form.querySelector("#new-role").value,
        area_ids: [...chosen.keys()],
      });
      await team();
      oneTime(document.getElementById("team-result"), made);
    } catch (e) {
      form.append(message(e.message, "error"));
    }
  });
  result.replaceChildren(form);
}

function assignAreas(u, result) {
  const chosen = new Map(u.area_ids.map((id) => [id, areaNames.get(id) || id]));
  const form = el("form", { class: "card", id: "areas-form" },
    el("h3", {}, `Địa bàn của ${u.full_name || u.username}`), areaPicker(chosen),
    el("button", { type: "submit" }, "Lưu địa bàn"), " ",
    el("button", { type: "button", class: "ghost", onclick: () => result.replaceChildren() }, "Thôi"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      await send("PUT", `/users/${u.id}/areas`, { area_ids: [...chosen.keys()] });
      await team();
    } catch (e) {
      form.append(message(e.message, "error"));
    }
  });
  result.replaceChildren(form);
}

// ---- accounts from a spreadsheet ----

function importAccounts() {
  const file = el("input", { type: "file", id: "accounts-file", accept: ".csv,.xlsx,text/csv" });
  const out = el("div", { id: "accounts-report" });
  const run = async (dry) => {
    if (!file.files.length) return out.replaceChildren(message("Chọn tệp CSV hoặc Excel trước.", "error"));
    out.replaceChildren(message("Đang kiểm tra…"));
    try {
      const report = await upload(`/users/import?dry_run=${dry}`, file.files[0]);
      if (dry) {
        out.replaceChildren(message(`Tệp hợp lệ: ${num(report.accounts.length)} tài khoản sẽ được tạo.`),
          accountsTable(report.accounts),
          el("button", { type: "button", id: "accounts-apply", onclick: () => run(false) }, `Tạo ${num(report.accounts.length)} tài khoản`));
      } else {
        out.replaceChildren(message(`Đã tạo ${num(report.accounts.length)} tài khoản. Mật khẩu dùng một lần chỉ hiện lần này: hãy in phiếu.`),
          el("button", { type: "button", id: "accounts-print", onclick: () => printSheet(report.accounts) }, "In phiếu"),
          accountsTable(report.accounts, true));
        printSheet(report.accounts, false);
      }
    } catch (e) {
      const errors = e instanceof Refused ? e.problem.report?.errors : null;
      out.replaceChildren(message(errors ? `Tệp có ${num(errors.length)} lỗi: chưa tạo tài khoản nào. Sửa tệp rồi kiểm tra lại.` : e.message, "error"),
        errors ? table(["Dòng", "Cột", "Lỗi"], errors.map((p) => [String(p.line), p.column || "", p.message]), { id: "accounts-errors" }) : "");
    }
  };
  box().replaceChildren(el("div", { class: "card" },
    el("h2", {}, "Tạo tài khoản từ bảng tính"),
    el("p", {}, "Tệp CSV hoặc Excel với các cột: Tên đăng nhập, Họ tên, Vai trò (Cán bộ, Giám sát, Quản trị), Địa bàn (mã đơn vị hoặc \"Xã … / Thôn …\", nhiều địa bàn cách nhau bởi dấu ;), Điện thoại. Cả tệp được kiểm tra trước; có lỗi thì không tạo tài khoản nào."),
    file, " ", el("button", { type: "button", id: "accounts-check", onclick: () => run(true) }, "Kiểm tra"),
    " ", el("button", { type: "button", class: "ghost", onclick: () => team() }, "Quay lại đội"), out));
}

function accountsTable(accounts, withPasswords = false) {
  return table(["Dòng", "Tên đăng nhập", fieldLabel("full_name"), "Vai trò", "Địa bàn", fieldLabel("phone"), ...(withPasswords ? ["Mật khẩu dùng một lần"] : [])],
    accounts.map((a) => [String(a.line), a.username, a.full_name, ROLE[a.role], a.area_names.join(", "), a.phone,
      ...(withPasswords ? [el("code", { class: "otp" }, a.one_time_password)] : [])]), { id: "accounts" });
}

/// The printable sheet: a card per person with their username, one-time password and the
/// field app's address with its QR code (drawn by the server).
async function printSheet(accounts, print = true) {
  const address = `${location.origin}/field/`;
  const svg = await (await call(`/qr.svg?text=${encodeURIComponent(address)}`, true)).blob();
  const qr = URL.createObjectURL(svg);
  let sheet = document.getElementById("sheet");
  if (!sheet) {
    sheet = el("section", { id: "sheet", class: "sheet" });
    document.body.append(sheet);
  }
  sheet.replaceChildren(...accounts.map((a) => el("article", { class: "account-card" },
    el("h3", {}, a.full_name || a.username),
    el("p", {}, "Tên đăng nhập: ", el("b", {}, a.username)),
    el("p", {}, "Mật khẩu dùng một lần: ", el("code", { class: "otp" }, a.one_time_password)),
    el("p", {}, "Ứng dụng: ", el("b", {}, address)),
    el("img", { src: qr, alt: `Mã QR của ${address}`, width: 120, height: 120 }),
    el("p", { class: "muted" }, "Đăng nhập lần đầu, ứng dụng sẽ yêu cầu đặt mật khẩu riêng."))));
  if (print) window.print();
}

// ---- campaigns and targets ----

async function campaigns() {
  const list = (await call("/campaigns")).items;
  const admin = ctx.role === "admin";
  const out = el("div", { id: "campaign-form-box" });
  box().replaceChildren(
    el("div", { class: "card" },
      el("h2", {}, "Chiến dịch"),
      table(["Tên", "Thời gian", "Mẫu số", ""], list.map((c) => el("tr", { "data-id": c.id },
        el("td", { "data-label": "Tên" }, el("b", {}, c.name), c.description ? el("small", {}, ` ${c.description}`) : ""),
        el("td", { "data-label": "Thời gian" }, `${c.starts_on.split("-").reverse().join("/")} – ${c.ends_on.split("-").reverse().join("/")}`),
        el("td", { "data-label": "Mẫu số" }, label("denominator", c.denominator)),
        el("td", {}, admin ? el("button", { type: "button", class: "edit-campaign", onclick: () => campaignForm(out, c) }, "Sửa") : ""))), { id: "campaigns" }),
      admin ? el("button", { type: "button", id: "new-campaign", onclick: () => campaignForm(out) }, "Tạo chiến dịch") : "",
      out),
    ctx.campaign ? await targets() : message("Chưa có chiến dịch nào."));
}

function campaignForm(out, c = null) {
  const input = (id, text, attrs) => el("label", {}, text, el("input", { id, name: id, ...attrs }));
  const form = el("form", { class: "card", id: "campaign-form" },
    el("h3", {}, c ? `Sửa: ${c.name}` : "Chiến dịch mới"),
    input("c-name", "Tên", { required: true, maxlength: 200, value: c?.name ?? "" }),
    input("c-description", "Mô tả", { value: c?.description ?? "" }),
    input("c-starts", "Bắt đầu", { type: "date", required: true, value: c?.starts_on ?? "" }),
    input("c-ends", "Kết thúc", { type: "date", required: true, value: c?.ends_on ?? "" }),
    el("label", {}, "Mẫu số", el("select", { id: "c-denominator" },
      ["registered", "smartphone"].map((d) => el("option", { value: d, selected: c?.denominator === d }, label("denominator", d))))),
    el("button", { type: "submit", id: "save-campaign" }, "Lưu"));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const body = {
      name: form.querySelector("#c-name").value, description: form.querySelector("#c-description").value,
      starts_on: form.querySelector("#c-starts").value, ends_on: form.querySelector("#c-ends").value,
      denominator: form.querySelector("#c-denominator").value,
    };
    try {
      if (c) await send("PATCH", `/campaigns/${c.id}`, body);
      else await send("POST", "/campaigns", body);
      ctx.campaign = await ctx.campaignsChanged();
      await campaigns();
    } catch (e) {
      form.append(message(e.message, "error"));
    }
  });
  out.replaceChildren(form);
}

/// The targets of the area's children (and its own), the inherited one shown where none is
/// set, edited in place.
async function targets() {
  const p = await call(`/reports/progress?campaign=${ctx.campaign}&area=${ctx.area.id}`);
  const kinds = ["rate_registered", "rate_smartphone", "count"];
  const row = (r, own) => {
    const t = r.target;
    const kind = el("select", { class: "t-kind", "aria-label": `Loại chỉ tiêu ${r.name}` },
      kinds.map((k) => el("option", { value: k, selected: (t?.kind ?? "rate_registered") === k }, label("target_kind", k))));
    const value = el("input", { class: "t-value", type: "number", min: "0", step: "any", "aria-label": `Chỉ tiêu ${r.name}`,
      value: t && !r.target_inherited ? t.value : "" });
    const status = el("span", { class: "t-status" });
    const save = async () => {
      try {
        await send("PUT", `/campaigns/${ctx.campaign}/targets/${r.area_id}`, { kind: kind.value, value: Number(value.value) });
        ctx.targetsChanged();
        box().querySelector("#targets-card").replaceWith(await targets());
      } catch (e) {
        status.textContent = e.message;
      }
    };
    const clear = async () => {
      await send("DELETE", `/campaigns/${ctx.campaign}/targets/${r.area_id}`);
      ctx.targetsChanged();
      box().querySelector("#targets-card").replaceWith(await targets());
    };
    return el("tr", { "data-id": r.area_id, class: own ? "own-area" : "" },
      el("td", { "data-label": "Đơn vị" }, r.name),
      el("td", { "data-label": "Chỉ tiêu hiện tại" }, t
        ? `${t.kind === "count" ? num(t.value) : `${num(t.value)}%`} ${label("target_kind", t.kind).toLowerCase()}${r.target_inherited ? " (theo cấp trên)" : ""}`
        : "Chưa có"),
      el("td", { "data-label": "Đặt chỉ tiêu" }, kind, " ", value, " ",
        el("button", { type: "button", class: "t-save", onclick: save }, "Lưu"), " ",
        t && !r.target_inherited ? el("button", { type: "button", class: "ghost t-clear", onclick: clear }, "Bỏ chỉ tiêu riêng") : "",
        status));
  };
  const mine = ctx.role === "admin" || ctx.me.area_ids.includes(ctx.area.id);
  return el("div", { class: "card", id: "targets-card" },
    el("h2", {}, `Chỉ tiêu — ${p.subject.campaign_name} — ${ctx.area.name}`),
    table(["Đơn vị", "Chỉ tiêu hiện tại", "Đặt chỉ tiêu"], [...(mine ? [row(p.area, true)] : []), ...p.children.map((c) => row(c, false))], { id: "targets" }));
}

// ---- conflicts ----

async function conflicts(status = "open") {
  const page = await call(`/conflicts?status=${status}&area=${ctx.area.id}&per_page=100`);
  const select = el("select", { id: "conflict-status", onchange: (ev) => conflicts(ev.target.value) },
    el("option", { value: "open", selected: status === "open" }, "Chưa xử lý"),
    el("option", { value: "resolved", selected: status === "resolved" }, "Đã xử lý"));
  box().replaceChildren(el("div", { class: "card" },
    el("h2", {}, `Xung đột — ${ctx.area.name}`),
    el("p", {}, select, ` ${num(page.total)} xung đột.`),
    table(["Hộ", "Trường", "Giá trị đang giữ", "Giá trị bị thay", "Ai, khi nào", status === "open" ? "Xử lý" : "Cách xử lý"],
      page.items.map(conflictRow), { id: "conflicts" })));
}

function conflictRow(c) {
  const tr = el("tr", { "data-id": c.id });
  const note = el("p", { class: "error", role: "alert" });
  const resolve = async (action, value) => {
    try {
      await send("POST", `/conflicts/${c.id}/resolve`, value === undefined ? { action } : { action, value }, { "if-match": c.etag });
      await conflicts("open");
    } catch (e) {
      if (e instanceof Refused && e.status === 412 && e.problem.conflict) {
        const now = conflictRow(e.problem.conflict);
        now.querySelector(".changed").textContent = "Xung đột này đã thay đổi trong lúc bạn xem: đây là trạng thái mới.";
        tr.replaceWith(now);
      } else {
        note.textContent = e.message;
      }
    }
  };
  const typed = el("input", { class: "c-value", "aria-label": "Giá trị khác" });
  const open = c.status === "open";
  const kept = open && c.field !== "*" ? c.current_value : c.kept_value;
  tr.append(
    el("td", { "data-label": "Hộ" }, c.household_head || "(đã ẩn danh)", el("small", {}, ` ${c.household_address || ""}`)),
    el("td", { "data-label": "Trường" }, fieldName(c.field)),
    el("td", { "data-label": "Giá trị đang giữ", class: "kept" }, valueText(c.field, kept)),
    el("td", { "data-label": "Giá trị bị thay", class: "lost" }, valueText(c.field, c.lost_value)),
    el("td", { "data-label": "Ai, khi nào" }, `${c.lost_by_name || `thiết bị ${String(c.lost_by).slice(0, 8)}`}, ${when(c.created_at)}`),
    el("td", { "data-label": "Xử lý" }, open
      ? [el("button", { type: "button", class: "keep", onclick: () => resolve("keep") }, "Giữ"), " ",
        c.field !== "*" ? [el("button", { type: "button", class: "take", onclick: () => resolve("take_other") }, "Lấy giá trị bị thay"), " ",
          typed, el("button", { type: "button", class: "set", onclick: () => resolve("set", typed.value) }, "Đặt giá trị này")] : ""]
      : `${label("resolution", c.resolution)}${c.resolved_value !== null && c.resolved_value !== undefined ? `: ${valueText(c.field, c.resolved_value)}` : ""} (${when(c.resolved_at)})`,
    el("p", { class: "changed note" }), note));
  return tr;
}

// ---- possible duplicates ----

async function duplicates(status = "open") {
  const page = await call(`/duplicates?status=${status}&area=${ctx.area.id}&per_page=50`);
  const select = el("select", { id: "duplicate-status", onchange: (ev) => duplicates(ev.target.value) },
    ["open", "dismissed", "merged"].map((s) => el("option", { value: s, selected: status === s }, label("duplicate_status", s))));
  box().replaceChildren(el("div", { class: "card" },
    el("h2", {}, `Hộ có thể trùng — ${ctx.area.name}`),
    el("p", {}, select, ` ${num(page.total)} cặp.`),
    el("div", { id: "duplicates" }, page.items.map(duplicatePair))));
}

function side(h) {
  return el("div", { class: "side", "data-id": h.id },
    el("h3", {}, h.head_name || "(đã ẩn danh)"),
    el("p", {}, `${h.address} · ${h.village}`, h.phone ? ` · ${h.phone}` : "", h.external_id ? ` · Mã hộ ${h.external_id}` : ""),
    el("p", { class: "muted" }, `Đăng ký bởi ${h.created_by}, ${when(h.created_at)} · ${num(h.visits)} lần thăm`),
    el("ul", {}, h.members.map((m) => el("li", {}, m.full_name, m.birth_year ? ` (${m.birth_year})` : "", m.phone ? ` · ${m.phone}` : "",
      h.statuses.filter((s) => s.member_id === m.id).map((s) => ` · ${label("adoption_status", s.status)}`)))));
}

function duplicatePair(p) {
  const reason = el("input", { class: "d-reason", placeholder: "Lý do (không bắt buộc)", "aria-label": "Lý do" });
  const note = el("p", { class: "error", role: "alert" });
  const dismiss = async () => {
    try {
      await send("POST", `/duplicates/${p.id}/dismiss`, { reason: reason.value.trim() });
      await duplicates("open");
    } catch (e) {
      note.textContent = e.message;
    }
  };
  const ask = el("div", { class: "merge-ask" });
  const merge = async (keep) => {
    try {
      await send("POST", `/duplicates/${p.id}/merge`, { keep: keep.id });
      await duplicates("open");
    } catch (e) {
      note.textContent = e.message;
    }
  };
  const askMerge = (keep) => {
    const other = p.households.find((h) => h.id !== keep.id);
    ask.replaceChildren(el("div", { class: "card warn" },
      el("p", {}, `Gộp hộ ${other.head_name} (${other.address}) vào hộ ${keep.head_name} (${keep.address})? Thành viên, lượt thăm và trạng thái được chuyển sang hộ giữ lại; giá trị khác nhau được ghi thành xung đột để xem lại. Thay đổi còn chờ trên điện thoại sẽ được áp dụng vào hộ giữ lại.`),
      el("button", { type: "button", class: "d-merge", onclick: () => merge(keep) }, "Gộp"), " ",
      el("button", { type: "button", class: "ghost", onclick: () => ask.replaceChildren() }, "Thôi")));
  };
  const keepers = p.status === "open"
    ? el("p", {}, p.households.map((h) => [el("button", { type: "button", class: "d-keep", "data-keep": h.id, onclick: () => askMerge(h) },
      `Giữ hộ ${h.head_name || ""} (${h.address}), gộp hộ kia vào`), " "]))
    : "";
  return el("article", { class: "pair", "data-id": p.id },
    el("p", {}, el("b", {}, label("duplicate_rule", p.rule)), ` · phát hiện ${when(p.created_at)}`,
      p.reason ? ` · ${p.reason}` : "", p.kept_id ? " · đã gộp" : ""),
    el("div", { class: "sides" }, p.households.map(side)),
    keepers, ask,
    p.status === "open" ? el("p", {}, reason, " ", el("button", { type: "button", class: "d-dismiss", onclick: dismiss }, "Không trùng")) : "",
    note);
}

// ---- coverage ----

async function coverage(sort = { key: null, down: false }) {
  if (!ctx.campaign) return box().replaceChildren(message("Chưa có chiến dịch nào."));
  const c = await call(`/reports/coverage?campaign=${ctx.campaign}&area=${ctx.area.id}`);
  const columns = [
    [fieldLabel("village"), (r) => r.name], [fieldLabel("commune"), (r) => r.commune], ["Cán bộ phụ trách", (r) => r.canvassers.map((x) => x.username).join(",")],
    ["Số hộ", (r) => r.households], ["Đã thăm", (r) => r.households_visited],
    ["Lần thăm gần nhất", (r) => r.last_visit_at || ""], ["Thay đổi chờ gửi", (r) => r.pending_changes ?? -1],
    ["Điện thoại gặp sự cố", (r) => r.phones_in_trouble.length],
  ];
  const rows = [...c.rows];
  if (sort.key !== null) {
    const f = columns[sort.key][1];
    rows.sort((a, b) => (f(a) < f(b) ? -1 : f(a) > f(b) ? 1 : 0) * (sort.down ? -1 : 1));
  }
  const header = columns.map(([h], i) => el("button", { type: "button", class: "sort", "data-column": i,
    onclick: () => coverage({ key: i, down: sort.key === i ? !sort.down : false }) },
  h, sort.key === i ? (sort.down ? " ▼" : " ▲") : ""));
  const nobody = c.rows.filter((r) => !r.canvassers.length).length;
  const quiet = c.rows.filter((r) => r.canvassers.some((x) => x.last_sync_at && silent(x.last_sync_at))).length;
  box().replaceChildren(el("div", { class: "card" },
    el("h2", {}, `Ai phụ trách thôn nào — ${ctx.area.name}`),
    el("p", {}, `${num(c.rows.length)} thôn; `, el("b", { class: "uncovered-count" }, `${num(nobody)} thôn chưa có ai phụ trách`),
      `; ${num(quiet)} thôn có điện thoại không đồng bộ quá 2 ngày.`),
    el("table", { id: "coverage" },
      el("thead", {}, el("tr", {}, header.map((h) => el("th", {}, h)))),
      el("tbody", {}, rows.map((r) => el("tr", { "data-id": r.area_id, class: r.canvassers.length ? "" : "uncovered" },
        el("td", { "data-label": fieldLabel("village") }, r.name),
        el("td", { "data-label": fieldLabel("commune") }, r.commune),
        el("td", { "data-label": "Cán bộ phụ trách" }, r.canvassers.length
          ? r.canvassers.map((x) => el("div", { class: !x.last_sync_at ? "canvasser never" : silent(x.last_sync_at) ? "canvasser silent" : "canvasser" },
            `${x.full_name || x.username} (${x.username}) · ${x.last_sync_at ? `đồng bộ ${when(x.last_sync_at)}` : "chưa đồng bộ lần nào"}`))
          : el("b", {}, "Chưa có ai phụ trách")),
        el("td", { "data-label": "Số hộ" }, num(r.households)),
        el("td", { "data-label": "Đã thăm" }, num(r.households_visited)),
        el("td", { "data-label": "Lần thăm gần nhất" }, when(r.last_visit_at)),
        el("td", { "data-label": "Thay đổi chờ gửi", class: r.pending_changes ? "waiting" : "" },
          r.pending_changes === null ? "—" : `${num(r.pending_changes)}${r.oldest_pending_at ? ` (từ ${when(r.oldest_pending_at)})` : ""}`),
        el("td", { "data-label": "Điện thoại gặp sự cố" }, r.phones_in_trouble.map((p) => el("div", { class: "phone trouble", "data-device": p.device_id },
          `${p.username}: ${trouble(p)}`))))))),
    el("p", { class: "exports" }, "Xuất: ",
      el("button", { type: "button", onclick: () => download(`/reports/coverage.csv?campaign=${ctx.campaign}&area=${ctx.area.id}`) }, "CSV"), " ",
      el("button", { type: "button", onclick: () => download(`/reports/coverage.xlsx?campaign=${ctx.campaign}&area=${ctx.area.id}`) }, "Excel"))));
}

// ---- the audit trail ----

async function audit(filter = { page: 1 }) {
  const q = new URLSearchParams({ area: ctx.area.id, per_page: "50", page: String(filter.page || 1) });
  if (ctx.role === "admin" && filter.all) q.delete("area");
  for (const k of ["action", "actor"]) if (filter[k]) q.set(k, filter[k]);
  if (filter.from) q.set("from", new Date(`${filter.from}T00:00:00+07:00`).toISOString());
  if (filter.to) q.set("to", new Date(new Date(`${filter.to}T00:00:00+07:00`).getTime() + 86400000).toISOString());
  const page = await call(`/audit?${q}`);
  const action = el("select", { id: "audit-action" }, el("option", { value: "" }, "Mọi hành động"),
    Object.entries(ACTIONS).map(([k, v]) => el("option", { value: k, selected: filter.action === k }, v)));
  const actor = el("input", { id: "audit-actor", placeholder: "Người thực hiện", value: filter.actor || "" });
  const from = el("input", { id: "audit-from", type: "date", value: filter.from || "" });
  const to = el("input", { id: "audit-to", type: "date", value: filter.to || "" });
  const all = ctx.role === "admin" ? el("label", {}, el("input", { type: "checkbox", id: "audit-all", checked: Boolean(filter.all) }), " Mọi địa bàn") : "";
  const read = (p = 1) => ({ page: p, action: action.value, actor: actor.value.trim(), from: from.value, to: to.value, all: all && all.querySelector("input").checked });
  const pages = Math.max(1, Math.ceil(page.total / 50));
  box().replaceChildren(el("div", { class: "card" },
    el("h2", {}, "Nhật ký hoạt động"),
    el("div", { class: "toolbar" }, action, actor, el("label", {}, "Từ ", from), el("label", {}, "Đến ", to), all,
      el("button", { type: "button", id: "audit-filter", onclick: () => audit(read()) }, "Lọc"),
      el("button", { type: "button", onclick: () => download(`/audit.csv?${q}`) }, "Xuất CSV")),
    el("p", {}, `${num(page.total)} mục · trang ${filter.page || 1}/${pages} `,
      (filter.page || 1) > 1 ? el("button", { type: "button", onclick: () => audit(read((filter.page || 1) - 1)) }, "‹ Trang trước") : "",
      (filter.page || 1) < pages ? el("button", { type: "button", onclick: () => audit(read((filter.page || 1) + 1)) }, "Trang sau ›") : ""),
    table(["Thời điểm", "Hành động", "Người thực hiện", "Đối tượng", "Chi tiết", "Địa chỉ IP"],
      page.items.map((e) => [when(e.at), ACTIONS[e.action] || e.action, e.actor, e.subject, e.detail === "{}" ? "" : e.detail, e.address || ""]),
      { id: "audit" })));
}

// ---- the household register ----

async function register() {
  const commune = el("input", { id: "register-commune", placeholder: "Mã hoặc tên xã", value: ctx.area.level === "commune" ? ctx.area.name : "" });
  const file = el("input", { type: "file", id: "register-file", accept: ".csv,.xlsx,text/csv" });
  const out = el("div", { id: "register-report" });
  const counts = (c) => `${num(c.create)} mới, ${num(c.update)} thay đổi, ${num(c.unchanged)} không đổi, ${num(c.matched)} ghép với hộ đã có`;
  const problems = (list, id) => table(["Dòng", "Cột", "Mã", "Nội dung"], list.map((p) => [String(p.line), p.column || "", p.code, p.message]), { id });
  const run = async (dry) => {
    if (!file.files.length) return out.replaceChildren(message("Chọn tệp sổ hộ (CSV hoặc Excel) trước.", "error"));
    const q = new URLSearchParams({ dry_run: String(dry) });
    if (commune.value.trim()) q.set("commune", commune.value.trim());
    out.replaceChildren(message(dry ? "Đang kiểm tra…" : "Đang nhập…"));
    try {
      const r = await upload(`/households/import?${q}`, file.files[0]);
      out.replaceChildren(
        message(`${dry ? "Kiểm tra xong" : "Đã nhập"}${r.commune ? ` (${r.commune.name})` : ""}: hộ ${counts(r.households)}; nhân khẩu ${counts(r.persons)}.`),
        r.warnings.length ? [el("h3", {}, `Cảnh báo (${num(r.warnings.length)})`), problems(r.warnings, "register-warnings")] : "",
        dry ? el("button", { type: "button", id: "register-apply", onclick: () => run(false) }, "Nhập vào hệ thống") : "");
    } catch (e) {
      const r = e instanceof Refused ? e.problem.report : null;
      out.replaceChildren(message(r ? `Tệp có ${num(r.errors.length)} lỗi: chưa ghi gì. Sửa tệp rồi kiểm tra lại.` : e.message, "error"),
        r ? [problems(r.errors, "register-errors"), r.warnings.length ? [el("h3", {}, "Cảnh báo"), problems(r.warnings, "register-warnings")] : ""] : "");
    }
  };
  box().replaceChildren(el("div", { class: "card" },
    el("h2", {}, "Nhập sổ hộ của xã"),
    el("p", {}, "Tệp CSV hoặc Excel, mỗi dòng một nhân khẩu, các dòng cùng Mã hộ là một hộ. Cả tệp được kiểm tra trước khi ghi; nhập lại cùng tệp không tạo hộ trùng. ",
      el("button", { type: "button", class: "ghost", onclick: () => download(`/households/import/template.xlsx${commune.value.trim() ? `?commune=${encodeURIComponent(commune.value.trim())}` : ""}`) }, "Tải tệp mẫu")),
    el("label", {}, "Xã ", commune), " ", file, " ",
    el("button", { type: "button", id: "register-check", onclick: () => run(true) }, "Kiểm tra"), out));
}

const SCREENS = {
  team: () => team(),
  campaigns,
  conflicts: () => conflicts(),
  duplicates: () => duplicates(),
  coverage: () => coverage(),
  audit: () => audit(),
  register,
};
