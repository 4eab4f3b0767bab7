//! Sampling and propagation through the real pipeline: ratios within binomial bounds, whole traces under
//! parent-based sampling, the rate limit, Jaeger remote strategies from a real Jaeger (and kept when it
//! stops), debug forcing and its cap, tail sampling, and propagation round trips for every format.

use kotaemon_trace::config::{
    BatchConfig, Config, DebugConfig, JaegerRemote, JaegerRemoteSource, Propagator, Sampler, TailConfig,
};
use kotaemon_trace::{init_with, propagation, TraceGuard};
use kotaemon_trace_tests::jaeger::JaegerProcess;
use opentelemetry::trace::{Span as _, Status, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue, Value};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

static PIPELINE: Mutex<()> = Mutex::new(());

fn exclusive() -> MutexGuard<'static, ()> {
    PIPELINE.lock().unwrap_or_else(|e| e.into_inner())
}

#[derive(Debug, Default, Clone)]
struct Collect(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Collect {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.lock().unwrap().extend(batch);
        Ok(())
    }
}

impl Collect {
    fn take(&self) -> Vec<SpanData> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// A pipeline that keeps every exported span, with a queue big enough that nothing is dropped.
fn pipeline(builder: kotaemon_trace::config::ConfigBuilder) -> (TraceGuard, Collect) {
    let collect = Collect::default();
    let batch = BatchConfig { max_queue_size: 100_000, ..BatchConfig::default() };
    let guard = init_with(builder.batch(batch).span_exporter(collect.clone()).build()).unwrap();
    (guard, collect)
}

fn tracer() -> opentelemetry::global::BoxedTracer {
    opentelemetry::global::tracer("sampling-test")
}

/// One root named `name` with `children` children; returns whether the root was sampled.
fn trace(name: &str, children: usize) -> bool {
    let tracer = tracer();
    tracer.in_span(name.to_owned(), |cx| {
        for i in 0..children {
            tracer.in_span(format!("{name}.child{i}"), |_| {});
        }
        cx.span().span_context().is_sampled()
    })
}

/// `n * p` within five standard deviations: fails by chance about once in two million runs.
fn assert_binomial(kept: usize, n: usize, p: f64) {
    let mean = n as f64 * p;
    let sd = (n as f64 * p * (1.0 - p)).sqrt();
    assert!((kept as f64 - mean).abs() <= 5.0 * sd, "kept {kept} of {n}, expected {mean} ± {}", 5.0 * sd);
}

#[test]
fn trace_id_ratio_keeps_the_configured_share() {
    let _one = exclusive();
    for p in [0.1, 0.5] {
        let (guard, collect) = pipeline(Config::builder().sampler(Sampler::TraceIdRatio(p)));
        const N: usize = 4000;
        let kept = (0..N).filter(|_| trace("root", 0)).count();
        guard.shutdown().unwrap();
        assert_binomial(kept, N, p);
        assert_eq!(collect.take().len(), kept, "exactly the sampled spans are exported");
    }
}

#[test]
fn parent_based_keeps_whole_traces() {
    let _one = exclusive();
    let (guard, collect) =
        pipeline(Config::builder().sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatio(0.3)))));
    const N: usize = 2000;
    let kept = (0..N).filter(|_| trace("root", 3)).count();
    guard.shutdown().unwrap();
    assert_binomial(kept, N, 0.3);
    let spans = collect.take();
    let mut per_trace: HashMap<_, usize> = HashMap::new();
    for s in &spans {
        *per_trace.entry(s.span_context.trace_id()).or_default() += 1;
    }
    assert_eq!(per_trace.len(), kept);
    assert!(per_trace.values().all(|&n| n == 4), "a kept trace has its root and all 3 children");
}

#[test]
fn rate_limited_sampler_caps_traces_per_second() {
    let _one = exclusive();
    let (guard, _collect) = pipeline(Config::builder().sampler(Sampler::RateLimited(50.0)));
    let start = Instant::now();
    let kept = (0..20_000).filter(|_| trace("flood", 0)).count();
    let elapsed = start.elapsed().as_secs_f64();
    guard.shutdown().unwrap();
    // A burst of 50, then 50 per second.
    let ceiling = 50.0 + 50.0 * elapsed + 1.0;
    assert!(kept >= 50 && kept as f64 <= ceiling, "kept {kept} in {elapsed:.2} s, ceiling {ceiling:.0}");
}

