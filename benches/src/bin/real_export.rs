//! Every tracer exporting for real: OTLP (gRPC or HTTP/protobuf) to the same loopback receiver, which
//! decodes every request and counts the spans (`kotaemon_trace_benches::receiver`).
//!
//! ```text
//! cargo run --release -p kotaemon-trace-benches --bin real_export -- [--runs 3] [--protocols grpc,http]
//!     [--tracers ours,sdk,tracing,fastrace] [--calls 1000000] [--trees 50000] [--rate 100000] [--secs 10]
//!     [--max-rate] [--out FILE.json]
//! ```
//!
//! This process runs the receiver; each tracer runs in a child process of its own (this binary again,
//! `--child`), so what a child reports — CPU time (`getrusage(RUSAGE_SELF)`, user + system, every thread:
//! caller, export thread, client runtime) and peak memory (max RSS) — is the tracer's alone. Children
//! of one run are interleaved, so the machine's load falls on all of them alike. Default settings for
//! every tracer (batch processor, queue 2048, batch 512, no compression), the application inside a
//! multi-thread tokio runtime as under `#[tokio::main]`. Per child and mode:
//!
//! - `loop`: `--calls` calls of a sampled function with 2 attributes in a tight loop; ns per call (the
//!   caller's wall time) and CPU per exported span (the whole process, flush included);
//! - `tree`: `--trees` roots with 10 children each; µs per tree and CPU per exported span;
//! - `paced`: `--rate` calls per second for `--secs` seconds (batches of 100, sleeping until the next
//!   batch is due); spans lost (made − received) and max RSS;
//! - `--serve SECS`: the receiver alone, its endpoints printed, to profile a child run by hand
//!   (`valgrind --tool=callgrind real_export --child ours loop grpc ENDPOINT 20000 0 0`);
//! - `--max-rate`: paced runs of 5 s at rising rates until one loses a span; the highest without loss.
#![forbid(unsafe_code)]

use kotaemon_trace::trace_with_otel;
use opentelemetry::trace::{Tracer as _, TracerProvider as _};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};
use tracing_subscriber::layer::SubscriberExt as _;

// ---- the traced functions: the same trivial body, two string-or-number attributes each ----

#[inline(never)]
fn body(x: u64) -> u64 {
    black_box(x).wrapping_mul(31)
}

#[trace_with_otel("bench.call", skip_all, fields(model = "gpt-x", k = 4))]
#[inline(never)]
fn ours_call(x: u64) -> u64 {
    body(x)
}

#[trace_with_otel("bench.tree", skip_all, fields(model = "gpt-x", k = 4))]
#[inline(never)]
fn ours_tree(x: u64) -> u64 {
    (0..10).fold(x, |acc, i| acc ^ ours_child(i))
}

#[trace_with_otel("bench.child", skip_all, fields(model = "gpt-x", k = 4))]
#[inline(never)]
fn ours_child(x: u64) -> u64 {
    body(x)
}

fn two_attributes() -> [KeyValue; 2] {
    [KeyValue::new("model", "gpt-x"), KeyValue::new("k", 4_i64)]
}

#[inline(never)]
fn sdk_call(tracer: &SdkTracer, name: &'static str, x: u64) -> u64 {
    let builder = tracer.span_builder(name).with_attributes(two_attributes());
    tracer.in_span_with_builder(builder, |_cx| body(x))
}

#[inline(never)]
fn sdk_tree(tracer: &SdkTracer, x: u64) -> u64 {
    let builder = tracer.span_builder("bench.tree").with_attributes(two_attributes());
    tracer.in_span_with_builder(builder, |_cx| (0..10).fold(x, |acc, i| acc ^ sdk_call(tracer, "bench.child", i)))
}

#[tracing::instrument(name = "bench.call", skip_all, fields(model = "gpt-x", k = 4))]
#[inline(never)]
fn tracing_call(x: u64) -> u64 {
    body(x)
}

#[tracing::instrument(name = "bench.tree", skip_all, fields(model = "gpt-x", k = 4))]
#[inline(never)]
fn tracing_tree(x: u64) -> u64 {
    (0..10).fold(x, |acc, i| acc ^ tracing_child(i))
}

