//! The GraphQL API of grantflow: queries, transition mutations and subscriptions,
//! authenticated by bearer tokens and authorised per role and organisation.
//!
//! [`app`] builds the whole router; tests drive it with `oneshot` or over a real socket.

pub mod auth;
pub mod context;
pub mod directory;
pub mod document_cache;
pub mod error;
pub mod graphiql;
pub mod http;
pub mod limits;
pub mod loaders;
pub mod mutation;
pub mod nesting;
pub mod observe;
pub mod programme;
pub mod public;
pub mod query;
pub mod review;
pub mod scopes;
pub mod subscription;
pub mod throttle;
pub mod types;
pub mod ws;

use std::sync::Arc;
use std::time::Duration;

use async_graphql::Schema;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, header};
use axum::routing::get;
use grantflow_service::Services;
use tower_http::cors::CorsLayer;
use tower_http::trace::TraceLayer;

pub use mutation::MutationRoot;
pub use query::QueryRoot;
pub use subscription::SubscriptionRoot;

pub type GrantflowSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// The `[graphql]` section of the configuration: request limits. Its defaults are the
/// only ones; the binary deserializes this struct directly inside its `Config`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GraphqlSettings {
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_aliases: usize,
    pub max_batch: usize,
    pub body_limit_bytes: usize,
    pub timeout_secs: u64,
    /// Requests per minute per token (or per client address when anonymous).
    pub rate_limit_per_minute: u32,
    /// Allowed CORS origins; empty means same-origin only.
    pub cors_origins: Vec<String>,
    /// Reverse proxies in front of the server that append the client's address to
    /// `X-Forwarded-For` (nginx's `$proxy_add_x_forwarded_for`). 0: the connection's own
    /// address is the client's. Per-address limits count the address the outermost
    /// trusted proxy saw; entries a client wrote itself are never trusted.
    pub trusted_proxy_hops: u8,
    /// Parsed documents kept for operations sent again (`document_cache.rs`); 0: none.
    pub document_cache_entries: usize,
}

impl Default for GraphqlSettings {
    fn default() -> Self {
        Self {
            max_depth: 12,
            max_complexity: 2000,
            max_aliases: 30,
            max_batch: 10,
            body_limit_bytes: 1024 * 1024,
            timeout_secs: 30,
            rate_limit_per_minute: 600,
            cors_origins: Vec::new(),
            trusted_proxy_hops: 0,
            document_cache_entries: 256,
        }
    }
}

/// The `[auth]` section of the configuration: session and reset-token lifetimes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    pub session_ttl_hours: i64,
    pub reset_ttl_minutes: i64,
}

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            session_ttl_hours: 12,
            reset_ttl_minutes: 30,
        }
    }
}

/// API settings, built from the `[graphql]` and `[auth]` sections ([`ApiSettings::new`]);
/// tests set finer values (sub-second timeouts) directly.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    pub production: bool,
    pub max_depth: usize,
    pub max_complexity: usize,
    pub max_aliases: usize,
    pub max_batch: usize,
    pub body_limit_bytes: usize,
    pub timeout: Duration,
    pub rate_limit_per_minute: u32,
    pub cors_origins: Vec<String>,
    pub session_ttl_hours: i64,
    pub reset_ttl_minutes: i64,
    /// How long a WebSocket may wait before its `connection_init` (then 4408).
    pub ws_init_timeout: Duration,
    /// See [`GraphqlSettings::trusted_proxy_hops`].
    pub trusted_proxy_hops: u8,
    /// See [`GraphqlSettings::document_cache_entries`].
    pub document_cache_entries: usize,
}

impl ApiSettings {
    /// The settings of a server from its configuration sections.
    pub fn new(production: bool, graphql: &GraphqlSettings, auth: &AuthSettings) -> Self {
        let GraphqlSettings {
            max_depth,
            max_complexity,
            max_aliases,
            max_batch,
            body_limit_bytes,
            timeout_secs,
            rate_limit_per_minute,
            cors_origins,
            trusted_proxy_hops,
            document_cache_entries,
        } = graphql.clone();
        Self {
            production,
            max_depth,
            max_complexity,
            max_aliases,
            max_batch,
            body_limit_bytes,
            timeout: Duration::from_secs(timeout_secs),
            rate_limit_per_minute,
            cors_origins,
            session_ttl_hours: auth.session_ttl_hours,
            reset_ttl_minutes: auth.reset_ttl_minutes,
            ws_init_timeout: Duration::from_secs(3),
            trusted_proxy_hops,
            document_cache_entries,
        }
    }
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self::new(false, &GraphqlSettings::default(), &AuthSettings::default())
    }
}

/// Shared by every request.
#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    pub settings: Arc<ApiSettings>,
    pub schema: GrantflowSchema,
    pub guards: Arc<Guards>,
}

