//! One validated configuration, from the `OTEL_*` environment or from Rust.
//!
//! [`Config::from_env`] and [`Config::builder`] produce the same [`Config`] for the same settings; the
//! pipeline is built from a `Config` only, so the two ways can never drift apart.

mod env;
mod file;
pub(crate) mod mask;
mod problem;
mod settings;
mod tls;

pub use crate::base::error::ConfigFileError;
pub use file::Origin;
pub use mask::{mask_headers, mask_url};
pub use problem::ConfigProblem;
pub use settings::Setting;
pub use tls::OtlpTls;
pub(crate) use tls::read_pem;

use crate::base::ports::DynExporter;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The wire protocol of the OTLP exporter (`OTEL_EXPORTER_OTLP_PROTOCOL`).
///
/// ```
/// use kotaemon_trace::config::Protocol;
/// assert_eq!(Protocol::default(), Protocol::HttpProtobuf);
/// assert_eq!(Protocol::Grpc.default_endpoint(), "http://localhost:4317");
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// OTLP over gRPC, port 4317 by convention.
    Grpc,
    /// OTLP over HTTP with protobuf bodies, port 4318 by convention; the spec's default.
    #[default]
    HttpProtobuf,
}

impl Protocol {
    /// The collector address used when no endpoint is configured.
    pub fn default_endpoint(self) -> &'static str {
        match self {
            Protocol::Grpc => "http://localhost:4317",
            Protocol::HttpProtobuf => "http://localhost:4318",
        }
    }

    /// The name used in `OTEL_EXPORTER_OTLP_PROTOCOL`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
        }
    }
}

/// Where finished spans go (`OTEL_TRACES_EXPORTER`).
///
/// ```
/// use kotaemon_trace::config::ExporterKind;
/// assert_eq!(ExporterKind::default(), ExporterKind::Otlp);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExporterKind {
    /// OTLP to a collector or Jaeger.
    #[default]
    Otlp,
    /// A readable tree per trace on stderr, for development.
    Console,
    /// Spans are created (so context still propagates) but not exported.
    None,
}

/// Compression of OTLP requests (`OTEL_EXPORTER_OTLP_COMPRESSION`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Compression {
    /// Uncompressed.
    #[default]
    None,
    /// gzip.
    Gzip,
}

/// Which traces are recorded (`OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`).
///
/// ```
/// use kotaemon_trace::config::Sampler;
/// let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatio(0.1)));
/// assert_eq!(sampler.name(), "parentbased_traceidratio");
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Sampler {
    /// Every trace.
    AlwaysOn,
    /// No trace (spans still propagate context).
    AlwaysOff,
    /// A fraction of traces, chosen by trace id so every service of a trace agrees.
    TraceIdRatio(f64),
    /// Follow the parent's decision; use the inner sampler for roots.
    ParentBased(Box<Sampler>),
    /// At most this many traces per second (a token bucket with a one-second burst).
    RateLimited(f64),
    /// The strategy Jaeger serves for this service, polled (see [`JaegerRemote`]).
    JaegerRemote(JaegerRemote),
}

/// Settings of the `jaeger_remote` sampler (`OTEL_TRACES_SAMPLER_ARG` =
/// `endpoint=…,pollingIntervalMs=…,initialSamplingRate=…`).
///
/// ```
/// use kotaemon_trace::config::JaegerRemote;
/// let remote = JaegerRemote::default();
/// assert_eq!(remote.endpoint, "http://localhost:14250");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct JaegerRemote {
    /// Jaeger's sampling server. A URL with a path (`http://localhost:5778/sampling`) is polled over
    /// HTTP. A URL without one may name either of Jaeger's sampling ports, HTTP (`:5778`) or gRPC
    /// (`:14250`, Jaeger v2's `:5779`): both transports are tried (HTTP at `/sampling` first on 5778, gRPC
    /// first elsewhere) and the one that answers is kept ([`JaegerRemoteSource`]).
    pub endpoint: String,
    /// Time between polls (default 60 s).
    pub polling_interval: Duration,
    /// Probability used until the first strategy arrives (default 0.001).
    pub initial_sampling_rate: f64,
}

impl Default for JaegerRemote {
    fn default() -> Self {
        JaegerRemote {
            endpoint: "http://localhost:14250".to_owned(),
            polling_interval: Duration::from_secs(60),
            initial_sampling_rate: 0.001,
        }
    }
}

/// Where the `jaeger_remote` sampler got its last strategy: the transport, and the URL it used (see
/// [`JaegerRemote::endpoint`] for how a URL without a path is resolved). Read it with
/// `TraceGuard::jaeger_remote_source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JaegerRemoteSource {
    /// Polled over HTTP at this URL (the service name is added as `?service=`).
    Http(String),
    /// Polled over gRPC (`jaeger.api_v2.SamplingManager`) at this endpoint.
    Grpc(String),
}

