//! The real Jaeger killed (SIGKILL: a crash) and restarted in the middle of a steady run. Spans made while
//! it is down, up to the queue's capacity, arrive after it comes back; the rest are counted as dropped;
//! the callers never wait; shutdown ends within its timeout; every span is exported, dropped or failed.

use crate::exclusive;
use kotaemon_trace::config::{BatchConfig, Config, Protocol};
use kotaemon_trace::{init_with, ExportStats, ShutdownError, TraceGuard};
use kotaemon_trace_tests::jaeger::{spans, unique_service, JaegerProcess};
use opentelemetry::trace::{Span as _, Tracer as _};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const QUEUE: usize = 2000;
const BATCH: usize = 200;
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// Makes `count` spans named `{phase}-{i}`, one every `pause`; returns how many were made and the longest
/// single call (printed as a figure; the test asserts counts, not times).
fn steady(phase: &str, count: usize, pause: Duration) -> (u64, Duration) {
    let tracer = opentelemetry::global::tracer("flapping");
    let mut longest = Duration::ZERO;
    for i in 0..count {
        let started = Instant::now();
        tracer.start(format!("{phase}-{i}")).end();
        longest = longest.max(started.elapsed());
        if !pause.is_zero() {
            std::thread::sleep(pause);
        }
    }
    (count as u64, longest)
}

/// Keeps making `transition-…` spans until the exporter has noticed the collector is gone (bounded).
fn until_failure_noticed(guard: &TraceGuard, label: &str) -> u64 {
    let tracer = opentelemetry::global::tracer("flapping");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut made = 0;
    while guard.stats().spans_failed == 0 {
        assert!(Instant::now() < deadline, "{label}: the exporter never noticed the collector was gone");
        tracer.start(format!("transition-{made}")).end();
        made += 1;
        std::thread::sleep(Duration::from_millis(5));
    }
    made
}

/// Names of the spans Jaeger holds for `service`, counted by phase (the part before the last '-'); polls
/// until `ready` accepts the counts (Jaeger ingests asynchronously) or 30 s pass.
fn arrived(
    jaeger: &JaegerProcess,
    service: &str,
    ready: impl Fn(&HashMap<String, usize>) -> bool,
) -> HashMap<String, usize> {
    let count = |traces: &[serde_json::Value]| {
        let mut names: Vec<String> =
            traces.iter().flat_map(|t| spans(t).into_iter().map(|s| s.name().to_owned())).collect();
        names.sort();
        names.dedup();
        let mut phases = HashMap::new();
        for name in names {
            let phase = name.rsplit_once('-').map_or(name.as_str(), |(p, _)| p).to_owned();
            *phases.entry(phase).or_insert(0) += 1;
        }
        phases
    };
    let traces = jaeger.jaeger.traces(service, 20_000, Duration::from_secs(30), |traces| ready(&count(traces)));
    count(&traces)
}

fn config(jaeger: &JaegerProcess, service: &str) -> Config {
    Config::builder()
        .service_name(service)
        .protocol(Protocol::Grpc)
        .otlp_endpoint(jaeger.jaeger.otlp_grpc.clone())
        .otlp_timeout(Duration::from_secs(2))
        .batch(BatchConfig {
            max_queue_size: QUEUE,
            max_export_batch_size: BATCH,
            schedule_delay: Duration::from_millis(100),
            export_timeout: EXPORT_TIMEOUT,
        })
        .build()
}

fn shutdown_within_timeout(guard: TraceGuard, label: &str) -> (Result<(), ShutdownError>, ExportStats) {
    let started = Instant::now();
    let stats_before = guard.stats();
    let result = guard.shutdown();
    let took = started.elapsed();
    eprintln!("{label}: shutdown took {took:?} ({result:?}); stats before it {stats_before:?}");
    assert!(took <= EXPORT_TIMEOUT + Duration::from_millis(500), "{label}: shutdown took {took:?}");
    (result, stats_before)
}

