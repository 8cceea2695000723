//! The conformance suite of [`ProgrammeStore`] (feature `conformance`): every method, the
//! budget facts guards read, and the concurrent-overdraw race.
//!
//! A backend's `tests/it/conformance.rs` invokes [`programme_conformance_suite!`] with the same
//! factory as [`conformance_suite!`](crate::conformance_suite): each test gets a fresh,
//! migrated database.

use std::sync::Arc;

use chrono::NaiveDate;
use grantflow_domain::Money;
use grantflow_domain::calendar::WorkCalendar;
use grantflow_domain::engine::{Snapshot, initial_schedule};
use serde_json::{Value, json};
use tokio::sync::Barrier;
use uuid::Uuid;

use crate::conformance::{Fire, Harness, actor, funded_project, new_application, t, world};
use crate::programme::{
    ActualRecord, BudgetLine, CallCategory, CallItem, CallPolicyArea, CallStatus, DemandMerge,
    EvaluationRecord, IndicatorScoreRecord, NewCall, NewSpending, SpendingRecord, SpendingRefusal,
};
use crate::{Instance, NewInstance, Store, StoreError};

/// Generate one `#[tokio::test]` per programme conformance test. `$factory` is the same
/// `async fn() -> (Arc<dyn Store>, H)` as for `conformance_suite!`.
#[macro_export]
macro_rules! programme_conformance_suite {
    ($factory:path) => {
        $crate::programme_conformance_suite!(@each $factory;
            calls_keep_their_catalogue,
            a_bad_catalogue_writes_nothing,
            create_instances_is_all_or_nothing,
            instances_of_a_call,
            budget_lines_keep_the_facts_guards_read,
            approval_guard_reads_the_budget,
            spending_refusals_write_nothing,
            spending_within_the_line,
            concurrent_spendings_never_overdraw,
            actuals_are_recorded_per_checkpoint,
            evaluations_are_stored_and_replaced,
            demand_merges_keep_both_sources,
            reports_read_in_bulk,
            approvals_are_held_to_the_plan,
            a_budget_change_stays_in_its_city_allocation,
            lines_follow_the_approved_funding,
            disbursement_caps_spending,
            concurrent_approvals_never_overdraw_the_envelope,
            open_objections_hold_the_transition,
            an_objection_racing_the_transition_is_never_lost,
        );
    };
    (@each $factory:path; $($name:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $name() {
                let (store, harness) = $factory().await;
                $crate::conformance::programme::$name(store, &harness).await;
            }
        )*
    };
}

mod funding;
mod publicity;
mod reports;
pub use funding::{
    a_budget_change_stays_in_its_city_allocation, approvals_are_held_to_the_plan,
    concurrent_approvals_never_overdraw_the_envelope, disbursement_caps_spending,
    lines_follow_the_approved_funding,
};
pub use publicity::{
    an_objection_racing_the_transition_is_never_lost, open_objections_hold_the_transition,
};
pub use reports::reports_read_in_bulk;

// ------------------------------------------------------------------ fixtures

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("a valid date")
}

fn yuan(y: i64) -> Money {
    Money::from_yuan(y).expect("in range")
}

fn item(id: &str, name: &str, part: &str) -> CallItem {
    CallItem {
        item_id: id.into(),
        number: Some(1),
        name: name.into(),
        direction: format!("{name}的项目方向"),
        applicant: "各市局".into(),
        part: part.into(),
        eligible: vec!["city".into(), "unit".into()],
    }
}

