//! [`TraceGuard`]: flushes and shuts the pipeline down when `main` ends.

use crate::base::error::ShutdownError;
#[cfg(feature = "jaeger-remote")]
use crate::export::jaeger_remote::Poller;
use crate::export::processor::BatchProcessor;
use crate::export::queue::Stats;
use crate::hot::state as global;
use crate::policy::sampling::tail::TailSampler;
use opentelemetry_sdk::error::OTelSdkError;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Counters of the export pipeline since `init`.
///
/// ```
/// let guard = kotaemon_trace::init_with(
///     kotaemon_trace::config::Config::builder().exporter(kotaemon_trace::config::ExporterKind::None).build(),
/// ).unwrap();
/// assert_eq!(guard.stats().spans_dropped, 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportStats {
    /// Spans handed to the exporter successfully.
    pub spans_exported: u64,
    /// Spans dropped because the export queue (or, with tail sampling, its buffer) was full.
    pub spans_dropped: u64,
    /// Spans whose export failed (collector unreachable, timeout, rejected). While the collector is
    /// down, spans are held in the queue and retried; the batch in flight when it went away, a batch it
    /// kept refusing for a minute, and what is still held at shutdown count here. Always
    /// `spans ended = spans_exported + spans_dropped + spans_failed` once flushed.
    pub spans_failed: u64,
    /// String attribute values cut at `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT` (on a character boundary).
    pub attribute_values_truncated: u64,
    /// Attributes left out because a span, event or link had reached its count limit
    /// (`OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`, `OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT`, `OTEL_LINK_ATTRIBUTE_COUNT_LIMIT`).
    pub attributes_dropped: u64,
    /// Events left out because a span had reached `OTEL_SPAN_EVENT_COUNT_LIMIT`.
    pub events_dropped: u64,
    /// Links left out because a span had reached `OTEL_SPAN_LINK_COUNT_LIMIT`.
    pub links_dropped: u64,
}

/// Keeps the tracing pipeline alive; hold it in `main`.
///
/// Dropping it flushes every finished span and shuts the pipeline down, waiting at most the export
/// timeout (`OTEL_BSP_EXPORT_TIMEOUT`); problems are printed on stderr. Call [`TraceGuard::shutdown`]
/// instead to handle them.
///
/// ```no_run
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     let guard = kotaemon_trace::init()?;
///     // ... serve requests ...
///     guard.shutdown()?;
///     Ok(())
/// }
/// ```
#[must_use = "tracing stops when the guard is dropped; bind it: `let _guard = kotaemon_trace::init()?;`"]
pub struct TraceGuard {
    inner: Option<Active>,
}

/// A running pipeline, as `init` assembles it.
pub(crate) struct Active {
    pub(crate) provider: SdkTracerProvider,
    pub(crate) processor: Arc<BatchProcessor>,
    pub(crate) tail: Option<Arc<TailSampler>>,
    /// Stops the Jaeger remote sampler's polling thread when dropped.
    #[cfg(feature = "jaeger-remote")]
    pub(crate) poller: Option<Poller>,
    pub(crate) metrics: crate::export::metrics::Exporters,
    pub(crate) stats: Arc<Stats>,
    pub(crate) timeout: Duration,
    pub(crate) id: u64,
}

/// The counters only: never the configuration, whose header values and keys are secrets.
impl std::fmt::Debug for TraceGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TraceGuard").field("active", &self.inner.is_some()).field("stats", &self.stats()).finish()
    }
}

impl TraceGuard {
    pub(crate) fn active(active: Active) -> Self {
        TraceGuard { inner: Some(active) }
    }

    /// The address the Prometheus scrape endpoint listens on, when `OTEL_METRICS_EXPORTER` includes
    /// `prometheus` (with port 0, the port the system chose).
    ///
    /// ```
    /// use kotaemon_trace::init_with;
    /// use kotaemon_trace::config::{Config, ExporterKind, MetricsConfig};
    ///
    /// let mut metrics = MetricsConfig::default();
    /// metrics.prometheus = Some("127.0.0.1:0".into());
    /// let guard = init_with(Config::builder().exporter(ExporterKind::None).metrics(metrics).build())?;
    /// let address = guard.prometheus_address().expect("serving");
    /// assert!(address.ip().is_loopback());
    /// guard.shutdown().unwrap();
    /// # Ok::<(), kotaemon_trace::InitError>(())
    /// ```
    pub fn prometheus_address(&self) -> Option<std::net::SocketAddr> {
        self.inner.as_ref().and_then(|active| active.metrics.prometheus_address())
    }

