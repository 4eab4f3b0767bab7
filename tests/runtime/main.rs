//! The pipeline under faults: where export runs, exact drop counts, bounded shutdown, a collector that is
//! down and then up, runtimes of every shape, and what `init()` reports from the environment.
//!
//! Each test installs the process-wide pipeline, so they take `PIPELINE` to run one at a time.

use kotaemon_trace::config::{BatchConfig, Config, ExporterKind, Protocol};
use kotaemon_trace::{init_with, ShutdownError};
use kotaemon_trace_tests::receiver::Receiver;
use opentelemetry::trace::{Span as _, Tracer as _};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use prost::Message as _;
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::Duration;

mod child;
mod dropped_root;
mod recording;

static PIPELINE: Mutex<()> = Mutex::new(());

fn exclusive() -> MutexGuard<'static, ()> {
    PIPELINE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Ends one span named `name` through the globally installed provider.
fn span(name: &str) {
    let tracer = opentelemetry::global::tracer("runtime-test");
    tracer.start(name.to_owned()).end();
}

/// Span names in OTLP request bodies.
fn names_in(bodies: &[Vec<u8>]) -> Vec<String> {
    bodies
        .iter()
        .flat_map(|body| {
            ExportTraceServiceRequest::decode(body.as_slice()).expect("an OTLP protobuf body").resource_spans
        })
        .flat_map(|rs| rs.scope_spans)
        .flat_map(|ss| ss.spans)
        .map(|s| s.name)
        .collect()
}

/// Records what it exports and on which thread.
#[derive(Debug, Default, Clone)]
struct Recording {
    names: Arc<Mutex<Vec<String>>>,
    threads: Arc<Mutex<Vec<String>>>,
}

impl SpanExporter for Recording {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let thread = std::thread::current().name().unwrap_or("unnamed").to_owned();
        self.threads.lock().unwrap().push(thread);
        self.names.lock().unwrap().extend(batch.into_iter().map(|s| s.name.into_owned()));
        Ok(())
    }
}

#[test]
fn export_runs_on_the_export_thread_never_the_callers() {
    let _one = exclusive();
    let exporter = Recording::default();
    let guard = init_with(Config::builder().span_exporter(exporter.clone()).build()).unwrap();
    span("queued");
    guard.force_flush().unwrap();
    assert_eq!(*exporter.names.lock().unwrap(), ["queued"]);
    assert_eq!(*exporter.threads.lock().unwrap(), ["kotaemon-trace-export"]);
    guard.shutdown().unwrap();
}

/// Holds every export until released, so the queue fills up behind it.
#[derive(Debug, Clone)]
struct Gate {
    release: Arc<Mutex<mpsc::Receiver<()>>>,
    exported: Arc<Mutex<usize>>,
}

impl SpanExporter for Gate {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let _ = self.release.lock().unwrap().recv();
        *self.exported.lock().unwrap() += batch.len();
        Ok(())
    }
}

/// Makes 200 spans with `make` against a queue of 8 whose exporter is held shut, then lets it go: the
/// overflow is dropped, and shutdown reports exactly what was not exported.
pub(crate) fn full_queue_drops_and_counts_exactly(make: impl Fn(u64)) {
    let _one = exclusive();
    let (open, release) = mpsc::channel();
    let gate = Gate { release: Arc::new(Mutex::new(release)), exported: Arc::default() };
    let batch = BatchConfig {
        max_queue_size: 8,
        max_export_batch_size: 4,
        schedule_delay: Duration::from_secs(60),
        export_timeout: Duration::from_secs(30),
    };
    let guard = init_with(Config::builder().span_exporter(gate.clone()).batch(batch).build()).unwrap();
    const CREATED: u64 = 200;
    for i in 0..CREATED {
        make(i);
    }
    for _ in 0..CREATED {
        let _ = open.send(());
    }
    let stats = guard.stats();
    assert!(stats.spans_dropped > 0, "the queue of 8 must overflow: {stats:?}");
    let result = guard.shutdown();
    let exported = *gate.exported.lock().unwrap() as u64;
    let Err(ShutdownError::SpansLost { dropped, failed }) = result else {
        panic!("shutdown must report the dropped spans, got {result:?}");
    };
    assert_eq!(failed, 0);
    assert_eq!(exported + dropped, CREATED, "every span is either exported or counted as dropped");
}

#[test]
fn a_full_queue_drops_and_counts_exactly() {
    full_queue_drops_and_counts_exactly(|i| span(&format!("s{i}")));
}

/// An exporter whose export never finishes.
#[derive(Debug, Clone)]
struct Hang;

impl SpanExporter for Hang {
    async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
        std::future::pending::<()>().await;
        Ok(())
    }
}