fn debug_headers() -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    headers.insert("x-debug-tracing", "true".parse().unwrap());
    headers
}

#[test]
fn the_debug_header_forces_a_full_trace_under_always_off() {
    let _one = exclusive();
    let (guard, collect) = pipeline(Config::builder().sampler(Sampler::AlwaysOff));
    assert!(!trace("ordinary", 2), "always_off drops ordinary traces");
    let parent = propagation::extract(&debug_headers());
    assert!(parent.is_debug_forced());
    {
        let _attached = parent.attach();
        assert!(trace("debugged", 2));
    }
    guard.shutdown().unwrap();
    let spans = collect.take();
    let names: HashSet<String> = spans.iter().map(|s| s.name.to_string()).collect();
    assert_eq!(names, ["debugged", "debugged.child0", "debugged.child1"].map(String::from).into());
    for s in &spans {
        assert!(s.attributes.contains(&KeyValue::new("kotaemon.debug_forced", true)), "{}", s.name);
    }
}

#[test]
fn jaeger_debug_id_forces_too_and_the_cap_holds_under_a_flood() {
    let _one = exclusive();
    let (guard, _collect) = pipeline(
        Config::builder().sampler(Sampler::AlwaysOff).debug(DebugConfig { per_second: 3.0, ..DebugConfig::default() }),
    );
    let mut headers = http::HeaderMap::new();
    headers.insert("jaeger-debug-id", "ticket-123".parse().unwrap());
    let start = Instant::now();
    let by_header = debug_headers();
    let granted = (0..10_000)
        .filter(|i| propagation::extract(if i % 2 == 0 { &headers } else { &by_header }).is_debug_forced())
        .count();
    let elapsed = start.elapsed().as_secs_f64();
    guard.shutdown().unwrap();
    let ceiling = 3.0 + 3.0 * elapsed + 1.0;
    assert!(granted >= 3 && granted as f64 <= ceiling, "granted {granted} in {elapsed:.2} s, ceiling {ceiling:.0}");
}

#[test]
fn without_the_header_nothing_is_forced() {
    let _one = exclusive();
    let (guard, _collect) = pipeline(Config::builder().sampler(Sampler::AlwaysOff));
    let mut headers = http::HeaderMap::new();
    headers.insert("x-debug-tracing", "false".parse().unwrap());
    assert!(!propagation::extract(&headers).is_debug_forced());
    assert!(!propagation::extract(&http::HeaderMap::new()).is_debug_forced());
    guard.shutdown().unwrap();
}

#[test]
fn tail_sampling_keeps_errors_and_slow_traces_and_drops_fast_ones() {
    let _one = exclusive();
    let tail = TailConfig { latency_threshold: Duration::from_millis(150), max_buffered_spans: 1000 };
    let (guard, collect) = pipeline(Config::builder().sampler(Sampler::AlwaysOff).tail_sampling(tail));
    let tracer = tracer();
    tracer.in_span("fast-ok", |_| tracer.in_span("fast-ok.child", |_| {}));
    tracer.in_span("failing", |_| {
        tracer.in_span("failing.child", |cx| cx.span().set_status(Status::error("tool timed out")));
    });
    tracer.in_span("slow", |_| {
        tracer.in_span("slow.child", |_| std::thread::sleep(Duration::from_millis(200)));
    });
    guard.shutdown().unwrap();
    let spans = collect.take();
    let names: HashSet<String> = spans.iter().map(|s| s.name.to_string()).collect();
    assert_eq!(names, ["failing", "failing.child", "slow", "slow.child"].map(String::from).into());
    let reason = |name: &str| {
        spans
            .iter()
            .find(|s| s.name == name)
            .and_then(|s| s.attributes.iter().find(|kv| kv.key.as_str() == "kotaemon.tail_kept"))
            .map(|kv| kv.value.clone())
    };
    assert_eq!(reason("failing"), Some(Value::from("error")));
    assert_eq!(reason("slow.child"), Some(Value::from("slow")));
}

