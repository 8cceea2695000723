//! The conformance suite of [`ReviewStore`] (feature `conformance`): every method, the
//! transactional rules (derived rounds, panel fingerprints, caps, sealed versions, the
//! `review` column written with the change) and the races — two managers seating
//! experts at once, an expert submitting twice at once, one expert seated on two panels
//! at once.
//!
//! A backend's `tests/it/conformance.rs` invokes [`review_conformance_suite!`] with the same
//! factory as [`crate::conformance_suite!`].

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate};
use grantflow_domain::schedule::{TimerKind, TimerPlan};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::conformance::{
    Fire, Harness, World, actor, funded_project, new_application, submit_input, t, world,
};
use crate::review::{
    AssignmentChange, AssignmentRecord, ChangedAssignment, CreateAssignments, ExpertProfileInput,
    NewAssignment, NewAssignmentEvent, NewCollaboration, NewSubmission, Recompute, ReopenMark,
    ReviewConflict, RoundKey, RoundRecords, ViewChange, assignment_timer_prefix, expert_recipient,
};
use crate::{
    Instance, NewOrganisation, NewUser, OrgKind, Role, Store, StoreError, TimerStatus, User,
};

/// Generate one `#[tokio::test]` per review conformance test.
#[macro_export]
macro_rules! review_conformance_suite {
    ($factory:path) => {
        $crate::review_conformance_suite!(@each $factory;
            expert_profiles_upsert_and_list,
            collaborations_are_recorded,
            exclusions_replace_and_call_instances,
            round_cycle_follows_the_state,
            assignments_are_created_with_timers_and_result,
            refused_seats_write_nothing,
            lifecycle_changes_visibility_versions_and_result,
            replacement_takes_the_seat_in_one_transaction,
            stale_revision_is_refused,
            leaving_the_state_closes_the_round,
            reminders_reach_one_expert,
            race_two_managers_seat_experts_at_once,
            race_expert_submits_twice_at_once,
            race_one_expert_on_two_panels_at_once,
        );
    };
    (@each $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let (store, harness) = $factory().await;
                $crate::conformance::review::$name(store, &harness).await;
            }
        )*
    };
}

// ------------------------------------------------------------------ fixtures

const ROUND: &str = "application_review";
const OPENS_IN: &str = "expert_review";

async fn expert_user(store: &dyn Store, name: &str, org: Option<Uuid>) -> User {
    store
        .create_user(NewUser {
            username: name.into(),
            display_name: format!("{name} 专家"),
            email: format!("{name}@example.org"),
            org_id: org,
            roles: vec![Role::Expert],
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$salt$x".into(),
            lang: grantflow_domain::Lang::ZhCn,
        })
        .await
        .expect("create expert")
}

async fn profile(store: &dyn Store, user: &User, cap: u32, status: &str) {
    store
        .upsert_expert_profile(ExpertProfileInput {
            user_id: user.id,
            categories: vec![3, 1],
            keywords: vec!["专利".into()],
            workload_cap: cap,
            status: status.into(),
            at: t(0),
        })
        .await
        .expect("upsert profile");
}

/// `n` experts with profiles (cap 5, active).
async fn pool(store: &dyn Store, n: usize) -> Vec<User> {
    let mut out = Vec::new();
    for i in 0..n {
        let u = expert_user(store, &format!("pool_expert_{i}"), None).await;
        profile(store, &u, 5, "active").await;
        out.push(u);
    }
    out
}

/// A funded-project application moved into `expert_review` (entered at version 3).
async fn in_review(store: &dyn Store, w: &World, title: &str) -> Instance {
    let wf = funded_project();
    let inst = new_application(store, &wf, &w.unit, &w.applicant, title, t(0)).await;
    let inst = Fire::new(&wf, &inst, actor(&w.applicant, "applicant"), "submit", t(1))
        .input(submit_input())
        .run(store)
        .await
        .expect("submit")
        .instance;
    let inst = Fire::new(&wf, &inst, actor(&w.city_user, "city"), "recommend", t(2))
        .run(store)
        .await
        .expect("recommend")
        .instance;
    let inst = Fire::new(
        &wf,
        &inst,
        actor(&w.manager, "manager"),
        "pass_formal_check",
        t(3),
    )
    .run(store)
    .await
    .expect("pass formal check")
    .instance;
    assert_eq!(inst.state, OPENS_IN);
    inst
}

