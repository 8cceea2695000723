//! OpenTelemetry export (`[telemetry] otlp_endpoint`): a running `grantflow serve` sends
//! the spans of a GraphQL request over OTLP/HTTP to a small receiver in this test (a real
//! OpenTelemetry Collector is not in the package registries this project installs from;
//! the receiver decodes the same protobuf messages with `opentelemetry-proto`). The
//! operation's span carries its name and sits inside the request's span, in one trace.
//! The test waits on the receiver being handed spans, never on the clock.

use crate::support;

use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use serde_json::json;
use support::{HANG_GUARD, Server, graphql, write_config};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::Notify;

/// What the receiver was sent: (service.name, span) pairs, and the paths posted to.
#[derive(Default)]
struct Received {
    spans: Vec<(String, Span)>,
    paths: Vec<String>,
}

/// An OTLP/HTTP receiver on loopback: every POST body is decoded as an
/// `ExportTraceServiceRequest` and answered 200 with an empty response message.
async fn receiver() -> (String, Arc<Mutex<Received>>, Arc<Notify>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(Mutex::new(Received::default()));
    let notify = Arc::new(Notify::new());
    let (r, n) = (received.clone(), notify.clone());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (r, n) = (r.clone(), n.clone());
            tokio::spawn(async move {
                let mut stream = BufReader::new(stream);
                // Requests on a kept-alive connection, one after the other.
                loop {
                    let mut line = String::new();
                    if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                    let mut length = 0usize;
                    loop {
                        let mut header = String::new();
                        stream.read_line(&mut header).await.unwrap();
                        let header = header.trim_end();
                        if header.is_empty() {
                            break;
                        }
                        if let Some((k, v)) = header.split_once(':')
                            && k.eq_ignore_ascii_case("content-length")
                        {
                            length = v.trim().parse().unwrap();
                        }
                    }
                    // The receiver's own bound, like a collector's.
                    assert!(length <= 4 << 20, "an export of {length} bytes");
                    let mut body = vec![0; length];
                    stream.read_exact(&mut body).await.unwrap();
                    let request = ExportTraceServiceRequest::decode(body.as_slice())
                        .expect("an OTLP protobuf trace export");
                    {
                        let mut r = r.lock().unwrap();
                        r.paths.push(path);
                        for resource in request.resource_spans {
                            let service = resource
                                .resource
                                .iter()
                                .flat_map(|res| &res.attributes)
                                .find(|a| a.key == "service.name")
                                .and_then(|a| match a.value.as_ref()?.value.as_ref()? {
                                    AnyValue::StringValue(s) => Some(s.clone()),
                                    _ => None,
                                })
                                .unwrap_or_default();
                            for scope in resource.scope_spans {
                                for span in scope.spans {
                                    r.spans.push((service.clone(), span));
                                }
                            }
                        }
                    }
                    n.notify_waiters();
                    stream
                        .get_mut()
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n",
                        )
                        .await
                        .unwrap();
                }
            });
        }
    });
    (format!("http://{addr}"), received, notify)
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|a| a.key == key).and_then(|a| {
        match a.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(s) => Some(s.clone()),
            _ => None,
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spans_of_a_graphql_request_reach_an_otlp_receiver() {
    let (endpoint, received, notify) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!("sqlite://{}", dir.path().join("grantflow.db").display()),
        &format!(
            "[telemetry]\notlp_endpoint = \"{endpoint}\"\nservice_name = \"grantflow-test\"\nexport_delay_ms = 100\n\
             [mail]\ntransport = \"eml_folder\"\ndir = \"{}\"\n",
            dir.path().join("mail").display()
        ),
    );
    let server = Server::start(&config, &["--demo"], &[]);
    let answer = graphql(
        &server.url(""),
        None,
        "mutation SignInForTrace($u: String!, $p: String!) { login(username: $u, password: $p) { token } }",
        json!({ "u": "unit_gz", "p": support::DEMO_PASSWORD }),
    )
    .await;
    assert!(answer["data"]["login"]["token"].is_string(), "{answer}");

    // Until the operation's span has arrived.
    let operation = loop {
        let notified = notify.notified();
        let found = received
            .lock()
            .unwrap()
            .spans
            .iter()
            .find(|(_, s)| {
                attribute(s, "graphql.operation.name").as_deref() == Some("SignInForTrace")
            })
            .cloned();
        if let Some(found) = found {
            break found;
        }
        tokio::time::timeout(HANG_GUARD, notified)
            .await
            .expect("no span of the operation reached the receiver");
    };
    let (service, span) = operation;
    assert_eq!(service, "grantflow-test");
    assert_eq!(span.name, "graphql SignInForTrace");
    assert!(
        received
            .lock()
            .unwrap()
            .paths
            .iter()
            .all(|p| p == "/v1/traces"),
        "OTLP/HTTP posts traces to /v1/traces"
    );
    // Inside the request's span (POST /graphql), in the same trace.
    let parent = loop {
        let notified = notify.notified();
        let found = received
            .lock()
            .unwrap()
            .spans
            .iter()
            .map(|(_, s)| s)
            .find(|s| s.span_id == span.parent_span_id)
            .cloned();
        if let Some(found) = found {
            break found;
        }
        tokio::time::timeout(HANG_GUARD, notified)
            .await
            .expect("the request's span never arrived");
    };
    assert_eq!(parent.trace_id, span.trace_id);
    assert_eq!(attribute(&parent, "path").as_deref(), Some("/graphql"));
    assert_eq!(attribute(&parent, "method").as_deref(), Some("POST"));
    drop(server);
}
