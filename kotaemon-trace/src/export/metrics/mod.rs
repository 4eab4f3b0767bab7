//! The RED and GenAI metric series the hot path records into, and their exporters (Prometheus pull,
//! OTLP push). What they mean for users: `api::metrics`.
// Snapshots are read only by the metric exporters.
#![cfg_attr(not(any(feature = "prometheus", feature = "otlp-grpc", feature = "otlp-http")), allow(dead_code))]

#[cfg(any(feature = "otlp-grpc", feature = "otlp-http"))]
pub(crate) mod otlp;
#[cfg(feature = "prometheus")]
pub(crate) mod prometheus;

use crate::base::callsite::Callsite;
use crate::base::callsite::{CallsiteMetrics, FOLDED, REGISTERED};
use crate::base::histogram::{GEN_AI_SECONDS_BOUNDS, GEN_AI_TOKEN_BOUNDS, GenAiHistogram, HistogramSnapshot};
use opentelemetry::trace::SpanKind;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// Whether an exporter is installed; the hot path reads it once per call.
static ENABLED: AtomicBool = AtomicBool::new(false);
/// Series allowed per metric.
static MAX_SERIES: AtomicUsize = AtomicUsize::new(2000);
/// Calls or model series folded into the overflow series because the cap was reached.
static OVERFLOWED: AtomicU64 = AtomicU64::new(0);
static OVERFLOW_REPORTED: AtomicBool = AtomicBool::new(false);
/// The pipeline that switched recording on, so an older pipeline's shutdown cannot switch off a newer one's.
static OWNER: AtomicU64 = AtomicU64::new(0);

#[inline]
pub(crate) fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

fn set_enabled(on: bool, max_series: usize, owner: u64) {
    MAX_SERIES.store(max_series.max(4), Ordering::Relaxed);
    OWNER.store(owner, Ordering::Relaxed);
    ENABLED.store(on, Ordering::Relaxed);
}

/// Redactions per rule name (`kotaemon_trace_redactions_total{kind}`), counted on the export thread. The
/// names come from the redaction catalogue and the configured value rules: a bounded set.
static REDACTIONS: Mutex<Vec<(String, u64)>> = Mutex::new(Vec::new());

/// Adds `n` redactions by `rule`.
pub(crate) fn record_redactions(rule: &str, n: u64) {
    let mut counts = REDACTIONS.lock().unwrap_or_else(|e| e.into_inner());
    match counts.iter_mut().find(|(name, _)| name == rule) {
        Some((_, total)) => *total += n,
        None => counts.push((rule.to_owned(), n)),
    }
}

/// Call sites that have recorded at least once, for the exporters to read.
static SITES: Mutex<Vec<&'static Callsite>> = Mutex::new(Vec::new());
/// Where call sites past the cap record.
static OVERFLOW_SITE: CallsiteMetrics = CallsiteMetrics::new();

/// Adds one call to its call site's series.
#[inline]
pub(crate) fn record_call(site: &'static Callsite, entry: bool, error: bool, nanos: u64) {
    let metrics = match site.metrics.state.load(Ordering::Acquire) {
        REGISTERED => &site.metrics,
        FOLDED => &OVERFLOW_SITE,
        _ => register(site),
    };
    metrics.series[usize::from(entry)][usize::from(error)].record_nanos(nanos);
}

