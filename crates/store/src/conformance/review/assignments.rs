//! Rounds and assignments: cycles, seats with their timers and result, refused seats,
//! the lifecycle (visibility, sealed versions, the result), replacements, stale
//! revisions, a round closed by leaving its state, and reminders.

use super::*;

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
    let err = s.change_assignment(c).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert_eq!(s.assignment(a.id).await.unwrap(), a, "unchanged");
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
    let review = s.get_instance(inst.id).await.unwrap().review;
    let err = s.change_assignment(c).await.unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::Duplicate {
                what: "submission version",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(s.assignment(a.id).await.unwrap(), a, "unchanged");
    assert_eq!(s.get_instance(inst.id).await.unwrap().review, review);

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
    let before = s.assignment(a.id).await.unwrap();
    let mut bad = change(&before, "x", "on_holiday");
    bad.events.clear();
    let err = s.change_assignment(bad).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Invalid(_)),
        "unknown states are refused: {err:?}"
    );
    assert_eq!(s.assignment(a.id).await.unwrap(), before, "unchanged");
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
