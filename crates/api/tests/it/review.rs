//! Expert review over HTTP with a GraphQL client, on SQLite and PostgreSQL: blindness
//! (no peer score and no applicant identity before one's own submission), errors per
//! criterion, the trimmed mean of five experts against a hand computation, and a project
//! moved on by its guard after three experts scored — one of them replacing an expert who
//! declared a conflict.

use crate::support;

#[path = "review/blind_paths.rs"]
mod blind_paths;
mod draw_exclusions;
mod n_plus_one;

use chrono::Duration;
use grantflow_api::auth;
use grantflow_domain::calendar::WorkCalendar;
use grantflow_domain::engine::{Snapshot, initial_schedule};
use grantflow_store::{
    Instance, Lang, NewInstance, NewOrganisation, NewToken, NewUser, OrgKind, Role, User,
};
use serde_json::{Value, json};
use support::{Backend, TestApp, error_code, spawn_app};
use uuid::Uuid;

const UNIT: &str = "广州知识产权服务中心";
const CONTACT: &str = "欧阳明远";

const TRANSITION: &str = r#"
mutation($id: ID!, $event: String!, $v: Int!, $input: JSON) {
  transition(instanceId: $id, event: $event, expectedVersion: $v, input: $input) {
    instance { id version state { id } }
  }
}"#;

const MY_REVIEWS: &str =
    r#"{ myReviews { id instanceId title roundId state dueAt blind expert { username } seed } }"#;

const SUBMIT: &str = r#"
mutation($id: ID!, $scores: [ScoreInput!]!, $j: String) {
  submitScores(assignmentId: $id, scores: $scores, justification: $j) {
    total needsJustification assignment { id state versions { version total } }
  }
}"#;

const FORM: &str = r#"
query($id: ID!) {
  reviewForm(assignmentId: $id) {
    blind aggregation panelSize
    rubric { id weight min max step commentBelow }
    application applicationHiddenReason
    peerScores { peerNumber total scores { criterion score } }
    needsJustification
    assignment { id state title }
  }
}"#;

/// Scores on the application rubric (necessity 25 %, feasibility 25 %, targets 30 %,
/// budget 20 %, 0–100 by 1).
fn scores(necessity: u32, feasibility: u32, targets: u32, budget: u32) -> Value {
    json!([
        { "criterion": "necessity", "score": necessity },
        { "criterion": "feasibility", "score": feasibility },
        { "criterion": "performance_targets", "score": targets },
        { "criterion": "budget", "score": budget },
    ])
}

fn flat(v: u32) -> Value {
    scores(v, v, v, v)
}

fn file() -> Value {
    json!({ "name": "申报书.pdf", "sha256": "a".repeat(64), "size": 2048 })
}

struct Tokens {
    manager: String,
    applicant: String,
    city: String,
}

async fn tokens(app: &TestApp) -> Tokens {
    Tokens {
        manager: app.session_token("manager").await,
        applicant: app.session_token("applicant_a").await,
        city: app.session_token("city_gz").await,
    }
}

/// An extra expert in an organisation of their own, with an API token for review.
async fn extra_expert(app: &TestApp, name: &str, org: &str) -> (User, String) {
    let store = app.services.store.as_ref();
    let org = store
        .create_org(NewOrganisation {
            name: org.into(),
            kind: OrgKind::Unit,
            parent_id: Some(app.seed.guangzhou.id),
        })
        .await
        .unwrap();
    let user = store
        .create_user(NewUser {
            username: name.into(),
            display_name: format!("{name} 专家"),
            email: format!("{name}@example.gov.cn"),
            org_id: Some(org.id),
            roles: vec![Role::Expert],
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$x".into(),
            lang: Lang::ZhCn,
        })
        .await
        .unwrap();
    let token = mint(app, user.id, &["read", "review"]).await;
    (user, token)
}

async fn mint(app: &TestApp, user_id: Uuid, scopes: &[&str]) -> String {
    let (token, token_hash) = auth::new_token(auth::API_PREFIX);
    app.services
        .store
        .create_token(NewToken {
            user_id,
            token_hash,
            kind: "api".into(),
            name: Some("评审客户端".into()),
            scopes: scopes.iter().map(ToString::to_string).collect(),
            expires_at: Some(app.services.now() + Duration::days(90)),
        })
        .await
        .unwrap();
    token
}

/// The manager puts every named expert into the pool (category 3, cap 10).
async fn profiles(app: &TestApp, manager: &str, experts: &[Uuid]) {
    for id in experts {
        app.ok(
            Some(manager),
            r#"mutation($id: ID!) { upsertExpertProfile(input: { userId: $id, categories: [3], keywords: ["专利"], workloadCap: 10 }) { userId status workloadCap } }"#,
            json!({ "id": id.to_string() }),
        )
        .await;
    }
}

