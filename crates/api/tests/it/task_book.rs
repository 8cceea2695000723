//! Issue 13: the task book and progress per task over GraphQL (called from the programme
//! end-to-end test once its project is in execution, on SQLite and PostgreSQL): the typed
//! `taskBook` of an instance, a progress report refused row by row (`INVALID_INPUT`,
//! `details.fields`) without changing anything, then accepted and shown per task with its
//! deliverables, the schedule moved on to the next quarter.

use serde_json::{Value, json};

use crate::support::{TestApp, error_code};

const TASK_BOOK: &str = r#"
query($id: ID!) { instance(id: $id) { version taskBook {
  schedule { kind dates } nextReportDue lastReportDue reportOverdue
  tasks { no focus task deliverableForm department due indicators
          progress { task status percent description deliverables { name sha256 size } } }
  reports { seq actorId rows { task status percent } }
} } }"#;

const REPORT: &str = r#"
mutation($id: ID!, $v: Int!, $input: JSON) {
  transition(instanceId: $id, event: "submit_progress_report", expectedVersion: $v, input: $input) {
    instance { version taskBook { lastReportDue nextReportDue } }
  }
}"#;

async fn task_book(app: &TestApp, token: &str, id: &str) -> Value {
    app.ok(Some(token), TASK_BOOK, json!({ "id": id })).await["instance"].clone()
}

pub async fn progress_over_http(app: &TestApp, unit: &str, manager: &str, id: &str) {
    let before = task_book(app, unit, id).await;
    let book = &before["taskBook"];
    assert_eq!(
        book["schedule"],
        json!({ "kind": "quarterly", "dates": [] })
    );
    // Signed on 2024-06-03: the first quarterly report is due at the end of June.
    assert_eq!(book["nextReportDue"], "2024-06-30");
    assert_eq!(book["lastReportDue"], Value::Null);
    assert_eq!(book["reportOverdue"], false);
    assert_eq!(
        book["tasks"],
        json!([{
            "no": 1, "focus": "知识产权保护", "task": "开展维权援助", "deliverableForm": "工作报告",
            "department": "项目组", "due": "2024-12-31", "indicators": [], "progress": null
        }])
    );
    assert_eq!(book["reports"], json!([]));

    // A bad report: every bad cell named, nothing stored.
    let v = before["version"].as_i64().unwrap();
    let bad = app
        .gql(
            Some(unit),
            REPORT,
            json!({ "id": id, "v": v, "input": { "progress": [
                { "task": 2, "status": "in_progress", "percent": 10 },
                { "task": 1, "status": "finished", "percent": 101 }
            ] } }),
        )
        .await;
    assert_eq!(error_code(&bad), "INVALID_INPUT");
    let fields: Vec<(String, String)> = bad["errors"][0]["extensions"]["details"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["field"].as_str().unwrap().to_string(),
                f["code"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        fields,
        [
            (
                "progress[1].status".to_string(),
                "NOT_AN_OPTION".to_string()
            ),
            (
                "progress[1].percent".to_string(),
                "OUT_OF_RANGE".to_string()
            ),
        ]
    );
    let wrong_task = app
        .gql(
            Some(unit),
            REPORT,
            json!({ "id": id, "v": v, "input": { "progress": [{ "task": 2, "status": "in_progress", "percent": 10 }] } }),
        )
        .await;
    assert_eq!(
        wrong_task["errors"][0]["extensions"]["details"]["fields"][0]["code"],
        "TASK_UNKNOWN"
    );
    assert_eq!(task_book(app, unit, id).await, before);

    // The report: per task, with a deliverable.
    let deliverable =
        json!({ "name": "调解工作站挂牌照片.pdf", "sha256": "e".repeat(64), "size": 10240 });
    let done = app
        .ok(
            Some(unit),
            REPORT,
            json!({ "id": id, "v": v, "input": { "progress": [
                { "task": 1, "status": "in_progress", "percent": 40, "description": "调解工作站已挂牌",
                  "deliverables": [deliverable] }
            ] } }),
        )
        .await;
    assert_eq!(
        done["transition"]["instance"]["taskBook"],
        json!({ "lastReportDue": "2024-06-30", "nextReportDue": "2024-09-30" })
    );
    // The manager sees the progress on the task and the report in the history.
    let after = task_book(app, manager, id).await;
    let book = &after["taskBook"];
    assert_eq!(
        book["tasks"][0]["progress"],
        json!({ "task": 1, "status": "IN_PROGRESS", "percent": 40, "description": "调解工作站已挂牌",
                "deliverables": [deliverable] })
    );
    assert_eq!(book["reports"].as_array().unwrap().len(), 1);
    assert_eq!(
        book["reports"][0]["rows"],
        json!([{ "task": 1, "status": "IN_PROGRESS", "percent": 40 }])
    );
}
