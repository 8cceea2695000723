//! Workflow definitions, instances and transitions: versions, idempotency, engine refusals, timers of a state entry, notifications, deadline extensions and version migrations.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use grantflow_domain::calendar::WorkCalendar;
use grantflow_domain::engine::EngineError;
use grantflow_domain::schedule::TimerKind;
use serde_json::json;
use uuid::Uuid;

use crate::{
    ExtendDeadline, OutboxStatus, Store, StoreError, TimerStatus, Visibility, WorkflowRecord, audit,
};

use super::Harness;
use super::fixtures::*;

pub async fn workflow_definitions(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let wf = funded_project();
    let record = WorkflowRecord {
        workflow_id: wf.def.id.clone(),
        version: wf.def.version,
        hash: wf.hash.clone(),
        definition: serde_json::to_value(&wf.def).unwrap(),
        created_at: t(0),
    };
    s.save_workflow(record.clone()).await.unwrap();
    s.save_workflow(record.clone())
        .await
        .expect("the same content again is fine");
    let changed = s
        .save_workflow(WorkflowRecord {
            hash: "f".repeat(64),
            ..record.clone()
        })
        .await;
    match changed {
        Err(StoreError::DefinitionChanged {
            workflow_id,
            version,
            stored,
        }) => {
            assert_eq!(workflow_id, "funded-project");
            assert_eq!(version, wf.def.version);
            assert_eq!(stored, wf.hash);
        }
        other => panic!("a changed released version is refused, got {other:?}"),
    }
    s.save_workflow(WorkflowRecord {
        version: 2,
        hash: "f".repeat(64),
        ..record.clone()
    })
    .await
    .expect("a new version is fine");
    let list = s.list_workflows().await.unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0], record, "the definition comes back as stored");
}

pub async fn create_instance_with_timers(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let inst = new_application(s, &wf, &w.unit, &w.applicant, "专利导航项目", t(0)).await;
    assert_eq!(inst.version, 0);
    assert_eq!(inst.state, "drafting");
    assert_eq!(
        inst.city_id,
        Some(w.city.id),
        "a unit's instances belong to its city"
    );
    assert_eq!(inst.last_hash, grantflow_domain::audit::GENESIS_HASH);
    assert_eq!(
        inst.due_at,
        Some(Utc.with_ymd_and_hms(2024, 6, 29, 16, 0, 0).unwrap())
    );
    assert_eq!(
        s.get_instance(inst.id).await.unwrap(),
        inst,
        "read back as created"
    );
    assert_eq!(
        s.get_instances(&[inst.id]).await.unwrap(),
        vec![inst.clone()]
    );
    let timers = s.timers_for_instance(inst.id).await.unwrap();
    let keys: Vec<_> = timers.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "reminder:7d",
            "reminder:3d",
            "reminder:1d",
            "due",
            "timeout"
        ]
    );
    assert!(
        timers
            .iter()
            .all(|t| t.status == TimerStatus::Pending && t.state_entry == 0)
    );
    let timeout = timers.iter().find(|t| t.key == "timeout").unwrap();
    assert_eq!(timeout.kind, TimerKind::Timeout);
    assert_eq!(timeout.event.as_deref(), Some("application_closed"));
    assert_eq!(s.pending_timer_count().await.unwrap(), 5);
    assert_eq!(s.next_timer_at().await.unwrap(), Some(timers[0].fire_at));
    assert!(s.history(inst.id).await.unwrap().is_empty());
    assert!(matches!(
        s.get_instance(Uuid::now_v7()).await,
        Err(StoreError::NotFound { .. })
    ));

    // A city's own instance belongs to that city; the province's to none.
    let by_city = new_application(s, &wf, &w.city, &w.city_user, "市局项目", t(0)).await;
    assert_eq!(by_city.city_id, Some(w.city.id));
    let by_province = new_application(s, &wf, &w.province, &w.manager, "省局项目", t(0)).await;
    assert_eq!(by_province.city_id, None);
    // Due-soon listing for digests: non-final instances due by then.
    let due = s
        .instances_due_before(Utc.with_ymd_and_hms(2024, 6, 30, 0, 0, 0).unwrap())
        .await
        .unwrap();
    assert_eq!(due.len(), 3);
    assert!(s.instances_due_before(t(0)).await.unwrap().is_empty());
}