#[test]
fn tail_sampling_memory_is_capped_and_evictions_counted() {
    let _one = exclusive();
    let tail = TailConfig { latency_threshold: Duration::from_secs(60), max_buffered_spans: 100 };
    let (guard, collect) = pipeline(Config::builder().sampler(Sampler::AlwaysOff).tail_sampling(tail));
    let tracer = tracer();
    // A long-running root whose children pile up: only the cap's worth may wait.
    let root = tracer.start("long-root");
    let cx = Context::current_with_span(root);
    for i in 0..1000 {
        tracer.start_with_context(format!("child{i}"), &cx).end();
    }
    cx.span().set_status(Status::error("finally failed"));
    cx.span().end();
    let stats = guard.stats();
    guard.shutdown().ok();
    let exported = collect.take().len() as u64;
    assert!(exported <= 101, "at most the cap plus the root: {exported}");
    assert_eq!(stats.spans_dropped + exported, 1001, "{stats:?}");
}

fn strategies_file(service: &str) -> tempfile_path::TempFile {
    let body = format!(
        r#"{{"service_strategies":[{{"service":"{service}","type":"probabilistic","param":0.0,
            "operation_strategies":[{{"operation":"checkout","type":"probabilistic","param":1.0}},
                                    {{"operation":"browse","type":"probabilistic","param":0.0}}]}}],
           "default_strategy":{{"type":"probabilistic","param":1.0}}}}"#
    );
    tempfile_path::TempFile::with_contents("strategies.json", &body)
}

/// A small temp file helper (the tests need one file; a crate for it would be heavier than this).
mod tempfile_path {
    pub struct TempFile(pub std::path::PathBuf);
    impl TempFile {
        pub fn with_contents(name: &str, body: &str) -> TempFile {
            let dir = std::env::temp_dir().join(format!("kotaemon-trace-{}-{}", std::process::id(), name));
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(name);
            std::fs::write(&path, body).unwrap();
            TempFile(path)
        }
    }
    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(self.0.parent().unwrap());
        }
    }
}

fn share_sampled(name: &str, n: usize) -> f64 {
    (0..n).filter(|_| trace(name, 0)).count() as f64 / n as f64
}

fn remote_sampling_applies_per_operation_strategies(
    endpoint: impl Fn(&JaegerProcess) -> String,
    used: impl Fn(&JaegerProcess) -> JaegerRemoteSource,
    label: &str,
) {
    let _one = exclusive();
    let service = format!("remote-{label}-{}", std::process::id());
    let file = strategies_file(&service);
    let Some(mut jaeger) = JaegerProcess::spawn(label, Some(&file.0)) else { return };
    let remote = JaegerRemote {
        endpoint: endpoint(&jaeger),
        polling_interval: Duration::from_millis(200),
        initial_sampling_rate: 0.0,
    };
    let (guard, _collect) = pipeline(Config::builder().service_name(&service).sampler(Sampler::JaegerRemote(remote)));
    // Until the first answer the initial rate (0) applies; wait for the strategy, boundedly.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !trace("checkout", 0) {
        assert!(Instant::now() < deadline, "{label}: the strategy never arrived from Jaeger");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(share_sampled("checkout", 300), 1.0, "checkout: probability 1");
    assert_eq!(share_sampled("browse", 300), 0.0, "browse: probability 0");
    assert_eq!(share_sampled("search", 300), 0.0, "others: the service default 0");
    assert_eq!(guard.jaeger_remote_source(), Some(used(&jaeger)), "{label}: the transport that answered");
    let tracer = tracer();
    let mut span = tracer.start("checkout");
    assert!(span.span_context().is_sampled());
    span.end();

    jaeger.kill();
    std::thread::sleep(Duration::from_millis(800)); // several failed polls
    assert_eq!(share_sampled("checkout", 300), 1.0, "the last good strategy stays in force");
    assert_eq!(share_sampled("browse", 300), 0.0);
    guard.shutdown().unwrap();
}

#[test]
fn jaeger_remote_over_http_from_a_real_jaeger() {
    remote_sampling_applies_per_operation_strategies(
        |j| format!("{}/api/sampling", j.sampling_http),
        |j| JaegerRemoteSource::Http(format!("{}/api/sampling", j.sampling_http)),
        "http",
    );
}