#[tracing::instrument(name = "bench.child", skip_all, fields(model = "gpt-x", k = 4))]
#[inline(never)]
fn tracing_child(x: u64) -> u64 {
    body(x)
}

#[inline(never)]
fn fastrace_call(x: u64) -> u64 {
    let root = fastrace::Span::root("bench.call", fastrace::prelude::SpanContext::random())
        .with_properties(|| [("model", "gpt-x"), ("k", "4")]);
    let _parent = root.set_local_parent();
    body(x)
}

#[inline(never)]
fn fastrace_tree(x: u64) -> u64 {
    let root = fastrace::Span::root("bench.tree", fastrace::prelude::SpanContext::random())
        .with_properties(|| [("model", "gpt-x"), ("k", "4")]);
    let _parent = root.set_local_parent();
    (0..10).fold(x, |acc, i| acc ^ fastrace_child(i))
}

#[inline(never)]
fn fastrace_child(x: u64) -> u64 {
    let _span = fastrace::local::LocalSpan::enter_with_local_parent("bench.child")
        .with_properties(|| [("model", "gpt-x"), ("k", "4")]);
    body(x)
}

// ---- the tracers, each set up as its documentation says, exporting to the receiver ----

#[derive(Clone, Copy, PartialEq, Debug)]
enum Protocol {
    Grpc,
    Http,
}

impl Protocol {
    fn parse(s: &str) -> Protocol {
        match s {
            "grpc" => Protocol::Grpc,
            "http" => Protocol::Http,
            other => panic!("--protocols: `{other}` is not one of grpc, http"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::Http => "http",
        }
    }
}

enum Tracer {
    Ours(kotaemon_trace::TraceGuard),
    Sdk(SdkTracerProvider, SdkTracer),
    Tracing(SdkTracerProvider),
    Fastrace,
}

fn resource() -> Resource {
    Resource::builder().with_service_name("bench").build()
}

/// The peers' exporter: opentelemetry-otlp's defaults (no compression). Over HTTP, the blocking reqwest
/// client (opentelemetry-otlp's default HTTP client; the batch processor's thread has no async runtime).
fn otlp_exporter(protocol: Protocol, endpoint: &str) -> opentelemetry_otlp::SpanExporter {
    match protocol {
        Protocol::Grpc => {
            opentelemetry_otlp::SpanExporter::builder().with_tonic().with_endpoint(endpoint).build().expect("exporter")
        }
        Protocol::Http => {
            // Built (and later dropped) off the runtime: the blocking client runs a runtime of its own.
            let client = std::thread::spawn(reqwest::blocking::Client::new).join().expect("reqwest client");
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(format!("{endpoint}/v1/traces"))
                .with_http_client(client)
                .build()
                .expect("exporter")
        }
    }
}

fn sdk_provider(protocol: Protocol, endpoint: &str) -> SdkTracerProvider {
    SdkTracerProvider::builder()
        .with_batch_exporter(otlp_exporter(protocol, endpoint))
        .with_resource(resource())
        .build()
}

impl Tracer {
    /// Must run inside the runtime (tonic's channel spawns its worker there).
    fn new(name: &str, protocol: Protocol, endpoint: &str, runtime: &tokio::runtime::Handle) -> Tracer {
        match name {
            // Ours from the environment, as a service would run it (the parent set OTEL_EXPORTER_OTLP_*).
            "ours" => Tracer::Ours(kotaemon_trace::init().expect("init")),
            "sdk" => {
                let provider = sdk_provider(protocol, endpoint);
                let tracer = provider.tracer("bench");
                Tracer::Sdk(provider, tracer)
            }
            "tracing" => {
                let provider = sdk_provider(protocol, endpoint);
                let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("bench"));
                tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
                    .expect("subscriber");
                Tracer::Tracing(provider)
            }
            "fastrace" => {
                let reporter = fastrace_opentelemetry::OpenTelemetryReporter::new(
                    otlp_exporter(protocol, endpoint),
                    std::borrow::Cow::Owned(resource()),
                    InstrumentationScope::builder("bench").build(),
                );
                // tonic's futures need the runtime's reactor; the blocking HTTP client needs none.
                let reporter = match protocol {
                    Protocol::Grpc => {
                        let handle = runtime.clone();
                        reporter.with_block_on(move |future| handle.block_on(future))
                    }
                    Protocol::Http => reporter,
                };
                fastrace::set_reporter(reporter, fastrace::collector::Config::default());
                Tracer::Fastrace
            }
            other => panic!("--tracers: `{other}` is not one of ours, sdk, tracing, fastrace"),
        }
    }