impl JaegerRemoteSource {
    /// The URL polled.
    pub fn url(&self) -> &str {
        match self {
            JaegerRemoteSource::Http(url) | JaegerRemoteSource::Grpc(url) => url,
        }
    }

    /// `"HTTP"` or `"gRPC"`.
    pub fn transport(&self) -> &'static str {
        match self {
            JaegerRemoteSource::Http(_) => "HTTP",
            JaegerRemoteSource::Grpc(_) => "gRPC",
        }
    }
}

impl std::fmt::Display for JaegerRemoteSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.transport(), crate::config::mask::mask_url(self.url()))
    }
}

/// Debug forcing: a request carrying the debug header is traced whatever the sampler says.
///
/// ```
/// use kotaemon_trace::config::DebugConfig;
/// let debug = DebugConfig::default();
/// assert_eq!(debug.header, "x-debug-tracing");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct DebugConfig {
    /// The header whose value `true` (or `1`) asks for a trace (`KOTAEMON_TRACE_DEBUG_HEADER`, default
    /// `x-debug-tracing`); Jaeger's `jaeger-debug-id` is honoured too.
    pub header: String,
    /// Forced traces granted per second at most, so the header cannot flood the backend
    /// (`KOTAEMON_TRACE_DEBUG_PER_SECOND`, default 5; 0 switches forcing off).
    pub per_second: f64,
}

impl Default for DebugConfig {
    fn default() -> Self {
        DebugConfig { header: "x-debug-tracing".to_owned(), per_second: 5.0 }
    }
}

/// Redaction settings; see [`crate::redact`]. On by default.
///
/// ```
/// use kotaemon_trace::config::RedactionConfig;
/// let redaction = RedactionConfig::default();
/// assert!(redaction.enabled && redaction.capture_arguments);
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RedactionConfig {
    /// Redaction on (`KOTAEMON_TRACE_REDACT`, default `true`). Off sends values as recorded: for local
    /// debugging only.
    pub enabled: bool,
    /// Extra secret-key regexes (`KOTAEMON_TRACE_REDACT_KEYS`, comma-separated).
    pub secret_key_patterns: Vec<String>,
    /// Extra value rules as `(name, regex)` (`KOTAEMON_TRACE_REDACT_VALUES`, `name=regex;name=regex`).
    pub value_patterns: Vec<(String, String)>,
    /// Keys never redacted, `prefix.*` for a prefix (`KOTAEMON_TRACE_REDACT_ALLOW_KEYS`, comma-separated).
    pub allow_keys: Vec<String>,
    /// Whether arguments are recorded at all (`KOTAEMON_TRACE_CAPTURE_ARGS`, default `true`).
    pub capture_arguments: bool,
    /// Whether IPv4 and IPv6 addresses in values are redacted (`KOTAEMON_TRACE_REDACT_IP`, default `true`).
    /// Off keeps client addresses, for operators who need them and may store them.
    pub redact_ip: bool,
    /// The pseudonym key (`KOTAEMON_TRACE_REDACTION_KEY`, at least 16 bytes); a random per-process key
    /// when unset. Never printed.
    pub pseudonym_key: Option<String>,
}

impl Default for RedactionConfig {
    fn default() -> Self {
        RedactionConfig {
            enabled: true,
            secret_key_patterns: Vec::new(),
            value_patterns: Vec::new(),
            allow_keys: Vec::new(),
            capture_arguments: true,
            redact_ip: true,
            pseudonym_key: None,
        }
    }
}

impl fmt::Debug for RedactionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedactionConfig")
            .field("enabled", &self.enabled)
            .field("secret_key_patterns", &self.secret_key_patterns)
            .field("value_patterns", &self.value_patterns)
            .field("allow_keys", &self.allow_keys)
            .field("capture_arguments", &self.capture_arguments)
            .field("redact_ip", &self.redact_ip)
            .field("pseudonym_key", &self.pseudonym_key.as_ref().map(|_| "(hidden)"))
            .finish()
    }
}

/// Whether prompt, completion and document text is recorded by the [`crate::llm`] and
/// [`crate::retrieval`] helpers. Off by default, as the GenAI conventions ask; when on, text is cut to
/// `max_chars` characters and always redacted.
///
/// ```
/// use kotaemon_trace::config::ContentCapture;
/// assert!(!ContentCapture::default().enabled);
/// assert_eq!(ContentCapture::default().max_chars, 4096);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContentCapture {
    /// `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` (default `false`).
    pub enabled: bool,
    /// `KOTAEMON_TRACE_CONTENT_MAX_CHARS` (default 4096).
    pub max_chars: usize,
}

