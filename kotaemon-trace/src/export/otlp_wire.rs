//! OTLP trace requests encoded straight from the SDK's `SpanData` into protobuf bytes.
//!
//! The generic route (opentelemetry-otlp) clones the batch for its retry, hashes each span's scope,
//! builds the generated message structs (an allocation for every id, name, key and string value) and
//! only then encodes them: measured with callgrind, about 4 500 instructions per exported span, two
//! thirds of the export thread's work. Written directly into one buffer reused from batch to batch, the
//! same request costs a few hundred. The bytes are the message `ExportTraceServiceRequest` of
//! opentelemetry-proto, field for field as its conversion produces it (a test decodes both and compares).

use opentelemetry::trace::{SpanId, SpanKind, Status, TraceState};
use opentelemetry::{Array, InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SpanData;
use std::time::{SystemTime, UNIX_EPOCH};

/// Wire types used here.
const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;
const FIXED32: u32 = 5;

/// `SpanFlags`: the context's "is remote" bit is known (0x100), and set (0x200).
const HAS_IS_REMOTE: u32 = 0x100;
const IS_REMOTE: u32 = 0x200;

#[inline]
fn varint(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push((value as u8) | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

#[inline]
fn key(buf: &mut Vec<u8>, field: u32, wire: u32) {
    // Every field number here is below 16: one byte.
    buf.push(((field << 3) | wire) as u8);
}

#[inline]
fn bytes(buf: &mut Vec<u8>, field: u32, value: &[u8]) {
    if !value.is_empty() {
        key(buf, field, LEN);
        varint(buf, value.len() as u64);
        buf.extend_from_slice(value);
    }
}

#[inline]
fn uint(buf: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        key(buf, field, VARINT);
        varint(buf, value);
    }
}

#[inline]
fn fixed64(buf: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        key(buf, field, FIXED64);
        buf.extend_from_slice(&value.to_le_bytes());
    }
}

#[inline]
fn fixed32(buf: &mut Vec<u8>, field: u32, value: u32) {
    if value != 0 {
        key(buf, field, FIXED32);
        buf.extend_from_slice(&value.to_le_bytes());
    }
}

/// A length-delimited sub-message written by `body`. One byte is kept for its length; the rare message
/// of 128 bytes or more is moved up by the extra length bytes once it is written.
#[inline]
fn message(buf: &mut Vec<u8>, field: u32, body: impl FnOnce(&mut Vec<u8>)) {
    key(buf, field, LEN);
    let at = buf.len();
    buf.push(0);
    body(buf);
    let len = buf.len() - at - 1;
    if len < 0x80 {
        buf[at] = len as u8;
        return;
    }
    let (mut prefix, mut n, mut rest) = ([0u8; 10], 0, len);
    while rest >= 0x80 {
        prefix[n] = (rest as u8) | 0x80;
        rest >>= 7;
        n += 1;
    }
    prefix[n] = rest as u8;
    n += 1;
    buf.resize(buf.len() + n - 1, 0);
    buf.copy_within(at + 1..at + 1 + len, at + n);
    buf[at..at + n].copy_from_slice(&prefix[..n]);
}

fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

/// `AnyValue`'s fields for one value.
fn any_value(buf: &mut Vec<u8>, value: &Value) {
    match value {
        Value::String(s) => {
            // Set in the oneof even when empty, as prost writes it.
            key(buf, 1, LEN);
            varint(buf, s.as_str().len() as u64);
            buf.extend_from_slice(s.as_str().as_bytes());
        }
        Value::Bool(b) => {
            key(buf, 2, VARINT);
            buf.push(u8::from(*b));
        }
        Value::I64(i) => {
            key(buf, 3, VARINT);
            varint(buf, *i as u64);
        }
        Value::F64(f) => {
            key(buf, 4, FIXED64);
            buf.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Value::Array(array) => message(buf, 5, |buf| match array {
            Array::Bool(items) => items.iter().for_each(|v| message(buf, 1, |buf| any_value(buf, &Value::Bool(*v)))),
            Array::I64(items) => items.iter().for_each(|v| message(buf, 1, |buf| any_value(buf, &Value::I64(*v)))),
            Array::F64(items) => items.iter().for_each(|v| message(buf, 1, |buf| any_value(buf, &Value::F64(*v)))),
            Array::String(items) => items.iter().for_each(|v| {
                message(buf, 1, |buf| {
                    key(buf, 1, LEN);
                    varint(buf, v.as_str().len() as u64);
                    buf.extend_from_slice(v.as_str().as_bytes());
                })
            }),
            // A kind of array added to the API later: its text, rather than nothing.
            other => message(buf, 1, |buf| bytes(buf, 1, other.to_string().as_bytes())),
        }),
        // A kind of value added to the API later: its text.
        other => {
            key(buf, 1, LEN);
            let text = other.to_string();
            varint(buf, text.len() as u64);
            buf.extend_from_slice(text.as_bytes());
        }
    }
}

/// `KeyValue` messages as field `field` of the enclosing message.
fn attributes<'a>(buf: &mut Vec<u8>, field: u32, list: impl IntoIterator<Item = (&'a str, &'a Value)>) {
    for (k, v) in list {
        message(buf, field, |buf| {
            bytes(buf, 1, k.as_bytes());
            message(buf, 2, |buf| any_value(buf, v));
        });
    }
}

fn pairs(list: &[KeyValue]) -> impl Iterator<Item = (&str, &Value)> {
    list.iter().map(|kv| (kv.key.as_str(), &kv.value))
}

fn scope(buf: &mut Vec<u8>, scope: &InstrumentationScope) {
    message(buf, 1, |buf| {
        bytes(buf, 1, scope.name().as_bytes());
        bytes(buf, 2, scope.version().unwrap_or_default().as_bytes());
        attributes(buf, 3, scope.attributes().map(|kv| (kv.key.as_str(), &kv.value)));
    });
}

/// Nearly always empty: its header text is made (an allocation) only when it is not.
#[inline]
fn trace_state(buf: &mut Vec<u8>, state: &TraceState) {
    if *state != TraceState::NONE {
        bytes(buf, 3, state.header().as_bytes());
    }
}

fn span(buf: &mut Vec<u8>, span: &SpanData) {
    let cx = &span.span_context;
    bytes(buf, 1, &cx.trace_id().to_bytes());
    bytes(buf, 2, &cx.span_id().to_bytes());
    trace_state(buf, cx.trace_state());
    if span.parent_span_id != SpanId::INVALID {
        bytes(buf, 4, &span.parent_span_id.to_bytes());
    }
    bytes(buf, 5, span.name.as_bytes());
    let kind = match span.span_kind {
        SpanKind::Internal => 1,
        SpanKind::Server => 2,
        SpanKind::Client => 3,
        SpanKind::Producer => 4,
        SpanKind::Consumer => 5,
    };
    uint(buf, 6, kind);
    fixed64(buf, 7, nanos(span.start_time));
    fixed64(buf, 8, nanos(span.end_time));
    attributes(buf, 9, pairs(&span.attributes));
    uint(buf, 10, u64::from(span.dropped_attributes_count));
    for event in span.events.iter() {
        message(buf, 11, |buf| {
            fixed64(buf, 1, nanos(event.timestamp));
            bytes(buf, 2, event.name.as_bytes());
            attributes(buf, 3, pairs(&event.attributes));
            uint(buf, 4, u64::from(event.dropped_attributes_count));
        });
    }
    uint(buf, 12, u64::from(span.events.dropped_count));
    for link in span.links.iter() {
        message(buf, 13, |buf| {
            let cx = &link.span_context;
            bytes(buf, 1, &cx.trace_id().to_bytes());
            bytes(buf, 2, &cx.span_id().to_bytes());
            trace_state(buf, cx.trace_state());
            attributes(buf, 4, pairs(&link.attributes));
            uint(buf, 5, u64::from(link.dropped_attributes_count));
            let remote = if cx.is_remote() { IS_REMOTE } else { 0 };
            fixed32(buf, 6, u32::from(cx.trace_flags().to_u8()) | HAS_IS_REMOTE | remote);
        });
    }
    uint(buf, 14, u64::from(span.links.dropped_count));
    message(buf, 15, |buf| {
        let (message, code) = match &span.status {
            Status::Unset => ("", 0),
            Status::Ok => ("", 1),
            Status::Error { description } => (description.as_ref(), 2),
        };
        bytes(buf, 2, message.as_bytes());
        uint(buf, 3, code);
    });
    let remote = if span.parent_span_is_remote { IS_REMOTE } else { 0 };
    // Field 16, `flags`: two key bytes.
    let flags = u32::from(cx.trace_flags().to_u8()) | HAS_IS_REMOTE | remote;
    buf.extend_from_slice(&[(16 << 3 | FIXED32) as u8 | 0x80, 1]);
    buf.extend_from_slice(&flags.to_le_bytes());
}

/// The resource part of every request, encoded once per resource.
#[derive(Debug, Default, Clone)]
pub(crate) struct EncodedResource {
    /// `ResourceSpans.resource` (field 1), key and length included.
    resource: Vec<u8>,
    schema_url: String,
}

impl EncodedResource {
    pub(crate) fn new(resource: &Resource) -> EncodedResource {
        let mut encoded = Vec::new();
        message(&mut encoded, 1, |buf| attributes(buf, 1, resource.iter().map(|(k, v)| (k.as_str(), v))));
        EncodedResource { resource: encoded, schema_url: resource.schema_url().unwrap_or_default().to_owned() }
    }
}

/// Writes the `ExportTraceServiceRequest` for `spans` into `buf` (cleared first): one `ResourceSpans`,
/// one `ScopeSpans` per instrumentation scope in order of first appearance.
pub(crate) fn encode_request(buf: &mut Vec<u8>, resource: &EncodedResource, spans: &[SpanData]) {
    buf.clear();
    message(buf, 1, |buf| {
        buf.extend_from_slice(&resource.resource);
        // Nearly every batch has one scope; any other is written in a pass of its own.
        let mut done: Vec<&InstrumentationScope> = Vec::new();
        for (i, first) in spans.iter().enumerate() {
            let current = &first.instrumentation_scope;
            if done.contains(&current) {
                continue;
            }
            done.push(current);
            message(buf, 2, |buf| {
                scope(buf, current);
                for s in spans[i..].iter().filter(|s| s.instrumentation_scope == *current) {
                    message(buf, 2, |buf| span(buf, s));
                }
                bytes(buf, 3, current.schema_url().unwrap_or_default().as_bytes());
            });
        }
        bytes(buf, 3, resource.schema_url.as_bytes());
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{Event, Link, SpanContext, TraceFlags, TraceId};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
    use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use prost::Message as _;
    use std::borrow::Cow;
    use std::time::Duration;

    fn span_data(i: u64, scope: &InstrumentationScope) -> SpanData {
        let cx = SpanContext::new(
            TraceId::from(u128::from(i) << 64 | 7),
            SpanId::from(i + 1),
            if i.is_multiple_of(2) { TraceFlags::SAMPLED } else { TraceFlags::default() },
            false,
            if i.is_multiple_of(3) { TraceState::from_key_value([("k", "v")]).unwrap() } else { TraceState::default() },
        );
        let mut events = SpanEvents::default();
        let mut links = SpanLinks::default();
        if i % 2 == 1 {
            events.events.push(Event::new(
                "retry",
                UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789 + i),
                vec![KeyValue::new("attempt", 2_i64)],
                1,
            ));
            events.dropped_count = 3;
            let linked =
                SpanContext::new(TraceId::from(99), SpanId::from(98), TraceFlags::SAMPLED, true, TraceState::default());
            links.links.push(Link::new(linked, vec![KeyValue::new("why", "follows")], 0));
        }
        let long = "x".repeat(300);
        SpanData {
            span_context: cx,
            parent_span_id: if i.is_multiple_of(2) { SpanId::INVALID } else { SpanId::from(1000 + i) },
            parent_span_is_remote: i % 4 == 1,
            span_kind: [SpanKind::Internal, SpanKind::Server, SpanKind::Client, SpanKind::Producer, SpanKind::Consumer]
                [(i % 5) as usize]
                .clone(),
            name: Cow::Owned(format!("op-{i}")),
            start_time: UNIX_EPOCH + Duration::from_nanos(1_700_000_000_000_000_000 + i),
            end_time: UNIX_EPOCH + Duration::from_nanos(1_700_000_000_000_500_000 + i),
            attributes: vec![
                KeyValue::new("model", "gpt-x"),
                KeyValue::new("k", -4_i64),
                KeyValue::new("score", 0.5),
                KeyValue::new("ok", true),
                KeyValue::new("empty", ""),
                KeyValue::new("long", long),
                KeyValue::new("tags", Value::Array(Array::String(vec!["a".into(), "".into()]))),
                KeyValue::new("ns", Value::Array(Array::I64(vec![1, -2, 3]))),
                KeyValue::new("fs", Value::Array(Array::F64(vec![0.25]))),
                KeyValue::new("bs", Value::Array(Array::Bool(vec![true, false]))),
            ],
            dropped_attributes_count: (i % 3) as u32,
            events,
            links,
            status: match i % 3 {
                0 => Status::Unset,
                1 => Status::Ok,
                _ => Status::error("bad input"),
            },
            instrumentation_scope: scope.clone(),
        }
    }

    #[test]
    fn requests_decode_to_what_the_generic_conversion_builds() {
        let ours = InstrumentationScope::builder("kotaemon-trace").with_version("0.1.0").build();
        let other = InstrumentationScope::builder("other")
            .with_schema_url("https://opentelemetry.io/schemas/1.21.0")
            .with_attributes([KeyValue::new("lib", "x")])
            .build();
        let spans: Vec<SpanData> = (0..40).map(|i| span_data(i, if i % 7 == 3 { &other } else { &ours })).collect();
        let resource = Resource::builder()
            .with_service_name("checkout")
            .with_attributes([KeyValue::new("host.name", "a"), KeyValue::new("pid", 42_i64)])
            .build();
        let mut buf = Vec::new();
        encode_request(&mut buf, &EncodedResource::new(&resource), &spans);
        let decoded = ExportTraceServiceRequest::decode(buf.as_slice()).expect("valid protobuf");
        let expected = ExportTraceServiceRequest {
            resource_spans: group_spans_by_resource_and_scope(spans, &ResourceAttributesWithSchema::from(&resource)),
        };
        assert_eq!(decoded, expected);
        // Canonical too: prost encodes the expected message to the same bytes.
        assert_eq!(expected.encode_to_vec(), buf);
    }

    #[test]
    fn an_empty_batch_and_large_messages_encode() {
        let mut buf = vec![1, 2, 3];
        encode_request(&mut buf, &EncodedResource::default(), &[]);
        let decoded = ExportTraceServiceRequest::decode(buf.as_slice()).unwrap();
        assert_eq!(decoded.resource_spans.len(), 1);
        assert!(decoded.resource_spans[0].scope_spans.is_empty());
        let scope = InstrumentationScope::builder("s").build();
        let mut big = span_data(2, &scope);
        big.attributes.push(KeyValue::new("prompt", "p".repeat(70_000)));
        encode_request(&mut buf, &EncodedResource::default(), &[big]);
        let decoded = ExportTraceServiceRequest::decode(buf.as_slice()).unwrap();
        let attrs = &decoded.resource_spans[0].scope_spans[0].spans[0].attributes;
        assert_eq!(attrs.last().unwrap().key, "prompt");
    }
}
