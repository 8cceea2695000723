//! Prometheus `/metrics` on its own listen address (`[metrics] listen`), apart from the
//! public API: the `metrics` facade records from every crate (HTTP and GraphQL latency,
//! transitions, timers, deliveries, scheduler passes) and `metrics-exporter-prometheus`
//! renders them. Queue depths and the connection pool are read at scrape time.

use std::net::SocketAddr;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use grantflow_service::Services;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde::Deserialize;

/// The `[metrics]` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address of the metrics listener (e.g. `0.0.0.0:9090`); none (the default) turns
    /// metrics off. Keep it off the public network: it needs no credentials.
    pub listen: Option<String>,
}

/// Latency buckets in seconds: from a fast query to a late timer.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0, 900.0, 3600.0,
];

#[derive(Clone)]
struct MetricsState {
    handle: PrometheusHandle,
    services: Services,
}

/// Install the recorder and serve `/metrics` on `listen`; the bound address.
pub async fn start(listen: &str, services: Services) -> anyhow::Result<SocketAddr> {
    let handle = PrometheusBuilder::new()
        .set_buckets(BUCKETS)
        .context("metrics buckets")?
        .install_recorder()
        .context("installing the metrics recorder")?;
    describe();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("metrics: listening on {listen}"))?;
    let addr = listener.local_addr()?;
    let app = Router::new()
        .route("/metrics", get(scrape))
        .with_state(MetricsState { handle, services });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(error = %e, "the metrics listener stopped");
        }
    });
    Ok(addr)
}

async fn scrape(State(state): State<MetricsState>) -> Response {
    let store = &state.services.store;
    let pool = store.pool_status();
    metrics::gauge!("grantflow_db_pool_connections", "state" => "open").set(f64::from(pool.open));
    metrics::gauge!("grantflow_db_pool_connections", "state" => "idle").set(f64::from(pool.idle));
    metrics::gauge!("grantflow_db_pool_connections", "state" => "in_use")
        .set(f64::from(pool.open.saturating_sub(pool.idle)));
    metrics::gauge!("grantflow_db_pool_max_connections").set(f64::from(pool.max));
    match store.queue_stats(state.services.now()).await {
        Ok(stats) => {
            metrics::gauge!("grantflow_database_up").set(1.0);
            metrics::gauge!("grantflow_timers", "state" => "due").set(stats.timers_due as f64);
            metrics::gauge!("grantflow_timers", "state" => "pending")
                .set(stats.timers_pending as f64);
            metrics::gauge!("grantflow_timers", "state" => "claimed")
                .set(stats.timers_claimed as f64);
            for (status, n) in stats.outbox {
                metrics::gauge!("grantflow_outbox_messages", "status" => status.as_str())
                    .set(n as f64);
                if status == grantflow_store::OutboxStatus::Dead {
                    metrics::gauge!("grantflow_outbox_dead_letters").set(n as f64);
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "metrics: cannot read the queues");
            metrics::gauge!("grantflow_database_up").set(0.0);
        }
    }
    state.handle.run_upkeep();
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.handle.render(),
    )
        .into_response()
}

/// HELP lines for the series.
fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_histogram!(
        "grantflow_http_request_seconds",
        Unit::Seconds,
        "HTTP requests by route pattern, method and status"
    );
    describe_histogram!(
        "grantflow_graphql_operation_seconds",
        Unit::Seconds,
        "GraphQL operations by operation name and outcome (ok or the first error's code)"
    );
    describe_counter!(
        "grantflow_transitions_total",
        "Transition attempts by workflow, event and outcome"
    );
    describe_histogram!(
        "grantflow_timer_lag_seconds",
        Unit::Seconds,
        "How long after its fire time a timer was picked up"
    );
    describe_counter!(
        "grantflow_timers_total",
        "Timers handled by kind and outcome"
    );
    describe_gauge!(
        "grantflow_timers",
        "Timers by state (due = pending and due now)"
    );
    describe_gauge!("grantflow_outbox_messages", "Outbox messages by status");
    describe_gauge!(
        "grantflow_outbox_dead_letters",
        "Messages given up on (status dead)"
    );
    describe_counter!(
        "grantflow_mail_deliveries_total",
        "E-mail delivery attempts by outcome (sent, retry, dead)"
    );
    describe_gauge!(
        "grantflow_db_pool_connections",
        "Database connections by state"
    );
    describe_gauge!("grantflow_db_pool_max_connections", "The pool's maximum");
    describe_gauge!(
        "grantflow_database_up",
        "1 when the last scrape could read the database"
    );
    describe_histogram!(
        "grantflow_scheduler_pass_seconds",
        Unit::Seconds,
        "Duration of one scheduler pass (timers, digests, outbox)"
    );
}
