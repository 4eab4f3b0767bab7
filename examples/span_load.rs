//! A span load at fixed rates: root spans of named operations, each with a few children, started at a
//! steady rate per operation for a bounded time, through the pipeline configured by `OTEL_*` as in any
//! service (so `OTEL_TRACES_SAMPLER=parentbased_jaeger_remote` decides which traces are kept). It drives a
//! collector fleet for adaptive sampling and capacity runs (docs/fleet.md).
//!
//! ```text
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:24011 cargo run --example span_load -- \
//!     --op checkout=40 --op refund=4 --seconds 60 --children 3
//! ```
//!
//! | flag | default | meaning |
//! |---|---|---|
//! | `--op NAME=RATE` | `op=10` | an operation and its traces per second (repeat for several) |
//! | `--seconds S` | 10 | how long the load runs |
//! | `--children N` | 3 | child spans under each root (a trace is N + 1 spans) |
//! | `--report-s S` | 5 | a JSON line every S seconds: traces started and head-sampled per operation in that window |
//!
//! Every line on stdout is one JSON object: the windows (`"window"`: seconds since the start, `"unix_ms"`:
//! the wall clock at the window's end, to line up with the stored spans' start times), then one summary
//! (`"summary"`) with the totals per operation and the pipeline's export counters after the final flush
//! (spans exported, dropped, failed). SIGINT or SIGTERM ends the load early the same way: the window so far,
//! the flush, the summary. Exit status 0, or 2 for bad arguments, 1 when tracing could not start.
#![forbid(unsafe_code)]

use kotaemon_trace::opentelemetry::trace::{Span as _, TraceContextExt as _, Tracer as _};
use kotaemon_trace::opentelemetry::{Context, KeyValue, global};
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const USAGE: &str = "usage: span_load [--op NAME=RATE]... [--seconds S] [--children N] [--report-s S]";

struct Args {
    ops: Vec<(String, f64)>,
    seconds: f64,
    children: u64,
    report: Duration,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args { ops: Vec::new(), seconds: 10.0, children: 3, report: Duration::from_secs(5) };
    let mut argv = std::env::args().skip(1);
    while let Some(flag) = argv.next() {
        let value = argv.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"));
        let number = |v: &str| {
            v.parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && *n > 0.0)
                .ok_or_else(|| format!("{flag}: {v:?} is not a positive number\n{USAGE}"))
        };
        match flag.as_str() {
            "--op" => {
                let value = value?;
                let (name, rate) = value
                    .split_once('=')
                    .ok_or_else(|| format!("--op: {value:?} is not NAME=RATE (e.g. checkout=40)\n{USAGE}"))?;
                args.ops.push((name.to_owned(), number(rate)?));
            }
            "--seconds" => args.seconds = number(&value?)?,
            "--children" => {
                let value = value?;
                args.children =
                    value.parse().map_err(|_| format!("--children: {value:?} is not a whole number\n{USAGE}"))?;
            }
            "--report-s" => args.report = Duration::from_secs_f64(number(&value?)?),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if args.ops.is_empty() {
        args.ops.push(("op".to_owned(), 10.0));
    }
    Ok(args)
}

/// Traces started and head-sampled, per operation.
#[derive(Default)]
struct Counts {
    started: AtomicU64,
    sampled: AtomicU64,
}

/// One trace: the root and its children, ended at once. Whether the head sampler kept it.
fn one_trace(name: &str, children: u64) -> bool {
    let tracer = global::tracer("span_load");
    let root = tracer.start(name.to_owned());
    let sampled = root.span_context().is_sampled();
    let cx = Context::current_with_span(root);
    for i in 0..children {
        let mut child = tracer.start_with_context(format!("{name}.step{i}"), &cx);
        child.set_attribute(KeyValue::new("step", i as i64));
        child.end();
    }
    cx.span().end();
    sampled
}

/// Starts `rate` traces per second of `name` until `end` or `stop`, spread evenly (a late tick catches up).
fn drive(name: String, rate: f64, children: u64, end: Instant, stop: Arc<AtomicBool>, counts: Arc<Counts>) {
    let start = Instant::now();
    let mut done: u64 = 0;
    while Instant::now() < end && !stop.load(Ordering::Relaxed) {
        let due = (start.elapsed().as_secs_f64() * rate) as u64;
        while done < due {
            let sampled = one_trace(&name, children);
            counts.started.fetch_add(1, Ordering::Relaxed);
            if sampled {
                counts.sampled.fetch_add(1, Ordering::Relaxed);
            }
            done += 1;
        }
        let next = start + Duration::from_secs_f64((done + 1) as f64 / rate);
        std::thread::sleep(next.saturating_duration_since(Instant::now()).min(Duration::from_millis(100)));
    }
}

/// Sets `stop` on SIGINT or SIGTERM, so that a caller can end the load when it has seen enough and still
/// get every head-sampled span exported and the summary printed.
fn stop_on_signal(stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
        runtime.block_on(async {
            use tokio::signal::unix::{SignalKind, signal};
            let Ok(mut terminate) = signal(SignalKind::terminate()) else { return };
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = terminate.recv() => {}
            }
        });
        stop.store(true, Ordering::Relaxed);
    });
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