fn key(instance: &Instance, cycle: i64) -> RoundKey {
    RoundKey {
        instance_id: instance.id,
        round_id: ROUND.into(),
        opens_in: OPENS_IN.into(),
        cycle,
    }
}

fn timers_for(id: Uuid, due: DateTime<chrono::Utc>) -> Vec<TimerPlan> {
    let prefix = assignment_timer_prefix(id);
    vec![
        TimerPlan {
            kind: TimerKind::Reminder,
            key: format!("{prefix}reminder:1wd"),
            fire_at: due - Duration::days(1),
            due_at: Some(due),
            event: None,
            notify: vec![],
            offset: Some("1wd".into()),
        },
        TimerPlan {
            kind: TimerKind::Due,
            key: format!("{prefix}due"),
            fire_at: due - Duration::hours(6),
            due_at: Some(due),
            event: None,
            notify: vec![],
            offset: None,
        },
    ]
}

fn seat(expert: &User, seed: Option<u64>) -> NewAssignment {
    let id = Uuid::now_v7();
    let due = t(24 * 14);
    let mut timers = timers_for(id, due);
    for timer in &mut timers {
        timer.notify = vec![expert_recipient(expert.id)];
    }
    NewAssignment {
        id,
        expert_id: expert.id,
        seed,
        algorithm: seed.map(|_| "test-draw/v1".to_string()),
        assigned_by: "manager".into(),
        due_at: Some(due),
        timers,
    }
}

/// What the tests store as `review`: how many submitted cards the round holds, and the
/// sum of their totals.
fn counter() -> impl Fn(&RoundRecords) -> Value + Send + Sync {
    |records: &RoundRecords| {
        let submitted: Vec<&AssignmentRecord> = records
            .assignments
            .iter()
            .filter(|a| a.state == "submitted")
            .collect();
        let total: f64 = submitted
            .iter()
            .filter_map(|a| a.latest_submission())
            .map(|s| s.total)
            .sum();
        json!({ "count": submitted.len(), "total": total, "assignments": records.assignments.len() })
    }
}

async fn create(
    store: &dyn Store,
    round: RoundKey,
    expected_panel: Vec<(Uuid, i64)>,
    assignments: Vec<NewAssignment>,
    recompute: Option<&Recompute<'_>>,
) -> Result<Vec<AssignmentRecord>, ReviewConflict> {
    store
        .create_assignments(CreateAssignments {
            round,
            expected_panel,
            assignments,
            recompute,
            at: t(4),
        })
        .await
        .expect("create assignments")
}

fn event(action: &str, from: &str, to: &str, kind: &str, id: &str) -> NewAssignmentEvent {
    NewAssignmentEvent {
        at: t(5),
        actor_kind: kind.into(),
        actor_id: Some(id.into()),
        action: action.into(),
        from_state: from.into(),
        to_state: to.into(),
        reason: None,
    }
}

/// A change of `a` to `state`, logged as `action` by the expert; nothing else.
fn change<'a>(a: &AssignmentRecord, action: &str, state: &str) -> AssignmentChange<'a> {
    AssignmentChange {
        assignment_id: a.id,
        expected_revision: a.revision,
        state: state.into(),
        events: vec![event(
            action,
            &a.state,
            state,
            "expert",
            &a.expert_id.to_string(),
        )],
        submission: None,
        reopen: None,
        justification: None,
        view: ViewChange::Keep,
        cancel_timers: false,
        replacement: None,
        expected_panel: None,
        recompute: None,
        at: t(5),
    }
}

async fn apply(
    store: &dyn Store,
    c: AssignmentChange<'_>,
) -> Result<ChangedAssignment, ReviewConflict> {
    store.change_assignment(c).await.expect("change assignment")
}

fn card(total: f64) -> Value {
    json!({ "scores": { "necessity": { "score": total } }, "total": total, "failing": [] })
}

// ------------------------------------------------------------------ tests

mod assignments;
mod pool;
mod races;

pub use assignments::*;
pub use pool::*;
pub use races::*;
