//! Issue 13, on SQLite and PostgreSQL: the call's funding plan (envelope, part, item and
//! city allocations) holds approvals — a city bureau's `city_approve` against its city's
//! allocation — refused beyond what remains with the remaining amount named; concurrent
//! approvals never overdraw it; budget lines are capped by the approved funding;
//! disbursements (拨付) are capped by it too; spending needs the signed task book and a
//! disbursement; an approved budget change updates the approved funding and the lines it
//! names, with history.

use chrono::NaiveDate;
use grantflow_domain::Money;
use grantflow_programme::funding::FundingPlan;
use grantflow_service::{CreateInstance, FireEvent, ServiceError};
use grantflow_testkit::{Backend, CATALOGUE_2022, FoshanWorld, ServiceWorld, call_of};
use serde_json::{Value, json};
use uuid::Uuid;

/// 下放地市审批, open to a unit in a city.
const DELEGATED_ITEM: &str = "2022-1-2-2";

fn yuan(y: i64) -> Money {
    Money::from_yuan(y).unwrap()
}

struct World {
    base: FoshanWorld,
    call: Uuid,
}
grantflow_testkit::extends!(World, base: FoshanWorld);

async fn world(backend: Backend) -> World {
    let base = FoshanWorld::new(
        ServiceWorld::new(backend).await,
        ["manager", "city_fs", "unit"],
        |u| u,
    )
    .await;
    let call = base.open_call(&base.manager, call_of(CATALOGUE_2022)).await;
    World { base, call }
}

fn file(name: &str) -> Value {
    json!({ "name": name, "sha256": "ab".repeat(32), "size": 2048 })
}

