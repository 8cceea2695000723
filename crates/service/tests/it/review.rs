//! Expert review through the service, on SQLite: recusal over random pools (a property
//! test), balanced automatic assignment, the experts' lifecycle with replacement,
//! per-criterion errors, outliers that must be justified before they count, reopening,
//! overdue reassignment, closed rounds, exclusions and the ranking of a call.

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate};
use grantflow_review::ReviewError;
use grantflow_review::conflict::conflicts;
use grantflow_review::expert::ReviewPolicy;
use grantflow_review::scoring::{CriterionScore, ScoreSheet};
use grantflow_service::review::{ProfileUpdate, ReviewServiceError, Reviews, lifecycle};
use grantflow_service::{CreateInstance, FireEvent};
use grantflow_store::review::assignment_state;
use grantflow_store::{Instance, OrgKind, Organisation, Role, User};
use grantflow_testkit::{Backend, CATALOGUE_2022, ServiceWorld, call_of, registry_of, start_time};
use proptest::prelude::*;
use serde_json::{Value, json};
use uuid::Uuid;

struct World {
    base: ServiceWorld,
    reviews: Reviews,
    city: Organisation,
    manager: User,
    city_user: User,
    units: Vec<(Organisation, User)>,
    experts: Vec<User>,
    /// The call applications belong to (the 2022 catalogue, closing 2024-06-28).
    call: Uuid,
}
grantflow_testkit::extends!(World, base: ServiceWorld);

/// A province, a city, `units` applicant units with one applicant each, and `experts`
/// experts: expert k works for `expert_org(k)` (an applicant unit or an institute).
async fn world(
    backend: Backend,
    units: usize,
    experts: usize,
    expert_org: impl Fn(usize) -> Option<usize>,
) -> World {
    let base = ServiceWorld::with(backend, registry_of(&["funded-project"]), start_time()).await;
    let province = base
        .org("广东省市场监督管理局", OrgKind::Province, None)
        .await;
    let city = base
        .org("广州市市场监督管理局", OrgKind::City, Some(&province))
        .await;
    let manager = base
        .user("manager", Some(&province), &[Role::Manager])
        .await;
    let city_user = base.user("city", Some(&city), &[Role::City]).await;
    let mut unit_list = Vec::new();
    for u in 0..units {
        let o = base
            .org(
                &format!("申报单位{u:02}号知识产权中心"),
                OrgKind::Unit,
                Some(&city),
            )
            .await;
        let a = base
            .user(&format!("applicant{u}"), Some(&o), &[Role::Applicant])
            .await;
        unit_list.push((o, a));
    }
    let mut institutes = Vec::new();
    let mut expert_list = Vec::new();
    for k in 0..experts {
        let home = match expert_org(k) {
            Some(u) => unit_list[u].0.clone(),
            None => {
                let o = base
                    .org(&format!("研究院{k:02}"), OrgKind::Unit, Some(&city))
                    .await;
                institutes.push(o.clone());
                o
            }
        };
        expert_list.push(
            base.user(&format!("expert{k:02}"), Some(&home), &[Role::Expert])
                .await,
        );
    }
    let reviews = base.services.reviews();
    for e in &expert_list {
        reviews
            .upsert_expert_profile(
                &manager,
                ProfileUpdate {
                    user_id: e.id,
                    categories: vec![3],
                    keywords: vec!["专利".into()],
                    workload_cap: 20,
                    status: "active".into(),
                },
            )
            .await
            .unwrap();
    }
    let call = base.open_call(&manager, call_of(CATALOGUE_2022)).await;
    World {
        call,
        base,
        reviews,
        city,
        manager,
        city_user,
        units: unit_list,
        experts: expert_list,
    }
}

fn file() -> Value {
    json!({ "name": "申报书.pdf", "sha256": "ab".repeat(32), "size": 20480 })
}

impl World {
    async fn fire(&self, user: &User, inst: &Instance, event: &str, input: Value) -> Instance {
        self.services
            .fire(
                user,
                FireEvent {
                    instance_id: inst.id,
                    event: event.into(),
                    expected_version: inst.version,
                    idempotency_key: None,
                    input,
                    reason: None,
                },
            )
            .await
            .unwrap_or_else(|e| panic!("{event}: {e:?}"))
            .instance
    }

    /// An application of unit `u`, created, and moved to `expert_review` after
    /// `before_review` ran on it (e.g. to request exclusions).
    async fn application(&self, u: usize, title: &str, extra: Value) -> Instance {
        let (_, applicant) = &self.units[u];
        let mut data = json!({ "category": "3" });
        if let (Some(d), Some(e)) = (data.as_object_mut(), extra.as_object()) {
            d.extend(e.clone());
        }
        self.services
            .create_instance(
                applicant,
                CreateInstance {
                    workflow_id: "funded-project".into(),
                    org_id: None,
                    parent_id: None,
                    title: title.into(),
                    data,
                    call_id: Some(self.call),
                    catalogue_item: Some("2022-2-1-5".into()),
                },
            )
            .await
            .unwrap()
    }