#[test]
fn shutdown_is_bounded_by_the_export_timeout_when_the_exporter_hangs() {
    let _one = exclusive();
    let batch = BatchConfig { export_timeout: Duration::from_millis(300), ..BatchConfig::default() };
    let guard = init_with(Config::builder().span_exporter(Hang).batch(batch).build()).unwrap();
    span("never-exported");
    // The export is cut at its deadline and counted as failed; shutdown then completes.
    match guard.shutdown() {
        Err(ShutdownError::Export(_)) | Err(ShutdownError::Timeout(_)) => {}
        Err(ShutdownError::SpansLost { failed, .. }) => assert_eq!(failed, 1),
        other => panic!("a hanging exporter must surface in the shutdown result, got {other:?}"),
    }
}

fn free_port() -> std::net::SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

#[test]
fn collector_down_at_start_then_up_receives_new_spans() {
    let _one = exclusive();
    let addr = free_port();
    let config = Config::builder()
        .protocol(Protocol::HttpProtobuf)
        .otlp_endpoint(format!("http://{addr}"))
        .otlp_timeout(Duration::from_millis(500))
        .build();
    let guard = init_with(config).expect("init does not need the collector");
    span("while-down");
    assert!(guard.force_flush().is_err(), "nothing listens yet");
    // The batch that found the collector gone is lost and counted; later spans are held and retried.
    assert_eq!(guard.stats().spans_failed, 1);
    span("held");
    assert!(guard.force_flush().is_err(), "still nothing listens");
    assert_eq!(guard.stats().spans_failed, 1, "the held span is not counted as lost");

    let receiver = Receiver::start_at(addr);
    span("after-up");
    guard.force_flush().expect("the collector is up now");
    assert_eq!(names_in(&receiver.bodies()), ["held", "after-up"]);
    match guard.shutdown() {
        Err(ShutdownError::SpansLost { dropped: 0, failed: 1 }) => {}
        other => panic!("the span sent while down is reported lost, got {other:?}"),
    }
}

#[test]
fn every_span_ended_before_the_guard_drops_arrives() {
    let _one = exclusive();
    let receiver = Receiver::start();
    let guard =
        init_with(Config::builder().protocol(Protocol::HttpProtobuf).otlp_endpoint(receiver.endpoint()).build())
            .unwrap();
    const THREADS: usize = 2;
    const PER_THREAD: usize = 1500;
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            scope.spawn(move || {
                for i in 0..PER_THREAD {
                    span(&format!("t{t}-{i}"));
                    // Thousands per second, the rate of a busy service rather than a tight loop.
                    if i % 100 == 0 {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                }
            });
        }
    });
    drop(guard);
    let mut names = names_in(&receiver.bodies());
    names.sort();
    names.dedup();
    assert_eq!(names.len(), THREADS * PER_THREAD);
}

#[test]
fn works_inside_a_current_thread_tokio_runtime_including_drop() {
    let _one = exclusive();
    let receiver = Receiver::start();
    let endpoint = receiver.endpoint();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async move {
        let guard = init_with(Config::builder().otlp_endpoint(endpoint).build()).unwrap();
        span("inside-async");
        tokio::task::yield_now().await;
        // Dropping inside the runtime must neither panic nor deadlock.
        drop(guard);
    });
    assert_eq!(names_in(&receiver.bodies()), ["inside-async"]);
}

#[test]
fn works_inside_a_multi_thread_tokio_runtime_over_grpc_config() {
    let _one = exclusive();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let addr = free_port();
    runtime.block_on(async move {
        // Nothing listens: building and dropping the gRPC pipeline inside a runtime must still be clean.
        let config = Config::builder()
            .protocol(Protocol::Grpc)
            .otlp_endpoint(format!("http://{addr}"))
            .otlp_timeout(Duration::from_millis(300))
            .build();
        let guard = init_with(config).expect("init does not need the collector");
        span("grpc-down");
        let result = guard.shutdown();
        assert!(
            matches!(result, Err(ShutdownError::SpansLost { failed: 1, .. }) | Err(ShutdownError::Export(_))),
            "{result:?}"
        );
    });
}

#[test]
fn a_disabled_sdk_exports_nothing() {
    let _one = exclusive();
    let exporter = Recording::default();
    let guard = init_with(Config::builder().disabled(true).span_exporter(exporter.clone()).build()).unwrap();
    span("ignored");
    guard.shutdown().unwrap();
    assert!(exporter.names.lock().unwrap().is_empty());
}

#[test]
fn exporter_none_discards_but_counts_as_exported() {
    let _one = exclusive();
    let guard = init_with(Config::builder().exporter(ExporterKind::None).build()).unwrap();
    span("discarded");
    guard.force_flush().unwrap();
    assert_eq!(guard.stats().spans_exported, 1);
    guard.shutdown().unwrap();
}