fn refusal(e: ServiceError) -> Box<grantflow_service::programme::Refusal> {
    match e {
        ServiceError::Refused(r) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

impl World {
    /// An application of the unit for the delegated item, submitted to its city bureau.
    async fn at_city_review(&self, budget: &str) -> Uuid {
        let p = self
            .services
            .create_instance(
                &self.applicant,
                CreateInstance {
                    workflow_id: "funded-project".into(),
                    org_id: None,
                    parent_id: None,
                    title: "知识产权综合改革试验".into(),
                    data: json!({}),
                    call_id: Some(self.call),
                    catalogue_item: Some(DELEGATED_ITEM.into()),
                },
            )
            .await
            .unwrap();
        self.try_fire(
            &self.applicant,
            p.id,
            "submit",
            json!({
                "project_name": "知识产权综合改革试验", "budget": budget,
                "indicators": [
                    { "name": "服务企业数", "category": "output_quantity", "target": 50 },
                    { "name": "带动就业", "category": "effect_social", "target": 30 }
                ],
                "application_files": [file("申报书.pdf")],
            }),
        )
        .await
        .unwrap();
        p.id
    }

    /// A budget change request of the unit for `project`, submitted and approved by the
    /// manager (approving applies it to the project; a refusal is only logged).
    async fn budget_change(&self, project: Uuid, budget: &str) -> Uuid {
        let cr = self
            .services
            .create_instance(
                &self.applicant,
                CreateInstance {
                    workflow_id: "change-request".into(),
                    org_id: None,
                    parent_id: Some(project),
                    title: "扩大维权援助范围".into(),
                    data: json!({}),
                    call_id: None,
                    catalogue_item: None,
                },
            )
            .await
            .unwrap();
        self.try_fire(
            &self.applicant,
            cr.id,
            "submit",
            json!({ "change_type": "budget", "change_summary": "扩大维权援助范围", "new_budget": budget }),
        )
        .await
        .unwrap();
        self.try_fire(
            &self.manager,
            cr.id,
            "approve",
            json!({ "decision_notes": "同意" }),
        )
        .await
        .unwrap();
        cr.id
    }

    async fn plan(&self, city_allocation: i64) {
        let mut plan = FundingPlan {
            total: yuan(10_000_000),
            parts: Default::default(),
            categories: Default::default(),
            items: Default::default(),
            cities: Default::default(),
            reimbursed_afterwards: false,
        };
        plan.cities.insert("佛山市".into(), yuan(city_allocation));
        self.services
            .set_funding_plan(&self.manager, self.call, plan, "按省财政下达额度调整")
            .await
            .unwrap();
    }
}

async fn a_city_approves_within_its_allocation_and_the_plan_keeps_its_history(backend: Backend) {
    let w = world(backend).await;
    let s = &w.services;
    // The plan of the call's file was loaded when the call was opened.
    let opened = s.funding(&w.manager, w.call).await.unwrap();
    assert_eq!(opened.plan.as_ref().unwrap().total, yuan(60_000_000));
    w.plan(300_000).await;
    let history = s.funding_history(&w.manager, w.call).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].old_plan, None);
    assert_eq!(
        history[1].old_plan.as_ref().unwrap()["total"],
        "60000000.00"
    );
    assert_eq!(history[1].new_plan["cities"]["佛山市"], "300000.00");
    assert_eq!(history[1].changed_by, w.manager.id.to_string());
    assert_eq!(history[1].reason, "按省财政下达额度调整");
    // Only managers change the plan; an invalid plan is refused, nothing kept.
    let bad = FundingPlan {
        total: yuan(100),
        parts: Default::default(),
        categories: Default::default(),
        items: [("2099-1-1-1".to_string(), yuan(1))].into(),
        cities: Default::default(),
        reimbursed_afterwards: false,
    };
    assert!(matches!(
        s.set_funding_plan(&w.city, w.call, bad.clone(), "x").await,
        Err(ServiceError::Forbidden)
    ));
    assert_eq!(
        refusal(
            s.set_funding_plan(&w.manager, w.call, bad, "x")
                .await
                .unwrap_err()
        )
        .reason
        .as_str(),
        "FUNDING_PLAN_INVALID"
    );
    assert_eq!(
        s.funding_history(&w.manager, w.call).await.unwrap().len(),
        2
    );

    let first = w.at_city_review("250000").await;
    let second = w.at_city_review("250000").await;
    let approve = json!({ "approved_budget": "200000", "targets_approved": true });
    let approved = w
        .try_fire(&w.city, first, "city_approve", approve.clone())
        .await
        .unwrap();
    assert_eq!(approved.state, "task_book");
    let before = s.store.get_instance(second).await.unwrap();
    let r = refusal(
        w.try_fire(&w.city, second, "city_approve", approve)
            .await
            .unwrap_err(),
    );
    assert_eq!(r.reason.as_str(), "FUNDING_EXCEEDED");
    assert_eq!(r.details["pool"], "city:佛山市");
    assert_eq!(r.details["remaining"], "100000.00");
    assert!(r.message_zh.contains("100000.00"), "{}", r.message_zh);
    assert!(r.message_en.contains("100000.00"), "{}", r.message_en);
    // Nothing changed: the application is where it was, the pool holds one project.
    assert_eq!(s.store.get_instance(second).await.unwrap(), before);
    let view = s.funding(&w.manager, w.call).await.unwrap();
    let city = view.pools.iter().find(|p| p.kind == "city").unwrap();
    assert_eq!(
        (city.committed, city.remaining),
        (yuan(200_000), yuan(100_000))
    );
    assert_eq!(view.projects, 1);
    // Within what remains it passes.
    w.try_fire(
        &w.city,
        second,
        "city_approve",
        json!({ "approved_budget": "100000", "targets_approved": true }),
    )
    .await
    .unwrap();
}

