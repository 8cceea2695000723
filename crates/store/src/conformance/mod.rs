//! The conformance suite every backend passes (feature `conformance`).
//!
//! Each test is a `pub async fn(Arc<dyn Store>, &dyn Harness)` run on a fresh, migrated
//! database. A backend's `tests/it/conformance.rs` invokes [`conformance_suite!`] with a
//! factory `async fn() -> (Arc<dyn Store>, H)` where `H: Harness` also owns the database
//! (dropping it removes the database), which generates one `#[tokio::test]` per test.
//!
//! One file per aggregate; [`fixtures`] holds what they share.

mod accounts;
mod batch;
mod fixtures;
mod history;
mod instances;
mod listing;
pub mod programme;
mod queue;
pub mod review;

pub use accounts::*;
pub use batch::*;
pub use fixtures::*;
pub use history::*;
pub use instances::*;
pub use listing::*;
pub use queue::*;

use async_trait::async_trait;
use uuid::Uuid;

/// What a backend's test support provides besides the store.
#[async_trait]
pub trait Harness: Send + Sync {
    /// Edit one history record behind the store's back (a raw `UPDATE history SET reason`,
    /// lifting whatever protects the table).
    async fn tamper_history(&self, instance_id: Uuid, seq: i64);
    /// A plain `UPDATE history …` through the backend's driver, as a careless tool would
    /// issue it: the number of rows changed, or the database's refusal.
    async fn raw_update_history(&self, instance_id: Uuid, seq: i64) -> Result<u64, String>;
}

/// Generate one `#[tokio::test]` per conformance test. `$factory` is an
/// `async fn() -> (Arc<dyn Store>, H)` with `H: Harness`; each test gets a fresh database.
#[macro_export]
macro_rules! conformance_suite {
    ($factory:path) => {
        $crate::conformance_suite!(@each $factory;
            migrate_is_idempotent,
            orgs_users_and_roles,
            tokens,
            reset_tokens,
            workflow_definitions,
            create_instance_with_timers,
            transition_happy_path,
            conflict_names_current_version,
            transition_sees_what_the_requester_sees,
            idempotent_replay,
            engine_refusal_writes_nothing,
            engine_refusal_still_spends_the_timer,
            timers_replaced_on_leaving_a_state,
            timeout_transition_consumes_its_timer,
            notifications_reach_the_right_recipients,
            claim_due_timers_and_leases,
            concurrent_claims_never_overlap,
            outbox_claim_and_finish,
            claims_are_released_and_counted,
            enqueue_deduplicates_by_key,
            record_tick_once,
            list_filters,
            list_visibility,
            list_sorting_and_keyset_pagination,
            extend_deadline,
            migrate_instance_to_a_new_version,
            history_chain_verifies,
            race_fifty_writers,
            tamper_is_detected,
            history_is_append_only,
            audit_pages_cover_every_instance_once,
            complete_timers_batch_is_fenced,
            complete_timers_racing_schedulers,
            many_concurrent_writers_all_commit,
        );
    };
    (@each $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let (store, harness) = $factory().await;
                $crate::conformance::$name(store, &harness).await;
            }
        )*
    };
}
