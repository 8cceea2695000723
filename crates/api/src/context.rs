//! Per-request context available to every resolver.

use std::sync::Arc;

use async_graphql::Context;
use async_graphql::dataloader::{DataLoader, HashMapCache};
use grantflow_service::Services;
use grantflow_store::Role;

use crate::ApiSettings;
use crate::auth::Viewer;
use crate::error::{ApiError, ApiResult};
use crate::loaders::StoreLoader;

/// Data attached to each GraphQL request.
pub struct RequestContext {
    pub services: Services,
    pub settings: Arc<ApiSettings>,
    pub request_id: String,
    pub viewer: Option<Viewer>,
    /// The client's address (for the login throttle), when the server knows it.
    pub client_addr: Option<std::net::IpAddr>,
    /// Batches loads by reference and caches them for the request (a subscription's
    /// context lives as long as its connection: it turns the cache off).
    pub loader: DataLoader<StoreLoader, HashMapCache>,
}

impl RequestContext {
    pub fn new(
        services: Services,
        settings: Arc<ApiSettings>,
        request_id: String,
        viewer: Option<Viewer>,
    ) -> Self {
        let loader = DataLoader::with_cache(
            StoreLoader::new(services.clone()),
            tokio::spawn,
            HashMapCache::default(),
        );
        Self {
            services,
            settings,
            request_id,
            viewer,
            client_addr: None,
            loader,
        }
    }

    pub fn with_client_addr(mut self, addr: Option<std::net::IpAddr>) -> Self {
        self.client_addr = addr;
        self
    }
}

/// Run argon2 work (hashing or verifying a password) off the async workers, at most
/// [`crate::Guards::argon2`] at once: each run takes 19 MiB and a core for a while, so a
/// flood of logins queues (under the request timeout) instead of exhausting memory.
pub async fn argon2<T: Send + 'static>(
    ctx: &Context<'_>,
    work: impl FnOnce() -> T + Send + 'static,
) -> ApiResult<T> {
    let internal = |e: &dyn std::fmt::Display| ApiError::internal(&rc(ctx).request_id, e);
    let permit = guards(ctx)
        .argon2
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| internal(&e))?;
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work()
    })
    .await
    .map_err(|e| internal(&e))
}

/// The protections shared with the transport (schema data).
pub fn guards<'a>(ctx: &'a Context<'_>) -> &'a crate::Guards {
    ctx.data_unchecked::<std::sync::Arc<crate::Guards>>()
}

pub fn rc<'a>(ctx: &'a Context<'_>) -> &'a RequestContext {
    ctx.data_unchecked::<RequestContext>()
}

/// The authenticated viewer, or UNAUTHENTICATED.
pub fn viewer<'a>(ctx: &'a Context<'_>) -> ApiResult<&'a Viewer> {
    rc(ctx)
        .viewer
        .as_ref()
        .ok_or_else(ApiError::unauthenticated)
}

/// The viewer, who must hold `scope` (API tokens) — read access for queries.
pub fn viewer_with_scope<'a>(ctx: &'a Context<'_>, scope: &str) -> ApiResult<&'a Viewer> {
    let v = viewer(ctx)?;
    if !v.has_scope(scope) {
        return Err(ApiError::forbidden().with_message(
            format!("该令牌缺少权限范围「{scope}」"),
            format!("this token lacks the `{scope}` scope"),
        ));
    }
    Ok(v)
}

/// The viewer, signed in with a login session: account changes (password, notification
/// preference, tokens) cannot be made with an API token handed to a client, whatever its
/// scopes.
pub fn viewer_with_session<'a>(ctx: &'a Context<'_>) -> ApiResult<&'a Viewer> {
    let v = viewer(ctx)?;
    if v.token.kind != "session" {
        return Err(ApiError::forbidden().with_message(
            "此操作须使用登录会话，不能使用 API 令牌",
            "this needs a login session, not an API token",
        ));
    }
    Ok(v)
}

/// The viewer, who must hold one of `roles`.
pub fn viewer_with_role<'a>(ctx: &'a Context<'_>, roles: &[Role]) -> ApiResult<&'a Viewer> {
    let v = viewer(ctx)?;
    if roles.iter().any(|r| v.has_role(*r)) {
        Ok(v)
    } else {
        let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        Err(ApiError::forbidden().with_details(serde_json::json!({ "requiredRoles": names })))
    }
}

#[allow(
    clippy::needless_pass_by_value,
    reason = "called as `map_err(|e| service_err(ctx, e))`"
)]
pub fn service_err(ctx: &Context<'_>, e: grantflow_service::ServiceError) -> async_graphql::Error {
    ApiError::user_facing(&e, &rc(ctx).request_id).into()
}

pub fn store_err(ctx: &Context<'_>, e: grantflow_store::StoreError) -> async_graphql::Error {
    ApiError::user_facing(
        &grantflow_service::ServiceError::Store(e),
        &rc(ctx).request_id,
    )
    .into()
}
