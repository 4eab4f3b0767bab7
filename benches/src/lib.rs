//! Shared pieces of the benchmarks: the exporter that discards, and pipelines for ours and the peers
//! built the same way (batch processor in front of the discarding exporter).

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanData, SpanExporter};

/// Accepts every batch and drops it: measures the span path, not the network.
#[derive(Debug, Default, Clone)]
pub struct Discard;

impl SpanExporter for Discard {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        std::hint::black_box(batch);
        Ok(())
    }
}

/// Our pipeline with `sampler`, the default batch settings, and the discarding exporter.
pub fn ours(sampler: kotaemon_trace::Sampler) -> kotaemon_trace::TraceGuard {
    let config = kotaemon_trace::Config::builder().sampler(sampler).span_exporter(Discard).build();
    kotaemon_trace::init_with(config).expect("init")
}

/// The raw SDK: the SDK's own batch span processor in front of the discarding exporter.
pub fn sdk(sampled: bool) -> SdkTracerProvider {
    let sampler = if sampled { opentelemetry_sdk::trace::Sampler::AlwaysOn } else { opentelemetry_sdk::trace::Sampler::AlwaysOff };
    SdkTracerProvider::builder().with_sampler(sampler).with_batch_exporter(Discard).build()
}