#[cold]
fn register(site: &'static Callsite) -> &'static CallsiteMetrics {
    let mut sites = SITES.lock().unwrap_or_else(|e| e.into_inner());
    match site.metrics.state.load(Ordering::Acquire) {
        REGISTERED => return &site.metrics,
        FOLDED => return &OVERFLOW_SITE,
        _ => {}
    }
    if (sites.len() + 1) * 4 > MAX_SERIES.load(Ordering::Relaxed) {
        site.metrics.state.store(FOLDED, Ordering::Release);
        overflowed();
        return &OVERFLOW_SITE;
    }
    sites.push(site);
    site.metrics.state.store(REGISTERED, Ordering::Release);
    &site.metrics
}

fn overflowed() {
    OVERFLOWED.fetch_add(1, Ordering::Relaxed);
    if !OVERFLOW_REPORTED.swap(true, Ordering::Relaxed) {
        eprintln!(
            "kotaemon-trace: metrics reached KOTAEMON_TRACE_METRICS_MAX_SERIES ({}); further series are folded into one \
             labelled otel_metric_overflow=\"true\" (counted in kotaemon_trace_metrics_overflow_total)",
            MAX_SERIES.load(Ordering::Relaxed)
        );
    }
}

/// A model call in progress: the labels its helpers set, read when it ends. Carried in the context, so
/// it follows an `async fn` across threads, and exists whether or not the span is sampled.
#[derive(Debug)]
pub(crate) struct GenAiCall {
    operation: &'static str,
    labels: Mutex<(Option<String>, Option<String>)>,
}

impl GenAiCall {
    pub(crate) fn new(operation: &'static str) -> Self {
        GenAiCall { operation, labels: Mutex::new((None, None)) }
    }

    /// The current context's model call, if any.
    pub(crate) fn with_current<R>(f: impl FnOnce(&GenAiCall) -> R) -> Option<R> {
        if !enabled() {
            return None;
        }
        opentelemetry::Context::map_current(|cx| cx.get::<Arc<GenAiCall>>().map(|call| f(call)))
    }

    pub(crate) fn set_model(&self, model: &str) {
        self.labels.lock().unwrap_or_else(|e| e.into_inner()).0 = Some(model.to_owned());
    }

    pub(crate) fn set_provider(&self, provider: &str) {
        self.labels.lock().unwrap_or_else(|e| e.into_inner()).1 = Some(provider.to_owned());
    }

    fn series(&self) -> Arc<GenAiSeries> {
        let (model, provider) = self.labels.lock().unwrap_or_else(|e| e.into_inner()).clone();
        gen_ai_series(GenAiKey { operation: self.operation, model, provider })
    }

    pub(crate) fn record_tokens(&self, input: u64, output: u64) {
        let series = self.series();
        series.input_tokens.record(input as f64, &GEN_AI_TOKEN_BOUNDS);
        series.output_tokens.record(output as f64, &GEN_AI_TOKEN_BOUNDS);
    }

    pub(crate) fn record_duration(&self, seconds: f64) {
        self.series().duration.record(seconds, &GEN_AI_SECONDS_BOUNDS);
    }
}

/// The labels of a GenAI series; `None` everywhere is the overflow series.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct GenAiKey {
    pub(crate) operation: &'static str,
    pub(crate) model: Option<String>,
    pub(crate) provider: Option<String>,
}

#[derive(Debug)]
pub(crate) struct GenAiSeries {
    duration: GenAiHistogram,
    input_tokens: GenAiHistogram,
    output_tokens: GenAiHistogram,
}

static GEN_AI: Mutex<Option<HashMap<GenAiKey, Arc<GenAiSeries>>>> = Mutex::new(None);
const GEN_AI_OVERFLOW: &str = "";

fn gen_ai_series(key: GenAiKey) -> Arc<GenAiSeries> {
    let mut map = GEN_AI.lock().unwrap_or_else(|e| e.into_inner());
    let map = map.get_or_insert_with(HashMap::new);
    if let Some(series) = map.get(&key) {
        return series.clone();
    }
    let key = if map.len() >= MAX_SERIES.load(Ordering::Relaxed) {
        overflowed();
        GenAiKey { operation: GEN_AI_OVERFLOW, model: None, provider: None }
    } else {
        key
    };
    let new = || {
        Arc::new(GenAiSeries {
            duration: GenAiHistogram::new(),
            input_tokens: GenAiHistogram::new(),
            output_tokens: GenAiHistogram::new(),
        })
    };
    map.entry(key).or_insert_with(new).clone()
}

/// What the exporters publish, read from the live histograms.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub(crate) spans: Vec<SpanSeries>,
    pub(crate) gen_ai: Vec<(GenAiKey, GenAiValues)>,
    pub(crate) overflowed: u64,
    pub(crate) spans_dropped: u64,
    /// Redactions per rule name, sorted by name.
    pub(crate) redactions: Vec<(String, u64)>,
}