#[test]
fn spans_made_while_jaeger_is_down_arrive_when_it_comes_back() {
    let _one = exclusive();
    let label = "spans_made_while_jaeger_is_down_arrive_when_it_comes_back";
    let Some(mut jaeger) = JaegerProcess::spawn(label, None) else { return };
    let service = unique_service("flapping");
    let guard = init_with(config(&jaeger, &service)).unwrap();
    let pause = Duration::from_millis(2);

    let (before, _) = steady("before", 300, pause);
    jaeger.kill();
    let transition = until_failure_noticed(&guard, label);
    let (down, longest_down) = steady("down", 1000, pause);
    let failed_at_restart = guard.stats().spans_failed;
    jaeger.restart(label);
    let (after, _) = steady("after", 300, pause);

    let created = before + transition + down + after;
    let (result, _) = shutdown_within_timeout_and_count(guard, label, created);
    let phases = arrived(&jaeger, &service, |p| {
        p.get("down") == Some(&(down as usize)) && p.get("after") == Some(&(after as usize))
    });
    eprintln!("{label}: created {created} (before {before}, transition {transition}, down {down}, after {after}); arrived after the restart {phases:?}; longest call while down {longest_down:?}; {result:?}");
    assert_eq!(phases.get("down").copied(), Some(down as usize), "every span made while Jaeger was down arrives");
    assert_eq!(phases.get("after").copied(), Some(after as usize));
    assert_eq!(phases.get("before"), None, "the restarted Jaeger starts empty (in-memory storage)");
    match result {
        Ok(()) => panic!("the batch in flight when Jaeger died is lost and must be reported"),
        Err(ShutdownError::SpansLost { dropped: 0, failed }) => {
            assert_eq!(failed, failed_at_restart, "nothing failed after the spans were held");
            assert!(failed <= 2 * BATCH as u64, "only the batch(es) in flight at the crash are lost: {failed}");
        }
        Err(other) => panic!("{label}: {other:?}"),
    }
}

fn shutdown_within_timeout_and_count(
    guard: TraceGuard,
    label: &str,
    created: u64,
) -> (Result<(), ShutdownError>, ExportStats) {
    guard.force_flush().expect("Jaeger is back: the held spans go out");
    let stats = guard.stats();
    assert_eq!(
        stats.spans_exported + stats.spans_dropped + stats.spans_failed,
        created,
        "{label}: every span is exported, dropped or failed: {stats:?}"
    );
    let (result, _) = shutdown_within_timeout(guard, label);
    (result, stats)
}

#[test]
fn beyond_the_queue_spans_are_dropped_and_counted_while_jaeger_is_down() {
    let _one = exclusive();
    let label = "beyond_the_queue_spans_are_dropped_and_counted_while_jaeger_is_down";
    let Some(mut jaeger) = JaegerProcess::spawn(label, None) else { return };
    let service = unique_service("overflow");
    let guard = init_with(config(&jaeger, &service)).unwrap();

    let (before, _) = steady("before", 200, Duration::from_millis(2));
    jaeger.kill();
    let transition = until_failure_noticed(&guard, label);
    let failed_at_down = guard.stats().spans_failed;
    // As fast as possible, three times what the queue holds: the callers must not wait for the collector.
    let started = Instant::now();
    let (over, longest) = steady("over", 3 * QUEUE, Duration::ZERO);
    let flood_took = started.elapsed();
    let dropped = guard.stats().spans_dropped;
    eprintln!("{label}: {over} spans in {flood_took:?} while down (longest call {longest:?}); {dropped} dropped");
    assert!(dropped >= over - (QUEUE + BATCH) as u64, "at most the queue and one held batch are kept: {dropped}");

    // Shutdown while Jaeger is still down ends within its timeout and reports the held spans as failed.
    jaeger.restart(label);
    let created = before + transition + over;
    let (result, stats) = shutdown_within_timeout_and_count(guard, label, created);
    assert_eq!(stats.spans_failed, failed_at_down, "the held spans were delivered, not lost");
    let expected = over - stats.spans_dropped;
    let phases = arrived(&jaeger, &service, |p| p.get("over").is_some_and(|n| *n as u64 >= expected));
    let over_arrived = phases.get("over").copied().unwrap_or(0) as u64;
    eprintln!(
        "{label}: {over_arrived} of {over} arrived after the restart, {} dropped; {phases:?}",
        stats.spans_dropped
    );
    assert_eq!(
        over_arrived + stats.spans_dropped,
        over,
        "each span made while down either arrives or is counted dropped"
    );
    assert!(over_arrived >= (QUEUE - transition as usize) as u64, "the queue's worth arrives: {over_arrived}");
    assert!(matches!(result, Err(ShutdownError::SpansLost { .. })), "{result:?}");
}

#[test]
fn shutdown_while_jaeger_is_down_is_bounded_and_counts_the_held_spans() {
    let _one = exclusive();
    let label = "shutdown_while_jaeger_is_down_is_bounded_and_counts_the_held_spans";
    let Some(mut jaeger) = JaegerProcess::spawn(label, None) else { return };
    let service = unique_service("down-at-exit");
    let guard = init_with(config(&jaeger, &service)).unwrap();
    let (before, _) = steady("before", 100, Duration::from_millis(2));
    jaeger.kill();
    let transition = until_failure_noticed(&guard, label);
    let (down, _) = steady("down", 500, Duration::ZERO);
    let created = before + transition + down;
    let (result, stats) = shutdown_within_timeout(guard, label);
    let Err(ShutdownError::SpansLost { dropped, failed }) = result else { panic!("{label}: {result:?}") };
    assert_eq!(stats.spans_exported + dropped + failed, created, "{stats:?}");
    assert!(failed >= down, "the held spans count as failed when the collector never came back: {failed}");
}