    async fn to_review(&self, u: usize, inst: Instance) -> Instance {
        let (_, applicant) = &self.units[u];
        let inst = self
            .fire(
                applicant,
                &inst,
                "submit",
                json!({
                    "project_name": "专利导航服务能力提升",
                    "budget": "300000",
                    "indicators": [{ "name": "专利导航报告", "category": "output_quantity", "target": 3 }, { "name": "受益单位", "category": "effect_social", "unit": "家", "target": 20 }],
                    "application_files": [file()],
                }),
            )
            .await;
        let inst = self
            .fire(&self.city_user, &inst, "recommend", json!({}))
            .await;
        self.fire(&self.manager, &inst, "pass_formal_check", json!({}))
            .await
    }

    async fn in_review(&self, u: usize, title: &str) -> Instance {
        let inst = self.application(u, title, json!({})).await;
        self.to_review(u, inst).await
    }

    fn expert(&self, id: Uuid) -> &User {
        self.experts.iter().find(|e| e.id == id).expect("an expert")
    }

    async fn loads(&self) -> BTreeMap<Uuid, u32> {
        let mut loads: BTreeMap<Uuid, u32> = self.experts.iter().map(|e| (e.id, 0)).collect();
        for (e, n) in self.store().open_loads().await.unwrap() {
            loads.insert(e, n);
        }
        loads
    }

    /// Every rule-based conflict of every assignment, with the expert's declared
    /// conflicts: what must never happen.
    async fn conflicting_assignments(&self, instances: &[Instance]) -> Vec<String> {
        let policy = ReviewPolicy::default();
        let today = grantflow_domain::calendar::local_date(self.services.now());
        let collaborations = self.store().collaborations(None).await.unwrap();
        let mut bad = Vec::new();
        let apps: Vec<_> = instances.iter().map(|i| application(i, &[])).collect();
        for inst in instances {
            let excluded = self.store().exclusions(inst.id).await.unwrap();
            let app = application(inst, &excluded);
            let records = self.store().instance_assignments(inst.id).await.unwrap();
            let declared: Vec<(Uuid, Uuid)> = records
                .iter()
                .filter(|r| r.events.iter().any(|e| e.action == "declare_conflict"))
                .map(|r| (r.id, r.expert_id))
                .collect();
            for r in &records {
                let user = self.expert(r.expert_id);
                let expert = grantflow_review::expert::Expert {
                    id: user.id.to_string(),
                    org_id: user.org_id.unwrap().to_string(),
                    categories: Default::default(),
                    keywords: vec![],
                    workload_cap: 20,
                    status: grantflow_review::expert::ExpertStatus::Active,
                    collaborations: collaborations
                        .iter()
                        .filter(|c| c.expert_id == user.id)
                        .map(|c| grantflow_review::expert::Collaboration {
                            org_id: c.org_id.to_string(),
                            until: c.until,
                        })
                        .collect(),
                };
                let reasons = conflicts(&expert, &app, &apps, &policy, today);
                if !reasons.is_empty() {
                    bad.push(format!("{} on {}: {reasons:?}", user.username, inst.title));
                }
                // Nobody is seated again where they declared a conflict.
                if declared
                    .iter()
                    .any(|(id, expert)| *expert == r.expert_id && *id != r.id)
                {
                    bad.push(format!("{} came back to {}", user.username, inst.title));
                }
            }
        }
        bad
    }
}

/// The application as the rules see it, built here independently of the service.
fn application(inst: &Instance, excluded: &[Uuid]) -> grantflow_review::conflict::Application {
    grantflow_review::conflict::Application {
        id: inst.id.to_string(),
        call_id: inst.data["call_id"].as_str().unwrap().to_string(),
        applicant_org_id: inst.org_id.to_string(),
        category: grantflow_review::expert::Category::new(3).unwrap(),
        keywords: vec![],
        excluded_org_ids: excluded.iter().map(Uuid::to_string).collect(),
        participant_ids: vec![inst.created_by.to_string()],
    }
}

fn scores(necessity: f64, feasibility: f64, targets: f64, budget: f64) -> ScoreSheet {
    let c = |v: f64| {
        if v < 60.0 {
            CriterionScore::with_comment(v, "不足之处明显")
        } else {
            CriterionScore::new(v)
        }
    };
    ScoreSheet::new()
        .with("necessity", c(necessity))
        .with("feasibility", c(feasibility))
        .with("performance_targets", c(targets))
        .with("budget", c(budget))
}

fn flat(v: f64) -> ScoreSheet {
    scores(v, v, v, v)
}

fn code(e: &ReviewServiceError) -> &'static str {
    e.code()
}

// ------------------------------------------------------------------ recusal property

