//! `grantflow serve`: the GraphQL server with the scheduler loop.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

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
    crate::store::listen_for_replicas(&config, services.clone()).await?;
    let state = grantflow_api::state(services.clone(), api_settings(&config));
    let guards = state.guards.clone();
    // The web console beside the API, on the same state: one token store, one rate limit.
    let mut app = grantflow_api::router(state.clone()).merge(grantflow_console::router(state));
    if let Some(listen) = &config.metrics.listen {
        let addr = crate::metrics::start(listen, services.clone()).await?;
        app = app.layer(axum::middleware::from_fn(
            grantflow_api::observe::track_http,
        ));
        println!("grantflow: metrics at http://{addr}/metrics");
    }
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

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let scheduler = if config.scheduler.enabled {
        Some(Arc::new(build_scheduler(&config, services.clone())?))
    } else {
        None
    };
    let mut scheduler_task = scheduler.clone().map(|scheduler| {
        let stop = stopped(stop_rx.clone());
        tokio::spawn(async move { scheduler.run(stop).await })
    });
    let mut server = tokio::spawn(
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(stopped(stop_rx))
        .into_future(),
    );
    tokio::select! {
        () = shutdown_signal() => {}
        ended = &mut server => {
            stop_tx.send_replace(true);
            return match ended {
                Ok(result) => result.context("serving HTTP"),
                Err(e) => Err(anyhow::anyhow!("the HTTP server stopped: {e}")),
            };
        }
    }

    // Stop accepting, tell sockets and the scheduler; everything running gets until the
    // end of the grace period.
    let grace = Duration::from_secs(config.shutdown_grace_secs);
    tracing::info!(grace_secs = grace.as_secs(), "shutting down");
    println!(
        "grantflow: shutting down (grace period {}s)",
        grace.as_secs()
    );
    let deadline = tokio::time::Instant::now() + grace;
    stop_tx.send_replace(true);
    guards.begin_shutdown();
    match tokio::time::timeout_at(deadline, &mut server).await {
        Ok(Ok(result)) => result.context("serving HTTP")?,
        Ok(Err(e)) => tracing::warn!(error = %e, "the HTTP server stopped abnormally"),
        Err(_) => {
            server.abort();
            tracing::warn!("grace period over: requests still running were cut off");
        }
    }
    if let Some(task) = scheduler_task.as_mut()
        && tokio::time::timeout_at(deadline, &mut *task).await.is_err()
    {
        task.abort();
        // Wait for the cancelled batch to be dropped before giving its claims back.
        let _ = task.await;
        tracing::warn!("grace period over: the scheduler's batch was cut off");
    }
    if let Some(scheduler) = scheduler {
        match scheduler.release_claims().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(released = n, "claims given back"),
            Err(e) => {
                tracing::warn!(error = %e, "cannot give the claims back; their leases run out");
            }
        }
    }
    tracing::info!("stopped");
    println!("grantflow: stopped");
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
