//! Issue 12, on SQLite and PostgreSQL: every one of the 77 items of the 2022 catalogue is
//! applied for by an organisation of an eligible kind and taken through the path its part
//! prescribes, to its approval (保留省级, 下放地市审批 by a city bureau for itself), the city
//! bureau's approval (下放地市审批 by a unit in the city), the direct allocation
//! (支持专利代办处及省知识产权保护中心) or the payment (后补助); the history says who acted at
//! each step. Every kind an item does not admit is refused (`NOT_ELIGIBLE`, naming the
//! item), and the routing is explained by `available_events`.

use grantflow_domain::Money;
use grantflow_domain::engine::available_events;
use grantflow_review::scoring::{CriterionScore, ScoreSheet};
use grantflow_service::programme::OpenCall;
use grantflow_service::review::ProfileUpdate;
use grantflow_service::{CreateInstance, FireEvent, ServiceError, Services};
use grantflow_store::{Instance, OrgKind, Role, User};
use grantflow_testkit::{Backend, ServiceWorld};
use serde_json::{Value, json};
use uuid::Uuid;

use grantflow_testkit::CATALOGUE_2022;

struct World {
    base: ServiceWorld,
    manager: User,
    /// 广州市局: reviews its units' applications and applies for itself.
    city: User,
    /// One applicant account per kind of organisation.
    applicants: Vec<(OrgKind, User)>,
    experts: Vec<User>,
    call: Uuid,
}
grantflow_testkit::extends!(World, base: ServiceWorld);

async fn world(backend: Backend) -> World {
    // The clock starts on Monday 3 June 2024, 10:00 in Guangzhou.
    let base = ServiceWorld::new(backend).await;
    let province = base
        .org("广东省市场监督管理局", OrgKind::Province, None)
        .await;
    let gz = base
        .org("广州市市场监督管理局", OrgKind::City, Some(&province))
        .await;
    let unit = base
        .org("广州知识产权服务中心", OrgKind::Unit, Some(&gz))
        .await;
    let provincial = base
        .org(
            "广东省知识产权保护协会",
            OrgKind::Provincial,
            Some(&province),
        )
        .await;
    let centre = base
        .org(
            "广东省知识产权保护中心",
            OrgKind::ProtectionCentre,
            Some(&province),
        )
        .await;
    let third = base
        .org(
            "广东知识产权绩效评价研究院",
            OrgKind::ThirdParty,
            Some(&province),
        )
        .await;
    let institute = base.org("华南理工大学", OrgKind::Unit, Some(&gz)).await;
    let user = |name, org, roles: &'static [Role]| base.user(name, Some(org), roles);
    let manager = user("manager", &province, &[Role::Manager]).await;
    let city = user("city_gz", &gz, &[Role::City, Role::Applicant]).await;
    let applicants = vec![
        (
            OrgKind::Provincial,
            user("provincial", &provincial, &[Role::Applicant]).await,
        ),
        (
            OrgKind::ProtectionCentre,
            user("centre", &centre, &[Role::Applicant]).await,
        ),
        (OrgKind::City, city.clone()),
        (
            OrgKind::Unit,
            user("unit_gz", &unit, &[Role::Applicant]).await,
        ),
        (
            OrgKind::ThirdParty,
            user("third", &third, &[Role::Applicant]).await,
        ),
    ];
    let mut experts = Vec::new();
    for k in 1..=3 {
        let e = base
            .user(&format!("expert{k}"), Some(&institute), &[Role::Expert])
            .await;
        base.services
            .reviews()
            .upsert_expert_profile(
                &manager,
                ProfileUpdate {
                    user_id: e.id,
                    categories: vec![1, 2, 3, 4, 5],
                    keywords: vec![],
                    workload_cap: 20,
                    status: "active".into(),
                },
            )
            .await
            .unwrap();
        experts.push(e);
    }
    let call = base
        .open_call(
            &manager,
            OpenCall {
                title: Some("2024年度广东省知识产权工作项目（按2022年目录）".into()),
                ..grantflow_testkit::call_of(CATALOGUE_2022)
            },
        )
        .await;
    World {
        base,
        manager,
        city,
        applicants,
        experts,
        call,
    }
}