/// Walk one application from drafting to execution through the real workflow.
pub async fn transition_happy_path(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let inst = new_application(s, &wf, &w.unit, &w.applicant, "专利导航项目", t(0)).await;
    let applicant = actor(&w.applicant, "applicant");
    let city = actor(&w.city_user, "city");
    let manager = actor(&w.manager, "manager");

    let inst = ok(
        s,
        Fire::new(&wf, &inst, applicant.clone(), "submit", t(1)).input(submit_input()),
    )
    .await;
    assert_eq!((inst.state.as_str(), inst.version), ("city_review", 1));
    assert_eq!(
        inst.data["budget"], "300000.00",
        "the engine's normalised data is stored"
    );
    let inst = ok(
        s,
        Fire::new(&wf, &inst, city, "recommend", t(2)).input(json!({"city_opinion": "同意推荐"})),
    )
    .await;
    let inst = ok(
        s,
        Fire::new(&wf, &inst, manager.clone(), "pass_formal_check", t(3)),
    )
    .await;
    assert_eq!(inst.stage, "expert_review");
    // The review result guards read is stored with the instance.
    s.set_review_result(inst.id, json!({ "count": 3, "total": 78.5 }))
        .await
        .unwrap();
    let inst = s.get_instance(inst.id).await.unwrap();
    assert_eq!(inst.review["total"], 78.5);
    let inst = ok(
        s,
        Fire::new(&wf, &inst, manager.clone(), "conclude_review", t(4)),
    )
    .await;
    assert_eq!(inst.state, "decision");
    // 先有预算再有执行: approval needs a budget line (the guard reads `budget`).
    s.add_budget_line(crate::programme::BudgetLine {
        id: Uuid::now_v7(),
        instance_id: inst.id,
        year: 2024,
        subject: "项目经费".into(),
        amount: grantflow_domain::Money::from_yuan(250_000).unwrap(),
        source: "省级财政专项资金".into(),
        created_by: w.manager.id,
        created_at: t(4),
    })
    .await
    .unwrap();
    let inst = s.get_instance(inst.id).await.unwrap();
    let inst = ok(
        s,
        Fire::new(&wf, &inst, manager.clone(), "approve", t(5)).input(json!({
            "approved_budget": "250000",
            "budget_line_id": "2024-IP-017",
            "targets_approved": true
        })),
    )
    .await;
    assert_eq!(inst.state, "publicity");
    let inst = ok(
        s,
        Fire::new(&wf, &inst, manager.clone(), "publicity_ended", t(6)),
    )
    .await;
    let inst = ok(
        s,
        Fire::new(&wf, &inst, applicant, "submit_task_book", t(7)).input(json!({
            "task_book": { "name": "任务书.pdf", "sha256": "cd".repeat(32), "size": 1024 },
            "milestones": "2024年12月完成中期，2025年6月验收",
            "execution_end": "2025-06-30",
            "tasks": [{ "focus": "知识产权保护", "task": "开展维权援助", "deliverable_form": "工作报告", "department": "项目组", "due": "2024-12-31" }], "report_schedule": "quarterly"
        })),
    )
    .await;
    let inst = ok(s, Fire::new(&wf, &inst, manager, "sign_task_book", t(8))).await;
    assert_eq!(
        (inst.state.as_str(), inst.stage.as_str(), inst.version),
        ("execution", "execution", 8)
    );
    assert_eq!(
        inst.due_at,
        Some(Utc.with_ymd_and_hms(2025, 6, 30, 16, 0, 0).unwrap())
    );
    assert_eq!(
        s.get_instance(inst.id).await.unwrap(),
        inst,
        "what apply returns is what is stored"
    );

    let history = s.history(inst.id).await.unwrap();
    let events: Vec<_> = history.iter().map(|r| r.event.as_str()).collect();
    assert_eq!(
        events,
        [
            "submit",
            "recommend",
            "pass_formal_check",
            "conclude_review",
            "approve",
            "publicity_ended",
            "submit_task_book",
            "sign_task_book"
        ]
    );
    assert_eq!(history[0].seq, 1);
    assert_eq!(history[0].from_state, "drafting");
    assert_eq!(history[0].to_state, "city_review");
    assert_eq!(history[0].at, t(1));
    assert_eq!(history[0].input["budget"], "300000.00");
    assert_eq!(history[7].hash, inst.last_hash);
    grantflow_domain::audit::verify_chain(&history).expect("the chain read back verifies");
    let report = audit::verify_all(s).await.unwrap();
    assert!(report.is_ok(), "{report}");

    // Execution timers belong to the last state entry; everything earlier is cancelled.
    let timers = s.timers_for_instance(inst.id).await.unwrap();
    for t in &timers {
        if t.state_entry == 8 {
            assert_eq!(t.status, TimerStatus::Pending, "{t:?}");
            assert_eq!(t.state, "execution");
        } else {
            assert_eq!(t.status, TimerStatus::Cancelled, "{t:?}");
        }
    }
    assert!(
        timers
            .iter()
            .any(|t| t.state_entry == 8 && t.key == "escalation:0")
    );
}