/// A small catalogue: two categories, one without policy areas.
pub fn sample_categories() -> Vec<CallCategory> {
    vec![
        CallCategory {
            category: "protection".into(),
            title: "强化知识产权保护".into(),
            policy_areas: vec![
                CallPolicyArea {
                    name: "知识产权保护体系建设".into(),
                    items: vec![
                        item(
                            "2022-3-1-1",
                            "知识产权保护中心建设",
                            "patent_office_and_protection_centre",
                        ),
                        item("2022-3-1-2", "电商领域知识产权保护", "retained_provincial"),
                    ],
                },
                CallPolicyArea {
                    name: "行政执法".into(),
                    items: vec![item("2022-3-2-1", "商标执法专项行动", "delegated_to_city")],
                },
            ],
        },
        CallCategory {
            category: "strategy_and_research".into(),
            title: "知识产权战略规划、软课题研究".into(),
            policy_areas: vec![],
        },
        CallCategory {
            category: "utilisation".into(),
            title: "知识产权运用".into(),
            policy_areas: vec![CallPolicyArea {
                name: "知识产权转化".into(),
                items: vec![item("2022-4-1-1", "专利转化专项", "post_subsidy")],
            }],
        },
    ]
}

fn new_call(year: i32, created_by: Uuid, categories: Vec<CallCategory>) -> NewCall {
    NewCall {
        id: Uuid::now_v7(),
        year,
        title: format!("{year}年广东省强化知识产权工作项目需求征集"),
        issuer: "广东省市场监督管理局".into(),
        closing_date: day(year - 1, 6, 29),
        correction_window_days: 7,
        created_by,
        created_at: t(0),
        categories,
        rules: json!({ "publicity_days": 5 }),
    }
}

fn line(instance: &Instance, amount: Money, by: Uuid, hours: i64) -> BudgetLine {
    BudgetLine {
        id: Uuid::now_v7(),
        instance_id: instance.id,
        year: 2024,
        subject: "专家咨询费".into(),
        amount,
        source: "省级财政专项资金".into(),
        created_by: by,
        created_at: t(hours),
    }
}

fn allow(_: &Instance, _: &BudgetLine) -> Result<(), SpendingRefusal> {
    Ok(())
}

async fn spend(
    store: &dyn Store,
    instance: Uuid,
    line: Option<Uuid>,
    amount: Money,
    by: Uuid,
) -> Result<SpendingRecord, SpendingRefusal> {
    store
        .record_spending(NewSpending {
            id: Uuid::now_v7(),
            instance_id: instance,
            line_id: line,
            amount,
            spent_on: day(2024, 7, 1),
            description: "专家评审会".into(),
            recorded_by: by,
            recorded_at: t(10),
            precondition: &allow,
            require_disbursed: false,
        })
        .await
        .expect("the store answers")
}

fn demand_instance(wf_id: &str, org: Uuid, by: Uuid, call_id: &str, title: &str) -> NewInstance {
    NewInstance {
        id: Uuid::now_v7(),
        workflow_id: wf_id.into(),
        workflow_version: 1,
        state: "drafting".into(),
        stage: "demand_collection".into(),
        data: json!({ "call_id": call_id, "closing_date": "2024-06-29", "project_name": title }),
        parent_id: None,
        org_id: org,
        title: title.into(),
        created_by: by,
        created_at: t(1),
        due_at: None,
        timers: Vec::new(),
    }
}

// ------------------------------------------------------------------ calls