    #[inline(always)]
    fn call(&self, x: u64) -> u64 {
        match self {
            Tracer::Ours(_) => ours_call(x),
            Tracer::Sdk(_, tracer) => sdk_call(tracer, "bench.call", x),
            Tracer::Tracing(_) => tracing_call(x),
            Tracer::Fastrace => fastrace_call(x),
        }
    }

    #[inline(always)]
    fn tree(&self, x: u64) -> u64 {
        match self {
            Tracer::Ours(_) => ours_tree(x),
            Tracer::Sdk(_, tracer) => sdk_tree(tracer, x),
            Tracer::Tracing(_) => tracing_tree(x),
            Tracer::Fastrace => fastrace_tree(x),
        }
    }

    /// Flushes what is queued and stops: part of the measured CPU time. Ours says where its lost spans
    /// went (dropped at the full queue, or failed in export).
    fn shutdown(self) -> serde_json::Value {
        match self {
            Tracer::Ours(guard) => {
                let stats = guard.stats();
                let result = guard.shutdown();
                return serde_json::json!({
                    "dropped": stats.spans_dropped, "failed": stats.spans_failed, "shutdown": format!("{result:?}"),
                });
            }
            Tracer::Sdk(provider, _) | Tracer::Tracing(provider) => {
                let _ = provider.shutdown();
            }
            Tracer::Fastrace => fastrace::flush(),
        }
        serde_json::Value::Null
    }
}

// ---- the child: one tracer, one mode ----

/// CPU time (user + system) of the whole process so far, and its peak resident memory in KiB.
///
/// The peak is `VmHWM` of `/proc/self/status`, not `ru_maxrss`: Linux carries `ru_maxrss` over
/// `fork` + `exec`, so every child would report at least the parent's (the receiver's) peak.
fn usage() -> (Duration, u64) {
    let u = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).expect("getrusage");
    let tv = |t: nix::sys::time::TimeVal| Duration::new(t.tv_sec() as u64, t.tv_usec() as u32 * 1000);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    (tv(u.user_time()) + tv(u.system_time()), hwm)
}

fn child(args: &[String]) {
    let [tracer, mode, protocol, endpoint, count, rate, secs] = args else {
        panic!("--child TRACER MODE PROTOCOL ENDPOINT COUNT RATE SECS")
    };
    let protocol = Protocol::parse(protocol);
    let count: u64 = count.parse().expect("COUNT");
    let rate: u64 = rate.parse().expect("RATE");
    let secs: u64 = secs.parse().expect("SECS");
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let handle = runtime.handle().clone();
    let _entered = runtime.enter();
    let tracer = Tracer::new(tracer, protocol, endpoint, &handle);
    // Warm up: connections made, buffers grown, code paged in; then let the export drain.
    for i in 0..2_000 {
        black_box(tracer.call(i));
    }
    std::thread::sleep(Duration::from_millis(500));
    let (cpu0, _) = usage();
    let start = Instant::now();
    let (produced, caller) = match mode.as_str() {
        "loop" => {
            for i in 0..count {
                black_box(tracer.call(i));
            }
            (count, start.elapsed())
        }
        "tree" => {
            for i in 0..count {
                black_box(tracer.tree(i));
            }
            (count * 11, start.elapsed())
        }
        "paced" => {
            let total = rate * secs;
            let mut done = 0;
            while done < total {
                for i in 0..100 {
                    black_box(tracer.call(done + i));
                }
                done += 100;
                let due = start + Duration::from_secs_f64(done as f64 / rate as f64);
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
            }
            (total, start.elapsed())
        }
        other => panic!("mode `{other}`"),
    };
    let ours = tracer.shutdown();
    let (cpu1, max_rss_kib) = usage();
    let report = serde_json::json!({
        "produced": produced,
        "caller_ns": caller.as_nanos() as u64,
        "cpu_ns": (cpu1 - cpu0).as_nanos() as u64,
        "max_rss_kib": max_rss_kib,
        "ours": ours,
    });
    println!("{report}");
    // The warm-up spans were exported too; the parent counts them out.
    drop(_entered);
    runtime.shutdown_timeout(Duration::from_secs(1));
}