impl Default for ContentCapture {
    fn default() -> Self {
        ContentCapture { enabled: false, max_chars: 4096 }
    }
}

/// Where RED and GenAI metrics go (`OTEL_METRICS_EXPORTER`, a comma-separated list; default `none`).
///
/// ```
/// use kotaemon_trace::config::MetricsConfig;
/// let metrics = MetricsConfig::default();
/// assert!(!metrics.otlp && metrics.prometheus.is_none());
/// assert_eq!(metrics.max_series, 2000);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetricsConfig {
    /// `otlp`: pushed to the OTLP endpoint's `/v1/metrics` every `export_interval`.
    pub otlp: bool,
    /// `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`: the full URL to push to, e.g. a Prometheus OTLP receiver's
    /// `http://127.0.0.1:9090/api/v1/otlp/v1/metrics`; default: the traces endpoint's collector.
    pub otlp_endpoint: Option<String>,
    /// `prometheus`: a scrape endpoint on this address (`OTEL_EXPORTER_PROMETHEUS_HOST`, default
    /// `127.0.0.1`, and `OTEL_EXPORTER_PROMETHEUS_PORT`, default 9464).
    pub prometheus: Option<String>,
    /// `OTEL_METRIC_EXPORT_INTERVAL` (default 60 000 ms).
    pub export_interval: Duration,
    /// TLS files of the OTLP push when they differ from the traces' (`OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE`,
    /// `…_METRICS_CLIENT_CERTIFICATE`, `…_METRICS_CLIENT_KEY`); `None`: the traces' files and client.
    pub otlp_tls: Option<OtlpTls>,
    /// Distinct label sets per metric before new ones are folded into one overflow series and counted
    /// (`KOTAEMON_TRACE_METRICS_MAX_SERIES`, default 2000).
    pub max_series: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            otlp: false,
            otlp_endpoint: None,
            prometheus: None,
            export_interval: Duration::from_secs(60),
            otlp_tls: None,
            max_series: 2000,
        }
    }
}

impl MetricsConfig {
    /// Whether any metrics exporter is on.
    pub fn enabled(&self) -> bool {
        self.otlp || self.prometheus.is_some()
    }
}

/// Tail sampling in process (off unless configured).
///
/// ```
/// use kotaemon_trace::config::TailConfig;
/// use std::time::Duration;
/// let tail = TailConfig { latency_threshold: Duration::from_secs(5), ..TailConfig::default() };
/// assert_eq!(tail.max_buffered_spans, 10_000);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TailConfig {
    /// A trace whose root took at least this long is kept (`KOTAEMON_TRACE_TAIL_LATENCY_MS`, which also
    /// switches tail sampling on).
    pub latency_threshold: Duration,
    /// Spans held while their trace's root runs; past it the oldest trace is dropped and counted
    /// (`KOTAEMON_TRACE_TAIL_MAX_SPANS`, default 10 000).
    pub max_buffered_spans: usize,
}

impl Default for TailConfig {
    fn default() -> Self {
        TailConfig { latency_threshold: Duration::from_secs(5), max_buffered_spans: 10_000 }
    }
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler::ParentBased(Box::new(Sampler::AlwaysOn))
    }
}

impl Sampler {
    /// The `OTEL_TRACES_SAMPLER` name of this sampler.
    pub fn name(&self) -> &'static str {
        match self {
            Sampler::AlwaysOn => "always_on",
            Sampler::AlwaysOff => "always_off",
            Sampler::TraceIdRatio(_) => "traceidratio",
            Sampler::RateLimited(_) => "rate_limiting",
            Sampler::JaegerRemote(_) => "jaeger_remote",
            Sampler::ParentBased(inner) => match **inner {
                Sampler::AlwaysOn => "parentbased_always_on",
                Sampler::AlwaysOff => "parentbased_always_off",
                Sampler::TraceIdRatio(_) => "parentbased_traceidratio",
                Sampler::RateLimited(_) => "parentbased_rate_limiting",
                Sampler::JaegerRemote(_) => "parentbased_jaeger_remote",
                Sampler::ParentBased(_) => "parentbased",
            },
        }
    }
}

/// A context propagation format (`OTEL_PROPAGATORS`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Propagator {
    /// W3C `traceparent` / `tracestate`.
    TraceContext,
    /// W3C `baggage`.
    Baggage,
    /// Zipkin B3, single `b3` header.
    B3,
    /// Zipkin B3, multiple `X-B3-*` headers.
    B3Multi,
    /// Jaeger's `uber-trace-id` and `uberctx-*` headers.
    Jaeger,
}

