//! RED metrics for every annotated call, and GenAI metrics for model calls, for dashboards and Jaeger's
//! Monitor tab.
//!
//! Every call of a `#[trace_with_otel]` function, sampled or not, adds its duration to a histogram
//! labelled by service, span name, span kind and status code, under the names Jaeger's Monitor tab (SPM)
//! reads from Prometheus: `traces_span_metrics_calls_total` and
//! `traces_span_metrics_duration_milliseconds_{bucket,sum,count}`. Calls with `kind = "llm"` or
//! `"embedding"` also update `gen_ai.client.operation.duration` (seconds) and, through
//! [`crate::api::genai::llm::usage`], `gen_ai.client.token.usage`, labelled by operation, model and provider.
//!
//! Metrics are off unless `OTEL_METRICS_EXPORTER` names an exporter: `prometheus` serves a scrape
//! endpoint (loopback by default), `otlp` pushes to the OTLP endpoint's `/v1/metrics` every
//! `OTEL_METRIC_EXPORT_INTERVAL`.
//!
//! **Cost.** Each call site owns its histograms in its `static`; recording is two clock reads and a few
//! relaxed atomic additions, never a lock or an allocation. **Cardinality** is bounded by construction:
//! labels come from span names (string literals in the code) and declared kinds, never from argument
//! values. Model and provider names come from values, so those series are capped at
//! `KOTAEMON_TRACE_METRICS_MAX_SERIES`, as are call sites (each accounts for four series: entry or not,
//! ok or error); past the cap, calls are folded into one series labelled `otel_metric_overflow="true"`,
//! the cap is reported once on stderr and counted in `kotaemon_trace_metrics_overflow_total`.
//!
//! **Redactions** are counted per rule on the export thread: `kotaemon_trace_redactions_total{kind}`
//! (OTLP: `kotaemon_trace.redactions` with attribute `kind`), where `kind` is the rule's name as in the
//! marker `[REDACTED:<kind>]`: bounded by the built-in catalogue and the configured value rules.
//!
//! **Errors** are calls that returned `Err` under the `err` option, or panicked; a cancelled future is
//! not an error.
//!
//! ```
//! use kotaemon_trace::{init_with, trace_with_otel};
//! use kotaemon_trace::config::{Config, ExporterKind, MetricsConfig};
//! use std::io::{Read as _, Write as _};
//!
//! #[trace_with_otel("retrieve.customer_history", kind = "retriever")]
//! fn retrieve() {}
//!
//! // Same as OTEL_METRICS_EXPORTER=prometheus with OTEL_EXPORTER_PROMETHEUS_PORT=0 (any free port).
//! let mut metrics = MetricsConfig::default();
//! metrics.prometheus = Some("127.0.0.1:0".into());
//! let guard = init_with(Config::builder().service_name("rag-api").exporter(ExporterKind::None).metrics(metrics).build())?;
//! retrieve();
//!
//! let mut scrape = std::net::TcpStream::connect(guard.prometheus_address().unwrap())?;
//! scrape.write_all(b"GET /metrics HTTP/1.1\r\n\r\n")?;
//! let mut text = String::new();
//! scrape.read_to_string(&mut text)?;
//! assert!(text.contains(
//!     r#"traces_span_metrics_calls_total{service_name="rag-api",span_name="retrieve.customer_history",span_kind="SPAN_KIND_SERVER",status_code="STATUS_CODE_UNSET"} 1"#
//! ));
//! guard.shutdown().unwrap();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
