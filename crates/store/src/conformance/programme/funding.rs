//! The money after the budget (issue 13) in the store: a call's funding plan holds every
//! approval's claim in the transition's transaction (envelope, city allocation), a claim
//! without a city stays in the city pool the project holds, lines follow an approved
//! change and stay within the approved funding, disbursements are capped by it, spending
//! by what was disbursed, and concurrent approvals never overdraw the envelope.

#[allow(clippy::wildcard_imports)]
use super::*;
use crate::funding::{Disbursement, FundingClaim, LineAmount, MoneyEffects, MoneyRefusal};

const CITY: &str = "广州市";

/// A call with a funding plan: `total` in all, `city` for 广州市's own approvals.
async fn call_with_plan(s: &dyn Store, by: Uuid, total: i64, city: i64) -> Uuid {
    let call = s
        .create_call(new_call(2024, by, sample_categories()))
        .await
        .unwrap();
    let plan = json!({
        "total": format!("{total}.00"), "parts": {}, "categories": {}, "items": {},
        "cities": { CITY: format!("{city}.00") }, "reimbursed_afterwards": false,
    });
    s.set_funding_plan(call.id, plan, "省财政下达".into(), by.to_string(), t(0))
        .await
        .unwrap();
    call.id
}

/// A project of `w.unit` awaiting the decision, asking for `budget` yuan, with one budget
/// line of that amount (what the approval guard needs).
async fn at_decision(
    s: &dyn Store,
    w: &crate::conformance::World,
    call_id: Uuid,
    budget: i64,
) -> (Instance, BudgetLine) {
    let wf = funded_project();
    let p = s
        .create_instance(NewInstance {
            id: Uuid::now_v7(),
            workflow_id: wf.def.id.clone(),
            workflow_version: wf.def.version,
            state: "decision".into(),
            stage: "approval".into(),
            data: json!({
                "call_id": call_id.to_string(), "part": "delegated_to_city",
                "applicant_kind": "unit", "catalogue_item": "2022-3-2-1",
                "budget": format!("{budget}.00"), "indicators": [],
            }),
            parent_id: None,
            org_id: w.unit.id,
            title: "商标执法专项行动".into(),
            created_by: w.applicant.id,
            created_at: t(0),
            due_at: None,
            timers: Vec::new(),
        })
        .await
        .unwrap();
    let l = s
        .add_budget_line(line(&p, yuan(budget), w.manager.id, 1))
        .await
        .unwrap();
    (s.get_instance(p.id).await.unwrap(), l)
}

fn claim(call_id: Uuid, amount: i64, city: Option<&str>) -> MoneyEffects {
    MoneyEffects {
        funding: Some(FundingClaim {
            call_id,
            amount: yuan(amount),
            part: "delegated_to_city".into(),
            category: "protection".into(),
            item_id: "2022-3-2-1".into(),
            city: city.map(str::to_string),
        }),
        ..Default::default()
    }
}

/// Approve `p` for `amount` yuan, holding `effects` against the plan.
async fn approve(
    s: &dyn Store,
    w: &crate::conformance::World,
    p: &Instance,
    amount: i64,
    effects: MoneyEffects,
) -> Result<Instance, StoreError> {
    let wf = funded_project();
    Fire::new(&wf, p, actor(&w.manager, "manager"), "approve", t(2))
        .input(json!({ "approved_budget": format!("{amount}"), "targets_approved": true }))
        .money(effects)
        .run(s)
        .await
        .map(|a| a.instance)
}

fn exceeded(e: StoreError) -> (String, Money) {
    match e {
        StoreError::Money(MoneyRefusal::FundingExceeded {
            pool, remaining, ..
        }) => (pool, remaining),
        other => panic!("expected FUNDING_EXCEEDED, got {other:?}"),
    }
}

