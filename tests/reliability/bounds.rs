//! Stated input bounds: a propagation header value over 8 KiB is ignored, a string over 1 MiB is replaced
//! (never cut) before redaction, a strategy document over 1 MiB is refused. Each is checked by what comes
//! out (sizes, presence), never by time.

use crate::exclusive;
use kotaemon_trace::__hooks::fuzz;
use kotaemon_trace::config::{Config, Propagator};
use kotaemon_trace::{init_with, propagation};
use opentelemetry::baggage::BaggageExt as _;
use opentelemetry::trace::{Span as _, TraceContextExt as _, Tracer as _};
use opentelemetry::KeyValue;
use opentelemetry_sdk::trace::InMemorySpanExporter;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TEN_MB: usize = 10 * 1024 * 1024;

fn headers(pairs: &[(&'static str, String)]) -> http::HeaderMap {
    let mut map = http::HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, value.parse().expect("a valid header value"));
    }
    map
}

#[test]
fn propagation_headers_over_the_bound_are_ignored() {
    let _one = exclusive();
    let all = [Propagator::TraceContext, Propagator::Baggage, Propagator::B3, Propagator::Jaeger];
    let guard =
        init_with(Config::builder().exporter(kotaemon_trace::config::ExporterKind::None).propagators(all).build())
            .unwrap();
    let bound = propagation::MAX_HEADER_VALUE;
    assert_eq!(bound, 8192);

    // A 10 MB traceparent: garbage after a valid prefix, so only the bound can refuse it.
    let huge = format!("{TRACEPARENT}{}", "0".repeat(TEN_MB));
    assert_eq!(propagation::extract(&headers(&[("traceparent", huge)])).trace_id(), None);

    // A valid traceparent with a 10 MB tracestate: the parent is kept, the tracestate is not read.
    let tracestate =
        format!("vendor=value,{}", (0..TEN_MB / 8).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join(","));
    let parent = propagation::extract(&headers(&[("traceparent", TRACEPARENT.into()), ("tracestate", tracestate)]));
    assert_eq!(parent.trace_id().as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
    assert_eq!(parent.context().span().span_context().trace_state().header(), "");
    // The same tracestate within the bound is read.
    let parent =
        propagation::extract(&headers(&[("traceparent", TRACEPARENT.into()), ("tracestate", "vendor=value".into())]));
    assert_eq!(parent.context().span().span_context().trace_state().header(), "vendor=value");

    // Baggage of 10 MB: none of it; at the bound's scale it is read.
    let baggage = (0..TEN_MB / 16).map(|i| format!("key{i}=value")).collect::<Vec<_>>().join(",");
    assert_eq!(propagation::extract(&headers(&[("baggage", baggage)])).context().baggage().len(), 0);
    assert_eq!(propagation::extract(&headers(&[("baggage", "user=alice".into())])).context().baggage().len(), 1);

    // b3 and uber-trace-id of 10 MB.
    let b3 = format!("4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1-{}", "a".repeat(TEN_MB));
    assert_eq!(propagation::extract(&headers(&[("b3", b3)])).trace_id(), None);
    let uber = format!("4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7:0:1{}", " ".repeat(TEN_MB));
    assert_eq!(propagation::extract(&headers(&[("uber-trace-id", uber)])).trace_id(), None);
    guard.shutdown().unwrap();
}

#[test]
fn values_over_the_redaction_bound_are_replaced_whole_and_counted() {
    let _one = exclusive();
    let bound = fuzz::MAX_REDACTED_VALUE_BYTES;
    assert_eq!(bound, 1 << 20);
    let exporter = InMemorySpanExporter::default();
    let guard = init_with(Config::builder().span_exporter(exporter.clone()).build()).unwrap();
    let secret = "alice.smith@example.com";
    // Just over the bound, a secret at the very end: replaced, never cut open.
    let over = format!("{}{secret}", "x ".repeat((bound + 2 - secret.len()) / 2 + 1));
    // Exactly at the bound, same shape: redacted normally.
    let at = format!("{}{secret}", "x ".repeat((bound - secret.len()) / 2));
    assert!(over.len() > bound && at.len() <= bound, "{} {}", over.len(), at.len());
    let tracer = opentelemetry::global::tracer("bounds");
    let mut span = tracer.start("huge");
    span.set_attribute(KeyValue::new("over", over.clone()));
    span.set_attribute(KeyValue::new("at", at.clone()));
    span.set_status(opentelemetry::trace::Status::error(over.clone()));
    span.end();
    guard.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let get = |k: &str| {
        spans[0].attributes.iter().find(|kv| kv.key.as_str() == k).map(|kv| kv.value.as_str().into_owned()).unwrap()
    };
    let replaced = get("over");
    assert_eq!(
        replaced,
        format!("[kotaemon-trace: a value of {} bytes was removed, over the {bound}-byte bound]", over.len())
    );
    let redacted = get("at");
    assert!(
        !redacted.contains(secret) && redacted.len() < at.len() + 64 && redacted.starts_with("x x x"),
        "the email is masked, the rest kept"
    );
    let opentelemetry::trace::Status::Error { description } = &spans[0].status else { panic!("status") };
    assert!(description.len() < 200 && !description.contains(secret), "{description}");
    assert_eq!(guard.stats().attribute_values_truncated, 2, "the attribute and the status description");
    guard.shutdown().unwrap();
}

#[test]
fn strategy_documents_over_the_bound_are_refused() {
    let bound = fuzz::MAX_STRATEGY_BYTES;
    let good = br#"{"strategyType":"PROBABILISTIC","probabilisticSampling":{"samplingRate":0.5}}"#;
    assert_eq!(fuzz::jaeger_strategy(good, "op"), Ok(()));
    // Valid JSON, padded past the bound with whitespace: refused on its size alone.
    let mut padded = good.to_vec();
    padded.resize(bound + 1, b' ');
    let refusal = fuzz::jaeger_strategy(&padded, "op").unwrap_err();
    assert!(refusal.contains("exceeds"), "{refusal}");
    padded.truncate(bound);
    assert_eq!(fuzz::jaeger_strategy(&padded, "op"), Ok(()), "at the bound it is read");
}
