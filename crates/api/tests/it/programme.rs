//! The programme API (import and budgets on SQLite and PostgreSQL): a 需求征集表 with errors (every bad row named by row and
//! column, nothing imported; with GOOD_ROWS_ONLY only the good rows), who may import for
//! which unit, budget refusals (no line, beyond the line, before approval, another year,
//! before the approval date) with their reason codes, the execution rate, visibility of
//! budgets per role and organisation, and exports limited to what the viewer sees.

use crate::support;

use base64::Engine;
use grantflow_programme::export::{Cell, Column, ColumnKind, Sheet, write_xlsx};
use grantflow_service::CreateInstance;
use serde_json::{Value, json};
use support::{Backend, TestApp, error_code, spawn_app};
use uuid::Uuid;

const CATALOGUE_2022: &str = include_str!("../../../../workflows/calls/2022.toml");

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

async fn open_call(app: &TestApp, manager: &str) -> String {
    app.ok(
        Some(manager),
        r#"mutation($input: OpenCallInput!) { openCall(input: $input) { id } }"#,
        json!({ "input": { "catalogueToml": CATALOGUE_2022, "closingDate": "2024-06-28" } }),
    )
    .await["openCall"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A form with two good rows (2 and 5), a budget that is not an amount (row 3, column F)
/// and a category that does not exist (row 4, column A).
fn form_with_errors() -> Vec<u8> {
    let headers = [
        "大类",
        "重点政策或工作",
        "项目名称",
        "项目方向",
        "申报（工作）主体",
        "经费预算（元）",
        "项目绩效",
        "意见建议",
    ];
    let row = |cells: [&str; 8]| -> Vec<Cell> {
        cells
            .iter()
            .map(|c| {
                if c.is_empty() {
                    Cell::Empty
                } else {
                    Cell::Text(c.to_string())
                }
            })
            .collect()
    };
    let sheet = Sheet {
        name: "需求征集表".into(),
        title: None,
        columns: headers
            .iter()
            .map(|h| Column::new(*h, ColumnKind::Text))
            .collect(),
        rows: vec![
            row([
                "三、强化知识产权保护",
                "强化知识产权保护",
                "跨境电商知识产权保护指引",
                "编制跨境电商知识产权保护指引并开展培训",
                "深圳专利运营有限公司",
                "300000",
                "发布指引1份，培训企业200家",
                "",
            ]),
            row([
                "三、强化知识产权保护",
                "强化知识产权保护",
                "海外展会维权援助",
                "组织企业参加海外展会维权培训",
                "深圳专利运营有限公司",
                "约12万",
                "培训企业50家",
                "",
            ]),
            row([
                "九、其他",
                "",
                "某项目",
                "某方向",
                "深圳专利运营有限公司",
                "10000",
                "完成1项",
                "",
            ]),
            row([
                "八、知识产权文化传播",
                "",
                "知识产权宣传周活动",
                "举办宣传周系列活动",
                "深圳专利运营有限公司",
                "50000",
                "举办活动5场",
                "",
            ]),
        ],
    };
    write_xlsx(&[sheet]).unwrap()
}

const IMPORT: &str = r#"
mutation($call: ID!, $file: String!, $mode: ImportMode!, $org: ID) {
  importDemands(callId: $call, fileBase64: $file, mode: $mode, organisationId: $org) {
    created { id title organisation { name } } errors { row column header code messageZh } rejectedRows
  }
}"#;

async fn demands_of(app: &TestApp, token: &str) -> i64 {
    app.ok(
        Some(token),
        r#"{ instances(filter: { workflowId: "demand-collection" }) { totalCount } }"#,
        json!({}),
    )
    .await["instances"]["totalCount"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn an_import_with_errors_names_each_row_and_column_and_imports_nothing_or_the_good_rows_on_sqlite()
 {
    an_import_with_errors_names_each_row_and_column_and_imports_nothing_or_the_good_rows(
        Backend::Sqlite,
    )
    .await;
}

#[tokio::test]
async fn an_import_with_errors_names_each_row_and_column_and_imports_nothing_or_the_good_rows_on_postgres()
 {
    an_import_with_errors_names_each_row_and_column_and_imports_nothing_or_the_good_rows(
        Backend::Postgres,
    )
    .await;
}

async fn an_import_with_errors_names_each_row_and_column_and_imports_nothing_or_the_good_rows(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let manager = app.session_token("manager").await;
    let unit = app.session_token("applicant_b").await;
    let call = open_call(&app, &manager).await;
    let file = b64(&form_with_errors());

    let refused = app
        .gql(
            Some(&unit),
            IMPORT,
            json!({ "call": call, "file": file, "mode": "ALL_OR_NOTHING" }),
        )
        .await;
    assert_eq!(error_code(&refused), "INVALID_INPUT");
    let details = &refused["errors"][0]["extensions"]["details"];
    assert_eq!(details["reason"], "IMPORT_REJECTED");
    assert_eq!(details["rejectedRows"], json!([3, 4]));
    let rows = details["rows"].as_array().unwrap();
    let named: Vec<(u64, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                r["row"].as_u64().unwrap(),
                r["column"].as_str().unwrap(),
                r["code"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        named,
        [
            (3, "F", "IMPORT_NOT_AN_AMOUNT"),
            (4, "A", "IMPORT_UNKNOWN_CATEGORY")
        ]
    );
    assert_eq!(
        rows[0]["messageZh"],
        "第3行 F列「经费预算（元）」：\"约12万\" 不是金额"
    );
    assert!(
        refused["errors"][0]["extensions"]["messageZh"]
            .as_str()
            .unwrap()
            .contains("未导入任何数据")
    );
    assert_eq!(demands_of(&app, &manager).await, 0, "nothing half-imported");

    let partial = app
        .ok(
            Some(&unit),
            IMPORT,
            json!({ "call": call, "file": file, "mode": "GOOD_ROWS_ONLY" }),
        )
        .await["importDemands"]
        .clone();
    let titles: Vec<&str> = partial["created"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["跨境电商知识产权保护指引", "知识产权宣传周活动"]);
    assert_eq!(
        partial["created"][0]["organisation"]["name"],
        "深圳专利运营有限公司"
    );
    assert_eq!(partial["rejectedRows"], json!([3, 4]));
    assert_eq!(partial["errors"][1]["header"], "大类");
    assert_eq!(demands_of(&app, &manager).await, 2);

    // Not a workbook at all.
    let junk = app
        .gql(
            Some(&unit),
            IMPORT,
            json!({ "call": call, "file": b64(b"not a spreadsheet"), "mode": "ALL_OR_NOTHING" }),
        )
        .await;
    assert_eq!(
        junk["errors"][0]["extensions"]["details"]["reason"],
        "IMPORT_FAILED"
    );
    let bad64 = app
        .gql(
            Some(&unit),
            IMPORT,
            json!({ "call": call, "file": "***", "mode": "ALL_OR_NOTHING" }),
        )
        .await;
    assert_eq!(error_code(&bad64), "INVALID_INPUT");
}

#[tokio::test]
async fn who_may_import_for_which_unit() {
    let app = spawn_app(Backend::Sqlite).await;
    let manager = app.session_token("manager").await;
    let call = open_call(&app, &manager).await;
    let file = b64(&form_with_errors());
    let unit_a = app.seed.unit_a.id.to_string();
    let unit_b = app.seed.unit_b.id.to_string();
    let import = |token: String, org: Option<String>| {
        let app = &app;
        let call = call.clone();
        let file = file.clone();
        async move {
            app.gql(
                Some(&token),
                IMPORT,
                json!({ "call": call, "file": file, "mode": "GOOD_ROWS_ONLY", "org": org }),
            )
            .await
        }
    };
    // An applicant imports for its own unit only.
    let other = import(app.session_token("applicant_a").await, Some(unit_b.clone())).await;
    assert_eq!(error_code(&other), "FORBIDDEN");
    // A city bureau for the units of its city, not another city's.
    let own_city = import(app.session_token("city_sz").await, Some(unit_b.clone())).await;
    assert!(own_city.get("errors").is_none(), "{own_city:#}");
    let other_city = import(app.session_token("city_sz").await, Some(unit_a.clone())).await;
    assert_eq!(error_code(&other_city), "FORBIDDEN");
    // Experts and auditors import nothing; a manager names the unit.
    let expert = import(app.session_token("expert1").await, Some(unit_a.clone())).await;
    assert_eq!(error_code(&expert), "FORBIDDEN");
    let unnamed = import(manager.clone(), None).await;
    assert_eq!(error_code(&unnamed), "INVALID_INPUT");
    let by_manager = import(manager.clone(), Some(unit_a)).await;
    assert!(by_manager.get("errors").is_none(), "{by_manager:#}");
    // Only managers open calls.
    let refused = app
        .gql(
            Some(&app.session_token("city_gz").await),
            r#"mutation($input: OpenCallInput!) { openCall(input: $input) { id } }"#,
            json!({ "input": { "catalogueToml": CATALOGUE_2022, "closingDate": "2024-06-28" } }),
        )
        .await;
    assert_eq!(error_code(&refused), "FORBIDDEN");
    // A call from rows, and a bad catalogue.
    let rows = app
        .ok(
            Some(&manager),
            r#"mutation($input: OpenCallInput!) { openCall(input: $input) { year title categories { label policyAreas { items { id part partTitle } } } } }"#,
            json!({ "input": { "year": 2025, "closingDate": "2024-07-31", "categories": [
                { "category": "四、知识产权运用", "policyAreas": [{ "name": "知识产权转化", "items": [
                    { "id": "2025-4-1-1", "name": "专利转化专项", "direction": "推动高校专利转化", "part": "POST_SUBSIDY" }
                ] }] }
            ] } }),
        )
        .await["openCall"]
        .clone();
    assert_eq!(rows["title"], "2025年广东省强化知识产权工作项目需求征集");
    assert_eq!(rows["categories"][0]["label"], "四、知识产权运用");
    assert_eq!(
        rows["categories"][0]["policyAreas"][0]["items"][0]["partTitle"],
        "后补助"
    );
    let bad = app
        .gql(
            Some(&manager),
            r#"mutation($input: OpenCallInput!) { openCall(input: $input) { id } }"#,
            json!({ "input": { "catalogueToml": "year = 2025\ntitle = \"t\"\ncategories = []\nextra = 1" } }),
        )
        .await;
    assert_eq!(
        bad["errors"][0]["extensions"]["details"]["reason"],
        "CATALOGUE_FORMAT"
    );
}

/// A project of applicant_a's unit waiting for the funding decision.
async fn project_in_decision(app: &TestApp) -> Uuid {
    let p = app
        .services
        .create_instance(
            app.user("applicant_a"),
            CreateInstance {
                workflow_id: "funded-project".into(),
                org_id: None,
                parent_id: None,
                title: "广州知识产权纠纷调解能力提升".into(),
                data: json!({}),
                call_id: Some(app.call_id().await),
                catalogue_item: Some(support::TEST_ITEM.into()),
            },
        )
        .await
        .unwrap();
    app.fire("applicant_a",
        p.id,
        "submit",
        json!({
            "project_name": "广州知识产权纠纷调解能力提升", "budget": "300000",
            "indicators": [{ "category": "output_quantity", "name": "调解案件数", "target": 200 }, { "name": "受益单位", "category": "effect_social", "unit": "家", "target": 20 }],
            "application_files": [{ "name": "申报书.pdf", "sha256": "e".repeat(64), "size": 10 }]
        }),
    )
    .await;
    app.fire("city_gz", p.id, "recommend", json!({})).await;
    app.fire("manager", p.id, "pass_formal_check", json!({}))
        .await;
    app.services
        .store
        .set_review_result(p.id, json!({ "total": 75.0, "count": 3 }))
        .await
        .unwrap();
    app.fire("manager", p.id, "conclude_review", json!({}))
        .await;
    p.id
}

const ADD_LINE: &str = r#"
mutation($id: ID!, $year: Int!, $amount: String!) {
  addBudgetLine(instanceId: $id, input: { year: $year, subject: "调解员培训", amount: $amount }) { id amount remaining }
}"#;

const SPEND: &str = r#"
mutation($id: ID!, $input: SpendingInput!) {
  recordSpending(instanceId: $id, input: $input) { id amount }
}"#;

fn reason(body: &Value) -> &str {
    body["errors"][0]["extensions"]["details"]["reason"]
        .as_str()
        .unwrap_or("<none>")
}

#[tokio::test]
async fn budget_refusals_and_the_execution_rate_on_sqlite() {
    budget_refusals_and_the_execution_rate(Backend::Sqlite).await;
}

#[tokio::test]
async fn budget_refusals_and_the_execution_rate_on_postgres() {
    budget_refusals_and_the_execution_rate(Backend::Postgres).await;
}

async fn budget_refusals_and_the_execution_rate(backend: Backend) {
    let app = spawn_app(backend).await;
    let manager = app.session_token("manager").await;
    let unit = app.session_token("applicant_a").await;
    let other_unit = app.session_token("applicant_b").await;
    let own_city = app.session_token("city_gz").await;
    let other_city = app.session_token("city_sz").await;
    let id = project_in_decision(&app).await;
    let pid = id.to_string();

    // Budgets are set by managers.
    let by_unit = app
        .gql(
            Some(&unit),
            ADD_LINE,
            json!({ "id": pid, "year": 2024, "amount": "1000" }),
        )
        .await;
    assert_eq!(error_code(&by_unit), "FORBIDDEN");
    let not_money = app
        .gql(
            Some(&manager),
            ADD_LINE,
            json!({ "id": pid, "year": 2024, "amount": "三十万" }),
        )
        .await;
    assert_eq!(error_code(&not_money), "INVALID_INPUT");
    // Hostile input: amounts near i64::MAX overflowed; the largest amount is 10^12 yuan.
    for huge in ["92233720368547758.07", "1000000000000.01"] {
        let too_large = app
            .gql(
                Some(&manager),
                ADD_LINE,
                json!({ "id": pid, "year": 2024, "amount": huge }),
            )
            .await;
        assert_eq!(error_code(&too_large), "INVALID_INPUT", "{too_large}");
        assert_eq!(
            too_large["errors"][0]["extensions"]["details"]["fields"][0]["code"],
            "AMOUNT_TOO_LARGE"
        );
    }
    // A year beyond 32 bits is a coercion error, a client error.
    let big_year = app
        .gql(
            Some(&manager),
            ADD_LINE,
            json!({ "id": pid, "year": 2147483648i64, "amount": "1" }),
        )
        .await;
    assert_eq!(error_code(&big_year), "INVALID_INPUT", "{big_year}");
    // Dates outside 1900-01-01..2200-12-31 are refused before anything is stored.
    for day in ["2201-01-01", "-0001-12-31", "1899-12-31"] {
        let far = app
            .gql(
                Some(&manager),
                SPEND,
                json!({ "id": pid, "input": { "amount": "100", "spentOn": day } }),
            )
            .await;
        assert_eq!(error_code(&far), "INVALID_INPUT", "{far}");
    }

    // No line at all.
    let no_line = app
        .gql(
            Some(&unit),
            SPEND,
            json!({ "id": pid, "input": { "amount": "100", "spentOn": "2024-06-10" } }),
        )
        .await;
    assert_eq!(error_code(&no_line), "INVALID_INPUT");
    assert_eq!(reason(&no_line), "BUDGET_LINE_MISSING");

    let line = app
        .ok(
            Some(&manager),
            ADD_LINE,
            json!({ "id": pid, "year": 2024, "amount": "200000" }),
        )
        .await["addBudgetLine"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let next_year = app
        .ok(
            Some(&manager),
            ADD_LINE,
            json!({ "id": pid, "year": 2025, "amount": "100000" }),
        )
        .await["addBudgetLine"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let spend = |token: &str, line: &str, amount: &str, on: &str| {
        let app = &app;
        let body =
            json!({ "id": pid, "input": { "lineId": line, "amount": amount, "spentOn": on } });
        let token = token.to_string();
        async move { app.gql(Some(&token), SPEND, body).await }
    };

    // Before approval.
    let early = spend(&unit, &line, "100", "2024-06-10").await;
    assert_eq!(reason(&early), "NOT_APPROVED");
    assert!(
        early["errors"][0]["extensions"]["messageZh"]
            .as_str()
            .unwrap()
            .contains("尚未立项")
    );
    app.fire(
        "manager",
        id,
        "approve",
        json!({ "approved_budget": "300000", "targets_approved": true }),
    )
    .await;
    // During 公示 the task book is not signed: nothing may be spent yet.
    let unsigned = spend(&unit, &line, "1", "2024-06-10").await;
    assert_eq!(reason(&unsigned), "TASK_BOOK_NOT_SIGNED");
    app.fire("manager", id, "publicity_ended", json!({})).await;
    app.fire("applicant_a",
        id,
        "submit_task_book",
        json!({
            "task_book": { "name": "任务书.pdf", "sha256": "e".repeat(64), "size": 10 },
            "milestones": "年底验收", "execution_end": "2024-12-31",
            "tasks": [{ "focus": "知识产权保护", "task": "开展维权援助", "deliverable_form": "工作报告", "department": "项目组", "due": "2024-12-31" }], "report_schedule": "quarterly"
        }),
    )
    .await;
    app.fire("manager", id, "sign_task_book", json!({})).await;
    // Signed, but nothing disbursed (拨付) yet.
    let undisbursed = spend(&unit, &line, "1", "2024-06-10").await;
    assert_eq!(reason(&undisbursed), "SPENDING_BEYOND_DISBURSED");
    let paid = app
        .ok(
            Some(&manager),
            r#"mutation($id: ID!) { recordDisbursement(instanceId: $id, input: { batch: "第一批", paidOn: "2024-06-05", amount: "300000", voucher: "粤财拨-2024-001" }) { amount } }"#,
            json!({ "id": pid }),
        )
        .await;
    assert_eq!(paid["recordDisbursement"]["amount"], "300000.00");

    // Beyond the line, with what is left.
    let over = spend(&unit, &line, "200000.01", "2024-06-10").await;
    assert_eq!(reason(&over), "BUDGET_EXCEEDED");
    assert_eq!(
        over["errors"][0]["extensions"]["details"]["remaining"],
        "200000.00"
    );
    // Another project's line is no line of this one; dates before approval and other
    // years' lines are refused too.
    let foreign = spend(&unit, &Uuid::now_v7().to_string(), "1", "2024-06-10").await;
    assert_eq!(reason(&foreign), "BUDGET_LINE_MISSING");
    let backdated = spend(&unit, &line, "1", "2024-06-02").await;
    assert_eq!(reason(&backdated), "SPENDING_BEFORE_APPROVAL");
    let wrong_year = spend(&unit, &next_year, "1", "2024-06-10").await;
    assert_eq!(reason(&wrong_year), "BUDGET_LINE_WRONG_YEAR");
    let zero = spend(&unit, &line, "0", "2024-06-10").await;
    assert_eq!(error_code(&zero), "INVALID_INPUT");
    assert_eq!(
        zero["errors"][0]["extensions"]["details"]["fields"][0]["field"],
        "amount"
    );

    // Another unit and another city do not see the project; its own city does.
    for token in [&other_unit, &other_city] {
        let hidden = spend(token, &line, "1", "2024-06-10").await;
        assert_eq!(error_code(&hidden), "NOT_FOUND");
        let hidden = app
            .gql(
                Some(token),
                "query($id: ID!) { budget(instanceId: $id) { spent } }",
                json!({ "id": pid }),
            )
            .await;
        assert_eq!(error_code(&hidden), "NOT_FOUND");
    }
    let city_spends = spend(&own_city, &line, "1", "2024-06-10").await;
    assert_eq!(
        error_code(&city_spends),
        "FORBIDDEN",
        "city bureaus see, do not spend"
    );

    // Within the line: recorded, and the rate follows.
    for (amount, on) in [("150000", "2024-06-10"), ("50000", "2024-08-01")] {
        let ok = spend(&unit, &line, amount, on).await;
        assert!(ok.get("errors").is_none(), "{ok:#}");
    }
    let full = spend(&unit, &line, "0.01", "2024-08-02").await;
    assert_eq!(reason(&full), "BUDGET_EXCEEDED");
    let budget = app
        .ok(
            Some(&own_city),
            "query($id: ID!) { budget(instanceId: $id) { budgeted spent remaining executionRate lines { year remaining } } }",
            json!({ "id": pid }),
        )
        .await["budget"]
        .clone();
    assert_eq!(
        budget,
        json!({
            "budgeted": "300000.00", "spent": "200000.00", "remaining": "100000.00",
            "executionRate": 200000.0 / 300000.0,
            "lines": [{ "year": 2024, "remaining": "0.00" }, { "year": 2025, "remaining": "100000.00" }]
        })
    );
    // The guard facts follow every write.
    let facts = app.services.store.get_instance(id).await.unwrap().budget;
    assert_eq!(facts["lines"], 2);
    assert_eq!(facts["spent"], "200000.00");
}

#[tokio::test]
async fn exports_hold_only_what_the_viewer_sees() {
    let app = spawn_app(Backend::Sqlite).await;
    let manager = app.session_token("manager").await;
    for who in ["applicant_a", "applicant_b"] {
        app.create_instance(who, "funded-project", None, None, &format!("{who} 的项目"))
            .await;
    }
    let export = |token: String, format: &str| {
        let app = &app;
        let format = format.to_string();
        async move {
            let body = app
                .ok(
                    Some(&token),
                    r#"query($f: SpreadsheetFormat!) { exportInstances(filter: { workflowId: "funded-project" }, format: $f) { fileName mediaType contentBase64 } }"#,
                    json!({ "f": format }),
                )
                .await;
            body["exportInstances"].clone()
        }
    };
    let mine = export(app.session_token("applicant_b").await, "CSV").await;
    assert_eq!(mine["fileName"], "实例列表.csv");
    let text = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(mine["contentBase64"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    assert!(text.starts_with('\u{feff}'), "a BOM for Excel");
    assert!(text.contains("applicant_b 的项目") && text.contains("深圳专利运营有限公司"));
    assert!(!text.contains("applicant_a 的项目"), "{text}");
    assert_eq!(text.lines().count(), 2, "header and one row");
    let all = export(manager, "XLSX").await;
    assert_eq!(
        all["mediaType"],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    // Calls and summaries need a session; an unknown call is NOT_FOUND.
    let anonymous = app.gql(None, "{ calls { id } }", json!({})).await;
    assert_eq!(error_code(&anonymous), "UNAUTHENTICATED");
    let unknown = app
        .gql(
            Some(&app.session_token("auditor").await),
            "query($id: ID!) { callSummary(callId: $id) { evaluated } }",
            json!({ "id": Uuid::now_v7().to_string() }),
        )
        .await;
    assert_eq!(error_code(&unknown), "NOT_FOUND");
}