    /// With the `jaeger_remote` sampler: the transport and URL of the last strategy received from Jaeger
    /// (`None` before the first, and with any other sampler). A URL without a path is tried over both
    /// of Jaeger's transports; this says which one answered.
    #[cfg(feature = "jaeger-remote")]
    pub fn jaeger_remote_source(&self) -> Option<crate::config::JaegerRemoteSource> {
        self.inner.as_ref().and_then(|active| active.poller.as_ref()).and_then(|poller| poller.source())
    }

    pub(crate) fn disabled() -> Self {
        TraceGuard { inner: None }
    }

    /// Exports every span that has ended so far, waiting at most the export timeout.
    ///
    /// ```
    /// # let guard = kotaemon_trace::init_with(kotaemon_trace::config::Config::builder()
    /// #     .exporter(kotaemon_trace::config::ExporterKind::None).build()).unwrap();
    /// guard.force_flush().expect("spans exported");
    /// ```
    pub fn force_flush(&self) -> Result<(), ShutdownError> {
        match &self.inner {
            Some(active) => active.processor.force_flush().map_err(|e| convert(e, active.timeout)),
            None => Ok(()),
        }
    }

    /// The pipeline's counters so far.
    pub fn stats(&self) -> ExportStats {
        match &self.inner {
            Some(active) => snapshot(&active.stats, active.tail.as_deref()),
            None => ExportStats::default(),
        }
    }

    /// Flushes and shuts down, reporting lost spans and export failures.
    ///
    /// ```
    /// let guard = kotaemon_trace::init_with(
    ///     kotaemon_trace::config::Config::builder().exporter(kotaemon_trace::config::ExporterKind::None).build(),
    /// ).unwrap();
    /// assert!(guard.shutdown().is_ok());
    /// ```
    pub fn shutdown(mut self) -> Result<(), ShutdownError> {
        match self.inner.take() {
            Some(active) => active.shutdown(),
            None => Ok(()),
        }
    }
}

impl Active {
    fn shutdown(self) -> Result<(), ShutdownError> {
        // Stop new spans first, so nothing is created against a provider that is going away.
        global::uninstall(self.id);
        // No new span will ask the sampler: stop polling Jaeger for strategies.
        #[cfg(feature = "jaeger-remote")]
        drop(self.poller);
        // Metrics after the last span, so the final push holds every call.
        self.metrics.shutdown();
        let result = self.processor.shutdown_with_timeout(self.timeout);
        // The processor is already shut down; this only marks the provider, so its errors add nothing.
        let _ = self.provider.shutdown_with_timeout(self.timeout);
        reset_global_provider();
        let stats = snapshot(&self.stats, self.tail.as_deref());
        let lost = stats.spans_dropped > 0 || stats.spans_failed > 0;
        match result {
            // The export error was printed when it happened; the counts are what the caller can act on.
            Err(OTelSdkError::Timeout(_)) => Err(ShutdownError::Timeout(self.timeout)),
            Ok(()) | Err(_) if lost => {
                Err(ShutdownError::SpansLost { dropped: stats.spans_dropped, failed: stats.spans_failed })
            }
            Ok(()) => Ok(()),
            Err(error) => Err(convert(error, self.timeout)),
        }
    }
}

impl Drop for TraceGuard {
    fn drop(&mut self) {
        if let Some(active) = self.inner.take()
            && let Err(error) = active.shutdown()
        {
            eprintln!("kotaemon-trace: shutdown: {error}");
        }
    }
}

fn snapshot(stats: &Stats, tail: Option<&TailSampler>) -> ExportStats {
    let evicted = tail.map_or(0, |t| t.evicted.load(Ordering::Relaxed));
    ExportStats {
        spans_exported: stats.exported.load(Ordering::Relaxed),
        spans_dropped: stats.dropped.load(Ordering::Relaxed) + evicted,
        spans_failed: stats.failed.load(Ordering::Relaxed),
        attribute_values_truncated: stats.values_truncated.load(Ordering::Relaxed),
        attributes_dropped: stats.attributes_dropped.load(Ordering::Relaxed),
        events_dropped: stats.events_dropped.load(Ordering::Relaxed),
        links_dropped: stats.links_dropped.load(Ordering::Relaxed),
    }
}

fn convert(error: OTelSdkError, timeout: Duration) -> ShutdownError {
    match error {
        OTelSdkError::Timeout(_) => ShutdownError::Timeout(timeout),
        other => ShutdownError::Export(other.to_string()),
    }
}

/// After shutdown, other OpenTelemetry users in the process get a no-op provider, not a dead one.
pub(crate) fn reset_global_provider() {
    opentelemetry::global::set_tracer_provider(opentelemetry::trace::noop::NoopTracerProvider::new());
}