pub async fn conflict_names_current_version(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let inst = new_application(s, &wf, &w.unit, &w.applicant, "项目", t(0)).await;
    let applicant = actor(&w.applicant, "applicant");
    ok(
        s,
        Fire::new(&wf, &inst, applicant.clone(), "submit", t(1)).input(submit_input()),
    )
    .await;
    let stale = Fire::new(&wf, &inst, applicant, "withdraw", t(2))
        .run(s)
        .await;
    match stale {
        Err(StoreError::Conflict {
            current_version,
            expected_version,
        }) => assert_eq!((current_version, expected_version), (1, 0)),
        other => panic!("a stale version is refused with the current one, got {other:?}"),
    }
    assert_eq!(s.get_instance(inst.id).await.unwrap().state, "city_review");
    assert_eq!(s.history(inst.id).await.unwrap().len(), 1);
    let missing = Fire {
        instance_id: Uuid::now_v7(),
        ..Fire::new(
            &wf,
            &inst,
            actor(&w.applicant, "applicant"),
            "withdraw",
            t(2),
        )
    }
    .run(s)
    .await;
    assert!(
        matches!(missing, Err(StoreError::NotFound { .. })),
        "{missing:?}"
    );
}

/// A person's transition reads the instance only if they may see it: the listings'
/// visibility condition on the row it locks, any of the person's scopes sufficing. An
/// instance they may not see is refused exactly as a missing one, and nothing is written.
pub async fn transition_sees_what_the_requester_sees(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let inst = new_application(s, &wf, &w.unit, &w.applicant, "项目", t(0)).await;
    let applicant = actor(&w.applicant, "applicant");
    let submit = |scopes: Vec<Visibility>| {
        Fire::new(&wf, &inst, applicant.clone(), "submit", t(1))
            .input(submit_input())
            .seen_by(scopes)
    };
    let missing_id = Uuid::now_v7();
    let missing = Fire {
        instance_id: missing_id,
        ..submit(vec![Visibility::All])
    }
    .run(s)
    .await;
    let Err(StoreError::NotFound { what, .. }) = missing else {
        panic!("a missing instance is not found, got {missing:?}");
    };
    s.assign_expert(inst.id, w.expert_b.id).await.unwrap();
    for hidden in [
        vec![],
        vec![Visibility::Nothing],
        vec![Visibility::Org(w.unit_b.id)],
        vec![Visibility::City(w.other_city.id)],
        vec![Visibility::AssignedExpert(w.expert.id)],
        vec![Visibility::ThirdParty(w.unit.id)],
        vec![
            Visibility::Org(w.other_unit.id),
            Visibility::AssignedExpert(w.expert.id),
        ],
    ] {
        match submit(hidden.clone()).run(s).await {
            Err(StoreError::NotFound {
                what: hidden_what,
                id,
            }) => {
                assert_eq!((hidden_what, id), (what, inst.id.to_string()), "{hidden:?}");
            }
            other => panic!("{hidden:?} does not see the instance, got {other:?}"),
        }
    }
    assert_eq!(s.get_instance(inst.id).await.unwrap().version, 0);
    assert!(
        s.history(inst.id).await.unwrap().is_empty(),
        "nothing written"
    );

    // Any one scope that shows the instance lets the transition through.
    let inst = ok(
        s,
        submit(vec![
            Visibility::Org(w.other_unit.id),
            Visibility::City(w.city.id),
        ]),
    )
    .await;
    assert_eq!((inst.state.as_str(), inst.version), ("city_review", 1));
    let withdraw = |scopes: Vec<Visibility>| {
        Fire::new(&wf, &inst, applicant.clone(), "withdraw", t(2)).seen_by(scopes)
    };
    assert!(matches!(
        withdraw(vec![Visibility::AssignedExpert(w.expert.id)])
            .run(s)
            .await,
        Err(StoreError::NotFound { .. })
    ));
    let inst = ok(s, withdraw(vec![Visibility::AssignedExpert(w.expert_b.id)])).await;
    assert_eq!(inst.version, 2);
}

