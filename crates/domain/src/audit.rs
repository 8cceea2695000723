//! The append-only history of an instance. Each record carries the SHA-256 of its own
//! content and of the previous record's hash, so that editing or removing any record
//! breaks the chain from that point on.
//!
//! A record also carries `data_hash`, the SHA-256 of the instance's data after it
//! (canonical JSON), inside its own hash: with the record's `to_state` and `seq` it binds
//! the instance row's current state, data and version to the chain, so that editing the
//! row is detected too. Records written before `data_hash` existed have none; their hash
//! is computed as it always was, so existing chains still verify.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::canonical;

/// The hash that precedes the first record of every chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One history record as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryRecord {
    pub instance_id: String,
    /// 1 for the first transition; equals the instance version after it.
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor_id: String,
    pub actor_roles: Vec<String>,
    pub event: String,
    pub from_state: String,
    pub to_state: String,
    pub input: Value,
    pub reason: Option<String>,
    /// [`data_hash`] of the instance's data after this record (`None` in records written
    /// before it was introduced).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_hash: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

/// The SHA-256 of an instance's data, over canonical JSON.
pub fn data_hash(data: &Value) -> String {
    hex::encode(Sha256::digest(canonical::to_string(data).as_bytes()))
}

impl HistoryRecord {
    /// The hash of this record's content chained to `prev_hash`.
    pub fn compute_hash(&self) -> String {
        let mut content = serde_json::json!({
            "instance_id": self.instance_id,
            "seq": self.seq,
            "at": self.at.to_rfc3339_opts(SecondsFormat::Micros, true),
            "actor_id": self.actor_id,
            "actor_roles": self.actor_roles,
            "event": self.event,
            "from": self.from_state,
            "to": self.to_state,
            "input": self.input,
            "reason": self.reason,
            "prev": self.prev_hash,
        });
        if let Some(h) = &self.data_hash {
            content["data"] = Value::from(h.as_str());
        }
        hex::encode(Sha256::digest(canonical::to_string(&content).as_bytes()))
    }

    /// Fill `prev_hash` and `hash`.
    pub fn seal(mut self, prev_hash: &str) -> Self {
        self.prev_hash = prev_hash.to_string();
        self.hash = self.compute_hash();
        self
    }
}

/// Where a chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub enum ChainError {
    #[error("record {seq} of instance {instance_id}: its content does not match its hash (edited)")]
    ContentChanged { instance_id: String, seq: i64 },
    #[error(
        "record {seq} of instance {instance_id}: it does not follow the previous record's hash (inserted, removed or reordered)"
    )]
    LinkBroken { instance_id: String, seq: i64 },
    #[error(
        "record {seq} of instance {instance_id}: expected sequence number {expected} (a record is missing)"
    )]
    Gap {
        instance_id: String,
        seq: i64,
        expected: i64,
    },
}

/// Check one instance's records, in sequence order; names the first broken record.
pub fn verify_chain(records: &[HistoryRecord]) -> Result<(), ChainError> {
    let mut prev = GENESIS_HASH.to_string();
    for (i, r) in records.iter().enumerate() {
        let expected = i as i64 + 1;
        if r.seq != expected {
            return Err(ChainError::Gap {
                instance_id: r.instance_id.clone(),
                seq: r.seq,
                expected,
            });
        }
        if r.prev_hash != prev {
            return Err(ChainError::LinkBroken {
                instance_id: r.instance_id.clone(),
                seq: r.seq,
            });
        }
        if r.compute_hash() != r.hash {
            return Err(ChainError::ContentChanged {
                instance_id: r.instance_id.clone(),
                seq: r.seq,
            });
        }
        prev = r.hash.clone();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(seq: i64, prev: &str) -> HistoryRecord {
        HistoryRecord {
            instance_id: "i1".into(),
            seq,
            at: "2024-06-01T02:00:00.123456Z".parse().unwrap(),
            actor_id: "u1".into(),
            actor_roles: vec!["applicant".into()],
            event: "submit".into(),
            from_state: "a".into(),
            to_state: "b".into(),
            input: serde_json::json!({"x": 1}),
            reason: None,
            data_hash: None,
            prev_hash: String::new(),
            hash: String::new(),
        }
        .seal(prev)
    }

    #[test]
    fn a_sealed_chain_verifies_and_an_edit_is_named() {
        let r1 = record(1, GENESIS_HASH);
        let r2 = record(2, &r1.hash);
        let r3 = record(3, &r2.hash);
        let mut chain = vec![r1, r2, r3];
        assert_eq!(verify_chain(&chain), Ok(()));
        chain[1].reason = Some("tampered".into());
        assert_eq!(
            verify_chain(&chain),
            Err(ChainError::ContentChanged {
                instance_id: "i1".into(),
                seq: 2
            })
        );
        chain[1] = record(2, &chain[0].hash);
        chain.remove(1);
        assert!(matches!(
            verify_chain(&chain),
            Err(ChainError::Gap { seq: 3, .. })
        ));
    }

    /// Records written before `data_hash` existed keep their hash: the formula without it
    /// is the one they were sealed with, so old chains still verify.
    #[test]
    fn a_record_without_a_data_hash_hashes_as_before_and_one_with_it_binds_the_data() {
        let old = record(1, GENESIS_HASH);
        let content = serde_json::json!({
            "instance_id": "i1", "seq": 1, "at": "2024-06-01T02:00:00.123456Z",
            "actor_id": "u1", "actor_roles": ["applicant"], "event": "submit",
            "from": "a", "to": "b", "input": {"x": 1}, "reason": null, "prev": GENESIS_HASH,
        });
        let formula_before = hex::encode(Sha256::digest(canonical::to_string(&content).as_bytes()));
        assert_eq!(old.hash, formula_before);

        let data = serde_json::json!({ "budget": "300000.00", "b": [1, 2] });
        let bound = HistoryRecord {
            data_hash: Some(data_hash(&data)),
            ..record(1, GENESIS_HASH)
        }
        .seal(GENESIS_HASH);
        assert_ne!(bound.hash, old.hash);
        assert_eq!(verify_chain(std::slice::from_ref(&bound)), Ok(()));
        // The same data in another key order hashes the same; other data does not.
        let reordered = serde_json::json!({ "b": [1, 2], "budget": "300000.00" });
        assert_eq!(
            bound.data_hash.as_deref(),
            Some(data_hash(&reordered).as_str())
        );
        let mut edited = bound;
        edited.data_hash = Some(data_hash(&serde_json::json!({ "budget": "3000000.00" })));
        assert!(matches!(
            verify_chain(&[edited]),
            Err(ChainError::ContentChanged { seq: 1, .. })
        ));
    }
}
