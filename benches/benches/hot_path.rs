//! Cost of one traced call of a trivial `#[inline(never)]` function, for ours and the peers, in one
//! criterion run. See BENCHMARKS.md for the table and how to read it.
//!
//! `cargo bench -p kotaemon-trace-benches --bench hot_path`
//! (`--no-default-features` for the row with the macro compiled out).

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use kotaemon_trace::config::Sampler;
use kotaemon_trace::trace_with_otel;
use kotaemon_trace_benches::{Discard, created, lost_share, ours, ours_with_metrics, sdk};
use opentelemetry::KeyValue;
use opentelemetry::trace::{TraceContextExt as _, Tracer as _, TracerProvider as _};
use std::future::Future;
use std::hint::black_box;
use tracing_subscriber::layer::SubscriberExt as _;

/// The body every traced function below shares, counter included (a locked increment, ~5 ns), so that
/// each row differs from this one by the instrumentation alone.
#[inline(never)]
fn baseline(x: u64) -> u64 {
    created();
    black_box(x).wrapping_mul(31)
}

#[trace_with_otel("bench.call", skip_all)]
#[inline(never)]
fn ours_0(x: u64) -> u64 {
    created();
    black_box(x).wrapping_mul(31)
}

#[trace_with_otel("bench.call", fields(model = "gpt-x", k = 4, score = 0.5))]
#[inline(never)]
fn ours_4(x: u64) -> u64 {
    created();
    black_box(x).wrapping_mul(31)
}

#[trace_with_otel("bench.call", fields(model = "gpt-x", k = 4, score = 0.5))]
#[inline(never)]
async fn ours_async_4(x: u64) -> u64 {
    created();
    black_box(x).wrapping_mul(31)
}

/// Polls a future that is ready at once, once: an async form's cost without an executor's.
#[inline(always)]
fn poll_once<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut std::task::Context::from_waker(std::task::Waker::noop())) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => unreachable!("the body never waits"),
    }
}

/// One poll of `ours_async_4`'s future.
#[inline(never)]
fn poll_ours_async_4(x: u64) -> u64 {
    poll_once(ours_async_4(x))
}

async fn plain_async(x: u64) -> u64 {
    created();
    black_box(x).wrapping_mul(31)
}

/// The same poll of an unannotated `async fn`: the baseline of the async row.
#[inline(never)]
fn poll_plain_async(x: u64) -> u64 {
    poll_once(plain_async(x))
}

#[tracing::instrument(name = "bench.call", skip_all)]
#[inline(never)]
fn tracing_0(x: u64) -> u64 {
    created();
    black_box(x).wrapping_mul(31)
}

#[tracing::instrument(name = "bench.call", fields(model = "gpt-x", k = 4, score = 0.5))]
#[inline(never)]
fn tracing_4(x: u64) -> u64 {
    created();
    black_box(x).wrapping_mul(31)
}

#[fastrace::trace(name = "bench.call")]
#[inline(never)]
fn fastrace_0(x: u64) -> u64 {
    created();
    black_box(x).wrapping_mul(31)
}

#[inline(never)]
fn sdk_0(tracer: &opentelemetry_sdk::trace::SdkTracer, x: u64) -> u64 {
    tracer.in_span("bench.call", |_cx| {
        created();
        black_box(x).wrapping_mul(31)
    })
}

#[inline(never)]
fn sdk_4(tracer: &opentelemetry_sdk::trace::SdkTracer, x: u64) -> u64 {
    let builder = tracer.span_builder("bench.call").with_attributes([
        KeyValue::new("x", x as i64),
        KeyValue::new("model", "gpt-x"),
        KeyValue::new("k", 4_i64),
        KeyValue::new("score", 0.5),
    ]);
    tracer.in_span_with_builder(builder, |_cx| {
        created();
        black_box(x).wrapping_mul(31)
    })
}

struct DiscardReporter;

