//! Production distributed tracing for RAG and LLM-agent services.
//!
//! Put `#[trace_with_otel]` on the functions of a pipeline, call [`init`] once in `main`, and read each
//! request as one trace in Jaeger or any OpenTelemetry backend. Configuration comes from the standard
//! `OTEL_*` environment variables (see [`config::Config`]).
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
#![cfg_attr(docsrs, feature(doc_cfg))]
// Without `sdk` nothing can install a pipeline, so the hot path's recording branches are never taken;
// they stay compiled (one hot path for both builds) and would otherwise warn as unused.
#![cfg_attr(not(feature = "sdk"), allow(dead_code))]

// The layers, bottom to top: base, config, policy, export, hot, api, wiring, integrations; each uses
// only those below it (checked by tests/architecture).
mod api;
mod base;
pub mod config;
mod export;
mod hot;
#[cfg(any(feature = "tower", feature = "reqwest", feature = "tonic"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "tower", feature = "reqwest", feature = "tonic"))))]
pub mod integrations;
mod policy;
#[cfg(feature = "sdk")]
mod wiring;

pub use api::genai::{current_span_id, current_trace_id, llm, retrieval, tool};
#[cfg(feature = "tracing")]
pub use api::logs;
pub use api::{metrics, propagation, redact};
pub use base::error::{ExporterError, InitError, ShutdownError};
pub use base::semconv;
pub use base::value::{DebugValue, TypedValue, debug};
pub use hot::span::{Instrumented, WithCurrentSpan, record};
/// The OpenTelemetry API this crate is built on; use it (rather than a version of your own) for types
/// that cross into this crate, such as `Context`, `KeyValue` or a `TextMapPropagator`.
pub use opentelemetry;
/// The OpenTelemetry SDK this crate is built on; use it for exporters given to
/// [`config::ConfigBuilder::span_exporter`] and for `SpanData` in tests.
pub use opentelemetry_sdk;
#[cfg(feature = "sdk")]
pub use wiring::guard::{ExportStats, TraceGuard};
#[cfg(feature = "testing")]
pub use wiring::testing;

