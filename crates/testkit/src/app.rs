//! `spawn_app(backend)`: the whole HTTP application on port 0 with a fresh database (SQLite
//! or PostgreSQL), the shipped workflows, an injected clock and a seeded organisation tree
//! with one user per role; a small GraphQL client over real HTTP that remembers every
//! response body it saw.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use chrono::Duration;
use grantflow_api::ApiSettings;
use grantflow_api::auth;
use grantflow_domain::calendar::WorkCalendar;
use grantflow_service::{CreateInstance, FireEvent, ManualClock, Services};
use grantflow_store::{Instance, NewToken, Store, User};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::counting::CountingStore;
use crate::db::{Backend, TestDb};
use crate::seed::{PASSWORD, Seed, seed, start_time};
use crate::workflows::registry;

pub struct TestApp {
    pub addr: SocketAddr,
    pub services: Services,
    pub clock: Arc<ManualClock>,
    pub seed: Seed,
    pub http: reqwest::Client,
    /// Every response body `gql` received, in order.
    pub bodies: Mutex<Vec<String>>,
    /// The call applications belong to, opened on first use ([`TestApp::call_id`]).
    call: tokio::sync::OnceCell<Uuid>,
    _db: TestDb,
}

/// A one-item call closing on 2024-06-28: applications of tests belong to it.
pub const TEST_CALL: &str = r#"
year = 2024
title = "2024年度知识产权工作项目申报（测试）"
deadline = "2024-06-28"
[[categories]]
category = "protection"
title = "强化知识产权保护"
[[categories.policy_areas]]
name = "知识产权保护体系建设"
[[categories.policy_areas.items]]
id = "2024-3-1-1"
number = 1
name = "知识产权纠纷调解能力提升"
direction = "建设调解工作站，提升纠纷调解能力"
applicant = "符合申报条件的单位"
part = "retained_provincial"
"#;

/// The item of [`TEST_CALL`] (保留省级; units and provincial organisations apply).
pub const TEST_ITEM: &str = "2024-3-1-1";

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, ApiSettings::default()).await
}

pub async fn spawn_app_with(backend: Backend, settings: ApiSettings) -> TestApp {
    let db = TestDb::new(backend).await;
    spawn_on(db.shared(), db, settings).await
}

/// The application on a [`CountingStore`] around the backend: the seed is written before
/// the counts are reset.
pub async fn spawn_counting(
    backend: Backend,
    settings: ApiSettings,
) -> (TestApp, Arc<CountingStore>) {
    let db = TestDb::new(backend).await;
    let counting = Arc::new(CountingStore::new(db.shared()));
    let app = spawn_on(counting.clone(), db, settings).await;
    counting.reset();
    (app, counting)
}

async fn spawn_on(store: Arc<dyn Store>, db: TestDb, settings: ApiSettings) -> TestApp {
    let clock = Arc::new(ManualClock::new(start_time()));
    let services = Services::new(
        store.clone(),
        Arc::new(registry()),
        Arc::new(WorkCalendar::builtin()),
        clock.clone(),
    );
    services.register_workflows().await.unwrap();
    let seed = seed(store.as_ref()).await;
    let app = grantflow_api::app(services.clone(), settings);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });
    TestApp {
        addr,
        services,
        clock,
        seed,
        http: reqwest::Client::new(),
        bodies: Mutex::new(Vec::new()),
        call: tokio::sync::OnceCell::new(),
        _db: db,
    }
}

impl TestApp {
    /// The id of the test call (opened by the manager on first use).
    pub async fn call_id(&self) -> Uuid {
        *self
            .call
            .get_or_init(|| crate::calls::open_test_call(&self.services, self.user("manager")))
            .await
    }

    pub fn url(&self) -> String {
        format!("http://{}/graphql", self.addr)
    }

