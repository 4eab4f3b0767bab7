//! Cost of one sampling decision for each sampler, as the SDK calls it at span start.
//!
//! `cargo bench -p kotaemon-trace-benches --bench sampling`

use criterion::{Criterion, criterion_group, criterion_main};
use kotaemon_trace::config::{JaegerRemote, Sampler};
use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, SpanId, SpanKind, TraceContextExt as _, TraceFlags, TraceId, TraceState};
use opentelemetry_sdk::trace::ShouldSample;
use std::hint::black_box;

fn decisions(c: &mut Criterion) {
    let samplers = [
        ("always_on", Sampler::AlwaysOn),
        ("always_off", Sampler::AlwaysOff),
        ("traceidratio_0.1", Sampler::TraceIdRatio(0.1)),
        ("rate_limiting_10", Sampler::RateLimited(10.0)),
        ("jaeger_remote_initial", Sampler::JaegerRemote(JaegerRemote::default())),
        ("parentbased_traceidratio", Sampler::ParentBased(Box::new(Sampler::TraceIdRatio(0.1)))),
    ];
    let sampled_parent = Context::new().with_remote_span_context(SpanContext::new(
        TraceId::from(7),
        SpanId::from(9),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    ));
    let root = Context::new();
    let mut group = c.benchmark_group("sample");
    for (name, config) in samplers {
        let sampler = kotaemon_trace::__hooks::sampler_for_bench(&config);
        let mut id = 1u128;
        group.bench_function(format!("{name}/root"), |b| {
            b.iter(|| {
                id = id.wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835).wrapping_add(1);
                black_box(sampler.should_sample(
                    Some(&root),
                    TraceId::from(id),
                    "retrieve",
                    &SpanKind::Internal,
                    &[],
                    &[],
                ))
            })
        });
        group.bench_function(format!("{name}/child_of_sampled"), |b| {
            b.iter(|| {
                black_box(sampler.should_sample(
                    Some(&sampled_parent),
                    TraceId::from(7),
                    "retrieve",
                    &SpanKind::Internal,
                    &[],
                    &[],
                ))
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(1))
        .sample_size(20);
    targets = decisions
}
criterion_main!(benches);
