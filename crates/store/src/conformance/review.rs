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
            lang: "zh-CN".into(),
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

pub async fn expert_profiles_upsert_and_list(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    world(s).await;
    let e = expert_user(s, "e_profile", None).await;
    assert_eq!(s.expert_profile(e.id).await.unwrap(), None);
    let created = s
        .upsert_expert_profile(ExpertProfileInput {
            user_id: e.id,
            categories: vec![4, 2, 4],
            keywords: vec!["专利运营".into(), "质押融资".into()],
            workload_cap: 6,
            status: "active".into(),
            at: t(0),
        })
        .await
        .unwrap();
    assert_eq!(created.categories, vec![2, 4], "sorted, without repeats");
    assert_eq!(created.keywords, vec!["专利运营", "质押融资"]);
    assert_eq!(
        (created.workload_cap, created.status.as_str()),
        (6, "active")
    );
    let updated = s
        .upsert_expert_profile(ExpertProfileInput {
            user_id: e.id,
            categories: vec![8],
            keywords: vec![],
            workload_cap: 2,
            status: "suspended".into(),
            at: t(5),
        })
        .await
        .unwrap();
    assert_eq!(updated.created_at, created.created_at, "created once");
    assert_eq!(updated.updated_at, t(5));
    assert_eq!(
        (
            updated.categories.clone(),
            updated.workload_cap,
            updated.status.as_str()
        ),
        (vec![8], 2, "suspended")
    );
    assert_eq!(s.expert_profile(e.id).await.unwrap(), Some(updated.clone()));
    let other = expert_user(s, "e_profile_2", None).await;
    profile(s, &other, 3, "retired").await;
    let all = s.expert_profiles().await.unwrap();
    assert_eq!(all.len(), 2);
    assert!(
        all.windows(2).all(|w| w[0].user_id < w[1].user_id),
        "by user id"
    );
    // A bad status or a user that does not exist is refused by the database.
    let bad = s
        .upsert_expert_profile(ExpertProfileInput {
            user_id: e.id,
            categories: vec![1],
            keywords: vec![],
            workload_cap: 2,
            status: "on_holiday".into(),
            at: t(6),
        })
        .await;
    assert!(bad.is_err());
    let nobody = s
        .upsert_expert_profile(ExpertProfileInput {
            user_id: Uuid::now_v7(),
            categories: vec![1],
            keywords: vec![],
            workload_cap: 2,
            status: "active".into(),
            at: t(6),
        })
        .await;
    assert!(nobody.is_err(), "{nobody:?}");
}

pub async fn collaborations_are_recorded(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let until: NaiveDate = "2023-12-31".parse().unwrap();
    let c = s
        .add_collaboration(NewCollaboration {
            expert_id: w.expert.id,
            org_id: w.unit.id,
            until,
            note: Some("联合课题".into()),
            at: t(0),
        })
        .await
        .unwrap();
    s.add_collaboration(NewCollaboration {
        expert_id: w.expert_b.id,
        org_id: w.unit_b.id,
        until,
        note: None,
        at: t(0),
    })
    .await
    .unwrap();
    let dup = s
        .add_collaboration(NewCollaboration {
            expert_id: w.expert.id,
            org_id: w.unit.id,
            until,
            note: None,
            at: t(1),
        })
        .await;
    assert!(matches!(dup, Err(StoreError::Duplicate { .. })), "{dup:?}");
    let mine = s.collaborations(Some(w.expert.id)).await.unwrap();
    assert_eq!(mine, vec![c]);
    assert_eq!(mine[0].until, until);
    assert_eq!(s.collaborations(None).await.unwrap().len(), 2);
}