pub async fn calls_keep_their_catalogue(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let new = new_call(2022, w.manager.id, sample_categories());
    let created = s.create_call(new.clone()).await.unwrap();
    assert_eq!(created.id, new.id);
    assert_eq!(created.status, CallStatus::Open);
    assert_eq!(created.closing_date, day(2021, 6, 29));
    // The call's correction window and each item's eligible kinds are kept (issue 12).
    assert_eq!(created.correction_window_days, 7);
    assert_eq!(
        created.categories,
        sample_categories(),
        "form order is kept, eligible kinds included"
    );
    assert_eq!(created.created_at, t(0));
    assert_eq!(
        created.rules,
        json!({ "publicity_days": 5 }),
        "the call's rules are stored with it"
    );
    let items: Vec<&str> = created
        .items()
        .map(|(_, _, i)| i.item_id.as_str())
        .collect();
    assert_eq!(
        items,
        ["2022-3-1-1", "2022-3-1-2", "2022-3-2-1", "2022-4-1-1"]
    );
    assert_eq!(s.get_call(new.id).await.unwrap(), created);

    let later = s
        .create_call(new_call(2024, w.manager.id, vec![]))
        .await
        .unwrap();
    let calls = s.list_calls().await.unwrap();
    let ids: Vec<Uuid> = calls.iter().map(|c| c.id).collect();
    assert_eq!(ids, [later.id, created.id], "newest year first");
    assert_eq!(calls[1], created);

    let closed = s
        .set_call_status(created.id, CallStatus::Closed)
        .await
        .unwrap();
    assert_eq!(closed.status, CallStatus::Closed);
    assert_eq!(
        s.get_call(created.id).await.unwrap().status,
        CallStatus::Closed
    );
    assert!(matches!(
        s.get_call(Uuid::now_v7()).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.set_call_status(Uuid::now_v7(), CallStatus::Open).await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn a_bad_catalogue_writes_nothing(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let mut categories = sample_categories();
    // The same item id twice: the whole call is refused, nothing is half-written.
    categories[2].policy_areas[0]
        .items
        .push(item("2022-3-1-1", "重复编号", "post_subsidy"));
    let new = new_call(2022, w.manager.id, categories);
    let err = s.create_call(new.clone()).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Duplicate { .. }),
        "a duplicate item id: {err:?}"
    );
    assert!(matches!(
        s.get_call(new.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(s.list_calls().await.unwrap().is_empty());
    // The same call id twice is a duplicate too.
    let ok = new_call(2022, w.manager.id, sample_categories());
    s.create_call(ok.clone()).await.unwrap();
    assert!(matches!(
        s.create_call(ok).await,
        Err(StoreError::Duplicate { .. })
    ));
}

// ------------------------------------------------------------------ instances in bulk

pub async fn create_instances_is_all_or_nothing(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    // Initial timers come along, as with `create_instance`.
    let data = json!({ "call_id": "c1", "closing_date": "2024-06-29" });
    let snapshot = Snapshot::initial(&wf, data.clone());
    let (deadline, timers) = initial_schedule(&wf, &snapshot, t(0), &WorkCalendar::builtin());
    let mut first = demand_instance("funded-project", w.unit.id, w.applicant.id, "c1", "甲");
    first.data = data;
    first.stage = "application".into();
    first.due_at = deadline.map(|d| d.due_at);
    first.timers = timers;
    let second = demand_instance("funded-project", w.other_unit.id, w.manager.id, "c1", "乙");
    let created = s
        .create_instances(vec![first.clone(), second.clone()])
        .await
        .unwrap();
    assert_eq!(created.len(), 2);
    assert_eq!(created[0].id, first.id);
    assert_eq!(created[1].city_id, Some(w.other_city.id));
    assert_eq!(created[0].budget, Value::Null);
    assert_eq!(s.get_instance(first.id).await.unwrap(), created[0]);
    assert!(!s.timers_for_instance(first.id).await.unwrap().is_empty());

    // One bad row (an unknown unit) and nothing of the batch is stored.
    let good = demand_instance("funded-project", w.unit.id, w.applicant.id, "c1", "丙");
    let bad = demand_instance("funded-project", Uuid::now_v7(), w.applicant.id, "c1", "丁");
    let err = s
        .create_instances(vec![good.clone(), bad.clone()])
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::NotFound {
                what: "organisation",
                ..
            }
        ),
        "{err:?}"
    );
    assert!(matches!(
        s.get_instance(good.id).await,
        Err(StoreError::NotFound { .. })
    ));
    // A duplicate id in the batch is refused as a whole too.
    let again = demand_instance("funded-project", w.unit.id, w.applicant.id, "c1", "戊");
    let err = s
        .create_instances(vec![again.clone(), first.clone()])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Duplicate { .. }), "{err:?}");
    assert!(matches!(
        s.get_instance(again.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        s.get_instance(first.id).await.unwrap(),
        created[0],
        "unchanged"
    );
    assert!(s.create_instances(vec![]).await.unwrap().is_empty());
}

pub async fn instances_of_a_call(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let a = demand_instance(
        "demand-collection",
        w.unit.id,
        w.applicant.id,
        "call-a",
        "一",
    );
    let mut b = demand_instance(
        "demand-collection",
        w.other_unit.id,
        w.manager.id,
        "call-a",
        "二",
    );
    b.created_at = t(2);
    let c = demand_instance(
        "demand-collection",
        w.unit.id,
        w.applicant.id,
        "call-b",
        "三",
    );
    let d = demand_instance("funded-project", w.unit.id, w.applicant.id, "call-a", "四");
    s.create_instances(vec![a.clone(), b.clone(), c.clone(), d.clone()])
        .await
        .unwrap();
    let ids = |v: Vec<Instance>| v.into_iter().map(|i| i.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s
            .instances_of_call("demand-collection", "call-a")
            .await
            .unwrap()),
        [a.id, b.id]
    );
    assert_eq!(
        ids(s
            .instances_of_call("funded-project", "call-a")
            .await
            .unwrap()),
        [d.id]
    );
    assert!(
        s.instances_of_call("demand-collection", "none")
            .await
            .unwrap()
            .is_empty()
    );
}

// ------------------------------------------------------------------ budgets

pub async fn budget_lines_keep_the_facts_guards_read(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let p = new_application(s, &wf, &w.unit, &w.applicant, "项目", t(0)).await;
    let other = new_application(s, &wf, &w.unit, &w.applicant, "另一个项目", t(0)).await;
    assert_eq!(p.budget, Value::Null, "no budget before the first line");

    let first = s
        .add_budget_line(line(&p, yuan(200_000), w.manager.id, 1))
        .await
        .unwrap();
    assert_eq!(first.created_at, t(1));
    let second = s
        .add_budget_line(line(&p, Money::parse("50000.50").unwrap(), w.manager.id, 2))
        .await
        .unwrap();
    s.add_budget_line(line(&other, yuan(10), w.manager.id, 3))
        .await
        .unwrap();
    let stored = s.get_instance(p.id).await.unwrap();
    assert_eq!(
        stored.budget,
        json!({ "lines": 2, "total": "250000.50", "spent": "0.00", "remaining": "250000.50", "execution_rate": 0.0 })
    );
    assert_eq!(stored.snapshot().budget, stored.budget, "guards see it");
    assert_eq!(
        stored.version, p.version,
        "a budget line is not a transition"
    );

    let lines = s.budget_lines(&[p.id]).await.unwrap();
    assert_eq!(lines, [first.clone(), second]);
    assert_eq!(s.budget_lines(&[p.id, other.id]).await.unwrap().len(), 3);
    assert!(s.budget_lines(&[]).await.unwrap().is_empty());

    // Refused: not positive, unknown instance, duplicate id; the facts stay.
    assert!(matches!(
        s.add_budget_line(line(&p, Money::ZERO, w.manager.id, 4))
            .await,
        Err(StoreError::Invalid(_))
    ));
    let mut orphan = line(&p, yuan(1), w.manager.id, 4);
    orphan.instance_id = Uuid::now_v7();
    assert!(matches!(
        s.add_budget_line(orphan).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        s.add_budget_line(first).await,
        Err(StoreError::Duplicate { .. })
    ));
    assert_eq!(s.get_instance(p.id).await.unwrap().budget["lines"], 2);
}

/// The shipped funded-project workflow refuses `approve` until a budget line exists: the
/// guard reads `budget` from what the store keeps.
pub async fn approval_guard_reads_the_budget(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let manager = actor(&w.manager, "manager");
    let p = new_application(s, &wf, &w.unit, &w.applicant, "项目", t(0)).await;
    let mut inst = p;
    for (event, who, input) in [
        (
            "submit",
            actor(&w.applicant, "applicant"),
            crate::conformance::submit_input(),
        ),
        ("recommend", actor(&w.city_user, "city"), json!({})),
        ("pass_formal_check", manager.clone(), json!({})),
    ] {
        inst = Fire::new(&wf, &inst, who, event, t(1))
            .input(input)
            .run(s)
            .await
            .unwrap()
            .instance;
    }
    s.set_review_result(inst.id, json!({ "count": 3, "total": 80.0 }))
        .await
        .unwrap();
    let inst = s.get_instance(inst.id).await.unwrap();
    let inst = Fire::new(&wf, &inst, manager.clone(), "conclude_review", t(2))
        .run(s)
        .await
        .unwrap()
        .instance;
    let approve = json!({ "approved_budget": "250000", "targets_approved": true });
    let refused = Fire::new(&wf, &inst, manager.clone(), "approve", t(3))
        .input(approve.clone())
        .run(s)
        .await
        .unwrap_err();
    assert!(
        matches!(
            &refused,
            StoreError::Engine(grantflow_domain::engine::EngineError::GuardFailed { .. })
        ),
        "{refused:?}"
    );
    s.add_budget_line(line(&inst, yuan(250_000), w.manager.id, 3))
        .await
        .unwrap();
    let inst = s.get_instance(inst.id).await.unwrap();
    let approved = Fire::new(&wf, &inst, manager, "approve", t(4))
        .input(approve)
        .run(s)
        .await
        .unwrap()
        .instance;
    assert_eq!(approved.state, "publicity");
    assert_eq!(approved.budget["lines"], 1, "a transition keeps the facts");
    assert_eq!(
        approved.data["approved_indicators"], approved.data["indicators"],
        "the targets are frozen at approval"
    );
    assert_eq!(s.get_instance(approved.id).await.unwrap(), approved);
}

pub async fn spending_refusals_write_nothing(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let p = new_application(s, &wf, &w.unit, &w.applicant, "项目", t(0)).await;
    let other = new_application(s, &wf, &w.unit, &w.applicant, "另一个", t(0)).await;
    let l = s
        .add_budget_line(line(&p, yuan(1000), w.manager.id, 1))
        .await
        .unwrap();
    let foreign = s
        .add_budget_line(line(&other, yuan(1000), w.manager.id, 1))
        .await
        .unwrap();
    let by = w.applicant.id;

    assert_eq!(
        spend(s, p.id, None, yuan(10), by).await,
        Err(SpendingRefusal::LineMissing { line_id: None })
    );
    assert_eq!(
        spend(s, p.id, Some(foreign.id), yuan(10), by).await,
        Err(SpendingRefusal::LineMissing {
            line_id: Some(foreign.id)
        }),
        "another project's line is no line of this one"
    );
    assert_eq!(
        spend(s, p.id, Some(l.id), yuan(1001), by).await,
        Err(SpendingRefusal::BudgetExceeded {
            line_id: l.id,
            amount: yuan(1001),
            remaining: yuan(1000)
        })
    );
    // The precondition runs on the locked instance and line.
    let seen = std::sync::Mutex::new(None);
    let not_approved = |i: &Instance, bl: &BudgetLine| {
        *seen.lock().unwrap() = Some((i.id, bl.id));
        Err(SpendingRefusal::Refused {
            code: "NOT_APPROVED".into(),
            message_zh: "项目尚未立项，不得支出".into(),
            message_en: "the project is not approved".into(),
        })
    };
    let refused = s
        .record_spending(NewSpending {
            id: Uuid::now_v7(),
            instance_id: p.id,
            line_id: Some(l.id),
            amount: yuan(1),
            spent_on: day(2024, 7, 1),
            description: String::new(),
            recorded_by: by,
            recorded_at: t(5),
            precondition: &not_approved,
            require_disbursed: false,
        })
        .await
        .unwrap();
    assert!(
        matches!(refused, Err(SpendingRefusal::Refused { ref code, .. }) if code == "NOT_APPROVED")
    );
    assert_eq!(*seen.lock().unwrap(), Some((p.id, l.id)));
    // Not positive is invalid; an unknown project is not found.
    assert!(matches!(
        s.record_spending(NewSpending {
            id: Uuid::now_v7(),
            instance_id: p.id,
            line_id: Some(l.id),
            amount: Money::ZERO,
            spent_on: day(2024, 7, 1),
            description: String::new(),
            recorded_by: by,
            recorded_at: t(5),
            precondition: &allow,
            require_disbursed: false,
        })
        .await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.record_spending(NewSpending {
            id: Uuid::now_v7(),
            instance_id: Uuid::now_v7(),
            line_id: Some(l.id),
            amount: yuan(1),
            spent_on: day(2024, 7, 1),
            description: String::new(),
            recorded_by: by,
            recorded_at: t(5),
            precondition: &allow,
            require_disbursed: false,
        })
        .await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(s.spending(&[p.id]).await.unwrap().is_empty());
    assert_eq!(s.get_instance(p.id).await.unwrap().budget["spent"], "0.00");
}

pub async fn spending_within_the_line(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let p = new_application(s, &wf, &w.unit, &w.applicant, "项目", t(0)).await;
    let a = s
        .add_budget_line(line(&p, yuan(1000), w.manager.id, 1))
        .await
        .unwrap();
    let b = s
        .add_budget_line(line(&p, yuan(3000), w.manager.id, 2))
        .await
        .unwrap();
    let by = w.applicant.id;
    let first = spend(s, p.id, Some(a.id), yuan(600), by).await.unwrap();
    assert_eq!(first.recorded_at, t(10));
    assert_eq!(first.line_id, a.id);
    // Exactly what is left fits; a fen more does not.
    spend(s, p.id, Some(a.id), yuan(400), by).await.unwrap();
    assert_eq!(
        spend(s, p.id, Some(a.id), Money::from_fen(1), by).await,
        Err(SpendingRefusal::BudgetExceeded {
            line_id: a.id,
            amount: Money::from_fen(1),
            remaining: Money::ZERO
        })
    );
    // Each line has its own remaining amount.
    spend(s, p.id, Some(b.id), yuan(1000), by).await.unwrap();
    let records = s.spending(&[p.id]).await.unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(records[0], first);
    assert_eq!(
        s.get_instance(p.id).await.unwrap().budget,
        json!({ "lines": 2, "total": "4000.00", "spent": "2000.00", "remaining": "2000.00", "execution_rate": 0.5 })
    );
    assert!(s.spending(&[]).await.unwrap().is_empty());
}

/// Two spendings that each fit the line but not together, started at once, many times
/// over: exactly one of each pair commits and the line is never overdrawn.
pub async fn concurrent_spendings_never_overdraw(store: Arc<dyn Store>, _h: &dyn Harness) {
    let w = world(store.as_ref()).await;
    let wf = funded_project();
    let p = new_application(store.as_ref(), &wf, &w.unit, &w.applicant, "项目", t(0)).await;
    const ROUNDS: usize = 10;
    for round in 0..ROUNDS {
        let l = store
            .add_budget_line(line(&p, yuan(100), w.manager.id, 1))
            .await
            .unwrap();
        let barrier = Arc::new(Barrier::new(2));
        let mut tasks = Vec::new();
        for _ in 0..2 {
            let store = store.clone();
            let barrier = barrier.clone();
            let by = w.applicant.id;
            let (instance, line_id) = (p.id, l.id);
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                spend(store.as_ref(), instance, Some(line_id), yuan(60), by).await
            }));
        }
        let mut ok = 0;
        let mut refused = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => ok += 1,
                Err(SpendingRefusal::BudgetExceeded { remaining, .. }) => {
                    assert_eq!(remaining, yuan(40), "the loser saw the winner's record");
                    refused += 1;
                }
                Err(other) => panic!("unexpected refusal {other:?}"),
            }
        }
        assert_eq!((ok, refused), (1, 1), "round {round}");
        let on_line: Money = store
            .spending(&[p.id])
            .await
            .unwrap()
            .iter()
            .filter(|r| r.line_id == l.id)
            .map(|r| r.amount)
            .sum();
        assert_eq!(on_line, yuan(60), "round {round}");
    }
    let facts = store.get_instance(p.id).await.unwrap().budget;
    assert_eq!(facts["lines"], ROUNDS);
    assert_eq!(facts["spent"], format!("{}.00", 60 * ROUNDS));
}