/// Approvals beyond what remains of the envelope or of the city's allocation are refused
/// with the pool and the remaining amount, and write nothing.
pub async fn approvals_are_held_to_the_plan(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let call = call_with_plan(s, w.manager.id, 500_000, 300_000).await;
    let (a, _) = at_decision(s, &w, call, 250_000).await;
    let (b, _) = at_decision(s, &w, call, 300_000).await;
    let (c, _) = at_decision(s, &w, call, 300_000).await;
    approve(s, &w, &a, 250_000, claim(call, 250_000, Some(CITY)))
        .await
        .unwrap();
    // The city has 50 000 left.
    let refused = approve(s, &w, &b, 100_000, claim(call, 100_000, Some(CITY)))
        .await
        .unwrap_err();
    assert_eq!(exceeded(refused), (format!("city:{CITY}"), yuan(50_000)));
    assert_eq!(s.get_instance(b.id).await.unwrap(), b, "nothing written");
    // Without the city pool, the envelope has 250 000 left.
    approve(s, &w, &b, 200_000, claim(call, 200_000, None))
        .await
        .unwrap();
    let refused = approve(s, &w, &c, 60_000, claim(call, 60_000, None))
        .await
        .unwrap_err();
    assert_eq!(exceeded(refused), ("total".to_string(), yuan(50_000)));
    assert_eq!(s.get_instance(c.id).await.unwrap(), c, "nothing written");
    // Exactly what remains fits.
    approve(s, &w, &c, 50_000, claim(call, 50_000, None))
        .await
        .unwrap();
    let held = s.funding_commitments(call).await.unwrap();
    let mut amounts: Vec<(Uuid, Money, Option<String>)> = held
        .iter()
        .map(|h| (h.instance_id, h.amount, h.city.clone()))
        .collect();
    amounts.sort_by_key(|h| h.0);
    let mut expected = vec![
        (a.id, yuan(250_000), Some(CITY.to_string())),
        (b.id, yuan(200_000), None),
        (c.id, yuan(50_000), None),
    ];
    expected.sort_by_key(|h| h.0);
    assert_eq!(amounts, expected);
    assert_eq!(held.iter().map(|h| h.amount).sum::<Money>(), yuan(500_000));
}

/// A later claim of a city-approved project (an approved budget change, which names no
/// city) stays held to the city's allocation, and its commitment keeps the city.
pub async fn a_budget_change_stays_in_its_city_allocation(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let call = call_with_plan(s, w.manager.id, 1_000_000, 300_000).await;
    let (a, _) = at_decision(s, &w, call, 300_000).await;
    let (b, _) = at_decision(s, &w, call, 300_000).await;
    let a = approve(s, &w, &a, 200_000, claim(call, 200_000, Some(CITY)))
        .await
        .unwrap();
    approve(s, &w, &b, 100_000, claim(call, 100_000, Some(CITY)))
        .await
        .unwrap();
    // The envelope has 700 000 left, the city none: 200 000 → 250 000 is refused.
    let manager = actor(&w.manager, "manager");
    let refused = Fire::new(&wf, &a, manager.clone(), "publicity_ended", t(3))
        .money(claim(call, 250_000, None))
        .run(s)
        .await
        .unwrap_err();
    assert_eq!(exceeded(refused), (format!("city:{CITY}"), yuan(200_000)));
    assert_eq!(s.get_instance(a.id).await.unwrap(), a, "nothing written");
    let lower = Fire::new(&wf, &a, manager, "publicity_ended", t(3))
        .money(claim(call, 180_000, None))
        .run(s)
        .await
        .unwrap();
    assert_eq!(lower.instance.state, "task_book");
    let held = s.funding_commitments(call).await.unwrap();
    let mine = held.iter().find(|h| h.instance_id == a.id).unwrap();
    assert_eq!(
        (mine.amount, mine.city.as_deref(), mine.event.as_str()),
        (yuan(180_000), Some(CITY), "publicity_ended")
    );
    let in_city: Money = held
        .iter()
        .filter(|h| h.city.as_deref() == Some(CITY))
        .map(|h| h.amount)
        .sum();
    assert_eq!(in_city, yuan(280_000));
}

