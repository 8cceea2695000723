//! One transition through GraphQL reads its instance once, inside its transaction, locked
//! and only if the requester may see it (issue 16): the store calls are the bearer's
//! lookup and one `apply_transition`, whoever fires. An instance the requester may not
//! see is `NOT_FOUND`, answered exactly as for an id that does not exist, and nothing is
//! written.

use crate::support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use grantflow_api::ApiSettings;
use serde_json::{Value, json};
use support::{Backend, TestApp, error_code, spawn_counting};
use uuid::Uuid;

const TRANSITION: &str = "mutation($id: ID!, $event: String!, $v: Int!, $input: JSON) { transition(instanceId: $id, event: $event, expectedVersion: $v, input: $input) { instance { id version state { id } } } }";

fn submit_input() -> Value {
    json!({
        "project_name": "知识产权纠纷调解能力提升",
        "budget": "300000",
        "indicators": [{ "category": "output_quantity", "name": "调解纠纷案件数", "unit": "件", "target": 200, "direction": "higher_is_better", "weight": 1 }, { "name": "受益单位", "category": "effect_social", "unit": "家", "target": 20 }],
        "application_files": [{ "name": "申报书.pdf", "sha256": "a".repeat(64), "size": 2048 }]
    })
}

/// A project of unit A submitted to the Guangzhou city bureau (version 1).
async fn submitted(app: &TestApp) -> Uuid {
    let i = app
        .create_instance("applicant_a", "funded-project", None, None, "项目")
        .await;
    app.fire("applicant_a", i.id, "submit", submit_input())
        .await;
    i.id
}

/// The response, with the instance id written as `ID` (to compare a hidden with a
/// missing instance).
async fn recommend(app: &TestApp, token: &str, id: Uuid) -> Value {
    let body = app
        .gql(
            Some(token),
            TRANSITION,
            json!({ "id": id, "event": "recommend", "v": 1, "input": { "city_opinion": "同意推荐" } }),
        )
        .await;
    serde_json::from_str(&body.to_string().replace(&id.to_string(), "ID")).unwrap()
}

async fn reads_the_instance_only_inside_the_transaction(backend: Backend) {
    let (app, store) = spawn_counting(backend, ApiSettings::default()).await;
    let id = submitted(&app).await;

    // Everyone who may not see it: another unit, another city, an expert not assigned.
    let city_gz = app.session_token("city_gz").await;
    let missing = recommend(&app, &city_gz, Uuid::now_v7()).await;
    assert_eq!(error_code(&missing), "NOT_FOUND", "{missing}");
    let strip = |mut body: Value| {
        // The request id differs per request, nothing else may.
        if let Some(ext) = body["errors"][0]["extensions"].as_object_mut() {
            ext.remove("requestId");
        }
        body
    };
    for who in ["applicant_b", "city_sz", "expert1"] {
        let token = app.session_token(who).await;
        store.reset();
        let hidden = recommend(&app, &token, id).await;
        assert_eq!(
            strip(hidden.clone()),
            strip(missing.clone()),
            "{who}: hidden as a missing instance"
        );
        let calls = store.calls();
        assert_eq!(calls.get("get_instance"), None, "{who}: {calls:?}");
        assert_eq!(calls.get("apply_transition"), Some(&1), "{who}: {calls:?}");
    }
    let instance = app.services.store.get_instance(id).await.unwrap();
    assert_eq!(
        (instance.state.as_str(), instance.version),
        ("city_review", 1)
    );

    // The city bureau of the unit: the bearer, then one transaction.
    store.reset();
    let done = recommend(&app, &city_gz, id).await;
    assert_eq!(
        done["data"]["transition"]["instance"]["state"]["id"], "formal_check",
        "{done}"
    );
    let calls = store.calls();
    let want: BTreeMap<&str, u64> = [("find_token", 1), ("get_user", 1), ("apply_transition", 1)]
        .into_iter()
        .collect();
    assert_eq!(
        calls, want,
        "the instance is read only inside the transaction"
    );
}

#[tokio::test]
async fn a_transition_reads_its_instance_only_inside_its_transaction_on_sqlite() {
    reads_the_instance_only_inside_the_transaction(Backend::Sqlite).await;
}

#[tokio::test]
async fn a_transition_reads_its_instance_only_inside_its_transaction_on_postgres() {
    reads_the_instance_only_inside_the_transaction(Backend::Postgres).await;
}

/// The SQL statements sqlx runs on a thread while it records there (its `sqlx::query`
/// events: the statement, or for a short one its summary), by their first words.
#[derive(Clone, Default)]
struct Statements(Arc<Mutex<Vec<String>>>);

