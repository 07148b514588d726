// The field app's sync engine: no DOM. It keeps the device's copy of its scope, queues
// every edit as a numbered operation in the same storage transaction as the edit, and
// pushes and pulls exactly as docs/SYNC.md says. Storage and fetch are passed in: IndexedDB
// and the browser's fetch in the app, memory and Node's fetch in the tests.

import { searchKey } from "./text.js";
import { expandUnits } from "./units.js";

/// Ops per push (the server takes up to 500) and bytes per push (it takes up to 4 MiB).
const BATCH_OPS = 100;
const BATCH_BYTES = 1 << 20;
/// Households per page of a first download (in the compact form), log rows per page after.
const PULL_LIMIT = 1000;

/// The network could not be reached: nothing was lost, try again later.
export class OfflineError extends Error {}
/// The session ended (revoked, expired, reused refresh token): log in again; the queue stays.
export class LoginNeeded extends Error {}
/// The server answered with an error problem.
export class ServerError extends Error {
  constructor(status, problem) {
    super(problem?.detail || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }
}

/// The merges the phone remembers (the latest), so that a page of a merged household still
/// opens its survivor.
const MERGES_KEPT = 50;

/// The errors the phone reports: at most this many, none older than a week.
const ERRORS_KEPT = 5;
const ERRORS_KEPT_MS = 7 * 24 * 3600 * 1000;

/// An error as the server takes it: lowercase letters, digits and `_ . : -`, up to 60.
export const errorCode = (text) => String(text).toLowerCase().replace(/[^a-z0-9_.:-]+/g, "_").slice(0, 60) || "unknown";

/// The code of an error a sync met: the HTTP status and the problem's code.
const syncErrorCode = (e) => (e?.status ? `http_${e.status}${e.problem?.code ? `:${e.problem.code}` : ""}` : `client:${e?.name || "error"}`);

/// Whether an error a sync met is trouble to report: not no signal, not the server out of
/// reach or busy (502–504), not an expired login; a server error (500) is.
const isTrouble = (e) => !(e instanceof LoginNeeded) && (!(e instanceof OfflineError) || e.status === 500);

/// The key of a change, or of an entity of the copy, in the copy.
export const entityKey = (c) =>
  c.entity === "adoption" ? `adoption/${c.id}/${c.data?.campaign_id ?? c.campaign_id}` : `${c.entity}/${c.id}`;

/// Hybrid logical clock stamp: wall milliseconds and a counter for stamps in the same ms.
export function nextHlc(last, nowMs) {
  const ms = Math.max(nowMs, last?.ms ?? 0);
  const c = last && ms === last.ms ? last.c + 1 : 0;
  return { ms, c, text: `${new Date(ms).toISOString()}-${String(c).padStart(4, "0")}` };
}

/// A household as the screens read it: its fields, its members and its visits (latest
/// first).
function assemble(h, members, visits) {
  const sorted = visits.length > 1 ? [...visits].sort((a, b) => String(b.visited_at).localeCompare(String(a.visited_at))) : [...visits];
  return { ...h, members, visits: sorted };
}

const KEYS_OF = new WeakMap();

/// The keys a household of the view is searched by: its head's name and address, and each
/// member's name, folded. Worked out when first asked for, not when the view is made, so
/// that opening the app does not wait for 25,000 names to be folded; the app asks for them
/// in the background after the list shows.
export function keysOf(h) {
  let keys = KEYS_OF.get(h);
  if (!keys) {
    keys = [searchKey(`${h.head_name ?? ""} ${h.address ?? ""}`), ...h.members.map((m) => searchKey(m.full_name))];
    KEYS_OF.set(h, keys);
  }
  return keys;
}

/// The campaigns the app works with on `today` (`YYYY-MM-DD`): those running, or every one
/// while none runs.
export function workedCampaigns(campaigns, today) {
  const running = campaigns.filter((c) => c.starts_on <= today && today <= c.ends_on);
  return running.length ? running : campaigns;
}

/// The ids of the campaigns that ended before `today` and that the app no longer works with
/// (another runs); none while no campaign runs.
export function finishedCampaigns(campaigns, today) {
  const worked = new Set(workedCampaigns(campaigns, today));
  return new Set(campaigns.filter((c) => c.ends_on < today && !worked.has(c)).map((c) => c.id));
}

export class Engine {
  /// Opens the engine over a store ({load, commit, clear}) and a fetch function.
  static async open(store, { fetch, base = "", now = () => Date.now(), uuid = () => crypto.randomUUID(), version = "unknown",
    storage = async () => null } = {}) {
    const e = new Engine(store, fetch, base, now, uuid);
    e.version = version;
    e.storage = storage;
    const { meta, entities, ops } = await store.load();
    e.meta = meta;
    e.entities = entities;
    e.ops = ops;
    return e;
  }

