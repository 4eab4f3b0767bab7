//! Soak: spans at a steady rate through the real OTLP exporter for a long time, printing resident memory
//! and the pipeline's counters every 10 s. Not run in CI (it takes 10 minutes and needs a collector).
//!
//! ```text
//! scripts/soak.sh                      # starts a private Jaeger on spare loopback ports, then runs this
//! cargo run --release -p kotaemon-trace-benches --bin soak -- [SECONDS] [SPANS_PER_SECOND]
//! ```
//!
//! Defaults: 600 s at 20 000 spans/s, as traces of 10 spans (a request, 3 retrievals, a rerank, 4 LLM
//! calls, a tool call). The collector comes from `OTEL_EXPORTER_OTLP_*` (default OTLP/HTTP on
//! localhost:4318). The exit status is 1 when a span was dropped or failed, or when resident memory in the
//! last minute grew more than 16 MB over its level after the first minute.
#![forbid(unsafe_code)]

use kotaemon_trace::{record, trace_with_otel};
use std::time::{Duration, Instant};

const SPANS_PER_TRACE: u64 = 10;

#[trace_with_otel("retriever.invoke", fields(retriever.type = "vector"))]
fn retrieve(query: &str, k: u64) -> u64 {
    record("retrieval.documents.count", k as i64);
    query.len() as u64 + k
}

#[trace_with_otel("reranker.invoke")]
fn rerank(n: u64) -> u64 {
    n / 2
}

#[trace_with_otel("llm.chat", fields(gen_ai.request.model = "gpt-4o-mini"))]
fn llm(step: u64) -> u64 {
    record("gen_ai.usage.input_tokens", (step * 100) as i64);
    step
}

#[trace_with_otel("tool.get_order_status")]
fn tool(order_id: u64) -> u64 {
    order_id % 3
}

#[trace_with_otel("handle_user_query")]
fn request(query: &str, id: u64) -> u64 {
    let mut n = 0;
    for k in 0..3 {
        n += retrieve(query, k + 3);
    }
    n = rerank(n);
    for step in 0..4 {
        n += llm(step);
    }
    n + tool(id)
}

fn rss_mb() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0.0);
    pages * 4096.0 / 1_048_576.0
}

fn main() {
    let mut args = std::env::args().skip(1);
    let seconds: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(600);
    let rate: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let guard = kotaemon_trace::init().expect("init");
    let traces_per_ms = rate as f64 / SPANS_PER_TRACE as f64 / 1000.0;
    println!(
        "soak: {seconds} s at {rate} spans/s ({traces_per_ms:.1} traces/ms of {SPANS_PER_TRACE} spans); RSS {:.1} MB",
        rss_mb()
    );
    let start = Instant::now();
    let mut made_traces = 0_u64;
    let mut next_report = Duration::from_secs(10);
    let mut rss_after_first_minute = None;
    let mut rss_max_last_minute: f64 = 0.0;
    let mut behind_max = Duration::ZERO;
    while start.elapsed() < Duration::from_secs(seconds) {
        // Catch up to the schedule, then sleep a millisecond: a steady rate, not bursts of a second.
        let due = (start.elapsed().as_secs_f64() * 1000.0 * traces_per_ms) as u64;
        while made_traces < due {
            std::hint::black_box(request("what is the refund policy?", made_traces));
            made_traces += 1;
        }
        let elapsed = start.elapsed();
        if elapsed >= next_report {
            let stats = guard.stats();
            let rss = rss_mb();
            let made = made_traces * SPANS_PER_TRACE;
            println!(
                "t={:>4}s spans={made:>9} exported={:>9} dropped={} failed={} rss={rss:.1}MB rate={:.0}/s",
                elapsed.as_secs(),
                stats.spans_exported,
                stats.spans_dropped,
                stats.spans_failed,
                made as f64 / elapsed.as_secs_f64()
            );
            if elapsed >= Duration::from_secs(60) && rss_after_first_minute.is_none() {
                rss_after_first_minute = Some(rss);
            }
            if elapsed + Duration::from_secs(60) >= Duration::from_secs(seconds) {
                rss_max_last_minute = rss_max_last_minute.max(rss);
            }
            next_report += Duration::from_secs(10);
        }
        let schedule = Duration::from_secs_f64(made_traces as f64 / traces_per_ms / 1000.0);
        behind_max = behind_max.max(start.elapsed().saturating_sub(schedule));
        std::thread::sleep(Duration::from_millis(1));
    }
    let made = made_traces * SPANS_PER_TRACE;
    guard.force_flush().ok();
    let stats = guard.stats();
    println!(
        "soak: done: {made} spans in {:?}; exported {}, dropped {}, failed {}; RSS {:.1} MB; furthest behind schedule {behind_max:?}",
        start.elapsed(),
        stats.spans_exported,
        stats.spans_dropped,
        stats.spans_failed,
        rss_mb()
    );
    let lost = stats.spans_dropped + stats.spans_failed;
    let growth = rss_after_first_minute.map(|first| rss_max_last_minute - first);
    if let Some(growth) = growth {
        println!(
            "soak: RSS after the first minute {:.1} MB, highest in the last minute {rss_max_last_minute:.1} MB ({growth:+.1} MB)",
            rss_after_first_minute.unwrap_or(0.0)
        );
    }
    let _ = guard.shutdown();
    if lost > 0 || growth.is_some_and(|g| g > 16.0) {
        std::process::exit(1);
    }
}
