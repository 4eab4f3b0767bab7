//! A load generator for `examples/rag_service.rs`: a bounded number of `POST /ask` requests over a fixed
//! list of questions (a fixed mix of fast, slow and failing requests), a bounded number at a time, then a
//! summary.
//!
//! ```text
//! cargo run --example rag_load -- --requests 120 --concurrency 4
//! ```
//!
//! | flag | default | meaning |
//! |---|---|---|
//! | `--url URL` | `$RAG_SERVICE_URL`, else `http://127.0.0.1:8080` | the service |
//! | `--requests N` | 60 | requests in all (request `i` asks question `i mod 6`) |
//! | `--concurrency C` | 4 | requests in flight at most |
//! | `--pause-ms MS` | 0 | each worker's pause between two requests (spreads the load over time) |
//! | `--debug-every K` | 10 | every K-th request carries `X-Debug-Tracing: true` (0: none) |
//! | `--wait-s S` | 30 | how long to wait for the service's `/healthz` first |
//! | `--json` | off | print the summary as one JSON object instead of text, with each request's trace id |
//!
//! Each request is a CLIENT span `POST /ask` of the service `rag-load` (`OTEL_SERVICE_NAME` overrides it),
//! and carries its `traceparent`: the service continues that trace, so the two services' spans make one
//! trace in Jaeger. Exit status: 0 when every request got an HTTP answer (502s from the failing tool are
//! part of the mix), 1 when some did not (connection refused, timeout), 2 for bad arguments.
#![forbid(unsafe_code)]

use kotaemon_trace::config::{Config, ConfigFileError, Origin};
use kotaemon_trace::{propagation, record, trace_with_otel};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The questions, in order; see the table in `rag_service.rs` for what each one does there.
const QUESTIONS: [&str; 6] = [
    "Where is my order ORD-1042?",           // fast: get_order_status, small model
    "Is ORD-2077 packed yet?",               // fast: get_order_status, small model
    "How long do refunds take?",             // slow: the large model dominates
    "Status of order ORD-9999",              // fails: get_order_status does not know the order (502)
    "Please start a return for ORD-1042",    // fast: create_return, small model
    "How long does standard shipping take?", // fast: no tool, small model
];

struct Args {
    url: String,
    requests: u64,
    concurrency: u64,
    pause: Duration,
    debug_every: u64,
    wait: Duration,
    json: bool,
}