/// The batch span processor's settings (`OTEL_BSP_*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchConfig {
    /// Longest wait before a partial batch is exported (`OTEL_BSP_SCHEDULE_DELAY`, default 5 s).
    pub schedule_delay: Duration,
    /// Longest time one export may take (`OTEL_BSP_EXPORT_TIMEOUT`, default 30 s).
    pub export_timeout: Duration,
    /// Spans held while waiting for export; beyond it new spans are dropped and counted
    /// (`OTEL_BSP_MAX_QUEUE_SIZE`, default 2048).
    pub max_queue_size: usize,
    /// Spans per export request (`OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, default 512).
    pub max_export_batch_size: usize,
}

impl Default for BatchConfig {
    fn default() -> Self {
        BatchConfig {
            schedule_delay: Duration::from_millis(5000),
            export_timeout: Duration::from_millis(30_000),
            max_queue_size: 2048,
            max_export_batch_size: 512,
        }
    }
}

/// Limits applied to every span (`OTEL_*_LIMIT`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest string attribute value, in characters; longer values are cut on a character boundary
    /// (`OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`, `OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT`; default none).
    pub attribute_value_length: Option<usize>,
    /// Attributes per span (`OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`, `OTEL_ATTRIBUTE_COUNT_LIMIT`; default 128).
    pub attributes_per_span: u32,
    /// Events per span (`OTEL_SPAN_EVENT_COUNT_LIMIT`, default 128).
    pub events_per_span: u32,
    /// Links per span (`OTEL_SPAN_LINK_COUNT_LIMIT`, default 128).
    pub links_per_span: u32,
    /// Attributes per event (`OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT`, default 128).
    pub attributes_per_event: u32,
    /// Attributes per link (`OTEL_LINK_ATTRIBUTE_COUNT_LIMIT`, default 128).
    pub attributes_per_link: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            attribute_value_length: None,
            attributes_per_span: 128,
            events_per_span: 128,
            links_per_span: 128,
            attributes_per_event: 128,
            attributes_per_link: 128,
        }
    }
}

/// The OTLP exporter's settings (`OTEL_EXPORTER_OTLP_*`, the `TRACES_` forms winning).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OtlpConfig {
    /// The full URL requests go to. For HTTP it ends in `/v1/traces` (appended to
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`, taken as is from `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`).
    pub endpoint: String,
    /// The wire protocol.
    pub protocol: Protocol,
    /// Extra request headers, e.g. an API key. Never printed: `Debug` shows the names only.
    pub headers: Vec<(String, String)>,
    /// Longest time one request may take (default 10 s).
    pub timeout: Duration,
    /// Request compression.
    pub compression: Compression,
    /// Certificates for an `https://` endpoint (`OTEL_EXPORTER_OTLP_CERTIFICATE`, …), either protocol.
    pub tls: OtlpTls,
}

impl OtlpConfig {
    fn for_protocol(protocol: Protocol) -> Self {
        OtlpConfig {
            endpoint: traces_url(protocol, protocol.default_endpoint()),
            protocol,
            headers: Vec::new(),
            timeout: Duration::from_secs(10),
            compression: Compression::None,
            tls: OtlpTls::default(),
        }
    }
}

impl Default for OtlpConfig {
    fn default() -> Self {
        OtlpConfig::for_protocol(Protocol::default())
    }
}

impl fmt::Debug for OtlpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OtlpConfig")
            .field("endpoint", &mask::mask_url(&self.endpoint))
            .field("protocol", &self.protocol)
            .field("headers", &mask::mask_headers(self.headers.iter().map(|(name, _)| name.as_str())))
            .field("timeout", &self.timeout)
            .field("compression", &self.compression)
            .field("tls", &self.tls)
            .finish()
    }
}

/// A configuration file's text read with an empty environment (the fuzz target's entry point).
#[cfg(all(feature = "internal-hooks", feature = "config-file"))]
pub(crate) fn parse_file_for_fuzzing(text: &str) -> Result<Config, ConfigFileError> {
    let settings = file::parse(text, Path::new("kotaemon-trace.toml"))?;
    Ok(file::load_with(|_| None, settings))
}

pub(crate) fn traces_url(protocol: Protocol, base: &str) -> String {
    match protocol {
        Protocol::Grpc => base.to_owned(),
        Protocol::HttpProtobuf => format!("{}/v1/traces", base.trim_end_matches('/')),
    }
}