/// One RED series; `span_name` empty for the overflow series.
#[derive(Debug)]
pub(crate) struct SpanSeries {
    pub(crate) span_name: &'static str,
    pub(crate) span_kind: &'static str,
    pub(crate) error: bool,
    /// Milliseconds.
    pub(crate) duration: HistogramSnapshot,
}

#[derive(Debug)]
pub(crate) struct GenAiValues {
    pub(crate) duration: HistogramSnapshot,
    pub(crate) input_tokens: HistogramSnapshot,
    pub(crate) output_tokens: HistogramSnapshot,
}

/// The span kind as the spanmetrics connector labels it.
fn kind_label(kind: &SpanKind) -> &'static str {
    match kind {
        SpanKind::Server => "SPAN_KIND_SERVER",
        SpanKind::Client => "SPAN_KIND_CLIENT",
        SpanKind::Producer => "SPAN_KIND_PRODUCER",
        SpanKind::Consumer => "SPAN_KIND_CONSUMER",
        SpanKind::Internal => "SPAN_KIND_INTERNAL",
    }
}

/// Every series with at least one call.
pub(crate) fn snapshot(spans_dropped: u64) -> Snapshot {
    let sites: Vec<&'static Callsite> = SITES.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut spans = Vec::new();
    let mut push = |name: &'static str, own_kind: &'static str, metrics: &CallsiteMetrics| {
        for (entry, by_status) in metrics.series.iter().enumerate() {
            for (error, histogram) in by_status.iter().enumerate() {
                if histogram.count() == 0 {
                    continue;
                }
                let span_kind = if entry == 1 { "SPAN_KIND_SERVER" } else { own_kind };
                spans.push(SpanSeries {
                    span_name: name,
                    span_kind,
                    error: error == 1,
                    duration: histogram.snapshot(1e-6),
                });
            }
        }
    };
    for site in sites {
        push(site.name, kind_label(&site.kind), &site.metrics);
    }
    push("", "", &OVERFLOW_SITE);
    spans.sort_by(|a, b| (a.span_name, a.span_kind, a.error).cmp(&(b.span_name, b.span_kind, b.error)));
    let mut gen_ai: Vec<(GenAiKey, GenAiValues)> = GEN_AI
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .flatten()
        .map(|(key, series)| {
            let values = GenAiValues {
                duration: series.duration.snapshot(1e-6),
                input_tokens: series.input_tokens.snapshot(1e-6),
                output_tokens: series.output_tokens.snapshot(1e-6),
            };
            (key.clone(), values)
        })
        .collect();
    gen_ai.sort_by(|a, b| a.0.cmp(&b.0));
    let mut redactions = REDACTIONS.lock().unwrap_or_else(|e| e.into_inner()).clone();
    redactions.sort();
    Snapshot { spans, gen_ai, overflowed: OVERFLOWED.load(Ordering::Relaxed), spans_dropped, redactions }
}

/// One push of the current series on a transport of its own (see `__hooks::push_metrics_once`).
#[cfg(all(feature = "internal-hooks", any(feature = "otlp-grpc", feature = "otlp-http")))]
pub(crate) fn push_once(config: &crate::config::Config) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let mut target = config.otlp.clone();
    target.endpoint =
        crate::export::transport::signal_url(&config.otlp, config.metrics.otlp_endpoint.as_deref(), "/v1/metrics");
    if let Some(tls) = &config.metrics.otlp_tls {
        target.tls = tls.clone();
    }
    let transport = {
        let _entered = runtime.enter();
        crate::export::transport::Transport::new(&target).map_err(|e| e.to_string())?
    };
    let request = otlp::request(&snapshot(0), &config.service_name(), std::time::SystemTime::now());
    runtime.block_on(otlp::push(&transport, request))
}

/// The traces' OTLP transport and the runtime driving it: the metrics push goes through the same
/// client (TLS, compression, headers, connection pool).
#[cfg(any(feature = "otlp-grpc", feature = "otlp-http"))]
pub(crate) struct SharedTransport {
    pub(crate) transport: crate::export::transport::Transport,
    pub(crate) runtime: tokio::runtime::Handle,
}

