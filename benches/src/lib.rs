//! Shared pieces of the benchmarks: the exporter that discards, and pipelines for ours and the peers
//! built the same way (batch processor in front of the discarding exporter).

pub mod receiver;

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};

use std::sync::atomic::{AtomicU64, Ordering};

/// Spans that reached a [`Discard`] exporter, to tell how many a pipeline dropped during a row.
pub static DISCARDED: AtomicU64 = AtomicU64::new(0);

/// Accepts every batch and drops it: measures the span path, not the network.
#[derive(Debug, Default, Clone)]
pub struct Discard;

impl SpanExporter for Discard {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        DISCARDED.fetch_add(batch.len() as u64, Ordering::Relaxed);
        std::hint::black_box(batch);
        Ok(())
    }
}

/// Spans made by the benchmarked functions, to compare with [`DISCARDED`].
pub static CREATED: AtomicU64 = AtomicU64::new(0);

/// Counts one span made.
#[inline(always)]
pub fn created() {
    CREATED.fetch_add(1, Ordering::Relaxed);
}

/// Resets both counters; returns the share of spans lost since the last reset, in percent.
pub fn lost_share() -> f64 {
    let created = CREATED.swap(0, Ordering::Relaxed);
    let discarded = DISCARDED.swap(0, Ordering::Relaxed);
    100.0 * created.saturating_sub(discarded) as f64 / created.max(1) as f64
}

/// Our pipeline with `sampler`, the default batch settings, and the discarding exporter.
pub fn ours(sampler: kotaemon_trace::config::Sampler) -> kotaemon_trace::TraceGuard {
    let config = kotaemon_trace::config::Config::builder().sampler(sampler).span_exporter(Discard).build();
    kotaemon_trace::init_with(config).expect("init")
}

/// [`ours`] with RED metrics on (a scrape endpoint on a free loopback port), for the metrics rows.
pub fn ours_with_metrics(sampler: kotaemon_trace::config::Sampler) -> kotaemon_trace::TraceGuard {
    let metrics = {
        let mut c = kotaemon_trace::config::MetricsConfig::default();
        c.prometheus = Some("127.0.0.1:0".into());
        c
    };
    let config =
        kotaemon_trace::config::Config::builder().sampler(sampler).span_exporter(Discard).metrics(metrics).build();
    kotaemon_trace::init_with(config).expect("init")
}

/// The raw SDK: the SDK's own batch span processor in front of the discarding exporter.
pub fn sdk(sampled: bool) -> SdkTracerProvider {
    let sampler = if sampled {
        opentelemetry_sdk::trace::Sampler::AlwaysOn
    } else {
        opentelemetry_sdk::trace::Sampler::AlwaysOff
    };
    SdkTracerProvider::builder().with_sampler(sampler).with_batch_exporter(Discard).build()
}