fn file(name: &str) -> Value {
    json!({ "name": name, "sha256": "ab".repeat(32), "size": 2048 })
}

fn application() -> Value {
    json!({
        "project_name": "知识产权工作项目",
        "budget": "300000",
        "indicators": [
            { "name": "服务企业数", "category": "output_quantity", "target": 50 },
            { "name": "带动就业", "category": "effect_social", "target": 30 },
            { "name": "企业满意度", "category": "satisfaction", "target": 90 }
        ],
        "application_files": [file("申报书.pdf")],
    })
}

impl World {
    fn applicant(&self, kind: OrgKind) -> &User {
        &self.applicants.iter().find(|(k, _)| *k == kind).unwrap().1
    }

    async fn create(&self, who: &User, item: &str) -> Result<Instance, ServiceError> {
        self.services
            .create_instance(
                who,
                CreateInstance {
                    workflow_id: "funded-project".into(),
                    org_id: None,
                    parent_id: None,
                    title: format!("{item} 申报"),
                    data: json!({}),
                    call_id: Some(self.call),
                    catalogue_item: Some(item.into()),
                },
            )
            .await
    }

    async fn fire(&self, who: &User, id: Uuid, event: &str, input: Value) -> Instance {
        self.fire_with(who, id, event, input, Some("按流程办理"))
            .await
            .unwrap_or_else(|e| panic!("{id} `{event}`: {e:?}"))
    }

    /// One line of 300 000 yuan, or of the whole approved funding when that is less (lines
    /// may total at most what was approved).
    async fn budget_line(&self, id: Uuid) {
        let data = self.services.store.get_instance(id).await.unwrap().data;
        let approved = match &data["approved_budget"] {
            serde_json::Value::String(a) => a.parse::<f64>().ok(),
            v => v.as_f64(),
        }
        .map_or(300_000, |yuan| yuan as i64);
        self.services
            .add_budget_line(
                &self.manager,
                id,
                2024,
                "项目经费",
                Money::from_yuan(approved.min(300_000)).unwrap(),
                "省级财政",
            )
            .await
            .unwrap();
    }

    /// Three experts score the open round 80 each.
    async fn expert_review(&self, id: Uuid) {
        let reviews = self.services.reviews();
        let seats = reviews
            .assign(
                &self.manager,
                id,
                self.experts.iter().map(|e| e.id).collect(),
            )
            .await
            .unwrap();
        for seat in seats {
            let expert = self
                .experts
                .iter()
                .find(|e| e.id == seat.expert_id)
                .unwrap();
            reviews.declare_no_conflict(expert, seat.id).await.unwrap();
            let sheet = ScoreSheet::new()
                .with("necessity", CriterionScore::new(80.0))
                .with("feasibility", CriterionScore::new(80.0))
                .with("performance_targets", CriterionScore::new(80.0))
                .with("budget", CriterionScore::new(80.0));
            reviews
                .submit_scores(expert, seat.id, sheet, None)
                .await
                .unwrap();
        }
    }
}

/// The kind of applicant tried on an item: its eligible kinds, rotated by the item's
/// position within its part so that every kind meets every part it may apply for.
fn pick(eligible: &[String], position: usize) -> OrgKind {
    let kinds: Vec<OrgKind> = eligible.iter().filter_map(|k| OrgKind::parse(k)).collect();
    kinds[position % kinds.len()]
}

