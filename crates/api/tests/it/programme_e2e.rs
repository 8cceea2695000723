//! The programme end to end over HTTP, on SQLite and on PostgreSQL: the 2022 call with its
//! whole catalogue → demands from two cities (one imported from the committed 需求征集表,
//! one entered by hand) → consolidation with one duplicate merged → an application →
//! approval with a budget line → spending → acceptance → evaluation graded 良.

use crate::support;

use base64::Engine;
use serde_json::{Value, json};
use support::{Backend, TestApp, error_code, spawn_app};

const CATALOGUE_2022: &str = include_str!("../../../../workflows/calls/2022.toml");
const FIXTURE: &[u8] =
    include_bytes!("../../../programme/tests/fixtures/demand_form_guangzhou.xlsx");

const TRANSITION: &str = r#"
mutation($id: ID!, $event: String!, $v: Int!, $input: JSON, $reason: String) {
  transition(instanceId: $id, event: $event, expectedVersion: $v, input: $input, reason: $reason) {
    instance { id version state { id } data }
  }
}"#;

async fn fire(app: &TestApp, token: &str, id: &str, event: &str, input: Value) -> Value {
    let v = version(app, token, id).await;
    let data = app
        .ok(
            Some(token),
            TRANSITION,
            json!({ "id": id, "event": event, "v": v, "input": input }),
        )
        .await;
    data["transition"]["instance"].clone()
}

async fn version(app: &TestApp, token: &str, id: &str) -> i64 {
    app.ok(
        Some(token),
        "query($id: ID!) { instance(id: $id) { version } }",
        json!({ "id": id }),
    )
    .await["instance"]["version"]
        .as_i64()
        .unwrap()
}