#[test]
fn jaeger_remote_over_grpc_from_a_real_jaeger() {
    remote_sampling_applies_per_operation_strategies(
        |j| j.sampling_grpc.clone(),
        |j| JaegerRemoteSource::Grpc(j.sampling_grpc.clone()),
        "grpc",
    );
}

#[test]
fn jaeger_remote_on_the_http_port_without_a_path_falls_back_from_grpc() {
    // A bare URL on a port other than 5778 is tried over gRPC first; Jaeger's HTTP server answers in
    // another protocol, so HTTP at `/sampling` is tried next, and kept.
    remote_sampling_applies_per_operation_strategies(
        |j| j.sampling_http.clone(),
        |j| JaegerRemoteSource::Http(format!("{}/sampling", j.sampling_http)),
        "http-bare",
    );
}

/// Waits (boundedly) for the sampler polling `endpoint` to receive a strategy; returns how it got it.
fn source_of(endpoint: &str) -> Option<JaegerRemoteSource> {
    let remote = JaegerRemote {
        endpoint: endpoint.to_owned(),
        polling_interval: Duration::from_millis(200),
        initial_sampling_rate: 0.0,
    };
    let (guard, _collect) = pipeline(Config::builder().service_name("ports").sampler(Sampler::JaegerRemote(remote)));
    let deadline = Instant::now() + Duration::from_secs(15);
    let source = loop {
        match guard.jaeger_remote_source() {
            Some(source) => break Some(source),
            None if Instant::now() > deadline => break None,
            None => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    guard.shutdown().unwrap();
    source
}

#[test]
fn jaeger_remote_on_jaegers_own_ports_without_a_path() {
    // The URLs configurations write: Jaeger's HTTP sampling port 5778 and its v2 gRPC port 5779, bare.
    // `scripts/jaeger.sh start` serves both; when it is not running, a private Jaeger takes the ports.
    let _one = exclusive();
    let held = std::net::TcpStream::connect("127.0.0.1:5778").is_ok();
    let _private = match held {
        true => None,
        false => match JaegerProcess::spawn_with_sampling_ports("own-ports", None, 5778, 5779) {
            Some(jaeger) => Some(jaeger),
            None => return,
        },
    };
    assert_eq!(
        source_of("http://127.0.0.1:5778"),
        Some(JaegerRemoteSource::Http("http://127.0.0.1:5778/sampling".into())),
        "Jaeger's HTTP port: HTTP at /sampling"
    );
    assert_eq!(
        source_of("http://127.0.0.1:5779/"),
        Some(JaegerRemoteSource::Grpc("http://127.0.0.1:5779".into())),
        "Jaeger's gRPC port: gRPC"
    );
}

#[test]
fn every_propagation_format_round_trips_through_header_maps() {
    let _one = exclusive();
    for format in [Propagator::TraceContext, Propagator::B3, Propagator::B3Multi, Propagator::Jaeger] {
        let (guard, _collect) = pipeline(Config::builder().propagators([format, Propagator::Baggage]));
        let tracer = tracer();
        let (sent_trace, headers) = tracer.in_span("client", |cx| {
            let cx = cx.with_baggage(vec![KeyValue::new("tenant", "acme")]);
            let _attached = cx.clone().attach();
            let mut headers = http::HeaderMap::new();
            propagation::inject(&mut headers);
            (cx.span().span_context().trace_id(), headers)
        });
        let parent = propagation::extract(&headers);
        assert_eq!(parent.trace_id(), Some(sent_trace.to_string()), "{format:?}: {headers:?}");
        let server_parent = {
            let _attached = parent.attach();
            tracer.in_span("server", |cx| {
                assert_eq!(cx.baggage().get("tenant").map(|v| v.to_string()), Some("acme".into()), "{format:?}");
                cx.span().span_context().trace_id()
            })
        };
        assert_eq!(server_parent, sent_trace, "{format:?}: the server span continues the client's trace");
        guard.shutdown().unwrap();
    }
}

use opentelemetry::baggage::BaggageExt as _;