async fn every_item_follows_its_part(backend: Backend) {
    let w = world(backend).await;
    let call = w.services.store.get_call(w.call).await.unwrap();
    let items: Vec<_> = call.items().map(|(_, _, i)| i.clone()).collect();
    assert_eq!(items.len(), 77);
    let mut seen = std::collections::BTreeSet::new();
    let mut per_part = std::collections::BTreeMap::<String, usize>::new();
    for item in &items {
        let position = per_part.entry(item.part.clone()).or_default();
        let kind = pick(&item.eligible, *position);
        *position += 1;
        seen.insert((item.part.clone(), kind.as_str()));
        let who = w.applicant(kind);
        let inst = w.create(who, &item.item_id).await.unwrap();
        assert_eq!(inst.data["part"], item.part.as_str());
        assert_eq!(inst.data["applicant_kind"], kind.as_str());
        assert_eq!(inst.data["closing_date"], "2024-06-28");
        let id = inst.id;
        let mut expected: Vec<(&str, Uuid)> = Vec::new();
        let mut step = |event: &'static str, by: &User| expected.push((event, by.id));
        let evidence = json!({ "results_evidence": [file("成果证明.pdf")] });
        let mut input = application();
        if item.part == "post_subsidy" {
            input
                .as_object_mut()
                .unwrap()
                .extend(evidence.as_object().unwrap().clone());
        }
        let final_state;
        if kind == OrgKind::Unit {
            // A unit in a city: through its city bureau.
            w.fire(who, id, "submit", input).await;
            step("submit", who);
            if item.part == "delegated_to_city" {
                let done = w
                    .fire(
                        &w.city,
                        id,
                        "city_approve",
                        json!({ "approved_budget": "250000", "targets_approved": true }),
                    )
                    .await;
                step("city_approve", &w.city);
                assert_eq!(done.state, "task_book", "{}", item.item_id);
                final_state = done.state;
            } else {
                w.fire(
                    &w.city,
                    id,
                    "recommend",
                    json!({ "city_opinion": "同意推荐" }),
                )
                .await;
                step("recommend", &w.city);
                final_state = String::new();
            }
        } else {
            // Everyone else: straight to the province (a city bureau never recommends
            // its own application).
            let after = w.fire(who, id, "submit_to_province", input).await;
            step("submit_to_province", who);
            if item.part == "patent_office_and_protection_centre" {
                assert_eq!(after.state, "allocation");
                w.budget_line(id).await;
                let done = w
                    .fire(
                        &w.manager,
                        id,
                        "allocate",
                        json!({
                            "approved_budget": "300000", "targets_approved": true,
                            "task_book": file("任务书.pdf"), "milestones": "按季度推进",
                            "execution_end": "2025-06-30"
                        }),
                    )
                    .await;
                step("allocate", &w.manager);
                final_state = done.state;
            } else {
                assert_eq!(after.state, "formal_check", "{}", item.item_id);
                final_state = String::new();
            }
        }
        let final_state = if final_state.is_empty() {
            // The province's competitive path: formal check, expert review, decision.
            w.fire(&w.manager, id, "pass_formal_check", json!({})).await;
            step("pass_formal_check", &w.manager);
            w.expert_review(id).await;
            w.fire(&w.manager, id, "conclude_review", json!({})).await;
            step("conclude_review", &w.manager);
            w.budget_line(id).await;
            let approved = w
                .fire(
                    &w.manager,
                    id,
                    "approve",
                    json!({ "approved_budget": "280000", "targets_approved": true }),
                )
                .await;
            step("approve", &w.manager);
            if item.part == "post_subsidy" {
                w.fire(&w.manager, id, "publicity_ended", json!({})).await;
                step("publicity_ended", &w.manager);
                let paid = w
                    .fire(&w.manager, id, "pay", json!({ "paid_on": "2024-08-01" }))
                    .await;
                step("pay", &w.manager);
                paid.state
            } else {
                approved.state
            }
        } else {
            final_state
        };
        let want_state = match (item.part.as_str(), kind) {
            ("delegated_to_city", OrgKind::Unit) => "task_book",
            ("patent_office_and_protection_centre", _) => "execution",
            ("post_subsidy", _) => "subsidised",
            _ => "publicity",
        };
        assert_eq!(final_state, want_state, "{} by {kind:?}", item.item_id);
        let history: Vec<(String, String)> = w
            .services
            .store
            .history(id)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.event, r.actor_id))
            .collect();
        let expected: Vec<(String, String)> = expected
            .into_iter()
            .map(|(e, by)| (e.to_string(), by.to_string()))
            .collect();
        assert_eq!(history, expected, "{} by {kind:?}", item.item_id);
    }
    // Every kind of applicant met every part it may apply for.
    let want: Vec<(&str, &str)> = vec![
        ("delegated_to_city", "city"),
        ("delegated_to_city", "provincial"),
        ("delegated_to_city", "third_party"),
        ("delegated_to_city", "unit"),
        ("patent_office_and_protection_centre", "protection_centre"),
        ("post_subsidy", "provincial"),
        ("post_subsidy", "unit"),
        ("retained_provincial", "provincial"),
        ("retained_provincial", "third_party"),
        ("retained_provincial", "unit"),
    ];
    for pair in want {
        assert!(
            seen.contains(&(pair.0.to_string(), pair.1)),
            "{pair:?} not exercised: {seen:?}"
        );
    }
}

