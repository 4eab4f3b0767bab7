//! Failure inside traced code: panics end the span with status Error and an escaped exception while the
//! panic keeps unwinding with its payload; futures dropped before completion end their span marked
//! cancelled. No span is left open.

use kotaemon_trace::{trace_with_otel, WithCurrentSpan as _};
use kotaemon_trace_tests::capture::{attr, capture, capture_async, named};
use opentelemetry::trace::Status;
use opentelemetry::Value;
use std::time::Duration;

#[trace_with_otel]
fn explode(code: u32) -> u32 {
    if code > 0 {
        panic!("retriever index corrupted (code {code})");
    }
    code
}

fn exception_field(span: &opentelemetry_sdk::trace::SpanData, key: &str) -> Option<Value> {
    span.events
        .events
        .iter()
        .find(|e| e.name == "exception")
        .and_then(|e| e.attributes.iter().find(|kv| kv.key.as_str() == key))
        .map(|kv| kv.value.clone())
}

#[test]
fn a_sync_panic_ends_the_span_as_an_error_and_keeps_unwinding() {
    let (caught, spans) = capture(|| std::panic::catch_unwind(|| explode(7)));
    let payload = caught.expect_err("the panic propagates");
    assert_eq!(
        payload.downcast_ref::<String>().map(String::as_str),
        Some("retriever index corrupted (code 7)"),
        "payload unchanged"
    );
    let span = named(&spans, "explode");
    assert_eq!(span.status, Status::error("panicked: retriever index corrupted (code 7)"));
    assert_eq!(exception_field(span, "exception.escaped"), Some(Value::Bool(true)));
    assert_eq!(exception_field(span, "exception.message"), Some(Value::from("retriever index corrupted (code 7)")));
}

#[trace_with_otel]
async fn explode_later(code: u32) -> u32 {
    tokio::task::yield_now().await;
    if code > 0 {
        panic!("tool crashed with {code}");
    }
    code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_panic_in_a_task_ends_the_span_as_an_error() {
    let (joined, spans) = capture_async(async { tokio::spawn(explode_later(3).with_current_span()).await }).await;
    let error = joined.expect_err("the task panicked");
    assert!(error.is_panic());
    assert_eq!(error.into_panic().downcast_ref::<String>().map(String::as_str), Some("tool crashed with 3"));
    let span = named(&spans, "explode_later");
    assert_eq!(span.status, Status::error("panicked: tool crashed with 3"));
    assert_eq!(attr(span, "kotaemon.cancelled"), None, "a panic is not a cancellation");
}

#[trace_with_otel]
async fn slow_generation(prompt: &str) -> usize {
    tokio::time::sleep(Duration::from_secs(30)).await;
    prompt.len()
}

#[trace_with_otel]
async fn quick(x: u32) -> u32 {
    x
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_future_dropped_by_a_timeout_or_a_lost_select_ends_marked_cancelled() {
    let ((), spans) = capture_async(async {
        assert!(tokio::time::timeout(Duration::from_millis(20), slow_generation("hi")).await.is_err());
        tokio::select! {
            biased; // the slow branch is polled first, so its span starts before `quick` wins
            _ = slow_generation("lost race") => unreachable!("the other branch wins"),
            v = quick(1) => assert_eq!(v, 1),
        }
    })
    .await;
    let slow: Vec<_> = spans.iter().filter(|s| s.name == "slow_generation").collect();
    assert_eq!(slow.len(), 2, "both dropped futures ended their spans");
    for span in slow {
        assert_eq!(attr(span, "kotaemon.cancelled"), Some(&Value::Bool(true)));
        assert_eq!(span.status, Status::Unset);
    }
    assert_eq!(attr(named(&spans, "quick"), "kotaemon.cancelled"), None, "a completed future is not cancelled");
}