/// The complete, validated configuration of the tracing pipeline.
///
/// Build it with [`Config::from_env`] (what [`crate::init`] does) or [`Config::builder`], then pass it
/// to [`crate::init_with`].
///
/// ```
/// use kotaemon_trace::config::{Config, ExporterKind};
///
/// let config = Config::builder()
///     .service_name("rag-api")
///     .exporter(ExporterKind::Console)
///     .build();
/// assert_eq!(config.service_name(), "rag-api");
/// assert!(config.problems().is_empty());
/// ```
#[derive(Clone)]
pub struct Config {
    pub(crate) disabled: bool,
    pub(crate) service_name: Option<String>,
    pub(crate) resource_attributes: Vec<(String, String)>,
    pub(crate) exporter: ExporterKind,
    pub(crate) otlp: OtlpConfig,
    pub(crate) sampler: Sampler,
    pub(crate) batch: BatchConfig,
    pub(crate) limits: Limits,
    pub(crate) propagators: Vec<Propagator>,
    pub(crate) debug: DebugConfig,
    pub(crate) tail: Option<TailConfig>,
    pub(crate) redaction: RedactionConfig,
    pub(crate) content: ContentCapture,
    pub(crate) metrics: MetricsConfig,
    /// `OTEL_LOGS_EXPORTER=otlp` (used by `logs::OtlpLogs`, feature `otlp-logs`).
    pub(crate) logs_otlp: bool,
    /// `OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`.
    pub(crate) logs_endpoint: Option<String>,
    /// `OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE`, …: the logs' TLS files when they differ from the traces'.
    pub(crate) logs_tls: Option<OtlpTls>,
    pub(crate) jaeger_query_url: Option<String>,
    pub(crate) custom_exporter: Option<Arc<dyn DynExporter>>,
    pub(crate) problems: Vec<ConfigProblem>,
    /// Where each set variable came from (env or file); absent means default.
    pub(crate) origins: Arc<BTreeMap<String, Origin>>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            disabled: false,
            service_name: None,
            resource_attributes: Vec::new(),
            exporter: ExporterKind::default(),
            otlp: OtlpConfig::default(),
            sampler: Sampler::default(),
            batch: BatchConfig::default(),
            limits: Limits::default(),
            propagators: vec![Propagator::TraceContext, Propagator::Baggage],
            debug: DebugConfig::default(),
            tail: None,
            redaction: RedactionConfig::default(),
            content: ContentCapture::default(),
            metrics: MetricsConfig::default(),
            logs_otlp: false,
            logs_endpoint: None,
            logs_tls: None,
            jaeger_query_url: None,
            custom_exporter: None,
            problems: Vec::new(),
            origins: Arc::default(),
        }
    }
}

impl PartialEq for Config {
    /// Equal settings; a custom exporter compares by identity.
    fn eq(&self, other: &Self) -> bool {
        self.disabled == other.disabled
            && self.service_name == other.service_name
            && self.resource_attributes == other.resource_attributes
            && self.exporter == other.exporter
            && self.otlp == other.otlp
            && self.sampler == other.sampler
            && self.batch == other.batch
            && self.limits == other.limits
            && self.propagators == other.propagators
            && self.debug == other.debug
            && self.tail == other.tail
            && self.redaction == other.redaction
            && self.content == other.content
            && self.metrics == other.metrics
            && self.logs_otlp == other.logs_otlp
            && self.logs_endpoint == other.logs_endpoint
            && self.logs_tls == other.logs_tls
            && self.jaeger_query_url == other.jaeger_query_url
            && match (&self.custom_exporter, &other.custom_exporter) {
                (None, None) => true,
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                _ => false,
            }
            && self.problems == other.problems
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("disabled", &self.disabled)
            .field("service_name", &self.service_name())
            .field("resource_attributes", &self.resource_attributes)
            .field("exporter", &self.exporter)
            .field("otlp", &self.otlp)
            .field("sampler", &self.sampler)
            .field("batch", &self.batch)
            .field("limits", &self.limits)
            .field("propagators", &self.propagators)
            .field("debug", &self.debug)
            .field("tail", &self.tail)
            .field("redaction", &self.redaction)
            .field("content", &self.content)
            .field("metrics", &self.metrics)
            .field("logs_otlp", &self.logs_otlp)
            .field("logs_endpoint", &self.logs_endpoint)
            .field("logs_tls", &self.logs_tls)
            .field("jaeger_query_url", &self.jaeger_query_url)
            .field("custom_exporter", &self.custom_exporter.is_some())
            .field("problems", &self.problems)
            .finish()
    }
}

