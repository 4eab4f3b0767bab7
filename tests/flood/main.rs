//! Flood: two threads make spans as fast as they can for a bounded time. Memory stays under a stated cap,
//! the callers never wait for export (even when the exporter hangs), and every span is accounted for:
//! `created = exported + dropped` exactly.
//!
//! One test in its own binary, because resident memory is a property of the whole process.

use kotaemon_trace::config::{BatchConfig, Config};
use kotaemon_trace::{init_with, trace_with_otel, ShutdownError};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// The stated cap: resident memory may grow by at most this much over the process's size before `init`,
/// whatever the span rate (the queue is bounded; see docs/reliability.md).
const RSS_GROWTH_CAP: u64 = 32 * 1024 * 1024;
const FLOOD_FOR: Duration = Duration::from_secs(3);
const THREADS: usize = 2;

/// Resident set size from `/proc/self/statm` (second field, in pages).
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm (Linux)");
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).expect("statm's resident field");
    pages * 4096
}

/// An exporter that takes a while per batch (a network round trip), or hangs while `gate` is closed.
#[derive(Debug, Clone, Default)]
struct Slow {
    exported: Arc<AtomicU64>,
    gate: Arc<(Mutex<bool>, Condvar)>,
}

impl Slow {
    fn close(&self) {
        *self.gate.0.lock().unwrap() = true;
    }
    fn open(&self) {
        *self.gate.0.lock().unwrap() = false;
        self.gate.1.notify_all();
    }
}

impl SpanExporter for Slow {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let (closed, wake) = &*self.gate;
        let mut guard = closed.lock().unwrap();
        while *guard {
            guard = wake.wait(guard).unwrap();
        }
        drop(guard);
        std::thread::sleep(Duration::from_millis(2));
        self.exported.fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

#[trace_with_otel("retriever.invoke", fields(retriever.type = "vector"))]
fn retrieve(request: u64, query: &str) -> usize {
    query.len() + request as usize % 7
}

/// Floods from `THREADS` threads for `FLOOD_FOR`; returns the number of spans made. Panics if the threads
/// do not all finish within a minute (a caller blocked by export).
fn flood(label: &str) -> u64 {
    let (done_tx, done_rx) = mpsc::channel();
    for t in 0..THREADS {
        let done = done_tx.clone();
        std::thread::spawn(move || {
            let query = format!("what is the refund policy for order {t}?");
            let until = Instant::now() + FLOOD_FOR;
            let mut made = 0_u64;
            while Instant::now() < until {
                for _ in 0..64 {
                    std::hint::black_box(retrieve(made, &query));
                    made += 1;
                }
            }
            let _ = done.send(made);
        });
    }
    drop(done_tx);
    let mut created = 0;
    for _ in 0..THREADS {
        created += done_rx
            .recv_timeout(FLOOD_FOR + Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("{label}: a flooding thread did not finish: callers were blocked"));
    }
    created
}

#[test]
fn a_flood_is_bounded_in_memory_never_blocks_and_is_counted_exactly() {
    let baseline = rss_bytes();
    let exporter = Slow::default();
    let batch = BatchConfig::default();
    let guard = init_with(Config::builder().span_exporter(exporter.clone()).batch(batch.clone()).build()).unwrap();

    let peak = Arc::new(AtomicU64::new(baseline));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = {
        let (peak, sampling) = (peak.clone(), sampling.clone());
        std::thread::spawn(move || {
            while sampling.load(Ordering::Relaxed) {
                peak.fetch_max(rss_bytes(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };

    // 1. The exporter keeps up as a real one would (2 ms a batch): far fewer spans than are made.
    let created_fast = flood("fast exporter");
    // 2. The exporter hangs for the whole flood: callers still never wait.
    exporter.close();
    let created_hung = flood("hung exporter");
    let during_hang = guard.stats();
    exporter.open();

    sampling.store(false, Ordering::Relaxed);
    sampler.join().unwrap();
    let created = created_fast + created_hung;
    let result = guard.shutdown();
    let exported = exporter.exported.load(Ordering::Relaxed);
    let Err(ShutdownError::SpansLost { dropped, failed }) = result else {
        panic!("a flood this size overflows the queue and must say so: {result:?}");
    };
    let growth = peak.load(Ordering::Relaxed).saturating_sub(baseline);
    eprintln!(
        "flood: {created} spans from {THREADS} threads in 2 x {FLOOD_FOR:?} ({created_fast} with a working exporter, \
         {created_hung} with a hung one); exported {exported}, dropped {dropped}, failed {failed}; \
         RSS {} MB before init, peak growth {:.1} MB (cap {} MB); queue {} spans",
        baseline / 1_048_576,
        growth as f64 / 1_048_576.0,
        RSS_GROWTH_CAP / 1_048_576,
        batch.max_queue_size,
    );
    assert_eq!(exported + dropped + failed, created, "every span is exported or counted as dropped");
    assert_eq!(failed, 0, "nothing failed: the exporter only got slow");
    assert!(dropped > 0 && exported > 0);
    assert!(
        during_hang.spans_dropped
            >= created_hung.saturating_sub(batch.max_queue_size as u64 + batch.max_export_batch_size as u64),
        "with the exporter hung, all but a queue and a batch are dropped: {during_hang:?}"
    );
    assert!(growth < RSS_GROWTH_CAP, "resident memory grew by {growth} bytes, over the cap of {RSS_GROWTH_CAP}");
}
