//! Capturing the spans your own code makes, in your own tests (feature `testing`).
//!
//! [`capture`] runs a closure under a fresh root span and returns its result with the spans it made,
//! exported through the real pipeline (sampling, limits, redaction) into memory. Each capture sees only
//! its own trace, so tests of one binary may capture in parallel.
//!
//! The first capture in a process installs a pipeline of its own (in-memory exporter, every span
//! sampled); a test binary that captures should not also call [`crate::init`].
//!
//! ```
//! use kotaemon_trace::{testing, trace_with_otel};
//!
//! #[trace_with_otel("retriever.invoke", fields(retriever.type = "vector"))]
//! fn retrieve(query: &str) -> usize {
//!     query.len()
//! }
//!
//! let (n, spans) = testing::capture(|| retrieve("refund policy"));
//! assert_eq!(n, 13);
//! let span = testing::named(&spans, "retriever.invoke");
//! assert_eq!(testing::attr(span, "query"), Some(&"refund policy".into()));
//! assert_eq!(testing::attr(span, "retriever.type"), Some(&"vector".into()));
//! ```

use crate::config::{BatchConfig, Config};
use crate::wiring::guard::TraceGuard;
use opentelemetry::Context;
use opentelemetry::trace::{SpanId, TraceContextExt as _, TraceId, Tracer as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};
use std::future::Future;
use std::sync::OnceLock;

struct Pipeline {
    guard: TraceGuard,
    exporter: InMemorySpanExporter,
}

fn pipeline() -> &'static Pipeline {
    static PIPELINE: OnceLock<Pipeline> = OnceLock::new();
    PIPELINE.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        // A queue no test fills: a capture must see every span its code made.
        let batch = BatchConfig { max_queue_size: 1_000_000, ..BatchConfig::default() };
        let config = Config::builder().span_exporter(exporter.clone()).batch(batch).build();
        let guard = crate::init_with(config).expect("kotaemon_trace::testing could not start its pipeline");
        Pipeline { guard, exporter }
    })
}

fn tracer() -> opentelemetry_sdk::trace::SdkTracer {
    pipeline();
    crate::tracer().expect("the capture pipeline is installed")
}

/// Spans of `trace_id` exported so far, `root` excluded, in start order.
fn spans_of(trace_id: TraceId, root: SpanId) -> Vec<SpanData> {
    let p = pipeline();
    p.guard.force_flush().expect("kotaemon_trace::testing could not flush its pipeline");
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

/// Runs `f` under a fresh root span; returns its result and the spans it made (in start order), the
/// root itself excluded.
pub fn capture<R>(f: impl FnOnce() -> R) -> (R, Vec<SpanData>) {
    let (result, trace_id, root) = tracer().in_span("capture.root", |cx| {
        let sc = cx.span().span_context().clone();
        (f(), sc.trace_id(), sc.span_id())
    });
    (result, spans_of(trace_id, root))
}

/// The async form of [`capture`]: the future runs with the capture's root as its context.
///
/// ```
/// use kotaemon_trace::{testing, trace_with_otel};
///
/// #[trace_with_otel("tool.lookup")]
/// async fn lookup(id: u64) -> u64 {
///     id * 2
/// }
///
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let (doubled, spans) = runtime.block_on(testing::capture_async(lookup(21)));
/// assert_eq!(doubled, 42);
/// assert_eq!(spans.len(), 1);
/// ```
pub async fn capture_async<R>(f: impl Future<Output = R>) -> (R, Vec<SpanData>) {
    use opentelemetry::context::FutureExt as _;
    let cx = Context::current_with_span(tracer().start("capture.root"));
    let (trace_id, root) = {
        let span = cx.span();
        (span.span_context().trace_id(), span.span_context().span_id())
    };
    let result = f.with_context(cx.clone()).await;
    cx.span().end();
    (result, spans_of(trace_id, root))
}

/// Every span exported so far in `trace_id`, e.g. a trace started under a captured root by a
/// `sample = "always"` step (linked to it, see [`spans_linked_to`]).
///
/// ```
/// let spans = kotaemon_trace::testing::spans_in(opentelemetry::trace::TraceId::from(7_u128));
/// assert!(spans.is_empty());
/// ```
pub fn spans_in(trace_id: TraceId) -> Vec<SpanData> {
    spans_of(trace_id, SpanId::INVALID)
}

/// Every span exported so far outside `trace_id` that links to it (what a `sample = "always"` step
/// records under an unsampled parent).
///
/// ```
/// let spans = kotaemon_trace::testing::spans_linked_to(opentelemetry::trace::TraceId::from(7_u128));
/// assert!(spans.is_empty());
/// ```
pub fn spans_linked_to(trace_id: TraceId) -> Vec<SpanData> {
    let p = pipeline();
    p.guard.force_flush().expect("kotaemon_trace::testing could not flush its pipeline");
    p.exporter
        .get_finished_spans()
        .expect("finished spans")
        .into_iter()
        .filter(|s| s.links.links.iter().any(|l| l.span_context.trace_id() == trace_id))
        .collect()
}

/// An attribute's value on a span.
///
/// ```
/// # let span = kotaemon_trace::testing::capture(|| ()).1.into_iter().next();
/// # assert!(span.is_none());
/// ```
pub fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a opentelemetry::Value> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| &kv.value)
}

/// The span named `name`; panics listing the names there are when there is none.
///
/// ```should_panic
/// let (_, spans) = kotaemon_trace::testing::capture(|| ());
/// kotaemon_trace::testing::named(&spans, "nothing ran");
/// ```
pub fn named<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans.iter().find(|s| s.name == name).unwrap_or_else(|| {
        let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
        panic!("no span {name:?} among {names:?}")
    })
}
