// A store in memory, with the interface of the IndexedDB one (idbstore.js): for tests, and
// as a fallback where IndexedDB is missing.

export class MemoryStore {
  constructor() {
    this.meta = {};
    this.entities = new Map();
    this.ops = new Map();
  }

  async load() {
    return {
      meta: structuredClone(this.meta),
      entities: new Map(structuredClone([...this.entities])),
      ops: new Map(structuredClone([...this.ops])),
    };
  }

  async commit({ meta, put, del, ops, dropOps, clearEntities }) {
    Object.assign(this.meta, structuredClone(meta));
    if (clearEntities) this.entities.clear();
    for (const k of del) this.entities.delete(k);
    for (const [k, v] of put) this.entities.set(k, structuredClone(v));
    for (const op of ops) this.ops.set(op.seq, structuredClone(op));
    for (const s of dropOps) this.ops.delete(s);
  }

  async clear() {
    this.meta = {};
    this.entities.clear();
    this.ops.clear();
  }
}