#[derive(Debug, Clone)]
struct Pool {
    /// Per expert: Some(unit) when working for an applicant unit, else an institute.
    homes: Vec<Option<usize>>,
    /// (expert, unit, months ago the collaboration ended)
    collaborations: Vec<(usize, usize, u32)>,
    /// Per application (one per unit): excluded experts' homes (by expert index).
    exclusions: Vec<Vec<usize>>,
    /// Manual picks per application (expert indices).
    manual: Vec<Vec<usize>>,
    /// Experts declaring a conflict when invited (by expert index).
    declaring: Vec<usize>,
    seed: u64,
}

fn pools() -> impl Strategy<Value = Pool> {
    (3usize..=4, 6usize..=10).prop_flat_map(|(units, experts)| {
        (
            proptest::collection::vec(proptest::option::weighted(0.4, 0..units), experts),
            proptest::collection::vec((0..experts, 0..units, 0u32..60), 0..6),
            proptest::collection::vec(proptest::collection::vec(0..experts, 0..3), units),
            proptest::collection::vec(proptest::collection::vec(0..experts, 0..3), units),
            proptest::collection::vec(0..experts, 0..4),
            any::<u64>(),
        )
            .prop_map(
                |(homes, collaborations, exclusions, manual, declaring, seed)| Pool {
                    homes,
                    collaborations,
                    exclusions,
                    manual,
                    declaring,
                    seed,
                },
            )
    })
}

async fn recusal_case(backend: Backend, pool: Pool) {
    let units = pool.exclusions.len();
    let homes = pool.homes.clone();
    let w = world(backend, units, homes.len(), |k| homes[k]).await;
    let today: NaiveDate = "2024-06-03".parse().unwrap();
    // The same collaboration (expert, unit, end) twice is refused by the store: each
    // distinct one is recorded once, and every recording must succeed.
    let mut recorded = std::collections::BTreeSet::new();
    for (e, u, months) in &pool.collaborations {
        if !recorded.insert((*e, *u, *months)) {
            continue;
        }
        let until = today
            .checked_sub_months(chrono::Months::new(*months))
            .unwrap();
        w.reviews
            .record_collaboration(&w.manager, w.experts[*e].id, w.units[*u].0.id, until, None)
            .await
            .unwrap();
    }
    let mut instances = Vec::new();
    for u in 0..units {
        let inst = w.application(u, &format!("项目{u}"), json!({})).await;
        let orgs: Vec<Uuid> = pool.exclusions[u]
            .iter()
            .map(|k| w.experts[*k].org_id.unwrap())
            .collect();
        w.reviews
            .request_exclusions(&w.units[u].1, inst.id, orgs)
            .await
            .unwrap();
        instances.push(w.to_review(u, inst).await);
    }
    for (u, inst) in instances.iter().enumerate() {
        // Manual picks: accepted only when none of them conflicts.
        let ids: Vec<Uuid> = pool.manual[u].iter().map(|k| w.experts[*k].id).collect();
        if !ids.is_empty() {
            match w.reviews.assign(&w.manager, inst.id, ids).await {
                Ok(_) => {}
                Err(ReviewServiceError::Review(ReviewError::AssignmentRefused { .. })) => {}
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
        w.reviews
            .auto_assign(&w.manager, inst.id, Some(pool.seed))
            .await
            .unwrap();
    }
    // Experts declare conflicts; replacements are drawn automatically.
    for k in &pool.declaring {
        let expert = &w.experts[*k];
        for item in w.reviews.my_reviews(expert, false).await.unwrap() {
            if item.assignment.state == assignment_state::ASSIGNED {
                w.reviews
                    .declare_conflict(expert, item.assignment.id, "与申报单位有合作")
                    .await
                    .unwrap();
            }
        }
    }
    let bad = w.conflicting_assignments(&instances).await;
    assert!(bad.is_empty(), "conflicting assignments: {bad:#?}");
    let mut seated = 0;
    for inst in &instances {
        seated += w.store().instance_assignments(inst.id).await.unwrap().len();
    }
    assert!(seated >= instances.len(), "the case exercised assignment");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_assignment_through_the_service_pairs_an_expert_with_a_conflict(pool in pools()) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(recusal_case(Backend::Sqlite, pool));
    }
}

proptest! {
    // Fewer cases on PostgreSQL: each case creates a database.
    #![proptest_config(ProptestConfig { cases: 6, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn no_assignment_through_the_service_pairs_an_expert_with_a_conflict_on_postgres(pool in pools()) {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(recusal_case(Backend::Postgres, pool));
    }
}

// ------------------------------------------------------------------ balance