    /// POST a GraphQL request; returns the whole response body.
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let mut req = self
            .http
            .post(self.url())
            .header("content-type", "application/json")
            .header("accept", "application/graphql-response+json")
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("the server answers");
        let text = resp.text().await.expect("a body");
        self.bodies.lock().unwrap().push(text.clone());
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }

    /// Like `gql` but fails the test on any error.
    pub async fn ok(&self, token: Option<&str>, query: &str, variables: Value) -> Value {
        let body = self.gql(token, query, variables).await;
        assert!(body.get("errors").is_none(), "unexpected errors: {body:#}");
        body["data"].clone()
    }

    pub async fn login(&self, username: &str) -> String {
        let data = self
            .ok(
                None,
                "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }",
                json!({ "u": username, "p": PASSWORD }),
            )
            .await;
        data["login"]["token"].as_str().unwrap().to_string()
    }

    pub fn user(&self, username: &str) -> &User {
        self.seed.user(username)
    }

    /// A session token for a seeded user, written straight to the store (login hashes with
    /// argon2, which is slow in debug builds; `login` itself is tested in `auth.rs`).
    pub async fn session_token(&self, username: &str) -> String {
        self.mint_token(username, "session", &auth::scope::ALL)
            .await
    }

    /// An API token with `scopes` for a seeded user, written straight to the store.
    pub async fn api_token(&self, username: &str, scopes: &[&str]) -> String {
        self.mint_token(username, "api", scopes).await
    }

    async fn mint_token(&self, username: &str, kind: &str, scopes: &[&str]) -> String {
        let prefix = if kind == "session" {
            auth::SESSION_PREFIX
        } else {
            auth::API_PREFIX
        };
        let (token, token_hash) = auth::new_token(prefix);
        self.services
            .store
            .create_token(NewToken {
                user_id: self.user(username).id,
                token_hash,
                kind: kind.to_string(),
                name: (kind == "api").then(|| "test".to_string()),
                scopes: scopes.iter().map(ToString::to_string).collect(),
                expires_at: Some(self.services.now() + Duration::hours(12)),
            })
            .await
            .unwrap();
        token
    }

    /// Create an instance through the service as `username` (a funded project, or the
    /// given workflow), optionally for another unit (managers) or under a parent.
    pub async fn create_instance(
        &self,
        username: &str,
        workflow_id: &str,
        org: Option<Uuid>,
        parent: Option<Uuid>,
        title: &str,
    ) -> Instance {
        let (call_id, catalogue_item) = if workflow_id == "change-request" {
            (None, None)
        } else {
            (Some(self.call_id().await), Some(TEST_ITEM.to_string()))
        };
        self.services
            .create_instance(
                self.user(username),
                CreateInstance {
                    workflow_id: workflow_id.to_string(),
                    org_id: org,
                    parent_id: parent,
                    title: title.to_string(),
                    data: json!({}),
                    call_id,
                    catalogue_item,
                },
            )
            .await
            .unwrap()
    }

    /// Fire `event` with `input` through the service as `username`, at the instance's
    /// current version; it must succeed.
    pub async fn fire(&self, username: &str, id: Uuid, event: &str, input: Value) {
        self.fire_with(username, id, event, input, None)
            .await
            .unwrap_or_else(|e| panic!("`{event}`: {e:?}"));
    }

    /// [`fire`](Self::fire) with a reason, returning the service's answer.
    pub async fn fire_with(
        &self,
        username: &str,
        id: Uuid,
        event: &str,
        input: Value,
        reason: Option<&str>,
    ) -> Result<grantflow_store::Instance, grantflow_service::ServiceError> {
        let version = self.services.store.get_instance(id).await.unwrap().version;
        self.services
            .fire(
                self.user(username),
                FireEvent {
                    instance_id: id,
                    event: event.into(),
                    expected_version: version,
                    idempotency_key: None,
                    input,
                    reason: reason.map(str::to_string),
                },
            )
            .await
            .map(|applied| applied.instance)
    }

    /// Every response body seen so far, joined (to search for things that must not leak).
    pub fn all_bodies(&self) -> String {
        self.bodies.lock().unwrap().join("\n")
    }
}

/// The `extensions.code` of the first error.
pub fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("<none>")
}