impl Config {
    /// Reads the `OTEL_*` environment. Invalid values become [`ConfigProblem`]s (see
    /// [`Config::problems`]) and their defaults are used; nothing here panics.
    ///
    /// ```
    /// let config = kotaemon_trace::config::Config::from_env();
    /// for problem in config.problems() {
    ///     eprintln!("{problem}");
    /// }
    /// ```
    pub fn from_env() -> Config {
        file::load_with(|name| std::env::var(name).ok(), file::FileSettings::default())
    }

    /// Reads the environment over the configuration file: `KOTAEMON_TRACE_CONFIG` names the file (it must
    /// exist), else `./kotaemon-trace.toml` is read when present. This is what [`crate::init`] uses.
    ///
    /// An environment variable beats the file's key for the same setting, and the file beats the
    /// default. Invalid environment values are [`ConfigProblem`]s, as with [`Config::from_env`]; anything
    /// wrong in the file refuses the whole file with a [`ConfigFileError`] naming file, line and key.
    ///
    /// ```
    /// let config = kotaemon_trace::config::Config::load()?;
    /// println!("exporting {} to {}", config.service_name(), config.otlp().endpoint);
    /// # Ok::<(), kotaemon_trace::config::ConfigFileError>(())
    /// ```
    pub fn load() -> Result<Config, ConfigFileError> {
        let get = |name: &str| std::env::var(name).ok();
        let settings = match file::locate(&get) {
            Some(path) => file::read(&path)?,
            None => file::FileSettings::default(),
        };
        Ok(file::load_with(get, settings))
    }

    /// Like [`Config::load`], with the file at `path` (which must exist).
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("kt-load-from-{}.toml", std::process::id()));
    /// std::fs::write(&path, "[service]\nname = \"rag-api\"\n").unwrap();
    /// let config = kotaemon_trace::config::Config::load_from(&path).unwrap();
    /// # std::fs::remove_file(&path).unwrap();
    /// if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
    ///     assert_eq!(config.service_name(), "rag-api");
    /// }
    /// ```
    pub fn load_from(path: impl AsRef<Path>) -> Result<Config, ConfigFileError> {
        let settings = file::read(path.as_ref())?;
        Ok(file::load_with(|name| std::env::var(name).ok(), settings))
    }

    /// Where the value of an environment variable's setting came from: [`Origin::Env`],
    /// [`Origin::File`] (with the key and line), or [`Origin::Default`]. Settings made with the builder
    /// report `Default`.
    ///
    /// ```
    /// use kotaemon_trace::config::{Config, Origin};
    /// assert_eq!(Config::builder().build().origin("OTEL_SERVICE_NAME"), Origin::Default);
    /// ```
    pub fn origin(&self, variable: &str) -> Origin {
        self.origins.get(variable).cloned().unwrap_or(Origin::Default)
    }

    /// The file key standing for an environment variable (`OTEL_SERVICE_NAME` → `service.name`).
    ///
    /// ```
    /// assert_eq!(kotaemon_trace::config::Config::file_key("OTEL_TRACES_SAMPLER"), Some("sampler.name"));
    /// ```
    pub fn file_key(variable: &str) -> Option<&'static str> {
        file::key_of(variable)
    }

    /// Starts from the defaults (not the environment).
    ///
    /// ```
    /// use kotaemon_trace::config::{Config, Protocol, Sampler};
    /// use std::time::Duration;
    ///
    /// let config = Config::builder()
    ///     .service_name("retriever")
    ///     .otlp_endpoint("http://127.0.0.1:4317")
    ///     .protocol(Protocol::Grpc)
    ///     .otlp_timeout(Duration::from_secs(3))
    ///     .sampler(Sampler::TraceIdRatio(0.25))
    ///     .build();
    /// assert_eq!(config.otlp().endpoint, "http://127.0.0.1:4317");
    /// ```
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder { config: Config::default(), endpoint: None }
    }

    /// Continues building from this configuration, e.g. to override one setting read from the environment.
    ///
    /// ```
    /// use kotaemon_trace::config::{Config, ExporterKind};
    ///
    /// let config = Config::from_env().into_builder().exporter(ExporterKind::Console).build();
    /// assert_eq!(config.exporter(), ExporterKind::Console);
    /// ```
    pub fn into_builder(self) -> ConfigBuilder {
        ConfigBuilder { config: self, endpoint: None }
    }

    /// Invalid settings that were replaced by their defaults, one per variable.
    pub fn problems(&self) -> &[ConfigProblem] {
        &self.problems
    }

    /// The effective `service.name`: `OTEL_SERVICE_NAME`, else `service.name` from the resource
    /// attributes, else `unknown_service:<executable>` as the spec asks.
    pub fn service_name(&self) -> String {
        self.service_name_and_source().0
    }

    /// The effective `service.name` and the variable it was taken from (`None` for the fallback).
    fn service_name_and_source(&self) -> (String, Option<&'static str>) {
        if let Some(name) = &self.service_name {
            return (name.clone(), Some("OTEL_SERVICE_NAME"));
        }
        if let Some((_, name)) = self.resource_attributes.iter().find(|(k, _)| k == "service.name") {
            return (name.clone(), Some("OTEL_RESOURCE_ATTRIBUTES"));
        }
        let exe = std::env::current_exe().ok().and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
        match exe {
            Some(exe) => (format!("unknown_service:{exe}"), None),
            None => ("unknown_service".to_owned(), None),
        }
    }

    /// Whether the SDK is disabled (`OTEL_SDK_DISABLED=true`): annotated functions run untraced.
    pub fn is_disabled(&self) -> bool {
        self.disabled
    }

    /// The exporter kind.
    pub fn exporter(&self) -> ExporterKind {
        self.exporter
    }

    /// The OTLP exporter's settings.
    pub fn otlp(&self) -> &OtlpConfig {
        &self.otlp
    }

    /// The sampler.
    pub fn sampler(&self) -> &Sampler {
        &self.sampler
    }

    /// The batch processor's settings.
    pub fn batch(&self) -> &BatchConfig {
        &self.batch
    }

    /// The span limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The propagation formats installed globally.
    pub fn propagators(&self) -> &[Propagator] {
        &self.propagators
    }

    /// Debug forcing.
    pub fn debug(&self) -> &DebugConfig {
        &self.debug
    }

    /// Tail sampling, when on.
    pub fn tail(&self) -> Option<&TailConfig> {
        self.tail.as_ref()
    }

    /// Redaction.
    pub fn redaction(&self) -> &RedactionConfig {
        &self.redaction
    }

    /// Capture of prompt, completion and document text.
    pub fn content(&self) -> ContentCapture {
        self.content
    }

    /// Metrics exporters.
    pub fn metrics(&self) -> &MetricsConfig {
        &self.metrics
    }

    /// Jaeger's query API (`KOTAEMON_TRACE_JAEGER_URL` or `jaeger.query_url`), for tools that read traces
    /// back, such as the `kotaemon-trace` CLI.
    pub fn jaeger_query_url(&self) -> Option<&str> {
        self.jaeger_query_url.as_deref()
    }
}