// ------------------------------------------------------------------ indicators, evaluation

pub async fn actuals_are_recorded_per_checkpoint(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let p = new_application(s, &wf, &w.unit, &w.applicant, "项目", t(0)).await;
    let actual = |indicator: &str, checkpoint: &str, value: Value, hours| ActualRecord {
        instance_id: p.id,
        indicator_id: indicator.into(),
        checkpoint: checkpoint.into(),
        value,
        explanation: None,
        recorded_on: day(2024, 9, 1),
        recorded_by: w.applicant.id,
        recorded_at: t(hours),
    };
    s.record_actuals(vec![
        actual("patents", "mid_term", json!(4), 1),
        actual("patents", "acceptance", json!(9), 2),
        actual("experience", "acceptance", json!("形成可推广经验"), 2),
    ])
    .await
    .unwrap();
    // Recording again replaces the value at that checkpoint only.
    let mut again = actual("patents", "acceptance", json!(11.5), 3);
    again.explanation = Some("超额完成：新增两家企业参与".into());
    s.record_actuals(vec![again.clone()]).await.unwrap();
    let stored = s.actuals(p.id).await.unwrap();
    assert_eq!(stored.len(), 3);
    let find = |i: &str, c: &str| {
        stored
            .iter()
            .find(|a| a.indicator_id == i && a.checkpoint == c)
            .cloned()
            .unwrap()
    };
    assert_eq!(find("patents", "acceptance"), again);
    assert_eq!(find("patents", "mid_term").value, json!(4));
    assert_eq!(
        find("experience", "acceptance").value,
        json!("形成可推广经验")
    );
    // A bad checkpoint refuses the whole batch.
    let before = s.actuals(p.id).await.unwrap();
    let err = s
        .record_actuals(vec![
            actual("x", "acceptance", json!(1), 4),
            actual("y", "final", json!(1), 4),
        ])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert_eq!(before.len(), 3);
    assert_eq!(s.actuals(p.id).await.unwrap(), before, "unchanged");
}

