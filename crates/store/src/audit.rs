//! `grantflow audit verify`: check every instance's history against its hash chain and
//! against the instance row, through the [`Store`] trait, so it works on every backend.

use std::fmt;

use grantflow_domain::audit::{ChainError, GENESIS_HASH, HistoryRecord, data_hash, verify_chain};
use serde::Serialize;
use uuid::Uuid;

use crate::{Instance, Store, StoreResult};

/// The first problem found in one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditFailure {
    pub instance_id: Uuid,
    /// The first record that is wrong (for a count or head mismatch: the record that
    /// should be the last one, or 0 when the history is empty).
    pub seq: i64,
    pub what: String,
}

impl fmt::Display for AuditFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "instance {} record {}: {}",
            self.instance_id, self.seq, self.what
        )
    }
}

/// The result of checking every instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
pub struct AuditReport {
    pub instances_checked: u64,
    pub records_checked: u64,
    /// One entry per broken instance, oldest instance first.
    pub failures: Vec<AuditFailure>,
}

impl AuditReport {
    pub fn is_ok(&self) -> bool {
        self.failures.is_empty()
    }

    /// The first broken record, if any.
    pub fn first_failure(&self) -> Option<&AuditFailure> {
        self.failures.first()
    }
}

impl fmt::Display for AuditReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_ok() {
            write!(
                f,
                "ok: {} instances, {} history records, every chain verifies",
                self.instances_checked, self.records_checked
            )
        } else {
            writeln!(
                f,
                "FAILED: {} of {} instances have a broken history",
                self.failures.len(),
                self.instances_checked
            )?;
            for failure in &self.failures {
                writeln!(f, "  {failure}")?;
            }
            Ok(())
        }
    }
}

/// Check one instance: its chain, that it has as many records as transitions
/// (`version`), that the instance's `last_hash` is the last record's hash, and that the
/// row's current state and data are the ones the last record sealed (`to_state`, and
/// `data_hash` where the record has one).
pub async fn verify_instance(
    store: &dyn Store,
    id: Uuid,
) -> StoreResult<(u64, Option<AuditFailure>)> {
    let instance = store.get_instance(id).await?;
    let records = store.history(id).await?;
    Ok((records.len() as u64, check_instance(&instance, &records)))
}

/// [`verify_instance`] on records already read: the first problem, if any.
pub fn check_instance(instance: &Instance, records: &[HistoryRecord]) -> Option<AuditFailure> {
    let count = records.len() as u64;
    let fail = |seq: i64, what: String| {
        Some(AuditFailure {
            instance_id: instance.id,
            seq,
            what,
        })
    };
    if let Err(e) = verify_chain(records) {
        let seq = match &e {
            ChainError::ContentChanged { seq, .. }
            | ChainError::LinkBroken { seq, .. }
            | ChainError::Gap { seq, .. } => *seq,
        };
        return fail(seq, e.to_string());
    }
    if count as i64 != instance.version {
        return fail(
            count as i64 + 1,
            format!(
                "the instance is at version {} but its history has {} records",
                instance.version, count
            ),
        );
    }
    let head = records
        .last()
        .map(|r| r.hash.as_str())
        .unwrap_or(GENESIS_HASH);
    if head != instance.last_hash {
        return fail(
            count as i64,
            format!(
                "the instance's last hash {} is not the last record's hash {}",
                instance.last_hash, head
            ),
        );
    }
    let last = records.last()?;
    if last.to_state != instance.state {
        return fail(
            last.seq,
            format!(
                "the instance is in state `{}` but its last record moved it to `{}`",
                instance.state, last.to_state
            ),
        );
    }
    if let Some(sealed) = &last.data_hash {
        let now = data_hash(&instance.data);
        if &now != sealed {
            return fail(
                last.seq,
                format!(
                    "the instance's data (hash {now}) is not the data its last record sealed ({sealed})"
                ),
            );
        }
    }
    None
}

