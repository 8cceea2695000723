//! The races: two managers seating experts at once, an expert submitting twice at once,
//! one expert seated on two panels at once.

use super::*;

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
