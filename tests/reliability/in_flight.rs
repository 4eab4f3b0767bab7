//! While an export request is in flight, the export thread keeps taking spans off the queue into the
//! next batch: a collector that is slow to answer costs queue room only once the queue and one more
//! batch are full. Checked against a real loopback OTLP/HTTP receiver that keeps the first request
//! waiting until the test lets it go; counts only, never times.

use crate::exclusive;
use kotaemon_trace::config::{BatchConfig, Config, Protocol};
use kotaemon_trace::{init_with, ShutdownError};
use kotaemon_trace_tests::receiver::Receiver;
use opentelemetry::trace::{Span as _, Tracer as _};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use std::time::{Duration, Instant};

const QUEUE: usize = 256;
const BATCH: usize = 64;

fn names(body: &[u8]) -> Vec<String> {
    ExportTraceServiceRequest::decode(body)
        .expect("an OTLP protobuf body")
        .resource_spans
        .into_iter()
        .flat_map(|rs| rs.scope_spans)
        .flat_map(|ss| ss.spans)
        .map(|s| s.name)
        .collect()
}

#[test]
fn the_queue_and_one_more_batch_are_kept_while_a_request_is_in_flight() {
    let _one = exclusive();
    let receiver = Receiver::holding_first();
    // Long timeouts and timer: only full batches move, and the held request stays in flight until the
    // test lets it go (every wait below is bounded by its own deadline).
    let config = Config::builder()
        .service_name("in-flight")
        .protocol(Protocol::HttpProtobuf)
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
    let tracer = opentelemetry::global::tracer("in-flight");
    let mut made = 0usize;
    let mut span = || {
        tracer.start(format!("s-{made}")).end();
        made += 1;
        made
    };

    // A full batch goes out and is held by the receiver.
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.bodies().is_empty() {
        assert!(Instant::now() < deadline, "the first batch never reached the receiver");
        if span() >= BATCH {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let first = names(&receiver.bodies()[0]).len();
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
    let bodies = receiver.bodies();
    let mut arrived: Vec<String> = bodies.iter().flat_map(|body| names(body)).collect();
    assert!(bodies.iter().all(|body| names(body).len() <= BATCH));
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
