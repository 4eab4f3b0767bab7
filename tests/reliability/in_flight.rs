//! While an export request is in flight, the export thread keeps taking spans off the queue into the
//! next batch: a collector that is slow to answer costs queue room only once the queue and one more
//! batch are full. Checked over both transports against real loopback OTLP receivers (HTTP/protobuf,
//! and a tonic gRPC server) that keep the first request waiting until the test lets it go; counts only,
//! never times.

use crate::exclusive;
use kotaemon_trace::config::{BatchConfig, Config, Protocol};
use kotaemon_trace::{init_with, ShutdownError};
use kotaemon_trace_tests::receiver::Receiver;
use opentelemetry::trace::{Span as _, Tracer as _};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use prost::Message as _;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const QUEUE: usize = 256;
const BATCH: usize = 64;

fn names(request: ExportTraceServiceRequest) -> Vec<String> {
    request.resource_spans.into_iter().flat_map(|rs| rs.scope_spans).flat_map(|ss| ss.spans).map(|s| s.name).collect()
}

/// The span names of each request received, in arrival order.
type Received = Arc<Mutex<Vec<Vec<String>>>>;

const EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// OTLP/gRPC's trace service, hand-written over tonic's codec: keeps each request's span names and, while
/// `hold` is set, leaves the first one waiting for its answer.
#[derive(Clone)]
struct TraceService {
    received: Received,
    hold: Arc<AtomicBool>,
}

impl tonic::server::NamedService for TraceService {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}

impl<B> tower::Service<http::Request<B>> for TraceService
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let service = self.clone();
        Box::pin(async move {
            if request.uri().path() != EXPORT {
                return Ok(tonic::Status::unimplemented("no such method").into_http());
            }
            let method = tower::service_fn(move |request: tonic::Request<ExportTraceServiceRequest>| {
                let service = service.clone();
                async move {
                    let first = {
                        let mut received = service.received.lock().unwrap();
                        received.push(names(request.into_inner()));
                        received.len() == 1
                    };
                    while first && service.hold.load(Ordering::SeqCst) {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                    }
                    Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
                }
            });
            let codec = tonic_prost::ProstCodec::<ExportTraceServiceResponse, ExportTraceServiceRequest>::default();
            Ok(tonic::server::Grpc::new(codec).unary(method, request).await)
        })
    }
}

/// A loopback collector that keeps the first request waiting until released.
enum Held {
    Http(Receiver),
    /// The runtime serves until the receiver is dropped.
    Grpc {
        _runtime: tokio::runtime::Runtime,
        endpoint: String,
        service: TraceService,
    },
}

impl Held {
    fn start(protocol: Protocol) -> Held {
        match protocol {
            Protocol::HttpProtobuf => Held::Http(Receiver::holding_first()),
            _ => {
                let runtime =
                    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
                let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("a free port");
                let endpoint = format!("http://{}", listener.local_addr().unwrap());
                let service = TraceService { received: Received::default(), hold: Arc::new(AtomicBool::new(true)) };
                let incoming = tonic::transport::server::TcpIncoming::from(listener);
                runtime.spawn(
                    tonic::transport::Server::builder().add_service(service.clone()).serve_with_incoming(incoming),
                );
                Held::Grpc { _runtime: runtime, endpoint, service }
            }
        }
    }

    fn endpoint(&self) -> String {
        match self {
            Held::Http(receiver) => receiver.endpoint(),
            Held::Grpc { endpoint, .. } => endpoint.clone(),
        }
    }

    /// The span names of each request received so far, the held one included.
    fn requests(&self) -> Vec<Vec<String>> {
        match self {
            Held::Http(receiver) => receiver
                .bodies()
                .iter()
                .map(|body| names(ExportTraceServiceRequest::decode(body.as_slice()).expect("an OTLP protobuf body")))
                .collect(),
            Held::Grpc { service, .. } => service.received.lock().unwrap().clone(),
        }
    }

    fn release(&self) {
        match self {
            Held::Http(receiver) => receiver.release(),
            Held::Grpc { service, .. } => service.hold.store(false, Ordering::SeqCst),
        }
    }
}

