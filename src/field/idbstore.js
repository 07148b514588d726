// The device's storage in IndexedDB: `meta` (session, device id, seq counter, clock,
// cursor), `copy` (the pulled copy) and `ops` (the queue). Every commit is one IndexedDB
// transaction over the three, so an edit and its queued op land together or not at all.
//
// The copy is kept as a few large records, not one per entity: its entities go into
// `BUCKETS` buckets by household, each stored as one JSON text. Reading 25,000 small records
// cost a low-end phone most of a second at every opening; reading 64 texts costs a fraction
// of it (docs/BENCHMARKS.md, "The field app"). A commit writes again only the buckets it
// touches. (Version 1 kept one record per entity in `entities`; its copy is moved over at the
// first opening.)

import { entityKey } from "./sync.js";

const DB = "gocua-field";
const VERSION = 2;
export const BUCKETS = 64;

function promised(req) {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
}

function done(tx) {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
    tx.onabort = () => reject(tx.error || new Error("transaction aborted"));
  });
}

/// The bucket of an entity: by its household, so that a household's records stay together.
export function bucketOf(entity) {
  const id = String(entity.household_id ?? entity.id ?? "");
  const n = parseInt(id.slice(0, 2), 16);
  return Number.isNaN(n) ? 0 : n % BUCKETS;
}

/// The copy by bucket, in memory, as the store last wrote it: a commit changes it and
/// answers which buckets to write again and which to remove. No IndexedDB in here. A bucket
/// is stored as the JSON text of its entities (their keys follow from them: `entityKey`).
export class Buckets {
  constructor() {
    this.of = new Map(); // bucket -> Map(key -> entity)
    this.where = new Map(); // key -> bucket
    this.parsed = null; // as read: [[bucket, [entity…]]…], until the first change
  }

  /// From the stored texts: [[bucket, text]…].
  static from(stored) {
    const b = new Buckets();
    b.parsed = stored.map(([bucket, text]) => [bucket, JSON.parse(text)]);
    return b;
  }

  /// Every entity of the copy, by key.
  entities() {
    const all = new Map();
    if (this.parsed) {
      for (const [, list] of this.parsed) for (const e of list) all.set(entityKey(e), e);
    } else {
      for (const entries of this.of.values()) for (const [k, v] of entries) all.set(k, v);
    }
    return all;
  }

  /// The buckets by key, made from what was read when the first change comes.
  index() {
    if (!this.parsed) return;
    for (const [bucket, list] of this.parsed) {
      const entries = new Map(list.map((e) => [entityKey(e), e]));
      this.of.set(bucket, entries);
      for (const k of entries.keys()) this.where.set(k, bucket);
    }
    this.parsed = null;
  }

  /// Takes in a commit's changes to the copy; answers what to store.
  apply({ put = [], del = [], clearEntities = false }) {
    const touched = new Set();
    if (clearEntities) {
      this.parsed = null;
      this.of.clear();
      this.where.clear();
    } else if (put.length || del.length) {
      this.index();
    }
    const drop = (k) => {
      const at = this.where.get(k);
      if (at === undefined) return;
      this.of.get(at).delete(k);
      this.where.delete(k);
      touched.add(at);
    };
    for (const k of del) drop(k);
    for (const [k, v] of put) {
      const at = bucketOf(v);
      // A member merged into another household moves bucket.
      if (this.where.get(k) !== at) drop(k);
      if (!this.of.has(at)) this.of.set(at, new Map());
      this.of.get(at).set(k, v);
      this.where.set(k, at);
      touched.add(at);
    }
    const write = [];
    const remove = [];
    for (const at of touched) {
      const entries = this.of.get(at);
      if (entries.size) write.push([at, JSON.stringify([...entries.values()])]);
      else {
        this.of.delete(at);
        remove.push(at);
      }
    }
    return { clear: clearEntities, write, remove };
  }
}

export class IdbStore {
  static async open(indexedDB = globalThis.indexedDB) {
    const req = indexedDB.open(DB, VERSION);
    req.onupgradeneeded = (event) => {
      const db = req.result;
      if (event.oldVersion < 1) {
        db.createObjectStore("meta");
        db.createObjectStore("entities");
        db.createObjectStore("ops", { keyPath: "seq" });
      }
      if (event.oldVersion < 2) db.createObjectStore("copy");
    };
    return new IdbStore(await promised(req));
  }

  constructor(db) {
    this.db = db;
    this.buckets = null;
  }

  /// Reads the copy, and with it the meta and the queue, in one transaction.
  async read() {
    const tx = this.db.transaction(["meta", "copy", "entities", "ops"], "readonly");
    const [keys, texts, old, metaKeys, metaValues, ops] = await Promise.all([
      promised(tx.objectStore("copy").getAllKeys()),
      promised(tx.objectStore("copy").getAll()),
      promised(tx.objectStore("entities").count()),
      promised(tx.objectStore("meta").getAllKeys()),
      promised(tx.objectStore("meta").getAll()),
      promised(tx.objectStore("ops").getAll()),
    ]);
    // Marks the benchmark reads (benches/field.rs).
    globalThis.performance?.mark?.("gocua-copy-read");
    this.buckets = Buckets.from(keys.map((k, i) => [k, texts[i]]));
    globalThis.performance?.mark?.("gocua-copy-parsed");
    if (old) await this.moveVersion1Copy();
    const meta = {};
    metaKeys.forEach((k, i) => { meta[k] = metaValues[i]; });
    return { meta, ops };
  }

  /// A copy kept by version 1, one record per entity, goes into buckets in one transaction.
  async moveVersion1Copy() {
    const tx = this.db.transaction(["copy", "entities"], "readwrite");
    const e = tx.objectStore("entities");
    const [keys, values] = await Promise.all([promised(e.getAllKeys()), promised(e.getAll())]);
    const b = new Buckets();
    const { write } = b.apply({ put: keys.map((k, i) => [k, values[i]]), clearEntities: true });
    const c = tx.objectStore("copy");
    c.clear();
    for (const [at, text] of write) c.put(text, at);
    e.clear();
    await done(tx);
    this.buckets = b;
  }

  async load() {
    const { meta, ops } = await this.read();
    return { meta, entities: this.buckets.entities(), ops: new Map(ops.map((o) => [o.seq, o])) };
  }

  async commit({ meta, put, del, ops, dropOps, clearEntities }) {
    // After a failed commit the buckets in memory may be ahead of the disk: read them again.
    if (!this.buckets) await this.read();
    const copy = this.buckets.apply({ put, del, clearEntities });
    try {
      const tx = this.db.transaction(["meta", "copy", "ops"], "readwrite");
      const m = tx.objectStore("meta");
      const c = tx.objectStore("copy");
      const o = tx.objectStore("ops");
      for (const [k, v] of Object.entries(meta)) m.put(v, k);
      if (copy.clear) c.clear();
      for (const at of copy.remove) c.delete(at);
      for (const [at, text] of copy.write) c.put(text, at);
      for (const op of ops) o.put(op);
      for (const s of dropOps) o.delete(s);
      await done(tx);
    } catch (e) {
      this.buckets = null;
      throw e;
    }
  }

  async clear() {
    const tx = this.db.transaction(["meta", "copy", "entities", "ops"], "readwrite");
    for (const s of ["meta", "copy", "entities", "ops"]) tx.objectStore(s).clear();
    await done(tx);
    this.buckets = new Buckets();
  }
}
