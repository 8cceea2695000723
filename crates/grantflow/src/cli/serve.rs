//! `grantflow serve`: the GraphQL server with the scheduler loop.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use grantflow_api::ApiSettings;
use grantflow_service::{Services, SystemClock};
use secrecy::ExposeSecret;

use crate::config::{Config, redact_url};
use crate::store::open_store;
use crate::workflows::{load_calendar, load_for_serving};

/// Build the services from the configuration: workflows (refusing invalid ones), the
/// calendar, the store (migrated), definitions registered.
pub async fn services(
    config: &Config,
    clock: Arc<dyn grantflow_service::Clock>,
) -> anyhow::Result<Services> {
    let registry = load_for_serving(&config.workflows_dir)?;
    let calendar = load_calendar(config.calendar_file.as_deref(), &config.workflows_dir)?;
    let store = open_store(config).await?;
    let services = Services::new(store, Arc::new(registry), Arc::new(calendar), clock)
        .with_public_url(&config.public_url);
    services
        .register_workflows()
        .await
        .context("registering the workflow definitions")?;
    Ok(services)
}

pub fn api_settings(config: &Config) -> ApiSettings {
    ApiSettings::new(config.production, &config.graphql, &config.auth)
}

pub async fn serve(config: Config) -> anyhow::Result<()> {
    let services = services(&config, Arc::new(SystemClock)).await?;
    let state = grantflow_api::state(services.clone(), api_settings(&config));
    // The web console beside the API, on the same state: one token store, one rate limit.
    let app = grantflow_api::router(state.clone()).merge(grantflow_console::router(state));
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("listening on {}", config.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(
        %addr,
        database = %redact_url(config.database_url.expose_secret()),
        production = config.production,
        "grantflow is serving GraphQL at http://{addr}/graphql"
    );
    println!(
        "grantflow: console at http://{addr}/, GraphQL at http://{addr}/graphql, GraphiQL at http://{addr}/graphiql"
    );

    let (shutdown_tx, mut shutdown_rx) = tokio::sync::watch::channel(false);
    let scheduler = if config.scheduler.enabled {
        let scheduler = build_scheduler(&config, services.clone())?;
        Some(tokio::spawn(async move {
            scheduler
                .run(async move {
                    let _ = shutdown_rx.changed().await;
                })
                .await;
        }))
    } else {
        None
    };
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown_signal().await;
        tracing::info!("shutting down");
    })
    .await
    .context("serving HTTP")?;
    let _ = shutdown_tx.send(true);
    if let Some(handle) = scheduler {
        let _ = handle.await;
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
}

/// The scheduler from the `[scheduler]` and `[mail]` configuration.
pub fn build_scheduler(
    config: &Config,
    services: Services,
) -> anyhow::Result<grantflow_scheduler::Scheduler> {
    let mailer = grantflow_mail::Mailer::from_config(&config.mail).context("mail configuration")?;
    let settings =
        grantflow_scheduler::SchedulerSettings::new(&config.scheduler, &config.public_url);
    grantflow_scheduler::Scheduler::new(services, mailer, settings)
        .context("scheduler configuration")
}