/// Releases the held request when dropped: declared after the pipeline, so a failed assertion lets the
/// request go before the pipeline's shutdown waits for it.
struct ReleaseOnDrop<'a>(&'a Held);

impl Drop for ReleaseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.release();
    }
}

#[test]
fn over_http_the_queue_and_one_more_batch_are_kept_while_a_request_is_in_flight() {
    the_queue_and_one_more_batch_are_kept_while_a_request_is_in_flight(Protocol::HttpProtobuf);
}

#[test]
fn over_grpc_the_queue_and_one_more_batch_are_kept_while_a_request_is_in_flight() {
    the_queue_and_one_more_batch_are_kept_while_a_request_is_in_flight(Protocol::Grpc);
}

fn the_queue_and_one_more_batch_are_kept_while_a_request_is_in_flight(protocol: Protocol) {
    let _one = exclusive();
    let receiver = Held::start(protocol);
    // Long timeouts and timer: only full batches move, and the held request stays in flight until the
    // test lets it go (every wait below is bounded by its own deadline).
    let config = Config::builder()
        .service_name("in-flight")
        .protocol(protocol)
        .otlp_endpoint(receiver.endpoint())
        .otlp_timeout(Duration::from_secs(120))
        .batch(BatchConfig {
            max_queue_size: QUEUE,
            max_export_batch_size: BATCH,
            schedule_delay: Duration::from_secs(120),
            export_timeout: Duration::from_secs(120),
        })
        .build();
    let guard = init_with(config).unwrap();
    let _release = ReleaseOnDrop(&receiver);
    let tracer = opentelemetry::global::tracer("in-flight");
    let mut made = 0usize;
    let mut span = || {
        tracer.start(format!("s-{made}")).end();
        made += 1;
        made
    };

    // A full batch goes out and is held by the receiver.
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.requests().is_empty() {
        assert!(Instant::now() < deadline, "the first batch never reached the receiver");
        if span() >= BATCH {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let first = receiver.requests()[0].len();
    assert_eq!(first, BATCH, "a ring sends a full batch");

    // While it is held: the request's batch, one batch being assembled, and the queue. The export thread
    // takes its batch when rung, which on a loaded machine may come after the queue first filled: spans
    // are made until exactly that many were accepted, then a batch more, every one of them dropped.
    let kept = first + BATCH + QUEUE;
    let accepted = |made: usize| made - guard.stats().spans_dropped as usize;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let made = span();
        let now = accepted(made);
        assert!(now <= kept, "more than the queue and one batch were taken while a request was in flight: {now}");
        if now == kept {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {now} of {kept} spans were accepted while the request was in flight: the queue was not drained \
             into the next batch"
        );
        if made % 16 == 0 {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    for _ in 0..BATCH {
        let made = span();
        assert_eq!(accepted(made), kept, "nothing more is taken until the request in flight is answered");
        std::thread::sleep(Duration::from_millis(1));
    }
    let stats = guard.stats();
    assert_eq!(stats.spans_dropped as usize, made - kept, "{stats:?}");
    assert_eq!(stats.spans_exported, 0, "the first request is not answered yet: {stats:?}");

    // Answered: every span kept arrives, in batches of at most BATCH, each once; nothing fails.
    receiver.release();
    guard.force_flush().expect("the receiver answers now");
    let requests = receiver.requests();
    assert!(requests.iter().all(|names| names.len() <= BATCH));
    let mut arrived: Vec<String> = requests.into_iter().flatten().collect();
    let total = arrived.len();
    arrived.sort();
    arrived.dedup();
    assert_eq!((total, arrived.len()), (kept, kept), "each kept span arrives once");
    let stats = guard.stats();
    assert_eq!(
        (stats.spans_exported as usize, stats.spans_dropped as usize, stats.spans_failed),
        (kept, made - kept, 0),
        "{stats:?}"
    );
    match guard.shutdown() {
        Err(ShutdownError::SpansLost { dropped, failed: 0 }) => assert_eq!(dropped as usize, made - kept),
        other => panic!("the dropped spans are reported at shutdown: {other:?}"),
    }
}
