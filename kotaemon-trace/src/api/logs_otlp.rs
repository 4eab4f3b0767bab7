//! OTLP log export of `tracing` events through the OpenTelemetry Logs SDK (cargo feature `otlp-logs`).
//!
//! The `tracing` appender (`opentelemetry-appender-tracing`) turns each event into a log record; the
//! logger it writes to is wrapped here so that the record's body and every string attribute pass through
//! the same redactor as span data *while the record is built*, before any processor or exporter holds
//! it. Records made inside an annotated function carry its trace and span ids (the Logs SDK reads the
//! current context), so Jaeger's span → logs link and log backends join on them.

use crate::base::error::{ExporterError, InitError, ShutdownError};
use crate::config::{Config, Protocol};
use crate::export::transport::{Transport, signal_url};
use crate::policy::redact::Redactor;
use opentelemetry::logs::{AnyValue, LogRecord, Logger, LoggerProvider, Severity};
use opentelemetry::{InstrumentationScope, Key};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::logs::{BatchLogProcessor, LogBatch, LogExporter, SdkLogRecord, SdkLogger, SdkLoggerProvider};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// OTLP log export, set up from the configuration (`OTEL_LOGS_EXPORTER=otlp`).
///
/// ```no_run
/// use kotaemon_trace::{logs::OtlpLogs};
/// use kotaemon_trace::config::Config;
/// use tracing_subscriber::layer::SubscriberExt as _;
///
/// let config = Config::load()?;
/// let _traces = kotaemon_trace::init_with(config.clone())?;
/// let logs = OtlpLogs::from_config(&config)?; // None unless OTEL_LOGS_EXPORTER=otlp
/// let subscriber = tracing_subscriber::registry().with(logs.as_ref().map(OtlpLogs::layer));
/// tracing::subscriber::set_global_default(subscriber).expect("one subscriber");
/// tracing::info!(order = "ORD-1042", "order looked up"); // exported, redacted, with the trace id
/// if let Some(logs) = logs {
///     logs.shutdown()?;
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct OtlpLogs {
    provider: SdkLoggerProvider,
    redactor: Option<Arc<Redactor>>,
    timeout: Duration,
}

impl std::fmt::Debug for OtlpLogs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtlpLogs").field("redacted", &self.redactor.is_some()).finish_non_exhaustive()
    }
}

impl OtlpLogs {
    /// Builds the log pipeline when the configuration asks for OTLP logs, else `None`. The endpoint,
    /// protocol, headers and timeout are the traces' (`…/v1/logs` for HTTP), or
    /// `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT` when set.
    pub fn from_config(config: &Config) -> Result<Option<OtlpLogs>, InitError> {
        if !config.logs_otlp {
            return Ok(None);
        }
        let redactor =
            if config.redaction.enabled { Some(Arc::new(Redactor::from_config(&config.redaction)?)) } else { None };
        let exporter = OnOwnRuntime::build(config)?;
        let provider = SdkLoggerProvider::builder()
            .with_resource(crate::export::resource(config))
            .with_log_processor(BatchLogProcessor::builder(exporter).build())
            .build();
        Ok(Some(OtlpLogs { provider, redactor, timeout: config.otlp.timeout }))
    }

    /// The `tracing-subscriber` layer that exports events as log records.
    pub fn layer<S>(&self) -> impl tracing_subscriber::Layer<S> + use<S>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        let provider = Redacting { inner: self.provider.clone(), redactor: self.redactor.clone() };
        opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(&provider)
    }

    /// Exports what is queued and stops, within the export timeout.
    pub fn shutdown(self) -> Result<(), ShutdownError> {
        self.provider.shutdown_with_timeout(self.timeout).map_err(|e| ShutdownError::Export(e.to_string()))
    }
}

/// The OTLP log exporter, driven on a small runtime of its own: the Logs SDK's batch processor runs on a
/// plain thread, where the async clients (tonic, reqwest) would find no reactor.
#[derive(Debug)]
struct OnOwnRuntime {
    exporter: opentelemetry_otlp::LogExporter,
    runtime: tokio::runtime::Runtime,
    transport: Transport,
}

impl OnOwnRuntime {
    fn build(config: &Config) -> Result<OnOwnRuntime, InitError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("kotaemon-trace-logs")
            .enable_all()
            .build()
            .map_err(InitError::Io)?;
        let mut otlp = config.otlp.clone();
        otlp.endpoint = signal_url(&config.otlp, config.logs_endpoint.as_deref(), "/v1/logs");
        if let Some(tls) = &config.logs_tls {
            otlp.tls = tls.clone();
        }
        let _entered = runtime.enter();
        // The same transport module as traces and the metrics push: TLS files, compression, headers and
        // timeout apply alike. The client is this runtime's own: a connection pool lives on the runtime
        // that made it, and the logs outlive no trace pipeline.
        let transport = Transport::new(&otlp)?;
        let built = match otlp.protocol {
            Protocol::Grpc => {
                let mut builder = opentelemetry_otlp::LogExporter::builder()
                    .with_tonic()
                    .with_endpoint(otlp.endpoint.clone())
                    .with_timeout(otlp.timeout)
                    .with_metadata(crate::export::transport::metadata(&otlp)?);
                if let Some(channel) = transport.grpc() {
                    builder = builder.with_channel(channel.clone());
                }
                if transport.gzip() {
                    builder = builder.with_compression(opentelemetry_otlp::Compression::Gzip);
                }
                builder.build()
            }
            Protocol::HttpProtobuf => {
                let mut builder = opentelemetry_otlp::LogExporter::builder()
                    .with_http()
                    .with_endpoint(otlp.endpoint.clone())
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                    .with_timeout(otlp.timeout)
                    .with_headers(otlp.headers.iter().cloned().collect());
                if let Some(client) = transport.http() {
                    builder = builder.with_http_client(client.clone());
                }
                if transport.gzip() {
                    builder = builder.with_compression(opentelemetry_otlp::Compression::Gzip);
                }
                builder.build()
            }
        };
        let secrets = crate::export::secret::Secrets::of_otlp(&config.otlp);
        let exporter =
            built.map_err(|e| InitError::Exporter(ExporterError::scrubbed(&e, &|text| secrets.scrub(text))))?;
        drop(_entered);
        Ok(OnOwnRuntime { exporter, runtime, transport })
    }
}