const USAGE: &str = "usage: rag_load [--url URL] [--requests N] [--concurrency C] [--pause-ms MS] [--debug-every K] [--wait-s S] [--json]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        url: std::env::var("RAG_SERVICE_URL")
            .ok()
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "http://127.0.0.1:8080".to_owned()),
        requests: 60,
        concurrency: 4,
        pause: Duration::ZERO,
        debug_every: 10,
        wait: Duration::from_secs(30),
        json: false,
    };
    let mut argv = std::env::args().skip(1);
    while let Some(flag) = argv.next() {
        let mut value = || argv.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"));
        let number = |v: String| v.parse::<u64>().map_err(|_| format!("{flag}: {v:?} is not a whole number\n{USAGE}"));
        match flag.as_str() {
            "--url" => args.url = value()?.trim_end_matches('/').to_owned(),
            "--requests" => args.requests = number(value()?)?,
            "--concurrency" => args.concurrency = number(value()?)?.max(1),
            "--pause-ms" => args.pause = Duration::from_millis(number(value()?)?),
            "--debug-every" => args.debug_every = number(value()?)?,
            "--wait-s" => args.wait = Duration::from_secs(number(value()?)?),
            "--json" => args.json = true,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(args)
}

/// What one request came to.
struct Outcome {
    /// The request's number, from 0: request `i` asks question `i mod 6`.
    index: u64,
    question: &'static str,
    /// The HTTP status, or the transport error.
    status: Result<u16, String>,
    latency: Duration,
    trace_id: Option<String>,
    debug_forced: bool,
}

/// One request as a CLIENT span; its context goes out in `traceparent` (and the debug header when asked).
#[trace_with_otel("POST /ask", span_kind = "client", skip(client, url), fields(http.request.method = "POST", url.full = url))]
async fn ask(client: &reqwest::Client, url: &str, index: u64, question: &'static str, debug: bool) -> Outcome {
    // The trace this CLIENT span starts (the service continues it): known even when the service fails.
    let trace_id = kotaemon_trace::current_trace_id();
    let mut headers = http::HeaderMap::new();
    propagation::inject(&mut headers);
    headers.insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
    if debug {
        headers.insert("x-debug-tracing", http::HeaderValue::from_static("true"));
    }
    let body = serde_json::json!({ "question": question, "user_phone": "+1 415 555 0100" });
    let started = Instant::now();
    let sent = client.post(url).headers(headers).body(body.to_string()).send().await;
    let mut outcome =
        Outcome { index, question, status: Err(String::new()), latency: Duration::ZERO, trace_id, debug_forced: false };
    match sent {
        Ok(response) => {
            let status = response.status().as_u16();
            record("http.response.status_code", status);
            let answer: serde_json::Value =
                response.bytes().await.ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
            outcome.status = Ok(status);
            if let Some(id) = answer["trace_id"].as_str() {
                outcome.trace_id = Some(id.to_owned());
            }
            outcome.debug_forced = answer["debug_forced"] == true;
        }
        Err(error) => outcome.status = Err(error.to_string()),
    }
    outcome.latency = started.elapsed();
    outcome
}

async fn wait_until_up(client: &reqwest::Client, url: &str, wait: Duration) -> Result<(), String> {
    let deadline = Instant::now() + wait;
    loop {
        let last = match client.get(format!("{url}/healthz")).send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => format!("answered {}", r.status()),
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(format!("{url}/healthz did not answer within {} s ({last})", wait.as_secs()));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn run(args: &Args) -> Result<(Vec<Outcome>, Duration), String> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().map_err(|e| e.to_string())?;
    wait_until_up(&client, &args.url, args.wait).await?;
    let next = Arc::new(AtomicU64::new(0));
    let outcomes = Arc::new(Mutex::new(Vec::with_capacity(args.requests as usize)));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency.min(args.requests.max(1)) {
        let (client, next, outcomes) = (client.clone(), Arc::clone(&next), Arc::clone(&outcomes));
        let (url, total, pause, debug_every) =
            (format!("{}/ask", args.url), args.requests, args.pause, args.debug_every);
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let debug = debug_every > 0 && i % debug_every == debug_every - 1;
                let outcome = ask(&client, &url, i, QUESTIONS[(i % QUESTIONS.len() as u64) as usize], debug).await;
                outcomes.lock().unwrap_or_else(|e| e.into_inner()).push(outcome);
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
            }
        }));
    }
    for worker in workers {
        worker.await.map_err(|e| e.to_string())?;
    }
    let elapsed = started.elapsed();
    let outcomes = std::mem::take(&mut *outcomes.lock().unwrap_or_else(|e| e.into_inner()));
    Ok((outcomes, elapsed))
}

fn percentile(sorted_ms: &[f64], p: f64) -> f64 {
    if sorted_ms.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted_ms.len() as f64).ceil() as usize;
    sorted_ms[rank.clamp(1, sorted_ms.len()) - 1]
}

