//! Imports, duplicate detection and exports cannot be turned against the server (hostile
//! workbooks, untouched catalogue rows), through the API on SQLite and PostgreSQL:
//! * hostile workbooks (a sheet spanning A1..XFD1048576, a reference beyond Excel's grid,
//!   a zip bomb, 100 000 rows) are INVALID_INPUT with a stable `details.code`;
//! * thousands of bad rows list the first 1 000 errors and count them all;
//! * catalogue rows a city left as printed are skipped, and the untouched second row of a
//!   two-row item does not fail an all-or-nothing import;
//! * while an import is in flight on the work pool, `/healthz` and other requests answer;
//! * a duplicate search past the request timeout answers the timeout (408) and its work
//!   is told to stop.

use crate::support;
#[path = "../../../programme/tests/it/common/mod.rs"]
mod workbooks;

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use base64::Engine;
use grantflow_api::ApiSettings;
use grantflow_programme::catalogue::Catalogue;
use grantflow_programme::export::{Cell, form_template, write_xlsx};
use grantflow_service::programme::OpenCall;
use serde_json::{Value, json};
use support::{Backend, TestApp, error_code, spawn_app, spawn_app_with};
use workbooks::{
    bad_rows, inline_cell, numbered_rows, sheet_xml, whole_grid_sheet, workbook_with_sheet,
};

const CATALOGUE_2022: &str = include_str!("../../../../workflows/calls/2022.toml");

use grantflow_testkit::on_both_backends;

const IMPORT: &str = r#"mutation($call: ID!, $file: String!, $mode: ImportMode) {
  importDemands(callId: $call, fileBase64: $file, mode: $mode) {
    created { id title } errors { row code } errorCount errorsTruncated rejectedRows skippedRows
  }
}"#;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Opens the 2022 call through the service (not over HTTP, so that a test with a short
/// request timeout sets up the same way).
async fn open_call(app: &TestApp) -> String {
    let call = app
        .services
        .open_call(
            app.user("manager"),
            OpenCall {
                year: Some(2022),
                title: None,
                issuer: None,
                closing_date: Some("2024-06-28".parse().unwrap()),
                correction_window_days: None,
                catalogue: Catalogue::from_toml_str(CATALOGUE_2022).unwrap(),
            },
        )
        .await
        .unwrap();
    call.id.to_string()
}

async fn import(app: &TestApp, token: &str, call: &str, file: &[u8], mode: &str) -> Value {
    app.gql(
        Some(token),
        IMPORT,
        json!({ "call": call, "file": b64(file), "mode": mode }),
    )
    .await
}

async fn demand_count(app: &TestApp, token: &str) -> i64 {
    app.ok(
        Some(token),
        r#"{ instances(filter: { workflowId: "demand-collection" }) { totalCount } }"#,
        json!({}),
    )
    .await["instances"]["totalCount"]
        .as_i64()
        .unwrap()
}

/// 65 MiB of spaces in the sheet: a few tens of kilobytes once deflated (made once).
fn zip_bomb() -> &'static [u8] {
    static BOMB: OnceLock<Vec<u8>> = OnceLock::new();
    BOMB.get_or_init(|| {
        let padding = " ".repeat(65 * 1024 * 1024);
        workbook_with_sheet(&sheet_xml(None, "", &padding))
    })
}

async fn hostile_workbooks_are_client_errors_and_create_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let unit = app.session_token("applicant_b").await;
    let manager = app.session_token("manager").await;
    let call = open_call(&app).await;
    let beyond = sheet_xml(
        None,
        &format!("<row>{}</row>", inline_cell("A99999999999", "x")),
        "",
    );
    assert!(zip_bomb().len() < 512 * 1024, "{} bytes", zip_bomb().len());
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "A1 and XFD1048576",
            workbook_with_sheet(&whole_grid_sheet()),
            "IMPORT_TOO_MANY_ROWS",
        ),
        (
            "A99999999999",
            workbook_with_sheet(&beyond),
            "IMPORT_BAD_CELL_REFERENCE",
        ),
        ("zip bomb", zip_bomb().to_vec(), "IMPORT_TOO_LARGE"),
        (
            "100 000 rows",
            workbook_with_sheet(&sheet_xml(None, &numbered_rows(100_000), "")),
            "IMPORT_TOO_MANY_ROWS",
        ),
        (
            "not a zip",
            b"PK\x03\x04 garbage".to_vec(),
            "IMPORT_NOT_A_WORKBOOK",
        ),
    ];
    for (what, file, code) in cases {
        let body = import(&app, &unit, &call, &file, "GOOD_ROWS_ONLY").await;
        assert_eq!(error_code(&body), "INVALID_INPUT", "{what}: {body}");
        let ext = &body["errors"][0]["extensions"];
        assert_eq!(ext["details"]["reason"], "IMPORT_FAILED", "{what}");
        assert_eq!(ext["details"]["code"], code, "{what}");
        assert!(!ext["messageZh"].as_str().unwrap().is_empty(), "{what}");
        assert!(!ext["messageEn"].as_str().unwrap().is_empty(), "{what}");
        assert!(body.to_string().len() < 4096, "{what}: a short answer");
    }
    assert_eq!(demand_count(&app, &manager).await, 0);
}