/// Builds a [`Config`] in Rust; every method mirrors one environment variable.
///
/// ```
/// use kotaemon_trace::config::{Config, ExporterKind};
/// let config = Config::builder().exporter(ExporterKind::None).build();
/// assert_eq!(config.exporter(), ExporterKind::None);
/// ```
#[must_use]
pub struct ConfigBuilder {
    config: Config,
    endpoint: Option<String>,
}

impl ConfigBuilder {
    /// `OTEL_SDK_DISABLED`.
    pub fn disabled(mut self, disabled: bool) -> Self {
        self.config.disabled = disabled;
        self
    }

    /// `OTEL_SERVICE_NAME`.
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.config.service_name = Some(name.into());
        self
    }

    /// One entry of `OTEL_RESOURCE_ATTRIBUTES`.
    pub fn resource_attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.resource_attributes.push((key.into(), value.into()));
        self
    }

    /// `OTEL_TRACES_EXPORTER`.
    pub fn exporter(mut self, exporter: ExporterKind) -> Self {
        self.config.exporter = exporter;
        self
    }

    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: the collector's base address (for HTTP, `/v1/traces` is appended).
    pub fn otlp_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: the exact URL trace requests go to.
    pub fn otlp_traces_endpoint(mut self, url: impl Into<String>) -> Self {
        self.config.otlp.endpoint = url.into();
        self.endpoint = None;
        self
    }

    /// `OTEL_EXPORTER_OTLP_PROTOCOL`.
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        let default_url = traces_url(self.config.otlp.protocol, self.config.otlp.protocol.default_endpoint());
        if self.config.otlp.endpoint == default_url {
            self.config.otlp.endpoint = traces_url(protocol, protocol.default_endpoint());
        }
        self.config.otlp.protocol = protocol;
        self
    }

    /// One entry of `OTEL_EXPORTER_OTLP_HEADERS`.
    pub fn otlp_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.config.otlp.headers.push((name.into(), value.into()));
        self
    }

    /// `OTEL_EXPORTER_OTLP_CERTIFICATE`, `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE`, `OTEL_EXPORTER_OTLP_CLIENT_KEY`.
    pub fn otlp_tls(mut self, tls: OtlpTls) -> Self {
        self.config.otlp.tls = tls;
        self
    }

    /// `OTEL_EXPORTER_OTLP_TIMEOUT`.
    pub fn otlp_timeout(mut self, timeout: Duration) -> Self {
        self.config.otlp.timeout = timeout;
        self
    }

    /// `OTEL_EXPORTER_OTLP_COMPRESSION`.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.config.otlp.compression = compression;
        self
    }

    /// `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`.
    pub fn sampler(mut self, sampler: Sampler) -> Self {
        self.config.sampler = sampler;
        self
    }

    /// `OTEL_BSP_*`.
    pub fn batch(mut self, batch: BatchConfig) -> Self {
        self.config.batch = batch;
        self
    }

    /// `OTEL_*_LIMIT`.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.config.limits = limits;
        self
    }

    /// `OTEL_PROPAGATORS`.
    pub fn propagators(mut self, propagators: impl IntoIterator<Item = Propagator>) -> Self {
        self.config.propagators = propagators.into_iter().collect();
        self
    }

    /// Debug forcing: the header and the per-second cap.
    pub fn debug(mut self, debug: DebugConfig) -> Self {
        self.config.debug = debug;
        self
    }

    /// Redaction settings (`KOTAEMON_TRACE_REDACT*`).
    pub fn redaction(mut self, redaction: RedactionConfig) -> Self {
        self.config.redaction = redaction;
        self
    }

    /// Capture of prompt, completion and document text (`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`,
    /// `KOTAEMON_TRACE_CONTENT_MAX_CHARS`).
    pub fn content(mut self, content: ContentCapture) -> Self {
        self.config.content = content;
        self
    }

    /// Metrics exporters (`OTEL_METRICS_EXPORTER` and the variables of [`MetricsConfig`]).
    ///
    /// ```
    /// use kotaemon_trace::config::{Config, MetricsConfig};
    /// let mut metrics = MetricsConfig::default();
    /// metrics.prometheus = Some("127.0.0.1:9464".into());
    /// assert!(Config::builder().metrics(metrics).build().metrics().enabled());
    /// ```
    pub fn metrics(mut self, metrics: MetricsConfig) -> Self {
        self.config.metrics = metrics;
        self
    }

    /// OTLP log export of `tracing` events (`OTEL_LOGS_EXPORTER=otlp`; feature `otlp-logs`), to `endpoint`
    /// (`OTEL_EXPORTER_OTLP_LOGS_ENDPOINT`) or, when `None`, the traces' collector.
    ///
    /// ```
    /// let config = kotaemon_trace::config::Config::builder().otlp_logs(Some("http://127.0.0.1:4318/v1/logs".into())).build();
    /// # let _ = config;
    /// ```
    pub fn otlp_logs(mut self, endpoint: Option<String>) -> Self {
        self.config.logs_otlp = true;
        self.config.logs_endpoint = endpoint;
        self
    }

    /// TLS files for the OTLP logs when they differ from the traces' (`OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE`,
    /// `…_LOGS_CLIENT_CERTIFICATE`, `…_LOGS_CLIENT_KEY`); without this call the logs use the traces' files.
    pub fn otlp_logs_tls(mut self, tls: OtlpTls) -> Self {
        self.config.logs_tls = Some(tls);
        self
    }

    /// Jaeger's query API address (`KOTAEMON_TRACE_JAEGER_URL`).
    pub fn jaeger_query_url(mut self, url: impl Into<String>) -> Self {
        self.config.jaeger_query_url = Some(url.into());
        self
    }

    /// Switches tail sampling on.
    pub fn tail_sampling(mut self, tail: TailConfig) -> Self {
        self.config.tail = Some(tail);
        self
    }

    /// Sends spans to your own [`SpanExporter`](opentelemetry_sdk::trace::SpanExporter) instead of
    /// the one `exporter` names, still through the redacting batch processor. Useful in tests with the
    /// SDK's in-memory exporter.
    ///
    /// ```
    /// use kotaemon_trace::config::Config;
    /// use opentelemetry_sdk::trace::InMemorySpanExporter;
    ///
    /// let spans = InMemorySpanExporter::default();
    /// let config = Config::builder().span_exporter(spans.clone()).build();
    /// # let _ = config;
    /// ```
    pub fn span_exporter<E>(mut self, exporter: E) -> Self
    where
        E: opentelemetry_sdk::trace::SpanExporter + 'static,
    {
        self.config.custom_exporter = Some(crate::base::ports::boxed(exporter));
        self
    }

    /// The finished configuration.
    pub fn build(mut self) -> Config {
        if let Some(base) = self.endpoint.take() {
            self.config.otlp.endpoint = traces_url(self.config.otlp.protocol, &base);
        }
        self.config
    }
}
