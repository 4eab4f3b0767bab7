//! Sustained load with the default queue settings: two threads creating spans as fast as they can for a
//! fixed time (spans/s and the share lost), and a paced 100 000 spans/s for ten seconds (spans lost must
//! be zero). Every span carries four attributes (an argument, a model name, a count, a query text), so
//! the export thread redacts as it would in a service. Loss is counted the same way for everyone: spans
//! created minus spans that reached the exporter.
//!
//! `cargo bench -p kotaemon-trace-benches --bench throughput`

use kotaemon_trace::config::{Config, Sampler};
use kotaemon_trace::trace_with_otel;
use opentelemetry::trace::{Tracer as _, TracerProvider as _};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Default, Clone)]
struct Count(Arc<AtomicU64>);

impl SpanExporter for Count {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

#[trace_with_otel("load.call", fields(model = "gpt-x", k = 4, query = "where is my order 90320"))]
#[inline(never)]
fn ours_call(x: u64) -> u64 {
    std::hint::black_box(x)
}

fn sdk_call(tracer: &opentelemetry_sdk::trace::SdkTracer, x: u64) {
    use opentelemetry::KeyValue;
    let builder = tracer.span_builder("load.call").with_attributes([
        KeyValue::new("x", x as i64),
        KeyValue::new("model", "gpt-x"),
        KeyValue::new("k", 4_i64),
        KeyValue::new("query", "where is my order 90320"),
    ]);
    tracer.in_span_with_builder(builder, |_| ());
}

/// Runs `make_span` on two threads for `duration`; returns spans created.
fn flood(duration: Duration, make_span: impl Fn(u64) + Sync) -> u64 {
    let stop = AtomicBool::new(false);
    let created = AtomicU64::new(0);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..64 {
                        make_span(n);
                        n += 1;
                    }
                }
                created.fetch_add(n, Ordering::Relaxed);
            });
        }
        std::thread::sleep(duration);
        stop.store(true, Ordering::Relaxed);
    });
    created.into_inner()
}

/// One thread making `rate` spans per second for `duration`, in 1 ms steps.
fn paced(rate: u64, duration: Duration, make_span: impl Fn(u64)) -> u64 {
    let per_ms = rate / 1000;
    let start = Instant::now();
    let mut created = 0u64;
    let mut step = 0u32;
    while start.elapsed() < duration {
        for _ in 0..per_ms {
            make_span(created);
            created += 1;
        }
        step += 1;
        let next = start + Duration::from_millis(u64::from(step));
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    created
}

fn report(name: &str, created: u64, exported: u64, seconds: f64) {
    let lost = created.saturating_sub(exported);
    println!(
        "{name:<34} {:>12.0} spans/s   lost {:>9} of {:>10} ({:.2} %)",
        created as f64 / seconds,
        lost,
        created,
        100.0 * lost as f64 / created.max(1) as f64
    );
}

fn ours_run(load: impl FnOnce() -> u64) -> (u64, u64) {
    let count = Count::default();
    let guard =
        kotaemon_trace::init_with(Config::builder().sampler(Sampler::AlwaysOn).span_exporter(count.clone()).build())
            .unwrap();
    let created = load();
    let _ = guard.shutdown();
    (created, count.0.load(Ordering::Relaxed))
}

fn sdk_run(load: impl FnOnce(&opentelemetry_sdk::trace::SdkTracer) -> u64) -> (u64, u64) {
    let count = Count::default();
    let provider = SdkTracerProvider::builder().with_batch_exporter(count.clone()).build();
    let tracer = provider.tracer("load");
    let created = load(&tracer);
    let _ = provider.shutdown();
    (created, count.0.load(Ordering::Relaxed))
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is accepted and ignored.
    let flood_for = Duration::from_secs(2);
    println!("two threads, as fast as they can, {} s, default queue (2048) and batch (512):", flood_for.as_secs());
    let (created, exported) = ours_run(|| {
        flood(flood_for, |n| {
            ours_call(n);
        })
    });
    report("ours #[trace_with_otel]", created, exported, flood_for.as_secs_f64());
    let (created, exported) = sdk_run(|tracer| flood(flood_for, |n| sdk_call(tracer, n)));
    report("opentelemetry_sdk in_span", created, exported, flood_for.as_secs_f64());

    let rate = 100_000;
    let paced_for = Duration::from_secs(10);
    println!("\none thread paced at {rate} spans/s for {} s, default settings:", paced_for.as_secs());
    let (created, exported) = ours_run(|| {
        paced(rate, paced_for, |n| {
            ours_call(n);
        })
    });
    report("ours #[trace_with_otel]", created, exported, paced_for.as_secs_f64());
    let (created, exported) = sdk_run(|tracer| paced(rate, paced_for, |n| sdk_call(tracer, n)));
    report("opentelemetry_sdk in_span", created, exported, paced_for.as_secs_f64());
}