pub async fn idempotent_replay(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let inst = new_application(s, &wf, &w.unit, &w.applicant, "项目", t(0)).await;
    let applicant = actor(&w.applicant, "applicant");
    let first = Fire::new(&wf, &inst, applicant.clone(), "submit", t(1))
        .input(submit_input())
        .key("req-1")
        .run(s)
        .await
        .unwrap();
    assert!(!first.replayed);
    let outbox_before = s.list_outbox(None, Some(inst.id), 100).await.unwrap().len();
    // A retry of the same request (the client never saw the answer) returns the first
    // result, even though the instance has moved on.
    let again = Fire::new(&wf, &inst, applicant.clone(), "submit", t(9))
        .input(submit_input())
        .key("req-1")
        .run(s)
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!(again.instance, first.instance);
    assert_eq!(again.record, first.record);
    assert_eq!(
        s.history(inst.id).await.unwrap().len(),
        1,
        "nothing was applied twice"
    );
    assert_eq!(
        s.list_outbox(None, Some(inst.id), 100).await.unwrap().len(),
        outbox_before
    );
    // The same key for a different request is a client bug.
    let reused = Fire::new(&wf, &inst, applicant, "withdraw", t(2))
        .key("req-1")
        .run(s)
        .await;
    assert!(
        matches!(&reused, Err(StoreError::IdempotencyMismatch { key }) if key == "req-1"),
        "{reused:?}"
    );
    // Keys are scoped by actor: another user's `req-1` is a different key.
    let city = ok(
        s,
        Fire::new(
            &wf,
            &first.instance,
            actor(&w.city_user, "city"),
            "recommend",
            t(3),
        )
        .key("req-1"),
    )
    .await;
    assert_eq!(city.version, 2);
    assert_eq!(s.history(inst.id).await.unwrap().len(), 2);
}