/// Lines total at most the approved funding; an approved change sets the lines it names
/// (with history) and is refused whole below what was spent, beyond the approved
/// funding, or naming a line of another project.
pub async fn lines_follow_the_approved_funding(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let wf = funded_project();
    let call = call_with_plan(s, w.manager.id, 1_000_000, 1_000_000).await;
    let (p, first) = at_decision(s, &w, call, 300_000).await;
    // Before approval the requested budget caps the lines.
    let over = s
        .add_budget_line(line(&p, yuan(1), w.manager.id, 2))
        .await
        .unwrap_err();
    assert!(
        matches!(
            over,
            StoreError::Money(MoneyRefusal::BudgetOverApproved { remaining, .. }) if remaining == Money::ZERO
        ),
        "{over:?}"
    );
    let p = approve(s, &w, &p, 300_000, claim(call, 300_000, None))
        .await
        .unwrap();
    spend(s, p.id, Some(first.id), yuan(40_000), w.applicant.id)
        .await
        .unwrap();
    let p = s.get_instance(p.id).await.unwrap();
    let (other, foreign) = at_decision(s, &w, call, 1000).await;
    let manager = actor(&w.manager, "manager");
    let change = |lines: Vec<(Uuid, i64)>| MoneyEffects {
        funding: None,
        lines: lines
            .into_iter()
            .map(|(line_id, y)| LineAmount {
                line_id,
                amount: yuan(y),
            })
            .collect(),
        change_request_id: Some(other.id),
    };
    let refusals = [
        (change(vec![(first.id, 30_000)]), "below what was spent"),
        (
            change(vec![(first.id, 300_001)]),
            "beyond the approved funding",
        ),
        (change(vec![(foreign.id, 500)]), "a line of another project"),
    ];
    for (effects, why) in refusals {
        let e = Fire::new(&wf, &p, manager.clone(), "publicity_ended", t(3))
            .money(effects)
            .run(s)
            .await
            .unwrap_err();
        assert!(matches!(e, StoreError::Money(_)), "{why}: {e:?}");
        assert_eq!(
            s.get_instance(p.id).await.unwrap(),
            p,
            "{why}: nothing written"
        );
    }
    assert!(s.budget_line_changes(p.id).await.unwrap().is_empty());
    let changed = Fire::new(&wf, &p, manager, "publicity_ended", t(3))
        .money(change(vec![(first.id, 120_000)]))
        .run(s)
        .await
        .unwrap()
        .instance;
    assert_eq!(changed.budget["total"], "120000.00");
    let lines = s.budget_lines(&[p.id]).await.unwrap();
    assert_eq!(lines[0].amount, yuan(120_000));
    let history = s.budget_line_changes(p.id).await.unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(
        (
            history[0].old_amount,
            history[0].new_amount,
            history[0].change_request_id
        ),
        (yuan(300_000), yuan(120_000), Some(other.id))
    );
    // Room again for a line within the approved funding, not beyond.
    s.add_budget_line(line(&p, yuan(180_000), w.manager.id, 4))
        .await
        .unwrap();
    assert!(matches!(
        s.add_budget_line(line(&p, Money::from_fen(1), w.manager.id, 5))
            .await,
        Err(StoreError::Money(MoneyRefusal::BudgetOverApproved { .. }))
    ));
}

fn payment(instance_id: Uuid, by: Uuid, amount: i64) -> Disbursement {
    Disbursement {
        id: Uuid::now_v7(),
        instance_id,
        batch: "第一批".into(),
        paid_on: day(2024, 7, 1),
        amount: yuan(amount),
        voucher: "粤财-2024-001".into(),
        recorded_by: by,
        recorded_at: t(5),
    }
}

async fn spend_disbursed(
    s: &dyn Store,
    p: Uuid,
    line_id: Uuid,
    amount: i64,
    by: Uuid,
    require_disbursed: bool,
) -> Result<SpendingRecord, SpendingRefusal> {
    s.record_spending(NewSpending {
        id: Uuid::now_v7(),
        instance_id: p,
        line_id: Some(line_id),
        amount: yuan(amount),
        spent_on: day(2024, 7, 2),
        description: "培训".into(),
        recorded_by: by,
        recorded_at: t(6),
        precondition: &allow,
        require_disbursed,
    })
    .await
    .unwrap()
}

