//! The reference sync client: queues operations offline, pushes them in `seq` order, keeps
//! its copy of the scope from pulls. The protocol is described in docs/SYNC.md.
#![allow(dead_code)]

use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use uuid::Uuid;

/// A device's local copy: entity key -> (version, data).
pub type Copy = BTreeMap<String, (i64, Value)>;

pub struct Device {
    pub id: Uuid,
    pub token: String,
    next_seq: i64,
    /// Operations not yet answered with a final status.
    pub queue: Vec<Value>,
    pub cursor: Option<String>,
    pub last_seq: i64,
    /// HLC state: last stamp's milliseconds and counter.
    hlc: (i64, u32),
    /// Offset added to the wall clock (to simulate a skewed device clock).
    pub clock_skew_ms: i64,
    /// A simulated wall clock (milliseconds) instead of the real one, for reproducible runs.
    pub fixed_clock: Option<i64>,
    pub copy: Copy,
    /// Highest unit version seen per household: the base of the next edit.
    pub seen: HashMap<Uuid, i64>,
    /// Every result the server gave, by seq (first delivery).
    pub acked: BTreeMap<i64, Value>,
    pub resets: usize,
    /// The household of each entry of the copy (for cascading deletes).
    owner: HashMap<String, String>,
    /// Every op queued, for diagnostics.
    pub sent: Vec<Value>,
}

pub fn key(entity: &str, id: &str, data: &Value) -> String {
    if entity == "adoption" {
        format!(
            "adoption/{id}/{}",
            data["campaign_id"].as_str().unwrap_or("")
        )
    } else {
        format!("{entity}/{id}")
    }
}

impl Device {
    pub fn new(token: &str) -> Device {
        Device {
            id: Uuid::new_v4(),
            token: token.to_owned(),
            next_seq: 1,
            queue: Vec::new(),
            cursor: None,
            last_seq: 0,
            hlc: (0, 0),
            clock_skew_ms: 0,
            fixed_clock: None,
            copy: Copy::new(),
            seen: HashMap::new(),
            acked: BTreeMap::new(),
            resets: 0,
            owner: HashMap::new(),
            sent: Vec::new(),
        }
    }

    /// The next HLC stamp: wall clock (plus skew) or, when it has not moved, a counter.
    pub fn tick(&mut self) -> String {
        let now = self
            .fixed_clock
            .unwrap_or_else(|| chrono::Utc::now().timestamp_millis())
            + self.clock_skew_ms;
        self.hlc = if now > self.hlc.0 {
            (now, 0)
        } else {
            (self.hlc.0, self.hlc.1 + 1)
        };
        let t = chrono::DateTime::from_timestamp_millis(self.hlc.0).unwrap();
        format!(
            "{}-{:04}",
            t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            self.hlc.1
        )
    }

    /// Queues an operation offline; returns its seq.
    pub fn queue_op(
        &mut self,
        kind: &str,
        entity_id: Uuid,
        household_id: Uuid,
        data: Value,
    ) -> i64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        let hlc = self.tick();
        let base = self.seen.get(&household_id).copied().unwrap_or(0);
        self.sent.push(json!({"seq": seq, "type": kind, "entity_id": entity_id, "base_version": base, "hlc": hlc, "data": data.clone()}));
        self.queue.push(
            json!({"seq": seq, "op_id": Uuid::new_v4(), "type": kind, "entity_id": entity_id,
            "household_id": household_id, "base_version": base, "hlc": hlc, "data": data}),
        );
        seq
    }

    pub fn push_body(&self, max: usize) -> Value {
        json!({"device_id": self.id, "ops": self.queue.iter().take(max).cloned().collect::<Vec<_>>()})
    }

    /// Takes in a push response: answered ops leave the queue (gaps stay).
    pub fn on_push(&mut self, res: &Value) {
        for r in res["results"].as_array().into_iter().flatten() {
            if r["status"] == "gap" {
                continue;
            }
            let seq = r["seq"].as_i64().unwrap();
            self.acked.entry(seq).or_insert_with(|| r.clone());
            if let (Some(v), Some(h)) = (r["household_version"].as_i64(), self.household_of(seq)) {
                let e = self.seen.entry(h).or_insert(0);
                *e = (*e).max(v);
            }
            self.queue.retain(|op| op["seq"].as_i64() != Some(seq));
        }
    }

    fn household_of(&self, seq: i64) -> Option<Uuid> {
        self.queue
            .iter()
            .find(|op| op["seq"].as_i64() == Some(seq))
            .and_then(|op| op["household_id"].as_str())
            .and_then(|s| s.parse().ok())
    }

    /// Applies one pull page to the copy; returns whether more is waiting.
    pub fn on_pull(&mut self, page: &Value) -> bool {
        if page["reset"] == true {
            self.copy.clear();
            self.owner.clear();
            self.seen.clear();
            self.resets += 1;
        }
        for ch in page["changes"].as_array().into_iter().flatten() {
            let entity = ch["entity"].as_str().unwrap();
            let id = ch["id"].as_str().unwrap();
            let version = ch["version"].as_i64().unwrap();
            if let Some(h) = ch["household_id"]
                .as_str()
                .and_then(|s| s.parse::<Uuid>().ok())
            {
                let e = self.seen.entry(h).or_insert(0);
                *e = (*e).max(version);
            }
            if ch["op"] == "delete" {
                // A household takes its members, adoptions and visits with it; a member its
                // adoptions.
                let owner = &self.owner;
                self.copy.retain(|k, (_, d)| {
                    !(k.starts_with(&format!("{entity}/{id}"))
                        || entity == "household" && owner.get(k).map(String::as_str) == Some(id)
                        || entity == "member" && d["member_id"].as_str() == Some(id))
                });
                let copy = &self.copy;
                self.owner.retain(|k, _| copy.contains_key(k));
            } else {
                let k = key(entity, id, &ch["data"]);
                if let Some(h) = ch["household_id"].as_str() {
                    self.owner.insert(k.clone(), h.to_owned());
                }
                self.copy.insert(k, (version, ch["data"].clone()));
            }
        }
        self.cursor = page["cursor"].as_str().map(str::to_owned);
        self.last_seq = page["last_seq"].as_i64().unwrap_or(0);
        page["has_more"] == true
    }

    /// Seqs handed out so far.
    pub fn seqs_used(&self) -> i64 {
        self.next_seq - 1
    }

    pub fn pull_path(&self, limit: i64) -> String {
        let mut p = format!("/api/v1/sync/pull?device_id={}&limit={limit}", self.id);
        if let Some(c) = &self.cursor {
            p.push_str(&format!("&cursor={c}"));
        }
        p
    }
}

/// The fields of a household op's `data`.
pub fn household(area: &str, head: &str, address: &str) -> Value {
    json!({"area_id": area, "head_name": head, "address": address})
}

pub fn fields(pairs: &[(&str, Value)]) -> Value {
    let mut m = Map::new();
    for (k, v) in pairs {
        m.insert((*k).to_owned(), v.clone());
    }
    Value::Object(m)
}
