//! `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`, `OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT`, `OTEL_SPAN_EVENT_COUNT_LIMIT`:
//! values cut on a character boundary, counts capped, and both counted in `TraceGuard::stats()`.

use crate::exclusive;
use kotaemon_trace::config::{Config, Limits};
use kotaemon_trace::{init_with, record, trace_with_otel};
use opentelemetry::trace::{Span as _, Tracer as _};
use opentelemetry::{Array, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::InMemorySpanExporter;
use std::collections::HashMap;

fn from_env(vars: &[(&str, &str)]) -> Config {
    // `Config::from_env` reads the process environment; tests must not change it, so the same
    // variables go through the builder from a parsed copy (the env parser has its own unit tests).
    let map: HashMap<&str, &str> = vars.iter().copied().collect();
    let number = |name: &str| map.get(name).map(|v| v.parse::<u32>().expect("a number"));
    let limits = Limits {
        attribute_value_length: map.get("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT").map(|v| v.parse().expect("a number")),
        attributes_per_span: number("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT").unwrap_or(128),
        events_per_span: number("OTEL_SPAN_EVENT_COUNT_LIMIT").unwrap_or(128),
        ..Limits::default()
    };
    Config::builder().limits(limits).build()
}

#[test]
fn long_values_are_cut_on_a_character_boundary_and_counted() {
    let _one = exclusive();
    let exporter = InMemorySpanExporter::default();
    let config =
        from_env(&[("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "5")]).into_builder().span_exporter(exporter.clone()).build();
    let guard = init_with(config).unwrap();
    let tracer = opentelemetry::global::tracer("limits");
    let mut span = tracer.start("long-values");
    span.set_attribute(KeyValue::new("cjk", "日本語のテキストです")); // 3-byte characters
    span.set_attribute(KeyValue::new("emoji", "🦀🦀🦀🦀🦀🦀🦀")); // 4-byte characters
    span.set_attribute(KeyValue::new("mixed", "aé🦀bcdef"));
    span.set_attribute(KeyValue::new("short", "five!"));
    span.set_attribute(KeyValue::new("number", 1234567890_i64));
    span.set_attribute(KeyValue::new(
        "list",
        Value::Array(Array::String(vec![StringValue::from("abcdefgh"), StringValue::from("ok")])),
    ));
    span.add_event("e", vec![KeyValue::new("event.text", "ééééééé")]);
    span.end();
    guard.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let get = |k: &str| spans[0].attributes.iter().find(|kv| kv.key.as_str() == k).map(|kv| kv.value.clone());
    assert_eq!(get("cjk"), Some("日本語のテ".into()));
    assert_eq!(get("emoji"), Some("🦀🦀🦀🦀🦀".into()));
    assert_eq!(get("mixed"), Some("aé🦀bc".into()));
    assert_eq!(get("short"), Some("five!".into()), "a value exactly at the limit is kept whole");
    assert_eq!(get("number"), Some(1234567890_i64.into()), "only strings are cut");
    assert_eq!(get("list"), Some(Value::Array(Array::String(vec!["abcde".into(), "ok".into()]))));
    assert_eq!(spans[0].events.events[0].attributes[0].value, Value::from("ééééé"));
    let stats = guard.stats();
    assert_eq!(stats.attribute_values_truncated, 5, "cjk, emoji, mixed, one list item, the event's: {stats:?}");
    assert_eq!((stats.attributes_dropped, stats.events_dropped), (0, 0));
    guard.shutdown().unwrap();
}

#[trace_with_otel("chatty")]
fn chatty(arguments: u32) {
    for i in 0..40 {
        record(format!("extra.{i}"), i64::from(i));
    }
    for i in 0..25 {
        opentelemetry::trace::get_active_span(|span| span.add_event(format!("step {i}"), vec![]));
    }
    let _ = arguments;
}

#[test]
fn attribute_and_event_counts_are_capped_and_counted() {
    let _one = exclusive();
    let exporter = InMemorySpanExporter::default();
    let config = from_env(&[("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "16"), ("OTEL_SPAN_EVENT_COUNT_LIMIT", "10")])
        .into_builder()
        .span_exporter(exporter.clone())
        .build();
    let guard = init_with(config).unwrap();
    chatty(1);
    chatty(2);
    guard.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 2);
    for span in &spans {
        assert_eq!(span.attributes.len(), 16, "capped at OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT");
        // 1 argument + 40 recorded = 41 attributes offered.
        assert_eq!(span.dropped_attributes_count, 41 - 16);
        assert_eq!(span.events.len(), 10, "capped at OTEL_SPAN_EVENT_COUNT_LIMIT");
        assert_eq!(span.events.dropped_count, 15);
        assert_eq!(span.attributes[0].key.as_str(), "arguments", "the first attributes are the ones kept");
    }
    let stats = guard.stats();
    assert_eq!(stats.attributes_dropped, 2 * 25, "{stats:?}");
    assert_eq!(stats.events_dropped, 2 * 15, "{stats:?}");
    assert_eq!(stats.attribute_values_truncated, 0);
    guard.shutdown().unwrap();
}