impl fastrace::collector::Reporter for DiscardReporter {
    fn report(&mut self, spans: Vec<fastrace::collector::SpanRecord>) {
        black_box(spans);
    }
}

fn single_calls(c: &mut Criterion) {
    let mut group = c.benchmark_group("call");
    group.bench_function("baseline", |b| b.iter(|| baseline(black_box(7))));

    // Ours. With the macro compiled out every `ours/*` row is the plain function.
    group.bench_function(if cfg!(feature = "macro-on") { "ours/no_init" } else { "ours/compiled_out" }, |b| {
        b.iter(|| ours_4(black_box(7)))
    });
    {
        // OTEL_SDK_DISABLED=true: the runtime switch that turns tracing off without a rebuild.
        let config = kotaemon_trace::config::Config::builder().disabled(true).span_exporter(Discard).build();
        let guard = kotaemon_trace::init_with(config).expect("init");
        group.bench_function("ours/disabled", |b| b.iter(|| ours_4(black_box(7))));
        guard.shutdown().ok();
    }
    {
        let guard = ours(Sampler::AlwaysOff);
        group.bench_function("ours/unsampled_root", |b| b.iter(|| ours_4(black_box(7))));
        // An async root makes its trace id at once: its future may be polled anywhere.
        group.bench_function("ours/unsampled_root_async", |b| b.iter(|| poll_ours_async_4(black_box(7))));
        group.bench_function("ours/no_span_async_baseline", |b| b.iter(|| poll_plain_async(black_box(7))));
        guard.shutdown().ok();
        let guard = ours(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)));
        let unsampled_parent = opentelemetry::trace::SpanContext::new(
            opentelemetry::trace::TraceId::from(1),
            opentelemetry::trace::SpanId::from(1),
            opentelemetry::trace::TraceFlags::default(),
            true,
            Default::default(),
        );
        {
            let _parent = opentelemetry::Context::new().with_remote_span_context(unsampled_parent).attach();
            group.bench_function("ours/unsampled_child", |b| b.iter(|| ours_4(black_box(7))));
        }
        guard.shutdown().ok();
    }
    {
        let guard = ours(Sampler::AlwaysOn);
        lost_share();
        group.bench_function("ours/sampled_0_attrs", |b| b.iter(|| ours_0(black_box(7))));
        group.bench_function("ours/sampled_4_attrs", |b| b.iter(|| ours_4(black_box(7))));
        guard.shutdown().ok();
        eprintln!("ours sampled rows: {:.2} % of spans lost", lost_share());
    }
    // The same with RED metrics recorded for every call (OTEL_METRICS_EXPORTER=prometheus).
    {
        let guard = ours_with_metrics(Sampler::AlwaysOff);
        group.bench_function("ours+metrics/unsampled_root", |b| b.iter(|| ours_4(black_box(7))));
        guard.shutdown().ok();
        let guard = ours_with_metrics(Sampler::AlwaysOn);
        lost_share();
        group.bench_function("ours+metrics/sampled_4_attrs", |b| b.iter(|| ours_4(black_box(7))));
        guard.shutdown().ok();
        eprintln!("ours+metrics sampled rows: {:.2} % of spans lost", lost_share());
    }

    // The raw SDK, same exporter behind its own batch processor.
    for sampled in [false, true] {
        let provider = sdk(sampled);
        let tracer = provider.tracer("bench");
        lost_share();
        let label = if sampled { "sampled" } else { "unsampled" };
        group.bench_function(format!("sdk_in_span/{label}_0_attrs"), |b| b.iter(|| sdk_0(&tracer, black_box(7))));
        group.bench_function(format!("sdk_in_span/{label}_4_attrs"), |b| b.iter(|| sdk_4(&tracer, black_box(7))));
        provider.shutdown().ok();
        if sampled {
            eprintln!("sdk_in_span sampled rows: {:.2} % of spans lost", lost_share());
        }
    }

    // tracing + tracing-opentelemetry over the same SDK pipeline.
    for sampled in [false, true] {
        let provider = sdk(sampled);
        lost_share();
        let subscriber =
            tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bench")));
        let label = if sampled { "sampled" } else { "unsampled" };
        tracing::subscriber::with_default(subscriber, || {
            group.bench_function(format!("tracing_otel/{label}_0_attrs"), |b| b.iter(|| tracing_0(black_box(7))));
            group.bench_function(format!("tracing_otel/{label}_4_attrs"), |b| b.iter(|| tracing_4(black_box(7))));
        });
        provider.shutdown().ok();
        if sampled {
            eprintln!("tracing_otel sampled rows: {:.2} % of spans lost", lost_share());
        }
    }

    // fastrace: no-op without a local parent; sampled under a root span.
    group.bench_function("fastrace/noop", |b| b.iter(|| fastrace_0(black_box(7))));
    // Under one root held for the whole row, fastrace's local buffer fills and later spans are not
    // recorded; a fresh root every 256 calls keeps every span recorded (the root's cost is included,
    // spread over its 256 children).
    group.bench_function("fastrace/sampled_0_attrs", |b| {
        b.iter_custom(|iterations| {
            let started = std::time::Instant::now();
            let mut left = iterations;
            while left > 0 {
                let root = fastrace::Span::root("root", fastrace::collector::SpanContext::random());
                let _parent = root.set_local_parent();
                for _ in 0..left.min(256) {
                    fastrace_0(black_box(7));
                }
                left -= left.min(256);
            }
            started.elapsed()
        })
    });
    group.finish();
}