// ---- the parent: the receiver, the children, the tables ----

struct Options {
    runs: usize,
    protocols: Vec<Protocol>,
    tracers: Vec<String>,
    calls: u64,
    trees: u64,
    rate: u64,
    secs: u64,
    max_rate: bool,
    modes: Vec<String>,
    out: Option<String>,
}

fn options(args: &[String]) -> Options {
    let mut o = Options {
        runs: 3,
        protocols: vec![Protocol::Grpc, Protocol::Http],
        tracers: ["ours", "sdk", "tracing", "fastrace"].map(String::from).to_vec(),
        calls: 1_000_000,
        trees: 50_000,
        rate: 100_000,
        secs: 10,
        max_rate: false,
        modes: ["loop", "tree", "paced"].map(String::from).to_vec(),
        out: None,
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut value = || args.next().unwrap_or_else(|| panic!("{flag} needs a value")).clone();
        match flag.as_str() {
            "--runs" => o.runs = value().parse().expect("--runs: a count"),
            "--protocols" => o.protocols = value().split(',').map(Protocol::parse).collect(),
            "--tracers" => o.tracers = value().split(',').map(String::from).collect(),
            "--modes" => o.modes = value().split(',').map(String::from).collect(),
            "--calls" => o.calls = value().parse().expect("--calls: a count"),
            "--trees" => o.trees = value().parse().expect("--trees: a count"),
            "--rate" => o.rate = value().parse().expect("--rate: spans per second"),
            "--secs" => o.secs = value().parse().expect("--secs: seconds"),
            "--max-rate" => o.max_rate = true,
            "--out" => o.out = Some(value()),
            other => panic!("unknown option `{other}` (see the file's header for the options)"),
        }
    }
    o
}

/// Spans each child exports before its measured part.
const WARM_UP: u64 = 2_000;

/// One child's measurements, with what the receiver counted.
fn measure(
    receiver: &kotaemon_trace_benches::receiver::Receiver,
    tracer: &str,
    mode: &str,
    protocol: Protocol,
    count: u64,
    rate: u64,
    secs: u64,
) -> serde_json::Value {
    let endpoint = match protocol {
        Protocol::Grpc => receiver.grpc_endpoint(),
        Protocol::Http => receiver.http_endpoint(),
    };
    let before = receiver.spans();
    let output = Command::new(std::env::current_exe().expect("own path"))
        .arg("--child")
        .args([tracer, mode, protocol.name(), &endpoint, &count.to_string(), &rate.to_string(), &secs.to_string()])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", if protocol == Protocol::Grpc { "grpc" } else { "http/protobuf" })
        .env("OTEL_SERVICE_NAME", "bench")
        .env_remove("OTEL_TRACES_SAMPLER")
        .env_remove("OTEL_TRACES_EXPORTER")
        .output()
        .expect("run the child");
    let received = receiver.settle(Duration::from_millis(300)) - before;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().last().unwrap_or("");
    let mut report: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|_| {
        panic!("{tracer} {mode} {protocol:?}: {}\n{}", output.status, String::from_utf8_lossy(&output.stderr))
    });
    let produced = report["produced"].as_u64().unwrap_or(0);
    let received = received.saturating_sub(WARM_UP);
    let caller_ns = report["caller_ns"].as_u64().unwrap_or(0) as f64;
    let cpu_ns = report["cpu_ns"].as_u64().unwrap_or(0) as f64;
    report["tracer"] = tracer.into();
    report["mode"] = mode.into();
    report["protocol"] = protocol.name().into();
    report["received"] = received.into();
    report["lost"] = produced.saturating_sub(received).into();
    report["lost_pct"] = (100.0 * produced.saturating_sub(received) as f64 / produced.max(1) as f64).into();
    report["ns_per_call"] = (caller_ns / count.max(1) as f64).into();
    report["cpu_ns_per_exported_span"] = (cpu_ns / received.max(1) as f64).into();
    report
}