thread_local! {
    /// Whether [`Statements`] records this thread's statements now.
    static RECORDING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl Statements {
    /// The recorder, installed as the process's global subscriber once. Global, not a
    /// scoped default: with a scoped one alive, tracing computes a callsite's interest
    /// from the default of whichever thread meets the callsite first, so a statement first
    /// logged by a test running beside this one was switched off for good (the test then
    /// saw no statements at all in a full run). It records only on a thread that asks.
    fn global() -> &'static Self {
        use tracing_subscriber::Layer as _;
        use tracing_subscriber::layer::SubscriberExt as _;
        static RECORDER: std::sync::OnceLock<Statements> = std::sync::OnceLock::new();
        RECORDER.get_or_init(|| {
            let statements = Self::default();
            let subscriber = tracing_subscriber::registry().with(
                statements.clone().with_filter(
                    tracing_subscriber::filter::Targets::new()
                        .with_target("sqlx::query", tracing::Level::TRACE),
                ),
            );
            tracing::subscriber::set_global_default(subscriber)
                .expect("no other test of this binary installs a global subscriber");
            statements
        })
    }

    /// The statements this thread runs during `f`.
    async fn of<T>(f: impl std::future::Future<Output = T>) -> (T, Vec<String>) {
        let recorder = Self::global();
        recorder.0.lock().unwrap().clear();
        RECORDING.with(|r| r.set(true));
        let out = f.await;
        RECORDING.with(|r| r.set(false));
        let statements = std::mem::take(&mut *recorder.0.lock().unwrap());
        (out, statements)
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Statements {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        #[derive(Default)]
        struct Sql {
            statement: String,
            summary: String,
        }
        impl tracing::field::Visit for Sql {
            fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
                match field.name() {
                    "db.statement" => self.statement = value.to_string(),
                    "summary" => self.summary = value.to_string(),
                    _ => {}
                }
            }
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                match field.name() {
                    "db.statement" => self.statement = format!("{value:?}"),
                    "summary" => self.summary = format!("{value:?}"),
                    _ => {}
                }
            }
        }
        if event.metadata().target() == "sqlx::query" && RECORDING.with(std::cell::Cell::get) {
            let mut sql = Sql::default();
            event.record(&mut sql);
            let text = if sql.statement.trim().is_empty() {
                sql.summary
            } else {
                sql.statement
            };
            self.0.lock().unwrap().push(first_words(&text));
        }
    }
}

/// A statement by its first words; a batch of writes (`WITH w0 AS (…), w1 AS (…) …`, see
/// `grantflow_store::sql::WriteBatch`) by the first words of each of its statements.
fn first_words(text: &str) -> String {
    let words = |s: &str, n: usize| s.split_whitespace().take(n).collect::<Vec<_>>().join(" ");
    // sqlx logs a long statement pretty-printed (line breaks, `( ` after a bracket).
    let text = words(text, usize::MAX).replace("( ", "(");
    if !text.starts_with("WITH w0 AS (") {
        return words(&text, 4);
    }
    let parts: Vec<String> = (0..)
        .map_while(|i| {
            let head = format!("w{i} AS (");
            let at = text.find(&head)? + head.len();
            let part = words(&text[at..], 3);
            Some(
                part.split('(')
                    .next()
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            )
        })
        .collect();
    format!("batch: {}", parts.join(" | "))
}

/// On PostgreSQL (whose driver runs statements on the calling task; SQLite's runs them on
/// a thread of its own): one GraphQL transition, statement by statement. The instance is
/// read once, locked, after `BEGIN`; before issue 16 it was also read (and its visibility
/// checked) before the transaction.
#[tokio::test]
async fn a_transition_on_postgres_reads_its_instance_once_locked() {
    // Not counting: the application's own store, which announces inside the transaction.
    let app = support::spawn_app(Backend::Postgres).await;
    let id = submitted(&app).await;
    let city_gz = app.session_token("city_gz").await;
    // On this test's thread (`#[tokio::test]` runs the server's tasks on it too).
    let (done, statements) = Statements::of(recommend(&app, &city_gz, id)).await;
    assert_eq!(
        done["data"]["transition"]["instance"]["state"]["id"], "formal_check",
        "{done}"
    );
    println!(
        "{} statements:\n{}",
        statements.len(),
        statements.join("\n")
    );
    // The bearer (token and user in one statement); then the transaction (sqlx sends its
    // `BEGIN` with the first statement, unlogged): the instance locked if the city bureau
    // may see it, the manager's notification's recipients, and every write in one
    // statement: the new state, its history record, the old state's timers cancelled and
    // the new ones inserted, the notification's outbox row, the announcement to the
    // other replicas.
    let expected = [
        "SELECT u.id, u.username, u.display_name,",
        "SELECT id, workflow_id, workflow_version,",
        "SELECT u.id, u.username, u.display_name,",
        "batch: UPDATE instances SET | INSERT INTO history | UPDATE timers SET | \
         INSERT INTO timers | INSERT INTO outbox | SELECT pg_notify",
        "COMMIT",
    ];
    assert_eq!(statements, expected, "{statements:#?}");
}
