//! Logs that carry the trace: `tracing` events become span events (a log line on the span in Jaeger),
//! and a JSON log layer writes every event with the `trace_id` and `span_id` Jaeger shows, so logs and
//! traces join on `trace_id`.
//!
//! ```
//! use tracing_subscriber::layer::SubscriberExt as _;
//!
//! let subscriber = tracing_subscriber::registry()
//!     .with(kotaemon_trace::logs::span_events())          // events → the current span's events
//!     .with(kotaemon_trace::logs::json(std::io::stdout)); // one JSON object per line, with ids
//! tracing::subscriber::with_default(subscriber, || {
//!     tracing::info!(order_id = 1042, "order found");
//! });
//! ```
//!
//! To make `tracing` spans OpenTelemetry spans too (so they nest with annotated functions in either
//! order), add `tracing_opentelemetry::layer().with_tracer(kotaemon_trace::tracer().unwrap())` and use
//! `span_events().outside_tracing_spans()`; its default context activation makes an entered `tracing`
//! span the current OpenTelemetry context. Records of the `log` crate reach these layers through
//! `tracing-log` (tracing-subscriber's `init()` installs it).
//!
//! With the cargo feature `otlp-logs`, `OtlpLogs` also exports events as OTLP log records through the
//! OpenTelemetry Logs SDK when `OTEL_LOGS_EXPORTER=otlp`, redacted like span data.

use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::{Context, KeyValue};
use std::fmt::Write as _;
use std::sync::Mutex;

#[cfg(feature = "otlp-logs")]
pub use crate::api::logs_otlp::OtlpLogs;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context as LayerContext;
use tracing_subscriber::registry::LookupSpan;

/// Collects an event's fields: the message apart, the rest typed.
#[derive(Default)]
struct Fields {
    message: Option<String>,
    values: Vec<(&'static str, FieldValue)>,
}

enum FieldValue {
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
    Str(String),
}

impl Visit for Fields {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.values.push((field.name(), FieldValue::I64(value)));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.values.push((field.name(), FieldValue::U64(value)));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.values.push((field.name(), FieldValue::F64(value)));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.values.push((field.name(), FieldValue::Bool(value)));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_owned());
        } else {
            self.values.push((field.name(), FieldValue::Str(value.to_owned())));
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = Some(format!("{value:?}"));
        } else {
            self.values.push((field.name(), FieldValue::Str(format!("{value:?}"))));
        }
    }
}

impl FieldValue {
    fn to_otel(&self) -> opentelemetry::Value {
        match self {
            FieldValue::I64(v) => (*v).into(),
            FieldValue::U64(v) => i64::try_from(*v).map(Into::into).unwrap_or_else(|_| v.to_string().into()),
            FieldValue::F64(v) => (*v).into(),
            FieldValue::Bool(v) => (*v).into(),
            FieldValue::Str(v) => v.clone().into(),
        }
    }

    fn to_json(&self) -> serde_json::Value {
        match self {
            FieldValue::I64(v) => (*v).into(),
            FieldValue::U64(v) => (*v).into(),
            FieldValue::F64(v) => (*v).into(),
            FieldValue::Bool(v) => (*v).into(),
            FieldValue::Str(v) => v.clone().into(),
        }
    }
}

/// A layer that adds each `tracing` event to the current span as an event named by its message, with
/// `level`, `target` and the event's fields as attributes (redacted on export like everything else).
///
/// With `tracing-opentelemetry` in the same subscriber, call
/// [`SpanEvents::outside_tracing_spans`]: that layer already records events that happen inside
/// `tracing` spans, and this one then only adds those made directly in annotated functions.
pub fn span_events() -> SpanEvents {
    SpanEvents { outside_tracing_spans: false }
}

/// See [`span_events`].
#[derive(Debug)]
pub struct SpanEvents {
    outside_tracing_spans: bool,
}

impl SpanEvents {
    /// Records only events made outside any `tracing` span (use with `tracing-opentelemetry`).
    ///
    /// ```
    /// let layer = kotaemon_trace::logs::span_events().outside_tracing_spans();
    /// # drop(layer);
    /// ```
    pub fn outside_tracing_spans(mut self) -> Self {
        self.outside_tracing_spans = true;
        self
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for SpanEvents {
    fn on_event(&self, event: &Event<'_>, ctx: LayerContext<'_, S>) {
        if self.outside_tracing_spans && ctx.lookup_current().is_some() {
            return;
        }
        Context::map_current(|cx| {
            let span = cx.span();
            if !span.is_recording() {
                return;
            }
            let mut fields = Fields::default();
            event.record(&mut fields);
            let meta = event.metadata();
            let mut attributes = Vec::with_capacity(fields.values.len() + 2);
            attributes.push(KeyValue::new("level", meta.level().as_str()));
            attributes.push(KeyValue::new("target", meta.target().to_owned()));
            for (name, value) in &fields.values {
                attributes.push(KeyValue::new(*name, value.to_otel()));
            }
            let name = fields.message.unwrap_or_else(|| meta.name().to_owned());
            span.add_event(name, attributes);
        });
    }
}

/// A layer writing each event as one JSON object per line: `timestamp` (RFC 3339, UTC), `level`,
/// `target`, `message`, `fields`, and `trace_id` / `span_id` (W3C hex) when a span is current.
///
/// ```
/// use tracing_subscriber::layer::SubscriberExt as _;
/// let subscriber = tracing_subscriber::registry().with(kotaemon_trace::logs::json(std::io::stderr));
/// # drop(subscriber);
/// ```
pub fn json<W, M>(make_writer: M) -> JsonLogs<M>
where
    M: Fn() -> W + Send + Sync + 'static,
    W: std::io::Write,
{
    JsonLogs { make_writer, lock: Mutex::new(()) }
}

/// See [`json`].
pub struct JsonLogs<M> {
    make_writer: M,
    /// One line at a time, whatever the writer does.
    lock: Mutex<()>,
}

impl<M> std::fmt::Debug for JsonLogs<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JsonLogs")
    }
}

impl<S, M, W> Layer<S> for JsonLogs<M>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    M: Fn() -> W + Send + Sync + 'static,
    W: std::io::Write,
{
    fn on_event(&self, event: &Event<'_>, _ctx: LayerContext<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let meta = event.metadata();
        let mut object = serde_json::Map::new();
        object.insert("timestamp".into(), rfc3339_now().into());
        object.insert("level".into(), meta.level().as_str().into());
        object.insert("target".into(), meta.target().into());
        object.insert("message".into(), fields.message.unwrap_or_default().into());
        let values: serde_json::Map<String, serde_json::Value> =
            fields.values.iter().map(|(k, v)| ((*k).to_owned(), v.to_json())).collect();
        object.insert("fields".into(), values.into());
        if let Some(trace_id) = crate::current_trace_id() {
            object.insert("trace_id".into(), trace_id.into());
        }
        if let Some(span_id) = crate::current_span_id() {
            object.insert("span_id".into(), span_id.into());
        }
        let mut line = serde_json::Value::Object(object).to_string();
        line.push('\n');
        let _one_line = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let _ = (self.make_writer)().write_all(line.as_bytes());
    }
}

/// Now as `2026-11-25T06:10:00.123456Z`, without a date crate: days from the civil-from-days algorithm.
fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut out = String::with_capacity(27);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        now.subsec_micros()
    );
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn timestamps_are_rfc3339() {
        let t = super::rfc3339_now();
        assert_eq!(t.len(), 27, "{t}");
        assert!(t.starts_with("20") && t.ends_with('Z') && &t[10..11] == "T", "{t}");
    }
}
