//! Logs carry the trace: `tracing` events become events of the current span, the JSON log layer writes
//! the ids the exporter sees, `log` records get them too, and `tracing` spans and annotated functions
//! nest in either order.

use kotaemon_trace::config::Config;
use kotaemon_trace::{init_with, trace_with_otel, TraceGuard};
use opentelemetry::Value;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};
use std::sync::{Arc, Mutex, MutexGuard};
use tracing_subscriber::layer::SubscriberExt as _;

static PIPELINE: Mutex<()> = Mutex::new(());

fn pipeline() -> (MutexGuard<'static, ()>, TraceGuard, InMemorySpanExporter) {
    let one = PIPELINE.lock().unwrap_or_else(|e| e.into_inner());
    let exporter = InMemorySpanExporter::default();
    let guard = init_with(Config::builder().span_exporter(exporter.clone()).build()).unwrap();
    (one, guard, exporter)
}

fn finished(guard: TraceGuard, exporter: &InMemorySpanExporter) -> Vec<SpanData> {
    guard.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    guard.shutdown().unwrap();
    spans
}

/// A writer into a shared buffer, for the JSON layer.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    fn lines(&self) -> Vec<serde_json::Value> {
        String::from_utf8(self.0.lock().unwrap().clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
            .collect()
    }
}

#[trace_with_otel("extract_intent", skip_all)]
fn extract_intent(query: &str) -> usize {
    tracing::info!(words = query.split_whitespace().count(), confident = true, "intent extracted");
    log::warn!("low confidence for {query:?}");
    query.len()
}

#[test]
fn events_become_span_events_and_json_lines_carry_the_ids() {
    let (_one, guard, exporter) = pipeline();
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::registry()
        .with(kotaemon_trace::logs::span_events())
        .with(kotaemon_trace::logs::json(move || writer.clone()));
    tracing::subscriber::with_default(subscriber, || {
        // `log` records reach the layers through tracing-log.
        let _ = tracing_log::LogTracer::init();
        extract_intent("where is my order");
        tracing::info!("outside any span");
    });
    let spans = finished(guard, &exporter);
    let span = spans.iter().find(|s| s.name == "extract_intent").unwrap();
    let event =
        span.events.events.iter().find(|e| e.name == "intent extracted").expect("the tracing event on the span");
    let field = |k: &str| event.attributes.iter().find(|kv| kv.key.as_str() == k).map(|kv| kv.value.clone());
    assert_eq!(field("words"), Some(Value::I64(4)));
    assert_eq!(field("confident"), Some(Value::Bool(true)));
    assert_eq!(field("level"), Some(Value::from("INFO")));

    let lines = buffer.lines();
    let trace_id = span.span_context.trace_id().to_string();
    let span_id = span.span_context.span_id().to_string();
    let info = lines.iter().find(|l| l["message"] == "intent extracted").unwrap();
    assert_eq!(info["trace_id"], trace_id.as_str());
    assert_eq!(info["span_id"], span_id.as_str());
    assert_eq!(info["level"], "INFO");
    assert_eq!(info["fields"]["words"], 4);
    let from_log = lines
        .iter()
        .find(|l| l["message"].as_str().is_some_and(|m| m.starts_with("low confidence")))
        .expect("the log record");
    assert_eq!(from_log["trace_id"], trace_id.as_str(), "log crate records carry the ids too");
    let outside = lines.iter().find(|l| l["message"] == "outside any span").unwrap();
    assert!(outside.get("trace_id").is_none());
}

#[trace_with_otel("ours.outer", skip_all)]
fn ours_outer() {
    let span = tracing::info_span!("tracing.middle");
    let _entered = span.enter();
    ours_inner();
}

#[trace_with_otel("ours.inner", skip_all)]
fn ours_inner() {}

#[test]
fn tracing_spans_and_annotated_functions_nest_in_either_order() {
    let (_one, guard, exporter) = pipeline();
    let tracer = kotaemon_trace::tracer().expect("installed");
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(tracer))
        .with(kotaemon_trace::logs::span_events().outside_tracing_spans());
    tracing::subscriber::with_default(subscriber, || {
        let top = tracing::info_span!("tracing.top");
        let _entered = top.enter();
        ours_outer();
    });
    let spans = finished(guard, &exporter);
    let by_name = |n: &str| spans.iter().find(|s| s.name == n).unwrap_or_else(|| panic!("no {n}"));
    let (top, outer, middle, inner) =
        (by_name("tracing.top"), by_name("ours.outer"), by_name("tracing.middle"), by_name("ours.inner"));
    assert_eq!(outer.parent_span_id, top.span_context.span_id(), "ours inside a tracing span");
    assert_eq!(middle.parent_span_id, outer.span_context.span_id(), "a tracing span inside ours");
    assert_eq!(inner.parent_span_id, middle.span_context.span_id(), "ours inside that again");
    assert!(spans.iter().all(|s| s.span_context.trace_id() == top.span_context.trace_id()));
}

/// Every log record the OTLP receiver was sent, in order.
fn log_records(
    receiver: &kotaemon_trace_tests::receiver::Receiver,
) -> Vec<opentelemetry_proto::tonic::logs::v1::LogRecord> {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use prost::Message as _;
    receiver
        .bodies()
        .iter()
        .filter_map(|body| ExportLogsServiceRequest::decode(body.as_slice()).ok())
        .flat_map(|r| r.resource_logs)
        .flat_map(|r| r.scope_logs)
        .flat_map(|s| s.log_records)
        .collect()
}