/// Traces every call of a function as one OpenTelemetry span, child of the caller's span.
///
/// | option | effect |
/// |---|---|
/// | *(none)* | the span is named after the function |
/// | `"name"` or `name = "name"` | the span name, e.g. `"retriever.invoke"` |
/// | `skip(a, b)` | these arguments are not recorded |
/// | `skip_all` | no argument is recorded |
/// | `fields(key.path = expr, ...)` | extra attributes: dotted keys (or `"string"` keys), any expression, evaluated at entry and only when the span is sampled |
/// | `ret` | the return value as attribute `output.value` (with `err`: the `Ok` value) |
/// | `err` | an `Err(e)` return sets status Error with `e`'s `Display` text and adds an `exception` event (`exception.message`, `exception.type`); needs `Result<T, E: Display>` |
/// | `redact(a)` | `a` is recorded as a pseudonym, never its value (see [`redact`]) |
/// | `sample = "always"` / `"never"` | recorded whatever the sampler says / never, with its children |
/// | `kind = "llm"` | what the step is: `retriever`, `reranker`, `embedding`, `llm`, `tool`, `chain`, `agent`, `guardrail`; recorded as `openinference.span.kind` (`LLM`…) and, where the GenAI conventions name one, `gen_ai.operation.name` (`chat`, `embeddings`, `execute_tool`, `invoke_agent`, `retrieval`); `llm`, `embedding` and `tool` spans are CLIENT spans |
/// | `span_kind = "server"` | the OpenTelemetry span kind: `server`, `client`, `producer`, `consumer`, `internal` |
///
/// Without `span_kind`, a span with no local parent (a root, or the child of a remote caller) is SERVER,
/// as a request's entry into a service is; its local children are INTERNAL unless `kind` makes them CLIENT.
///
/// Options come in any order, each at most once. A mistake (an unknown option, a duplicate, `skip` of a
/// name that is not an argument, `const fn`, an item that is not a function) is a compile error on the
/// offending token; `err` on a function that does not return a `Result` is a type error on `err`.
///
/// **Arguments** become attributes named after them (destructured ones by each bound name; `self` never):
/// integers as ints, floats as doubles, `bool`s as bools, `&str`/`String`/`Cow<str>` as strings (also
/// through references, `Option`, `Box`, `Rc`, `Arc`), anything else as its `Debug` text, and a type
/// without `Debug` (a bare generic, say) is simply not recorded. Nothing is evaluated or formatted when
/// the span is not sampled or tracing is off. Add attributes from the body with [`record`].
///
/// **Shapes**: functions, `async fn` (the span covers every poll and follows the task across threads),
/// methods with any receiver, trait impl methods (native `async fn` too), generics and `where` clauses,
/// `impl Trait` arguments and returns, lifetimes and borrowed returns (also with `ret`/`err`), `unsafe fn`,
/// recursion, early `return` and `?`. A non-async function whose last expression is
/// `Box::pin(async move { .. })` (what `#[async_trait]` writes) or `async move { .. }` gets a span that
/// starts at the call and covers the returned future to its end. A panic ends the span with status Error;
/// a future dropped before it completes ends its span marked `kotaemon.cancelled`.
///
/// Without the default `enabled` feature the options are still checked and the function is left as written.
///
/// ```
/// use kotaemon_trace::{record, trace_with_otel};
/// use std::fmt;
///
/// #[derive(Debug)]
/// pub struct ToolError(String);
///
/// impl fmt::Display for ToolError {
///     fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
///         write!(f, "tool failed: {}", self.0)
///     }
/// }
///
/// pub struct Retriever {
///     k: usize,
/// }
///
/// impl Retriever {
///     #[trace_with_otel("retriever.invoke", skip(self), fields(retriever.type = "vector", retriever.k = self.k as i64))]
///     pub fn invoke(&self, query: &str) -> Vec<String> {
///         let docs: Vec<String> = (0..self.k).map(|i| format!("{query} #{i}")).collect();
///         record("output.count", docs.len());
///         docs
///     }
/// }
///
/// #[trace_with_otel("call_tool.get_order_status", ret, err)]
/// pub fn get_order_status(order_id: u64) -> Result<String, ToolError> {
///     if order_id == 0 {
///         return Err(ToolError("no such order".to_owned()));
///     }
///     Ok("shipped".to_owned())
/// }
///
/// #[trace_with_otel("handle_user_query", skip(retriever), err)]
/// pub async fn answer(retriever: &Retriever, question: &str, order_id: u64) -> Result<String, ToolError> {
///     let docs = retriever.invoke(question);
///     let status = get_order_status(order_id)?;
///     Ok(format!("{} documents; order {status}", docs.len()))
/// }
///
/// # use opentelemetry::trace::Status;
/// # let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
/// # let guard = kotaemon_trace::init_with(kotaemon_trace::config::Config::builder().span_exporter(exporter.clone()).build())?;
/// let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
/// let retriever = Retriever { k: 2 };
/// assert_eq!(runtime.block_on(answer(&retriever, "where is my order?", 42)).unwrap(), "2 documents; order shipped");
/// assert!(runtime.block_on(answer(&retriever, "and this one?", 0)).is_err());
/// # guard.force_flush().unwrap();
/// # let spans = exporter.get_finished_spans().unwrap();
/// # let get = |name: &str, i: usize| spans.iter().filter(|s| s.name == name).nth(i).unwrap().clone();
/// # let attr = |s: &opentelemetry_sdk::trace::SpanData, k: &str| s.attributes.iter().find(|kv| kv.key.as_str() == k).map(|kv| kv.value.clone());
/// # let (root, invoke, tool) = (get("handle_user_query", 0), get("retriever.invoke", 0), get("call_tool.get_order_status", 0));
/// # assert_eq!(invoke.parent_span_id, root.span_context.span_id());
/// # assert_eq!(tool.parent_span_id, root.span_context.span_id());
/// # assert_eq!(attr(&invoke, "retriever.k"), Some(2_i64.into()));
/// # assert_eq!(attr(&invoke, "query"), Some("where is my order?".into()));
/// # assert_eq!(attr(&invoke, "output.count"), Some(2_i64.into()));
/// # assert_eq!(attr(&tool, "order_id"), Some(42_i64.into()));
/// # assert_eq!(attr(&tool, "output.value"), Some("shipped".into()));
/// # assert_eq!(get("handle_user_query", 1).status, Status::error("tool failed: no such order"));
/// # guard.shutdown().unwrap();
/// # Ok::<(), kotaemon_trace::InitError>(())
/// ```
pub use kotaemon_trace_macros::trace_with_otel;