pub async fn engine_refusal_writes_nothing(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let inst = new_application(s, &wf, &w.unit, &w.applicant, "项目", t(0)).await;
    let timers_before = s.timers_for_instance(inst.id).await.unwrap();
    // A manager may not submit for the unit.
    let refused = Fire::new(&wf, &inst, actor(&w.manager, "manager"), "submit", t(1))
        .input(submit_input())
        .key("k")
        .run(s)
        .await;
    assert!(
        matches!(
            refused,
            Err(StoreError::Engine(EngineError::RoleNotAllowed { .. }))
        ),
        "{refused:?}"
    );
    // Missing required input.
    let refused = Fire::new(&wf, &inst, actor(&w.applicant, "applicant"), "submit", t(1))
        .key("k2")
        .run(s)
        .await;
    assert!(
        matches!(
            refused,
            Err(StoreError::Engine(EngineError::InvalidInput { .. }))
        ),
        "{refused:?}"
    );
    assert_eq!(s.get_instance(inst.id).await.unwrap(), inst);
    assert!(s.history(inst.id).await.unwrap().is_empty());
    assert_eq!(s.timers_for_instance(inst.id).await.unwrap(), timers_before);
    assert!(s.list_outbox(None, None, 100).await.unwrap().is_empty());
    // The refused request did not consume its idempotency key.
    let applied = Fire::new(&wf, &inst, actor(&w.applicant, "applicant"), "submit", t(1))
        .input(submit_input())
        .key("k2")
        .run(s)
        .await
        .unwrap();
    assert!(!applied.replayed);
}

pub async fn engine_refusal_still_spends_the_timer(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let inst = new_application(s, &wf, &w.unit, &w.applicant, "项目", t(0)).await;
    let timeout = s
        .timers_for_instance(inst.id)
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.key == "timeout")
        .unwrap();
    let claimed = s
        .claim_due_timers(timeout.fire_at, 10, Duration::from_secs(60))
        .await
        .unwrap();
    let claim = claimed
        .iter()
        .find(|c| c.timer.id == timeout.id)
        .expect("the timeout is due");
    // The planner refuses (here: the wrong role), as it does when a person moved the
    // instance first.
    let refused = Fire {
        complete_timer: Some((claim.timer.id, claim.token)),
        ..Fire::new(
            &wf,
            &inst,
            actor(&w.applicant, "applicant"),
            "application_closed",
            timeout.fire_at,
        )
        .expect(None)
    }
    .run(s)
    .await;
    assert!(matches!(refused, Err(StoreError::Engine(_))), "{refused:?}");
    assert!(
        s.history(inst.id).await.unwrap().is_empty(),
        "nothing of the transition is written"
    );
    let after = s.timers_for_instance(inst.id).await.unwrap();
    let spent = after.iter().find(|t| t.id == timeout.id).unwrap();
    assert_eq!(
        spent.status,
        TimerStatus::Done,
        "the timer does not fire again"
    );
    assert!(spent.fired_at.is_some());
    let reclaim = s
        .claim_due_timers(
            timeout.fire_at + chrono::Duration::hours(1),
            10,
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    assert!(reclaim.iter().all(|c| c.timer.id != timeout.id));
}

pub async fn timers_replaced_on_leaving_a_state(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let inst = new_application(s, &wf, &w.unit, &w.applicant, "项目", t(0)).await;
    let inst = ok(
        s,
        Fire::new(&wf, &inst, actor(&w.applicant, "applicant"), "submit", t(1))
            .input(submit_input()),
    )
    .await;
    let timers = s.timers_for_instance(inst.id).await.unwrap();
    let drafting: Vec<_> = timers.iter().filter(|t| t.state_entry == 0).collect();
    let review: Vec<_> = timers.iter().filter(|t| t.state_entry == 1).collect();
    assert_eq!(drafting.len(), 5);
    assert!(
        drafting.iter().all(|t| t.status == TimerStatus::Cancelled),
        "{drafting:?}"
    );
    let keys: HashSet<_> = review.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(
        keys,
        // The city forwards by the closing date (issue 12): reminders, due, escalation.
        HashSet::from(["reminder:3d", "reminder:1d", "due", "escalation:0"])
    );
    assert!(
        review
            .iter()
            .all(|t| t.status == TimerStatus::Pending && t.state == "city_review")
    );
    let escalation = review.iter().find(|t| t.key == "escalation:0").unwrap();
    assert_eq!(escalation.notify, vec!["manager".to_string()]);
    assert_eq!(escalation.due_at, inst.due_at);
    assert_eq!(s.pending_timer_count().await.unwrap(), 4);
    // Returned to drafting: the review timers go, the drafting deadline comes back.
    let inst = ok(
        s,
        Fire::new(&wf, &inst, actor(&w.city_user, "city"), "city_return", t(2))
            .reason("预算明细不全"),
    )
    .await;
    let timers = s.timers_for_instance(inst.id).await.unwrap();
    assert!(
        timers
            .iter()
            .filter(|t| t.state_entry == 1)
            .all(|t| t.status == TimerStatus::Cancelled)
    );
    let back: Vec<_> = timers.iter().filter(|t| t.state_entry == 2).collect();
    assert_eq!(back.len(), 5);
    assert!(
        back.iter()
            .all(|t| t.status == TimerStatus::Pending && t.state == "drafting")
    );
}