pub async fn exclusions_replace_and_call_instances(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let a = new_application(s, &wf, &w.unit, &w.applicant, "甲", t(0)).await;
    let b = new_application(s, &wf, &w.unit_b, &w.applicant_b, "乙", t(1)).await;
    assert!(s.exclusions(a.id).await.unwrap().is_empty());
    s.set_exclusions(a.id, &[w.unit_b.id, w.other_unit.id], w.applicant.id, t(2))
        .await
        .unwrap();
    let mut expected = vec![w.unit_b.id, w.other_unit.id];
    expected.sort();
    assert_eq!(s.exclusions(a.id).await.unwrap(), expected);
    s.set_exclusions(a.id, &[w.city.id], w.applicant.id, t(3))
        .await
        .unwrap();
    assert_eq!(
        s.exclusions(a.id).await.unwrap(),
        vec![w.city.id],
        "replaced"
    );
    assert!(s.exclusions(b.id).await.unwrap().is_empty());
    let unknown = s
        .set_exclusions(a.id, &[Uuid::now_v7()], w.applicant.id, t(4))
        .await;
    assert!(unknown.is_err(), "an unknown organisation is refused");
    assert_eq!(
        s.exclusions(a.id).await.unwrap(),
        vec![w.city.id],
        "unchanged"
    );

    let ids: Vec<Uuid> = s
        .call_instances("funded-project", "2024-call")
        .await
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids, vec![a.id, b.id], "oldest first");
    assert!(
        s.call_instances("funded-project", "2023-call")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.call_instances("demand-collection", "2024-call")
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn round_cycle_follows_the_state(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let inst = new_application(s, &wf, &w.unit, &w.applicant, "往返", t(0)).await;
    assert_eq!(
        s.round_cycle(inst.id, "drafting").await.unwrap(),
        Some(0),
        "started there"
    );
    assert_eq!(s.round_cycle(inst.id, "formal_check").await.unwrap(), None);
    let inst = Fire::new(&wf, &inst, actor(&w.applicant, "applicant"), "submit", t(1))
        .input(submit_input())
        .run(s)
        .await
        .unwrap()
        .instance;
    let inst = Fire::new(&wf, &inst, actor(&w.city_user, "city"), "recommend", t(2))
        .run(s)
        .await
        .unwrap()
        .instance;
    assert_eq!(
        s.round_cycle(inst.id, "formal_check").await.unwrap(),
        Some(2)
    );
    assert_eq!(s.round_cycle(inst.id, "drafting").await.unwrap(), None);
    let inst = Fire::new(
        &wf,
        &inst,
        actor(&w.manager, "manager"),
        "return_for_correction",
        t(3),
    )
    .input(json!({ "correction_notes": "补充材料" }))
    .reason("材料不全")
    .run(s)
    .await
    .unwrap()
    .instance;
    assert_eq!(s.round_cycle(inst.id, "formal_check").await.unwrap(), None);
    let inst = Fire::new(
        &wf,
        &inst,
        actor(&w.applicant, "applicant"),
        "resubmit",
        t(4),
    )
    .run(s)
    .await
    .unwrap()
    .instance;
    assert_eq!(
        s.round_cycle(inst.id, "formal_check").await.unwrap(),
        Some(4),
        "entering again is a new cycle"
    );
    let missing = s.round_cycle(Uuid::now_v7(), "formal_check").await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );
}

