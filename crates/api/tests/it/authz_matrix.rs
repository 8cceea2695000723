//! The authorisation matrix, generated from the schema: every query, mutation and
//! subscription of `schema.graphql` has a row (a new operation without one fails the test),
//! and every row is tried by every column — anonymous; a session of each role; the own and
//! the other city and unit; an expert reviewing blind, one with an open view grant and one
//! with nothing; and API tokens missing a scope — on SQLite and PostgreSQL, one application
//! per backend.
//!
//! Every refused cell asserts its exact code and that nothing changed: the target
//! instances (row, history, timers, review assignments, budget, spending, actuals,
//! evaluation), the number of instances, the outbox, calls and merges, the expert pool,
//! organisations and users (`world::snapshot`). Query cells assert that nothing changed
//! whatever their outcome. Allowed cells assert a value that shows the operation did its
//! work (the id asked for, the state reached, the amount recorded, …), and, for the expert
//! reviewing blind, that neither the unit's name nor its contact person appears in the
//! answer. Subscriptions run over a real WebSocket (`graphql-transport-ws`).
//!
//! Outcomes: `A` allowed (and the value checked), `H` allowed but null (nothing to show
//! yet), `Q` a subscription accepted that has no event for this viewer (see `ws_cell`),
//! `U` UNAUTHENTICATED, `F` FORBIDDEN, `N` NOT_FOUND, `II` INVALID_INPUT, `IT`
//! INVALID_TRANSITION (the caller passed authorisation and met a business rule), `W` the
//! socket closed with 4403 (no token in `connection_init`).

use crate::support;

mod ops;
mod world;

use std::collections::BTreeSet;
use std::time::Duration as StdDuration;

use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
use futures::{SinkExt, StreamExt};
use grantflow_service::FireEvent;
use serde_json::{Value, json};
use support::{Backend, error_code, spawn_app};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use ops::{Want, per_cell, prepare, spec_of};
use world::{CONTACT, UNIT, World, snapshot};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(clippy::upper_case_acronyms)]
enum O {
    A,
    H,
    Q,
    U,
    F,
    N,
    II,
    IT,
    W,
}
use O::{A, F, H, II, IT, N, Q, U, W};

impl O {
    fn refused(self) -> bool {
        !matches!(self, A | H | Q)
    }
}