pub async fn timeout_transition_consumes_its_timer(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let inst = new_application(s, &wf, &w.unit, &w.applicant, "项目", t(0)).await;
    let due_at = inst.due_at.unwrap();
    let claimed = s
        .claim_due_timers(due_at, 10, Duration::from_secs(60))
        .await
        .unwrap();
    // Everything in the drafting ladder is due by then.
    assert_eq!(claimed.len(), 5);
    let timeout = claimed
        .iter()
        .find(|c| c.timer.kind == TimerKind::Timeout)
        .unwrap();
    let applied = Fire {
        complete_timer: Some((timeout.timer.id, timeout.token)),
        ..Fire::new(
            &wf,
            &inst,
            grantflow_domain::engine::Actor::scheduler(),
            "application_closed",
            due_at,
        )
        .expect(None)
    }
    .run(s)
    .await
    .unwrap();
    assert_eq!(applied.instance.state, "not_submitted");
    assert!(applied.instance.is_final);
    assert_eq!(applied.record.actor_id, "scheduler");
    let timers = s.timers_for_instance(inst.id).await.unwrap();
    let spent = timers.iter().find(|t| t.id == timeout.timer.id).unwrap();
    assert_eq!(spent.status, TimerStatus::Done);
    assert_eq!(spent.fired_at, Some(due_at));
    assert!(
        timers
            .iter()
            .filter(|t| t.id != timeout.timer.id)
            .all(|t| t.status == TimerStatus::Cancelled),
        "the other claimed reminders of the state are cancelled: {timers:?}"
    );
    // The reminder claims held by another scheduler can no longer complete.
    let reminder = claimed
        .iter()
        .find(|c| c.timer.kind == TimerKind::Reminder)
        .unwrap();
    assert!(
        !s.complete_timer(reminder.timer.id, reminder.token, vec![], due_at)
            .await
            .unwrap()
    );
    assert_eq!(s.pending_timer_count().await.unwrap(), 0);
    assert_eq!(s.next_timer_at().await.unwrap(), None);
}

