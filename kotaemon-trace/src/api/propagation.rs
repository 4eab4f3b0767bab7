//! Carrying a trace across services: read the parent from incoming request headers, write the current
//! context into outgoing ones. Formats come from `OTEL_PROPAGATORS` (`tracecontext`, `baggage`, `b3`,
//! `b3multi`, `jaeger`).
//!
//! [`extract`] also honours the debug header (`X-Debug-Tracing: true` by default, and Jaeger's
//! `jaeger-debug-id`): such a request is traced whatever the sampler says, within a per-second cap.

use crate::hot::span::Instrumented;
use crate::hot::state as global;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::{Context, ContextGuard};
use opentelemetry_http::HeaderInjector;

/// The parent context read from a request's headers. Attach it (sync) or instrument the handler's future
/// with it (async), so the request's spans continue the caller's trace.
///
/// ```
/// use kotaemon_trace::propagation;
/// use kotaemon_trace::config::{Config, ExporterKind};
///
/// let _guard = kotaemon_trace::init_with(Config::builder().exporter(ExporterKind::None).build())?;
/// let mut headers = http::HeaderMap::new();
/// headers.insert("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".parse().unwrap());
/// let parent = propagation::extract(&headers);
/// assert_eq!(parent.trace_id().as_deref(), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
/// let _attached = parent.attach(); // spans started now are children of the caller's span
/// # Ok::<(), kotaemon_trace::InitError>(())
/// ```
#[derive(Clone, Debug)]
pub struct RemoteParent {
    cx: Context,
}

impl RemoteParent {
    /// Makes the remote parent the current context until the guard drops.
    pub fn attach(self) -> ContextGuard {
        self.cx.attach()
    }

    /// Runs `future` with the remote parent as its context on every poll.
    ///
    /// ```
    /// # async fn handle() {}
    /// # async fn run(headers: http::HeaderMap) {
    /// kotaemon_trace::propagation::extract(&headers).instrument(handle()).await;
    /// # }
    /// ```
    pub fn instrument<F: std::future::Future>(self, future: F) -> Instrumented<F> {
        Instrumented::with_context(self.cx, future)
    }

    /// The caller's trace id (W3C hex), when the headers carried a valid one.
    pub fn trace_id(&self) -> Option<String> {
        use opentelemetry::trace::TraceContextExt as _;
        let span = self.cx.span();
        let sc = span.span_context();
        sc.is_valid().then(|| sc.trace_id().to_string())
    }

    /// Whether the request asked for (and was granted) a forced, fully sampled trace.
    pub fn is_debug_forced(&self) -> bool {
        self.cx.get::<crate::policy::sampling::DebugForced>().is_some()
    }

    /// The underlying OpenTelemetry context.
    pub fn context(&self) -> &Context {
        &self.cx
    }
}

/// The longest propagation header value read, in bytes: W3C baggage allows 8192 bytes, and every other
/// format is far shorter (`traceparent` is 55). A longer value is ignored as if absent, so the work per
/// request is bounded whatever a client sends.
pub const MAX_HEADER_VALUE: usize = 8192;

/// Hands the propagators only header values within [`MAX_HEADER_VALUE`].
struct BoundedExtractor<'a>(&'a http::HeaderMap);

impl opentelemetry::propagation::Extractor for BoundedExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok()).filter(|value| value.len() <= MAX_HEADER_VALUE)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }

    fn get_all(&self, key: &str) -> Option<Vec<&str>> {
        let values: Vec<&str> = self
            .0
            .get_all(key)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter(|v| v.len() <= MAX_HEADER_VALUE)
            .collect();
        (!values.is_empty()).then_some(values)
    }
}

/// Reads the parent context from incoming headers with the configured propagators, and grants debug
/// forcing when the debug header asks for it and the per-second cap allows. Header values longer than
/// [`MAX_HEADER_VALUE`] are ignored.
pub fn extract(headers: &http::HeaderMap) -> RemoteParent {
    let mut cx = opentelemetry::global::get_text_map_propagator(|p| p.extract(&BoundedExtractor(headers)));
    if let Some(Some(forced)) = global::with_installed(|installed| installed.debug.check(headers, &cx)) {
        cx = cx.with_value(forced);
    }
    RemoteParent { cx }
}

/// Writes the current context into outgoing headers. Inside a root the sampler dropped, that is the
/// root's trace with the sampled flag off, so the called service does not record it either.
///
/// ```
/// let mut headers = http::HeaderMap::new();
/// kotaemon_trace::propagation::inject(&mut headers);
/// ```
pub fn inject(headers: &mut http::HeaderMap) {
    inject_context(&Context::current(), headers);
}

/// Writes `cx` into outgoing headers. A context without a span, read inside a root the sampler dropped,
/// is written as that root's trace (see [`inject`]).
///
/// ```
/// let mut headers = http::HeaderMap::new();
/// kotaemon_trace::propagation::inject_context(&opentelemetry::Context::current(), &mut headers);
/// ```
pub fn inject_context(cx: &Context, headers: &mut http::HeaderMap) {
    // Also here, not only in the global wrapper (`DroppedRootsToo`): an application may install a
    // global propagator of its own after `init`, and this function must still send the root's trace.
    let root = crate::hot::current::dropped_root_context(cx);
    let cx = root.as_ref().unwrap_or(cx);
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(cx, &mut HeaderInjector(headers)));
}

/// The configured propagators as installed globally: a context without a span, injected inside a root
/// the sampler dropped, is written as that root's trace, so code that injects through
/// `opentelemetry::global` directly propagates the decision too.
#[derive(Debug)]
pub(crate) struct DroppedRootsToo<P>(pub(crate) P);

impl<P: TextMapPropagator> TextMapPropagator for DroppedRootsToo<P> {
    fn inject_context(&self, cx: &Context, injector: &mut dyn opentelemetry::propagation::Injector) {
        match crate::hot::current::dropped_root_context(cx) {
            Some(root) => self.0.inject_context(&root, injector),
            None => self.0.inject_context(cx, injector),
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn opentelemetry::propagation::Extractor) -> Context {
        self.0.extract_with_context(cx, extractor)
    }

    fn fields(&self) -> opentelemetry::propagation::text_map_propagator::FieldIter<'_> {
        self.0.fields()
    }
}