/// The installed tracer, for `tracing_opentelemetry::layer().with_tracer(...)`, so `tracing` spans
/// join the same traces; `None` before `init`.
///
/// ```
/// assert!(kotaemon_trace::tracer().is_none());
/// ```
pub fn tracer() -> Option<opentelemetry_sdk::trace::SdkTracer> {
    hot::state::with_installed(|installed| installed.tracer.clone())
}

/// Starts tracing from the `OTEL_*` environment over `kotaemon-trace.toml` (see
/// [`config::Config::load`]) and returns the guard that flushes on drop.
///
/// Works with or without a tokio runtime, and whether or not the collector is up: spans are queued
/// and exported by a background thread. Invalid environment values are reported once on stderr and
/// replaced by their defaults (use [`config::Config::load`] and [`config::Config::problems`] to refuse
/// them instead); a configuration file with any mistake is refused with [`InitError::ConfigFile`], and
/// nothing starts.
///
/// ```no_run
/// fn main() -> Result<(), kotaemon_trace::InitError> {
///     let _guard = kotaemon_trace::init()?;
///     // annotated functions now produce spans
///     Ok(())
/// }
/// ```
#[cfg(feature = "sdk")]
pub fn init() -> Result<TraceGuard, InitError> {
    init_with(config::Config::load().map_err(InitError::ConfigFile)?)
}

/// Starts tracing from an explicit [`config::Config`].
///
/// Calling it again replaces the running pipeline for new spans; the earlier guard still flushes its own.
///
/// ```
/// use kotaemon_trace::config::{Config, ExporterKind};
///
/// let guard = kotaemon_trace::init_with(Config::builder().service_name("rag-api").exporter(ExporterKind::Console).build())?;
/// guard.shutdown().unwrap();
/// # Ok::<(), kotaemon_trace::InitError>(())
/// ```
#[cfg(feature = "sdk")]
pub fn init_with(config: config::Config) -> Result<TraceGuard, InitError> {
    wiring::pipeline::start(config)
}

/// Support for the code `#[trace_with_otel]` generates. Not a public API: names here change without
/// notice. Generated code reaches everything through `::kotaemon_trace::__private::…`, so a user's own
/// module named `opentelemetry` or `kotaemon_trace` cannot break an expansion.
#[doc(hidden)]
pub mod __private {
    pub use crate::base::callsite::{Callsite, CallsiteMetrics, Sample, Semantic};
    pub use crate::base::value::{Probe, ViaDebug, ViaNothing, ViaTyped};
    pub use crate::hot::span::{ActiveSpan, Attributes, ErrResult, Running, SpanGuard};
    pub use opentelemetry::Value;
    pub use opentelemetry::trace::SpanKind;

    /// Forces a closure to be `FnOnce`, so a body that returns a reference into its captured arguments
    /// borrow-checks as it did before it was wrapped.
    #[inline(always)]
    pub fn call_once<R>(f: impl FnOnce() -> R) -> R {
        f()
    }
}