#[trace_with_otel("send_reset_link", skip_all)]
fn send_reset_link() {
    tracing::info!(
        user_email = "alice@example.com",
        api_key = "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx",
        attempts = 2,
        "reset link sent to bob@example.com"
    );
}

#[test]
fn otlp_log_records_are_redacted_and_carry_the_trace_and_span_ids() {
    use kotaemon_trace::logs::OtlpLogs;
    use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;

    let _one = PIPELINE.lock().unwrap_or_else(|e| e.into_inner());
    let receiver = kotaemon_trace_tests::receiver::Receiver::start();
    let spans = InMemorySpanExporter::default();
    let config = Config::builder()
        .service_name("otlp-logs-test")
        .span_exporter(spans.clone())
        .protocol(kotaemon_trace::config::Protocol::HttpProtobuf)
        .otlp_logs(Some(format!("{}/v1/logs", receiver.endpoint())))
        .build();
    let guard = init_with(config.clone()).unwrap();
    let logs = OtlpLogs::from_config(&config).unwrap().expect("OTEL_LOGS_EXPORTER=otlp asked for");
    let subscriber = tracing_subscriber::registry().with(logs.layer());
    tracing::subscriber::with_default(subscriber, send_reset_link);
    logs.shutdown().unwrap();
    let spans = finished(guard, &spans);
    let span = spans.iter().find(|s| s.name == "send_reset_link").unwrap();

    let records = log_records(&receiver);
    assert_eq!(records.len(), 1, "one event, one record");
    let record = &records[0];
    let text = |v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>| match v
        .as_ref()
        .and_then(|v| v.value.as_ref())
    {
        Some(Any::StringValue(s)) => s.clone(),
        other => format!("{other:?}"),
    };
    let body = text(&record.body);
    assert_eq!(body, "reset link sent to [REDACTED:email]");
    let attribute = |key: &str| record.attributes.iter().find(|kv| kv.key == key).map(|kv| text(&kv.value));
    assert_eq!(attribute("user_email").as_deref(), Some("[REDACTED:email]"));
    let api_key = attribute("api_key").unwrap();
    assert!(!api_key.contains("AbCdEf"), "{api_key}");
    assert!(api_key.starts_with("[REDACTED"), "{api_key}");
    let whole = format!("{records:?}");
    for secret in ["alice@example.com", "bob@example.com", "AbCdEfGhIjKlMnOp"] {
        assert!(!whole.contains(secret), "{secret} left the process");
    }
    // The record carries the ids of the span it was written in.
    assert_eq!(record.trace_id, span.span_context.trace_id().to_bytes().to_vec());
    assert_eq!(record.span_id, span.span_context.span_id().to_bytes().to_vec());
}

#[trace_with_otel("dropped.log_writer", skip_all)]
fn log_in_dropped_root() -> (String, Option<String>) {
    tracing::info!("written under a root the sampler dropped");
    let mut headers = http::HeaderMap::new();
    kotaemon_trace::propagation::inject(&mut headers);
    (headers["traceparent"].to_str().unwrap().to_owned(), kotaemon_trace::current_trace_id())
}

#[test]
fn logs_under_a_dropped_root_carry_the_trace_it_propagates() {
    use kotaemon_trace::logs::OtlpLogs;

    let _one = PIPELINE.lock().unwrap_or_else(|e| e.into_inner());
    let receiver = kotaemon_trace_tests::receiver::Receiver::start();
    let config = Config::builder()
        .sampler(kotaemon_trace::config::Sampler::AlwaysOff)
        .span_exporter(InMemorySpanExporter::default())
        .protocol(kotaemon_trace::config::Protocol::HttpProtobuf)
        .otlp_logs(Some(format!("{}/v1/logs", receiver.endpoint())))
        .build();
    let guard = init_with(config.clone()).unwrap();
    let logs = OtlpLogs::from_config(&config).unwrap().expect("OTEL_LOGS_EXPORTER=otlp asked for");
    let json = Buffer::default();
    let writer = json.clone();
    let subscriber =
        tracing_subscriber::registry().with(logs.layer()).with(kotaemon_trace::logs::json(move || writer.clone()));
    let calls: Vec<(String, Option<String>)> =
        tracing::subscriber::with_default(subscriber, || (0..3).map(|_| log_in_dropped_root()).collect());
    logs.shutdown().unwrap();
    guard.shutdown().unwrap();

    let records = log_records(&receiver);
    assert_eq!(records.len(), 3);
    let lines = json.lines();
    assert_eq!(lines.len(), 3);
    for (i, (traceparent, current)) in calls.iter().enumerate() {
        let trace_id = traceparent.split('-').nth(1).unwrap();
        assert_eq!(current.as_deref(), Some(trace_id));
        let hex: String = records[i].trace_id.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, trace_id, "OTLP record {i} carries the trace the root propagated");
        assert_eq!(records[i].flags & 1, 0, "not sampled");
        assert_eq!(lines[i]["trace_id"], trace_id, "JSON line {i} too");
    }
    assert_ne!(calls[1].0, calls[2].0, "one trace per root");
}