  constructor(store, fetch, base, now, uuid) {
    this.store = store;
    this.fetch = fetch;
    this.base = base;
    this.now = now;
    this.uuid = uuid;
    this.meta = {};
    this.entities = new Map();
    this.ops = new Map();
    this.listeners = new Set();
    this.syncing = null;
    this.viewCache = null;
  }

  onChange(f) {
    this.listeners.add(f);
    return () => this.listeners.delete(f);
  }

  changed() {
    this.viewCache = null;
    for (const f of this.listeners) f(this);
  }

  // ---- session ----

  get user() {
    return this.meta.user || null;
  }

  get loggedIn() {
    return Boolean(this.meta.user && this.meta.refresh_token && !this.meta.login_needed);
  }

  /// Logged in with a one-time password: the user must set their own before anything else.
  get mustChangePassword() {
    return Boolean(this.meta.must_change_password);
  }

  /// Sets the user's own password (online), in place of the one they logged in with.
  async changePassword(current, next) {
    const r = await this.api("POST", "/api/v1/auth/password", { current, new: next });
    if (r.status !== 204) throw new ServerError(r.status, r.body);
    await this.commit({ meta: { must_change_password: false } });
  }

  /// Logs in (online). A device keeps its id and its queue across logins of the same user;
  /// another user may take it over only once its queue is empty.
  async login(username, password) {
    const r = await this.request("POST", "/api/v1/auth/login", { username, password }, false);
    if (r.status !== 200) throw new ServerError(r.status, r.body);
    const t = r.body;
    const same = this.meta.user && this.meta.user.id === t.user_id;
    if (!same && this.meta.user && this.pendingCount() > 0) {
      throw new ServerError(409, {
        code: "queue_of_another_user",
        detail: `Thiết bị còn ${this.pendingCount()} thay đổi chưa gửi của tài khoản ${this.meta.user.username}.`,
      });
    }
    const meta = {
      access_token: t.access_token,
      refresh_token: t.refresh_token,
      user: { id: t.user_id, username: username.trim().toLowerCase(), role: t.role },
      login_needed: false,
      must_change_password: Boolean(t.must_change_password),
    };
    if (!same) {
      // A new user on this device: a new device id, an empty copy.
      Object.assign(meta, {
        device_id: this.uuid(), next_seq: 1, cursor: null, seen: {}, hlc: null,
        inflight: null, rejections: [], notices: [], merges: [], reference: null, last_sync: null,
      });
      await this.store.clear();
      this.entities = new Map();
      this.ops = new Map();
      this.meta = {};
    }
    await this.commit({ meta });
    return this.user;
  }

  /// Ends the session here. With changes still waiting it refuses unless `force`: they
  /// would be lost with the device's data.
  async logout(force = false) {
    if (this.pendingCount() > 0 && !force) {
      throw new ServerError(409, { code: "pending_changes", detail: "Còn thay đổi chưa gửi." });
    }
    const refresh = this.meta.refresh_token;
    if (refresh) {
      try {
        await this.request("POST", "/api/v1/auth/logout", { refresh_token: refresh }, false);
      } catch (_) {
        // Offline: the session simply ends on the server when it expires.
      }
    }
    await this.store.clear();
    this.meta = {};
    this.entities = new Map();
    this.ops = new Map();
    this.changed();
  }

  // ---- HTTP ----