pub async fn notifications_reach_the_right_recipients(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let inst = new_application(s, &wf, &w.unit, &w.applicant, "专利导航项目", t(0)).await;
    // `submit` notifies the city bureau of the unit's city only.
    let inst = ok(
        s,
        Fire::new(&wf, &inst, actor(&w.applicant, "applicant"), "submit", t(1))
            .input(submit_input()),
    )
    .await;
    let out = s.list_outbox(None, Some(inst.id), 100).await.unwrap();
    assert_eq!(out.len(), 1, "{out:?}");
    let m = &out[0];
    assert_eq!(m.recipient_user_id, Some(w.city_user.id));
    assert_eq!(m.to_address, w.city_user.email);
    assert_eq!(m.to_name, w.city_user.display_name);
    assert_eq!(m.template, "notification");
    assert_eq!(m.lang, grantflow_domain::Lang::ZhCn);
    assert_eq!(m.status, OutboxStatus::Pending);
    assert_eq!(m.kind, "notification");
    assert_eq!(m.next_attempt_at, t(1));
    assert_eq!(m.context["instance_title"], "专利导航项目");
    assert_eq!(
        m.context["recipient_name"],
        w.city_user.display_name.as_str()
    );
    assert_eq!(m.context["lang"], "zh-CN");
    assert_eq!(
        m.idempotency_key,
        crate::notification_key(inst.id, 1, "notification", w.city_user.id)
    );
    let inst = ok(
        s,
        Fire::new(&wf, &inst, actor(&w.city_user, "city"), "recommend", t(2)),
    )
    .await;
    // `reject` notifies the unit's applicants and the city: not the digest-only applicant,
    // not another unit's applicant, not another city.
    let inst = ok(
        s,
        Fire::new(&wf, &inst, actor(&w.manager, "manager"), "reject", t(3))
            .reason("不符合申报条件"),
    )
    .await;
    let v3: Vec<_> = s
        .list_outbox(None, Some(inst.id), 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.idempotency_key.contains(&format!(":{}:", inst.version)))
        .collect();
    let to: HashSet<_> = v3.iter().map(|m| m.recipient_user_id.unwrap()).collect();
    assert_eq!(to, HashSet::from([w.applicant.id, w.city_user.id]));
    // Expert recipients are the assigned experts.
    s.assign_expert(inst.id, w.expert.id).await.unwrap();
    s.assign_expert(inst.id, w.expert.id)
        .await
        .expect("assigning twice is harmless");
    assert!(s.is_assigned_expert(inst.id, w.expert.id).await.unwrap());
    assert!(!s.is_assigned_expert(inst.id, w.expert_b.id).await.unwrap());
    let unknown = Uuid::now_v7();
    assert_eq!(
        s.assigned_instances(w.expert.id, &[unknown, inst.id, inst.id])
            .await
            .unwrap(),
        vec![inst.id],
        "the assigned ones among the ids, each once"
    );
    assert!(
        s.assigned_instances(w.expert_b.id, &[inst.id])
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.assigned_instances(w.expert.id, &[])
            .await
            .unwrap()
            .is_empty()
    );
    let r = s
        .recipients(&inst, &["expert".into(), "admin".into(), "manager".into()])
        .await
        .unwrap();
    let ids: HashSet<_> = r.iter().map(|u| u.id).collect();
    assert_eq!(ids, HashSet::from([w.expert.id, w.admin.id, w.manager.id]));
    let r = s.recipients(&inst, &["applicant".into()]).await.unwrap();
    let ids: HashSet<_> = r.iter().map(|u| u.id).collect();
    assert_eq!(
        ids,
        HashSet::from([w.applicant.id, w.applicant_digest.id]),
        "recipients() does not filter by preference"
    );
    assert!(
        s.recipients(&inst, &["scheduler".into()])
            .await
            .unwrap()
            .is_empty()
    );
    let _ = (&w.other_applicant, &w.other_city_user, &w.applicant_b);
}