fn print_row(r: &serde_json::Value) {
    if !r["ours"].is_null() {
        println!("          ours: {}", r["ours"]);
    }
    let per_call = if r["mode"] == "paced" { f64::NAN } else { r["ns_per_call"].as_f64().unwrap_or(f64::NAN) };
    println!(
        "{:<9} {:<5} {:<6} {:>12.1} {:>10.0} {:>9} {:>7.2} {:>9}",
        r["tracer"].as_str().unwrap_or(""),
        r["protocol"].as_str().unwrap_or(""),
        r["mode"].as_str().unwrap_or(""),
        per_call,
        r["cpu_ns_per_exported_span"].as_f64().unwrap_or(f64::NAN),
        r["lost"].as_u64().unwrap_or(0),
        r["lost_pct"].as_f64().unwrap_or(f64::NAN),
        r["max_rss_kib"].as_u64().unwrap_or(0) / 1024,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        return child(&args[1..]);
    }
    let receiver = kotaemon_trace_benches::receiver::Receiver::start();
    if args.first().map(String::as_str) == Some("--serve") {
        // For profiling a child by hand (valgrind): the receiver alone, for the given seconds.
        println!("grpc {} http {}", receiver.grpc_endpoint(), receiver.http_endpoint());
        let secs: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(600);
        std::thread::sleep(Duration::from_secs(secs));
        println!("spans received: {}", receiver.spans());
        return;
    }
    let o = options(&args);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average at start: {}", load.trim());
    println!(
        "{:<9} {:<5} {:<6} {:>12} {:>10} {:>9} {:>7} {:>9}",
        "tracer", "proto", "mode", "ns/call|tree", "cpu ns/sp", "lost", "lost %", "maxRSS MB"
    );
    let mut rows = Vec::new();
    for run in 1..=o.runs {
        println!("== run {run} of {}", o.runs);
        for &protocol in &o.protocols {
            for mode in &o.modes {
                for tracer in &o.tracers {
                    let count = if mode == "tree" { o.trees } else { o.calls };
                    let mut r = measure(&receiver, tracer, mode, protocol, count, o.rate, o.secs);
                    r["run"] = run.into();
                    print_row(&r);
                    rows.push(r);
                }
            }
        }
    }
    if o.max_rate {
        println!("== highest paced rate (5 s each) with 0 lost");
        for &protocol in &o.protocols {
            for tracer in &o.tracers {
                let mut best = 0;
                for rate in [25_000, 50_000, 100_000, 150_000, 200_000, 300_000, 400_000, 600_000, 800_000] {
                    let r = measure(&receiver, tracer, "paced", protocol, 0, rate, 5);
                    let lost = r["lost"].as_u64().unwrap_or(u64::MAX);
                    println!("{tracer:<9} {:<5} {rate:>7}/s lost {lost}", protocol.name());
                    if lost > 0 {
                        break;
                    }
                    best = rate;
                }
                rows.push(serde_json::json!({
                    "tracer": tracer, "protocol": protocol.name(), "mode": "max_rate", "rate": best,
                }));
            }
        }
    }
    let invalid = receiver.counts.invalid.load(std::sync::atomic::Ordering::Relaxed);
    if invalid > 0 {
        println!("receiver: {invalid} request bodies did not decode");
    }
    if let Some(path) = o.out {
        let json = serde_json::json!({ "load_at_start": load.trim(), "rows": rows });
        std::fs::write(&path, serde_json::to_string_pretty(&json).expect("json")).expect("write --out");
    }
}