async fn automatic_assignment_keeps_loads_within_one(backend: Backend) {
    for (experts, projects, seed) in [(7usize, 10usize, 1u64), (5, 6, 99), (9, 12, 20240603)] {
        let w = world(backend, 2, experts, |_| None).await;
        for p in 0..projects {
            let inst = w.in_review(p % 2, &format!("项目{p}")).await;
            let drawn = w
                .reviews
                .auto_assign(&w.manager, inst.id, Some(seed + p as u64))
                .await
                .unwrap();
            assert_eq!(drawn.assignments.len(), 3, "a full panel");
            assert!(drawn.shortfall.is_none());
            let loads = w.loads().await;
            let max = loads.values().max().unwrap();
            let min = loads.values().min().unwrap();
            assert!(max - min <= 1, "after {} panels: {loads:?}", p + 1);
        }
    }
}

async fn a_draw_is_reproducible_from_its_recorded_seed(backend: Backend) {
    let mut panels = Vec::new();
    for _ in 0..2 {
        let w = world(backend, 2, 8, |_| None).await;
        let inst = w.in_review(0, "项目").await;
        let drawn = w
            .reviews
            .auto_assign(&w.manager, inst.id, Some(4242))
            .await
            .unwrap();
        assert!(drawn.assignments.iter().all(|a| a.seed == Some(4242)));
        assert_eq!(
            drawn.assignments[0].algorithm.as_deref(),
            Some(grantflow_review::assignment::DRAW_ALGORITHM)
        );
        panels.push(
            drawn
                .assignments
                .iter()
                .map(|a| w.expert(a.expert_id).username.clone())
                .collect::<Vec<_>>(),
        );
        // Without a seed one is generated and recorded.
        let other = w.in_review(1, "另一个项目").await;
        let drawn = w
            .reviews
            .auto_assign(&w.manager, other.id, None)
            .await
            .unwrap();
        assert!(drawn.assignments.iter().all(|a| a.seed == Some(drawn.seed)));
        // A second draw on a full panel seats nobody.
        let again = w
            .reviews
            .auto_assign(&w.manager, inst.id, Some(1))
            .await
            .unwrap();
        assert!(again.assignments.is_empty());
    }
    assert_eq!(panels[0], panels[1], "same pool, same seed, same panel");
}

// ------------------------------------------------------------------ the lifecycle

async fn experts_score_one_recuses_and_is_replaced_and_the_guard_decides(backend: Backend) {
    let w = world(backend, 2, 5, |_| None).await;
    let inst = w.in_review(0, "申报单位00号知识产权中心专利导航项目").await;
    let drawn = w
        .reviews
        .auto_assign(&w.manager, inst.id, Some(7))
        .await
        .unwrap();
    assert_eq!(drawn.assignments.len(), 3);
    let mine = |a: &grantflow_store::review::AssignmentRecord| w.expert(a.expert_id).clone();

    // Not yet declared: no application, no scores.
    let first = &drawn.assignments[0];
    let e1 = mine(first);
    let form = w.reviews.review_form(&e1, first.id).await.unwrap();
    assert!(form.application.is_none());
    assert_eq!(
        form.application_hidden.unwrap().code(),
        "NO_CONFLICT_NOT_DECLARED"
    );
    assert!(
        !form.title.contains("申报单位00号"),
        "blind round: {}",
        form.title
    );
    let refused = w
        .reviews
        .submit_scores(&e1, first.id, flat(80.0), None)
        .await
        .unwrap_err();
    assert_eq!(code(&refused), "NO_CONFLICT_NOT_DECLARED");
    // Someone else's assignment does not exist for them.
    let e2 = mine(&drawn.assignments[1]);
    let hidden = w.reviews.review_form(&e2, first.id).await.unwrap_err();
    assert!(matches!(
        hidden,
        ReviewServiceError::Service(grantflow_service::ServiceError::NotFound(_))
    ));

    // The third expert declares a conflict and is replaced at once.
    let third = &drawn.assignments[2];
    let e3 = mine(third);
    let left = w
        .reviews
        .declare_conflict(&e3, third.id, "曾在申报单位兼职")
        .await
        .unwrap();
    assert_eq!(left.assignment.state, "replaced");
    let replacement = left.replacement.expect("a replacement");
    assert_ne!(replacement.expert_id, e3.id);
    assert_eq!(replacement.replaces, Some(third.id));
    assert!(replacement.seed.is_some());
    assert!(!w.store().is_assigned_expert(inst.id, e3.id).await.unwrap());

    // Everyone left scores.
    let panel = [first.clone(), drawn.assignments[1].clone(), replacement];
    for (a, total) in panel.iter().zip([80.0, 70.0, 75.0]) {
        let expert = mine(a);
        w.reviews.declare_no_conflict(&expert, a.id).await.unwrap();
        assert!(
            w.store()
                .is_assigned_expert(inst.id, expert.id)
                .await
                .unwrap()
        );
        let form = w.reviews.review_form(&expert, a.id).await.unwrap();
        let app = form.application.expect("shown after no conflict");
        assert!(!app.to_string().contains("申报单位00号"), "{app}");
        assert!(
            form.peer_scores.is_none(),
            "no peer scores before one's own"
        );
        let submitted = w
            .reviews
            .submit_scores(&expert, a.id, flat(total), None)
            .await
            .unwrap();
        assert_eq!(submitted.total, total);
        assert!(!submitted.needs_justification);
    }
    let form = w.reviews.review_form(&e1, first.id).await.unwrap();
    assert_eq!(form.peer_scores.unwrap().len(), 2);
    let review = w.store().get_instance(inst.id).await.unwrap().review;
    assert_eq!(review["count"], 3);
    assert_eq!(review["total"], 75.0);
    assert_eq!(review["passed"], true);

    // The guard reads the stored result.
    let inst = w.store().get_instance(inst.id).await.unwrap();
    let moved = w
        .fire(&w.manager, &inst, "conclude_review", json!({}))
        .await;
    assert_eq!(moved.state, "decision");
    // The round is closed now.
    let late = w
        .reviews
        .auto_assign(&w.manager, inst.id, Some(1))
        .await
        .unwrap_err();
    assert_eq!(code(&late), "REVIEW_ROUND_NOT_OPEN");
    let summary = w
        .reviews
        .round_summary(&w.manager, inst.id, None, None)
        .await
        .unwrap();
    assert!(!summary.open);
    assert_eq!(summary.evaluation.full.count, 3);
}