async fn state(app: &TestApp, token: &str, id: &str) -> String {
    app.ok(
        Some(token),
        "query($id: ID!) { instance(id: $id) { state { id } } }",
        json!({ "id": id }),
    )
    .await["instance"]["state"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn file(name: &str) -> Value {
    json!({ "name": name, "sha256": "c".repeat(64), "size": 4096 })
}

fn decode(file: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(file["contentBase64"].as_str().unwrap())
        .unwrap()
}

/// The CSV export `field` (`exportDemands` or `exportEvaluations`) of the call as `token`.
async fn export_csv(app: &TestApp, token: &str, field: &str, call_id: &str) -> String {
    let data = app
        .ok(
            Some(token),
            &format!(
                "query($call: ID!) {{ {field}(callId: $call, format: CSV) {{ contentBase64 }} }}"
            ),
            json!({ "call": call_id }),
        )
        .await;
    String::from_utf8(decode(&data[field])).unwrap()
}

const SPEND: &str = r#"
mutation($id: ID!, $input: SpendingInput!) {
  recordSpending(instanceId: $id, input: $input) { id amount lineId spentOn }
}"#;

#[tokio::test]
async fn call_to_graded_evaluation_over_http_on_sqlite() {
    call_to_graded_evaluation(Backend::Sqlite).await;
}

#[tokio::test]
async fn call_to_graded_evaluation_over_http_on_postgres() {
    call_to_graded_evaluation(Backend::Postgres).await;
}

async fn call_to_graded_evaluation(backend: Backend) {
    let app = spawn_app(backend).await;
    let manager = app.session_token("manager").await;
    let unit_gz = app.session_token("applicant_a").await;
    let unit_sz = app.session_token("applicant_b").await;
    let city_gz = app.session_token("city_gz").await;
    let city_sz = app.session_token("city_sz").await;

    // ---- the call: the whole 2022 catalogue, demands due by 2024-06-28.
    let opened = app
        .ok(
            Some(&manager),
            r#"mutation($input: OpenCallInput!) { openCall(input: $input) {
                id year title closingDate status itemCount
                categories { code number label policyAreas { name items { id name eligibleApplicant part partTitle } } }
            } }"#,
            json!({ "input": { "catalogueToml": CATALOGUE_2022, "closingDate": "2024-06-28" } }),
        )
        .await;
    let call = &opened["openCall"];
    let call_id = call["id"].as_str().unwrap().to_string();
    assert_eq!(call["year"], 2022);
    assert_eq!(call["status"], "OPEN");
    assert_eq!(call["closingDate"], "2024-06-28");
    assert_eq!(call["categories"].as_array().unwrap().len(), 8);
    assert_eq!(call["categories"][2]["label"], "三、强化知识产权保护");
    let items = call["itemCount"].as_u64().unwrap();
    assert!(items > 50, "the whole catalogue: {items} items");
    let first_item = &call["categories"][0]["policyAreas"][0]["items"][0];
    assert_eq!(first_item["id"], "2022-1-1-1");
    assert_eq!(first_item["partTitle"], "保留省级");
    // Every signed-in user reads the catalogue.
    let listed = app
        .ok(
            Some(&unit_sz),
            "{ calls { id title itemCount } }",
            json!({}),
        )
        .await;
    assert_eq!(listed["calls"][0]["id"], call_id.as_str());
    assert_eq!(listed["calls"][0]["itemCount"], items);

    // ---- Guangzhou: a unit imports the filled-in form (merged cells, blank rows, notes).
    let imported = app
        .ok(
            Some(&unit_gz),
            r#"mutation($call: ID!, $file: String!) {
                importDemands(callId: $call, fileBase64: $file, fileName: "广州市.xlsx") {
                    created { id title state { id } data } errors { row } skippedRows submitter
                } }"#,
            json!({ "call": call_id, "file": base64::engine::general_purpose::STANDARD.encode(FIXTURE) }),
        )
        .await["importDemands"]
        .clone();
    let created = imported["created"].as_array().unwrap();
    assert_eq!(created.len(), 6, "{imported:#}");
    assert_eq!(imported["skippedRows"], json!([6, 9, 12, 13, 15, 16]));
    assert_eq!(imported["submitter"], "广州市市场监督管理局");
    assert!(created.iter().all(|d| d["state"]["id"] == "drafting"));
    assert!(
        created
            .iter()
            .all(|d| d["data"]["call_id"] == call_id.as_str())
    );
    assert!(
        created
            .iter()
            .all(|d| d["data"]["closing_date"] == "2024-06-28")
    );
    let nansha = created
        .iter()
        .find(|d| d["title"] == "南沙自贸区知识产权纠纷快速处理机制建设")
        .unwrap();
    assert_eq!(nansha["data"]["budget"], "300000.00", "30 万元");
    assert_eq!(
        nansha["data"]["category"],
        "一、知识产权“放管服”改革和区域布局"
    );
    let nansha_id = nansha["id"].as_str().unwrap().to_string();

    // The unit submits them as filled in; the comments-only row has no budget to submit.
    let ids: Vec<&str> = created.iter().map(|d| d["id"].as_str().unwrap()).collect();
    let submitted = app
        .ok(
            Some(&unit_gz),
            "mutation($ids: [ID!]!) { submitDemands(instanceIds: $ids) { id submitted errorCode } }",
            json!({ "ids": ids }),
        )
        .await["submitDemands"]
        .clone();
    let ok: Vec<&Value> = submitted
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["submitted"] == true)
        .collect();
    // Every row goes to the city, the comments-only row as feedback on its item (issue 12).
    assert_eq!(ok.len(), 6, "{submitted:#}");

    // ---- Shenzhen: a unit fills in one demand by hand, much like Nansha's.
    let sz = app
        .ok(
            Some(&unit_sz),
            r#"mutation($input: CreateInstanceInput!) { createInstance(input: $input) { id } }"#,
            json!({ "input": {
                "workflowId": "demand-collection",
                "title": "前海自贸区知识产权纠纷快速处理机制建设",
                "callId": call_id
            }}),
        )
        .await["createInstance"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    fire(
        &app,
        &unit_sz,
        &sz,
        "submit",
        json!({
            "category": "一、知识产权“放管服”改革和区域布局",
            "policy_area": "知识产权综合改革试验和自贸试验区知识产权工作",
            "project_name": "前海自贸区知识产权纠纷快速处理机制建设",
            "direction": "建立自贸区知识产权纠纷快速处理机制，设立调解工作站",
            "applicant_name": "深圳市前海管理局",
            "budget": "350000",
            "performance": "设立调解工作站2个，调解纠纷60件"
        }),
    )
    .await;

    // ---- each city bureau forwards its own units' demands; the other city's are hidden.
    let hidden = app
        .gql(
            Some(&city_sz),
            "query($id: ID!) { instance(id: $id) { id } }",
            json!({ "id": nansha_id }),
        )
        .await;
    assert_eq!(error_code(&hidden), "NOT_FOUND");
    for r in &ok {
        let id = r["id"].as_str().unwrap();
        fire(
            &app,
            &city_gz,
            id,
            "forward",
            json!({ "city_notes": "已统筹" }),
        )
        .await;
    }
    fire(
        &app,
        &city_sz,
        &sz,
        "forward",
        json!({ "city_notes": "已统筹" }),
    )
    .await;

    // ---- the province consolidates: the two free-trade-zone demands are flagged.
    let candidates = app
        .ok(
            Some(&manager),
            r#"query($call: ID!) { duplicateCandidates(callId: $call) {
                first { id } second { id } similarity { overall name useOfFunds } reasons } }"#,
            json!({ "call": call_id }),
        )
        .await["duplicateCandidates"]
        .clone();
    let pair = candidates
        .as_array()
        .unwrap()
        .iter()
        .find(|c| {
            let ids = [c["first"]["id"].as_str(), c["second"]["id"].as_str()];
            ids.contains(&Some(nansha_id.as_str())) && ids.contains(&Some(sz.as_str()))
        })
        .unwrap_or_else(|| panic!("the pair is flagged: {candidates:#}"));
    assert!(pair["similarity"]["overall"].as_f64().unwrap() >= 0.6);
    assert!(
        pair["reasons"]
            .as_array()
            .unwrap()
            .contains(&json!("SIMILAR_USE_OF_FUNDS"))
    );
    // A city bureau sees candidates among its own demands only; an applicant none.
    let city_view = app
        .ok(
            Some(&city_sz),
            "query($call: ID!) { duplicateCandidates(callId: $call) { first { id } } }",
            json!({ "call": call_id }),
        )
        .await;
    assert_eq!(city_view["duplicateCandidates"], json!([]));
    let refused = app
        .gql(
            Some(&unit_gz),
            "query($call: ID!) { duplicateCandidates(callId: $call) { first { id } } }",
            json!({ "call": call_id }),
        )
        .await;
    assert_eq!(error_code(&refused), "FORBIDDEN");

    let merged = app
        .ok(
            Some(&manager),
            r#"mutation($kept: ID!, $dup: ID!) { mergeDemands(keptId: $kept, duplicateId: $dup) {
                merge { keptId mergedId similarity keptSource mergedSource }
                kept { state { id } } duplicate { state { id } data history { event reason } } } }"#,
            json!({ "kept": nansha_id, "dup": sz }),
        )
        .await["mergeDemands"]
        .clone();
    assert_eq!(merged["duplicate"]["state"]["id"], "rejected_duplicate");
    assert_eq!(
        merged["duplicate"]["data"]["duplicate_of"],
        nansha_id.as_str()
    );
    assert_eq!(merged["kept"]["state"]["id"], "province_review");
    assert_eq!(
        merged["merge"]["keptSource"]["organisation"],
        "广州知识产权服务中心"
    );
    assert_eq!(
        merged["merge"]["mergedSource"]["organisation"],
        "深圳专利运营有限公司"
    );
    assert_eq!(
        merged["merge"]["mergedSource"]["demand"]["budget"],
        "350000.00"
    );
    let last = merged["duplicate"]["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["event"], "reject_duplicate");
    assert!(last["reason"].as_str().unwrap().contains("南沙自贸区"));
    fire(
        &app,
        &manager,
        &nansha_id,
        "merge_into_catalogue",
        json!({ "catalogue_item": "2022-1-2-2" }),
    )
    .await;

    // The consolidated table: the kept demand carries both sources.
    let csv = app
        .ok(
            Some(&manager),
            "query($call: ID!) { exportDemands(callId: $call, format: CSV) { fileName mediaType contentBase64 } }",
            json!({ "call": call_id }),
        )
        .await["exportDemands"]
        .clone();
    assert_eq!(csv["mediaType"], "text/csv; charset=utf-8");
    let text = String::from_utf8(decode(&csv)).unwrap();
    let row = text
        .lines()
        .find(|l| l.contains("南沙自贸区"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        row.contains("广州知识产权服务中心、深圳专利运营有限公司") && row.contains(",2,650000.00"),
        "{row}"
    );
    assert!(
        !text.contains("前海自贸区知识产权纠纷快速处理机制建设,"),
        "the duplicate is merged, not listed"
    );
    let xlsx = app
        .ok(
            Some(&manager),
            "query($call: ID!) { exportDemands(callId: $call, format: XLSX) { fileName size contentBase64 } }",
            json!({ "call": call_id }),
        )
        .await["exportDemands"]
        .clone();
    assert!(decode(&xlsx).starts_with(b"PK"), "an XLSX (zip) file");
    assert_eq!(xlsx["fileName"], "2022年需求汇总表.xlsx");

    // The table honours visibility: a city bureau and a unit see their own demands only,
    // without the other city's merged source; the other city sees none of Guangzhou's
    // (its own demand was merged away); an expert sees no demand at all.
    let expert = app.session_token("expert1").await;
    for token in [&city_gz, &unit_gz] {
        let text = export_csv(&app, token, "exportDemands", &call_id).await;
        let row = text
            .lines()
            .find(|l| l.contains("南沙自贸区"))
            .unwrap_or_else(|| panic!("{text}"));
        assert!(row.contains(",1,300000.00"), "{row}");
        assert!(!text.contains("深圳") && !text.contains("前海"), "{text}");
    }
    for token in [&city_sz, &unit_sz, &expert] {
        let text = export_csv(&app, token, "exportDemands", &call_id).await;
        assert!(
            !text.contains("南沙") && !text.contains("广州知识产权服务中心"),
            "{text}"
        );
        assert!(
            !text.contains("前海自贸区知识产权纠纷快速处理机制建设,"),
            "{text}"
        );
    }

    // ---- an application for the call.
    let project = app
        .ok(
            Some(&unit_gz),
            r#"mutation($input: CreateInstanceInput!) { createInstance(input: $input) { id } }"#,
            json!({ "input": {
                "workflowId": "funded-project",
                "title": "南沙自贸区知识产权纠纷快速处理机制建设",
                "callId": call_id,
                "catalogueItem": "2022-2-1-5"
            }}),
        )
        .await["createInstance"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The catalogue item was named at creation (a 保留省级 item a unit may apply for).
    fire(&app, &unit_gz, &project, "submit", json!({
        "project_name": "南沙自贸区知识产权纠纷快速处理机制建设",
        "budget": "300000",
        "indicators": [
            { "id": "cases", "category": "output_quantity", "name": "调解纠纷案件数", "unit": "件", "target": 200, "direction": "higher_is_better", "weight": 1 },
            { "id": "firms", "category": "effect_social", "name": "服务企业数", "unit": "家", "target": 100, "direction": "higher_is_better", "weight": 1 },
            { "id": "satisfaction", "category": "satisfaction", "name": "企业满意度", "unit": "分", "target": 90, "direction": "higher_is_better", "weight": 1 }
        ],
        "application_files": [file("申报书.pdf")]
    }))
    .await;
    fire(
        &app,
        &city_gz,
        &project,
        "recommend",
        json!({ "city_opinion": "同意推荐" }),
    )
    .await;
    fire(&app, &manager, &project, "pass_formal_check", json!({})).await;
    // Expert review as the users do it: the manager seats three experts, each declares
    // no conflict and scores 84.
    let panel = ["expert1", "expert2", "expert3"];
    for name in panel {
        app.ok(
            Some(&manager),
            "mutation($id: ID!) { upsertExpertProfile(input: { userId: $id, categories: [1, 2, 3, 4, 5, 6, 7, 8], workloadCap: 5 }) { status } }",
            json!({ "id": app.user(name).id.to_string() }),
        )
        .await;
    }
    let experts: Vec<String> = panel
        .iter()
        .map(|name| app.user(name).id.to_string())
        .collect();
    app.ok(
        Some(&manager),
        "mutation($id: ID!, $e: [ID!]!) { assignReviewers(instanceId: $id, expertIds: $e) { id } }",
        json!({ "id": project, "e": experts }),
    )
    .await;
    for name in panel {
        let token = app.session_token(name).await;
        let queue = app
            .ok(Some(&token), "{ myReviews { id } }", json!({}))
            .await;
        let assignment = queue["myReviews"][0]["id"].clone();
        app.ok(
            Some(&token),
            "mutation($a: ID!) { declareNoConflict(assignmentId: $a) { state } }",
            json!({ "a": assignment }),
        )
        .await;
        let scores: Vec<Value> = ["necessity", "feasibility", "performance_targets", "budget"]
            .iter()
            .map(|c| json!({ "criterion": c, "score": 84 }))
            .collect();
        let submitted = app
            .ok(
                Some(&token),
                "mutation($a: ID!, $s: [ScoreInput!]!) { submitScores(assignmentId: $a, scores: $s) { total } }",
                json!({ "a": assignment, "s": scores }),
            )
            .await;
        assert_eq!(submitted["submitScores"]["total"], 84.0);
    }
    fire(&app, &manager, &project, "conclude_review", json!({})).await;

    // ---- approval needs a budget line (先有项目后有预算).
    let approve = json!({ "approved_budget": "300000", "targets_approved": true });
    let v = version(&app, &manager, &project).await;
    let early = app
        .gql(
            Some(&manager),
            TRANSITION,
            json!({ "id": project, "event": "approve", "v": v, "input": approve }),
        )
        .await;
    assert_eq!(error_code(&early), "GUARD_FAILED");
    let line = app
        .ok(
            Some(&manager),
            r#"mutation($id: ID!) { addBudgetLine(instanceId: $id, input: { year: 2024, subject: "调解工作站建设", amount: "300000" }) { id amount remaining source } }"#,
            json!({ "id": project }),
        )
        .await["addBudgetLine"]
        .clone();
    assert_eq!(line["source"], "省级财政专项资金");
    let line_id = line["id"].as_str().unwrap().to_string();
    // No spending before approval (先有预算再有执行).
    let before = app
        .gql(
            Some(&unit_gz),
            SPEND,
            json!({ "id": project, "input": { "lineId": line_id, "amount": "1000", "spentOn": "2024-06-04" } }),
        )
        .await;
    assert_eq!(error_code(&before), "INVALID_INPUT");
    assert_eq!(
        before["errors"][0]["extensions"]["details"]["reason"],
        "NOT_APPROVED"
    );
    let approved = fire(&app, &manager, &project, "approve", approve).await;
    assert_eq!(approved["state"]["id"], "publicity");
    assert_eq!(approved["data"]["approved_on"], "2024-06-03");
    assert_eq!(
        approved["data"]["approved_indicators"]
            .as_array()
            .unwrap()
            .len(),
        3,
        "the targets are frozen at approval"
    );

    // ---- spending: refused without a line and beyond it; recorded within it.
    let no_line = app
        .gql(
            Some(&unit_gz),
            SPEND,
            json!({ "id": project, "input": { "amount": "1000", "spentOn": "2024-06-10" } }),
        )
        .await;
    assert_eq!(
        no_line["errors"][0]["extensions"]["details"]["reason"],
        "BUDGET_LINE_MISSING"
    );
    // During 公示 the task book is not signed: no spending yet.
    let unsigned = app
        .gql(
            Some(&unit_gz),
            SPEND,
            json!({ "id": project, "input": { "lineId": line_id, "amount": "1000", "spentOn": "2024-06-10" } }),
        )
        .await;
    assert_eq!(
        unsigned["errors"][0]["extensions"]["details"]["reason"],
        "TASK_BOOK_NOT_SIGNED"
    );
    fire(&app, &manager, &project, "publicity_ended", json!({})).await;
    fire(&app, &unit_gz, &project, "submit_task_book", json!({
        "task_book": file("任务书.pdf"), "milestones": "9月中期检查，12月验收", "execution_end": "2024-12-31",
        "tasks": [{ "focus": "知识产权保护", "task": "开展维权援助", "deliverable_form": "工作报告", "department": "项目组", "due": "2024-12-31" }], "report_schedule": "quarterly"
    }))
    .await;
    fire(&app, &manager, &project, "sign_task_book", json!({})).await;
    // The money is disbursed (拨付) before it is spent.
    app.ok(
        Some(&manager),
        r#"mutation($id: ID!) { recordDisbursement(instanceId: $id, input: { batch: "第一批", paidOn: "2024-06-20", amount: "300000", voucher: "粤财拨-2024-001" }) { id } }"#,
        json!({ "id": project }),
    )
    .await;
    let over = app
        .gql(
            Some(&unit_gz),
            SPEND,
            json!({ "id": project, "input": { "lineId": line_id, "amount": "300000.01", "spentOn": "2024-06-10" } }),
        )
        .await;
    let details = &over["errors"][0]["extensions"]["details"];
    assert_eq!(details["reason"], "BUDGET_EXCEEDED");
    assert_eq!(details["remaining"], "300000.00");
    for (amount, on) in [("120000", "2024-06-20"), ("100000", "2024-09-15")] {
        let s = app
            .ok(
                Some(&unit_gz),
                SPEND,
                json!({ "id": project, "input": { "lineId": line_id, "amount": amount, "spentOn": on, "description": "调解工作站运营" } }),
            )
            .await;
        assert_eq!(s["recordSpending"]["lineId"], line_id.as_str());
    }
    assert_eq!(state(&app, &manager, &project).await, "execution");
    crate::task_book::progress_over_http(&app, &unit_gz, &manager, &project).await;
    app.ok(
        Some(&manager),
        SPEND,
        json!({ "id": project, "input": { "lineId": line_id, "amount": "50000", "spentOn": "2024-11-30" } }),
    )
    .await;
    let budget = app
        .ok(
            Some(&unit_gz),
            "query($id: ID!) { budget(instanceId: $id) { budgeted spent remaining executionRate lines { remaining } spending { amount } } }",
            json!({ "id": project }),
        )
        .await["budget"]
        .clone();
    assert_eq!(budget["budgeted"], "300000.00");
    assert_eq!(budget["spent"], "270000.00");
    assert_eq!(budget["lines"][0]["remaining"], "30000.00");
    assert_eq!(budget["executionRate"], 0.9);
    assert_eq!(budget["spending"].as_array().unwrap().len(), 3);

    // Mid-term actuals are recorded against the frozen targets.
    app.ok(
        Some(&unit_gz),
        r#"mutation($id: ID!) { recordIndicatorActuals(instanceId: $id, checkpoint: MID_TERM, actuals: [
            { indicatorId: "cases", value: 90 }, { indicatorId: "firms", value: 40 } ]) { indicatorId checkpoint } }"#,
        json!({ "id": project }),
    )
    .await;

    // ---- acceptance and self-evaluation.
    fire(&app, &unit_gz, &project, "submit_final_report", json!({
        "acceptance_report": file("验收报告.pdf"),
        "financial_statement": file("财务决算表.xlsx"),
        "indicator_actuals": [
            { "id": "cases", "category": "output_quantity", "name": "调解纠纷案件数", "unit": "件", "target": 200, "actual": 180, "direction": "higher_is_better", "weight": 1 },
            { "id": "firms", "category": "effect_social", "name": "服务企业数", "unit": "家", "target": 100, "actual": 80, "direction": "higher_is_better", "weight": 1 },
            { "id": "satisfaction", "category": "satisfaction", "name": "企业满意度", "unit": "分", "target": 90, "actual": 85, "direction": "higher_is_better", "weight": 1 }
        ]
    }))
    .await;
    fire(
        &app,
        &manager,
        &project,
        "conclude_acceptance",
        json!({ "acceptance_outcome": "pass" }),
    )
    .await;
    fire(
        &app,
        &unit_gz,
        &project,
        "submit_self_evaluation",
        json!({
            "self_evaluation_report": file("自评报告.pdf"), "self_evaluation_score": 88
        }),
    )
    .await;

    // ---- the evaluation: 9 (90 % executed) + 45 (180/200 of 50) + 24 (80/100 of 30)
    // + 9.44 (85/90 of 10) = 87.44, 良.
    let preview = app
        .ok(
            Some(&manager),
            "query($id: ID!) { evaluationPreview(instanceId: $id) { total grade } }",
            json!({ "id": project }),
        )
        .await;
    assert_eq!(
        preview["evaluationPreview"],
        json!({ "total": 87.44, "grade": "良" })
    );
    let evaluated = app
        .ok(
            Some(&manager),
            r#"mutation($id: ID!) { evaluateProject(instanceId: $id) {
                evaluation { score { total grade executionRate parts { part points } indicators { indicatorId points } } }
                instance { state { id } data } } }"#,
            json!({ "id": project }),
        )
        .await["evaluateProject"]
        .clone();
    assert_eq!(evaluated["evaluation"]["score"]["total"], 87.44);
    assert_eq!(evaluated["evaluation"]["score"]["grade"], "良");
    assert_eq!(
        evaluated["evaluation"]["score"]["parts"],
        json!([
            { "part": "BUDGET_EXECUTION", "points": 9.0 },
            { "part": "OUTPUT", "points": 45.0 },
            { "part": "EFFECT", "points": 24.0 },
            { "part": "SATISFACTION", "points": 9.44 }
        ])
    );
    assert_eq!(evaluated["instance"]["state"]["id"], "graded");
    assert_eq!(evaluated["instance"]["data"]["evaluation_grade"], "良");
    assert_eq!(evaluated["instance"]["data"]["evaluation_score"], 87);

    // ---- the call at a glance, and the results as files.
    let summary = app
        .ok(
            Some(&manager),
            r#"query($call: ID!) { callSummary(callId: $call) {
                demands projects evaluated averageTotal grades { excellent good fair poor }
                budgetExecution { budgeted spent executionRate projects { executionRate } } } }"#,
            json!({ "call": call_id }),
        )
        .await["callSummary"]
        .clone();
    assert_eq!(summary["demands"], 7);
    assert_eq!(summary["projects"], 1);
    assert_eq!(summary["evaluated"], 1);
    assert_eq!(
        summary["grades"],
        json!({ "excellent": 0, "good": 1, "fair": 0, "poor": 0 })
    );
    assert_eq!(summary["averageTotal"], 87.44);
    assert_eq!(summary["budgetExecution"]["spent"], "270000.00");
    assert_eq!(summary["budgetExecution"]["executionRate"], 0.9);
    let results = app
        .ok(
            Some(&manager),
            "query($call: ID!) { exportEvaluations(callId: $call, format: CSV) { contentBase64 } }",
            json!({ "call": call_id }),
        )
        .await;
    let text = String::from_utf8(decode(&results["exportEvaluations"])).unwrap();
    assert!(
        text.contains("87.44") && text.contains("良") && text.contains("90.00%"),
        "{text}"
    );
    // Evaluations honour visibility too: the unit and its city see the result, the other
    // city, its unit and an expert (whose review round is over) do not.
    for token in [&unit_gz, &city_gz] {
        let text = export_csv(&app, token, "exportEvaluations", &call_id).await;
        assert!(text.contains("87.44"), "{text}");
    }
    let expert = app.session_token("expert1").await;
    for token in [&city_sz, &unit_sz, &expert] {
        let text = export_csv(&app, token, "exportEvaluations", &call_id).await;
        assert!(!text.contains("87.44") && !text.contains("南沙"), "{text}");
    }
    fire(&app, &manager, &project, "archive", json!({})).await;
    assert_eq!(state(&app, &manager, &project).await, "archived");
    let report = grantflow_store::audit::verify_all(app.services.store.as_ref())
        .await
        .unwrap();
    assert!(report.is_ok(), "{report:?}");
}
