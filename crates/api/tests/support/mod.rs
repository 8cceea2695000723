//! `spawn_app(backend)`: the whole HTTP application on port 0 with a fresh database (SQLite
//! or PostgreSQL), the shipped workflows, an injected clock and a seeded organisation tree
//! with one user per role; a small GraphQL client over real HTTP that remembers every
//! response body it saw.

#![allow(dead_code)]

pub mod counting;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use chrono::{DateTime, Duration, Utc};
use grantflow_api::ApiSettings;
use grantflow_api::auth;
use grantflow_domain::Registry;
use grantflow_domain::calendar::WorkCalendar;
use grantflow_service::{CreateInstance, ManualClock, Services};
use grantflow_store::{
    Instance, NewOrganisation, NewToken, NewUser, OrgKind, Organisation, Role, Store, User,
};
use grantflow_store_postgres::testing::TempPostgres;
use grantflow_store_sqlite::testing::TempSqlite;
use serde_json::{Value, json};
use uuid::Uuid;

pub use counting::CountingStore;

/// The database an application runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A new SQLite file in a temporary directory.
    Sqlite,
    /// A new database on the server at `GRANTFLOW_TEST_POSTGRES_URL` (default
    /// `postgres://postgres@127.0.0.1:5432/postgres`); the test fails when it is not
    /// reachable.
    Postgres,
}

/// Keeps the test database alive (and removes it on drop).
pub enum TestDb {
    Sqlite(TempSqlite),
    Postgres(TempPostgres),
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => Self::Sqlite(TempSqlite::new().await),
            Backend::Postgres => Self::Postgres(TempPostgres::new().await),
        }
    }

    pub fn shared(&self) -> Arc<dyn Store> {
        match self {
            Self::Sqlite(db) => db.shared(),
            Self::Postgres(db) => db.shared(),
        }
    }
}

pub const PASSWORD: &str = "Demo-password-2024";

pub struct Seed {
    pub province: Organisation,
    pub guangzhou: Organisation,
    pub shenzhen: Organisation,
    pub unit_a: Organisation,
    pub unit_b: Organisation,
    pub users: Vec<User>,
}

impl Seed {
    pub fn user(&self, username: &str) -> &User {
        self.users
            .iter()
            .find(|u| u.username == username)
            .expect("seeded user")
    }
}

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

pub fn registry() -> Registry {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../workflows");
    let mut reg = Registry::default();
    for name in ["demand-collection", "funded-project", "change-request"] {
        let path = format!("{dir}/{name}.toml");
        let text = std::fs::read_to_string(&path).expect("workflow file");
        let wf = grantflow_domain::load_str(&path, &text)
            .workflow
            .expect("valid workflow");
        reg.insert(wf).expect("unique");
    }
    reg
}

/// Hashing with argon2 is slow on purpose; every seeded user shares one hash.
fn password_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| grantflow_api::auth::hash_password(PASSWORD))
}

pub fn start_time() -> DateTime<Utc> {
    "2024-06-03T02:00:00Z".parse().unwrap()
}

pub async fn seed(store: &dyn Store) -> Seed {
    let org = |name: &str, kind, parent: Option<&Organisation>| NewOrganisation {
        name: name.to_string(),
        kind,
        parent_id: parent.map(|p| p.id),
    };
    let province = store
        .create_org(org("广东省市场监督管理局", OrgKind::Province, None))
        .await
        .unwrap();
    let guangzhou = store
        .create_org(org("广州市市场监督管理局", OrgKind::City, Some(&province)))
        .await
        .unwrap();
    let shenzhen = store
        .create_org(org("深圳市市场监督管理局", OrgKind::City, Some(&province)))
        .await
        .unwrap();
    let unit_a = store
        .create_org(org("广州知识产权服务中心", OrgKind::Unit, Some(&guangzhou)))
        .await
        .unwrap();
    let unit_b = store
        .create_org(org("深圳专利运营有限公司", OrgKind::Unit, Some(&shenzhen)))
        .await
        .unwrap();
    let expert_org = store
        .create_org(org("华南理工大学", OrgKind::Unit, Some(&guangzhou)))
        .await
        .unwrap();
    let specs: Vec<(&str, Role, Option<&Organisation>)> = vec![
        ("admin", Role::Admin, Some(&province)),
        ("manager", Role::Manager, Some(&province)),
        ("auditor", Role::Auditor, Some(&province)),
        ("city_gz", Role::City, Some(&guangzhou)),
        ("city_sz", Role::City, Some(&shenzhen)),
        ("applicant_a", Role::Applicant, Some(&unit_a)),
        ("applicant_b", Role::Applicant, Some(&unit_b)),
        ("expert1", Role::Expert, Some(&expert_org)),
        ("expert2", Role::Expert, Some(&expert_org)),
        ("expert3", Role::Expert, Some(&expert_org)),
    ];
    let mut users = Vec::new();
    for (name, role, org) in specs {
        users.push(
            store
                .create_user(NewUser {
                    username: name.to_string(),
                    display_name: format!("{name} 用户"),
                    email: format!("{name}@example.gov.cn"),
                    org_id: org.map(|o| o.id),
                    roles: vec![role],
                    password_hash: password_hash().to_string(),
                    lang: "zh-CN".into(),
                })
                .await
                .unwrap(),
        );
    }
    Seed {
        province,
        guangzhou,
        shenzhen,
        unit_a,
        unit_b,
        users,
    }
}

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
            .get_or_init(|| async {
                self.services
                    .open_call(
                        self.user("manager"),
                        grantflow_service::programme::OpenCall {
                            year: None,
                            title: None,
                            issuer: None,
                            closing_date: None,
                            correction_window_days: None,
                            catalogue: grantflow_programme::catalogue::Catalogue::from_toml_str(
                                TEST_CALL,
                            )
                            .unwrap(),
                        },
                    )
                    .await
                    .unwrap()
                    .id
            })
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