async fn scores_are_checked_per_criterion(backend: Backend) {
    let w = world(backend, 1, 3, |_| None).await;
    let inst = w.in_review(0, "项目").await;
    let a = w
        .reviews
        .auto_assign(&w.manager, inst.id, Some(3))
        .await
        .unwrap()
        .assignments
        .remove(0);
    let e = w.expert(a.expert_id).clone();
    w.reviews.declare_no_conflict(&e, a.id).await.unwrap();
    let sheet = ScoreSheet::new()
        .with("necessity", CriterionScore::new(101.0))
        .with("feasibility", CriterionScore::new(50.0))
        .with("performance_targets", CriterionScore::new(70.5))
        .with("novelty", CriterionScore::new(70.0));
    let err = w
        .reviews
        .submit_scores(&e, a.id, sheet, None)
        .await
        .unwrap_err();
    let ReviewServiceError::Review(ReviewError::InvalidScores { errors }) = err else {
        panic!("expected invalid scores, got {err:?}");
    };
    let found: Vec<(&str, &str)> = errors
        .iter()
        .map(|e| (e.criterion_id.as_str(), e.code()))
        .collect();
    assert_eq!(
        found,
        vec![
            ("necessity", "SCORE_OUT_OF_RANGE"),
            ("feasibility", "SCORE_COMMENT_REQUIRED_BELOW"),
            ("performance_targets", "SCORE_OFF_STEP"),
            ("budget", "SCORE_MISSING"),
            ("novelty", "SCORE_UNKNOWN_CRITERION"),
        ]
    );
    assert!(
        w.store()
            .assignment(a.id)
            .await
            .unwrap()
            .submissions
            .is_empty()
    );
}