/// Entry points for the project's own benchmarks and fuzz targets, behind the `internal-hooks` feature.
/// Not a public API: names here change without notice.
#[cfg(feature = "internal-hooks")]
#[doc(hidden)]
pub mod __hooks {
    /// Pushes the current metrics once, the way the running OTLP metrics exporter does (same transport,
    /// same request); `Err` is the text the exporter would report. For the TLS tests.
    #[cfg(any(feature = "otlp-grpc", feature = "otlp-http"))]
    pub fn push_metrics_once(config: &crate::config::Config) -> Result<(), String> {
        crate::export::metrics::push_once(config)
    }
    /// The sampler `init` would install for `sampler`, for the decision-cost benchmark.
    pub fn sampler_for_bench(sampler: &crate::config::Sampler) -> impl opentelemetry_sdk::trace::ShouldSample {
        crate::policy::sampling::ProductSampler::new(sampler, false).0
    }

    /// The span clock's pieces, for the clock benchmark (`benches/benches/clock.rs`).
    pub mod clock {
        use std::time::SystemTime;

        /// A span clock reading.
        #[derive(Debug, Clone, Copy)]
        pub struct Stamp(crate::base::clock::Stamp);

        /// A reading as the hot path takes it (with the check for a due reading of both clocks).
        #[inline]
        pub fn stamp() -> Stamp {
            Stamp(crate::base::clock::now())
        }

        /// Sets the clock's origin, as `init` does.
        pub fn warm_up() {
            crate::base::clock::warm_up();
        }

        /// The export thread's converter.
        #[derive(Debug)]
        pub struct Timeline(crate::base::clock::Timeline);

        impl Default for Timeline {
            fn default() -> Self {
                Timeline(crate::base::clock::Timeline::new())
            }
        }

        impl Timeline {
            /// Takes the published readings and one of its own (once per batch on the export thread).
            pub fn advance(&mut self) {
                self.0.advance();
            }

            /// A span's start and end on the wall clock.
            pub fn span(&self, start: Stamp, end: Stamp) -> (SystemTime, Option<SystemTime>) {
                self.0.span(start.0, Some(end.0))
            }
        }
    }

    /// Entry points for the fuzz targets in `fuzz/` (every parser that sees outside data).
    pub mod fuzz {
        use crate::config::Config;

        /// [`Config::from_env`] reading `lookup` instead of the process environment.
        pub fn config_from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Config {
            Config::from_lookup(lookup)
        }

        /// Parses a Jaeger sampling-strategy document and, when it is accepted, makes a few decisions
        /// with it. `Err` is the refusal's reason.
        pub fn jaeger_strategy(body: &[u8], operation: &str) -> Result<(), String> {
            let strategy = crate::policy::sampling::strategy::parse_strategy(body)?;
            for id in [0_u128, 1, u128::MAX / 3, u128::MAX] {
                let _ = strategy.decide(opentelemetry::trace::TraceId::from(id), operation);
            }
            Ok(())
        }

        /// Parses a `kotaemon-trace.toml` text and, when it is accepted, builds the configuration from it
        /// (with an empty environment). `Err` is the refusal, as `init()` would print it.
        #[cfg(feature = "config-file")]
        pub fn config_file(text: &str) -> Result<Config, crate::config::ConfigFileError> {
            crate::config::parse_file_for_fuzzing(text)
        }

        /// The longest body [`jaeger_strategy`] accepts, in bytes.
        pub const MAX_STRATEGY_BYTES: usize = crate::policy::sampling::strategy::MAX_BODY;
        /// The longest value read from one `OTEL_*` variable, in bytes.
        pub const MAX_ENV_VALUE_BYTES: usize = Config::MAX_ENV_VALUE_LEN;
        /// The longest string the export thread hands the redactor, in bytes.
        #[cfg(feature = "sdk")]
        pub const MAX_REDACTED_VALUE_BYTES: usize = crate::export::finish::MAX_VALUE_BYTES;
    }
}
