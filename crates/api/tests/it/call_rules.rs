//! Issue 12 over GraphQL, on SQLite and PostgreSQL: feedback-only demand rows reach the
//! province's 汇总表; a "50" under a bare 经费预算 needs `amountUnit`; an application
//! without an effect indicator is refused at submit; a call's `[rules]` are read from
//! its TOML, stored, shown, and change the deadlines of its instances.

use crate::support;

use base64::Engine;
use grantflow_programme::export::{Cell, Column, ColumnKind, Sheet, write_xlsx};
use serde_json::{Value, json};
use support::{Backend, TestApp, error_code, spawn_app};

const CATALOGUE_2022: &str = include_str!("../../../../workflows/calls/2022.toml");

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn decode(file: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(file["contentBase64"].as_str().unwrap())
        .unwrap()
}

async fn open_call(app: &TestApp, manager: &str, rules: &str) -> String {
    let toml = format!("{CATALOGUE_2022}\n{rules}");
    app.ok(
        Some(manager),
        r#"mutation($input: OpenCallInput!) { openCall(input: $input) { id } }"#,
        json!({ "input": { "catalogueToml": toml, "closingDate": "2024-06-28" } }),
    )
    .await["openCall"]["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A 需求征集表 with the budget header `header` and the rows given (8 cells each).
fn form(header: &str, rows: &[[&str; 8]]) -> Vec<u8> {
    let headers = [
        "大类",
        "重点政策或工作",
        "项目名称",
        "项目方向",
        "申报（工作）主体",
        header,
        "项目绩效",
        "意见建议",
    ];
    let sheet = Sheet {
        name: "需求征集表".into(),
        title: None,
        columns: headers
            .iter()
            .map(|h| Column::new(*h, ColumnKind::Text))
            .collect(),
        rows: rows
            .iter()
            .map(|cells| {
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
            })
            .collect(),
    };
    write_xlsx(&[sheet]).unwrap()
}

const IMPORT: &str = r#"
mutation($call: ID!, $file: String!, $unit: AmountUnit) {
  importDemands(callId: $call, fileBase64: $file, amountUnit: $unit) { created { id title data } }
}"#;

use grantflow_testkit::on_both_backends;

on_both_backends!(
    a_feedback_only_row_travels_to_the_province_and_is_listed_as_feedback,
    a_bare_fifty_needs_the_amount_unit,
    an_application_without_an_effect_indicator_is_refused_at_submit,
    the_call_s_rules_are_stored_shown_and_set_the_deadlines,
    the_call_s_rubric_panel_aggregation_and_pass_mark_decide_the_review,
);

async fn a_feedback_only_row_travels_to_the_province_and_is_listed_as_feedback(backend: Backend) {
    let app = spawn_app(backend).await;
    let manager = app.session_token("manager").await;
    let unit = app.session_token("applicant_a").await;
    let city = app.session_token("city_gz").await;
    let call = open_call(&app, &manager, "").await;
    let file = form(
        "经费预算（万元）",
        &[
            // Feedback on catalogue item 14: no budget, no 绩效, only 意见建议.
            [
                "三、强化知识产权保护",
                "强化知识产权保护",
                "14.重点展会知识产权保护",
                "",
                "",
                "",
                "",
                "建议将申报主体扩大到县区局",
            ],
            // An offer to undertake the same item: budget and 绩效.
            [
                "三、强化知识产权保护",
                "强化知识产权保护",
                "14.重点展会知识产权保护",
                "",
                "",
                "30",
                "进驻重点展会10场，处理投诉50件",
                "",
            ],
        ],
    );
    let created = app
        .ok(
            Some(&unit),
            IMPORT,
            json!({ "call": call, "file": b64(&file) }),
        )
        .await["importDemands"]["created"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(created.len(), 2);
    let ids: Vec<&str> = created.iter().map(|c| c["id"].as_str().unwrap()).collect();
    let submitted = app
        .ok(
            Some(&unit),
            "mutation($ids: [ID!]!) { submitDemands(instanceIds: $ids) { id submitted errorCode } }",
            json!({ "ids": ids }),
        )
        .await;
    for s in submitted["submitDemands"].as_array().unwrap() {
        assert_eq!(s["submitted"], true, "both rows go to the city: {s}");
    }
    let kinds = |id: &str| {
        let app = &app;
        let manager = manager.clone();
        let id = id.to_string();
        async move {
            app.ok(
                Some(&manager),
                "query($id: ID!) { instance(id: $id) { version state { id } data } }",
                json!({ "id": id }),
            )
            .await["instance"]
                .clone()
        }
    };
    let feedback = kinds(ids[0]).await;
    assert_eq!(feedback["data"]["row_kind"], "feedback");
    assert_eq!(kinds(ids[1]).await["data"]["row_kind"], "offer");
    // The city forwards both.
    for id in &ids {
        let v = kinds(id).await["version"].as_i64().unwrap();
        let moved = app
            .ok(
                Some(&city),
                "mutation($id: ID!, $v: Int!) { transition(instanceId: $id, event: \"forward\", expectedVersion: $v, input: { city_notes: \"已统筹\" }) { instance { state { id } } } }",
                json!({ "id": id, "v": v }),
            )
            .await;
        assert_eq!(
            moved["transition"]["instance"]["state"]["id"],
            "province_review"
        );
    }
    // The province's 汇总表 lists the feedback row as feedback on its item.
    let csv = app
        .ok(
            Some(&manager),
            "query($call: ID!) { exportDemands(callId: $call, format: CSV) { contentBase64 } }",
            json!({ "call": call }),
        )
        .await["exportDemands"]
        .clone();
    let text = String::from_utf8(decode(&csv)).unwrap();
    let header = text.lines().next().unwrap();
    assert!(
        header.contains(",经费预算（元）,") && header.contains(",意见建议,填报类型,来源,"),
        "{header}"
    );
    let row = text
        .lines()
        .find(|l| l.contains("建议将申报主体扩大到县区局"))
        .unwrap_or_else(|| panic!("the feedback row: {text}"));
    assert!(
        row.contains(",,,建议将申报主体扩大到县区局,仅意见建议,目录项目 2022-3-1-14,"),
        "{row}"
    );
    let offer = text
        .lines()
        .find(|l| l.contains(",300000.00,"))
        .unwrap_or_else(|| panic!("the offer, 30 万元: {text}"));
    assert!(offer.contains(",承担意向,"), "{offer}");

    // Through the API an offer still needs both budget and 绩效.
    let draft = app
        .ok(
            Some(&unit),
            r#"mutation($input: CreateInstanceInput!) { createInstance(input: $input) { id } }"#,
            json!({ "input": { "workflowId": "demand-collection", "title": "只报预算",
                "callId": call, "catalogueItem": "2022-2-1-5" } }),
        )
        .await["createInstance"]["id"]
        .clone();
    let refused = app
        .gql(
            Some(&unit),
            r#"mutation($id: ID!) { transition(instanceId: $id, event: "submit", expectedVersion: 0, input: {
                category: "八、知识产权文化传播", project_name: "宣传周", direction: "举办宣传周",
                applicant_name: "广州知识产权服务中心", budget: "5万元" }) { instance { state { id } } } }"#,
            json!({ "id": draft }),
        )
        .await;
    assert_eq!(error_code(&refused), "GUARD_FAILED", "{refused}");
}