async fn an_outlier_counts_only_once_justified_and_reopening_keeps_both_versions(backend: Backend) {
    let w = world(backend, 1, 3, |_| None).await;
    let inst = w.in_review(0, "项目").await;
    let panel = w
        .reviews
        .auto_assign(&w.manager, inst.id, Some(5))
        .await
        .unwrap()
        .assignments;
    let experts: Vec<User> = panel
        .iter()
        .map(|a| w.expert(a.expert_id).clone())
        .collect();
    for (a, e) in panel.iter().zip(&experts) {
        w.reviews.declare_no_conflict(e, a.id).await.unwrap();
    }
    w.reviews
        .submit_scores(&experts[0], panel[0].id, flat(80.0), None)
        .await
        .unwrap();
    w.reviews
        .submit_scores(&experts[1], panel[1].id, flat(82.0), None)
        .await
        .unwrap();
    // 40 is 40 points from the median 80 (threshold 20): an outlier.
    let low = w
        .reviews
        .submit_scores(&experts[2], panel[2].id, flat(40.0), None)
        .await
        .unwrap();
    assert!(low.needs_justification);
    let review = w.store().get_instance(inst.id).await.unwrap().review;
    assert_eq!(
        review["count"], 2,
        "the outlier does not count yet: {review}"
    );
    assert_eq!(review["total"], 81.0);
    let inst_now = w.store().get_instance(inst.id).await.unwrap();
    let blocked = w
        .services
        .fire(
            &w.manager,
            FireEvent {
                instance_id: inst.id,
                event: "conclude_review".into(),
                expected_version: inst_now.version,
                idempotency_key: None,
                input: json!({}),
                reason: None,
            },
        )
        .await;
    let blocked = blocked.expect_err("the guard waits for the justification");
    assert_eq!(
        grantflow_domain::UserFacing::code(&blocked),
        "GUARD_FAILED",
        "{blocked:?}"
    );
    // Only the outlier may justify; a blank text is refused.
    let not_outlier = w
        .reviews
        .justify(&experts[0], panel[0].id, "理由")
        .await
        .unwrap_err();
    assert_eq!(code(&not_outlier), "NOT_AN_OUTLIER");
    let blank = w
        .reviews
        .justify(&experts[2], panel[2].id, "  ")
        .await
        .unwrap_err();
    assert_eq!(code(&blank), "JUSTIFICATION_REQUIRED");
    w.reviews
        .justify(&experts[2], panel[2].id, "实施方案缺少可行的进度安排")
        .await
        .unwrap();
    let review = w.store().get_instance(inst.id).await.unwrap().review;
    assert_eq!(review["count"], 3);
    assert_eq!(review["total"], 67.333333);

    // A manager reopens the low card with a reason; the expert resubmits.
    let expert_reopen = w
        .reviews
        .reopen(&experts[0], panel[2].id, "x")
        .await
        .unwrap_err();
    assert!(matches!(
        expert_reopen,
        ReviewServiceError::Service(grantflow_service::ServiceError::Forbidden)
    ));
    let blank = w
        .reviews
        .reopen(&w.manager, panel[2].id, " ")
        .await
        .unwrap_err();
    assert_eq!(code(&blank), "REASON_REQUIRED");
    let reopened = w
        .reviews
        .reopen(&w.manager, panel[2].id, "评分与评语不一致")
        .await
        .unwrap();
    assert_eq!(reopened.state, "reopened");
    assert_eq!(
        w.store().get_instance(inst.id).await.unwrap().review["count"],
        2
    );
    let again = w
        .reviews
        .submit_scores(&experts[2], panel[2].id, flat(78.0), None)
        .await
        .unwrap();
    assert!(!again.needs_justification);
    let a = again.assignment;
    assert_eq!(
        a.submissions
            .iter()
            .map(|s| (s.version, s.total))
            .collect::<Vec<_>>(),
        vec![(1, 40.0), (2, 78.0)]
    );
    assert_eq!(
        a.submissions[0].reopen_reason.as_deref(),
        Some("评分与评语不一致")
    );
    let life = lifecycle(&a).unwrap();
    assert_eq!(life.versions().len(), 2);
    assert_eq!(life.final_version().unwrap().version, 2);
    let review = w.store().get_instance(inst.id).await.unwrap().review;
    assert_eq!(
        (review["count"].clone(), review["total"].clone()),
        (json!(3), json!(80.0))
    );
    // A sealed card cannot be resubmitted without reopening.
    let sealed = w
        .reviews
        .submit_scores(&experts[2], panel[2].id, flat(90.0), None)
        .await
        .unwrap_err();
    assert_eq!(code(&sealed), "ASSIGNMENT_INVALID_TRANSITION");
}

async fn manual_assignment_refuses_conflicts_with_typed_reasons(backend: Backend) {
    // Expert 0 works for unit 0; expert 1 collaborated with unit 0 last year; expert 2's
    // organisation is excluded by the applicant.
    let w = world(backend, 2, 6, |k| if k == 0 { Some(0) } else { None }).await;
    w.reviews
        .record_collaboration(
            &w.manager,
            w.experts[1].id,
            w.units[0].0.id,
            "2023-12-31".parse().unwrap(),
            Some("联合课题".into()),
        )
        .await
        .unwrap();
    let inst = w.application(0, "项目", json!({})).await;
    let too_many: Vec<Uuid> = w.experts[2..6].iter().map(|e| e.org_id.unwrap()).collect();
    let err = w
        .reviews
        .request_exclusions(&w.units[0].1, inst.id, too_many)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "EXCLUDED_ORGS_TOO_MANY");
    let other_unit = w
        .reviews
        .request_exclusions(&w.units[1].1, inst.id, vec![])
        .await
        .unwrap_err();
    assert!(
        matches!(other_unit, ReviewServiceError::Service(_)),
        "{other_unit:?}"
    );
    w.reviews
        .request_exclusions(&w.units[0].1, inst.id, vec![w.experts[2].org_id.unwrap()])
        .await
        .unwrap();
    let inst = w.to_review(0, inst).await;
    let late = w
        .reviews
        .request_exclusions(&w.units[0].1, inst.id, vec![])
        .await
        .unwrap_err();
    assert_eq!(code(&late), "REVIEW_STARTED");
    let ids: Vec<Uuid> = w.experts[0..4].iter().map(|e| e.id).collect();
    let err = w
        .reviews
        .assign(&w.manager, inst.id, ids)
        .await
        .unwrap_err();
    let ReviewServiceError::Review(ReviewError::AssignmentRefused { refusals }) = err else {
        panic!("expected refusals, got {err:?}");
    };
    let summary: Vec<(String, Vec<&str>)> = refusals
        .iter()
        .map(|r| {
            (
                r.expert_id.clone(),
                r.reasons
                    .iter()
                    .map(grantflow_review::assignment::RefusalReason::code)
                    .collect(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            (w.experts[0].id.to_string(), vec!["EXPERT_CONFLICT"]),
            (w.experts[1].id.to_string(), vec!["EXPERT_CONFLICT"]),
            (w.experts[2].id.to_string(), vec!["EXPERT_CONFLICT"]),
        ]
    );
    assert!(
        w.store()
            .instance_assignments(inst.id)
            .await
            .unwrap()
            .is_empty(),
        "all or nothing"
    );
    let ok = w
        .reviews
        .assign(&w.manager, inst.id, vec![w.experts[3].id])
        .await
        .unwrap();
    assert_eq!(ok.len(), 1);
    assert!(ok[0].seed.is_none());
    // Non-managers cannot assign.
    let err = w
        .reviews
        .assign(&w.experts[4], inst.id, vec![w.experts[4].id])
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        ReviewServiceError::Service(grantflow_service::ServiceError::Forbidden)
    ));
    // The draw fills the two open seats from the remaining eligible experts only.
    let drawn = w
        .reviews
        .auto_assign(&w.manager, inst.id, Some(11))
        .await
        .unwrap();
    let names: Vec<Uuid> = drawn.assignments.iter().map(|a| a.expert_id).collect();
    assert_eq!(names.len(), 2);
    assert!(
        names
            .iter()
            .all(|id| *id == w.experts[4].id || *id == w.experts[5].id)
    );
    let _ = &w.city;
}

