//! Production distributed tracing for RAG and LLM-agent services.
//!
//! Put `#[trace_with_otel]` on the functions of a pipeline, call [`init`] once in `main`, and read each
//! request as one trace in Jaeger or any OpenTelemetry backend. Configuration comes from the standard
//! `OTEL_*` environment variables (see [`Config`]).
//!
//! ```no_run
//! use kotaemon_trace::trace_with_otel;
//!
//! #[trace_with_otel("retrieve.knowledge_base", fields(retriever.type = "vector"))]
//! fn retrieve(query: &str, k: usize) -> Vec<String> {
//!     (0..k).map(|i| format!("doc {i} for {query}")).collect()
//! }
//!
//! fn main() -> Result<(), kotaemon_trace::InitError> {
//!     let _guard = kotaemon_trace::init()?;
//!     retrieve("refund policy", 3);
//!     Ok(())
//! }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod error;
mod export;
mod finish;
mod genai;
mod global;
mod guard;
mod pipeline;
mod panics;
mod processor;
pub mod propagation;
pub mod redact;
mod sampling;
pub mod semconv;
mod span;
mod value;

pub use config::{
    BatchConfig, Compression, Config, ConfigBuilder, ConfigProblem, DebugConfig, ExporterKind, JaegerRemote, Limits,
    ContentCapture, OtlpConfig, Propagator, Protocol, RedactionConfig, Sampler, TailConfig,
};
pub use error::{InitError, ShutdownError};
pub use genai::{current_span_id, current_trace_id, llm, retrieval, tool};
pub use guard::{ExportStats, TraceGuard};
pub use kotaemon_trace_macros::trace_with_otel;
pub use span::{record, InCurrentSpan, Instrumented};
pub use value::{debug, DebugValue, TypedValue};

/// Starts tracing from the `OTEL_*` environment and returns the guard that flushes on drop.
///
/// Works with or without a tokio runtime, and whether or not the collector is up: spans are queued
/// and exported by a background thread. Invalid environment values are reported once on stderr and
/// replaced by their defaults (use [`Config::from_env`] and [`Config::problems`] to refuse them instead).
///
/// ```no_run
/// fn main() -> Result<(), kotaemon_trace::InitError> {
///     let _guard = kotaemon_trace::init()?;
///     // annotated functions now produce spans
///     Ok(())
/// }
/// ```
pub fn init() -> Result<TraceGuard, InitError> {
    init_with(Config::from_env())
}

/// Starts tracing from an explicit [`Config`].
///
/// Calling it again replaces the running pipeline for new spans; the earlier guard still flushes its own.
///
/// ```
/// use kotaemon_trace::{init_with, Config, ExporterKind};
///
/// let guard = init_with(Config::builder().service_name("rag-api").exporter(ExporterKind::Console).build())?;
/// guard.shutdown().unwrap();
/// # Ok::<(), kotaemon_trace::InitError>(())
/// ```
pub fn init_with(config: Config) -> Result<TraceGuard, InitError> {
    pipeline::start(config)
}

/// Support for the code `#[trace_with_otel]` generates. Not a public API: names here change without
/// notice. Generated code reaches everything through `::kotaemon_trace::__private::…`, so a user's own
/// module named `opentelemetry` or `kotaemon_trace` cannot break an expansion.
#[doc(hidden)]
pub mod __private {
    pub use crate::span::{ActiveSpan, Attributes, Callsite, ErrResult, Running, Sample, SpanGuard};
    pub use crate::value::{Probe, ViaDebug, ViaNothing, ViaTyped};
    pub use opentelemetry::trace::SpanKind;
    pub use opentelemetry::Value;

    /// The sampler `init` would install for `sampler`, for the decision-cost benchmark.
    pub fn sampler_for_bench(sampler: &crate::Sampler) -> impl opentelemetry_sdk::trace::ShouldSample {
        crate::sampling::ProductSampler::new(sampler, false).0
    }

    /// Forces a closure to be `FnOnce`, so a body that returns a reference into its captured arguments
    /// borrow-checks as it did before it was wrapped.
    #[inline(always)]
    pub fn call_once<R>(f: impl FnOnce() -> R) -> R {
        f()
    }
}