pub async fn extend_deadline(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let inst = new_application(s, &wf, &w.unit, &w.applicant, "项目", t(0)).await;
    let new_due = Utc.with_ymd_and_hms(2024, 7, 5, 16, 0, 0).unwrap();
    let timers = grantflow_domain::engine::reschedule_deadline(
        &wf,
        &inst.snapshot(),
        new_due,
        t(1),
        &WorkCalendar::builtin(),
    );
    assert!(!timers.is_empty());
    let request = ExtendDeadline {
        instance_id: inst.id,
        expected_version: 0,
        new_due_at: new_due,
        timers: timers.clone(),
        actor_id: w.manager.id.to_string(),
        actor_roles: vec!["manager".into()],
        reason: "系统故障顺延".into(),
        at: t(1),
    };
    let stale = s
        .extend_deadline(ExtendDeadline {
            expected_version: 3,
            ..request.clone()
        })
        .await;
    assert!(
        matches!(
            stale,
            Err(StoreError::Conflict {
                current_version: 0,
                expected_version: 3
            })
        ),
        "{stale:?}"
    );
    let applied = s.extend_deadline(request).await.unwrap();
    assert_eq!(applied.instance.version, 1);
    assert_eq!(applied.instance.due_at, Some(new_due));
    assert_eq!(applied.instance.state, "drafting");
    assert_eq!(applied.record.event, "extend_deadline");
    assert_eq!(applied.record.reason.as_deref(), Some("系统故障顺延"));
    assert_eq!(s.get_instance(inst.id).await.unwrap(), applied.instance);
    let all = s.timers_for_instance(inst.id).await.unwrap();
    assert!(
        all.iter()
            .filter(|t| t.state_entry == 0)
            .all(|t| t.status == TimerStatus::Cancelled)
    );
    let fresh: Vec<_> = all
        .iter()
        .filter(|t| t.status == TimerStatus::Pending)
        .collect();
    assert_eq!(fresh.len(), timers.len());
    assert!(fresh.iter().all(|t| t.due_at == Some(new_due)));
    // The applicant can still submit before the new deadline (after the old one).
    let late = Utc.with_ymd_and_hms(2024, 7, 1, 2, 0, 0).unwrap();
    ok(
        s,
        Fire::new(
            &wf,
            &applied.instance,
            actor(&w.applicant, "applicant"),
            "submit",
            late,
        )
        .input(submit_input()),
    )
    .await;
    let report = audit::verify_all(s).await.unwrap();
    assert!(report.is_ok(), "{report}");
}

/// Moving an instance to another workflow version is one audited event: the version
/// and state change, the old timers are cancelled, the new ones inserted, the chain holds.
pub async fn migrate_instance_to_a_new_version(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let inst = new_application(s, &wf, &w.unit, &w.applicant, "迁移项目", t(0)).await;
    let old_timers = s.timers_for_instance(inst.id).await.unwrap();
    assert!(!old_timers.is_empty());
    let new_due = Utc.with_ymd_and_hms(2024, 7, 1, 16, 0, 0).unwrap();
    let timers = grantflow_domain::engine::reschedule_deadline(
        &wf,
        &inst.snapshot(),
        new_due,
        t(1),
        &WorkCalendar::builtin(),
    );
    let request = crate::MigrateInstance {
        instance_id: inst.id,
        expected_version: 0,
        from_workflow_version: 1,
        to_workflow_version: 2,
        to_state: "drafting".into(),
        to_stage: "application".into(),
        to_final: false,
        due_at: Some(new_due),
        timers: timers.clone(),
        actor_id: "operator".into(),
        actor_roles: vec!["admin".into()],
        reason: "2025 版流程".into(),
        at: t(1),
    };
    let wrong_version = s
        .migrate_instance(crate::MigrateInstance {
            from_workflow_version: 7,
            ..request.clone()
        })
        .await;
    assert!(
        matches!(wrong_version, Err(StoreError::Invalid(_))),
        "{wrong_version:?}"
    );
    let stale = s
        .migrate_instance(crate::MigrateInstance {
            expected_version: 5,
            ..request.clone()
        })
        .await;
    assert!(
        matches!(
            stale,
            Err(StoreError::Conflict {
                current_version: 0,
                ..
            })
        ),
        "{stale:?}"
    );
    let applied = s.migrate_instance(request).await.unwrap();
    assert_eq!(applied.instance.workflow_version, 2);
    assert_eq!(applied.instance.version, 1);
    assert_eq!(applied.record.event, "migrate_version");
    assert_eq!(applied.record.input["to_version"], 2);
    assert_eq!(s.get_instance(inst.id).await.unwrap(), applied.instance);
    let all = s.timers_for_instance(inst.id).await.unwrap();
    let pending: Vec<_> = all
        .iter()
        .filter(|t| t.status == TimerStatus::Pending)
        .collect();
    assert_eq!(pending.len(), timers.len());
    assert!(pending.iter().all(|t| t.state_entry == 1));
    assert_eq!(
        all.iter()
            .filter(|t| t.status == TimerStatus::Cancelled)
            .count(),
        old_timers.len()
    );
    let report = crate::audit::verify_all(s).await.unwrap();
    assert!(report.is_ok(), "{report}");
}