async fn overdue_experts_are_reassigned_by_a_manager_and_decliners_replaced(backend: Backend) {
    let w = world(backend, 1, 6, |_| None).await;
    let inst = w.in_review(0, "项目").await;
    let panel = w
        .reviews
        .auto_assign(&w.manager, inst.id, Some(9))
        .await
        .unwrap()
        .assignments;
    let due = panel[0]
        .due_at
        .expect("a due date from the round's deadline");
    assert!(
        due > start_time() + Duration::days(10),
        "10 working days: {due}"
    );
    let timers = w.store().timers_for_instance(inst.id).await.unwrap();
    let mine: Vec<_> = timers
        .iter()
        .filter(|t| t.key.starts_with(&format!("review:{}:", panel[0].id)))
        .collect();
    assert!(
        mine.iter().any(|t| t.kind.as_str() == "reminder"),
        "{mine:?}"
    );
    assert!(mine.iter().any(|t| t.kind.as_str() == "overdue"));
    assert!(
        mine.iter()
            .all(|t| t.notify == vec![format!("expert:{}", panel[0].expert_id)])
    );

    let early = w
        .reviews
        .reassign(&w.manager, panel[0].id, "逾期未评")
        .await
        .unwrap_err();
    assert_eq!(code(&early), "ASSIGNMENT_NOT_OVERDUE");
    w.clock.set(due + Duration::hours(1));
    let blank = w
        .reviews
        .reassign(&w.manager, panel[0].id, "")
        .await
        .unwrap_err();
    assert_eq!(code(&blank), "REASON_REQUIRED");
    let moved = w
        .reviews
        .reassign(&w.manager, panel[0].id, "逾期未评")
        .await
        .unwrap();
    assert_eq!(moved.assignment.state, "replaced");
    let actions: Vec<&str> = moved
        .assignment
        .events
        .iter()
        .map(|e| e.action.as_str())
        .collect();
    assert_eq!(actions, vec!["mark_overdue", "replace"]);
    assert!(
        moved
            .assignment
            .events
            .iter()
            .all(|e| e.reason.as_deref() == Some("逾期未评"))
    );
    let newcomer = moved.replacement.unwrap();
    assert!(newcomer.due_at.unwrap() > due, "a fresh deadline");
    let timers = w.store().timers_for_instance(inst.id).await.unwrap();
    assert!(
        timers
            .iter()
            .filter(|t| t.key.starts_with(&format!("review:{}:", panel[0].id)))
            .all(|t| t.status == grantflow_store::TimerStatus::Cancelled
                || t.status == grantflow_store::TimerStatus::Done),
        "the replaced expert's reminders stop"
    );
    // A decline is replaced too.
    let e = w.expert(panel[1].expert_id).clone();
    let left = w
        .reviews
        .decline(&e, panel[1].id, Some("出差"))
        .await
        .unwrap();
    assert_eq!(left.assignment.events[0].reason.as_deref(), Some("出差"));
    assert!(left.replacement.is_some());
    let round = w
        .reviews
        .round_summary(&w.manager, inst.id, None, None)
        .await
        .unwrap();
    let seated = round
        .assignments
        .iter()
        .filter(|a| assignment_state::counts_toward_load(&a.state))
        .count();
    assert_eq!(seated, 3, "the panel stays full");
}