/// In-process protections shared by HTTP, WebSocket and the resolvers (schema data).
pub struct Guards {
    pub rate: throttle::RateLimiter,
    pub logins: throttle::LoginThrottle,
    /// Public objections per client address (or signed-in user): [`public::OBJECTIONS_PER_HOUR`].
    pub objections: throttle::RateLimiter,
    /// Tells open WebSockets that a user's credentials changed (logout, revocation,
    /// password change or reset, deactivation), so they re-check their token at once.
    pub revocations: tokio::sync::broadcast::Sender<uuid::Uuid>,
    /// Permits for argon2 runs at once: one per core, 2 to 8 (at 19 MiB each).
    pub argon2: Arc<tokio::sync::Semaphore>,
    /// Set once when the server shuts down: open WebSockets close with 1001 (going away).
    pub shutdown: tokio::sync::watch::Sender<bool>,
    /// Parsed documents of operations sent before, whatever the transport.
    pub documents: Arc<document_cache::DocumentCache>,
}

impl Guards {
    pub fn new(settings: &ApiSettings) -> Self {
        Self {
            rate: throttle::RateLimiter::per_minute(settings.rate_limit_per_minute),
            logins: throttle::LoginThrottle::default(),
            objections: throttle::RateLimiter::new(
                public::OBJECTIONS_PER_HOUR,
                chrono::Duration::hours(1),
            ),
            revocations: tokio::sync::broadcast::channel(256).0,
            argon2: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism()
                    .map(std::num::NonZero::get)
                    .unwrap_or(2)
                    .clamp(2, 8),
            )),
            shutdown: tokio::sync::watch::channel(false).0,
            documents: Arc::new(document_cache::DocumentCache::new(
                settings.document_cache_entries,
            )),
        }
    }

    /// The server is shutting down: every open WebSocket says goodbye with a close frame.
    pub fn begin_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Announce that `user`'s tokens may no longer be valid.
    pub fn credentials_changed(&self, user: uuid::Uuid) {
        // No receiver (no open socket) is not an error.
        let _ = self.revocations.send(user);
    }
}

/// The schema with its limits. Introspection and field suggestions are off in production.
pub fn build_schema(settings: &ApiSettings) -> GrantflowSchema {
    build_schema_with(settings, Arc::new(Guards::new(settings)))
}

/// The schema sharing `guards` with the transport.
pub fn build_schema_with(settings: &ApiSettings, guards: Arc<Guards>) -> GrantflowSchema {
    let documents = guards.documents.clone();
    let mut builder = Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot,
    )
    .limit_directives(20)
    .data(guards)
    // First: nothing recursive may see a document or variables nested too deep.
    .extension(nesting::NestingLimit)
    // Argument coercion failures are client errors (INVALID_INPUT), never INTERNAL.
    .extension(error::CoercionErrors)
    .extension(scopes::ScopeGate)
    .extension(limits::QueryLimits {
        max_depth: settings.max_depth,
        max_complexity: settings.max_complexity,
        max_aliases: settings.max_aliases,
        introspection: !settings.production,
    })
    // Last, so innermost: every extension above sees every request, cached or not.
    .extension(document_cache::CachedDocuments(documents));
    if settings.production {
        builder = builder.disable_introspection().disable_suggestions();
    }
    builder.finish()
}

/// The SDL of the schema (`grantflow schema`; committed as `schema.graphql`).
pub fn sdl() -> String {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot,
    )
    .finish()
    .sdl()
}

/// The whole HTTP application.
pub fn app(services: Services, settings: ApiSettings) -> Router {
    router(state(services, settings))
}

/// The state every handler shares. Built once by `grantflow serve`, which hands it to the
/// API's [`router`] and to the console (whose operations run through
/// [`http::execute_as`], the same path as an HTTP request).
pub fn state(services: Services, settings: ApiSettings) -> AppState {
    let guards = Arc::new(Guards::new(&settings));
    AppState {
        schema: build_schema_with(&settings, guards.clone()),
        guards,
        services,
        settings: Arc::new(settings),
    }
}

/// The API's routes over a shared [`AppState`].
pub fn router(state: AppState) -> Router {
    let settings = state.settings.clone();
    let mut router = Router::new()
        .route("/graphql", get(http::graphql).post(http::graphql))
        .route("/graphql/ws", get(ws::upgrade))
        .route("/graphiql", get(graphiql::page))
        .route("/graphiql/assets/{name}", get(graphiql::asset))
        .route("/healthz", get(http::healthz))
        .route("/readyz", get(http::readyz))
        .route("/public/publicity.json", get(public::publicity_json))
        .route("/public/publicity.csv", get(public::publicity_csv))
        .with_state(state)
        .layer(DefaultBodyLimit::max(settings.body_limit_bytes))
        .layer(axum::middleware::from_fn_with_state(
            settings.timeout,
            http::request_timeout,
        ))
        .layer(TraceLayer::new_for_http().make_span_with(observe::request_span))
        .layer(axum::middleware::from_fn(observe::ensure_request_id));
    if !settings.cors_origins.is_empty() {
        let origins: Vec<HeaderValue> = settings
            .cors_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        router = router.layer(
            CorsLayer::new()
                .allow_origin(origins)
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT]),
        );
    }
    router
}