pub async fn assignments_are_created_with_timers_and_result(
    store: Arc<dyn Store>,
    _h: &dyn Harness,
) {
    let s = store.as_ref();
    let w = world(s).await;
    let experts = pool(s, 3).await;
    let inst = in_review(s, &w, "评审项目").await;
    let cycle = s.round_cycle(inst.id, OPENS_IN).await.unwrap().unwrap();
    assert_eq!(cycle, 3);
    let empty = s.round_records(inst.id, ROUND, cycle).await.unwrap();
    assert!(empty.assignments.is_empty() && empty.fingerprint().is_empty());
    let recompute = counter();
    let seats = vec![seat(&experts[0], Some(42)), seat(&experts[1], Some(42))];
    let created = create(
        s,
        key(&inst, cycle),
        vec![],
        seats.clone(),
        Some(&recompute),
    )
    .await
    .expect("seated");
    assert_eq!(created.len(), 2);
    let a = &created[0];
    assert_eq!(a.id, seats[0].id);
    assert_eq!(
        (a.round_id.as_str(), a.opens_in.as_str(), a.cycle),
        (ROUND, OPENS_IN, 3)
    );
    assert_eq!((a.state.as_str(), a.revision), ("assigned", 0));
    assert_eq!(
        (a.seed, a.algorithm.as_deref()),
        (Some(42), Some("test-draw/v1"))
    );
    assert_eq!(a.assigned_at, t(4));
    assert_eq!(a.due_at, Some(t(24 * 14)));
    assert!(a.round_open);
    assert!(a.events.is_empty() && a.submissions.is_empty());
    // A seed uses all 64 bits.
    let big = seat(&experts[2], Some(u64::MAX));
    let panel = s
        .round_records(inst.id, ROUND, cycle)
        .await
        .unwrap()
        .fingerprint();
    let created = create(
        s,
        key(&inst, cycle),
        panel,
        vec![big.clone()],
        Some(&recompute),
    )
    .await
    .unwrap();
    assert_eq!(created[0].seed, Some(u64::MAX));

    let round = s.round_records(inst.id, ROUND, cycle).await.unwrap();
    assert!(round.open);
    assert_eq!(round.assignments.len(), 3);
    assert_eq!(round.fingerprint().len(), 3);
    assert_eq!(s.assignment(a.id).await.unwrap(), round.assignments[0]);
    assert_eq!(s.instance_assignments(inst.id).await.unwrap().len(), 3);
    assert_eq!(
        s.get_instance(inst.id).await.unwrap().review,
        json!({ "count": 0, "total": 0.0, "assignments": 3 }),
        "the result is written with the seats"
    );
    // The timers belong to the round's state entry and address the expert.
    let timers: Vec<_> = s
        .timers_for_instance(inst.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t.key.starts_with(&assignment_timer_prefix(a.id)))
        .collect();
    assert_eq!(timers.len(), 2);
    assert!(
        timers
            .iter()
            .all(|t| t.state == OPENS_IN && t.state_entry == 3)
    );
    assert!(
        timers
            .iter()
            .all(|t| t.notify == vec![expert_recipient(experts[0].id)])
    );
    assert!(timers.iter().all(|t| t.status == TimerStatus::Pending));
    // Queue and loads.
    let queue = s.expert_queue(experts[0].id, false).await.unwrap();
    assert_eq!(queue.iter().map(|q| q.id).collect::<Vec<_>>(), vec![a.id]);
    assert!(s.expert_queue(w.expert.id, true).await.unwrap().is_empty());
    let mut loads = s.open_loads().await.unwrap();
    loads.sort();
    let mut expected: Vec<(Uuid, u32)> = experts.iter().map(|e| (e.id, 1)).collect();
    expected.sort();
    assert_eq!(loads, expected);
    // The application is not shown before the expert declares no conflict.
    assert!(!s.is_assigned_expert(inst.id, experts[0].id).await.unwrap());
    let missing = s.assignment(Uuid::now_v7()).await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );
}

pub async fn refused_seats_write_nothing(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let experts = pool(s, 2).await;
    let busy = expert_user(s, "busy", None).await;
    profile(s, &busy, 1, "active").await;
    let suspended = expert_user(s, "suspended", None).await;
    profile(s, &suspended, 5, "suspended").await;
    let no_profile = expert_user(s, "no_profile", None).await;
    let inst = in_review(s, &w, "项目").await;
    let other = in_review(s, &w, "另一个项目").await;
    let round = key(&inst, 3);
    let first = create(
        s,
        round.clone(),
        vec![],
        vec![seat(&experts[0], None)],
        None,
    )
    .await
    .unwrap();
    create(s, key(&other, 3), vec![], vec![seat(&busy, None)], None)
        .await
        .unwrap();
    let panel = vec![(first[0].id, 0)];

    let stale = create(
        s,
        round.clone(),
        vec![],
        vec![seat(&experts[1], None)],
        None,
    )
    .await;
    assert_eq!(stale.unwrap_err(), ReviewConflict::PanelChanged);
    let again = create(
        s,
        round.clone(),
        panel.clone(),
        vec![seat(&experts[0], None)],
        None,
    )
    .await;
    assert_eq!(
        again.unwrap_err(),
        ReviewConflict::AlreadyOnPanel {
            expert_id: experts[0].id
        }
    );
    let twice = create(
        s,
        round.clone(),
        panel.clone(),
        vec![seat(&experts[1], None), seat(&experts[1], None)],
        None,
    )
    .await;
    assert_eq!(
        twice.unwrap_err(),
        ReviewConflict::AlreadyOnPanel {
            expert_id: experts[1].id
        },
        "and nothing of the request was kept"
    );
    let capped = create(
        s,
        round.clone(),
        panel.clone(),
        vec![seat(&busy, None)],
        None,
    )
    .await;
    assert_eq!(
        capped.unwrap_err(),
        ReviewConflict::OverCap {
            expert_id: busy.id,
            load: 1,
            cap: 1
        }
    );
    for u in [&suspended, &no_profile] {
        let refused = create(s, round.clone(), panel.clone(), vec![seat(u, None)], None).await;
        assert_eq!(
            refused.unwrap_err(),
            ReviewConflict::NotInPool { expert_id: u.id }
        );
    }
    let wrong_cycle = create(
        s,
        key(&inst, 2),
        vec![],
        vec![seat(&experts[1], None)],
        None,
    )
    .await;
    assert_eq!(wrong_cycle.unwrap_err(), ReviewConflict::RoundClosed);
    let wrong_state = RoundKey {
        opens_in: "acceptance_review".into(),
        round_id: "acceptance_review".into(),
        ..key(&inst, 3)
    };
    let closed = create(s, wrong_state, vec![], vec![seat(&experts[1], None)], None).await;
    assert_eq!(closed.unwrap_err(), ReviewConflict::RoundClosed);
    let records = s.round_records(inst.id, ROUND, 3).await.unwrap();
    assert_eq!(
        records.fingerprint(),
        panel,
        "no refused write left a trace"
    );
    let timers = s.timers_for_instance(inst.id).await.unwrap();
    assert_eq!(
        timers
            .iter()
            .filter(|t| t.key.starts_with("review:"))
            .count(),
        2,
        "only the timers of the one seat"
    );
}