fn print_line(value: &serde_json::Value) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{value}").and_then(|()| stdout.flush());
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let guard = match kotaemon_trace::config::Config::load()
        .map_err(|e| e.to_string())
        .and_then(|c| kotaemon_trace::init_with(c).map_err(|e| e.to_string()))
    {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("span_load: tracing could not start: {error}");
            return ExitCode::FAILURE;
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    stop_on_signal(Arc::clone(&stop));
    let began = Instant::now();
    let end = began + Duration::from_secs_f64(args.seconds);
    let counts: BTreeMap<String, Arc<Counts>> =
        args.ops.iter().map(|(name, _)| (name.clone(), Arc::new(Counts::default()))).collect();
    let workers: Vec<_> = args
        .ops
        .iter()
        .map(|(name, rate)| {
            let (name, rate, children, c) = (name.clone(), *rate, args.children, Arc::clone(&counts[name]));
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || drive(name, rate, children, end, stop, c))
        })
        .collect();
    // One line per window: what each operation started and what the head sampler kept in it.
    let last: Mutex<BTreeMap<String, (u64, u64)>> = Mutex::new(BTreeMap::new());
    let mut window_start = Instant::now();
    while Instant::now() < end && !stop.load(Ordering::Relaxed) {
        let window_end = (window_start + args.report).min(end);
        // In short sleeps: a stop signal ends the window early.
        while Instant::now() < window_end && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(window_end.saturating_duration_since(Instant::now()).min(Duration::from_millis(50)));
        }
        let seconds = window_start.elapsed().as_secs_f64();
        window_start = Instant::now();
        let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
        let mut ops = serde_json::Map::new();
        for (name, c) in &counts {
            let now = (c.started.load(Ordering::Relaxed), c.sampled.load(Ordering::Relaxed));
            let before = last.insert(name.clone(), now).unwrap_or((0, 0));
            let (started, sampled) = (now.0 - before.0, now.1 - before.1);
            ops.insert(
                name.clone(),
                serde_json::json!({ "started": started, "sampled": sampled, "sampled_per_s": sampled as f64 / seconds }),
            );
        }
        print_line(&serde_json::json!({
            "window": began.elapsed().as_secs_f64(),
            "unix_ms": unix_ms(),
            "seconds": seconds,
            "ops": ops,
        }));
    }
    for worker in workers {
        let _ = worker.join();
    }
    let elapsed = began.elapsed().as_secs_f64();
    let _ = guard.force_flush();
    let stats = guard.stats();
    let mut ops = serde_json::Map::new();
    for (name, c) in &counts {
        let (started, sampled) = (c.started.load(Ordering::Relaxed), c.sampled.load(Ordering::Relaxed));
        ops.insert(name.clone(), serde_json::json!({ "started": started, "sampled": sampled }));
    }
    print_line(&serde_json::json!({
        "summary": true,
        "seconds": elapsed,
        "children": args.children,
        "ops": ops,
        "spans_exported": stats.spans_exported,
        "spans_dropped": stats.spans_dropped,
        "spans_failed": stats.spans_failed,
    }));
    if let Err(error) = guard.shutdown() {
        eprintln!("span_load: flushing the spans: {error}");
    }
    ExitCode::SUCCESS
}