#[trace_with_otel("bench.root", skip_all)]
fn ours_root(children: usize) {
    for i in 0..children {
        ours_0(i as u64);
    }
}

#[tracing::instrument(name = "bench.root", skip_all)]
fn tracing_root(children: usize) {
    for i in 0..children {
        tracing_0(i as u64);
    }
}

fn trees(c: &mut Criterion) {
    let mut group = c.benchmark_group("tree");
    for children in [10usize, 100] {
        group.throughput(criterion::Throughput::Elements(children as u64 + 1));
        {
            let guard = ours(Sampler::AlwaysOn);
            group.bench_with_input(BenchmarkId::new("ours", children), &children, |b, &n| b.iter(|| ours_root(n)));
            guard.shutdown().ok();
        }
        {
            let provider = sdk(true);
            let tracer = provider.tracer("bench");
            group.bench_with_input(BenchmarkId::new("sdk_in_span", children), &children, |b, &n| {
                b.iter(|| {
                    tracer.in_span("bench.root", |cx| {
                        for i in 0..n {
                            sdk_0(&tracer, i as u64);
                        }
                        cx.span().span_context().is_sampled()
                    })
                })
            });
            provider.shutdown().ok();
        }
        {
            let provider = sdk(true);
            let subscriber = tracing_subscriber::registry()
                .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bench")));
            tracing::subscriber::with_default(subscriber, || {
                group.bench_with_input(BenchmarkId::new("tracing_otel", children), &children, |b, &n| {
                    b.iter(|| tracing_root(n))
                });
            });
            provider.shutdown().ok();
        }
        group.bench_with_input(BenchmarkId::new("fastrace", children), &children, |b, &n| {
            b.iter(|| {
                let root = fastrace::Span::root("bench.root", fastrace::collector::SpanContext::random());
                let _parent = root.set_local_parent();
                for i in 0..n {
                    fastrace_0(i as u64);
                }
            })
        });
    }
    group.finish();
}

fn setup(c: &mut Criterion) {
    fastrace::set_reporter(DiscardReporter, fastrace::collector::Config::default());
    let _ = Discard;
    single_calls(c);
    trees(c);
    fastrace::flush();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2))
        .sample_size(30);
    targets = setup
}
criterion_main!(benches);