#[derive(Debug, Clone, Copy)]
enum Who {
    Anonymous,
    Session(&'static str),
    Token(&'static str, &'static [&'static str]),
}

const NO_READ: &[&str] = &["transition", "review", "admin"];

const COLUMNS: [(&str, Who); 15] = [
    ("anon", Who::Anonymous),
    ("admin", Who::Session("admin")),
    ("manager", Who::Session("manager")),
    ("auditor", Who::Session("auditor")),
    ("city_own", Who::Session("city_gz")),
    ("city_other", Who::Session("city_sz")),
    ("unit_own", Who::Session("applicant_a")),
    ("unit_other", Who::Session("applicant_b")),
    ("expert_blind", Who::Session("expert1")),
    ("expert_open", Who::Session("expert3")),
    ("expert_none", Who::Session("expert2")),
    ("mgr[read]", Who::Token("manager", &["read"])),
    ("mgr[-read]", Who::Token("manager", NO_READ)),
    ("unit[read]", Who::Token("applicant_a", &["read"])),
    ("exp[read]", Who::Token("expert1", &["read"])),
];

const BLIND_COLUMN: usize = 8;

/// The rows whose answer renders the instance expert1 reviews blind.
const BLIND_ROWS: &[&str] = &[
    "instance",
    "instances",
    "myReviews",
    "reviewForm",
    "reviewRound",
    "instanceEvents",
];

type Row = (&'static str, [O; 15]);

#[rustfmt::skip]
const ROWS: &[Row] = &[
    //                          anon admin mgr aud cgz csz uA uB e1b e3o e2 m[r] m[-r] u[r] e[r]
    ("viewer",                    [U, A, A, A, A, A, A, A, A, A, A, A, F, A, A]),
    ("myTokens",                  [U, A, A, A, A, A, A, A, A, A, A, A, F, A, A]),
    ("organisations",             [U, A, A, A, A, A, A, A, A, A, A, A, F, A, A]),
    ("organisation",              [U, A, A, A, A, A, A, A, A, A, A, A, F, A, A]),
    ("users",                     [U, A, F, F, F, F, F, F, F, F, F, F, F, F, F]),
    ("user",                      [U, A, N, N, N, N, A, N, N, N, N, N, F, A, N]),
    ("workflows",                 [U, A, A, A, A, A, A, A, A, A, A, A, F, A, A]),
    ("workflow",                  [U, A, A, A, A, A, A, A, A, A, A, A, F, A, A]),
    ("instance",                  [U, N, A, A, A, N, A, N, A, A, N, A, F, A, A]),
    ("instances",                 [U, A, A, A, A, A, A, A, A, A, A, A, F, A, A]),
    ("outbox",                    [U, F, A, F, F, F, F, F, F, F, F, A, F, F, F]),
    ("calls",                     [U, A, A, A, A, A, A, A, A, A, A, A, F, A, A]),
    ("call",                      [U, A, A, A, A, A, A, A, A, A, A, A, F, A, A]),
    ("duplicateCandidates",       [U, F, A, A, A, A, F, F, F, F, F, A, F, F, F]),
    ("demandMerges",              [U, F, A, A, F, F, F, F, F, F, F, A, F, F, F]),
    ("exportDemands",             [U, A, A, A, A, A, A, A, A, A, A, A, F, A, A]),
    ("exportInstances",           [U, A, A, A, A, A, A, A, A, A, A, A, F, A, A]),
    ("exportEvaluations",         [U, A, A, A, A, A, A, A, A, A, A, A, F, A, A]),
    ("budget",                    [U, N, A, A, A, N, A, N, N, A, N, A, F, A, N]),
    ("projectFunding",            [U, N, A, A, A, N, A, N, N, A, N, A, F, A, N]),
    ("fundingPlan",               [U, F, A, A, A, A, F, F, F, F, F, A, F, F, F]),
    ("fundingPlanHistory",        [U, F, A, A, F, F, F, F, F, F, F, A, F, F, F]),
    ("indicatorActuals",          [U, N, A, A, A, N, A, N, N, A, N, A, F, A, N]),
    ("evaluationPreview",         [U, F, A, A, A, N, A, N, F, F, F, A, F, A, F]),
    ("evaluation",                [U, N, H, H, H, N, H, N, N, H, N, H, F, H, N]),
    ("callSummary",               [U, A, A, A, A, A, A, A, A, A, A, A, F, A, A]),
    ("yearReport",                [U, F, A, A, A, A, F, F, F, F, F, A, F, F, F]),
    ("exportReport",              [U, F, A, A, A, A, F, F, F, F, F, A, F, F, F]),
    ("unitGrades",                [U, F, A, A, A, A, F, F, F, F, F, A, F, F, F]),
    ("exportUnitGrades",          [U, F, A, A, A, A, F, F, F, F, F, A, F, F, F]),
    ("userDirectory",             [U, A, A, F, F, F, F, F, F, F, F, A, F, F, F]),
    ("myReviews",                 [U, A, A, A, A, A, A, A, A, A, A, A, F, A, A]),
    ("reviewForm",                [U, N, N, N, N, N, N, N, A, N, N, N, F, N, A]),
    ("expertPool",                [U, F, A, F, F, F, F, F, F, F, F, A, F, F, F]),
    ("reviewRound",               [U, F, A, F, F, F, F, F, F, F, F, A, F, F, F]),
    ("ranking",                   [U, F, A, F, F, F, F, F, F, F, F, A, F, F, F]),
    ("rankingXlsx",               [U, F, A, F, F, F, F, F, F, F, F, A, F, F, F]),
    ("login",                     [A, A, A, A, A, A, A, A, A, A, A, A, A, A, A]),
    ("logout",                    [U, A, A, A, A, A, A, A, A, A, A, A, A, A, A]),
    ("revokeAllTokens",           [U, A, A, A, A, A, A, A, A, A, A, F, F, F, F]),
    ("createApiToken",            [U, A, A, A, A, A, A, A, A, A, A, F, F, F, F]),
    ("revokeApiToken",            [U, N, N, N, N, N, A, N, N, N, N, F, F, F, F]),
    ("requestPasswordReset",      [A, A, A, A, A, A, A, A, A, A, A, A, A, A, A]),
    ("resetPassword",             [A, A, A, A, A, A, A, A, A, A, A, A, A, A, A]),
    ("changePassword",            [U, A, A, A, A, A, A, A, A, A, A, F, F, F, F]),
    ("setNotificationPreference", [U, A, A, A, A, A, A, A, A, A, A, F, F, F, F]),
    ("createOrganisation",        [U, A, F, F, F, F, F, F, F, F, F, F, F, F, F]),
    ("createUser",                [U, A, F, F, F, F, F, F, F, F, F, F, F, F, F]),
    ("updateUser",                [U, A, F, F, F, F, F, F, F, F, F, F, F, F, F]),
    ("createInstance",            [U, F, A, F, F, F, A, F, F, F, F, F, A, F, F]),
    ("transition",                [U, N, F, F, F, N, A, N, N, F, N, F, F, F, F]),
    ("transition#recommend",      [U, N, F, F, A, N, F, N, N, F, N, F, F, F, F]),
    ("transition#pass_formal_check", [U, N, A, F, F, N, F, N, N, F, N, F, A, F, F]),
    ("extendDeadline",            [U, F, A, F, F, F, F, F, F, F, F, F, A, F, F]),
    ("openCall",                  [U, F, A, F, F, F, F, F, F, F, F, F, A, F, F]),
    ("closeCall",                 [U, F, A, F, F, F, F, F, F, F, F, F, A, F, F]),
    ("importDemands",             [U, F, A, F, A, F, A, F, F, F, F, F, A, F, F]),
    ("submitDemands",             [U, N, F, F, F, N, A, N, N, F, N, F, F, F, F]),
    ("mergeDemands",              [U, F, A, F, F, F, F, F, F, F, F, F, A, F, F]),
    ("addBudgetLine",             [U, N, A, F, F, N, F, N, N, F, N, F, A, F, F]),
    ("recordSpending",            [U, N, A, F, F, N, A, N, N, F, N, F, A, F, F]),
    ("recordDisbursement",        [U, N, A, F, F, N, F, N, N, F, N, F, A, F, F]),
    ("setFundingPlan",            [U, F, A, F, F, F, F, F, F, F, F, F, A, F, F]),
    ("recordIndicatorActuals",    [U, N, A, F, F, N, A, N, N, F, N, F, A, F, F]),
    ("evaluateProject",           [U, F, A, F, F, F, F, F, F, F, F, F, A, F, F]),
    ("applyChangeRequest",        [U, F, A, F, F, F, F, F, F, F, F, F, A, F, F]),
    ("declareNoConflict",         [U, N, N, N, N, N, N, N, A, N, N, F, N, F, F]),
    ("declareConflict",           [U, N, N, N, N, N, N, N, A, N, N, F, N, F, F]),
    ("decline",                   [U, N, N, N, N, N, N, N, A, N, N, F, N, F, F]),
    ("submitScores",              [U, N, N, N, N, N, N, N, A, N, N, F, N, F, F]),
    ("justifyScores",             [U, N, N, N, N, N, N, N, II, N, N, F, N, F, F]),
    ("upsertExpertProfile",       [U, F, A, F, F, F, F, F, F, F, F, F, A, F, F]),
    ("recordCollaboration",       [U, F, A, F, F, F, F, F, F, F, F, F, A, F, F]),
    ("requestReviewExclusions",   [U, N, A, F, F, N, A, N, N, F, N, F, A, F, F]),
    ("assignReviewers",           [U, F, A, F, F, F, F, F, F, F, F, F, A, F, F]),
    ("autoAssign",                [U, F, A, F, F, F, F, F, F, F, F, F, A, F, F]),
    ("reassign",                  [U, F, IT, F, F, F, F, F, F, F, F, F, IT, F, F]),
    ("reopenReview",              [U, F, A, F, F, F, F, F, F, F, F, F, A, F, F]),
    ("publicityList",             [A, A, A, A, A, A, A, A, A, A, A, A, F, A, A]),
    ("publicObjections",          [U, F, A, A, F, F, F, F, F, F, F, A, F, F, F]),
    ("submitPublicObjection",     [A, A, A, A, A, A, A, A, A, A, A, A, A, A, A]),
    ("resolvePublicObjection",    [U, F, A, F, F, F, F, F, F, F, F, F, A, F, F]),
    ("evaluationAssignments",     [U, N, A, A, A, N, A, N, N, A, N, A, F, A, N]),
    ("evaluationComparison",      [U, N, A, A, A, N, A, N, N, A, N, A, F, A, N]),
    ("assignEvaluation",          [U, F, A, F, F, F, F, F, F, F, F, F, A, F, F]),
    ("recordThirdPartyEvaluation", [U, F, F, F, F, F, F, F, F, F, F, F, F, F, F]),
    ("instanceEvents",            [W, N, A, A, A, N, A, N, A, A, N, A, F, A, A]),
    ("myTasks",                   [W, Q, A, Q, A, Q, A, Q, Q, Q, Q, A, F, A, Q]),
];

// ------------------------------------------------------------------ the schema's operations

/// Every root field of Query, Mutation and Subscription in the committed schema.
fn schema_operations() -> Vec<(String, String)> {
    let sdl = include_str!("../../../../schema.graphql");
    let doc = async_graphql::parser::parse_schema(sdl).expect("schema.graphql parses");
    let mut out = Vec::new();
    for def in doc.definitions {
        if let TypeSystemDefinition::Type(t) = def {
            let name = t.node.name.node.to_string();
            if !["Query", "Mutation", "Subscription"].contains(&name.as_str()) {
                continue;
            }
            if let TypeKind::Object(o) = &t.node.kind {
                for f in &o.fields {
                    out.push((name.clone(), f.node.name.node.to_string()));
                }
            }
        }
    }
    out
}

fn base(op: &str) -> &str {
    op.split('#').next().unwrap()
}

fn kind_of(op: &str) -> String {
    schema_operations()
        .into_iter()
        .find(|(_, name)| name == base(op))
        .map(|(kind, _)| kind)
        .unwrap_or_else(|| panic!("`{op}` is not in schema.graphql"))
}

#[test]
fn every_operation_of_the_schema_has_a_row() {
    let in_schema: BTreeSet<String> = schema_operations().into_iter().map(|(_, n)| n).collect();
    let in_table: BTreeSet<String> = ROWS.iter().map(|(op, _)| base(op).to_string()).collect();
    let missing: Vec<&String> = in_schema.difference(&in_table).collect();
    let unknown: Vec<&String> = in_table.difference(&in_schema).collect();
    assert!(
        missing.is_empty() && unknown.is_empty(),
        "operations without a row: {missing:?}; rows for no operation: {unknown:?}"
    );
    assert!(in_schema.len() > 60, "{} operations", in_schema.len());
}

// ------------------------------------------------------------------ one cell

fn username(who: Who) -> &'static str {
    match who {
        Who::Anonymous => "applicant_a",
        Who::Session(u) | Who::Token(u, _) => u,
    }
}

async fn token_for(w: &World, who: Who) -> Option<String> {
    match who {
        Who::Anonymous => None,
        Who::Session(u) => Some(w.app.session_token(u).await),
        Who::Token(u, scopes) => Some(w.app.api_token(u, scopes).await),
    }
}

fn code_outcome(code: &str) -> Result<O, String> {
    Ok(match code {
        "UNAUTHENTICATED" => U,
        "FORBIDDEN" => F,
        "NOT_FOUND" => N,
        "INVALID_INPUT" => II,
        "INVALID_TRANSITION" => IT,
        other => return Err(format!("unexpected code {other}")),
    })
}

/// The outcome of a GraphQL response (`data` and `errors`) for the row's spec.
fn judge(op: &str, body: &Value, vars: &Value) -> Result<O, String> {
    if body.get("errors").is_some() {
        return code_outcome(error_code(body));
    }
    let spec = spec_of(op);
    if op == "submitDemands"
        && let Some(code) = body["data"]["submitDemands"][0]["errorCode"].as_str()
    {
        return code_outcome(code);
    }
    let mut v = &body["data"];
    for key in spec.path {
        v = match key.parse::<usize>() {
            Ok(i) => &v[i],
            Err(_) => &v[key],
        };
    }
    if v.is_null() {
        return Ok(H);
    }
    match &spec.want {
        Want::Some => {}
        Want::Eq(want) if v == want => {}
        Want::Var(name) if v == &vars[name] || v.as_str() == vars[name].as_str() => {}
        Want::Eq(want) => return Err(format!("`{}` is {v}, not {want}", spec.path.join("."))),
        Want::Var(name) => {
            return Err(format!(
                "`{}` is {v}, not ${name} = {}",
                spec.path.join("."),
                vars[name]
            ));
        }
    }
    Ok(A)
}

async fn http_cell(w: &World, op: &str, token: Option<&str>, vars: &Value) -> Value {
    w.app.gql(token, spec_of(op).query, vars.clone()).await
}

struct Ws(
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
);

impl Ws {
    async fn send(&mut self, v: Value) {
        self.0.send(Message::text(v.to_string())).await.unwrap();
    }

    /// The next message, or `{"close": code}`.
    async fn next(&mut self) -> Value {
        loop {
            match self.0.next().await {
                Some(Ok(Message::Text(t))) => return serde_json::from_str(t.as_str()).unwrap(),
                Some(Ok(Message::Close(f))) => {
                    return json!({ "close": f.map_or(0, |f| u16::from(f.code)) });
                }
                None | Some(Err(_)) => return json!({ "close": 0 }),
                Some(Ok(_)) => {}
            }
        }
    }
}

/// Fire `event` on `id` as `user` through the service.
async fn fire(w: &World, user: &str, id: uuid::Uuid, event: &str, v: i64, input: Value) {
    w.app
        .services
        .fire(
            w.app.user(user),
            FireEvent {
                instance_id: id,
                event: event.into(),
                expected_version: v,
                idempotency_key: None,
                input,
                reason: None,
            },
        )
        .await
        .unwrap();
}

/// A subscription over a real socket: the first message decides (an `error` with its
/// code, a `next` judged like a response, a close). `myTasks` has no first event of its
/// own: where the table expects `A`, a project of unit A is then submitted and
/// recommended, which adds a task for the own city bureau and then the manager and
/// removes one from the unit; a viewer for whom neither applies (`Q`) gets a probe
/// operation after the subscription and the cell is refused if an error for the
/// subscription arrives before the probe's answer (weaker than the other cells: a late
/// refusal would pass).
async fn ws_cell(
    w: &World,
    op: &str,
    token: Option<&str>,
    vars: &Value,
    expected: O,
) -> (Value, Value) {
    let mut req = format!("ws://{}/graphql/ws", w.app.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "sec-websocket-protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (stream, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let mut ws = Ws(stream);
    let payload = token.map_or(
        json!({}),
        |t| json!({ "Authorization": format!("Bearer {t}") }),
    );
    ws.send(json!({ "type": "connection_init", "payload": payload }))
        .await;
    let ack = ws.next().await;
    if ack["type"] != "connection_ack" {
        return (ack, json!(null));
    }
    ws.send(json!({ "id": "s", "type": "subscribe", "payload": { "query": spec_of(op).query, "variables": vars } }))
        .await;
    if op == "myTasks" {
        if expected == Q {
            ws.send(json!({ "id": "probe", "type": "subscribe", "payload": { "query": "{ viewer { id } }" } }))
                .await;
            loop {
                let m = ws.next().await;
                if m["id"] == "s" || m.get("close").is_some() {
                    return (m, json!(null));
                }
                if m["id"] == "probe" && m["type"] == "complete" {
                    return (json!({ "type": "quiet" }), json!(null));
                }
            }
        }
        if expected != A {
            return (ws.next().await, json!(null));
        }
        let p = w.drafting_project().await;
        let mut input = w.project_data();
        for k in [
            "call_id",
            "closing_date",
            "catalogue_item",
            "applicant_name",
            "contact_name",
            "applicant_kind",
            "part",
            "forward_by",
        ] {
            input.as_object_mut().unwrap().remove(k);
        }
        fire(w, "applicant_a", p.id, "submit", 0, input).await;
        fire(
            w,
            "city_gz",
            p.id,
            "recommend",
            1,
            json!({ "city_opinion": "同意推荐" }),
        )
        .await;
        return (ws.next().await, json!([p.id]));
    }
    (ws.next().await, json!(null))
}

fn judge_ws(op: &str, msg: &Value, vars: &Value) -> Result<O, String> {
    match msg["type"].as_str() {
        Some("quiet") => Ok(Q),
        Some("error") => code_outcome(
            msg["payload"][0]["extensions"]["code"]
                .as_str()
                .unwrap_or("<none>"),
        ),
        Some("next") => judge(op, &msg["payload"], vars),
        _ if msg["close"] == 4403 => Ok(W),
        _ => Err(format!("unexpected message {msg}")),
    }
}

// ------------------------------------------------------------------ the whole matrix

#[derive(Default)]
struct Tally {
    cells: usize,
    refused: usize,
    unchanged_checked: usize,
    failures: Vec<String>,
    actual: Vec<(String, Vec<O>)>,
}

async fn matrix(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut w = World::new(app).await;
    let mut t = Tally::default();
    let only = std::env::var("GRANTFLOW_AUTHZ_ONLY").ok();
    for (op, row) in ROWS {
        if only.as_deref().is_some_and(|o| o != *op) {
            continue;
        }
        let kind = kind_of(op);
        let started = std::time::Instant::now();
        let mut prepared = prepare(&mut w, op).await;
        let mut actual = Vec::new();
        for (col, ((label, who), expected)) in COLUMNS.iter().zip(row).enumerate() {
            t.cells += 1;
            let mut vars = prepared.vars.clone();
            per_cell(&w, op, username(*who), t.cells, &mut vars).await;
            let before = snapshot(w.app.services.store.as_ref(), &prepared.instances).await;
            let token = token_for(&w, *who).await;
            let (got, body) = if kind == "Subscription" {
                let (msg, _) = tokio::time::timeout(
                    StdDuration::from_secs(30),
                    ws_cell(&w, op, token.as_deref(), &vars, *expected),
                )
                .await
                .unwrap_or_else(|_| panic!("{op} as {label}: no message from the socket"));
                (judge_ws(op, &msg, &vars), msg)
            } else {
                let body = http_cell(&w, op, token.as_deref(), &vars).await;
                (judge(op, &body, &vars), body)
            };
            let after = snapshot(w.app.services.store.as_ref(), &prepared.instances).await;
            let got = match got {
                Ok(o) => o,
                Err(why) => {
                    t.failures.push(format!("{op} as {label}: {why}: {body}"));
                    *expected
                }
            };
            actual.push(got);
            if got != *expected {
                t.failures.push(format!(
                    "{op} as {label}: expected {expected:?}, got {got:?}: {body}"
                ));
            }
            let must_not_change = got.refused() || kind == "Query";
            if got.refused() {
                t.refused += 1;
            }
            if must_not_change {
                t.unchanged_checked += 1;
                if before != after {
                    t.failures.push(format!(
                        "{op} as {label} ({got:?}) changed the store:\n{}",
                        diff(&before, &after)
                    ));
                }
            }
            if col == BLIND_COLUMN && BLIND_ROWS.contains(op) && !got.refused() {
                let text = body.to_string();
                if text.contains(UNIT) || text.contains(CONTACT) {
                    t.failures.push(format!(
                        "{op} as the blind reviewer shows who applied: {text}"
                    ));
                }
            }
            if before != after {
                prepared = prepare(&mut w, op).await;
            }
        }
        t.actual.push((op.to_string(), actual));
        if std::env::var_os("GRANTFLOW_AUTHZ_TRACE").is_some() {
            eprintln!("{op}: {:?}", started.elapsed());
        }
    }
    let table: String = t
        .actual
        .iter()
        .map(|(op, cells)| {
            let cells: Vec<String> = cells.iter().map(|c| format!("{c:?}")).collect();
            format!("    ({:<28} [{}]),\n", format!("{op:?},"), cells.join(", "))
        })
        .collect();
    println!(
        "authorisation matrix on {backend:?}: {} rows × {} columns = {} cells; {} refused; {} cells checked that nothing changed",
        t.actual.len(),
        COLUMNS.len(),
        t.cells,
        t.refused,
        t.unchanged_checked
    );
    assert!(
        t.failures.is_empty(),
        "{} of {} cells fail:\n{}\n\nthe table as observed:\n{table}",
        t.failures.len(),
        t.cells,
        t.failures.join("\n")
    );
}

fn diff(before: &str, after: &str) -> String {
    before
        .lines()
        .zip(after.lines())
        .filter(|(b, a)| b != a)
        .map(|(b, a)| {
            let cut = |l: &str| l.chars().take(400).collect::<String>();
            format!("- {}\n+ {}", cut(b), cut(a))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_by_every_role_and_scope_on_sqlite() {
    matrix(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_by_every_role_and_scope_on_postgres() {
    matrix(Backend::Postgres).await;
}
