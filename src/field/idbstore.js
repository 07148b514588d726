// The device's storage in IndexedDB: `meta` (session, device id, seq counter, clock,
// cursor), `entities` (the pulled copy) and `ops` (the queue). Every commit is one
// IndexedDB transaction over the three, so an edit and its queued op land together or not
// at all.

const DB = "gocua-field";
const VERSION = 1;

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

export class IdbStore {
  static async open(indexedDB = globalThis.indexedDB) {
    const req = indexedDB.open(DB, VERSION);
    req.onupgradeneeded = () => {
      const db = req.result;
      db.createObjectStore("meta");
      db.createObjectStore("entities");
      db.createObjectStore("ops", { keyPath: "seq" });
    };
    return new IdbStore(await promised(req));
  }

  constructor(db) {
    this.db = db;
  }

  async load() {
    const tx = this.db.transaction(["meta", "entities", "ops"], "readonly");
    const [metaKeys, metaValues, entityKeys, entityValues, ops] = await Promise.all([
      promised(tx.objectStore("meta").getAllKeys()),
      promised(tx.objectStore("meta").getAll()),
      promised(tx.objectStore("entities").getAllKeys()),
      promised(tx.objectStore("entities").getAll()),
      promised(tx.objectStore("ops").getAll()),
    ]);
    const meta = {};
    metaKeys.forEach((k, i) => { meta[k] = metaValues[i]; });
    const entities = new Map(entityKeys.map((k, i) => [k, entityValues[i]]));
    return { meta, entities, ops: new Map(ops.map((o) => [o.seq, o])) };
  }

  async commit({ meta, put, del, ops, dropOps, clearEntities }) {
    const tx = this.db.transaction(["meta", "entities", "ops"], "readwrite");
    const m = tx.objectStore("meta");
    const e = tx.objectStore("entities");
    const o = tx.objectStore("ops");
    for (const [k, v] of Object.entries(meta)) m.put(v, k);
    if (clearEntities) e.clear();
    for (const k of del) e.delete(k);
    for (const [k, v] of put) e.put(v, k);
    for (const op of ops) o.put(op);
    for (const s of dropOps) o.delete(s);
    await done(tx);
  }

  async clear() {
    const tx = this.db.transaction(["meta", "entities", "ops"], "readwrite");
    for (const s of ["meta", "entities", "ops"]) tx.objectStore(s).clear();
    await done(tx);
  }
}
