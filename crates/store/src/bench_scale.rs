//! `grantflow bench scale`: fill a database with many instances and long, valid history
//! chains fast, for the data-scale benchmark (lists, deep paging, `audit verify`, RSS at
//! 100,000 instances and 1,000,000 records). The rows are written by [`BulkLoader`] in
//! multi-row statements, one transaction per chunk; the chains are sealed exactly as the
//! engine seals them, so `audit verify` checks real chains.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use grantflow_domain::audit::{GENESIS_HASH, HistoryRecord, data_hash};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{Instance, StoreResult};

/// The bare SQL of the data-scale benchmark: its fill, written without the engine, and
/// the baseline of the list.
#[async_trait]
pub trait BulkLoader: Send + Sync {
    /// Insert `instances` and `history` (already sealed) in one transaction, with
    /// multi-row `INSERT`s.
    async fn bulk_load(&self, instances: &[Instance], history: &[HistoryRecord])
    -> StoreResult<()>;
    /// Refresh the planner's statistics after the fill (`ANALYZE`).
    async fn analyze(&self) -> StoreResult<()>;
    /// The baseline of a 50-item list: the statements the store's listing issues for a
    /// manager's first page of instances, newest first (`COUNT(*)` when `count`, and
    /// the page), as bare SQL; the rows listed.
    async fn raw_list(&self, first: u32, count: bool) -> StoreResult<usize>;
}

/// Who the filled instances belong to (spread round-robin).
#[derive(Debug, Clone, Copy)]
pub struct Owner {
    pub org_id: Uuid,
    pub city_id: Option<Uuid>,
    pub user_id: Uuid,
}

#[derive(Debug, Clone, Copy)]
pub struct FillOptions {
    pub instances: usize,
    pub records_per_instance: usize,
    /// Instances per transaction.
    pub chunk: usize,
    /// The first instance's creation; the others follow a second apart.
    pub start: DateTime<Utc>,
}

/// The state an instance of the benchmark workflow ends in: every tenth closed (final),
/// the others alternating between `a` and `b`.
pub fn final_state(i: usize) -> &'static str {
    match i % 10 {
        0 => "closed",
        n if n % 2 == 0 => "b",
        _ => "a",
    }
}

/// Instance `i` with its `records` transitions (`a` → `b` → `a` … then to its
/// [`final_state`]), each record sealed on the previous one.
pub fn instance_with_history(
    i: usize,
    records: usize,
    owner: Owner,
    start: DateTime<Utc>,
) -> (Instance, Vec<HistoryRecord>) {
    let id = Uuid::now_v7();
    let created_at = start + Duration::seconds(i as i64);
    let mut history = Vec::with_capacity(records);
    let (mut prev, mut state) = (GENESIS_HASH.to_string(), "a");
    let mut data = Value::Null;
    for k in 1..=records {
        let to = if k == records {
            final_state(i)
        } else if state == "a" {
            "b"
        } else {
            "a"
        };
        let event = match to {
            "closed" => "close",
            "b" => "flip",
            _ => "flop",
        };
        data = json!({ "note": format!("step {k}") });
        let record = HistoryRecord {
            instance_id: id.to_string(),
            seq: k as i64,
            at: created_at + Duration::minutes(k as i64),
            actor_id: owner.user_id.to_string(),
            actor_roles: vec!["manager".into()],
            event: event.into(),
            from_state: state.into(),
            to_state: to.into(),
            input: json!({ "note": format!("step {k}") }),
            reason: None,
            data_hash: Some(data_hash(&data)),
            prev_hash: String::new(),
            hash: String::new(),
        }
        .seal(&prev);
        prev = record.hash.clone();
        state = to;
        history.push(record);
    }
    let is_final = state == "closed";
    let instance = Instance {
        id,
        workflow_id: "bench".into(),
        workflow_version: 1,
        state: state.into(),
        stage: "work".into(),
        is_final,
        data,
        version: records as i64,
        parent_id: None,
        org_id: owner.org_id,
        city_id: owner.city_id,
        title: format!("规模测试 {i:07}"),
        created_by: owner.user_id,
        created_at,
        updated_at: history.last().map_or(created_at, |r| r.at),
        due_at: (!is_final).then(|| created_at + Duration::days(30)),
        review: Value::Null,
        budget: Value::Null,
        last_hash: prev,
    };
    (instance, history)
}

/// Fill `options.instances` instances with their chains, a chunk per transaction;
/// `progress` is told how many instances are written after each chunk.
pub async fn fill(
    loader: &dyn BulkLoader,
    owners: &[Owner],
    options: FillOptions,
    mut progress: impl FnMut(usize) + Send,
) -> StoreResult<()> {
    let mut done = 0;
    while done < options.instances {
        let n = options.chunk.min(options.instances - done);
        let mut instances = Vec::with_capacity(n);
        let mut history = Vec::with_capacity(n * options.records_per_instance);
        for i in done..done + n {
            let (instance, records) = instance_with_history(
                i,
                options.records_per_instance,
                owners[i % owners.len()],
                options.start,
            );
            instances.push(instance);
            history.extend(records);
        }
        loader.bulk_load(&instances, &history).await?;
        done += n;
        progress(done);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_chain_verifies_and_binds_the_instance_row() {
        let owner = Owner {
            org_id: Uuid::now_v7(),
            city_id: None,
            user_id: Uuid::now_v7(),
        };
        for i in [0, 1, 2] {
            let (instance, records) = instance_with_history(i, 10, owner, Utc::now());
            assert_eq!(crate::audit::check_instance(&instance, &records), None);
            assert_eq!(instance.state, final_state(i));
            assert_eq!(records.len(), 10);
        }
    }
}
