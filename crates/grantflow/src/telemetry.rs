//! OpenTelemetry export (`[telemetry]`, off by default): the tracing spans — each HTTP
//! request and, inside it, each GraphQL operation (span `graphql <operation>`, attribute
//! `graphql.operation.name`) — sent to a collector over OTLP/HTTP (protobuf), batched on
//! a background thread. Export failures never fail a request: spans are dropped.

use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use serde::Deserialize;

/// The `[telemetry]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Base URL of an OTLP/HTTP collector (e.g. `http://otel-collector:4318`; spans go to
    /// `/v1/traces` under it). None (the default) turns the export off.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported spans.
    pub service_name: String,
    /// Longest wait before a batch of finished spans is sent, in milliseconds.
    pub export_delay_ms: u64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: "grantflow".into(),
            export_delay_ms: 5_000,
        }
    }
}

/// The traces URL of a collector's base URL (a URL already ending in `/v1/traces` is
/// kept as it is).
pub fn traces_url(endpoint: &str) -> String {
    let base = endpoint.trim_end_matches('/');
    if base.ends_with("/v1/traces") {
        base.to_string()
    } else {
        format!("{base}/v1/traces")
    }
}

/// The tracer provider exporting to the configured collector; `None` when export is off.
pub fn provider(config: &TelemetryConfig) -> anyhow::Result<Option<SdkTracerProvider>> {
    let Some(endpoint) = config.otlp_endpoint.as_deref() else {
        return Ok(None);
    };
    anyhow::ensure!(
        endpoint.starts_with("http://") || endpoint.starts_with("https://"),
        "telemetry.otlp_endpoint must be an http:// or https:// URL"
    );
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_endpoint(traces_url(endpoint))
        .with_timeout(Duration::from_secs(10))
        .build()
        .context("building the OTLP exporter")?;
    let processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(
            BatchConfigBuilder::default()
                .with_scheduled_delay(Duration::from_millis(config.export_delay_ms.max(1)))
                .build(),
        )
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(
            Resource::builder()
                .with_service_name(config.service_name.clone())
                .build(),
        )
        .build();
    Ok(Some(provider))
}

/// The tracing layer that turns spans into OpenTelemetry spans of `provider`.
pub fn layer<S>(provider: &SdkTracerProvider) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    tracing_opentelemetry::layer().with_tracer(provider.tracer("grantflow"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_is_off_by_default_and_urls_get_their_path() {
        assert!(provider(&TelemetryConfig::default()).unwrap().is_none());
        assert_eq!(
            traces_url("http://collector:4318/"),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://collector:4318/v1/traces"),
            "http://collector:4318/v1/traces"
        );
        let bad = TelemetryConfig {
            otlp_endpoint: Some("collector:4318".into()),
            ..TelemetryConfig::default()
        };
        assert!(
            provider(&bad)
                .unwrap_err()
                .to_string()
                .contains("http:// or https://")
        );
    }
}