async fn fire(
    app: &TestApp,
    token: &str,
    id: &str,
    event: &str,
    version: i64,
    input: Value,
) -> Value {
    app.ok(
        Some(token),
        TRANSITION,
        json!({ "id": id, "event": event, "v": version, "input": input }),
    )
    .await["transition"]["instance"]
        .clone()
}

/// An application of unit A whose data names the unit and a contact person (as an
/// imported application would), moved to expert review over HTTP.
async fn application_in_review(app: &TestApp, t: &Tokens, title: &str) -> String {
    let wf = app
        .services
        .workflows
        .latest("funded-project")
        .expect("the workflow");
    let data = json!({
        "call_id": "2024-call",
        "closing_date": "2024-06-28",
        "forward_by": "2024-06-28",
        "applicant_kind": "unit",
        "part": "retained_provincial",
        "category": "3",
        "applicant_name": UNIT,
        "contact_name": CONTACT,
    });
    let snapshot = Snapshot::initial(&wf, data.clone());
    let (deadline, timers) =
        initial_schedule(&wf, &snapshot, app.services.now(), &WorkCalendar::builtin());
    let inst: Instance = app
        .services
        .store
        .create_instance(NewInstance {
            id: Uuid::now_v7(),
            workflow_id: "funded-project".into(),
            workflow_version: wf.def.version,
            state: "drafting".into(),
            stage: "application".into(),
            data,
            parent_id: None,
            org_id: app.seed.unit_a.id,
            title: title.into(),
            created_by: app.user("applicant_a").id,
            created_at: app.services.now(),
            due_at: deadline.map(|d| d.due_at),
            timers,
        })
        .await
        .unwrap();
    let id = inst.id.to_string();
    fire(app, &t.applicant, &id, "submit", 0, json!({
        "project_name": format!("{UNIT}专利导航能力提升"),
        "summary": format!("本项目由{UNIT}牵头，{CONTACT}担任项目负责人，面向中小企业开展专利导航。"),
        "budget": "300000",
        "indicators": [{ "category": "output_quantity", "name": "专利导航报告", "unit": "份", "target": 5, "direction": "higher_is_better", "weight": 1 }, { "name": "受益单位", "category": "effect_social", "unit": "家", "target": 20 }],
        "application_files": [file()],
    }))
    .await;
    fire(
        app,
        &t.city,
        &id,
        "recommend",
        1,
        json!({ "city_opinion": "同意推荐" }),
    )
    .await;
    let moved = fire(app, &t.manager, &id, "pass_formal_check", 2, json!({})).await;
    assert_eq!(moved["state"]["id"], "expert_review");
    id
}

