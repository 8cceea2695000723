//! What the HTTP benchmarks share: the store opened from a URL, and a server on loopback
//! with the benchmark workflow, an organisation, a manager and a bearer token.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use grantflow_domain::Registry;
use grantflow_domain::calendar::WorkCalendar;
use grantflow_service::{Services, SystemClock};
use grantflow_store::bench::{BENCH_WORKFLOW, BaselineWriter};
use grantflow_store::bench_scale::BulkLoader;
use grantflow_store::{
    Lang, NewOrganisation, NewToken, NewUser, OrgKind, Organisation, Role, Store, User,
};
use grantflow_store_postgres::{PostgresOptions, PostgresStore};
use grantflow_store_sqlite::SqliteStore;
use serde_json::Value;
use uuid::Uuid;

use crate::config::redact_url;

/// A store opened from a URL and migrated, with its bare-SQL benchmark writers.
pub struct Opened {
    pub store: Arc<dyn Store>,
    pub baseline: Arc<dyn BaselineWriter>,
    pub loader: Arc<dyn BulkLoader>,
}

pub async fn open(url: &str) -> anyhow::Result<Opened> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let s = PostgresStore::connect_with(PostgresOptions::new(url))
            .await
            .with_context(|| format!("connecting to {}", redact_url(url)))?;
        s.migrate().await?;
        Ok(Opened {
            store: Arc::new(s.clone()),
            baseline: Arc::new(s.clone()),
            loader: Arc::new(s),
        })
    } else {
        let s = SqliteStore::connect(url)
            .await
            .with_context(|| format!("opening {}", redact_url(url)))?;
        s.migrate().await?;
        Ok(Opened {
            store: Arc::new(s.clone()),
            baseline: Arc::new(s.clone()),
            loader: Arc::new(s),
        })
    }
}

/// The GraphQL server of a benchmark, in this process on 127.0.0.1, and a client of it
/// signed in as a manager of its own organisation.
pub struct BenchServer {
    pub services: Services,
    pub registry: Arc<Registry>,
    pub calendar: Arc<WorkCalendar>,
    pub org: Organisation,
    pub user: User,
    pub token_hash: String,
    token: String,
    endpoint: String,
    client: reqwest::Client,
}

impl BenchServer {
    pub async fn start(
        store: Arc<dyn Store>,
        workflows_dir: &std::path::Path,
    ) -> anyhow::Result<Self> {
        let mut registry: Registry = crate::workflows::load_for_serving(workflows_dir)?;
        let bench_wf = grantflow_domain::load_str("bench.toml", BENCH_WORKFLOW)
            .workflow
            .context("the benchmark workflow loads")?;
        registry.insert(bench_wf).map_err(anyhow::Error::msg)?;
        let registry = Arc::new(registry);
        let calendar = Arc::new(WorkCalendar::builtin());
        let services = Services::new(
            store.clone(),
            registry.clone(),
            calendar.clone(),
            Arc::new(SystemClock),
        );
        services.register_workflows().await?;

        let suffix = Uuid::now_v7().simple().to_string();
        let org = store
            .create_org(NewOrganisation {
                name: format!("bench {suffix}"),
                kind: OrgKind::Unit,
                parent_id: None,
            })
            .await?;
        let user = store
            .create_user(NewUser {
                username: format!("bench-{}", &suffix[..12]),
                display_name: "bench".into(),
                email: format!("bench-{suffix}@example.invalid"),
                org_id: Some(org.id),
                roles: vec![Role::Manager],
                password_hash: "unused".into(),
                lang: Lang::En,
            })
            .await?;
        let (token, token_hash) =
            grantflow_api::auth::new_token(grantflow_api::auth::SESSION_PREFIX);
        store
            .create_token(NewToken {
                user_id: user.id,
                token_hash: token_hash.clone(),
                kind: "session".into(),
                name: None,
                scopes: vec![],
                expires_at: None,
            })
            .await?;

        let app = grantflow_api::app(
            services.clone(),
            grantflow_api::ApiSettings {
                rate_limit_per_minute: u32::MAX,
                ..Default::default()
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await;
        });
        Ok(Self {
            services,
            registry,
            calendar,
            org,
            user,
            token_hash,
            token,
            endpoint: format!("http://{addr}/graphql"),
            client: reqwest::Client::new(),
        })
    }

    /// The GraphQL endpoint of this in-process server.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Send one GraphQL request with the manager's token; the response body.
    pub async fn post(&self, body: &Value) -> anyhow::Result<Value> {
        self.post_to(&self.endpoint, body).await
    }

    /// [`BenchServer::post`] to another server's GraphQL `endpoint` on the same database
    /// (the token is stored there).
    pub async fn post_to(&self, endpoint: &str, body: &Value) -> anyhow::Result<Value> {
        Ok(self
            .client
            .post(endpoint)
            .bearer_auth(&self.token)
            .header("accept", "application/graphql-response+json")
            .json(body)
            .send()
            .await?
            .json()
            .await?)
    }
}