async fn concurrent_approvals_never_overdraw_the_city_allocation(backend: Backend) {
    let w = world(backend).await;
    const N: usize = 8;
    const FIT: usize = 5;
    w.plan(100_000 * FIT as i64).await;
    let mut ids = Vec::new();
    for _ in 0..N {
        ids.push(w.at_city_review("150000").await);
    }
    let mut tasks = Vec::new();
    for id in ids {
        let services = w.services.clone();
        let city = w.city.clone();
        let version = services.store.get_instance(id).await.unwrap().version;
        tasks.push(tokio::spawn(async move {
            services
                .fire(
                    &city,
                    FireEvent {
                        instance_id: id,
                        event: "city_approve".into(),
                        expected_version: version,
                        idempotency_key: None,
                        input: json!({ "approved_budget": "100000", "targets_approved": true }),
                        reason: None,
                    },
                )
                .await
        }));
    }
    let mut ok = 0;
    let mut exceeded = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(ServiceError::Refused(r)) if r.reason.as_str() == "FUNDING_EXCEEDED" => {
                assert_eq!(r.details["remaining"], "0.00");
                exceeded += 1;
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!((ok, exceeded), (FIT, N - FIT));
    let view = w.services.funding(&w.manager, w.call).await.unwrap();
    let city = view.pools.iter().find(|p| p.kind == "city").unwrap();
    assert_eq!(city.committed, yuan(500_000));
    assert!(city.committed <= city.allocated);
    assert_eq!(view.projects, FIT);
}

async fn lines_disbursement_spending_and_a_budget_change(backend: Backend) {
    let w = world(backend).await;
    let s = &w.services;
    let id = w.at_city_review("250000").await;
    w.try_fire(
        &w.city,
        id,
        "city_approve",
        json!({ "approved_budget": "200000", "targets_approved": true }),
    )
    .await
    .unwrap();
    let line = s
        .add_budget_line(
            &w.manager,
            id,
            2024,
            "调解员培训",
            yuan(150_000),
            "省级财政专项资金",
        )
        .await
        .unwrap();
    // Lines total at most the approved funding; nothing stored when refused.
    let r = refusal(
        s.add_budget_line(&w.manager, id, 2024, "宣传", yuan(60_000), "")
            .await
            .unwrap_err(),
    );
    assert_eq!(r.reason.as_str(), "BUDGET_OVER_APPROVED");
    assert_eq!(r.details["remaining"], "50000.00");
    assert!(r.message_en.contains("50000.00") && r.message_zh.contains("50000.00"));
    assert_eq!(s.store.budget_lines(&[id]).await.unwrap().len(), 1);
    s.add_budget_line(&w.manager, id, 2024, "宣传", yuan(50_000), "")
        .await
        .unwrap();

    let day = |m, d| NaiveDate::from_ymd_opt(2024, m, d).unwrap();
    // Before the task book is signed: no disbursement, no spending.
    let r = refusal(
        s.record_disbursement(
            &w.manager,
            id,
            "第一批",
            day(6, 10),
            yuan(100_000),
            "粤财-2024-001",
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(r.reason.as_str(), "TASK_BOOK_NOT_SIGNED");
    let r = refusal(
        s.record_spending(
            &w.applicant,
            id,
            Some(line.id),
            yuan(1_000),
            day(7, 1),
            "培训",
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(r.reason.as_str(), "TASK_BOOK_NOT_SIGNED");
    w.try_fire(
        &w.applicant,
        id,
        "submit_task_book",
        json!({ "task_book": file("任务书.pdf"), "milestones": "年底验收", "execution_end": "2024-12-31", "tasks": [{ "focus": "知识产权保护", "task": "开展维权援助", "deliverable_form": "工作报告", "department": "项目组", "due": "2024-12-31" }], "report_schedule": "quarterly" }),
    )
    .await
    .unwrap();
    w.try_fire(&w.manager, id, "sign_task_book", json!({}))
        .await
        .unwrap();
    // Signed, but nothing disbursed yet.
    let r = refusal(
        s.record_spending(
            &w.applicant,
            id,
            Some(line.id),
            yuan(1_000),
            day(7, 1),
            "培训",
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(r.reason.as_str(), "SPENDING_BEYOND_DISBURSED");
    assert_eq!(r.details["remaining"], "0.00");
    // Only managers disburse; amounts are checked.
    assert!(matches!(
        s.record_disbursement(&w.applicant, id, "第一批", day(6, 10), yuan(1), "v")
            .await,
        Err(ServiceError::Forbidden)
    ));
    assert!(matches!(
        s.record_disbursement(
            &w.manager,
            id,
            "第一批",
            day(6, 10),
            Money::from_fen(-5),
            "v"
        )
        .await,
        Err(ServiceError::Invalid(_))
    ));
    s.record_disbursement(
        &w.manager,
        id,
        "第一批",
        day(6, 10),
        yuan(100_000),
        "粤财-2024-001",
    )
    .await
    .unwrap();
    let r = refusal(
        s.record_disbursement(
            &w.manager,
            id,
            "第二批",
            day(6, 11),
            yuan(150_000),
            "粤财-2024-002",
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(r.reason.as_str(), "DISBURSEMENT_OVER_APPROVED");
    assert_eq!(r.details["remaining"], "100000.00");
    assert_eq!(s.disbursed_total(id).await.unwrap(), yuan(100_000));
    s.record_spending(
        &w.applicant,
        id,
        Some(line.id),
        yuan(80_000),
        day(7, 1),
        "培训",
    )
    .await
    .unwrap();
    let r = refusal(
        s.record_spending(
            &w.applicant,
            id,
            Some(line.id),
            yuan(30_000),
            day(7, 2),
            "培训",
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(r.reason.as_str(), "SPENDING_BEYOND_DISBURSED");
    assert_eq!(r.details["remaining"], "20000.00");
    assert_eq!(s.store.spending(&[id]).await.unwrap().len(), 1);
    let budget = s.budget(&w.applicant, id).await.unwrap();
    assert_eq!(budget.approved, Some(yuan(200_000)));
    assert_eq!(budget.disbursed, yuan(100_000));
    assert_eq!(budget.rate_of_disbursed, Some(0.8));
    assert_eq!(budget.rate_of_approved, Some(0.4));

    // An approved budget change: funding 200 000 → 180 000, training line 150 000 → 130 000.
    let change = |lines: &str| {
        json!({
            "change_type": "budget", "change_summary": "压缩培训经费",
            "new_budget": "180000", "new_budget_lines": lines,
        })
    };
    let cr = s
        .create_instance(
            &w.applicant,
            CreateInstance {
                workflow_id: "change-request".into(),
                org_id: None,
                parent_id: Some(id),
                title: "压缩培训经费".into(),
                data: json!({}),
                call_id: None,
                catalogue_item: None,
            },
        )
        .await
        .unwrap();
    w.try_fire(&w.applicant, cr.id, "submit", change("调解员培训=130000"))
        .await
        .unwrap();
    w.try_fire(
        &w.manager,
        cr.id,
        "approve",
        json!({ "decision_notes": "同意" }),
    )
    .await
    .unwrap();
    let project = s.store.get_instance(id).await.unwrap();
    assert_eq!(project.data["approved_budget"], "180000.00");
    let lines = s.store.budget_lines(&[id]).await.unwrap();
    assert_eq!(
        lines.iter().find(|l| l.id == line.id).unwrap().amount,
        yuan(130_000)
    );
    let changes = s.store.budget_line_changes(id).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (changes[0].old_amount, changes[0].new_amount),
        (yuan(150_000), yuan(130_000))
    );
    assert_eq!(changes[0].change_request_id, Some(cr.id));
    assert_eq!(project.budget["total"], "180000.00");
    let held = s.funding(&w.manager, w.call).await.unwrap();
    assert_eq!(held.pools[0].committed, yuan(180_000));

    // A change taking the line below what was spent on it is refused whole.
    let cr2 = s
        .create_instance(
            &w.applicant,
            CreateInstance {
                workflow_id: "change-request".into(),
                org_id: None,
                parent_id: Some(id),
                title: "再压缩".into(),
                data: json!({}),
                call_id: None,
                catalogue_item: None,
            },
        )
        .await
        .unwrap();
    w.try_fire(&w.applicant, cr2.id, "submit", change("调解员培训=50000"))
        .await
        .unwrap();
    w.try_fire(
        &w.manager,
        cr2.id,
        "approve",
        json!({ "decision_notes": "同意" }),
    )
    .await
    .unwrap();
    let r = refusal(
        s.apply_change_request(&w.manager, cr2.id)
            .await
            .unwrap_err(),
    );
    assert_eq!(r.reason.as_str(), "BUDGET_LINE_BELOW_SPENT");
    assert_eq!(s.store.get_instance(id).await.unwrap(), project);
    assert_eq!(s.store.budget_line_changes(id).await.unwrap().len(), 1);
}

/// A budget change of a city-approved project is held to the city's allocation as well as
/// the envelope, in the transition's transaction: beyond what the city has left it is
/// refused naming the remaining amount, and nothing changes; within it, it applies.
async fn a_budget_change_is_held_to_the_city_allocation(backend: Backend) {
    let w = world(backend).await;
    let s = &w.services;
    w.plan(300_000).await;
    let id = w.at_city_review("250000").await;
    let other = w.at_city_review("250000").await;
    for (p, amount) in [(id, "200000"), (other, "100000")] {
        w.try_fire(
            &w.city,
            p,
            "city_approve",
            json!({ "approved_budget": amount, "targets_approved": true }),
        )
        .await
        .unwrap();
    }
    w.try_fire(
        &w.applicant,
        id,
        "submit_task_book",
        json!({ "task_book": file("任务书.pdf"), "milestones": "年底验收", "execution_end": "2024-12-31", "tasks": [{ "focus": "知识产权保护", "task": "开展维权援助", "deliverable_form": "工作报告", "department": "项目组", "due": "2024-12-31" }], "report_schedule": "quarterly" }),
    )
    .await
    .unwrap();
    s.add_budget_line(&w.manager, id, 2024, "维权援助", yuan(100_000), "")
        .await
        .unwrap();
    w.try_fire(&w.manager, id, "sign_task_book", json!({}))
        .await
        .unwrap();
    // The envelope (10 000 000) has room; 佛山市 has 0 left beyond this project's 200 000.
    let before = s.store.get_instance(id).await.unwrap();
    let raise = w.budget_change(id, "250000").await;
    assert_eq!(
        s.store.get_instance(id).await.unwrap(),
        before,
        "not applied"
    );
    let r = refusal(s.apply_change_request(&w.manager, raise).await.unwrap_err());
    assert_eq!(r.reason.as_str(), "FUNDING_EXCEEDED");
    assert_eq!(r.details["pool"], "city:佛山市");
    assert_eq!(r.details["remaining"], "200000.00");
    assert!(r.message_zh.contains("200000.00") && r.message_en.contains("200000.00"));
    assert_eq!(s.store.get_instance(id).await.unwrap(), before);
    let view = s.funding(&w.manager, w.call).await.unwrap();
    let city = view.pools.iter().find(|p| p.kind == "city").unwrap();
    assert_eq!(
        (city.committed, city.remaining),
        (yuan(300_000), Money::ZERO)
    );
    // Below the 100 000 of budget lines (a change naming no line) is refused too.
    let below = w.budget_change(id, "50000").await;
    let r = refusal(s.apply_change_request(&w.manager, below).await.unwrap_err());
    assert_eq!(r.reason.as_str(), "BUDGET_OVER_APPROVED");
    assert_eq!(s.store.get_instance(id).await.unwrap(), before);
    // Lowering it passes and frees the city's allocation.
    w.budget_change(id, "150000").await;
    let project = s.store.get_instance(id).await.unwrap();
    assert_eq!(project.data["approved_budget"], "150000.00");
    let view = s.funding(&w.manager, w.call).await.unwrap();
    let city = view.pools.iter().find(|p| p.kind == "city").unwrap();
    assert_eq!(
        (city.committed, city.remaining),
        (yuan(250_000), yuan(50_000))
    );
}

grantflow_testkit::on_both_backends!(
    a_city_approves_within_its_allocation_and_the_plan_keeps_its_history,
    concurrent_approvals_never_overdraw_the_city_allocation,
    lines_disbursement_spending_and_a_budget_change,
    a_budget_change_is_held_to_the_city_allocation,
);