fn evaluation(instance: Uuid, call: &str, total: f64, grade: &str, by: Uuid) -> EvaluationRecord {
    EvaluationRecord {
        instance_id: instance,
        call_id: call.into(),
        method: json!({ "budget_execution_points": 10.0, "output_points": 50.0 }),
        budgeted: yuan(1000),
        spent: yuan(900),
        execution_rate: 0.9,
        total,
        grade: grade.into(),
        indicator_scores: vec![
            IndicatorScoreRecord {
                indicator_id: "patents".into(),
                name: "专利申请量".into(),
                part: "output".into(),
                max_points: 50.0,
                fraction: 0.9,
                points: 45.0,
            },
            IndicatorScoreRecord {
                indicator_id: "effect".into(),
                name: "带动效益".into(),
                part: "effect".into(),
                max_points: 40.0,
                fraction: 0.75,
                points: 30.0,
            },
        ],
        result: json!({ "total": total }),
        evaluator_id: by,
        evaluated_at: t(20),
    }
}

pub async fn evaluations_are_stored_and_replaced(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let p = new_application(s, &wf, &w.unit, &w.applicant, "甲", t(0)).await;
    let q = new_application(s, &wf, &w.unit, &w.applicant, "乙", t(0)).await;
    assert_eq!(s.evaluation(p.id).await.unwrap(), None);
    let first = evaluation(p.id, "call-1", 84.0, "良", w.manager.id);
    s.save_evaluation(first.clone()).await.unwrap();
    assert_eq!(s.evaluation(p.id).await.unwrap(), Some(first));
    // Evaluating again replaces the record and its indicator scores.
    let mut second = evaluation(p.id, "call-1", 91.5, "优", w.manager.id);
    second.indicator_scores.truncate(1);
    second.evaluated_at = t(21);
    s.save_evaluation(second.clone()).await.unwrap();
    assert_eq!(s.evaluation(p.id).await.unwrap(), Some(second.clone()));
    let mut other = evaluation(q.id, "call-1", 55.0, "差", w.manager.id);
    other.evaluated_at = t(22);
    s.save_evaluation(other.clone()).await.unwrap();
    s.save_evaluation(evaluation(
        new_application(s, &wf, &w.unit, &w.applicant, "丙", t(0))
            .await
            .id,
        "call-2",
        70.0,
        "中",
        w.manager.id,
    ))
    .await
    .unwrap();
    assert_eq!(
        s.evaluations_for_call("call-1").await.unwrap(),
        [second, other]
    );
    // A grade outside 优良中差 is refused, and the stored one stays.
    let stored = s.evaluation(q.id).await.unwrap();
    let bad = evaluation(q.id, "call-1", 55.0, "A", w.manager.id);
    let err = s.save_evaluation(bad).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert_eq!(s.evaluation(q.id).await.unwrap(), stored, "unchanged");
    assert_eq!(stored.unwrap().grade, "差");
}