pub async fn lifecycle_changes_visibility_versions_and_result(
    store: Arc<dyn Store>,
    _h: &dyn Harness,
) {
    let s = store.as_ref();
    let w = world(s).await;
    let experts = pool(s, 2).await;
    let inst = in_review(s, &w, "项目").await;
    let recompute = counter();
    let seated = create(
        s,
        key(&inst, 3),
        vec![],
        vec![seat(&experts[0], None), seat(&experts[1], None)],
        Some(&recompute),
    )
    .await
    .unwrap();
    let a = &seated[0];

    // Declare no conflict: the application is shown.
    let mut c = change(a, "declare_no_conflict", "accepted");
    c.view = ViewChange::Grant;
    let a = apply(s, c).await.unwrap().assignment;
    assert_eq!((a.state.as_str(), a.revision), ("accepted", 1));
    assert_eq!(a.events.len(), 1);
    assert_eq!(a.events[0].seq, 1);
    assert_eq!(a.events[0].action, "declare_no_conflict");
    assert_eq!(
        (
            a.events[0].from_state.as_str(),
            a.events[0].to_state.as_str()
        ),
        ("assigned", "accepted")
    );
    assert!(s.is_assigned_expert(inst.id, experts[0].id).await.unwrap());
    assert!(!s.is_assigned_expert(inst.id, experts[1].id).await.unwrap());

    // Submit version 1: sealed, timers cancelled, result written in the same transaction.
    let mut c = change(&a, "submit", "submitted");
    c.submission = Some(NewSubmission {
        version: 1,
        card: card(80.0),
        total: 80.0,
    });
    c.justification = Some((1, "创新性突出".into()));
    c.cancel_timers = true;
    c.recompute = Some(&recompute);
    let a = apply(s, c).await.unwrap().assignment;
    assert_eq!(a.submissions.len(), 1);
    let v1 = &a.submissions[0];
    assert_eq!((v1.version, v1.total, v1.submitted_at), (1, 80.0, t(5)));
    assert_eq!(v1.card, card(80.0), "the card comes back as stored");
    assert_eq!(a.justifications[0].text, "创新性突出");
    assert_eq!(
        s.get_instance(inst.id).await.unwrap().review,
        json!({ "count": 1, "total": 80.0, "assignments": 2 })
    );
    let timers = s.timers_for_instance(inst.id).await.unwrap();
    let prefix = assignment_timer_prefix(a.id);
    assert!(
        timers
            .iter()
            .filter(|t| t.key.starts_with(&prefix))
            .all(|t| t.status == TimerStatus::Cancelled),
        "the submitted assignment's reminders are cancelled"
    );
    let other_prefix = assignment_timer_prefix(seated[1].id);
    assert!(
        timers
            .iter()
            .filter(|t| t.key.starts_with(&other_prefix))
            .all(|t| t.status == TimerStatus::Pending),
        "the other expert's reminders stay"
    );

    // Reopen by a manager with a reason; resubmit version 2; both versions are kept.
    let mut c = change(&a, "reopen", "reopened");
    c.events = vec![NewAssignmentEvent {
        reason: Some("评语与分数不符".into()),
        ..event(
            "reopen",
            "submitted",
            "reopened",
            "manager",
            &w.manager.id.to_string(),
        )
    }];
    c.reopen = Some(ReopenMark {
        version: 1,
        by: w.manager.id.to_string(),
        reason: "评语与分数不符".into(),
    });
    c.recompute = Some(&recompute);
    let a = apply(s, c).await.unwrap().assignment;
    assert_eq!(
        a.submissions[0].reopen_reason.as_deref(),
        Some("评语与分数不符")
    );
    assert_eq!(a.submissions[0].reopened_by, Some(w.manager.id.to_string()));
    assert_eq!(s.get_instance(inst.id).await.unwrap().review["count"], 0);
    // Reopening the same version twice is refused.
    let mut c = change(&a, "reopen", "reopened");
    c.reopen = Some(ReopenMark {
        version: 1,
        by: "m".into(),
        reason: "x".into(),
    });
    assert!(s.change_assignment(c).await.is_err());
    let mut c = change(&a, "submit", "submitted");
    c.submission = Some(NewSubmission {
        version: 2,
        card: card(70.0),
        total: 70.0,
    });
    c.recompute = Some(&recompute);
    let a = apply(s, c).await.unwrap().assignment;
    assert_eq!(
        a.submissions
            .iter()
            .map(|v| (v.version, v.total))
            .collect::<Vec<_>>(),
        vec![(1, 80.0), (2, 70.0)]
    );
    assert_eq!(a.latest_submission().unwrap().version, 2);
    assert_eq!(
        a.events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(a.events[2].reason.as_deref(), Some("评语与分数不符"));
    assert_eq!(s.get_instance(inst.id).await.unwrap().review["total"], 70.0);
    // A version number is used once.
    let mut c = change(&a, "submit", "submitted");
    c.submission = Some(NewSubmission {
        version: 2,
        card: card(10.0),
        total: 10.0,
    });
    assert!(s.change_assignment(c).await.is_err());

    // The second expert declines: hidden again (it was never shown), timers cancelled.
    let b = &seated[1];
    let mut c = change(b, "decline", "declined");
    c.view = ViewChange::Revoke;
    c.cancel_timers = true;
    let b = apply(s, c).await.unwrap().assignment;
    assert_eq!(b.state, "declined");
    assert!(!s.is_assigned_expert(inst.id, experts[1].id).await.unwrap());
    // Revoking keeps the application shown while another assignment of the expert shows it.
    let mut c = change(&a, "noop", "submitted");
    c.view = ViewChange::Revoke;
    apply(s, c).await.unwrap();
    assert!(
        s.is_assigned_expert(inst.id, experts[0].id).await.unwrap(),
        "a submitted assignment still shows the application"
    );
    let mut loads = s.open_loads().await.unwrap();
    loads.sort();
    assert_eq!(
        loads,
        vec![(experts[0].id, 1)],
        "a declined seat is no load"
    );
}

pub async fn replacement_takes_the_seat_in_one_transaction(
    store: Arc<dyn Store>,
    _h: &dyn Harness,
) {
    let s = store.as_ref();
    let w = world(s).await;
    let experts = pool(s, 3).await;
    let inst = in_review(s, &w, "项目").await;
    let recompute = counter();
    let seated = create(
        s,
        key(&inst, 3),
        vec![],
        vec![seat(&experts[0], None), seat(&experts[1], None)],
        None,
    )
    .await
    .unwrap();
    let panel = s
        .round_records(inst.id, ROUND, 3)
        .await
        .unwrap()
        .fingerprint();
    let leaving = &seated[0];
    let newcomer = seat(&experts[2], Some(7));
    let mut c = change(leaving, "declare_conflict", "replaced");
    c.events.push(event(
        "replace",
        "conflict_declared",
        "replaced",
        "system",
        "scheduler",
    ));
    c.events[0].to_state = "conflict_declared".into();
    c.events[0].reason = Some("曾任该单位顾问".into());
    c.view = ViewChange::Revoke;
    c.cancel_timers = true;
    c.replacement = Some(newcomer.clone());
    c.expected_panel = Some(panel.clone());
    c.recompute = Some(&recompute);
    let changed = apply(s, c).await.unwrap();
    let old = changed.assignment;
    let new = changed.replacement.expect("the replacement");
    assert_eq!(old.state, "replaced");
    assert_eq!(old.replaced_by, Some(new.id));
    assert_eq!(new.replaces, Some(old.id));
    assert_eq!(
        (new.expert_id, new.seed, new.state.as_str()),
        (experts[2].id, Some(7), "assigned")
    );
    assert_eq!(old.events.len(), 2);
    assert_eq!(old.events[0].reason.as_deref(), Some("曾任该单位顾问"));
    let timers = s.timers_for_instance(inst.id).await.unwrap();
    assert!(
        timers
            .iter()
            .filter(|t| t.key.starts_with(&assignment_timer_prefix(new.id)))
            .all(|t| t.status == TimerStatus::Pending)
    );
    assert_eq!(
        timers
            .iter()
            .filter(|t| t.key.starts_with(&assignment_timer_prefix(new.id)))
            .count(),
        2
    );
    assert_eq!(
        s.get_instance(inst.id).await.unwrap().review["assignments"],
        3
    );
    // A replacement computed from an old view of the panel is refused, and changes nothing.
    let b = s.assignment(seated[1].id).await.unwrap();
    let mut c = change(&b, "decline", "declined");
    c.replacement = Some(seat(&experts[0], None));
    c.expected_panel = Some(panel);
    assert_eq!(apply(s, c).await.unwrap_err(), ReviewConflict::PanelChanged);
    assert_eq!(s.assignment(b.id).await.unwrap(), b);
    // Nor can a replacement seat someone who sat on the panel before.
    let panel = s
        .round_records(inst.id, ROUND, 3)
        .await
        .unwrap()
        .fingerprint();
    let mut c = change(&b, "decline", "declined");
    c.replacement = Some(seat(&experts[0], None));
    c.expected_panel = Some(panel);
    assert_eq!(
        apply(s, c).await.unwrap_err(),
        ReviewConflict::AlreadyOnPanel {
            expert_id: experts[0].id
        }
    );
}

pub async fn stale_revision_is_refused(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let experts = pool(s, 1).await;
    let inst = in_review(s, &w, "项目").await;
    let a = create(
        s,
        key(&inst, 3),
        vec![],
        vec![seat(&experts[0], None)],
        None,
    )
    .await
    .unwrap()
    .remove(0);
    apply(s, change(&a, "declare_no_conflict", "accepted"))
        .await
        .unwrap();
    let stale = apply(s, change(&a, "decline", "declined")).await;
    assert_eq!(
        stale.unwrap_err(),
        ReviewConflict::AssignmentChanged {
            state: "accepted".into(),
            revision: 1
        }
    );
    let mut bad = change(&s.assignment(a.id).await.unwrap(), "x", "on_holiday");
    bad.events.clear();
    assert!(
        s.change_assignment(bad).await.is_err(),
        "unknown states are refused"
    );
    let mut missing = change(&a, "x", "accepted");
    missing.assignment_id = Uuid::now_v7();
    assert!(matches!(
        s.change_assignment(missing).await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn leaving_the_state_closes_the_round(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let experts = pool(s, 2).await;
    let inst = in_review(s, &w, "项目").await;
    let seated = create(
        s,
        key(&inst, 3),
        vec![],
        vec![seat(&experts[0], None), seat(&experts[1], None)],
        None,
    )
    .await
    .unwrap();
    // A deadline extension stays in the state: the round stays open.
    let inst = s
        .extend_deadline(crate::ExtendDeadline {
            instance_id: inst.id,
            expected_version: inst.version,
            new_due_at: t(24 * 60),
            timers: vec![],
            actor_id: w.manager.id.to_string(),
            actor_roles: vec!["manager".into()],
            reason: "节假日顺延".into(),
            at: t(6),
        })
        .await
        .unwrap()
        .instance;
    assert_eq!(s.round_cycle(inst.id, OPENS_IN).await.unwrap(), Some(3));
    assert!(s.assignment(seated[0].id).await.unwrap().round_open);
    s.set_review_result(
        inst.id,
        json!({ "total": 75.0, "count": 3, "passed": true }),
    )
    .await
    .unwrap();
    Fire::new(
        &wf,
        &inst,
        actor(&w.manager, "manager"),
        "conclude_review",
        t(7),
    )
    .run(s)
    .await
    .expect("conclude");
    assert_eq!(s.round_cycle(inst.id, OPENS_IN).await.unwrap(), None);
    let a = s.assignment(seated[0].id).await.unwrap();
    assert!(!a.round_open);
    assert!(!s.round_records(inst.id, ROUND, 3).await.unwrap().open);
    assert!(
        s.expert_queue(experts[0].id, false)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.expert_queue(experts[0].id, true).await.unwrap().len(), 1);
    assert!(
        s.open_loads().await.unwrap().is_empty(),
        "closed rounds are no load"
    );
    let refused = apply(s, change(&a, "declare_no_conflict", "accepted")).await;
    assert_eq!(refused.unwrap_err(), ReviewConflict::RoundClosed);
    let late = create(
        s,
        key(&inst, 3),
        vec![(seated[0].id, 0), (seated[1].id, 0)],
        vec![seat(&w.expert, None)],
        None,
    )
    .await;
    assert_eq!(late.unwrap_err(), ReviewConflict::RoundClosed);
    assert_eq!(
        s.get_instance(inst.id).await.unwrap().review["total"],
        75.0,
        "a refused write leaves the result alone"
    );
    // The reminders of the round went with the state.
    let timers = s.timers_for_instance(inst.id).await.unwrap();
    assert!(
        timers
            .iter()
            .filter(|t| t.key.starts_with("review:"))
            .all(|t| t.status == TimerStatus::Cancelled)
    );
}

pub async fn reminders_reach_one_expert(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let experts = pool(s, 2).await;
    let inst = in_review(s, &w, "项目").await;
    let users = s
        .recipients(&inst, &[expert_recipient(experts[1].id)])
        .await
        .unwrap();
    assert_eq!(
        users.iter().map(|u| u.id).collect::<Vec<_>>(),
        vec![experts[1].id]
    );
    let none = s
        .recipients(
            &inst,
            &[
                "expert:not-a-uuid".to_string(),
                expert_recipient(Uuid::now_v7()),
            ],
        )
        .await
        .unwrap();
    assert!(none.is_empty());
    // Still only assigned experts for the role `expert`.
    assert!(
        s.recipients(&inst, &["expert".to_string()])
            .await
            .unwrap()
            .is_empty()
    );
    s.update_user(
        experts[1].id,
        crate::UserPatch {
            active: Some(false),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(
        s.recipients(&inst, &[expert_recipient(experts[1].id)])
            .await
            .unwrap()
            .is_empty(),
        "inactive users get nothing"
    );
    let org = s
        .create_org(NewOrganisation {
            name: "某研究院".into(),
            kind: OrgKind::Unit,
            parent_id: Some(w.city.id),
        })
        .await
        .unwrap();
    let e = expert_user(s, "with_org", Some(org.id)).await;
    assert_eq!(
        s.recipients(&inst, &[expert_recipient(e.id)])
            .await
            .unwrap()[0]
            .id,
        e.id
    );
}

pub async fn race_two_managers_seat_experts_at_once(store: Arc<dyn Store>, _h: &dyn Harness) {
    let w = world(store.as_ref()).await;
    let experts = pool(store.as_ref(), 6).await;
    let inst = in_review(store.as_ref(), &w, "项目").await;
    let mut tasks = Vec::new();
    for k in 0..2 {
        let store = store.clone();
        let seats: Vec<NewAssignment> = experts[k * 3..k * 3 + 3]
            .iter()
            .map(|e| seat(e, Some(k as u64)))
            .collect();
        let round = key(&inst, 3);
        tasks.push(tokio::spawn(async move {
            let recompute = counter();
            store
                .create_assignments(CreateAssignments {
                    round,
                    expected_panel: vec![],
                    assignments: seats,
                    recompute: Some(&recompute),
                    at: t(4),
                })
                .await
                .expect("no database error")
        }));
    }
    let mut won = 0;
    let mut lost = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(seated) => {
                assert_eq!(seated.len(), 3);
                won += 1;
            }
            Err(ReviewConflict::PanelChanged) => lost += 1,
            Err(other) => panic!("unexpected refusal {other:?}"),
        }
    }
    assert_eq!((won, lost), (1, 1), "one panel, drawn once");
    let round = store.round_records(inst.id, ROUND, 3).await.unwrap();
    assert_eq!(round.assignments.len(), 3);
    let seeds: Vec<Option<u64>> = round.assignments.iter().map(|a| a.seed).collect();
    assert!(
        seeds.windows(2).all(|p| p[0] == p[1]),
        "all three from the same draw"
    );
    assert_eq!(
        store.get_instance(inst.id).await.unwrap().review["assignments"],
        3
    );
}

pub async fn race_expert_submits_twice_at_once(store: Arc<dyn Store>, _h: &dyn Harness) {
    let w = world(store.as_ref()).await;
    let experts = pool(store.as_ref(), 1).await;
    let inst = in_review(store.as_ref(), &w, "项目").await;
    let a = create(
        store.as_ref(),
        key(&inst, 3),
        vec![],
        vec![seat(&experts[0], None)],
        None,
    )
    .await
    .unwrap()
    .remove(0);
    let a = apply(
        store.as_ref(),
        change(&a, "declare_no_conflict", "accepted"),
    )
    .await
    .unwrap()
    .assignment;
    let mut tasks = Vec::new();
    for k in 0..4 {
        let store = store.clone();
        let a = a.clone();
        tasks.push(tokio::spawn(async move {
            let recompute = counter();
            let total = 60.0 + f64::from(k);
            let mut c = change(&a, "submit", "submitted");
            c.submission = Some(NewSubmission {
                version: 1,
                card: card(total),
                total,
            });
            c.cancel_timers = true;
            c.recompute = Some(&recompute);
            store.change_assignment(c).await.expect("no database error")
        }));
    }
    let mut won = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            Ok(changed) => won.push(changed.assignment),
            Err(ReviewConflict::AssignmentChanged { state, revision }) => {
                assert_eq!((state.as_str(), revision), ("submitted", 2));
            }
            Err(other) => panic!("unexpected refusal {other:?}"),
        }
    }
    assert_eq!(won.len(), 1, "exactly one submission wins");
    let stored = store.assignment(a.id).await.unwrap();
    assert_eq!(stored.submissions.len(), 1);
    assert_eq!(stored.submissions[0].total, won[0].submissions[0].total);
    assert_eq!(
        store.get_instance(inst.id).await.unwrap().review["count"],
        1
    );
}

pub async fn race_one_expert_on_two_panels_at_once(store: Arc<dyn Store>, _h: &dyn Harness) {
    let w = world(store.as_ref()).await;
    let capped = expert_user(store.as_ref(), "capped", None).await;
    profile(store.as_ref(), &capped, 1, "active").await;
    let mut instances = Vec::new();
    for k in 0..3 {
        instances.push(in_review(store.as_ref(), &w, &format!("项目 {k}")).await);
    }
    let mut tasks = Vec::new();
    for inst in &instances {
        let store = store.clone();
        let round = key(inst, 3);
        let capped = capped.clone();
        tasks.push(tokio::spawn(async move {
            store
                .create_assignments(CreateAssignments {
                    round,
                    expected_panel: vec![],
                    assignments: vec![seat(&capped, None)],
                    recompute: None,
                    at: t(4),
                })
                .await
                .expect("no database error")
        }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => won += 1,
            Err(ReviewConflict::OverCap {
                load: 1, cap: 1, ..
            }) => {}
            Err(other) => panic!("unexpected refusal {other:?}"),
        }
    }
    assert_eq!(won, 1, "the cap holds across panels");
    assert_eq!(store.open_loads().await.unwrap(), vec![(capped.id, 1)]);
}
