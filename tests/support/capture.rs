//! Capturing the spans a piece of code produces, through the real pipeline and the SDK's in-memory
//! exporter. Many tests of one binary share the process-wide pipeline; each runs its code under its own
//! root span and gets back only the spans of that trace, so they can run in parallel.

use kotaemon_trace::{init_with, Config, TraceGuard};
use opentelemetry::trace::{TraceContextExt as _, Tracer as _};
use opentelemetry::Context;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};
use std::sync::OnceLock;

struct Pipeline {
    guard: TraceGuard,
    exporter: InMemorySpanExporter,
}

fn pipeline() -> &'static Pipeline {
    static PIPELINE: OnceLock<Pipeline> = OnceLock::new();
    PIPELINE.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let batch = kotaemon_trace::BatchConfig { max_queue_size: 1_000_000, ..Default::default() };
        let guard = init_with(Config::builder().span_exporter(exporter.clone()).batch(batch).build()).expect("init");
        Pipeline { guard, exporter }
    })
}

/// Spans of `trace_id` exported so far, root of the capture excluded.
fn spans_of(trace_id: opentelemetry::trace::TraceId, root: opentelemetry::trace::SpanId) -> Vec<SpanData> {
    let p = pipeline();
    p.guard.force_flush().expect("flush");
    let mut spans: Vec<SpanData> = p
        .exporter
        .get_finished_spans()
        .expect("finished spans")
        .into_iter()
        .filter(|s| s.span_context.trace_id() == trace_id && s.span_context.span_id() != root)
        .collect();
    spans.sort_by_key(|s| s.start_time);
    spans
}

/// Runs `f` under a fresh root span; returns its result and the spans it made (in start order).
pub fn capture<R>(f: impl FnOnce() -> R) -> (R, Vec<SpanData>) {
    pipeline();
    let tracer = opentelemetry::global::tracer("capture");
    let (result, trace_id, root) = tracer.in_span("capture.root", |cx| {
        let sc = cx.span().span_context().clone();
        (f(), sc.trace_id(), sc.span_id())
    });
    (result, spans_of(trace_id, root))
}

/// The async form of [`capture`]: the future runs with the capture root as its context.
pub async fn capture_async<R, F: std::future::Future<Output = R>>(f: F) -> (R, Vec<SpanData>) {
    use opentelemetry::context::FutureExt as _;
    pipeline();
    let tracer = opentelemetry::global::tracer("capture");
    let span = tracer.start("capture.root");
    let cx = Context::current_with_span(span);
    let (trace_id, root) = {
        let s = cx.span();
        (s.span_context().trace_id(), s.span_context().span_id())
    };
    let result = f.with_context(cx.clone()).await;
    cx.span().end();
    (result, spans_of(trace_id, root))
}

/// Every span exported so far whose trace is not `trace_id` but links to it (for `sample = "always"`).
pub fn spans_linked_to(trace_id: opentelemetry::trace::TraceId) -> Vec<SpanData> {
    let p = pipeline();
    p.guard.force_flush().expect("flush");
    p.exporter
        .get_finished_spans()
        .expect("finished spans")
        .into_iter()
        .filter(|s| s.links.links.iter().any(|l| l.span_context.trace_id() == trace_id))
        .collect()
}

/// Every span exported so far in `trace_id`.
pub fn spans_in(trace_id: opentelemetry::trace::TraceId) -> Vec<SpanData> {
    spans_of(trace_id, opentelemetry::trace::SpanId::INVALID)
}

/// An attribute's value on a span.
pub fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a opentelemetry::Value> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| &kv.value)
}

/// The span named `name`, or a panic listing what there is.
pub fn named<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans.iter().find(|s| s.name == name).unwrap_or_else(|| {
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
        panic!("no span {name:?} among {names:?}")
    })
}