/// What drives the metrics push: the traces' runtime, or one of its own.
#[cfg(any(feature = "otlp-grpc", feature = "otlp-http"))]
enum Driving {
    Shared(tokio::runtime::Handle),
    Own(tokio::runtime::Runtime),
}

/// The running exporters of one pipeline; [`Exporters::shutdown`] pushes once more and stops them.
#[cfg(feature = "sdk")]
pub(crate) struct Exporters {
    /// The pipeline these belong to.
    owner: u64,
    #[cfg(feature = "prometheus")]
    server: Option<prometheus::Server>,
    pusher: Option<(std::sync::mpsc::Sender<()>, std::thread::JoinHandle<()>)>,
}

#[cfg(feature = "sdk")]
impl Exporters {
    /// Starts what `config` asks for and switches recording on. `dropped` reads the span drop counter.
    pub(crate) fn start(
        config: &crate::config::Config,
        owner: u64,
        dropped: impl Fn() -> u64 + Send + Sync + 'static,
        #[cfg(any(feature = "otlp-grpc", feature = "otlp-http"))] shared: Option<SharedTransport>,
        #[cfg(not(any(feature = "otlp-grpc", feature = "otlp-http")))] shared: Option<std::convert::Infallible>,
    ) -> Result<Exporters, crate::base::error::InitError> {
        let settings = &config.metrics;
        // A new pipeline replaces the old one's decision, as it replaces its tracer.
        set_enabled(settings.enabled(), settings.max_series, owner);
        if !settings.enabled() {
            return Ok(Exporters {
                owner,
                #[cfg(feature = "prometheus")]
                server: None,
                pusher: None,
            });
        }
        #[cfg(any(feature = "prometheus", feature = "otlp-grpc", feature = "otlp-http"))]
        let (service, dropped) = (config.service_name(), Arc::new(dropped));
        #[cfg(not(any(feature = "prometheus", feature = "otlp-grpc", feature = "otlp-http")))]
        let _ = dropped;
        #[cfg(not(feature = "prometheus"))]
        if settings.prometheus.is_some() {
            return Err(crate::base::error::InitError::invalid(
                "OTEL_METRICS_EXPORTER",
                "prometheus",
                "an exporter this build has (enable the `prometheus` cargo feature)",
            ));
        }
        #[cfg(feature = "prometheus")]
        let server = match &settings.prometheus {
            Some(address) => {
                let (service, dropped) = (service.clone(), dropped.clone());
                let server =
                    prometheus::Server::start(address, move || prometheus::render(&snapshot(dropped()), &service))
                        .map_err(|e| {
                            crate::base::error::InitError::invalid(
                                "OTEL_EXPORTER_PROMETHEUS_HOST/PORT",
                                &format!("{address} ({e})"),
                                "a free local address to listen on",
                            )
                        })?;
                Some(server)
            }
            None => None,
        };
        #[cfg(not(any(feature = "otlp-grpc", feature = "otlp-http")))]
        if settings.otlp {
            return Err(crate::base::error::InitError::invalid(
                "OTEL_METRICS_EXPORTER",
                "otlp",
                "an exporter this build has (enable the `otlp-grpc` or `otlp-http` cargo feature)",
            ));
        }
        #[cfg(not(any(feature = "otlp-grpc", feature = "otlp-http")))]
        let (pusher, _) = (None, shared);
        #[cfg(any(feature = "otlp-grpc", feature = "otlp-http"))]
        let pusher = if settings.otlp {
            use crate::export::transport::{Transport, signal_url};
            let url = signal_url(&config.otlp, settings.otlp_endpoint.as_deref(), "/v1/metrics");
            // With traces over OTLP, their transport (one client, one connection pool) and the runtime
            // driving it; else a transport of our own on a small runtime of our own.
            let (runtime, transport) = match shared {
                Some(shared) => {
                    let _entered = shared.runtime.enter();
                    let transport = shared.transport.for_signal(&url, settings.otlp_tls.as_ref())?;
                    (Driving::Shared(shared.runtime), transport)
                }
                None => {
                    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                    let mut otlp = config.otlp.clone();
                    otlp.endpoint = url;
                    if let Some(tls) = &settings.otlp_tls {
                        otlp.tls = tls.clone();
                    }
                    let transport = {
                        let _entered = runtime.enter();
                        Transport::new(&otlp)?
                    };
                    (Driving::Own(runtime), transport)
                }
            };
            let interval = settings.export_interval;
            let (stop, stopped) = std::sync::mpsc::channel::<()>();
            let thread = std::thread::Builder::new().name("kotaemon-trace-metrics-push".into()).spawn(move || {
                let started = std::time::SystemTime::now();
                let mut failing = false;
                loop {
                    let last =
                        !matches!(stopped.recv_timeout(interval), Err(std::sync::mpsc::RecvTimeoutError::Timeout));
                    let request = otlp::request(&snapshot(dropped()), &service, started);
                    let pushed = match &runtime {
                        Driving::Shared(handle) => handle.block_on(otlp::push(&transport, request)),
                        Driving::Own(runtime) => runtime.block_on(otlp::push(&transport, request)),
                    };
                    match pushed {
                        Ok(()) => failing = false,
                        Err(why) if !failing => {
                            eprintln!(
                                "kotaemon-trace: metrics export failed (reported once until it works again): {why}"
                            );
                            failing = true;
                        }
                        Err(_) => {}
                    }
                    if last {
                        break;
                    }
                }
            })?;
            Some((stop, thread))
        } else {
            None
        };
        Ok(Exporters {
            owner,
            #[cfg(feature = "prometheus")]
            server,
            pusher,
        })
    }

