//! One request per operation of the schema (a few operations have more than one row, named
//! `operation#variant`): the document, what a row prepares, and what an allowed cell must
//! show.

use base64::Engine;
use serde_json::{Value, json};
use uuid::Uuid;

use super::world::{CATALOGUE_2022, DEMAND_FORM, World};

/// What an allowed cell must show at `path` of `data`.
pub enum Want {
    /// A value (not null).
    Some,
    /// Exactly this value.
    Eq(Value),
    /// The value of this variable.
    Var(&'static str),
}

pub struct Spec {
    pub query: &'static str,
    pub path: &'static [&'static str],
    pub want: Want,
}

const fn spec(query: &'static str, path: &'static [&'static str], want: Want) -> Spec {
    Spec { query, path, want }
}

pub fn spec_of(op: &str) -> Spec {
    use Want::{Eq, Some, Var};
    match op {
        // ---- queries
        "viewer" => spec("{ viewer { id username } }", &["viewer", "id"], Some),
        "myTokens" => spec("{ myTokens { id } }", &["myTokens"], Some),
        "organisations" => spec("{ organisations { id } }", &["organisations"], Some),
        "organisation" => spec(
            "query($id: ID!) { organisation(id: $id) { id name } }",
            &["organisation", "id"],
            Var("id"),
        ),
        "users" => spec("{ users { id } }", &["users"], Some),
        "user" => spec(
            "query($id: ID!) { user(id: $id) { id } }",
            &["user", "id"],
            Var("id"),
        ),
        "workflows" => spec("{ workflows { id } }", &["workflows"], Some),
        "workflow" => spec(
            r#"{ workflow(id: "funded-project") { id } }"#,
            &["workflow", "id"],
            Eq(json!("funded-project")),
        ),
        "instance" => spec(
            "query($id: ID!) { instance(id: $id) { id title data organisation { name } createdBy { displayName } history { seq } previousGrades { title score } } }",
            &["instance", "id"],
            Var("id"),
        ),
        "instances" => spec(
            "{ instances(first: 100) { totalCount edges { node { id title data } } } }",
            &["instances", "totalCount"],
            Some,
        ),
        "outbox" => spec("{ outbox { id } }", &["outbox"], Some),
        "calls" => spec("{ calls { id } }", &["calls"], Some),
        "call" => spec(
            "query($call: ID!) { call(id: $call) { id } }",
            &["call", "id"],
            Var("call"),
        ),
        "duplicateCandidates" => spec(
            "query($call: ID!) { duplicateCandidates(callId: $call) { reasons } }",
            &["duplicateCandidates"],
            Some,
        ),
        "demandMerges" => spec(
            "query($call: ID!) { demandMerges(callId: $call) { keptId } }",
            &["demandMerges"],
            Some,
        ),
        "exportDemands" => spec(
            "query($call: ID!) { exportDemands(callId: $call, format: CSV) { mediaType } }",
            &["exportDemands", "mediaType"],
            Eq(json!("text/csv; charset=utf-8")),
        ),
        "exportInstances" => spec(
            "{ exportInstances(format: CSV) { mediaType } }",
            &["exportInstances", "mediaType"],
            Eq(json!("text/csv; charset=utf-8")),
        ),
        "exportEvaluations" => spec(
            "query($call: ID!) { exportEvaluations(callId: $call, format: CSV) { mediaType } }",
            &["exportEvaluations", "mediaType"],
            Eq(json!("text/csv; charset=utf-8")),
        ),
        "budget" => spec(
            "query($id: ID!) { budget(instanceId: $id) { budgeted } }",
            &["budget", "budgeted"],
            Eq(json!("300000.00")),
        ),
        "fundingPlan" => spec(
            "query($call: ID!) { fundingPlan(callId: $call) { total } }",
            &["fundingPlan", "total"],
            Eq(json!("60000000.00")),
        ),
        "fundingPlanHistory" => spec(
            "query($call: ID!) { fundingPlanHistory(callId: $call) { reason } }",
            &["fundingPlanHistory", "0", "reason"],
            Some,
        ),
        "projectFunding" => spec(
            "query($id: ID!) { projectFunding(instanceId: $id) { disbursed } }",
            &["projectFunding", "disbursed"],
            Eq(json!("300000.00")),
        ),
        "setFundingPlan" => spec(
            r#"mutation($call: ID!) { setFundingPlan(callId: $call, reason: "按省财政下达额度调整", plan: { total: "70000000" }) { total } }"#,
            &["setFundingPlan", "total"],
            Eq(json!("70000000.00")),
        ),
        "recordDisbursement" => spec(
            r#"mutation($id: ID!) { recordDisbursement(instanceId: $id, input: { batch: "第二批", paidOn: "2024-06-10", amount: "1000", voucher: "粤财拨-2024-002" }) { amount } }"#,
            &["recordDisbursement", "amount"],
            Eq(json!("1000.00")),
        ),
        "indicatorActuals" => spec(
            "query($id: ID!) { indicatorActuals(instanceId: $id) { indicatorId } }",
            &["indicatorActuals"],
            Some,
        ),
        "evaluationPreview" => spec(
            "query($id: ID!) { evaluationPreview(instanceId: $id) { total grade } }",
            &["evaluationPreview", "grade"],
            Some,
        ),
        "evaluation" => spec(
            "query($id: ID!) { evaluation(instanceId: $id) { score { total } } }",
            &["evaluation"],
            Some,
        ),
        "callSummary" => spec(
            "query($call: ID!) { callSummary(callId: $call) { evaluated } }",
            &["callSummary", "evaluated"],
            Some,
        ),
        // The province's reports: managers, auditors and city bureaus (their city).
        "yearReport" => spec(
            "{ yearReport(year: 2022) { scope totals { projects } byCity { key } } }",
            &["yearReport", "scope"],
            Eq(json!("2022年度")),
        ),
        "exportReport" => spec(
            "{ exportReport(year: 2022, format: CSV) { mediaType } }",
            &["exportReport", "mediaType"],
            Eq(json!("text/csv; charset=utf-8")),
        ),
        "unitGrades" => spec(
            "{ unitGrades(year: 2022) { organisationName averageScore } }",
            &["unitGrades"],
            Some,
        ),
        "exportUnitGrades" => spec(
            "{ exportUnitGrades(year: 2022, format: CSV) { mediaType } }",
            &["exportUnitGrades", "mediaType"],
            Eq(json!("text/csv; charset=utf-8")),
        ),
        "userDirectory" => spec(
            r#"{ userDirectory(role: EXPERT, search: "expert", first: 2) { totalCount } }"#,
            &["userDirectory", "totalCount"],
            Some,
        ),
        "myReviews" => spec(
            "{ myReviews { id instanceId title } }",
            &["myReviews"],
            Some,
        ),
        "reviewForm" => spec(
            "query($a: ID!) { reviewForm(assignmentId: $a) { blind application assignment { id title } } }",
            &["reviewForm", "assignment", "id"],
            Var("a"),
        ),
        "expertPool" => spec("{ expertPool { userId } }", &["expertPool"], Some),
        "reviewRound" => spec(
            "query($id: ID!) { reviewRound(instanceId: $id) { count } }",
            &["reviewRound", "count"],
            Some,
        ),
        "ranking" => spec(
            "query($c: String!) { ranking(callId: $c) { rank } }",
            &["ranking"],
            Some,
        ),
        "rankingXlsx" => spec(
            "query($c: String!) { rankingXlsx(callId: $c) }",
            &["rankingXlsx"],
            Some,
        ),

        // ---- accounts and administration
        "login" => spec(
            "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }",
            &["login", "token"],
            Some,
        ),
        "logout" => spec("mutation { logout }", &["logout"], Eq(json!(true))),
        "revokeAllTokens" => spec("mutation { revokeAllTokens }", &["revokeAllTokens"], Some),
        "createApiToken" => spec(
            r#"mutation { createApiToken(name: "评审客户端", scopes: ["read"]) { token } }"#,
            &["createApiToken", "token"],
            Some,
        ),
        "revokeApiToken" => spec(
            "mutation($id: ID!) { revokeApiToken(id: $id) }",
            &["revokeApiToken"],
            Eq(json!(true)),
        ),
        "requestPasswordReset" => spec(
            "mutation($e: String!) { requestPasswordReset(email: $e) }",
            &["requestPasswordReset"],
            Eq(json!(true)),
        ),
        "resetPassword" => spec(
            "mutation($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }",
            &["resetPassword"],
            Eq(json!(true)),
        ),
        "changePassword" => spec(
            "mutation($p: String!) { changePassword(oldPassword: $p, newPassword: $p) }",
            &["changePassword"],
            Eq(json!(true)),
        ),
        "setNotificationPreference" => spec(
            "mutation { setNotificationPreference(preference: DIGEST_ONLY) { notifyPref } }",
            &["setNotificationPreference", "notifyPref"],
            Eq(json!("DIGEST_ONLY")),
        ),
        "createOrganisation" => spec(
            "mutation($n: String!, $p: ID!) { createOrganisation(name: $n, kind: UNIT, parentId: $p) { name } }",
            &["createOrganisation", "name"],
            Var("n"),
        ),
        "createUser" => spec(
            "mutation($input: CreateUserInput!) { createUser(input: $input) { username } }",
            &["createUser", "username"],
            Some,
        ),
        "updateUser" => spec(
            "mutation($id: ID!) { updateUser(id: $id, input: { displayName: \"专家三\" }) { displayName } }",
            &["updateUser", "displayName"],
            Eq(json!("专家三")),
        ),

        // ---- instances
        "createInstance" => spec(
            "mutation($input: CreateInstanceInput!) { createInstance(input: $input) { state { id } organisation { id } } }",
            &["createInstance", "state", "id"],
            Eq(json!("drafting")),
        ),
        "transition" | "transition#recommend" | "transition#pass_formal_check" => spec(
            "mutation($id: ID!, $event: String!, $v: Int!, $input: JSON) { transition(instanceId: $id, event: $event, expectedVersion: $v, input: $input) { instance { state { id } } } }",
            &["transition", "instance", "state", "id"],
            Var("to"),
        ),
        "extendDeadline" => spec(
            "mutation($id: ID!, $v: Int!) { extendDeadline(instanceId: $id, expectedVersion: $v, newDueDate: \"2024-07-15\", reason: \"节假日顺延\") { instance { dueAt } } }",
            &["extendDeadline", "instance", "dueAt"],
            Eq(json!("2024-07-15T16:00:00+00:00")),
        ),

        // ---- programme
        "openCall" => spec(
            "mutation($input: OpenCallInput!) { openCall(input: $input) { status } }",
            &["openCall", "status"],
            Eq(json!("OPEN")),
        ),
        "closeCall" => spec(
            "mutation($call: ID!) { closeCall(id: $call) { status } }",
            &["closeCall", "status"],
            Eq(json!("CLOSED")),
        ),
        "importDemands" => spec(
            "mutation($call: ID!, $file: String!, $org: ID) { importDemands(callId: $call, fileBase64: $file, organisationId: $org) { created { id } } }",
            &["importDemands", "created", "5"],
            Some,
        ),
        "submitDemands" => spec(
            "mutation($ids: [ID!]!) { submitDemands(instanceIds: $ids) { submitted errorCode instance { state { id } } } }",
            &["submitDemands", "0", "instance", "state", "id"],
            Eq(json!("city_review")),
        ),
        "mergeDemands" => spec(
            "mutation($kept: ID!, $dup: ID!) { mergeDemands(keptId: $kept, duplicateId: $dup) { duplicate { state { id } } } }",
            &["mergeDemands", "duplicate", "state", "id"],
            Eq(json!("rejected_duplicate")),
        ),
        "addBudgetLine" => spec(
            r#"mutation($id: ID!) { addBudgetLine(instanceId: $id, input: { year: 2024, subject: "调解员培训", amount: "100000" }) { remaining } }"#,
            &["addBudgetLine", "remaining"],
            Eq(json!("100000.00")),
        ),
        "recordSpending" => spec(
            "mutation($id: ID!, $line: ID!) { recordSpending(instanceId: $id, input: { lineId: $line, amount: \"1000\", spentOn: \"2024-06-10\" }) { amount } }",
            &["recordSpending", "amount"],
            Eq(json!("1000.00")),
        ),
        "recordIndicatorActuals" => spec(
            r#"mutation($id: ID!) { recordIndicatorActuals(instanceId: $id, checkpoint: MID_TERM, actuals: [{ indicatorId: "cases", value: 90 }]) { indicatorId } }"#,
            &["recordIndicatorActuals", "0", "indicatorId"],
            Eq(json!("cases")),
        ),
        "evaluateProject" => spec(
            "mutation($id: ID!) { evaluateProject(instanceId: $id) { instance { state { id } } } }",
            &["evaluateProject", "instance", "state", "id"],
            Eq(json!("graded")),
        ),
        "applyChangeRequest" => spec(
            "mutation($id: ID!) { applyChangeRequest(changeRequestId: $id) { data } }",
            &["applyChangeRequest", "data", "approved_budget"],
            Eq(json!("250000.00")),
        ),

        // ---- review
        "declareNoConflict" => spec(
            "mutation($a: ID!) { declareNoConflict(assignmentId: $a) { state } }",
            &["declareNoConflict", "state"],
            Eq(json!("accepted")),
        ),
        "declareConflict" => spec(
            "mutation($a: ID!) { declareConflict(assignmentId: $a, reason: \"曾与申报单位合作\") { assignment { state } } }",
            &["declareConflict", "assignment", "state"],
            Some,
        ),
        "decline" => spec(
            "mutation($a: ID!) { decline(assignmentId: $a, reason: \"时间冲突\") { assignment { state } } }",
            &["decline", "assignment", "state"],
            Some,
        ),
        "submitScores" => spec(
            r#"mutation($a: ID!) { submitScores(assignmentId: $a, scores: [{ criterion: "necessity", score: 80 }, { criterion: "feasibility", score: 70 }, { criterion: "performance_targets", score: 90 }, { criterion: "budget", score: 60 }]) { total } }"#,
            &["submitScores", "total"],
            Eq(json!(76.5)),
        ),
        "justifyScores" => spec(
            "mutation($a: ID!) { justifyScores(assignmentId: $a, justification: \"理由\") { id } }",
            &["justifyScores", "id"],
            Var("a"),
        ),
        "upsertExpertProfile" => spec(
            "mutation($e: ID!) { upsertExpertProfile(input: { userId: $e, categories: [3], workloadCap: 40 }) { workloadCap } }",
            &["upsertExpertProfile", "workloadCap"],
            Eq(json!(40)),
        ),
        "recordCollaboration" => spec(
            r#"mutation($e: ID!, $o: ID!) { recordCollaboration(expertId: $e, organisationId: $o, until: "2023-12-31") { until } }"#,
            &["recordCollaboration", "until"],
            Eq(json!("2023-12-31")),
        ),
        "requestReviewExclusions" => spec(
            "mutation($id: ID!, $o: [ID!]!) { requestReviewExclusions(instanceId: $id, organisationIds: $o) { name } }",
            &["requestReviewExclusions", "0", "name"],
            Eq(json!("深圳专利运营有限公司")),
        ),
        "assignReviewers" => spec(
            "mutation($id: ID!, $e: [ID!]!) { assignReviewers(instanceId: $id, expertIds: $e) { state } }",
            &["assignReviewers", "0", "state"],
            Eq(json!("assigned")),
        ),
        "autoAssign" => spec(
            "mutation($id: ID!) { autoAssign(instanceId: $id, seed: 1) { seed } }",
            &["autoAssign", "seed"],
            Eq(json!(1)),
        ),
        "reassign" => spec(
            "mutation($a: ID!) { reassign(assignmentId: $a, reason: \"逾期未评\") { assignment { state } } }",
            &["reassign", "assignment", "state"],
            Eq(json!("replaced")),
        ),
        "reopenReview" => spec(
            "mutation($a: ID!) { reopenReview(assignmentId: $a, reason: \"评语与分数不符\") { state } }",
            &["reopenReview", "state"],
            Eq(json!("reopened")),
        ),

        // ---- 公示 in public
        "publicityList" => spec(
            "{ publicityList { instanceId title unit amount publicityStart publicityEnd } }",
            &["publicityList", "0", "instanceId"],
            Some,
        ),
        "publicObjections" => spec(
            "query($id: ID!) { publicObjections(instanceId: $id) { id name contact reason status } }",
            &["publicObjections", "0", "reason"],
            Eq(json!("与已资助项目重复")),
        ),
        "submitPublicObjection" => spec(
            "mutation($id: ID!) { submitPublicObjection(input: { instanceId: $id, name: \"张三\", contact: \"13800000000\", reason: \"与已资助项目重复\" }) { id } }",
            &["submitPublicObjection", "id"],
            Some,
        ),
        "resolvePublicObjection" => spec(
            "mutation($o: ID!) { resolvePublicObjection(objectionId: $o, outcome: DISMISSED, reason: \"经核查不成立\") { status } }",
            &["resolvePublicObjection", "status"],
            Eq(json!("DISMISSED")),
        ),

        // ---- third-party evaluation
        "evaluationAssignments" => spec(
            "query($id: ID!) { evaluationAssignments(instanceId: $id) { organisationId } }",
            &["evaluationAssignments", "0", "organisationId"],
            Var("org"),
        ),
        "evaluationComparison" => spec(
            "query($id: ID!) { evaluationComparison(instanceId: $id) { instanceId selfEvaluation threshold } }",
            &["evaluationComparison", "instanceId"],
            Var("id"),
        ),
        "assignEvaluation" => spec(
            "mutation($id: ID!, $org: ID!) { assignEvaluation(instanceId: $id, organisationId: $org) { organisationId } }",
            &["assignEvaluation", "organisationId"],
            Var("org"),
        ),
        "recordThirdPartyEvaluation" => spec(
            "mutation($id: ID!) { recordThirdPartyEvaluation(instanceId: $id) { score { total } } }",
            &["recordThirdPartyEvaluation", "score", "total"],
            Some,
        ),

        // ---- subscriptions (over a WebSocket)
        "instanceEvents" => spec(
            "subscription($id: ID!) { instanceEvents(instanceId: $id) { kind instanceId toState actorId } }",
            &["instanceEvents", "kind"],
            Eq(json!("CURRENT")),
        ),
        "myTasks" => spec(
            "subscription { myTasks { change instance { id title } } }",
            &["myTasks", "change"],
            Some,
        ),
        other => panic!("no request for `{other}`: add a row to authz_matrix.rs"),
    }
}

/// What a row acts on: its variables, and the instances a refused cell must leave as
/// they were.
pub struct Prepared {
    pub vars: Value,
    pub instances: Vec<Uuid>,
}

fn ids(v: &[Uuid]) -> Vec<Uuid> {
    v.to_vec()
}

pub async fn prepare(w: &mut World, op: &str) -> Prepared {
    w.refresh().await;
    let app = &w.app;
    let call = w.call;
    let none = |vars: Value| Prepared {
        vars,
        instances: vec![],
    };
    match op {
        "viewer"
        | "myTokens"
        | "organisations"
        | "users"
        | "workflows"
        | "workflow"
        | "outbox"
        | "calls"
        | "expertPool"
        | "exportInstances"
        | "yearReport"
        | "exportReport"
        | "unitGrades"
        | "exportUnitGrades"
        | "userDirectory"
        | "login"
        | "logout"
        | "revokeAllTokens"
        | "createApiToken"
        | "changePassword"
        | "setNotificationPreference"
        | "myTasks" => none(json!({})),
        "organisation" => none(json!({ "id": app.seed.unit_a.id })),
        "user" => none(json!({ "id": app.user("applicant_a").id })),
        "instance" | "instances" | "myReviews" | "reviewRound" | "instanceEvents" => {
            let (p, _) = w.project_in_review(true, false).await;
            Prepared {
                vars: if op == "instances" || op == "myReviews" {
                    json!({})
                } else {
                    json!({ "id": p.id })
                },
                instances: ids(&[p.id]),
            }
        }
        "reviewForm" => {
            let (p, a) = w.project_in_review(true, false).await;
            Prepared {
                vars: json!({ "a": a }),
                instances: ids(&[p.id]),
            }
        }
        "call"
        | "duplicateCandidates"
        | "demandMerges"
        | "exportDemands"
        | "exportEvaluations"
        | "callSummary"
        | "closeCall" => none(json!({ "call": call })),
        "ranking" | "rankingXlsx" => none(json!({ "c": call.to_string() })),
        "fundingPlan" | "fundingPlanHistory" | "setFundingPlan" => none(json!({ "call": call })),
        "recordDisbursement" => {
            let (p, _) = w.approved_project("execution", false).await;
            Prepared {
                vars: json!({ "id": p.id }),
                instances: ids(&[p.id]),
            }
        }
        "budget" | "indicatorActuals" | "projectFunding" => {
            let (p, _) = w.approved_project("execution", true).await;
            Prepared {
                vars: json!({ "id": p.id }),
                instances: ids(&[p.id]),
            }
        }
        "publicityList"
        | "publicObjections"
        | "submitPublicObjection"
        | "resolvePublicObjection" => {
            let (p, _) = w.approved_project("publicity", true).await;
            let objection = app
                .services
                .submit_public_objection(grantflow_service::publicity::NewPublicObjection {
                    instance_id: p.id,
                    name: "李四".into(),
                    contact: "lisi@example.com".into(),
                    reason: "与已资助项目重复".into(),
                })
                .await
                .unwrap();
            Prepared {
                vars: json!({ "id": p.id, "o": objection.id }),
                instances: ids(&[p.id]),
            }
        }
        "evaluationAssignments"
        | "evaluationComparison"
        | "assignEvaluation"
        | "recordThirdPartyEvaluation" => {
            let (p, _) = w.approved_project("evaluation", true).await;
            let org = app
                .services
                .store
                .create_org(grantflow_store::NewOrganisation {
                    name: format!("第三方评价机构 {}", Uuid::now_v7()),
                    kind: grantflow_store::OrgKind::ThirdParty,
                    parent_id: Some(app.seed.province.id),
                })
                .await
                .unwrap();
            if op != "assignEvaluation" {
                app.services
                    .assign_evaluation(app.user("manager"), p.id, org.id)
                    .await
                    .unwrap();
            }
            Prepared {
                vars: json!({ "id": p.id, "org": org.id }),
                instances: ids(&[p.id]),
            }
        }
        "evaluationPreview" | "evaluation" | "evaluateProject" => {
            let (p, _) = w.approved_project("evaluation", true).await;
            Prepared {
                vars: json!({ "id": p.id }),
                instances: ids(&[p.id]),
            }
        }
        "revokeApiToken"
        | "requestPasswordReset"
        | "resetPassword"
        | "createOrganisation"
        | "createUser" => none(json!({})),
        "updateUser" => none(json!({ "id": app.user("expert3").id })),
        "createInstance" => none(json!({ "input": {
            "workflowId": "funded-project",
            "title": "广州新项目",
            "organisationId": app.seed.unit_a.id,
            "callId": call.to_string(),
            "catalogueItem": "2022-2-1-5",
        }})),
        "transition" => {
            let p = w.drafting_project().await;
            Prepared {
                vars: json!({ "id": p.id, "event": "withdraw", "v": 0, "to": "withdrawn" }),
                instances: ids(&[p.id]),
            }
        }
        "transition#recommend" => {
            let p = w
                .put("funded-project", "city_review", w.project_data(), None)
                .await;
            Prepared {
                vars: json!({ "id": p.id, "event": "recommend", "v": 0, "to": "formal_check", "input": { "city_opinion": "同意推荐" } }),
                instances: ids(&[p.id]),
            }
        }
        "transition#pass_formal_check" => {
            let p = w
                .put("funded-project", "formal_check", w.project_data(), None)
                .await;
            Prepared {
                vars: json!({ "id": p.id, "event": "pass_formal_check", "v": 0, "to": "expert_review" }),
                instances: ids(&[p.id]),
            }
        }
        "extendDeadline" => {
            let p = w.drafting_project().await;
            Prepared {
                vars: json!({ "id": p.id, "v": 0 }),
                instances: ids(&[p.id]),
            }
        }
        "openCall" => none(
            json!({ "input": { "catalogueToml": CATALOGUE_2022, "closingDate": "2024-06-28" } }),
        ),
        "importDemands" => none(json!({
            "call": call,
            "file": base64::engine::general_purpose::STANDARD.encode(DEMAND_FORM),
            "org": app.seed.unit_a.id,
        })),
        "submitDemands" => {
            let d = w
                .demand("drafting", "南沙自贸区知识产权纠纷快速处理机制建设")
                .await;
            Prepared {
                vars: json!({ "ids": [d.id] }),
                instances: ids(&[d.id]),
            }
        }
        "mergeDemands" => {
            let kept = w
                .demand("province_review", "南沙自贸区知识产权纠纷快速处理机制建设")
                .await;
            let dup = w
                .demand("province_review", "前海自贸区知识产权纠纷快速处理机制建设")
                .await;
            Prepared {
                vars: json!({ "kept": kept.id, "dup": dup.id }),
                instances: ids(&[kept.id, dup.id]),
            }
        }
        "addBudgetLine" => {
            let p = w
                .put("funded-project", "decision", w.project_data(), None)
                .await;
            Prepared {
                vars: json!({ "id": p.id }),
                instances: ids(&[p.id]),
            }
        }
        "recordSpending" => {
            let (p, line) = w.approved_project("execution", true).await;
            Prepared {
                vars: json!({ "id": p.id, "line": line }),
                instances: ids(&[p.id]),
            }
        }
        "recordIndicatorActuals" => {
            let (p, _) = w.approved_project("execution", false).await;
            Prepared {
                vars: json!({ "id": p.id }),
                instances: ids(&[p.id]),
            }
        }
        "applyChangeRequest" => {
            let (p, _) = w.approved_project("execution", false).await;
            let c = w
                .put(
                    "change-request",
                    "approved",
                    json!({ "change_type": "budget", "change_summary": "压缩培训经费", "new_budget": "250000.00" }),
                    Some(p.id),
                )
                .await;
            Prepared {
                vars: json!({ "id": c.id }),
                instances: ids(&[c.id, p.id]),
            }
        }
        "declareNoConflict" | "declareConflict" | "decline" | "reassign" => {
            let (p, a) = w.project_in_review(false, false).await;
            Prepared {
                vars: json!({ "a": a }),
                instances: ids(&[p.id]),
            }
        }
        "submitScores" => {
            let (p, a) = w.project_in_review(true, false).await;
            Prepared {
                vars: json!({ "a": a }),
                instances: ids(&[p.id]),
            }
        }
        "justifyScores" | "reopenReview" => {
            let (p, a) = w.project_in_review(true, true).await;
            Prepared {
                vars: json!({ "a": a }),
                instances: ids(&[p.id]),
            }
        }
        "upsertExpertProfile" => none(json!({ "e": app.user("expert2").id })),
        "recordCollaboration" => none(json!({ "e": app.user("expert2").id })),
        "requestReviewExclusions" => {
            let p = w.drafting_project().await;
            Prepared {
                vars: json!({ "id": p.id, "o": [app.seed.unit_b.id] }),
                instances: ids(&[p.id]),
            }
        }
        "assignReviewers" | "autoAssign" => {
            let p = w
                .put("funded-project", "formal_check", w.project_data(), None)
                .await;
            w.app
                .services
                .fire(
                    w.app.user("manager"),
                    grantflow_service::FireEvent {
                        instance_id: p.id,
                        event: "pass_formal_check".into(),
                        expected_version: 0,
                        idempotency_key: None,
                        input: json!({}),
                        reason: None,
                    },
                )
                .await
                .unwrap();
            Prepared {
                vars: json!({ "id": p.id, "e": [w.app.user("expert2").id] }),
                instances: ids(&[p.id]),
            }
        }
        other => panic!("nothing to prepare for `{other}`"),
    }
}

/// Variables that must be new in every cell (names that must be unique, one-time tokens,
/// the caller's own username).
pub async fn per_cell(w: &World, op: &str, username: &str, n: usize, vars: &mut Value) {
    let app = &w.app;
    match op {
        "login" => {
            vars["u"] = json!(username);
            vars["p"] = json!(crate::support::PASSWORD);
        }
        "changePassword" => vars["p"] = json!(crate::support::PASSWORD),
        "revokeApiToken" => {
            let token = app.api_token("applicant_a", &["read"]).await;
            let record = app
                .services
                .store
                .find_token(&grantflow_api::auth::token_hash(&token))
                .await
                .unwrap()
                .unwrap();
            vars["id"] = json!(record.id);
        }
        "requestPasswordReset" => vars["e"] = json!("expert3@example.gov.cn"),
        "recordCollaboration" => {
            // A new partner each time: the same collaboration twice is refused.
            let org = app
                .services
                .store
                .create_org(grantflow_store::NewOrganisation {
                    name: format!("合作单位 {n}"),
                    kind: grantflow_store::OrgKind::Unit,
                    parent_id: Some(app.seed.shenzhen.id),
                })
                .await
                .unwrap();
            vars["o"] = json!(org.id);
        }
        "resetPassword" => {
            let (token, hash) = grantflow_api::auth::new_token(grantflow_api::auth::RESET_PREFIX);
            app.services
                .store
                .create_reset_token(
                    app.user("expert3").id,
                    &hash,
                    app.services.now() + chrono::Duration::minutes(30),
                )
                .await
                .unwrap();
            vars["t"] = json!(token);
            vars["p"] = json!(crate::support::PASSWORD);
        }
        "createOrganisation" => {
            vars["n"] = json!(format!("新单位 {n}"));
            vars["p"] = json!(app.seed.guangzhou.id);
        }
        "createUser" => {
            vars["input"] = json!({
                "username": format!("new_user_{n}"),
                "displayName": "新用户",
                "email": format!("new_user_{n}@example.gov.cn"),
                "password": crate::support::PASSWORD,
                "roles": ["APPLICANT"],
                "organisationId": app.seed.unit_a.id,
            });
        }
        _ => {}
    }
}