async fn thousands_of_bad_rows_list_a_thousand_errors_and_count_them_all(backend: Backend) {
    let app = spawn_app(backend).await;
    let unit = app.session_token("applicant_b").await;
    let manager = app.session_token("manager").await;
    let call = open_call(&app).await;
    let file = workbook_with_sheet(&sheet_xml(None, &bad_rows(3_000), ""));

    let refused = import(&app, &unit, &call, &file, "ALL_OR_NOTHING").await;
    let details = &refused["errors"][0]["extensions"]["details"];
    assert_eq!(details["reason"], "IMPORT_REJECTED");
    assert_eq!(details["rows"].as_array().unwrap().len(), 1_000);
    assert_eq!(details["errorCount"], 6_000);
    assert_eq!(details["errorsTruncated"], true);

    let partial = import(&app, &unit, &call, &file, "GOOD_ROWS_ONLY").await;
    let payload = &partial["data"]["importDemands"];
    assert_eq!(payload["errors"].as_array().unwrap().len(), 1_000);
    assert_eq!(payload["errorCount"], 6_000);
    assert_eq!(payload["errorsTruncated"], true);
    assert_eq!(payload["rejectedRows"].as_array().unwrap().len(), 3_000);
    assert_eq!(payload["created"], json!([]));
    assert_eq!(demand_count(&app, &manager).await, 0);
}

async fn catalogue_rows_left_as_printed_are_skipped_not_drafted(backend: Backend) {
    let app = spawn_app(backend).await;
    let city = app.session_token("applicant_a").await;
    let manager = app.session_token("manager").await;
    let call = open_call(&app).await;
    let catalogue = Catalogue::from_toml_str(CATALOGUE_2022).unwrap();
    let mut sheet = form_template(&catalogue);
    let row_named = |sheet: &grantflow_programme::export::Sheet, name: &str| {
        sheet
            .rows
            .iter()
            .position(|r| matches!(&r[2], Cell::Text(t) if t == name))
            .unwrap()
    };
    // The city takes up item 1 and the second row of item 20, and leaves the rest.
    let first = row_named(&sheet, "1.粤港澳大湾区国际知识产权合作中心建设工程");
    sheet.rows[first][5] = Cell::Text("80万".into());
    sheet.rows[first][6] = Cell::Text("完成建设规划1份".into());
    let second = row_named(&sheet, "20.知识产权海外纠纷应对指导") + 1;
    sheet.rows[second][5] = Cell::Text("30万".into());
    sheet.rows[second][6] = Cell::Text("建设地方分中心1个".into());
    let printed = sheet.rows.len();

    // The untouched blank form, all or nothing: nothing to import, nothing refused.
    let blank = write_xlsx(&[form_template(&catalogue)]).unwrap();
    let body = import(&app, &city, &call, &blank, "ALL_OR_NOTHING").await;
    let payload = &body["data"]["importDemands"];
    assert_eq!(payload["created"], json!([]), "{body}");
    assert_eq!(payload["errorCount"], 0);

    let body = import(
        &app,
        &city,
        &call,
        &write_xlsx(&[sheet]).unwrap(),
        "ALL_OR_NOTHING",
    )
    .await;
    let payload = &body["data"]["importDemands"];
    let titles: Vec<&str> = payload["created"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|c| c["title"].as_str().unwrap())
        .collect();
    assert_eq!(
        titles,
        [
            "粤港澳大湾区国际知识产权合作中心建设工程",
            "知识产权海外纠纷应对指导"
        ]
    );
    assert_eq!(payload["errorCount"], 0);
    assert_eq!(
        payload["skippedRows"].as_array().unwrap().len(),
        printed - 2,
        "every other printed row is skipped"
    );
    assert_eq!(demand_count(&app, &manager).await, 2);
}

