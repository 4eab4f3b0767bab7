//! Cost per request of the server layer (`integrations::tower::ServerLayer`) next to tower-http's
//! `TraceLayer` with tracing-opentelemetry, in one criterion run: the same trivial service, the same
//! request (with a sampled `traceparent`), everything sampled, each exporting through a batch processor to
//! an exporter that discards. One iteration is one request: the service called, its future and its
//! response body polled to the end (no network, no executor). See BENCHMARKS.md.
//!
//! `cargo bench -p kotaemon-trace-benches --bench integrations`

use criterion::{Criterion, criterion_group, criterion_main};
use http_body::Body as _;
use kotaemon_trace::config::Sampler;
use kotaemon_trace::integrations::tower::ServerLayer;
use kotaemon_trace_benches::{ours, ours_with_metrics, sdk};
use opentelemetry::trace::TracerProvider as _;
use std::future::Future;
use std::hint::black_box;
use std::task::{Context, Poll, Waker};
use tower::{Layer as _, Service, ServiceExt as _};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn request() -> http::Request<String> {
    http::Request::get("/orders/42")
        .header("traceparent", TRACEPARENT)
        .header("user-agent", "bench/1.0")
        .header("host", "127.0.0.1:8080")
        .body(String::new())
        .unwrap()
}

/// The service every row wraps: answers at once.
fn handler()
-> impl Service<http::Request<String>, Response = http::Response<String>, Error = std::convert::Infallible> + Clone {
    tower::service_fn(|_: http::Request<String>| async { Ok(http::Response::new(String::from("shipped"))) })
}

/// Polls a future that is ready at once, once.
fn ready<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => unreachable!("nothing here waits"),
    }
}

/// Requests driven, printed at the end: with `valgrind --tool=callgrind --toggle-collect='*integrations::one*'`
/// and one row selected, the instructions collected divided by this are the instructions per request,
/// which a loaded machine does not change.
static REQUESTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// One request through `service`: called, answered, its body read to the end.
#[inline(never)]
fn one<S, B>(service: &S) -> usize
where
    S: Service<http::Request<String>, Response = http::Response<B>> + Clone,
    S::Error: std::fmt::Debug,
    B: http_body::Body,
{
    let response = ready(service.clone().oneshot(request())).unwrap();
    let mut body = std::pin::pin!(response.into_body());
    let mut frames = 0;
    while let Poll::Ready(Some(_)) = body.as_mut().poll_frame(&mut Context::from_waker(Waker::noop())) {
        frames += 1;
    }
    black_box(body.is_end_stream());
    REQUESTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    frames
}

/// Reads the parent from the request's headers, as a user of tower-http must write it.
struct Headers<'a>(&'a http::HeaderMap);

impl opentelemetry::propagation::Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

fn server_layers(c: &mut Criterion) {
    let mut group = c.benchmark_group("server_layer");
    group.bench_function("baseline (no layer)", |b| {
        let service = handler();
        b.iter(|| one(&service))
    });

    let guard = ours(Sampler::AlwaysOn);
    group.bench_function("ours/ServerLayer", |b| {
        let service = ServerLayer::new().layer(handler());
        b.iter(|| one(&service))
    });
    guard.shutdown().ok();

    let guard = ours_with_metrics(Sampler::AlwaysOn);
    group.bench_function("ours/ServerLayer, RED metrics on", |b| {
        let service = ServerLayer::new().layer(handler());
        b.iter(|| one(&service))
    });
    guard.shutdown().ok();

    // tower-http over tracing + tracing-opentelemetry, the SDK's batch processor in front of the same
    // discarding exporter.
    opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    let provider = sdk(true);
    let subscriber =
        tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(provider.tracer("bench")));
    tracing::subscriber::with_default(subscriber, || {
        group.bench_function("tower_http/TraceLayer (defaults, no parent)", |b| {
            let service = tower_http::trace::TraceLayer::new_for_http().layer(handler());
            b.iter(|| one(&service))
        });
        group.bench_function("tower_http/TraceLayer + parent from traceparent", |b| {
            let layer =
                tower_http::trace::TraceLayer::new_for_http().make_span_with(|request: &http::Request<String>| {
                    let span = tracing::info_span!("request", method = %request.method(), uri = %request.uri());
                    let parent =
                        opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(request.headers())));
                    let _ = span.set_parent(parent);
                    span
                });
            let service = layer.layer(handler());
            b.iter(|| one(&service))
        });
    });
    provider.shutdown().ok();
    group.finish();
    eprintln!("requests driven: {}", REQUESTS.load(std::sync::atomic::Ordering::Relaxed));
}

criterion_group!(benches, server_layers);
criterion_main!(benches);