async fn a_bare_fifty_needs_the_amount_unit(backend: Backend) {
    let app = spawn_app(backend).await;
    let manager = app.session_token("manager").await;
    let unit = app.session_token("applicant_a").await;
    let call = open_call(&app, &manager, "").await;
    let file = b64(&form(
        "经费预算",
        &[[
            "八、知识产权文化传播",
            "",
            "知识产权宣传周活动",
            "举办宣传周系列活动",
            "广州知识产权服务中心",
            "50",
            "举办活动5场",
            "",
        ]],
    ));
    let refused = app
        .gql(Some(&unit), IMPORT, json!({ "call": call, "file": file }))
        .await;
    assert_eq!(error_code(&refused), "INVALID_INPUT");
    let details = &refused["errors"][0]["extensions"]["details"];
    assert_eq!(details["reason"], "IMPORT_REJECTED");
    let row = &details["rows"][0];
    assert_eq!(
        (&row["row"], &row["column"], &row["code"]),
        (&json!(2), &json!("F"), &json!("IMPORT_AMOUNT_UNIT_MISSING")),
        "{details}"
    );
    assert!(
        row["messageZh"]
            .as_str()
            .unwrap()
            .starts_with("第2行 F列「经费预算」：\"50\" 未注明单位"),
        "{row}"
    );

    let wan = app
        .ok(
            Some(&unit),
            IMPORT,
            json!({ "call": call, "file": file, "unit": "WAN_YUAN" }),
        )
        .await;
    assert_eq!(
        wan["importDemands"]["created"][0]["data"]["budget"], "500000.00",
        "50 万元"
    );
    let yuan = app
        .ok(
            Some(&unit),
            IMPORT,
            json!({ "call": call, "file": file, "unit": "YUAN" }),
        )
        .await;
    assert_eq!(
        yuan["importDemands"]["created"][0]["data"]["budget"],
        "50.00"
    );
}