/// Instances read per page by [`verify_all`].
pub const AUDIT_PAGE_SIZE: u32 = 250;

/// Instance ranges `audit verify` reads at the same time, each on its own connection
/// (one reading connection's worker thread was the limit on SQLite).
pub const AUDIT_RANGES: u32 = 2;

/// Check every instance, oldest first. The instances are cut into [`AUDIT_RANGES`]
/// ranges ([`crate::InstanceStore::audit_split`]) verified at the same time. Each range
/// is read a page of instances at a time ([`crate::InstanceStore::audit_page`], two
/// statements per page), and its next page is read and decoded while this one's hashes
/// are computed on a blocking thread (hashing is the CPU-heavy part; it never runs on an
/// async worker), so memory stays at about two pages per range however long the
/// history is.
pub async fn verify_all(store: &dyn Store) -> StoreResult<AuditReport> {
    verify_all_paged(store, AUDIT_PAGE_SIZE).await
}

/// [`verify_all`] reading `page_size` instances per page.
pub async fn verify_all_paged(store: &dyn Store, page_size: u32) -> StoreResult<AuditReport> {
    let splits = store.audit_split(AUDIT_RANGES).await?;
    // Range i runs after split i - 1 up to and including split i; the last has no end.
    let starts = std::iter::once(None).chain(splits.iter().copied().map(Some));
    let ends = splits
        .iter()
        .copied()
        .map(Some)
        .chain(std::iter::once(None));
    let ranges = starts
        .zip(ends)
        .map(|(after, until)| verify_range(store, after, until, page_size));
    let mut report = AuditReport::default();
    for range in futures::future::join_all(ranges).await {
        let range = range?;
        report.instances_checked += range.instances_checked;
        report.records_checked += range.records_checked;
        report.failures.extend(range.failures);
    }
    Ok(report)
}

type Key = (chrono::DateTime<chrono::Utc>, uuid::Uuid);

/// Verify the instances after `after` up to and including `until` (to the end if none).
async fn verify_range(
    store: &dyn Store,
    after: Option<Key>,
    until: Option<Key>,
    page_size: u32,
) -> StoreResult<AuditReport> {
    let within = |page: &mut crate::AuditPage| -> bool {
        // Whether the range goes on after this page; the instances past its end are left
        // to the next range.
        let Some(end) = until else { return true };
        let before = page.len();
        page.retain(|(i, _)| (i.created_at, i.id) <= end);
        page.len() == before
    };
    let mut report = AuditReport::default();
    let mut page = store.audit_page(after, page_size).await?;
    let mut more = within(&mut page);
    while !page.is_empty() {
        let after = page.last().map(|(i, _)| (i.created_at, i.id));
        let last_page = !more || page.len() < page_size as usize;
        // The page comes back to be dropped here, on the thread that allocated it: freeing
        // a million small allocations from another thread cost the allocator more than
        // the hashing saved (measured on PostgreSQL).
        let checked = tokio::task::spawn_blocking(move || {
            let result = check_page(&page);
            (page, result)
        });
        let next = if last_page {
            Vec::new()
        } else {
            let mut next = store.audit_page(after, page_size).await?;
            more = within(&mut next);
            next
        };
        let (checked_page, (instances, records, failures)) = checked
            .await
            .map_err(|e| crate::StoreError::Backend(format!("the audit check stopped: {e}")))?;
        drop(checked_page);
        report.instances_checked += instances;
        report.records_checked += records;
        report.failures.extend(failures);
        page = next;
    }
    Ok(report)
}

/// [`check_instance`] over a page: (instances, records, failures).
fn check_page(page: &crate::AuditPage) -> (u64, u64, Vec<AuditFailure>) {
    let records = page.iter().map(|(_, r)| r.len() as u64).sum();
    let failures = page
        .iter()
        .filter_map(|(instance, records)| check_instance(instance, records))
        .collect();
    (page.len() as u64, records, failures)
}