fn summary(args: &Args, outcomes: &[Outcome], elapsed: Duration) -> serde_json::Value {
    let ok = outcomes.iter().filter(|o| o.status.as_ref().is_ok_and(|s| (200..300).contains(s))).count();
    let http_errors = outcomes.iter().filter(|o| o.status.as_ref().is_ok_and(|s| !(200..300).contains(s))).count();
    let transport_errors: Vec<&str> =
        outcomes.iter().filter_map(|o| o.status.as_ref().err().map(String::as_str)).collect();
    let mut latencies: Vec<f64> = outcomes.iter().map(|o| o.latency.as_secs_f64() * 1000.0).collect();
    latencies.sort_by(f64::total_cmp);
    let slowest = outcomes.iter().max_by_key(|o| o.latency);
    let mut per_question = serde_json::Map::new();
    for question in QUESTIONS {
        let of: Vec<&Outcome> = outcomes.iter().filter(|o| o.question == question).collect();
        let mut ms: Vec<f64> = of.iter().map(|o| o.latency.as_secs_f64() * 1000.0).collect();
        ms.sort_by(f64::total_cmp);
        let statuses: Vec<String> =
            of.iter().map(|o| o.status.as_ref().map_or_else(|_| "error".to_owned(), u16::to_string)).collect();
        let mut distinct = statuses.clone();
        distinct.sort();
        distinct.dedup();
        per_question.insert(
            question.to_owned(),
            serde_json::json!({ "requests": of.len(), "statuses": distinct, "p50_ms": round(percentile(&ms, 50.0)) }),
        );
    }
    // Request i's trace id at index i: what a test needs to look each trace up in the store.
    let mut trace_ids = vec![serde_json::Value::Null; outcomes.len()];
    for o in outcomes {
        if let (Some(slot), Some(id)) = (trace_ids.get_mut(o.index as usize), &o.trace_id) {
            *slot = serde_json::Value::String(id.clone());
        }
    }
    serde_json::json!({
        "url": args.url,
        "requests": outcomes.len(),
        "concurrency": args.concurrency,
        "elapsed_ms": round(elapsed.as_secs_f64() * 1000.0),
        "requests_per_second": round(outcomes.len() as f64 / elapsed.as_secs_f64().max(1e-9)),
        "ok": ok,
        "http_errors": http_errors,
        "transport_errors": transport_errors.len(),
        "first_transport_error": transport_errors.first(),
        "debug_forced": outcomes.iter().filter(|o| o.debug_forced).count(),
        "p50_ms": round(percentile(&latencies, 50.0)),
        "p95_ms": round(percentile(&latencies, 95.0)),
        "max_ms": round(latencies.last().copied().unwrap_or(0.0)),
        "slowest": slowest.map(|o| serde_json::json!({ "question": o.question, "ms": round(o.latency.as_secs_f64() * 1000.0), "trace_id": o.trace_id })),
        "per_question": per_question,
        "trace_ids": trace_ids,
    })
}

fn round(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// The summary as text (a closed pipe, as with `| head`, is not an error).
fn print_text(s: &serde_json::Value) {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "rag_load: {} requests to {}/ask, concurrency {}, in {:.2} s ({} req/s)",
        s["requests"],
        s["url"].as_str().unwrap_or_default(),
        s["concurrency"],
        s["elapsed_ms"].as_f64().unwrap_or(0.0) / 1000.0,
        s["requests_per_second"]
    );
    let _ = writeln!(
        out,
        "  ok {}, HTTP errors {} (the failing tool), transport errors {}, debug-forced traces {}",
        s["ok"], s["http_errors"], s["transport_errors"], s["debug_forced"]
    );
    let _ = writeln!(out, "  latency: p50 {} ms, p95 {} ms, max {} ms", s["p50_ms"], s["p95_ms"], s["max_ms"]);
    if let Some(slowest) = s["slowest"].as_object() {
        let _ = writeln!(
            out,
            "  slowest: {} ms {} trace {}",
            slowest["ms"],
            slowest["question"],
            slowest["trace_id"].as_str().unwrap_or("-")
        );
    }
    if let Some(error) = s["first_transport_error"].as_str() {
        let _ = writeln!(out, "  first transport error: {error}");
    }
    for (question, q) in s["per_question"].as_object().into_iter().flatten() {
        let _ = writeln!(
            out,
            "  {:>4} × {question:<40} p50 {:>7} ms  status {}",
            q["requests"], q["p50_ms"], q["statuses"]
        );
    }
    print_raw(&out);
}

fn print_raw(text: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush());
}

/// `OTEL_*` as usual; the service name defaults to `rag-load`.
fn config() -> Result<Config, ConfigFileError> {
    let config = Config::load()?;
    if matches!(config.origin("OTEL_SERVICE_NAME"), Origin::Default)
        && matches!(config.origin("OTEL_RESOURCE_ATTRIBUTES"), Origin::Default)
    {
        return Ok(config.into_builder().service_name("rag-load").build());
    }
    Ok(config)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let guard =
        match config().map_err(|e| e.to_string()).and_then(|c| kotaemon_trace::init_with(c).map_err(|e| e.to_string()))
        {
            Ok(guard) => guard,
            Err(error) => {
                eprintln!("rag_load: tracing could not start: {error}");
                return ExitCode::FAILURE;
            }
        };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("rag_load: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(&args));
    drop(runtime);
    if let Err(error) = guard.shutdown() {
        eprintln!("rag_load: flushing the spans: {error}");
    }
    match result {
        Ok((outcomes, elapsed)) => {
            let s = summary(&args, &outcomes, elapsed);
            if args.json {
                print_raw(&format!("{s}\n"));
            } else {
                print_text(&s);
            }
            if s["transport_errors"] == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(error) => {
            eprintln!("rag_load: {error}");
            ExitCode::FAILURE
        }
    }
}