async fn an_application_without_an_effect_indicator_is_refused_at_submit(backend: Backend) {
    let app = spawn_app(backend).await;
    let unit = app.session_token("applicant_a").await;
    let id = app
        .create_instance("applicant_a", "funded-project", None, None, "专利导航")
        .await
        .id
        .to_string();
    let submit = |indicators: Value| {
        let app = &app;
        let unit = unit.clone();
        let id = id.clone();
        async move {
            app.gql(
                Some(&unit),
                r#"mutation($id: ID!, $indicators: JSON!) { transition(instanceId: $id, event: "submit", expectedVersion: 0,
                    input: { project_name: "专利导航", budget: "30万元", indicators: $indicators,
                             application_files: [{ name: "申报书.pdf", sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", size: 10 }] })
                   { instance { state { id } data } } }"#,
                json!({ "id": id, "indicators": indicators }),
            )
            .await
        }
    };
    let refused = submit(json!([
        { "category": "output_quantity", "name": "专利导航报告", "unit": "份", "target": 5 }
    ]))
    .await;
    assert_eq!(error_code(&refused), "INVALID_INPUT");
    let field = &refused["errors"][0]["extensions"]["details"]["fields"][0];
    assert_eq!(field["field"], "indicators");
    assert_eq!(field["code"], "INDICATOR_GROUP_MISSING");
    assert_eq!(field["message"]["zh-CN"], "绩效目标须包含效益指标");

    let accepted = submit(json!([
        { "category": "output_quantity", "name": "专利导航报告", "unit": "份", "target": 5, "target_year": 2025 },
        { "category": "effect_economic", "name": "知识产权质押融资登记金额", "unit": "亿元",
          "baseline": 907.6, "baseline_year": 2020, "target": 2500, "target_year": 2025,
          "attribute": "expected", "cumulative": true }
    ]))
    .await;
    let data = &accepted["data"]["transition"]["instance"]["data"];
    assert_eq!(
        data["budget"], "300000.00",
        "30万元 is 300 000 yuan: {accepted}"
    );
    assert_eq!(data["indicators"][1]["cumulative"], true);
    assert_eq!(data["indicators"][1]["attribute"], "expected");
}

async fn the_call_s_rules_are_stored_shown_and_set_the_deadlines(backend: Backend) {
    let app = spawn_app(backend).await;
    let manager = app.session_token("manager").await;
    let unit = app.session_token("applicant_a").await;
    let rules = r#"
[rules]
publicity_days = 3
overshoot_threshold = 0.5

[rules.review]
pass_mark = 75
panel_size = 5
aggregation = "median"

[rules.stage_limits]
formal_check = 2
"#;
    let call = open_call(&app, &manager, rules).await;
    let shown = app
        .ok(
            Some(&unit),
            "{ calls { id rules { passMark panelSize aggregation publicityDays overshootThreshold collaborationWindowMonths
                rubric { id weight } stageLimits { state workingDays isDefault }
                settings { key value defaultValue isDefault } note { zhCn en } } } }",
            json!({}),
        )
        .await;
    let r = &shown["calls"][0]["rules"];
    assert_eq!(r["passMark"], 75);
    assert_eq!(r["panelSize"], 5);
    assert_eq!(r["aggregation"], "median");
    assert_eq!(r["publicityDays"], 3);
    assert_eq!(r["overshootThreshold"], 0.5);
    assert_eq!(r["collaborationWindowMonths"], 36, "a default");
    assert_eq!(
        r["rubric"].as_array().unwrap().len(),
        4,
        "the default rubric"
    );
    let setting = |key: &str| {
        r["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == key)
            .unwrap_or_else(|| panic!("{key}: {r}"))
            .clone()
    };
    assert_eq!(
        setting("publicity_days"),
        json!({ "key": "publicity_days", "value": "3", "defaultValue": "7", "isDefault": false })
    );
    assert_eq!(setting("review.pass_mark")["defaultValue"], "60");
    assert_eq!(setting("stage_limits.decision")["isDefault"], true);
    assert_eq!(setting("stage_limits.formal_check")["value"], "2");
    assert!(r["note"]["zhCn"].as_str().unwrap().contains("不是规定"));

    // A bad rule refuses the call, naming the key.
    let bad = app
        .gql(
            Some(&manager),
            r#"mutation($input: OpenCallInput!) { openCall(input: $input) { id } }"#,
            json!({ "input": { "catalogueToml": format!("{CATALOGUE_2022}\n[rules]\npublicity_days = 0\n"), "closingDate": "2024-06-28" } }),
        )
        .await;
    assert_eq!(error_code(&bad), "INVALID_INPUT");
    assert!(
        bad["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("rules.publicity_days"),
        "{bad}"
    );

    // An application of the call carries its rules; the creator cannot set them.
    let create = |call: String| {
        let app = &app;
        let unit = unit.clone();
        async move {
            app.ok(
                Some(&unit),
                r#"mutation($input: CreateInstanceInput!) { createInstance(input: $input) { id data } }"#,
                json!({ "input": { "workflowId": "funded-project", "title": "纠纷调解",
                    "callId": call, "catalogueItem": "2022-2-1-5",
                    "data": { "review_pass_mark": 0, "publicity_days": 60 } } }),
            )
            .await["createInstance"]
                .clone()
        }
    };
    let of_call = create(call.clone()).await;
    assert_eq!(of_call["data"]["review_pass_mark"], 75);
    assert_eq!(of_call["data"]["review_panel_size"], 5);
    assert_eq!(of_call["data"]["publicity_days"], 3);
    assert_eq!(of_call["data"]["limit_formal_check"], 2);
    assert_eq!(of_call["data"]["limit_decision"], 10, "the default");
    // A call without rules: the defaults.
    let plain = open_call(&app, &manager, "").await;
    let elsewhere = create(plain).await;
    assert_eq!(
        elsewhere["data"]["review_pass_mark"], 60,
        "a call without rules: the defaults"
    );
    assert_eq!(elsewhere["data"]["publicity_days"], 7);

    // The city forwards by the province's closing date; the formal check's time limit is
    // the call's: 2 working days instead of 5.
    let city = app.session_token("city_gz").await;
    let due = |id: Value| {
        let app = &app;
        let unit = unit.clone();
        let city = city.clone();
        async move {
            let submitted = app.ok(
                Some(&unit),
                r#"mutation($id: ID!) { transition(instanceId: $id, event: "submit", expectedVersion: 0, input: {
                    project_name: "纠纷调解", budget: "300000",
                    indicators: [{ category: "output_quantity", name: "调解案件数", target: 200 },
                                 { category: "effect_social", name: "办结周期", target: 45, direction: "lower_is_better" }],
                    application_files: [{ name: "申报书.pdf", sha256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", size: 10 }] })
                   { instance { state { id } dueAt } } }"#,
                json!({ "id": id }),
            )
            .await;
            assert_eq!(
                submitted["transition"]["instance"]["dueAt"], "2024-06-28T16:00:00+00:00",
                "the city's deadline is the province's closing date"
            );
            app.ok(
                Some(&city),
                r#"mutation($id: ID!) { transition(instanceId: $id, event: "recommend", expectedVersion: 1, input: {})
                   { instance { state { id } dueAt } } }"#,
                json!({ "id": id }),
            )
            .await["transition"]["instance"]["dueAt"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    // Recommended on Monday 2024-06-03: 2 working days end on Wednesday 06-05; the default
    // 5 on 06-11 (06-10 is 端午), at 24:00 Asia/Shanghai.
    assert_eq!(
        due(of_call["id"].clone()).await,
        "2024-06-05T16:00:00+00:00"
    );
    assert_eq!(
        due(elsewhere["id"].clone()).await,
        "2024-06-11T16:00:00+00:00"
    );
}

async fn the_call_s_rubric_panel_aggregation_and_pass_mark_decide_the_review(backend: Backend) {
    let app = spawn_app(backend).await;
    let manager = app.session_token("manager").await;
    let unit = app.session_token("applicant_a").await;
    let city = app.session_token("city_gz").await;
    let rules = r#"
[rules.review]
pass_mark = 70
panel_size = 3
aggregation = "median"

[[rules.review.criteria]]
id = "quality"
title = "实施方案质量"
title_en = "Quality of the plan"
weight = 0.6

[[rules.review.criteria]]
id = "impact"
title = "预期效益"
weight = 0.4
"#;
    let call = open_call(&app, &manager, rules).await;
    let id = app
        .ok(
            Some(&unit),
            r#"mutation($input: CreateInstanceInput!) { createInstance(input: $input) { id } }"#,
            json!({ "input": { "workflowId": "funded-project", "title": "专利导航服务",
                "callId": call, "catalogueItem": "2022-2-1-5" } }),
        )
        .await["createInstance"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let fire = |token: String, event: &'static str, v: i64, input: Value| {
        let app = &app;
        let id = id.clone();
        async move {
            app.ok(
                Some(&token),
                "mutation($id: ID!, $e: String!, $v: Int!, $input: JSON) { transition(instanceId: $id, event: $e, expectedVersion: $v, input: $input) { instance { state { id } } } }",
                json!({ "id": id, "e": event, "v": v, "input": input }),
            )
            .await["transition"]["instance"]["state"]["id"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    fire(unit.clone(), "submit", 0, json!({
        "project_name": "专利导航服务", "summary": "面向中小企业开展专利导航", "budget": "300000",
        "indicators": [
            { "category": "output_quantity", "name": "专利导航报告", "unit": "份", "target": 5 },
            { "category": "effect_economic", "name": "服务企业数", "unit": "家", "target": 30 }
        ],
        "application_files": [{ "name": "申报书.pdf", "sha256": "a".repeat(64), "size": 10 }]
    }))
    .await;
    fire(city, "recommend", 1, json!({})).await;
    assert_eq!(
        fire(manager.clone(), "pass_formal_check", 2, json!({})).await,
        "expert_review"
    );
    let mut tokens = Vec::new();
    for name in ["expert1", "expert2", "expert3"] {
        let expert = app.user(name).id;
        app.ok(
            Some(&manager),
            r#"mutation($id: ID!) { upsertExpertProfile(input: { userId: $id, categories: [3], keywords: ["专利"], workloadCap: 10 }) { userId } }"#,
            json!({ "id": expert.to_string() }),
        )
        .await;
        tokens.push((
            expert.to_string(),
            app.api_token(name, &["read", "review"]).await,
        ));
    }
    // The call's panel of three, drawn from the pool.
    let drawn = app
        .ok(
            Some(&manager),
            "mutation($id: ID!) { autoAssign(instanceId: $id, seed: 7) { assignments { id expert { id } } } }",
            json!({ "id": id }),
        )
        .await;
    let panel = drawn["autoAssign"]["assignments"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(panel.len(), 3, "{drawn}");
    // quality 60 / impact 70 → 64; 70 / 60 → 66; 80 / 80 → 80: median 66 (mean 70).
    for (a, (quality, impact)) in panel.iter().zip([(60, 70), (70, 60), (80, 80)]) {
        let token = &tokens
            .iter()
            .find(|(e, _)| *e == a["expert"]["id"])
            .unwrap()
            .1;
        app.ok(
            Some(token),
            "mutation($id: ID!) { declareNoConflict(assignmentId: $id) { state } }",
            json!({ "id": a["id"] }),
        )
        .await;
        let form = app
            .ok(
                Some(token),
                "query($id: ID!) { reviewForm(assignmentId: $id) { panelSize aggregation rubric { id weight } } }",
                json!({ "id": a["id"] }),
            )
            .await;
        let form = &form["reviewForm"];
        assert_eq!(form["panelSize"], 3);
        assert_eq!(
            form["aggregation"].as_str().unwrap().to_lowercase(),
            "median"
        );
        assert_eq!(
            form["rubric"],
            json!([{ "id": "quality", "weight": 0.6 }, { "id": "impact", "weight": 0.4 }])
        );
        app.ok(
            Some(token),
            "mutation($id: ID!, $s: [ScoreInput!]!) { submitScores(assignmentId: $id, scores: $s) { total } }",
            json!({ "id": a["id"], "s": [
                { "criterion": "quality", "score": quality },
                { "criterion": "impact", "score": impact }
            ] }),
        )
        .await;
    }
    let round = app
        .ok(
            Some(&manager),
            "query($id: ID!) { reviewRound(instanceId: $id) { count total } instance(id: $id) { version } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(round["reviewRound"]["count"], 3);
    assert_eq!(
        round["reviewRound"]["total"], 66.0,
        "the median of 64, 66 and 80"
    );
    // 66 passes the default 60 (and the mean, 70, would pass 70) but not this call's 70.
    let v = round["instance"]["version"].as_i64().unwrap();
    assert_eq!(
        fire(manager, "conclude_review", v, json!({})).await,
        "not_funded"
    );
}