/// Disbursements stay within the approved funding (none without it); spending stays
/// within what was disbursed unless the funds are reimbursed afterwards (后补助).
pub async fn disbursement_caps_spending(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let call = call_with_plan(s, w.manager.id, 1_000_000, 1_000_000).await;
    let (p, l) = at_decision(s, &w, call, 200_000).await;
    assert!(matches!(
        s.record_disbursement(payment(p.id, w.manager.id, 1)).await,
        Err(StoreError::Money(MoneyRefusal::NoApprovedFunding))
    ));
    let p = approve(s, &w, &p, 200_000, claim(call, 200_000, None))
        .await
        .unwrap();
    let by = w.applicant.id;
    assert_eq!(
        spend_disbursed(s, p.id, l.id, 1, by, true).await,
        Err(SpendingRefusal::BeyondDisbursed {
            disbursed: Money::ZERO,
            spent: Money::ZERO,
            amount: yuan(1),
            remaining: Money::ZERO,
        })
    );
    s.record_disbursement(payment(p.id, w.manager.id, 100_000))
        .await
        .unwrap();
    let over = s
        .record_disbursement(payment(p.id, w.manager.id, 100_001))
        .await
        .unwrap_err();
    assert!(
        matches!(
            over,
            StoreError::Money(MoneyRefusal::DisbursementOverApproved { remaining, .. }) if remaining == yuan(100_000)
        ),
        "{over:?}"
    );
    spend_disbursed(s, p.id, l.id, 60_000, by, true)
        .await
        .unwrap();
    assert_eq!(
        spend_disbursed(s, p.id, l.id, 50_000, by, true).await,
        Err(SpendingRefusal::BeyondDisbursed {
            disbursed: yuan(100_000),
            spent: yuan(60_000),
            amount: yuan(50_000),
            remaining: yuan(40_000),
        })
    );
    // Reimbursed afterwards: beyond what was disbursed, within the line.
    spend_disbursed(s, p.id, l.id, 50_000, by, false)
        .await
        .unwrap();
    assert_eq!(s.spending(&[p.id]).await.unwrap().len(), 2);
    assert_eq!(s.disbursements(&[p.id]).await.unwrap().len(), 1);
}

/// N approvals of one call at once, of which only FIT fit the envelope, many rounds
/// over: exactly FIT commit, the rest see nothing left, the envelope is never overdrawn.
pub async fn concurrent_approvals_never_overdraw_the_envelope(
    store: Arc<dyn Store>,
    _h: &dyn Harness,
) {
    let w = Arc::new(world(store.as_ref()).await);
    const N: usize = 6;
    const FIT: usize = 4;
    const ROUNDS: usize = 3;
    for round in 0..ROUNDS {
        let call = call_with_plan(
            store.as_ref(),
            w.manager.id,
            100_000 * FIT as i64,
            1_000_000,
        )
        .await;
        let mut projects = Vec::new();
        for _ in 0..N {
            projects.push(at_decision(store.as_ref(), &w, call, 100_000).await.0);
        }
        let barrier = Arc::new(Barrier::new(N));
        let mut tasks = Vec::new();
        for p in projects {
            let (store, barrier, w) = (store.clone(), barrier.clone(), w.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                approve(store.as_ref(), &w, &p, 100_000, claim(call, 100_000, None)).await
            }));
        }
        let mut ok = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => ok += 1,
                Err(e) => assert_eq!(exceeded(e), ("total".to_string(), Money::ZERO)),
            }
        }
        assert_eq!(ok, FIT, "round {round}");
        let held: Money = store
            .funding_commitments(call)
            .await
            .unwrap()
            .iter()
            .map(|h| h.amount)
            .sum();
        assert_eq!(held, yuan(100_000 * FIT as i64), "round {round}");
    }
}