async fn ineligible_kinds_are_refused(backend: Backend) {
    let w = world(backend).await;
    let call = w.services.store.get_call(w.call).await.unwrap();
    let mut refused = 0;
    for (_, _, item) in call.items() {
        for (kind, who) in &w.applicants {
            if item.eligible.iter().any(|k| k == kind.as_str()) {
                continue;
            }
            match w.create(who, &item.item_id).await {
                Err(ServiceError::Refused(r)) => {
                    assert_eq!(r.reason.as_str(), "NOT_ELIGIBLE", "{}", item.item_id);
                    assert!(r.message_zh.contains(&item.name), "{}", r.message_zh);
                    assert!(r.message_zh.contains(kind.title().0), "{}", r.message_zh);
                    assert!(r.message_en.contains(&item.item_id), "{}", r.message_en);
                    refused += 1;
                }
                other => panic!("{} by {kind:?}: {other:?}", item.item_id),
            }
        }
    }
    // 各市局 items refuse provincial, centre and third party; provincial-only items the
    // other four; centre items the other four; and so on (counted from the file's rule).
    let expected: usize = call.items().map(|(_, _, i)| 5 - i.eligible.len()).sum();
    assert_eq!(refused, expected);
    assert!(refused > 150, "{refused}");
    // Unknown items and calls have their own codes; the call's fields are not input.
    let who = w.applicant(OrgKind::Unit);
    let code = |r: Result<Instance, ServiceError>| match r {
        Err(ServiceError::Refused(r)) => r.reason.as_str().to_string(),
        Err(ServiceError::Invalid(f)) => f[0].code.to_string(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        code(w.create(who, "2022-9-9-9").await),
        "UNKNOWN_CATALOGUE_ITEM"
    );
    let mut req = CreateInstance {
        workflow_id: "funded-project".into(),
        org_id: None,
        parent_id: None,
        title: "t".into(),
        data: json!({}),
        call_id: Some(Uuid::now_v7()),
        catalogue_item: Some("2022-2-1-5".into()),
    };
    assert_eq!(
        code(w.services.create_instance(who, req.clone()).await),
        "UNKNOWN_CALL"
    );
    req.call_id = Some(w.call);
    req.data = json!({ "closing_date": "2030-12-31" });
    assert_eq!(
        code(w.services.create_instance(who, req.clone()).await),
        "SET_BY_SERVICE"
    );
    req.data = json!({});
    req.call_id = None;
    assert_eq!(code(w.services.create_instance(who, req).await), "REQUIRED");
}

async fn routing_is_explained(backend: Backend) {
    let w = world(backend).await;
    let explain = |inst: &Instance, who: &User| {
        let wf = w.services.workflow_of(inst).unwrap();
        let actor = Services::actor_on(who, inst);
        available_events(&wf, &inst.snapshot(), &actor, w.services.now())
            .into_iter()
            .map(|o| {
                let why = o.unavailable.map(|e| e.message().zh_cn);
                (o.event, o.available, why.unwrap_or_default())
            })
            .collect::<Vec<_>>()
    };
    let find = |list: &[(String, bool, String)], e: &str| {
        list.iter().find(|(ev, _, _)| ev == e).cloned().unwrap()
    };
    // A unit in a city: `submit` (through the city), not straight to the province.
    let unit = w.applicant(OrgKind::Unit);
    let draft = w.create(unit, "2022-2-1-4").await.unwrap();
    let options = explain(&draft, unit);
    assert!(find(&options, "submit").1);
    let (_, ok, why) = find(&options, "submit_to_province");
    assert!(!ok);
    assert!(why.contains("地市内单位经地市局推荐"), "{why}");
    // A provincial organisation: the other way round.
    let prov = w.applicant(OrgKind::Provincial);
    let draft = w.create(prov, "2022-3-1-9").await.unwrap();
    let options = explain(&draft, prov);
    assert!(find(&options, "submit_to_province").1);
    let (_, ok, why) = find(&options, "submit");
    assert!(!ok && why.contains("仅限地市内单位"), "{why}");
    // The city bureau's own application: the city may not recommend it.
    let own = w.create(&w.city, "2022-2-1-4").await.unwrap();
    let own = w
        .fire(&w.city, own.id, "submit_to_province", application())
        .await;
    assert_eq!(own.state, "formal_check");
    // A unit's delegated item: the city approves it and may not recommend it.
    let delegated = w.create(unit, "2022-2-1-4").await.unwrap();
    let delegated = w.fire(unit, delegated.id, "submit", application()).await;
    let options = explain(&delegated, &w.city);
    let (_, ok, why) = find(&options, "recommend");
    assert!(!ok && why.contains("下放地市审批"), "{why}");
    assert!(find(&options, "city_approve").1);
    // A unit's retained item: recommended, not approved by the city.
    let retained = w.create(unit, "2022-2-1-5").await.unwrap();
    let retained = w.fire(unit, retained.id, "submit", application()).await;
    let options = explain(&retained, &w.city);
    assert!(find(&options, "recommend").1);
    let (_, ok, why) = find(&options, "city_approve");
    assert!(
        !ok && why.contains("仅下放地市审批的项目由地市局审批"),
        "{why}"
    );
}

async fn a_closed_call_takes_nothing_new(backend: Backend) {
    let w = world(backend).await;
    let unit = w.applicant(OrgKind::Unit);
    let draft = w.create(unit, "2022-2-1-5").await.unwrap();
    // Only a manager closes a call.
    assert!(matches!(
        w.services.close_call(unit, w.call).await,
        Err(ServiceError::Forbidden)
    ));
    w.services.close_call(&w.manager, w.call).await.unwrap();
    let reason = |r: Result<_, ServiceError>| match r {
        Err(ServiceError::Refused(r)) => r.reason.as_str().to_string(),
        other => panic!("{:?}", other.map(|_: ()| ())),
    };
    assert_eq!(
        reason(w.create(unit, "2022-2-1-5").await.map(|_| ())),
        "CALL_CLOSED"
    );
    let submitted = w
        .services
        .fire(
            unit,
            FireEvent {
                instance_id: draft.id,
                event: "submit".into(),
                expected_version: draft.version,
                idempotency_key: None,
                input: application(),
                reason: None,
            },
        )
        .await;
    assert_eq!(reason(submitted.map(|_| ())), "CALL_CLOSED");
    let still = w.services.store.get_instance(draft.id).await.unwrap();
    assert_eq!((still.state.as_str(), still.version), ("drafting", 0));
}

/// The province's audit (抽查审核) of a project, at `version`, with `finding`.
async fn audit(
    w: &World,
    who: &User,
    id: Uuid,
    version: i64,
    finding: &str,
) -> Result<Instance, ServiceError> {
    w.services
        .fire(
            who,
            FireEvent {
                instance_id: id,
                event: "province_audit".into(),
                expected_version: version,
                idempotency_key: None,
                input: json!({ "audit_finding": finding, "audit_opinion": "抽查立项材料" }),
                reason: None,
            },
        )
        .await
        .map(|a| a.instance)
}

/// 下放地市审批: the province audits what a city bureau approved, at any later stage and
/// as often as it likes; each audit is in the project's history, keeps its state and
/// deadline, and is the province's alone. A project the province approved itself is not
/// audited this way.
async fn the_province_audits_what_the_city_approved(backend: Backend) {
    let w = world(backend).await;
    let unit = w.applicant(OrgKind::Unit);
    let inst = w.create(unit, "2022-2-1-4").await.unwrap();
    w.fire(unit, inst.id, "submit", application()).await;
    let approved = w
        .fire(
            &w.city,
            inst.id,
            "city_approve",
            json!({ "approved_budget": "250000", "targets_approved": true, "city_approval_opinion": "同意立项" }),
        )
        .await;
    assert_eq!(approved.state, "task_book");
    assert_eq!(approved.data["approved_by_city"], true);
    // The province sees it and is offered the audit; the city and the applicant are not.
    assert!(
        grantflow_service::can_see(w.services.store.as_ref(), &w.manager, &approved)
            .await
            .unwrap()
    );
    let offered = |who: &User, inst: &Instance| {
        let wf = w.services.workflow_of(inst).unwrap();
        available_events(
            &wf,
            &inst.snapshot(),
            &Services::actor_on(who, inst),
            w.services.now(),
        )
        .into_iter()
        .any(|o| o.event == "province_audit" && o.available)
    };
    assert!(offered(&w.manager, &approved));
    assert!(!offered(&w.city, &approved));
    assert!(!offered(unit, &approved));
    // The city bureau may not audit its own approval: refused, nothing changes.
    let refused = audit(&w, &w.city, inst.id, approved.version, "conforms").await;
    assert!(
        matches!(
            refused,
            Err(ServiceError::Forbidden) | Err(ServiceError::Store(_))
        ),
        "{refused:?}"
    );
    let unchanged = w.services.store.get_instance(inst.id).await.unwrap();
    assert_eq!(unchanged.version, approved.version);
    // The province audits: the state and the deadline stay, the finding is recorded.
    let first = audit(&w, &w.manager, inst.id, approved.version, "conforms")
        .await
        .unwrap();
    assert_eq!(first.state, "task_book");
    assert_eq!(first.due_at, approved.due_at, "an audit moves no deadline");
    assert_eq!(first.data["audit_finding"], "conforms");
    assert_eq!(first.data["audited_on"], "2024-06-03");
    // Later, in execution, again: both audits are in the history, by the manager.
    w.fire(
        unit,
        inst.id,
        "submit_task_book",
        json!({
            "task_book": file("任务书.pdf"), "milestones": "年底验收", "execution_end": "2024-12-31",
            "tasks": [{ "focus": "知识产权保护", "task": "开展维权援助", "deliverable_form": "工作报告", "department": "项目组", "due": "2024-12-31" }], "report_schedule": "quarterly"
        }),
    )
    .await;
    w.budget_line(inst.id).await;
    let signed = w
        .fire(&w.manager, inst.id, "sign_task_book", json!({}))
        .await;
    assert_eq!(signed.state, "execution");
    let second = audit(&w, &w.manager, inst.id, signed.version, "issues_found")
        .await
        .unwrap();
    assert_eq!(second.state, "execution");
    assert_eq!(second.data["audit_finding"], "issues_found");
    let history = w.services.store.history(inst.id).await.unwrap();
    let audits: Vec<_> = history
        .iter()
        .filter(|r| r.event == "province_audit")
        .map(|r| {
            (
                r.from_state.as_str(),
                r.input["audit_finding"].as_str().unwrap(),
                r.actor_id.clone(),
            )
        })
        .collect();
    let manager = w.manager.id.to_string();
    assert_eq!(
        audits,
        [
            ("task_book", "conforms", manager.clone()),
            ("execution", "issues_found", manager),
        ]
    );
    grantflow_domain::audit::verify_chain(&history).unwrap();

    // A project the province approved (the city bureau's own, delegated item) carries no
    // city approval: the audit is refused by its guard.
    let own = w.create(&w.city, "2022-2-1-4").await.unwrap();
    let own = w
        .fire(&w.city, own.id, "submit_to_province", application())
        .await;
    assert_eq!(own.state, "formal_check");
    assert!(own.data.get("approved_by_city").is_none());
}

/// A directly allocated project (支持专利代办处及省知识产权保护中心: allocation → execution, no
/// task-book review) files its task rows and report schedule once in execution, gets the
/// progress-report checkpoint the scheduler reminds on, and then reports like any project
/// whose task book was signed.
async fn a_directly_allocated_project_files_its_task_rows(backend: Backend) {
    let w = world(backend).await;
    let call = w.services.store.get_call(w.call).await.unwrap();
    let item = call
        .items()
        .map(|(_, _, i)| i.clone())
        .find(|i| i.part == "patent_office_and_protection_centre")
        .unwrap();
    let who = w.applicant(pick(&item.eligible, 0));
    let id = w.create(who, &item.item_id).await.unwrap().id;
    w.fire(who, id, "submit_to_province", application()).await;
    w.budget_line(id).await;
    let allocated = w
        .fire(
            &w.manager,
            id,
            "allocate",
            json!({
                "approved_budget": "300000", "targets_approved": true,
                "task_book": file("任务书.pdf"), "milestones": "按季度推进",
                "execution_end": "2025-06-30"
            }),
        )
        .await;
    assert_eq!(allocated.state, "execution");
    assert!(allocated.data.get("tasks").is_none());
    let tasks = json!([
        {
            "focus": "专利代办服务", "task": "开展专利申请代办与咨询",
            "deliverable_form": "服务台账", "department": "代办处",
            "due": "2025-03-31", "indicators": ["服务企业数"]
        },
        {
            "focus": "满意度提升", "task": "开展服务满意度调查",
            "deliverable_form": "调查报告", "department": "代办处",
            "due": "2025-06-30", "indicators": ["企业满意度"]
        }
    ]);
    let filed = w
        .fire(
            who,
            id,
            "submit_tasks",
            json!({ "tasks": tasks, "report_schedule": "quarterly" }),
        )
        .await;
    assert_eq!(filed.state, "execution");
    assert_eq!(filed.data["tasks"][1]["no"], 2);
    assert_eq!(filed.data["report_schedule"], "quarterly");
    // 3 June 2024: the first quarterly report is due at the end of June.
    assert_eq!(filed.data["next_report_due"], "2024-06-30");
    let checkpoints = w
        .services
        .store
        .timers_for_instance(id)
        .await
        .unwrap()
        .into_iter()
        .filter(|t| t.key.starts_with("progress_report:"))
        .count();
    assert!(checkpoints > 0, "no progress-report reminders scheduled");
    // Once only.
    let again = w
        .services
        .fire(
            who,
            FireEvent {
                instance_id: id,
                event: "submit_tasks".into(),
                expected_version: filed.version,
                idempotency_key: None,
                input: json!({ "tasks": tasks, "report_schedule": "monthly" }),
                reason: None,
            },
        )
        .await;
    assert!(
        matches!(
            &again,
            Err(ServiceError::Store(_)) | Err(ServiceError::Refused(_))
        ),
        "{again:?}"
    );
    let unchanged = w.services.store.get_instance(id).await.unwrap();
    assert_eq!(unchanged.version, filed.version);
    assert_eq!(unchanged.data["report_schedule"], "quarterly");
    // Reported like any other project: the next report moves to the end of September.
    let reported = w
        .fire(
            who,
            id,
            "submit_progress_report",
            json!({ "progress": [
                { "task": 1, "status": "in_progress", "percent": 20 },
                { "task": 2, "status": "not_started", "percent": 0 }
            ] }),
        )
        .await;
    assert_eq!(reported.data["next_report_due"], "2024-09-30");
}

grantflow_testkit::on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    every_item_follows_its_part,
    the_province_audits_what_the_city_approved,
    ineligible_kinds_are_refused,
    routing_is_explained,
    a_closed_call_takes_nothing_new,
    a_directly_allocated_project_files_its_task_rows,
);