async fn my_assignment(app: &TestApp, token: &str, instance: &str) -> String {
    let data = app.ok(Some(token), MY_REVIEWS, json!({})).await;
    data["myReviews"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["instanceId"] == instance)
        .unwrap_or_else(|| panic!("an assignment on {instance}: {data}"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn declare_and_score(app: &TestApp, token: &str, assignment: &str, sheet: Value) -> Value {
    let declared = app
        .ok(
            Some(token),
            "mutation($id: ID!) { declareNoConflict(assignmentId: $id) { state } }",
            json!({ "id": assignment }),
        )
        .await;
    assert_eq!(declared["declareNoConflict"]["state"], "accepted");
    app.ok(
        Some(token),
        SUBMIT,
        json!({ "id": assignment, "scores": sheet }),
    )
    .await["submitScores"]
        .clone()
}

// ------------------------------------------------------------------ blindness

#[tokio::test]
async fn blind_round_hides_peer_scores_and_the_applicant_on_sqlite() {
    blind_round(Backend::Sqlite).await;
}

#[tokio::test]
async fn blind_round_hides_peer_scores_and_the_applicant_on_postgres() {
    blind_round(Backend::Postgres).await;
}

async fn blind_round(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = tokens(&app).await;
    let experts: Vec<Uuid> = ["expert1", "expert2", "expert3"]
        .iter()
        .map(|u| app.user(u).id)
        .collect();
    profiles(&app, &t.manager, &experts).await;
    let id = application_in_review(&app, &t, &format!("{UNIT}专利导航项目")).await;
    let assigned = app
        .ok(
            Some(&t.manager),
            "mutation($id: ID!, $experts: [ID!]!) { assignReviewers(instanceId: $id, expertIds: $experts) { id state dueAt expert { username } } }",
            json!({ "id": id, "experts": experts.iter().map(Uuid::to_string).collect::<Vec<_>>() }),
        )
        .await;
    assert_eq!(assigned["assignReviewers"].as_array().unwrap().len(), 3);

    // Expert A scores: 0.25×91 + 0.25×77 + 0.3×83 + 0.2×85 = 83.9.
    let a = app.api_token("expert1", &["read", "review"]).await;
    let a_assignment = my_assignment(&app, &a, &id).await;
    let submitted = declare_and_score(&app, &a, &a_assignment, scores(91, 77, 83, 85)).await;
    assert_eq!(submitted["total"], 83.9);

    // Expert B, before declaring, sees neither the instance nor the application.
    let b = app.api_token("expert2", &["read", "review"]).await;
    let from = app.bodies.lock().unwrap().len();
    let hidden = app
        .gql(
            Some(&b),
            "query($id: ID!) { instance(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&hidden), "NOT_FOUND");
    let b_assignment = my_assignment(&app, &b, &id).await;
    let form = app.ok(Some(&b), FORM, json!({ "id": b_assignment })).await;
    assert_eq!(form["reviewForm"]["application"], Value::Null);
    assert_eq!(
        form["reviewForm"]["applicationHiddenReason"],
        "NO_CONFLICT_NOT_DECLARED"
    );
    assert_eq!(form["reviewForm"]["blind"], true);
    assert_eq!(form["reviewForm"]["rubric"].as_array().unwrap().len(), 4);

    // After declaring no conflict: the application, without who applied, and no scores.
    app.ok(
        Some(&b),
        "mutation($id: ID!) { declareNoConflict(assignmentId: $id) { state } }",
        json!({ "id": b_assignment }),
    )
    .await;
    let form = app.ok(Some(&b), FORM, json!({ "id": b_assignment })).await;
    let application = &form["reviewForm"]["application"];
    assert!(application.is_object(), "{form}");
    assert_eq!(application["data"]["applicant_name"], Value::Null);
    assert_eq!(application["data"]["contact_name"], Value::Null);
    assert!(
        application["data"]["summary"]
            .as_str()
            .unwrap()
            .contains("***"),
        "the unit's name is scrubbed from free text: {application}"
    );
    assert_eq!(form["reviewForm"]["peerScores"], Value::Null);
    let seen = app
        .ok(
            Some(&b),
            "query($id: ID!) { instance(id: $id) { title organisation { name } createdBy { username } data review history { actorId } } }",
            json!({ "id": id }),
        )
        .await;
    let instance = &seen["instance"];
    assert_eq!(instance["organisation"], Value::Null);
    assert_eq!(instance["createdBy"], Value::Null);
    assert_eq!(
        instance["review"],
        Value::Null,
        "no aggregate before one's own scores"
    );
    assert_eq!(instance["data"]["applicant_name"], Value::Null);
    assert_eq!(instance["history"], json!([]));
    let list = app
        .ok(
            Some(&b),
            "{ instances(first: 10) { edges { node { title organisation { name } data } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        list["instances"]["edges"][0]["node"]["organisation"],
        Value::Null
    );
    app.ok(Some(&b), MY_REVIEWS, json!({})).await;
    let raw = app.bodies.lock().unwrap()[from..].join("\n");
    for secret in [UNIT, CONTACT, "applicant_a", "83.9"] {
        assert!(
            !raw.contains(secret),
            "expert B's responses reveal `{secret}`: {raw}"
        );
    }

    // Once B has submitted, A's scores are there — numbered, not named.
    app.ok(
        Some(&b),
        SUBMIT,
        json!({ "id": b_assignment, "scores": flat(80) }),
    )
    .await;
    let form = app.ok(Some(&b), FORM, json!({ "id": b_assignment })).await;
    let peers = form["reviewForm"]["peerScores"].as_array().unwrap().clone();
    assert_eq!(peers.len(), 1);
    assert_eq!(peers[0]["total"], 83.9);
    assert_eq!(peers[0]["peerNumber"], 1);
    assert!(!form.to_string().contains("expert1"));

    // The manager sees everything.
    let seen = app
        .ok(
            Some(&t.manager),
            "query($id: ID!) { instance(id: $id) { organisation { name } data review } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(seen["instance"]["organisation"]["name"], UNIT);
    assert_eq!(seen["instance"]["data"]["applicant_name"], UNIT);
    assert_eq!(seen["instance"]["review"]["count"], 2);
}

// ------------------------------------------------------------------ errors and scopes

#[tokio::test]
async fn scores_are_refused_per_criterion_and_need_the_review_scope() {
    let app = spawn_app(Backend::Sqlite).await;
    let t = tokens(&app).await;
    let experts: Vec<Uuid> = ["expert1", "expert2", "expert3"]
        .iter()
        .map(|u| app.user(u).id)
        .collect();
    profiles(&app, &t.manager, &experts).await;
    let id = application_in_review(&app, &t, "专利导航项目").await;
    let drawn = app
        .ok(
            Some(&t.manager),
            "mutation($id: ID!) { autoAssign(instanceId: $id, seed: 20240603) { seed algorithm unfilledSeats assignments { id seed expert { username } } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(drawn["autoAssign"]["seed"], 20240603);
    assert_eq!(drawn["autoAssign"]["unfilledSeats"], 0);
    assert_eq!(drawn["autoAssign"]["assignments"][0]["seed"], 20240603);

    let read_only = app.api_token("expert1", &["read"]).await;
    let assignment = my_assignment(&app, &read_only, &id).await;
    let refused = app
        .gql(
            Some(&read_only),
            "mutation($id: ID!) { declareNoConflict(assignmentId: $id) { state } }",
            json!({ "id": assignment }),
        )
        .await;
    assert_eq!(error_code(&refused), "FORBIDDEN");

    let token = app.api_token("expert1", &["read", "review"]).await;
    let early = app
        .gql(
            Some(&token),
            SUBMIT,
            json!({ "id": assignment, "scores": flat(80) }),
        )
        .await;
    assert_eq!(error_code(&early), "INVALID_TRANSITION");
    assert_eq!(
        early["errors"][0]["extensions"]["details"]["reason"],
        "NO_CONFLICT_NOT_DECLARED"
    );
    app.ok(
        Some(&token),
        "mutation($id: ID!) { declareNoConflict(assignmentId: $id) { state } }",
        json!({ "id": assignment }),
    )
    .await;
    let bad = app
        .gql(
            Some(&token),
            SUBMIT,
            json!({ "id": assignment, "scores": [
                { "criterion": "necessity", "score": 120 },
                { "criterion": "feasibility", "score": 40 },
                { "criterion": "performance_targets", "score": 70.5 },
            ] }),
        )
        .await;
    assert_eq!(error_code(&bad), "INVALID_INPUT");
    let details = &bad["errors"][0]["extensions"]["details"];
    assert_eq!(details["reason"], "SCORES_INVALID");
    let fields: Vec<(String, String)> = details["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["field"].as_str().unwrap().into(),
                f["code"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        fields,
        vec![
            ("necessity".into(), "SCORE_OUT_OF_RANGE".into()),
            ("feasibility".into(), "SCORE_COMMENT_REQUIRED_BELOW".into()),
            ("performance_targets".into(), "SCORE_OFF_STEP".into()),
            ("budget".into(), "SCORE_MISSING".into()),
        ]
    );
    assert!(
        bad["errors"][0]["extensions"]["messageZh"]
            .as_str()
            .unwrap()
            .contains("评分")
    );

    // Someone else's assignment does not exist; managers' operations are refused to experts.
    let other = app.api_token("expert2", &["read", "review"]).await;
    let foreign = app
        .gql(Some(&other), FORM, json!({ "id": assignment }))
        .await;
    assert_eq!(error_code(&foreign), "NOT_FOUND");
    let pool = app
        .gql(Some(&other), "{ expertPool { userId } }", json!({}))
        .await;
    assert_eq!(error_code(&pool), "FORBIDDEN");
    // Manual assignment of an expert already on the panel is refused with the reason.
    let again = app
        .gql(
            Some(&t.manager),
            "mutation($id: ID!, $e: [ID!]!) { assignReviewers(instanceId: $id, expertIds: $e) { id } }",
            json!({ "id": id, "e": [app.user("expert1").id.to_string()] }),
        )
        .await;
    assert_eq!(error_code(&again), "INVALID_INPUT");
    assert_eq!(
        again["errors"][0]["extensions"]["details"]["reason"],
        "ASSIGNMENT_REFUSED"
    );
    assert_eq!(
        again["errors"][0]["extensions"]["details"]["fields"][0]["code"],
        "EXPERT_ALREADY_ON_PANEL"
    );
}

// ------------------------------------------------------------------ aggregation

#[tokio::test]
async fn review_round_reports_the_trimmed_mean_of_five_experts() {
    let app = spawn_app(Backend::Sqlite).await;
    let t = tokens(&app).await;
    let (e4, e4_token) = extra_expert(&app, "expert4", "中山大学").await;
    let (e5, e5_token) = extra_expert(&app, "expert5", "广东工业大学").await;
    let mut experts: Vec<Uuid> = ["expert1", "expert2", "expert3"]
        .iter()
        .map(|u| app.user(u).id)
        .collect();
    experts.extend([e4.id, e5.id]);
    profiles(&app, &t.manager, &experts).await;
    let id = application_in_review(&app, &t, "专利导航项目").await;
    app.ok(
        Some(&t.manager),
        "mutation($id: ID!, $e: [ID!]!) { assignReviewers(instanceId: $id, expertIds: $e) { id } }",
        json!({ "id": id, "e": experts.iter().map(Uuid::to_string).collect::<Vec<_>>() }),
    )
    .await;
    let mut tokens_by_expert = Vec::new();
    for name in ["expert1", "expert2", "expert3"] {
        tokens_by_expert.push(app.api_token(name, &["read", "review"]).await);
    }
    tokens_by_expert.push(e4_token);
    tokens_by_expert.push(e5_token);
    // Totals 60, 70, 75, 80, 95. By hand: the trimmed mean drops 60 and 95:
    // (70 + 75 + 80) / 3 = 75; the plain mean would be 380 / 5 = 76.
    // Necessity per expert: 60, 70, 75, 80, 95; median 75.
    for (token, total) in tokens_by_expert.iter().zip([60, 70, 75, 80, 95]) {
        let assignment = my_assignment(&app, token, &id).await;
        let submitted = declare_and_score(&app, token, &assignment, flat(total)).await;
        assert_eq!(submitted["total"], f64::from(total));
        assert_eq!(
            submitted["needsJustification"], false,
            "95 is 20 from 75: not beyond"
        );
    }
    let round = app
        .ok(
            Some(&t.manager),
            r#"query($id: ID!) { reviewRound(instanceId: $id) {
                roundId cycle open aggregation count submitted total passed pendingJustifications guard
                totals { count mean median sd min max }
                criteria { id value stats { count mean median min max } }
                expertTotals { expert { username } total }
                outliers { total }
                assignments { state seed expert { username } versions { total } }
            } }"#,
            json!({ "id": id }),
        )
        .await;
    let r = &round["reviewRound"];
    assert_eq!(r["roundId"], "application_review");
    assert_eq!(r["cycle"], 3);
    assert_eq!(r["open"], true);
    assert_eq!(r["aggregation"], "trimmed_mean");
    assert_eq!(r["count"], 5);
    assert_eq!(r["total"], 75.0);
    assert_eq!(r["totals"]["mean"], 76.0);
    assert_eq!(r["totals"]["median"], 75.0);
    assert_eq!(
        (r["totals"]["min"].clone(), r["totals"]["max"].clone()),
        (json!(60.0), json!(95.0))
    );
    // Sample standard deviation of 60, 70, 75, 80, 95: sqrt(670 / 4) = 12.942179…
    assert_eq!(r["totals"]["sd"], 12.942179);
    let necessity = r["criteria"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "necessity")
        .unwrap();
    assert_eq!(necessity["value"], 75.0);
    assert_eq!(necessity["stats"]["mean"], 76.0);
    assert_eq!(r["outliers"], json!([]));
    assert_eq!(r["guard"]["total"], 75.0);
    assert_eq!(r["guard"]["count"], 5);
    assert_eq!(r["expertTotals"].as_array().unwrap().len(), 5);
    let review = app
        .ok(
            Some(&t.manager),
            "query($id: ID!) { instance(id: $id) { review } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        review["instance"]["review"]["total"], 75.0,
        "what guards read"
    );

    let ranking = app
        .ok(
            Some(&t.manager),
            r#"{ ranking(callId: "2024-call") { rank total median minTotal count instance { title } } rankingXlsx(callId: "2024-call") }"#,
            json!({}),
        )
        .await;
    assert_eq!(ranking["ranking"][0]["rank"], 1);
    assert_eq!(ranking["ranking"][0]["total"], 75.0);
    let xlsx = ranking["rankingXlsx"].as_str().unwrap();
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(xlsx)
        .unwrap();
    assert_eq!(&bytes[..2], b"PK");
}

// ------------------------------------------------------------------ end to end

#[tokio::test]
async fn three_experts_score_over_http_one_is_replaced_and_the_guard_moves_the_project_on_sqlite() {
    end_to_end(Backend::Sqlite).await;
}

#[tokio::test]
async fn three_experts_score_over_http_one_is_replaced_and_the_guard_moves_the_project_on_postgres()
{
    end_to_end(Backend::Postgres).await;
}

async fn end_to_end(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = tokens(&app).await;
    let (e4, e4_token) = extra_expert(&app, "expert4", "中山大学").await;
    let mut experts: Vec<(Uuid, String)> = Vec::new();
    for name in ["expert1", "expert2", "expert3"] {
        experts.push((
            app.user(name).id,
            app.api_token(name, &["read", "review"]).await,
        ));
    }
    experts.push((e4.id, e4_token));
    let ids: Vec<Uuid> = experts.iter().map(|(id, _)| *id).collect();
    profiles(&app, &t.manager, &ids).await;
    let id = application_in_review(&app, &t, "专利导航项目").await;

    // The manager draws a panel of three from the four.
    let drawn = app
        .ok(
            Some(&t.manager),
            "mutation($id: ID!) { autoAssign(instanceId: $id, seed: 7) { seed assignments { id expert { id } } } }",
            json!({ "id": id }),
        )
        .await;
    let panel: Vec<Uuid> = drawn["autoAssign"]["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["expert"]["id"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(panel.len(), 3);
    let token_of = |expert: Uuid| {
        experts
            .iter()
            .find(|(id, _)| *id == expert)
            .unwrap()
            .1
            .clone()
    };
    let outsider = ids.iter().copied().find(|e| !panel.contains(e)).unwrap();

    // The first drawn expert declares a conflict; the outsider is drawn in their place.
    let recusing = token_of(panel[0]);
    let queue = app.ok(Some(&recusing), MY_REVIEWS, json!({})).await;
    let item = &queue["myReviews"][0];
    assert_eq!(item["roundId"], "application_review");
    assert!(item["dueAt"].is_string(), "a deadline: {item}");
    assert_eq!(item["seed"], Value::Null, "experts do not see the draw");
    let left = app
        .ok(
            Some(&recusing),
            "mutation($id: ID!) { declareConflict(assignmentId: $id, reason: \"曾为申报单位提供咨询\") { replaced assignment { state replacedBy } } }",
            json!({ "id": item["id"] }),
        )
        .await;
    assert_eq!(left["declareConflict"]["replaced"], true);
    assert_eq!(left["declareConflict"]["assignment"]["state"], "replaced");
    // The assignment as it is after the replacement, naming the seat's new assignment.
    let replaced_by = left["declareConflict"]["assignment"]["replacedBy"].clone();
    assert!(replaced_by.is_string(), "{left}");
    let gone = app.ok(Some(&recusing), MY_REVIEWS, json!({})).await;
    assert_eq!(gone["myReviews"][0]["state"], "replaced");

    // The three on the panel now score: 82, 78 and 80 → mean 80.
    let scorers = [panel[1], panel[2], outsider];
    for (expert, total) in scorers.iter().zip([82, 78, 80]) {
        let token = token_of(*expert);
        let assignment = my_assignment(&app, &token, &id).await;
        let submitted = declare_and_score(&app, &token, &assignment, flat(total)).await;
        assert_eq!(submitted["assignment"]["state"], "submitted");
    }
    let round = app
        .ok(
            Some(&t.manager),
            "query($id: ID!) { reviewRound(instanceId: $id) { count total passed assignments { state replacedBy replaces seed } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(round["reviewRound"]["count"], 3);
    assert_eq!(round["reviewRound"]["total"], 80.0);
    let states: Vec<&str> = round["reviewRound"]["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["state"].as_str().unwrap())
        .collect();
    assert_eq!(states.iter().filter(|s| **s == "submitted").count(), 3);
    assert_eq!(states.iter().filter(|s| **s == "replaced").count(), 1);
    let manager_sees: Vec<&Value> = round["reviewRound"]["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["replacedBy"])
        .filter(|r| r.is_string())
        .collect();
    assert_eq!(
        manager_sees,
        vec![&replaced_by],
        "the same replacement for the manager"
    );

    // The guard reads the stored result: the project goes on to the funding decision.
    let inst = app
        .ok(Some(&t.manager), "query($id: ID!) { instance(id: $id) { version availableTransitions { event available } } }", json!({ "id": id }))
        .await;
    let version = inst["instance"]["version"].as_i64().unwrap();
    let moved = fire(&app, &t.manager, &id, "conclude_review", version, json!({})).await;
    assert_eq!(moved["state"]["id"], "decision");
    // The round closed with the state: no more scores.
    let late = app
        .gql(
            Some(&token_of(panel[1])),
            SUBMIT,
            json!({ "id": my_assignment_any(&app, &token_of(panel[1]), &id).await, "scores": flat(70) }),
        )
        .await;
    assert_eq!(error_code(&late), "INVALID_TRANSITION");
}

async fn my_assignment_any(app: &TestApp, token: &str, instance: &str) -> String {
    let data = app
        .ok(
            Some(token),
            "{ myReviews(includeClosed: true) { id instanceId } }",
            json!({}),
        )
        .await;
    data["myReviews"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["instanceId"] == instance)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string()
}

// ------------------------------------------------------------------ managers' operations

#[tokio::test]
async fn managers_run_the_pool_exclusions_reopening_justification_and_overdue_reassignment() {
    let app = spawn_app(Backend::Sqlite).await;
    let t = tokens(&app).await;
    let (e4, e4_token) = extra_expert(&app, "expert4", "中山大学").await;
    let (e5, e5_token) = extra_expert(&app, "expert5", "广东工业大学").await;
    let (e6, _) = extra_expert(&app, "expert6", "暨南大学").await;
    let ids = [e4.id, e5.id, e6.id, app.user("expert1").id];
    profiles(&app, &t.manager, &ids).await;

    // The pool, with a recorded collaboration.
    let c = app
        .ok(
            Some(&t.manager),
            r#"mutation($e: ID!, $o: ID!) { recordCollaboration(expertId: $e, organisationId: $o, until: "2023-12-31", note: "联合课题") { until note } }"#,
            json!({ "e": app.user("expert1").id.to_string(), "o": app.seed.unit_a.id.to_string() }),
        )
        .await;
    assert_eq!(c["recordCollaboration"]["until"], "2023-12-31");
    let pool = app
        .ok(
            Some(&t.manager),
            "{ expertPool { user { username } organisation { name } categories categoryTitles { zhCn } workloadCap status load collaborations { until } } }",
            json!({}),
        )
        .await;
    let pool = pool["expertPool"].as_array().unwrap();
    assert_eq!(pool.len(), 4);
    let first = pool
        .iter()
        .find(|p| p["user"]["username"] == "expert1")
        .unwrap();
    assert_eq!(first["collaborations"][0]["until"], "2023-12-31");
    assert_eq!(first["categoryTitles"][0]["zhCn"], "强化知识产权保护");
    let bad = app
        .gql(
            Some(&t.manager),
            r#"mutation($id: ID!) { upsertExpertProfile(input: { userId: $id, categories: [9], workloadCap: 2 }) { status } }"#,
            json!({ "id": e4.id.to_string() }),
        )
        .await;
    assert_eq!(error_code(&bad), "INVALID_INPUT");
    assert_eq!(
        bad["errors"][0]["extensions"]["details"]["reason"],
        "CATEGORY_UNKNOWN"
    );

    // The applicant excludes expert 6's organisation before the review; then the draw
    // can only seat experts 4 and 5 (expert1 collaborated with the applicant).
    let wf = app.services.workflows.latest("funded-project").unwrap();
    let data = json!({
        "call_id": "2024-call", "closing_date": "2024-06-28", "forward_by": "2024-06-28",
        "applicant_kind": "unit", "part": "retained_provincial", "category": "3"
    });
    let snapshot = Snapshot::initial(&wf, data.clone());
    let (deadline, timers) =
        initial_schedule(&wf, &snapshot, app.services.now(), &WorkCalendar::builtin());
    let inst = app
        .services
        .store
        .create_instance(NewInstance {
            id: Uuid::now_v7(),
            workflow_id: "funded-project".into(),
            workflow_version: wf.def.version,
            state: "drafting".into(),
            stage: "application".into(),
            data,
            parent_id: None,
            org_id: app.seed.unit_a.id,
            title: "专利导航项目".into(),
            created_by: app.user("applicant_a").id,
            created_at: app.services.now(),
            due_at: deadline.map(|d| d.due_at),
            timers,
        })
        .await
        .unwrap();
    let id = inst.id.to_string();
    let e6_org = e6.org_id.unwrap().to_string();
    let excluded = app
        .ok(
            Some(&t.applicant),
            "mutation($id: ID!, $o: [ID!]!) { requestReviewExclusions(instanceId: $id, organisationIds: $o) { name } }",
            json!({ "id": id, "o": [e6_org] }),
        )
        .await;
    assert_eq!(excluded["requestReviewExclusions"][0]["name"], "暨南大学");
    fire(&app, &t.applicant, &id, "submit", 0, json!({
        "project_name": "专利导航能力提升", "budget": "300000",
        "indicators": [{ "category": "output_quantity", "name": "专利导航报告", "unit": "份", "target": 5, "direction": "higher_is_better", "weight": 1 }, { "name": "受益单位", "category": "effect_social", "unit": "家", "target": 20 }],
        "application_files": [file()],
    }))
    .await;
    fire(&app, &t.city, &id, "recommend", 1, json!({})).await;
    fire(&app, &t.manager, &id, "pass_formal_check", 2, json!({})).await;
    let late = app
        .gql(
            Some(&t.applicant),
            "mutation($id: ID!) { requestReviewExclusions(instanceId: $id, organisationIds: []) { name } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(error_code(&late), "INVALID_TRANSITION");
    assert_eq!(
        late["errors"][0]["extensions"]["details"]["reason"],
        "REVIEW_STARTED"
    );
    let drawn = app
        .ok(
            Some(&t.manager),
            "mutation($id: ID!) { autoAssign(instanceId: $id, seed: 1) { unfilledSeats assignments { id dueAt expert { username } } } }",
            json!({ "id": id }),
        )
        .await;
    let mut names: Vec<String> = drawn["autoAssign"]["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["expert"]["username"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names, vec!["expert4", "expert5"]);
    assert_eq!(drawn["autoAssign"]["unfilledSeats"], 1);

    // Expert 4 scores 30 below expert 5: both are 15 from the median, within the round's
    // threshold of 20, so nobody has to (or may) justify.
    let a4 = my_assignment(&app, &e4_token, &id).await;
    let a5 = my_assignment(&app, &e5_token, &id).await;
    declare_and_score(&app, &e5_token, &a5, flat(90)).await;
    let low = declare_and_score(&app, &e4_token, &a4, flat(60)).await;
    assert_eq!(low["needsJustification"], false);
    let not_outlier = app
        .gql(
            Some(&e4_token),
            "mutation($id: ID!) { justifyScores(assignmentId: $id, justification: \"理由\") { id } }",
            json!({ "id": a4 }),
        )
        .await;
    assert_eq!(error_code(&not_outlier), "INVALID_INPUT");
    assert_eq!(
        not_outlier["errors"][0]["extensions"]["details"]["reason"],
        "NOT_AN_OUTLIER"
    );

    // The manager reopens expert 4's card with a reason; the history keeps both versions.
    let reopened = app
        .ok(
            Some(&t.manager),
            "mutation($id: ID!) { reopenReview(assignmentId: $id, reason: \"评语与分数不符\") { state versions { version reopenReason } events { action reason } } }",
            json!({ "id": a4 }),
        )
        .await;
    assert_eq!(reopened["reopenReview"]["state"], "reopened");
    assert_eq!(
        reopened["reopenReview"]["versions"][0]["reopenReason"],
        "评语与分数不符"
    );
    let resubmitted = app
        .ok(
            Some(&e4_token),
            SUBMIT,
            json!({ "id": a4, "scores": flat(70) }),
        )
        .await;
    let versions = &resubmitted["submitScores"]["assignment"]["versions"];
    assert_eq!(versions.as_array().unwrap().len(), 2);
    assert_eq!(
        (versions[0]["total"].clone(), versions[1]["total"].clone()),
        (json!(60.0), json!(70.0))
    );
    let by_expert = app
        .gql(
            Some(&e4_token),
            "mutation($id: ID!) { reopenReview(assignmentId: $id, reason: \"x\") { state } }",
            json!({ "id": a4 }),
        )
        .await;
    assert_eq!(error_code(&by_expert), "FORBIDDEN");

    // The third seat: expert1 collaborated with the applicant, so the manager cannot seat
    // them by hand either.
    let refused = app
        .gql(
            Some(&t.manager),
            "mutation($id: ID!, $e: [ID!]!) { assignReviewers(instanceId: $id, expertIds: $e) { id } }",
            json!({ "id": id, "e": [app.user("expert1").id.to_string()] }),
        )
        .await;
    assert_eq!(
        refused["errors"][0]["extensions"]["details"]["fields"][0]["code"],
        "EXPERT_CONFLICT"
    );

    // Reassigning an expert who is not late is refused; once late, they are replaced.
    let (e7, _) = extra_expert(&app, "expert7", "华南师范大学").await;
    profiles(&app, &t.manager, &[e7.id]).await;
    let seated = app
        .ok(
            Some(&t.manager),
            "mutation($id: ID!, $e: [ID!]!) { assignReviewers(instanceId: $id, expertIds: $e) { id dueAt } }",
            json!({ "id": id, "e": [e7.id.to_string()] }),
        )
        .await;
    let slow = seated["assignReviewers"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let early = app
        .gql(
            Some(&t.manager),
            "mutation($id: ID!) { reassign(assignmentId: $id, reason: \"逾期未评\") { replacement { id } } }",
            json!({ "id": slow }),
        )
        .await;
    assert_eq!(error_code(&early), "INVALID_TRANSITION");
    assert_eq!(
        early["errors"][0]["extensions"]["details"]["reason"],
        "ASSIGNMENT_NOT_OVERDUE"
    );
    let due: chrono::DateTime<chrono::Utc> = seated["assignReviewers"][0]["dueAt"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    app.clock.set(due + Duration::hours(2));
    // A new session: the old one expired meanwhile.
    let manager = app.session_token("manager").await;
    let (e8, _) = extra_expert(&app, "expert8", "深圳大学").await;
    profiles(&app, &manager, &[e8.id]).await;
    let moved = app
        .ok(
            Some(&manager),
            "mutation($id: ID!) { reassign(assignmentId: $id, reason: \"逾期未评\") { assignment { state events { action reason } } replacement { expert { username } seed algorithm } } }",
            json!({ "id": slow }),
        )
        .await;
    let r = &moved["reassign"];
    assert_eq!(r["assignment"]["state"], "replaced");
    assert_eq!(r["assignment"]["events"][0]["action"], "mark_overdue");
    assert_eq!(r["assignment"]["events"][0]["reason"], "逾期未评");
    assert_eq!(r["replacement"]["expert"]["username"], "expert8");
    assert!(r["replacement"]["seed"].is_u64());
    let pool = app
        .ok(
            Some(&manager),
            "{ expertPool { user { username } lateReviews suspensionDue } }",
            json!({}),
        )
        .await;
    let late = pool["expertPool"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["user"]["username"] == "expert7")
        .unwrap()
        .clone();
    assert_eq!(late["lateReviews"], 1);
    assert_eq!(
        late["suspensionDue"], false,
        "three late reviews before suspension"
    );
}