  async request(method, path, body, auth = true) {
    const headers = { accept: "application/json" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (auth) headers.authorization = `Bearer ${this.meta.access_token}`;
    let res;
    try {
      res = await this.fetch(`${this.base}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new OfflineError(String(e?.message || e));
    }
    let parsed = null;
    if (res.status === 204) return { status: 204, body: null };
    try {
      parsed = await res.json();
    } catch (_) {
      // An answer cut short: as good as none.
      if (res.ok) throw new OfflineError("incomplete answer");
    }
    return { status: res.status, body: parsed };
  }

  /// An authenticated call: an expired access token is refreshed once, then the call is
  /// made again; a session that cannot be refreshed needs a new login.
  async api(method, path, body) {
    if (!this.meta.refresh_token || this.meta.login_needed) throw new LoginNeeded("no session");
    let r = await this.request(method, path, body);
    if (r.status === 401) {
      await this.refresh();
      r = await this.request(method, path, body);
      if (r.status === 401) await this.needLogin();
    }
    // The server out of reach or failing: tried again like no signal (its status kept, so
    // that a server error, 500, is reported as trouble).
    if (r.status >= 500) throw Object.assign(new OfflineError(r.body?.detail || `HTTP ${r.status}`), { status: r.status, problem: r.body });
    return r;
  }

  async refresh() {
    const r = await this.request(
      "POST", "/api/v1/auth/refresh", { refresh_token: this.meta.refresh_token }, false,
    );
    if (r.status === 200) {
      await this.commit({ meta: { access_token: r.body.access_token, refresh_token: r.body.refresh_token } });
      return;
    }
    if (r.status >= 500) throw new OfflineError(`HTTP ${r.status}`);
    await this.needLogin();
  }

  async needLogin() {
    await this.commit({ meta: { login_needed: true, access_token: null } });
    throw new LoginNeeded("the session has ended");
  }

  // ---- storage ----

  /// Writes a change set in one storage transaction, then takes it into memory.
  async commit({ meta = {}, put = [], del = [], ops = [], dropOps = [], clearEntities = false }) {
    await this.store.commit({ meta, put, del, ops, dropOps, clearEntities });
    Object.assign(this.meta, meta);
    if (clearEntities || del.length || put.length) this.baseCache = null;
    if (clearEntities) this.entities.clear();
    for (const k of del) this.entities.delete(k);
    for (const [k, v] of put) this.entities.set(k, v);
    for (const op of ops) this.ops.set(op.seq, op);
    for (const s of dropOps) this.ops.delete(s);
    this.changed();
  }

  // ---- local edits: each is one op, queued with its clock in one transaction ----

  async queue(type, entityId, householdId, data) {
    const hlc = nextHlc(this.meta.hlc, this.now());
    const seq = this.meta.next_seq || 1;
    const op = {
      seq,
      op_id: this.uuid(),
      type,
      entity_id: entityId,
      household_id: householdId,
      base_version: (this.meta.seen || {})[householdId] || 0,
      hlc: hlc.text,
      data,
      state: "pending",
      made_at: new Date(this.now()).toISOString(),
    };
    await this.commit({ meta: { next_seq: seq + 1, hlc: { ms: hlc.ms, c: hlc.c } }, ops: [op] });
    return op;
  }

  async createHousehold(fields) {
    const id = this.uuid();
    await this.queue("household.upsert", id, id, fields);
    return id;
  }

  updateHousehold(id, changed) {
    return this.queue("household.upsert", id, id, changed);
  }

  deleteHousehold(id) {
    return this.queue("household.delete", id, id, {});
  }

  async createMember(householdId, fields) {
    const id = this.uuid();
    await this.queue("member.upsert", id, householdId, fields);
    return id;
  }

  updateMember(id, changed) {
    return this.queue("member.upsert", id, this.memberHousehold(id), changed);
  }

  deleteMember(id) {
    return this.queue("member.delete", id, this.memberHousehold(id), {});
  }

  setAdoption(memberId, campaignId, status) {
    return this.queue("adoption.set", memberId, this.memberHousehold(memberId), {
      campaign_id: campaignId,
      status,
    });
  }

  async recordVisit(householdId, fields) {
    const id = this.uuid();
    await this.queue("visit.record", id, householdId, fields);
    return id;
  }

  memberHousehold(id) {
    const m = this.view().members.get(id);
    if (!m) throw new Error(`no member ${id}`);
    return m.household_id;
  }

  // ---- what the user sees: the pulled copy with the device's own ops on top ----

  /// Ops not yet in a pull: pending, or answered (applied, merged) before a pull brought
  /// their effects.
  overlay() {
    return [...this.ops.values()].sort((a, b) => a.seq - b.seq);
  }

  pendingCount() {
    let n = 0;
    for (const op of this.ops.values()) if (op.state === "pending") n += 1;
    return n;
  }

  /// When the oldest change still waiting was made (ISO), or null.
  oldestPending() {
    let oldest = null;
    for (const op of this.ops.values()) {
      if (op.state === "pending" && op.made_at && (!oldest || op.made_at < oldest)) oldest = op.made_at;
    }
    return oldest;
  }

  /// Tells the server this app's version and what waits on the phone, so that the console
  /// sees a phone that cannot send. Answers whether the server took it; a sync goes on
  /// either way.
  /// Tells the server how the phone is: its version, what waits, its storage, its last
  /// errors (codes only: nothing personal). Answers whether the server took it.
  async report() {
    const pending = this.pendingCount();
    const room = await this.storage().catch(() => null);
    const bytes = (n) => (Number.isFinite(n) && n >= 0 ? Math.min(Math.round(n), 1e15) : null);
    const r = await this.api("POST", "/api/v1/sync/report", {
      device_id: this.meta.device_id,
      app_version: String(this.version || "unknown").slice(0, 40),
      pending_changes: pending,
      oldest_pending_at: pending ? this.oldestPending() : null,
      storage_used_bytes: room ? bytes(room.usage) : null,
      storage_free_bytes: room ? bytes(room.quota - room.usage) : null,
      last_errors: this.lastErrors(),
    });
    return r.status === 200;
  }

  /// The errors the phone keeps to report: the last five of the past week.
  lastErrors() {
    const since = new Date(this.now() - ERRORS_KEPT_MS).toISOString();
    return (this.meta.errors || []).filter((e) => e.at >= since).slice(-ERRORS_KEPT);
  }

  /// Remembers an error to report, as a code. Kept in memory even when the phone cannot
  /// store it (its storage full is one such error).
  async noteError(code) {
    const errors = [...this.lastErrors(), { at: new Date(this.now()).toISOString(), code: errorCode(code) }].slice(-ERRORS_KEPT);
    this.meta.errors = errors;
    await this.commit({ meta: { errors } }).catch(() => {});
  }

  /// The pulled copy as the screens read it: households with their members, visits and
  /// search keys. Made again only when a pull changed the copy.
  baseView() {
    if (this.baseCache && this.baseOf === this.entities) return this.baseCache;
    const raw = new Map();
    const members = new Map();
    const adoptions = new Map(); // `${member}/${campaign}` -> status
    const visits = new Map();
    for (const e of this.entities.values()) {
      if (e.entity === "household") raw.set(e.id, { id: e.id, version: e.version, ...e.data });
      else if (e.entity === "member") members.set(e.id, { id: e.id, ...e.data });
      else if (e.entity === "adoption") adoptions.set(`${e.id}/${e.data.campaign_id}`, e.data.status);
      else if (e.entity === "visit") visits.set(e.id, { id: e.id, ...e.data });
    }
    const households = new Map();
    const membersOf = new Map(); // household id -> its members' ids
    const visitsOf = new Map();
    const order = new Map(); // member id -> its place in the copy, by which members are listed
    for (const m of members.values()) {
      order.set(m.id, order.size);
      if (!membersOf.has(m.household_id)) membersOf.set(m.household_id, []);
      membersOf.get(m.household_id).push(m.id);
    }
    for (const v of visits.values()) {
      if (!visitsOf.has(v.household_id)) visitsOf.set(v.household_id, []);
      visitsOf.get(v.household_id).push(v);
    }
    for (const h of raw.values()) {
      households.set(h.id, assemble(h, (membersOf.get(h.id) || []).map((id) => members.get(id)), visitsOf.get(h.id) || []));
    }
    this.baseCache = { raw, households, members, adoptions, membersOf, visitsOf, order, visitIds: new Set(visits.keys()) };
    this.baseOf = this.entities;
    return this.baseCache;
  }

  /// What the user sees: the pulled copy with the device's own ops on top, in seq order. Only
  /// the households those ops touch are made again; the others are the copy's.
  view() {
    if (this.viewCache) return this.viewCache;
    const base = this.baseView();
    const ops = this.overlay();
    if (!ops.length) {
      this.viewCache = { households: base.households, members: base.members, adoptions: base.adoptions };
      return this.viewCache;
    }
    const raw = new Map(); // touched households' own fields, or null once deleted
    // The copy's maps are copied only when an op changes them.
    const has = (prefix) => ops.some((o) => o.type.startsWith(prefix));
    const members = has("member.") ? new Map(base.members) : base.members;
    const adoptions = has("adoption.") ? new Map(base.adoptions) : base.adoptions;
    const touched = new Set();
    const joined = new Map(); // household id -> members the ops added or moved to it
    const newVisits = new Map(); // household id -> visits the ops recorded
    const added = new Map(); // member id -> its place among the members the ops created
    const recorded = new Set(); // the visits the ops recorded
    const rawOf = (id) => (raw.has(id) ? raw.get(id) : base.raw.get(id));
    for (const op of ops) {
      const d = op.data || {};
      switch (op.type) {
        case "household.upsert":
          raw.set(op.entity_id, { ...(rawOf(op.entity_id) || { id: op.entity_id }), ...d });
          touched.add(op.entity_id);
          break;
        case "household.delete":
          raw.set(op.entity_id, null);
          touched.add(op.entity_id);
          break;
        case "member.upsert": {
          const before = members.get(op.entity_id);
          if (!before && !base.order.has(op.entity_id) && !added.has(op.entity_id)) added.set(op.entity_id, added.size);
          const m = { ...(before || { id: op.entity_id, household_id: op.household_id }), ...d };
          members.set(op.entity_id, m);
          touched.add(m.household_id);
          if (before) touched.add(before.household_id);
          if (!before || before.household_id !== m.household_id) {
            if (!joined.has(m.household_id)) joined.set(m.household_id, []);
            joined.get(m.household_id).push(m.id);
          }
          break;
        }
        case "member.delete": {
          const before = members.get(op.entity_id);
          members.delete(op.entity_id);
          if (before) touched.add(before.household_id);
          break;
        }
        case "adoption.set":
          adoptions.set(`${op.entity_id}/${d.campaign_id}`, d.status);
          touched.add(op.household_id);
          break;
        case "visit.record": {
          // A visit is recorded once: an op for one the copy or an earlier op holds adds nothing.
          if (!base.visitIds.has(op.entity_id) && !recorded.has(op.entity_id)) {
            recorded.add(op.entity_id);
            if (!newVisits.has(op.household_id)) newVisits.set(op.household_id, []);
            newVisits.get(op.household_id).push({ id: op.entity_id, household_id: op.household_id, ...d });
          }
          touched.add(op.household_id);
          break;
        }
        default:
      }
    }
    const households = new Map(base.households);
    for (const id of touched) {
      const h = rawOf(id);
      if (!h) {
        households.delete(id);
        continue;
      }
      const ids = new Set([...(base.membersOf.get(id) || []), ...(joined.get(id) || [])]);
      const place = (m) => base.order.get(m.id) ?? base.order.size + added.get(m.id);
      const mine = [...ids].map((m) => members.get(m)).filter((m) => m && m.household_id === id)
        .sort((a, b) => place(a) - place(b));
      households.set(id, assemble(h, mine, [...(base.visitsOf.get(id) || []), ...(newVisits.get(id) || [])]));
    }
    this.viewCache = { households, members, adoptions };
    return this.viewCache;
  }

  adoption(memberId, campaignId) {
    return this.view().adoptions.get(`${memberId}/${campaignId}`) || "not_yet";
  }

  // ---- sync ----

  /// Pushes the queue, then pulls until nothing more waits. One at a time: a second call
  /// while one runs waits for it. Answers how many ops went and how many changes came.
  sync() {
    if (!this.syncing) {
      this.syncing = (async () => {
        try {
          if (this.mustChangePassword) throw new ServerError(403, { code: "password_change_required", detail: "Hãy đặt mật khẩu của bạn trước." });
          // The report goes after the push, with what is still waiting, and also when the
          // push was refused: a phone that cannot send is seen on the console.
          let refused = null;
          let pushed = 0;
          try {
            pushed = await this.push();
          } catch (e) {
            if (e instanceof OfflineError || e instanceof LoginNeeded) throw e;
            refused = e;
          }
          await this.report().catch(() => false);
          if (refused) throw refused;
          const pulled = await this.pull();
          await this.commit({ meta: { last_sync: new Date(this.now()).toISOString(), last_error: null } });
          return { pushed, pulled };
        } catch (e) {
          await this.commit({ meta: { last_error: e instanceof OfflineError ? "offline" : e instanceof LoginNeeded ? "login" : String(e.message) } });
          // No signal and an expired login are a phone's daily life, not trouble.
          if (isTrouble(e)) await this.noteError(syncErrorCode(e));
          throw e;
        } finally {
          this.syncing = null;
        }
      })();
    }
    return this.syncing;
  }

  /// The next batch: the one sent last if it was never answered (resent as it was, never
  /// renumbered), else the first pending ops in seq order, within the limits.
  nextBatch() {
    const pending = this.overlay().filter((o) => o.state === "pending");
    const inflight = this.meta.inflight;
    if (inflight && inflight.length && inflight.every((s) => this.ops.get(s)?.state === "pending")) {
      return inflight.map((s) => this.ops.get(s));
    }
    const out = [];
    let bytes = 0;
    const max = this.meta.batch_ops || BATCH_OPS;
    for (const op of pending) {
      const size = JSON.stringify(wire(op)).length;
      if (out.length >= max || (out.length && bytes + size > BATCH_BYTES)) break;
      out.push(op);
      bytes += size;
    }
    return out;
  }

  /// Sends the queue; answers how many ops the server answered.
  async push() {
    let gaps = 0;
    let sent = 0;
    for (;;) {
      const batch = this.nextBatch();
      if (!batch.length) return sent;
      await this.commit({ meta: { inflight: batch.map((o) => o.seq) } });
      const r = await this.api("POST", "/api/v1/sync/push", {
        device_id: this.meta.device_id,
        ops: batch.map(wire),
      });
      if (r.status === 413) {
        // Smaller batches until one fits; the same ops, the same seqs.
        await this.commit({ meta: { inflight: null, batch_ops: Math.max(1, Math.floor(batch.length / 2)) } });
        if (batch.length === 1) throw new ServerError(413, r.body);
        continue;
      }
      if (r.status !== 200) throw new ServerError(r.status, r.body);
      const seen = { ...(this.meta.seen || {}) };
      const rejections = [...(this.meta.rejections || [])];
      const notices = [...(this.meta.notices || [])];
      const ops = [];
      const dropOps = [];
      let gap = false;
      for (const res of r.body.results) {
        const op = this.ops.get(res.seq);
        if (!op) continue;
        if (res.status === "gap") {
          gap = true;
          break;
        }
        if (res.status === "rejected") {
          dropOps.push(op.seq);
          rejections.push({ seq: op.seq, type: op.type, household_id: op.household_id, data: op.data, error: res.error, at: new Date(this.now()).toISOString() });
          continue;
        }
        if (res.household_version) seen[op.household_id] = Math.max(seen[op.household_id] || 0, res.household_version);
        if (res.status === "merged") {
          notices.push({ seq: op.seq, type: op.type, entity_id: op.entity_id, household_id: op.household_id, data: op.data, conflict_ids: res.conflict_ids });
        }
        ops.push({ ...op, state: res.status, household_version: res.household_version });
      }
      await this.commit({ meta: { seen, rejections, notices, inflight: null, last_seq: r.body.last_seq }, ops, dropOps });
      sent += ops.length + dropOps.length;
      if (gap) {
        // The server wants the ops from last_seq + 1: resend from there if the phone has
        // them (nothing from the gap on was processed); if not, they are lost here, which
        // the user must hear of.
        const next = this.overlay().find((o) => o.state === "pending");
        gaps += 1;
        if (!next || next.seq !== r.body.last_seq + 1 || gaps > 3) {
          throw new ServerError(409, { code: "gap", detail: `Máy chủ chỉ có thay đổi đến số ${r.body.last_seq}; thiếu số ${r.body.last_seq + 1}.` });
        }
      }
    }
  }

  /// Takes the server's changes until none is left; answers how many came.
  /// The next page is asked for while this one is stored, so that the link never waits for
  /// the phone; the cursor is stored only with the page it belongs to.
  async pull() {
    let changes = 0;
    const fetchPage = async (cursor) => {
      const q = new URLSearchParams({ device_id: this.meta.device_id, limit: String(PULL_LIMIT), format: "compact" });
      if (cursor) q.set("cursor", cursor);
      const r = await this.api("GET", `/api/v1/sync/pull?${q}`);
      if (r.status !== 200) throw new ServerError(r.status, r.body);
      return r.body;
    };
    let next = fetchPage(this.meta.cursor);
    for (let round = 0; round < 100000; round += 1) {
      const page = await next;
      next = page.has_more ? fetchPage(page.cursor) : null;
      // Met when it is awaited, after this page is stored.
      next?.catch(() => {});
      if (page.units) page.changes = expandUnits(page.units);
      changes += page.changes.length + (page.reset ? 1 : 0);
      const seen = page.reset ? {} : { ...(this.meta.seen || {}) };
      const put = [];
      const del = [];
      // A delete takes its dependants along (a household its members, adoptions and visits;
      // a member its adoptions).
      const current = page.reset ? new Map() : this.entities;
      const merges = [];
      for (const c of page.changes) {
        const key = entityKey(c);
        if (c.household_id) seen[c.household_id] = Math.max(seen[c.household_id] || 0, c.version || 0);
        if (c.op === "delete") {
          del.push(key);
          // A household a supervisor merged into another: the phone says where it went.
          if (c.entity === "household" && c.merged_into) {
            merges.push({ from: c.id, to: c.merged_into, head_name: current.get(key)?.data?.head_name ?? null,
              at: new Date(this.now()).toISOString() });
          }
          if (c.entity === "household" || c.entity === "member") {
            for (const [k, e] of current) {
              const owned = c.entity === "household" ? e.household_id === c.id : e.entity === "adoption" && e.id === c.id;
              if (owned) del.push(k);
            }
          }
        } else {
          put.push([key, { entity: c.entity, id: c.id, household_id: c.household_id, version: c.version, data: c.data }]);
        }
      }
      const answered = [...this.ops.values()].filter((o) => o.state !== "pending" && o.seq <= (page.last_seq || 0));
      const meta = { seen, cursor: page.cursor, last_seq_pulled: page.last_seq };
      if (merges.length) meta.merges = [...(this.meta.merges || []), ...merges].slice(-MERGES_KEPT);
      if (page.reference) meta.reference = page.reference;
      await this.commit({
        meta,
        put,
        del: del.filter((k) => !put.some(([p]) => p === k)),
        dropOps: answered.map((o) => o.seq),
        clearEntities: Boolean(page.reset),
      });
      if (!page.has_more) {
        await this.dropFinishedVisits();
        return changes;
      }
    }
    return changes;
  }

  /// The campaigns whose visits the phone no longer keeps: those that ended while another
  /// runs (the app offers only running campaigns when there are any; see `finishedCampaigns`).
  finishedCampaigns() {
    return finishedCampaigns(this.meta.reference?.campaigns || [], new Date(this.now()).toISOString().slice(0, 10));
  }

  /// Visits of finished campaigns leave the phone's copy, to spare its storage. Not the
  /// queue: a visit still waiting is sent; not the server, which keeps every visit.
  async dropFinishedVisits() {
    const finished = this.finishedCampaigns();
    if (!finished.size) return;
    const del = [];
    for (const [k, e] of this.entities) {
      if (e.entity === "visit" && finished.has(e.data?.campaign_id)) del.push(k);
    }
    if (del.length) await this.commit({ del });
  }

  /// Forgets a rejection once the user has read it.
  dismissRejection(seq) {
    return this.commit({ meta: { rejections: (this.meta.rejections || []).filter((r) => r.seq !== seq) } });
  }

  /// Forgets the news of a merge once the user has read it (where it went is still known:
  /// `survivorOf`).
  dismissMerge(from) {
    return this.commit({ meta: { merges: (this.meta.merges || []).map((m) => (m.from === from ? { ...m, read: true } : m)) } });
  }

  /// The household that a household merged on the server went into (followed to the last
  /// one), or the household itself.
  survivorOf(id) {
    const merges = this.meta.merges || [];
    let at = id;
    for (let i = 0; i < merges.length; i += 1) {
      const m = merges.find((x) => x.from === at);
      if (!m) break;
      at = m.to;
    }
    return at;
  }

  dismissNotice(seq) {
    return this.commit({ meta: { notices: (this.meta.notices || []).filter((n) => n.seq !== seq) } });
  }
}

/// An op as it travels (the device's own bookkeeping stays home).
export function wire(op) {
  const { seq, op_id, type, entity_id, household_id, base_version, hlc, data } = op;
  return { seq, op_id, type, entity_id, household_id, base_version, hlc, data };
}
