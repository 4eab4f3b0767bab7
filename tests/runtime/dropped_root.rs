//! A root the sampler drops (`always_off`) makes nothing until something asks for its trace: then it is
//! a fresh trace with the sampled flag off, one per root, shared by everything under it, so the services
//! it calls do not record either, and logs written under it share one trace id.

use super::exclusive;
use kotaemon_trace::config::{Config, Sampler};
use kotaemon_trace::{init_with, propagation, trace_with_otel, TraceGuard, WithCurrentSpan as _};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::Context;
use opentelemetry_sdk::trace::InMemorySpanExporter;

fn always_off() -> (TraceGuard, InMemorySpanExporter) {
    let exporter = InMemorySpanExporter::default();
    let guard =
        init_with(Config::builder().sampler(Sampler::AlwaysOff).span_exporter(exporter.clone()).build()).unwrap();
    (guard, exporter)
}

/// The `traceparent` that `propagation::inject` writes where it is called, if any.
pub(crate) fn injected() -> Option<String> {
    let mut headers = http::HeaderMap::new();
    propagation::inject(&mut headers);
    headers.get("traceparent").map(|v| v.to_str().unwrap().to_owned())
}

/// The `traceparent` written through the global propagator directly, as code that knows only
/// OpenTelemetry's API does.
fn injected_through_global() -> Option<String> {
    let mut headers = std::collections::HashMap::new();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&Context::current(), &mut headers));
    headers.remove("traceparent")
}

struct Seen {
    root: Option<String>,
    root_again: Option<String>,
    global: Option<String>,
    trace_id: Option<String>,
    child: Option<String>,
    child_trace_id: Option<String>,
    /// Whether OpenTelemetry's current context holds a span, read directly.
    raw_span: bool,
}

#[trace_with_otel("dropped.root")]
fn dropped_root() -> Seen {
    let root = injected();
    Seen {
        root_again: injected(),
        global: injected_through_global(),
        trace_id: kotaemon_trace::current_trace_id(),
        child: dropped_child(),
        child_trace_id: dropped_child_trace_id(),
        raw_span: Context::current().span().span_context().is_valid(),
        root,
    }
}

#[trace_with_otel("dropped.child")]
fn dropped_child() -> Option<String> {
    injected()
}

#[trace_with_otel("dropped.child_trace_id")]
fn dropped_child_trace_id() -> Option<String> {
    kotaemon_trace::current_trace_id()
}

#[test]
fn a_dropped_root_propagates_one_unsampled_trace_shared_by_everything_under_it() {
    let _one = exclusive();
    let (guard, exporter) = always_off();
    for _ in 0..2 {
        // Twice: the first call on a thread may be read by the slow path before the mirror knows it.
        let _ = dropped_root();
    }
    let seen = dropped_root();
    assert!(!seen.raw_span, "nothing is made or attached until asked for (the documented limit)");
    let root = seen.root.expect("a dropped root still sends a traceparent");
    let parts: Vec<&str> = root.split('-').collect();
    assert_eq!(parts.len(), 4, "{root}");
    assert_eq!(parts[3], "02", "the sampled flag is off, the random trace-id flag on: {root}");
    assert_ne!(parts[1], "0".repeat(32), "a valid trace id: {root}");
    assert_eq!(seen.root_again.as_deref(), Some(root.as_str()), "asked twice, one trace");
    assert_eq!(seen.global.as_deref(), Some(root.as_str()), "the global propagator writes the same");
    assert_eq!(seen.trace_id.as_deref(), Some(parts[1]), "current_trace_id() names it");
    assert_eq!(seen.child.as_deref(), Some(root.as_str()), "a call under the root sends the root's trace");
    assert_eq!(seen.child_trace_id.as_deref(), Some(parts[1]));

    let other = dropped_root().root.unwrap();
    assert_ne!(other.split('-').nth(1), Some(parts[1]), "each root has its own trace id");
    assert_eq!(injected(), None, "outside any root nothing is sent");
    assert_eq!(kotaemon_trace::current_trace_id(), None);
    assert!(!Context::current().span().span_context().is_valid());

    guard.force_flush().unwrap();
    assert!(exporter.get_finished_spans().unwrap().is_empty(), "nothing recorded");
    guard.shutdown().unwrap();
}

#[trace_with_otel("dropped.spawner")]
fn spawner() -> (Option<String>, Option<String>) {
    let here = injected();
    let carried = async { (injected(), dropped_child()) }.with_current_span();
    let (there, child_there) = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(carried)
    })
    .join()
    .unwrap();
    assert_eq!(there, child_there, "calls in the carried future are in the same trace");
    (here, there)
}

#[test]
fn a_future_carried_out_of_a_dropped_root_stays_in_its_trace() {
    let _one = exclusive();
    let (guard, _exporter) = always_off();
    let _ = spawner();
    let (here, there) = spawner();
    assert!(here.is_some());
    assert_eq!(here, there, "the future on another thread sends the root's trace");
    guard.shutdown().unwrap();
}

#[trace_with_otel("dropped.async_root")]
async fn async_root() -> (Option<String>, Option<String>) {
    tokio::task::yield_now().await;
    (injected(), dropped_child())
}

#[test]
fn an_async_dropped_root_carries_its_trace_across_polls() {
    let _one = exclusive();
    let (guard, _exporter) = always_off();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (root, child) = runtime.block_on(async { tokio::spawn(async_root()).await.unwrap() });
    let root = root.expect("an async dropped root sends a traceparent");
    assert!(root.ends_with("-02"), "sampled off, random trace-id flag on: {root}");
    assert_eq!(child.as_deref(), Some(root.as_str()));
    guard.shutdown().unwrap();
}

#[trace_with_otel("dropped.with_sensitive_step")]
fn with_sensitive_step() -> Option<String> {
    sensitive_step();
    injected()
}

#[trace_with_otel("payment.charge", sample = "always")]
fn sensitive_step() {}

#[test]
fn a_sensitive_step_inside_a_dropped_root_is_recorded_and_linked_to_the_roots_trace() {
    let _one = exclusive();
    let (guard, exporter) = always_off();
    let _ = with_sensitive_step();
    let root = with_sensitive_step().unwrap();
    let root_trace = root.split('-').nth(1).unwrap().to_owned();
    guard.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let charges: Vec<_> = spans.iter().filter(|s| s.name == "payment.charge").collect();
    assert_eq!(charges.len(), 2, "recorded whatever the sampler says: {spans:?}");
    let last = charges[1];
    assert!(last.span_context.is_sampled());
    assert_ne!(last.span_context.trace_id().to_string(), root_trace, "a trace of its own");
    let links: Vec<String> = last.links.links.iter().map(|l| l.span_context.trace_id().to_string()).collect();
    assert_eq!(links, [root_trace], "linked to the dropped root's trace");
    assert_eq!(spans.len(), 2, "nothing else recorded");
    guard.shutdown().unwrap();
}