async fn ranking_orders_a_call_with_its_tie_breaks_and_exports_xlsx(backend: Backend) {
    let w = world(backend, 3, 5, |_| None).await;
    let mut instances = Vec::new();
    for (u, totals) in [[70.0, 80.0, 90.0], [75.0, 80.0, 85.0], [60.0, 60.0, 60.0]]
        .into_iter()
        .enumerate()
    {
        let inst = w.in_review(u, &format!("项目{u}")).await;
        let panel = w
            .reviews
            .auto_assign(&w.manager, inst.id, Some(u as u64))
            .await
            .unwrap()
            .assignments;
        for (a, t) in panel.iter().zip(totals) {
            let e = w.expert(a.expert_id).clone();
            w.reviews.declare_no_conflict(&e, a.id).await.unwrap();
            w.reviews
                .submit_scores(&e, a.id, flat(t), None)
                .await
                .unwrap();
        }
        instances.push(inst);
    }
    let unscored = w.in_review(0, "未评项目").await;
    let ranking = w
        .reviews
        .ranking(&w.manager, &w.call.to_string(), None)
        .await
        .unwrap();
    let order: Vec<(u32, String)> = ranking
        .rows
        .iter()
        .map(|r| (r.ranked.rank, r.instance.title.clone()))
        .collect();
    // 项目0 and 项目1 both average 80; 项目1's lowest total (75) beats 项目0's (70).
    assert_eq!(
        order,
        vec![
            (1, "项目1".into()),
            (2, "项目0".into()),
            (3, "项目2".into()),
            (4, "未评项目".into())
        ]
    );
    assert_eq!(ranking.rows[3].instance.id, unscored.id);
    let xlsx = w
        .reviews
        .ranking_xlsx(&w.manager, "2024-call", None)
        .await
        .unwrap();
    assert_eq!(&xlsx[..2], b"PK", "an XLSX (zip) workbook");
    let err = w
        .reviews
        .ranking(&w.experts[0], "2024-call", None)
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        ReviewServiceError::Service(grantflow_service::ServiceError::Forbidden)
    ));
}

async fn pool_management_checks_its_input(backend: Backend) {
    let w = world(backend, 1, 2, |_| None).await;
    let pool = w.reviews.expert_pool(&w.manager).await.unwrap();
    assert_eq!(pool.len(), 2);
    assert!(
        pool.iter()
            .all(|p| p.load == 0 && p.profile.status == "active")
    );
    let bad = ProfileUpdate {
        user_id: w.experts[0].id,
        categories: vec![9],
        keywords: vec![],
        workload_cap: 3,
        status: "active".into(),
    };
    let err = w
        .reviews
        .upsert_expert_profile(&w.manager, bad.clone())
        .await
        .unwrap_err();
    assert_eq!(code(&err), "CATEGORY_UNKNOWN");
    let err = w
        .reviews
        .upsert_expert_profile(
            &w.manager,
            ProfileUpdate {
                categories: vec![1],
                status: "asleep".into(),
                ..bad.clone()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(code(&err), "INVALID_VALUE");
    let err = w
        .reviews
        .upsert_expert_profile(
            &w.manager,
            ProfileUpdate {
                user_id: w.units[0].1.id,
                categories: vec![1],
                ..bad.clone()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(code(&err), "EXPERT_NOT_IN_POOL");
    let err = w.reviews.expert_pool(&w.experts[0]).await.unwrap_err();
    assert!(matches!(
        err,
        ReviewServiceError::Service(grantflow_service::ServiceError::Forbidden)
    ));
    // A suspended expert is never drawn.
    w.reviews
        .upsert_expert_profile(
            &w.manager,
            ProfileUpdate {
                categories: vec![3],
                status: "suspended".into(),
                ..bad
            },
        )
        .await
        .unwrap();
    let w2 = &w;
    let inst = w2.in_review(0, "项目").await;
    let drawn = w
        .reviews
        .auto_assign(&w.manager, inst.id, Some(1))
        .await
        .unwrap();
    assert!(
        drawn
            .assignments
            .iter()
            .all(|a| a.expert_id != w.experts[0].id)
    );
    assert_eq!(drawn.shortfall.unwrap().drawn, 1);
}

grantflow_testkit::on_both_backends!(
    automatic_assignment_keeps_loads_within_one,
    a_draw_is_reproducible_from_its_recorded_seed,
    experts_score_one_recuses_and_is_replaced_and_the_guard_decides,
    scores_are_checked_per_criterion,
    an_outlier_counts_only_once_justified_and_reopening_keeps_both_versions,
    manual_assignment_refuses_conflicts_with_typed_reasons,
    overdue_experts_are_reassigned_by_a_manager_and_decliners_replaced,
    ranking_orders_a_call_with_its_tie_breaks_and_exports_xlsx,
    pool_management_checks_its_input,
);