    /// The scrape endpoint's bound address, when it runs.
    pub(crate) fn prometheus_address(&self) -> Option<std::net::SocketAddr> {
        #[cfg(not(feature = "prometheus"))]
        return None;
        #[cfg(feature = "prometheus")]
        self.server.as_ref().map(prometheus::Server::address)
    }

    /// Pushes the final values and stops; recording stops with the pipeline.
    pub(crate) fn shutdown(mut self) {
        if OWNER.compare_exchange(self.owner, 0, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            ENABLED.store(false, Ordering::Relaxed);
        }
        #[cfg(feature = "prometheus")]
        self.server.take();
        if let Some((stop, thread)) = self.pusher.take() {
            let _ = stop.send(());
            let _ = thread.join();
        }
    }
}

/// Times one annotated call for the metrics; made only while an exporter runs.
#[derive(Debug)]
pub(crate) struct CallTimer {
    site: &'static Callsite,
    started: crate::base::clock::Stamp,
    entry: bool,
    errored: std::cell::Cell<bool>,
    /// Model calls only: the labels their helpers set, carried in the call's context.
    pub(crate) gen_ai: Option<Arc<GenAiCall>>,
}

impl CallTimer {
    /// `entry`: the call is its service's SERVER span.
    #[inline]
    pub(crate) fn start(site: &'static Callsite, entry: bool) -> CallTimer {
        let gen_ai = site
            .semantic
            .filter(|s| matches!(s, crate::base::callsite::Semantic::Llm | crate::base::callsite::Semantic::Embedding))
            .and_then(|s| s.gen_ai_operation())
            .map(|operation| Arc::new(GenAiCall::new(operation)));
        CallTimer { site, started: crate::base::clock::now(), entry, errored: std::cell::Cell::new(false), gen_ai }
    }

    /// The call returned an error.
    #[inline]
    pub(crate) fn fail(&self) {
        self.errored.set(true);
    }

    /// Records the call; `panicked` counts as an error.
    #[inline]
    pub(crate) fn finish(self, panicked: bool) {
        let elapsed = crate::base::clock::now().saturating_duration_since(self.started);
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        record_call(self.site, self.entry, panicked || self.errored.get(), nanos);
        if let Some(call) = &self.gen_ai {
            call.record_duration(elapsed.as_secs_f64());
        }
    }
}