/// Holds every job of the app's work pool on its blocking thread until released; says
/// when one started and whether its flag was raised by then.
struct Held {
    started: tokio::sync::mpsc::Receiver<()>,
    release: std::sync::mpsc::Sender<()>,
    cancelled: tokio::sync::mpsc::Receiver<bool>,
}

fn hold_jobs(app: &TestApp) -> Held {
    let (started_tx, started) = tokio::sync::mpsc::channel(4);
    let (cancelled_tx, cancelled) = tokio::sync::mpsc::channel(4);
    let (release, release_rx) = std::sync::mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    app.services.work.on_start(move |cancel| {
        // A job outliving the test's receivers must not panic on the pool's thread: the
        // test asserts on what it receives, not on these sends.
        let _ = started_tx.blocking_send(());
        let _ = release_rx.lock().unwrap().recv();
        let _ = cancelled_tx.blocking_send(cancel.is_cancelled());
    });
    Held {
        started,
        release,
        cancelled,
    }
}

async fn an_import_in_flight_does_not_stall_the_server(backend: Backend) {
    // One async worker (see the macro): a job holding it would stall everything.
    let app = std::sync::Arc::new(spawn_app(backend).await);
    let unit = app.session_token("applicant_b").await;
    let call = open_call(&app).await;
    let mut held = hold_jobs(&app);
    let catalogue = Catalogue::from_toml_str(CATALOGUE_2022).unwrap();
    let mut sheet = form_template(&catalogue);
    sheet.rows[0][5] = Cell::Text("80万".into());
    sheet.rows[0][6] = Cell::Text("完成建设规划1份".into());
    let file = write_xlsx(&[sheet]).unwrap();

    let importing = {
        let (app, unit, call) = (app.clone(), unit.clone(), call.clone());
        tokio::spawn(async move { import(&app, &unit, &call, &file, "ALL_OR_NOTHING").await })
    };
    held.started.recv().await.expect("the import started");
    // The import is parsing on the work pool: the server still answers.
    let health = reqwest::get(format!("http://{}/healthz", app.addr))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let calls = app.ok(Some(&unit), "{ calls { id } }", json!({})).await;
    assert_eq!(calls["calls"][0]["id"], call.as_str());

    held.release.send(()).unwrap();
    let body = importing.await.unwrap();
    assert_eq!(
        body["data"]["importDemands"]["created"]
            .as_array()
            .unwrap_or_else(|| panic!("{body}"))
            .len(),
        1
    );
}

async fn a_duplicate_search_past_the_timeout_answers_the_timeout_and_stops(backend: Backend) {
    let settings = ApiSettings {
        timeout: Duration::from_secs(1),
        ..ApiSettings::default()
    };
    let app = spawn_app_with(backend, settings).await;
    let manager = app.session_token("manager").await;
    let call = open_call(&app).await;
    let mut held = hold_jobs(&app);
    let mut running = app.services.work.running();

    let request = reqwest::Client::new()
        .post(app.url())
        .bearer_auth(&manager)
        .json(&json!({
            "query": "query($c: ID!) { duplicateCandidates(callId: $c) { similarity { overall } } }",
            "variables": { "c": call },
        }))
        .send();
    tokio::pin!(request);
    let started = tokio::select! {
        // The usual order: the search starts, then the timeout runs out while it is held.
        _ = held.started.recv() => true,
        // A very slow machine may time out before the search even starts; the answer must
        // be the timeout all the same.
        response = &mut request => {
            assert_eq!(response.unwrap().status(), 408);
            false
        }
    };
    if started {
        let response = request.await.unwrap();
        assert_eq!(response.status(), 408, "past the timeout: not 200");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "TIMEOUT", "{body}");
        held.release.send(()).unwrap();
        assert_eq!(
            held.cancelled.recv().await,
            Some(true),
            "the search was told to stop"
        );
        running.wait_for(|n| *n == 0).await.unwrap();
    }
}

#[test]
fn the_work_pool_uses_half_the_cores() {
    let pool = grantflow_service::work::WorkPool::default();
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    assert_eq!(pool.permits(), (cores / 2).max(1));
}

on_both_backends!(
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    hostile_workbooks_are_client_errors_and_create_nothing,
    thousands_of_bad_rows_list_a_thousand_errors_and_count_them_all,
    catalogue_rows_left_as_printed_are_skipped_not_drafted,
    an_import_in_flight_does_not_stall_the_server,
    a_duplicate_search_past_the_timeout_answers_the_timeout_and_stops,
);