impl LogExporter for OnOwnRuntime {
    async fn export(&self, batch: LogBatch<'_>) -> OTelSdkResult {
        self.runtime.block_on(self.exporter.export(batch)).map_err(|e| match e {
            OTelSdkError::InternalFailure(why) => OTelSdkError::InternalFailure(self.transport.explain(&why)),
            other => other,
        })
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.exporter.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.exporter.set_resource(resource);
    }
}

/// A logger provider whose records redact what is written into them.
#[derive(Clone)]
struct Redacting<P> {
    inner: P,
    redactor: Option<Arc<Redactor>>,
}

impl LoggerProvider for Redacting<SdkLoggerProvider> {
    type Logger = Redacting<SdkLogger>;

    fn logger_with_scope(&self, scope: InstrumentationScope) -> Self::Logger {
        Redacting { inner: self.inner.logger_with_scope(scope), redactor: self.redactor.clone() }
    }
}

impl Logger for Redacting<SdkLogger> {
    type LogRecord = RedactedRecord;

    fn create_log_record(&self) -> RedactedRecord {
        RedactedRecord { inner: self.inner.create_log_record(), redactor: self.redactor.clone() }
    }

    fn emit(&self, mut record: RedactedRecord) {
        // The SDK takes the trace from the current context; inside a dropped root that has no span yet.
        if record.inner.trace_context().is_none()
            && let Some(root) = opentelemetry::Context::map_current(crate::hot::current::dropped_root_context)
        {
            use opentelemetry::trace::TraceContextExt as _;
            let span = root.span();
            let sc = span.span_context();
            record.inner.set_trace_context(sc.trace_id(), sc.span_id(), Some(sc.trace_flags()));
        }
        self.inner.emit(record.inner);
    }

    fn event_enabled(&self, level: Severity, target: &str, name: Option<&str>) -> bool {
        self.inner.event_enabled(level, target, name)
    }
}

/// A log record under construction; strings are redacted as they are set.
struct RedactedRecord {
    inner: SdkLogRecord,
    redactor: Option<Arc<Redactor>>,
}

impl RedactedRecord {
    fn clean(&self, key: &str, value: AnyValue) -> AnyValue {
        let Some(redactor) = &self.redactor else { return value };
        match value {
            AnyValue::String(text) => match redactor.redact_cached(key, text.as_str()) {
                std::borrow::Cow::Borrowed(_) => AnyValue::String(text),
                std::borrow::Cow::Owned(redacted) => AnyValue::String(redacted.into()),
            },
            AnyValue::ListAny(items) => {
                AnyValue::ListAny(Box::new(items.into_iter().map(|v| self.clean(key, v)).collect()))
            }
            AnyValue::Map(map) => AnyValue::Map(Box::new(
                map.into_iter()
                    .map(|(k, v)| {
                        let cleaned = self.clean(k.as_str(), v);
                        (k, cleaned)
                    })
                    .collect(),
            )),
            other => other,
        }
    }
}

impl LogRecord for RedactedRecord {
    fn set_event_name(&mut self, name: &'static str) {
        self.inner.set_event_name(name);
    }

    fn set_target<T: Into<std::borrow::Cow<'static, str>>>(&mut self, target: T) {
        self.inner.set_target(target);
    }

    fn set_timestamp(&mut self, timestamp: SystemTime) {
        self.inner.set_timestamp(timestamp);
    }

    fn set_observed_timestamp(&mut self, timestamp: SystemTime) {
        self.inner.set_observed_timestamp(timestamp);
    }

    fn set_severity_text(&mut self, text: &'static str) {
        self.inner.set_severity_text(text);
    }

    fn set_severity_number(&mut self, number: Severity) {
        self.inner.set_severity_number(number);
    }

    fn set_body(&mut self, body: AnyValue) {
        // The message: value detectors apply, no key rule (its key names no secret).
        let body = self.clean("body", body);
        self.inner.set_body(body);
    }

    fn add_attributes<I, K, V>(&mut self, attributes: I)
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<Key>,
        V: Into<AnyValue>,
    {
        for (key, value) in attributes {
            self.add_attribute(key, value);
        }
    }

    fn add_attribute<K: Into<Key>, V: Into<AnyValue>>(&mut self, key: K, value: V) {
        let key = key.into();
        let value = self.clean(key.as_str(), value.into());
        self.inner.add_attribute(key, value);
    }

    fn set_trace_context(
        &mut self,
        trace_id: opentelemetry::trace::TraceId,
        span_id: opentelemetry::trace::SpanId,
        trace_flags: Option<opentelemetry::trace::TraceFlags>,
    ) {
        self.inner.set_trace_context(trace_id, span_id, trace_flags);
    }
}