// ------------------------------------------------------------------ demand merges

pub async fn demand_merges_keep_both_sources(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let call = s
        .create_call(new_call(2022, w.manager.id, sample_categories()))
        .await
        .unwrap();
    let key = call.id.to_string();
    let kept = demand_instance("demand-collection", w.unit.id, w.applicant.id, &key, "甲");
    let dup = demand_instance(
        "demand-collection",
        w.other_unit.id,
        w.manager.id,
        &key,
        "乙",
    );
    let third = demand_instance("demand-collection", w.unit.id, w.applicant.id, &key, "丙");
    s.create_instances(vec![kept.clone(), dup.clone(), third.clone()])
        .await
        .unwrap();
    let merge = DemandMerge {
        id: Uuid::now_v7(),
        call_id: call.id,
        kept_id: kept.id,
        merged_id: dup.id,
        similarity: 0.83,
        kept_source: json!({ "project_name": "甲", "submitter": "广州" }),
        merged_source: json!({ "project_name": "乙", "submitter": "深圳" }),
        merged_by: w.manager.id,
        merged_at: t(30),
    };
    let stored = s.record_demand_merge(merge.clone()).await.unwrap();
    assert_eq!(stored, merge);
    // A demand is merged away once: recording it again returns the first record.
    let again = s
        .record_demand_merge(DemandMerge {
            id: Uuid::now_v7(),
            kept_id: third.id,
            similarity: 0.5,
            ..merge.clone()
        })
        .await
        .unwrap();
    assert_eq!(again, merge);
    let err = s
        .record_demand_merge(DemandMerge {
            id: Uuid::now_v7(),
            kept_id: third.id,
            merged_id: third.id,
            ..merge.clone()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Invalid(_)),
        "a demand is not merged into itself: {err:?}"
    );
    assert_eq!(
        s.demand_merges(call.id).await.unwrap(),
        std::slice::from_ref(&merge),
        "unchanged"
    );
    let mut second = DemandMerge {
        id: Uuid::now_v7(),
        kept_id: kept.id,
        merged_id: third.id,
        merged_at: t(31),
        ..merge.clone()
    };
    second.similarity = 0.71;
    s.record_demand_merge(second.clone()).await.unwrap();
    assert_eq!(s.demand_merges(call.id).await.unwrap(), [merge, second]);
    assert!(s.demand_merges(Uuid::now_v7()).await.unwrap().is_empty());
}
