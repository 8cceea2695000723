//! `spawn_app()`: the whole HTTP application on port 0 with a fresh SQLite database, the
//! shipped workflows, an injected clock and a seeded organisation tree with one user per
//! role; a small GraphQL client over real HTTP.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use grantflow_api::ApiSettings;
use grantflow_domain::Registry;
use grantflow_domain::calendar::WorkCalendar;
use grantflow_service::{ManualClock, Services};
use grantflow_store::{NewOrganisation, NewUser, OrgKind, Organisation, Role, Store, User};
use grantflow_store_sqlite::testing::TempSqlite;
use serde_json::{Value, json};

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
    _db: TempSqlite,
}

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

pub async fn spawn_app() -> TestApp {
    spawn_app_with(ApiSettings::default()).await
}

pub async fn spawn_app_with(settings: ApiSettings) -> TestApp {
    let db = TempSqlite::new().await;
    spawn_on(db.shared(), db, settings).await
}

async fn spawn_on(store: Arc<dyn Store>, db: TempSqlite, settings: ApiSettings) -> TestApp {
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
        _db: db,
    }
}

impl TestApp {
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
        resp.json().await.expect("a JSON body")
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
}

/// The `extensions.code` of the first error.
pub fn error_code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or("<none>")
}
