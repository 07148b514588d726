// The field app's sync engine (src/field/sync.js) against a real gocua server: ops,
// queue, clock, retries, token refresh, rejections, resets. Run with `node --test
// tests/field/` after `cargo build`.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Engine, LoginNeeded, OfflineError, nextHlc } from "../../src/field/sync.js";
import { MemoryStore } from "../../src/field/memstore.js";
import { expandUnits } from "../../src/field/units.js";
import { fold, matches, searchKey, terms } from "../../src/field/text.js";
import { startServer, rest, token } from "./server.js";

let server;
before(async () => {
  // Access tokens live 1 s (plus the server's 5 s of leeway): the tests see them expire.
  server = await startServer({ GOCUA_ACCESS_TOKEN_SECONDS: "1" });
});
after(async () => {
  await server?.stop();
});

/// A device of `username`, logged in and with its first download done.
async function device(username = "canbo", { fetch: f = fetch, store = new MemoryStore() } = {}) {
  const e = await Engine.open(store, { fetch: f, base: server.base });
  await e.login(username, "gocua-demo");
  await e.sync();
  return e;
}

const villages = (e) => e.meta.reference.areas.filter((a) => a.level === "village");
const campaign = (e) => e.meta.reference.campaigns[0].id;

/// Waits for a condition, checking it every 100 ms, for at most `ms`.
async function until(what, ms, check) {
  const end = Date.now() + ms;
  for (;;) {
    if (await check()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

test("search folds like the server: Nguyen finds Nguyễn, d finds đ, words start", () => {
  assert.equal(fold("  Nguyễn   Văn Mạnh "), "nguyen van manh");
  assert.equal(fold("ĐẠO"), "dao");
  const keys = [searchKey("Hoàng Văn Mạnh Thôn Nà Pàn"), searchKey("Đinh Thị Hoa")];
  assert.ok(matches(terms("van manh"), keys));
  assert.ok(matches(terms("dinh hoa"), keys));
  assert.ok(matches(terms("NA PAN"), keys));
  assert.ok(!matches(terms("an"), keys), "a term starts a word");
});

test("the clock counts within a millisecond and never goes back", () => {
  const a = nextHlc(null, Date.UTC(2020, 7, 21, 3, 4, 5, 123));
  assert.equal(a.text, "2020-08-21T03:04:05.123Z-0000");
  const b = nextHlc(a, a.ms);
  assert.equal(b.text, "2020-08-21T03:04:05.123Z-0001");
  const c = nextHlc(b, a.ms - 5000); // the phone's clock went back
  assert.equal(c.ms, a.ms);
  assert.equal(c.c, 2);
});

test("offline edits queue in order and reach the server once, with the same state", async () => {
  const e = await device();
  const first = e.meta.next_seq;
  const [v1] = villages(e);
  const camp = campaign(e);
  const h = await e.createHousehold({ area_id: v1.id, address: "Số 9, Nà Pàn", head_name: "Hoàng Văn Mạnh" });
  const m1 = await e.createMember(h, { full_name: "Hoàng Văn Mạnh", birth_year: 1970, priority: "quarantine_home" });
  const m2 = await e.createMember(h, { full_name: "Hoàng Thị Hoa", smartphone: "yes" });
  await e.setAdoption(m1, camp, "installed_with_help");
  await e.setAdoption(m2, camp, "refused");
  await e.recordVisit(h, { campaign_id: camp, visited_at: "2020-08-21T03:04:05Z", outcome: "met" });
  await e.updateHousehold(h, { phone: "0912345678" });
  assert.equal(e.pendingCount(), 7);
  const seqs = [...e.ops.values()].map((o) => o.seq);
  assert.deepEqual(seqs, [0, 1, 2, 3, 4, 5, 6].map((i) => first + i));
  // The device shows its own edits before any sync.
  const shown = e.view().households.get(h);
  assert.equal(shown.phone, "0912345678");
  assert.equal(shown.members.length, 2);
  assert.equal(e.adoption(m1, camp), "installed_with_help");

  await e.sync();
  assert.equal(e.pendingCount(), 0);
  assert.equal(e.meta.last_seq, first + 6);
  const t = await token(server.base, "xa");
  const got = await rest(server.base, "GET", `/api/v1/households/${h}`, t);
  assert.equal(got.status, 200);
  assert.equal(got.body.phone, "0912345678");
  assert.equal(got.body.members.length, 2);
  assert.equal(got.body.recent_visits.length, 1);
  const status = Object.fromEntries(got.body.members.map((m) => [m.id, m.adoptions[0].status]));
  assert.deepEqual(status, { [m1]: "installed_with_help", [m2]: "refused" });
  // The copy now holds the server's state, version included.
  const after = e.view().households.get(h);
  assert.equal(after.version, got.body.version);
  assert.equal(e.meta.seen[h], got.body.version);
});

test("a sync says what it moved, so that the app backs off when nothing did", async () => {
  const e = await Engine.open(new MemoryStore(), { fetch, base: server.base });
  await e.login("canbo", "gocua-demo");
  const first = await e.sync();
  assert.equal(first.pushed, 0);
  assert.ok(first.pulled > 0, "the first download brings the commune");
  assert.deepEqual(await e.sync(), { pushed: 0, pulled: 0 });
  const [v1] = villages(e);
  await e.createHousehold({ area_id: v1.id, address: "Số 3, Nà Pàn", head_name: "Lục Văn Tài" });
  const third = await e.sync();
  assert.equal(third.pushed, 1);
  assert.ok(third.pulled >= 1, "the household comes back in the pull");
  assert.deepEqual(await e.sync(), { pushed: 0, pulled: 0 });
});

test("the errors a sync met and the phone's storage go to the server in the next report, as codes", async () => {
  let failPush = true;
  const flaky = async (url, init) => {
    if (failPush && String(url).endsWith("/api/v1/sync/push")) {
      failPush = false;
      return new Response(JSON.stringify({ code: "internal", detail: "Nguyễn Văn An không lưu được" }),
        { status: 500, headers: { "content-type": "application/problem+json" } });
    }
    return fetch(url, init);
  };
  const e = await Engine.open(new MemoryStore(), { fetch: flaky, base: server.base,
    storage: async () => ({ usage: 3_000_000, quota: 3_000_000 + 40 * 1048576 }) });
  await e.login("canbo", "gocua-demo");
  await e.sync();
  const [v1] = villages(e);
  await e.createHousehold({ area_id: v1.id, address: "Số 8, Nà Pàn", head_name: "Hà Văn Lực" });
  await assert.rejects(e.sync(), (err) => err instanceof OfflineError && err.status === 500);
  assert.deepEqual(e.lastErrors().map((x) => x.code), ["http_500:internal"], "a code, not the message");
  await e.sync();
  const t = await token(server.base, "xa");
  const team = await rest(server.base, "GET", "/api/v1/users?q=canbo", t);
  const phone = team.body.items[0].phones.find((p) => p.device_id === e.meta.device_id);
  assert.deepEqual(phone.last_errors.map((x) => x.code), ["http_500:internal"]);
  assert.equal(phone.storage_used_bytes, 3_000_000);
  assert.equal(phone.storage_free_bytes, 40 * 1048576);
  assert.equal(phone.pending_changes, 0);
  // A week later the error is old news: the phone reports none.
  const later = await Engine.open(e.store, { fetch, base: server.base, now: () => Date.now() + 8 * 24 * 3600 * 1000 });
  assert.deepEqual(later.lastErrors(), []);
});

test("a first download cut halfway goes on from where it stopped, even after the app was closed", async () => {
  // Enough households in canbo's villages for two pages of 1,000.
  const maker = await device();
  const [v1] = villages(maker);
  for (let i = 0; i < 1100; i += 1) {
    await maker.createHousehold({ area_id: v1.id, address: `Số ${i}, Nà Pàn`, head_name: `Vi Văn Tải ${i}` });
  }
  await maker.sync();
  const whole = await device();
  const total = whole.view().households.size;
  assert.ok(total > 1000, `${total} households in scope`);

  // The network drops at the second page. The link notes each pull's cursor and the
  // households each page brings.
  const pulls = [];
  const brought = [];
  let cut = true;
  const link = async (url, init) => {
    if (!String(url).includes("/api/v1/sync/pull")) return fetch(url, init);
    pulls.push(new URL(url).searchParams.get("cursor"));
    if (cut && pulls.length === 2) throw new TypeError("network changed");
    const res = await fetch(url, init);
    const page = await res.clone().json();
    const changes = page.units ? expandUnits(page.units) : page.changes;
    brought.push(...changes.filter((c) => c.entity === "household").map((c) => c.id));
    return res;
  };
  const store = new MemoryStore();
  const first = await Engine.open(store, { fetch: link, base: server.base });
  await first.login("canbo", "gocua-demo");
  await assert.rejects(first.sync(), OfflineError);
  const kept = first.view().households.size;
  assert.ok(kept > 0 && kept < total, `the first page is kept: ${kept}`);
  const keptIds = new Set(first.view().households.keys());
  const cursor = first.meta.cursor;
  assert.ok(cursor, "the cursor of the page applied");

  // The app is closed and opened again; the signal is back.
  cut = false;
  pulls.length = 0;
  brought.length = 0;
  const again = await Engine.open(store, { fetch: link, base: server.base });
  assert.equal(again.view().households.size, kept);
  await again.sync();
  assert.equal(pulls[0], cursor, "the next try starts from the page it stopped at");
  assert.equal(brought.filter((id) => keptIds.has(id)).length, 0, "no household downloaded twice");
  assert.equal(new Set(brought).size, total - kept, "the households left, not the whole download");
  assert.equal(again.view().households.size, total);
  assert.deepEqual([...again.view().households.keys()].sort(), [...whole.view().households.keys()].sort());
});

test("a push whose answer is lost is resent as it was and applied once", async () => {
  let lose = true;
  // Delivers the request, then drops the answer (the connection broke on the way back).
  const flaky = async (url, init) => {
    const res = await fetch(url, init);
    if (lose && url.includes("/sync/push")) {
      lose = false;
      await res.text();
      throw new TypeError("network error");
    }
    return res;
  };
  const e = await device("canbo", { fetch: flaky });
  const [v1] = villages(e);
  const h = await e.createHousehold({ area_id: v1.id, address: "Số 10", head_name: "Nông Văn Đức" });
  await e.createMember(h, { full_name: "Nông Thị Lan" });
  const sent = [...e.ops.keys()];
  await assert.rejects(e.sync(), OfflineError);
  assert.deepEqual(e.meta.inflight, sent, "the batch is remembered");
  assert.equal(e.pendingCount(), 2);
  // Meanwhile another edit is queued: the unanswered batch still goes first, as it was.
  await e.updateHousehold(h, { notes: "Hẹn chiều" });
  await e.sync();
  assert.equal(e.pendingCount(), 0);
  const t = await token(server.base, "xa");
  const got = await rest(server.base, "GET", `/api/v1/households/${h}`, t);
  assert.equal(got.body.members.length, 1, "the member was created once");
  assert.equal(got.body.notes, "Hẹn chiều");
});

test("an expired access token is refreshed and the sync goes on", async () => {
  const e = await device();
  const old = e.meta.access_token;
  await until("the access token to expire", 20000, async () => {
    const r = await rest(server.base, "GET", "/api/v1/me", old);
    return r.status === 401;
  });
  const [v1] = villages(e);
  await e.createHousehold({ area_id: v1.id, address: "Số 11", head_name: "Lý Văn Bảo" });
  await e.sync();
  assert.equal(e.pendingCount(), 0);
  assert.notEqual(e.meta.access_token, old);
});

test("a revoked session needs a login; the queue is kept and pushed under the same seqs", async () => {
  const store = new MemoryStore();
  const e = await device("canbo", { store });
  const [v1] = villages(e);
  const h = await e.createHousehold({ area_id: v1.id, address: "Số 12", head_name: "Vi Văn Sơn" });
  const seq = e.ops.get(e.meta.next_seq - 1).seq;
  // The session ends elsewhere (the user logged out on another screen, or an admin acted).
  const out = await rest(server.base, "POST", "/api/v1/auth/logout", null, { refresh_token: e.meta.refresh_token });
  assert.equal(out.status, 204, JSON.stringify(out.body));
  await until("the access token to expire", 20000, async () =>
    (await rest(server.base, "GET", "/api/v1/me", e.meta.access_token)).status === 401);
  await assert.rejects(e.sync(), LoginNeeded);
  assert.equal(e.loggedIn, false);
  assert.equal(e.pendingCount(), 1);
  // The app restarts (a new engine over the same storage) and the user logs in again.
  const again = await Engine.open(store, { fetch, base: server.base });
  assert.equal(again.pendingCount(), 1);
  await again.login("canbo", "gocua-demo");
  assert.equal(again.meta.device_id, e.meta.device_id);
  await again.sync();
  assert.equal(again.pendingCount(), 0);
  assert.equal(again.meta.last_seq, seq);
  const got = await rest(server.base, "GET", `/api/v1/households/${h}`, await token(server.base, "xa"));
  assert.equal(got.body.head_name, "Vi Văn Sơn");
});

test("an edit of a household deleted meanwhile is rejected, shown, and the queue goes on", async () => {
  const e = await device();
  const [v1] = villages(e);
  const h = await e.createHousehold({ area_id: v1.id, address: "Số 13", head_name: "Hà Văn Hùng" });
  await e.sync();
  const xa = await token(server.base, "xa");
  const cur = await rest(server.base, "GET", `/api/v1/households/${h}`, xa);
  const res = await fetch(`${server.base}/api/v1/households/${h}`, {
    method: "DELETE",
    headers: { authorization: `Bearer ${xa}`, "if-match": cur.etag },
  });
  assert.equal(res.status, 204);
  await e.updateHousehold(h, { notes: "sửa khi ngoại tuyến" });
  const h2 = await e.createHousehold({ area_id: v1.id, address: "Số 14", head_name: "Lương Văn Dũng" });
  await e.sync();
  assert.equal(e.pendingCount(), 0);
  assert.equal(e.meta.rejections.length, 1);
  assert.equal(e.meta.rejections[0].error.code, "deleted");
  assert.equal(e.meta.rejections[0].household_id, h);
  assert.ok(!e.view().households.has(h), "the deletion reached the device");
  assert.ok(e.view().households.has(h2), "the next op went through");
  await e.dismissRejection(e.meta.rejections[0].seq);
  assert.equal(e.meta.rejections.length, 0);
});

test("two devices edit one household offline: both end with the same record", async () => {
  const a = await device();
  const b = await device();
  const [v1] = villages(a);
  const h = await a.createHousehold({ area_id: v1.id, address: "Số 15", head_name: "Triệu Văn Quang" });
  await a.sync();
  await b.sync();
  // B edits first (an earlier clock) but reaches the server last: B's name loses.
  await b.updateHousehold(h, { head_name: "Triệu Văn Quang (B)" });
  await new Promise((r) => setTimeout(r, 5));
  await a.updateHousehold(h, { head_name: "Triệu Văn Quang (A)", phone: "0911111111" });
  await a.sync();
  await b.sync();
  await a.sync();
  const ha = a.view().households.get(h);
  const hb = b.view().households.get(h);
  assert.equal(ha.head_name, hb.head_name);
  assert.equal(ha.phone, "0911111111");
  assert.equal(hb.phone, "0911111111");
  assert.equal(ha.head_name, "Triệu Văn Quang (A)");
  assert.equal(ha.version, hb.version);
  assert.equal(a.meta.notices.length, 0);
  assert.equal(b.meta.notices.length, 1, "the device whose value lost hears of it");
  assert.equal(b.meta.notices[0].household_id, h);
  assert.equal(b.meta.notices[0].conflict_ids.length, 1);
});

test("a reset rebuilds the copy and keeps the queue", async () => {
  const e = await device();
  const me = await rest(server.base, "GET", "/api/v1/me", e.meta.access_token);
  const areas = me.body.area_ids;
  const h = await e.createHousehold({ area_id: areas[0], address: "Số 16", head_name: "Mã Văn Tuấn" });
  const admin = await token(server.base, "admin");
  // The user's areas change: the next pull starts the copy over.
  await rest(server.base, "PUT", `/api/v1/users/${me.body.id}/areas`, admin, { area_ids: [areas[0]] });
  const before = e.entities.size;
  await e.pull();
  assert.ok(e.entities.size < before, "the copy holds one village now");
  assert.equal(e.pendingCount(), 1, "the queue survives the reset");
  assert.ok(e.view().households.has(h), "the own edit still shows");
  await e.sync();
  assert.equal(e.pendingCount(), 0);
  await rest(server.base, "PUT", `/api/v1/users/${me.body.id}/areas`, admin, { area_ids: areas });
});

test("logging out with changes waiting needs an explicit yes", async () => {
  const e = await device();
  const [v1] = villages(e);
  await e.createHousehold({ area_id: v1.id, address: "Số 17", head_name: "Hứa Văn Cường" });
  await assert.rejects(e.logout(), (err) => err.problem.code === "pending_changes");
  assert.equal(e.pendingCount(), 1);
  await e.logout(true);
  assert.equal(e.pendingCount(), 0);
  assert.equal(e.user, null);
});

test("a gap is closed by resending from the server's last seq; a lost op is reported", async () => {
  const e = await device();
  const [v1] = villages(e);
  const a = await e.createHousehold({ area_id: v1.id, address: "Số 18", head_name: "Đinh Văn Hải" });
  const b = await e.createHousehold({ area_id: v1.id, address: "Số 19", head_name: "Đinh Văn Hà" });
  const [first, second] = [...e.ops.keys()];
  // A batch that starts past the server's last seq (as after a crash mid-write): a gap.
  await e.commit({ meta: { inflight: [second] } });
  await e.sync();
  assert.equal(e.pendingCount(), 0, "both went, in order");
  assert.equal(e.meta.last_seq, second);
  const t = await token(server.base, "xa");
  for (const h of [a, b]) assert.equal((await rest(server.base, "GET", `/api/v1/households/${h}`, t)).status, 200);
  assert.ok(first < second);
  // An op the phone no longer has cannot be resent: the user hears of it.
  await e.createHousehold({ area_id: v1.id, address: "Số 20", head_name: "Đinh Văn Hưng" });
  const lost = await e.createHousehold({ area_id: v1.id, address: "Số 21", head_name: "Đinh Văn Hòa" });
  const gone = [...e.ops.values()].find((o) => o.entity_id !== lost && o.state === "pending");
  await e.commit({ dropOps: [gone.seq] });
  await assert.rejects(e.sync(), (err) => err.problem.code === "gap");
  assert.equal(e.pendingCount(), 1, "the op after the gap is kept");
});

test("each sync reports the app's version and what waits, even when the push is refused", async () => {
  const admin = await token(server.base, "admin");
  const e = await Engine.open(new MemoryStore(), { fetch, base: server.base, version: "field-test-1" });
  await e.login("canbo", "gocua-demo");
  await e.sync();
  const [v1] = villages(e);
  await e.createHousehold({ area_id: v1.id, address: "Số 3", head_name: "Lường Văn Tâm" });
  await e.createHousehold({ area_id: v1.id, address: "Số 4", head_name: "Lường Thị Mai" });
  // The server refuses every push (a batch it cannot take): the changes stay waiting.
  const refusing = async (url, init) => (String(url).endsWith("/sync/push")
    ? new Response(JSON.stringify({ code: "batch_too_large", detail: "too large" }), { status: 413 })
    : fetch(url, init));
  e.fetch = refusing;
  await assert.rejects(e.sync());
  const phone = async () => {
    const users = await rest(server.base, "GET", "/api/v1/users?q=canbo", admin);
    return users.body.items[0].phones.find((p) => p.device_id === e.meta.device_id);
  };
  let p = await phone();
  assert.equal(p.app_version, "field-test-1");
  assert.equal(p.pending_changes, 2);
  assert.equal(new Date(p.oldest_pending_at).getTime(), new Date(e.oldestPending()).getTime());
  // Sent at last: nothing waits.
  e.fetch = fetch;
  await e.sync();
  p = await phone();
  assert.equal(p.pending_changes, 0);
  assert.equal(p.oldest_pending_at, null);
});

test("a one-time password must be replaced before the first sync", async () => {
  const admin = await token(server.base, "admin");
  const me = await rest(server.base, "GET", "/api/v1/me", await token(server.base, "canbo"));
  const made = await rest(server.base, "POST", "/api/v1/users", admin,
    { username: "cb.moi", role: "canvasser", area_ids: [me.body.area_ids[0]] });
  assert.equal(made.status, 201);
  const e = await Engine.open(new MemoryStore(), { fetch, base: server.base });
  await e.login("cb.moi", made.body.one_time_password);
  assert.equal(e.mustChangePassword, true);
  await assert.rejects(e.sync(), (err) => err.problem.code === "password_change_required");
  await assert.rejects(e.changePassword("sai", "mật khẩu riêng"), (err) => err.problem.errors[0].code === "wrong_password");
  await e.changePassword(made.body.one_time_password, "mật khẩu riêng");
  assert.equal(e.mustChangePassword, false);
  await e.sync();
  assert.deepEqual(villages(e).map((v) => v.id), [me.body.area_ids[0]]);
});

test("a household merged on the server: queued edits follow it, the copy drops it and says where it went", async () => {
  const a = await device();
  const b = await device();
  const [v1] = villages(a);
  const kept = await a.createHousehold({ area_id: v1.id, address: "Bản Chang", head_name: "Nông Văn Khải" });
  await a.sync();
  const gone = await b.createHousehold({ area_id: v1.id, address: "ban chang", head_name: "Nong Van Khai" });
  await b.sync();
  // Phone b edits the household offline; meanwhile a supervisor merges it into the other.
  await b.updateHousehold(gone, { notes: "Có hai cháu nhỏ" });
  const sup = await token(server.base, "xa");
  const pairs = await rest(server.base, "GET", "/api/v1/duplicates?status=open&per_page=500", sup);
  const pair = pairs.body.items.find((p) => p.households.some((h) => h.id === gone));
  assert.ok(pair, JSON.stringify(pairs.body));
  const r = await rest(server.base, "POST", `/api/v1/duplicates/${pair.id}/merge`, sup, { keep: kept });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  await b.sync();
  assert.equal(b.pendingCount(), 0);
  assert.deepEqual(b.meta.rejections, []);
  assert.equal(b.view().households.has(gone), false);
  assert.equal(b.view().households.get(kept).notes, "Có hai cháu nhỏ");
  assert.equal(b.survivorOf(gone), kept);
  assert.equal(b.survivorOf(kept), kept);
  assert.deepEqual(b.meta.merges.map((m) => [m.from, m.to, m.head_name]), [[gone, kept, "Nong Van Khai"]]);
  await b.dismissMerge(gone);
  assert.equal(b.meta.merges[0].read, true);
  assert.equal(b.survivorOf(gone), kept, "a merge read is still followed");
});

test("visits of a campaign that ended while another runs leave the phone, not its queue nor the server", async () => {
  // A server of its own (a running campaign changes what every device keeps), and a device
  // with the demo's visits, all of Bluezone 2020, which ended: while no campaign runs, the app
  // still works with it and keeps its visits.
  const own = await startServer();
  after(() => own.stop());
  const e = await Engine.open(new MemoryStore(), { fetch, base: own.base });
  await e.login("canbo", "gocua-demo");
  await e.sync();
  const visitsIn = (eng) => [...eng.entities.values()].filter((x) => x.entity === "visit");
  const old = visitsIn(e);
  assert.ok(old.length > 0, "the demo's visits are on the phone");
  assert.deepEqual([...e.finishedCampaigns()], []);

  // A visit waits in the queue, offline.
  const hid = [...e.view().households.keys()][0];
  const bluezone = campaign(e);
  const offline = async () => { throw new TypeError("no signal"); };
  const waiting = await Engine.open(e.store, { fetch: offline, base: own.base });
  await waiting.recordVisit(hid, { campaign_id: bluezone, outcome: "met", visited_at: new Date().toISOString() });
  assert.equal(waiting.pendingCount(), 1);

  // An admin starts a new campaign, running today.
  const admin = await token(own.base, "admin");
  const day = (d) => new Date(Date.now() + d * 86400000).toISOString().slice(0, 10);
  const r = await rest(own.base, "POST", "/api/v1/campaigns", admin, { name: "Tiêm chủng 2026", starts_on: day(-1), ends_on: day(30) });
  assert.equal(r.status, 201, JSON.stringify(r.body));

  // The next sync sends the waiting visit, then drops Bluezone's visits from the copy.
  const back = await Engine.open(e.store, { fetch, base: own.base });
  await back.sync();
  assert.deepEqual([...back.finishedCampaigns()], [bluezone]);
  assert.deepEqual(visitsIn(back), [], "no visit of the ended campaign on the phone");
  assert.equal(back.pendingCount(), 0, "the waiting visit was sent");
  const stored = await e.store.load();
  assert.equal([...stored.entities.values()].filter((x) => x.entity === "visit").length, 0, "nor in its storage");
  // The server keeps every visit, the one sent included.
  const sup = await token(own.base, "xa");
  const h = await rest(own.base, "GET", `/api/v1/households/${hid}`, sup);
  assert.equal(h.status, 200, JSON.stringify(h.body));
  const ids = new Set(h.body.recent_visits.map((v) => v.id));
  for (const v of old.filter((x) => x.household_id === hid)) assert.ok(ids.has(v.id), `visit ${v.id} kept`);
  assert.equal(ids.size, old.filter((x) => x.household_id === hid).length + 1);
});
