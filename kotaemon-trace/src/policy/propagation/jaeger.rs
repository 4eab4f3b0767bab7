//! Jaeger's native propagation format (jaeger-client "Propagation format").
//!
//! - `uber-trace-id: {trace-id}:{span-id}:{parent-span-id}:{flags}`: hex ids, leading zeros optional
//!   (the trace id 64 or 128 bits, at most 32 digits; span ids at most 16), the deprecated parent id
//!   `0` or a span id, flags one byte in hex (1 or 2 digits): `0x01` sampled, `0x02` debug (which
//!   implies sampled). Zero trace or span ids are invalid. Some clients URL-encode the colons (`%3A`).
//!   We write the ids zero-padded (32 and 16 digits), parent `0`, and the flags (`3` for a debug trace).
//! - Baggage: `uberctx-{key}: {value}` headers, values URL-encoded (percent escapes are decoded on the
//!   way in and non-unreserved characters encoded on the way out), and the `jaeger-baggage: k1=v1, k2=v2`
//!   header clients send to attach baggage without a trace. Baggage already read by another propagator
//!   keeps its values.
//!
//! Written here because the published Jaeger propagator crate lags the OpenTelemetry release this
//! library is built on; the format is small and fully covered by the tests below.

use super::baggage::{merge, percent_decode, percent_encode};
use opentelemetry::Context;
use opentelemetry::baggage::BaggageExt as _;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator, text_map_propagator::FieldIter};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState};

const TRACE_HEADER: &str = "uber-trace-id";
const BAGGAGE_PREFIX: &str = "uberctx-";
const BAGGAGE_HEADER: &str = "jaeger-baggage";
const FLAG_SAMPLED: u8 = 0x01;
const FLAG_DEBUG: u8 = 0x02;
/// Longest header value accepted; anything longer is malformed input, not a trace id.
const MAX_HEADER_LEN: usize = 128;

/// Whether the extracted context carried a debug flag (Jaeger's flag `0x02`, B3's `d` / `X-B3-Flags: 1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct JaegerDebugFlag;

/// The `jaeger` entry of `OTEL_PROPAGATORS`.
#[derive(Debug, Default)]
pub(crate) struct JaegerPropagator {
    fields: [String; 1],
}

impl JaegerPropagator {
    pub(crate) fn new() -> Self {
        JaegerPropagator { fields: [TRACE_HEADER.to_owned()] }
    }
}

/// Hex of 1 to `max` digits (either case, no sign), as Jaeger clients write ids without leading zeros.
fn hex(s: &str, max: usize) -> Option<u128> {
    let valid = (1..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit());
    valid.then(|| u128::from_str_radix(s, 16).ok()).flatten()
}

/// Parses `uber-trace-id`: `(context, debug)`, `None` for anything malformed.
pub(crate) fn parse(value: &str) -> Option<(SpanContext, bool)> {
    let value = value.trim_matches([' ', '\t']);
    if value.len() > MAX_HEADER_LEN {
        return None;
    }
    // Some clients URL-encode the colons.
    let decoded;
    let value = if value.contains('%') {
        decoded = value.replace("%3A", ":").replace("%3a", ":");
        decoded.as_str()
    } else {
        value
    };
    let mut parts = value.split(':');
    let (trace, span, parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let trace_id = TraceId::from(hex(trace, 32)?);
    let span_id = SpanId::from(hex(span, 16)? as u64);
    hex(parent, 16)?;
    let flags = hex(flags, 2)? as u8;
    if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
        return None;
    }
    let sampled = flags & (FLAG_SAMPLED | FLAG_DEBUG) != 0;
    let trace_flags = if sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
    let context = SpanContext::new(trace_id, span_id, trace_flags, true, TraceState::default());
    Some((context, flags & FLAG_DEBUG != 0))
}

/// URL-encoding of a baggage value: everything but RFC 3986 unreserved characters is escaped.
fn url_encode(value: &str) -> String {
    percent_encode(value, |b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// The baggage in `uberctx-*` headers and `jaeger-baggage`, as `(key, value, metadata)`.
fn extract_baggage(extractor: &dyn Extractor) -> Vec<(String, String, String)> {
    let mut entries: Vec<(String, String, String)> = extractor
        .keys()
        .into_iter()
        .filter_map(|k| {
            let key = k.to_ascii_lowercase();
            let name = key.strip_prefix(BAGGAGE_PREFIX).filter(|n| !n.is_empty())?.to_owned();
            let value = percent_decode(extractor.get(k)?.trim_matches([' ', '\t']));
            Some((name, value, String::new()))
        })
        .collect();
    for field in extractor.get_all(BAGGAGE_HEADER).unwrap_or_default() {
        for pair in field.split(',') {
            if let Some((k, v)) = pair.split_once('=') {
                let (k, v) = (k.trim_matches([' ', '\t']), v.trim_matches([' ', '\t']));
                if !k.is_empty() {
                    entries.push((k.to_owned(), percent_decode(v), String::new()));
                }
            }
        }
    }
    entries
}

impl TextMapPropagator for JaegerPropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let sc = span.span_context();
        if sc.is_valid() {
            let mut flags = if sc.is_sampled() { FLAG_SAMPLED } else { 0 };
            if sc.is_sampled() && cx.get::<JaegerDebugFlag>().is_some() {
                flags |= FLAG_DEBUG;
            }
            injector.set(TRACE_HEADER, format!("{}:{}:0:{flags:x}", sc.trace_id(), sc.span_id()));
        }
        for (key, (value, _)) in cx.baggage() {
            // A header name is a token; a key that cannot be one is not sent.
            if super::baggage::is_token(key.as_str()) {
                injector.set(&format!("{BAGGAGE_PREFIX}{key}"), url_encode(value.as_str()));
            }
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let mut cx = cx.clone();
        if let Some((span_context, debug)) = extractor.get(TRACE_HEADER).and_then(parse) {
            cx = cx.with_remote_span_context(span_context);
            if debug {
                cx = cx.with_value(JaegerDebugFlag);
            }
        }
        merge(&cx, extract_baggage(extractor))
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&self.fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::KeyValue;
    use std::collections::HashMap;

    fn extract(value: &str) -> Context {
        let mut headers = HashMap::new();
        headers.insert(TRACE_HEADER.to_owned(), value.to_owned());
        JaegerPropagator::new().extract(&headers)
    }

    #[test]
    fn round_trip() {
        let sc = SpanContext::new(
            TraceId::from(0x4bf92f3577b34da6a3ce929d0e0e4736),
            SpanId::from(0x00f067aa0ba902b7),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        );
        let cx =
            Context::new().with_remote_span_context(sc.clone()).with_baggage(vec![KeyValue::new("tenant", "acme")]);
        let mut headers: HashMap<String, String> = HashMap::new();
        JaegerPropagator::new().inject_context(&cx, &mut headers);
        assert_eq!(headers[TRACE_HEADER], "4bf92f3577b34da6a3ce929d0e0e4736:00f067aa0ba902b7:0:1");
        assert_eq!(headers["uberctx-tenant"], "acme");
        let back = JaegerPropagator::new().extract(&headers);
        assert_eq!(back.span().span_context().trace_id(), sc.trace_id());
        assert_eq!(back.span().span_context().span_id(), sc.span_id());
        assert!(back.span().span_context().is_sampled());
        assert_eq!(back.baggage().get("tenant").map(|v| v.to_string()), Some("acme".into()));
    }

    #[test]
    fn short_ids_encoded_colons_and_the_debug_flag() {
        let cx = extract("abc%3A1f%3A0%3A3");
        let sc = cx.span().span_context().clone();
        assert_eq!(sc.trace_id(), TraceId::from(0xabc));
        assert_eq!(sc.span_id(), SpanId::from(0x1f));
        assert!(sc.is_sampled() && sc.is_remote());
        assert!(cx.get::<JaegerDebugFlag>().is_some());
    }

    #[test]
    fn malformed_values_are_ignored() {
        for bad in [
            "",
            "x:y:z:1",
            "1:2:3",
            "1:2:3:4:5",
            "0:1:0:1",
            "1:0:0:1",
            &"f".repeat(200),
            "123456789012345678901234567890123:1:0:1",
        ] {
            assert!(!extract(bad).span().span_context().is_valid(), "{bad:?}");
        }
    }

    #[test]
    fn ids_are_hex_with_leading_zeros_optional_in_either_case() {
        let sc = extract("ABC:1F:0:1").span().span_context().clone();
        assert_eq!((sc.trace_id(), sc.span_id()), (TraceId::from(0xabc), SpanId::from(0x1f)));
        let sc = extract("00000000000000000000000000000abc:000000000000001f:0:1").span().span_context().clone();
        assert_eq!(sc.trace_id(), TraceId::from(0xabc));
        for bad in ["+abc:1f:0:1", "abc:+1f:0:1", "abc:1f:0:+1", "abc:12345678901234567:0:1", "abc:1f:x:1", "abc:1f::1"]
        {
            assert!(!extract(bad).span().span_context().is_valid(), "{bad}");
        }
    }

    #[test]
    fn flags_are_one_byte_sampled_and_debug_bits() {
        let flags = |f: &str| {
            let cx = extract(&format!("abc:1f:0:{f}"));
            (cx.span().span_context().is_sampled(), cx.get::<JaegerDebugFlag>().is_some())
        };
        assert_eq!(flags("0"), (false, false));
        assert_eq!(flags("1"), (true, false));
        assert_eq!(flags("01"), (true, false));
        assert_eq!(flags("3"), (true, true));
        assert_eq!(flags("2"), (true, true), "debug implies sampled");
        assert_eq!(flags("8"), (false, false), "other bits (firehose) do not sample");
        assert!(!extract("abc:1f:0:100").span().span_context().is_valid(), "more than a byte");
    }

    #[test]
    fn debug_flag_is_written_again() {
        let cx = extract("abc:1f:0:3");
        let mut out: HashMap<String, String> = HashMap::new();
        JaegerPropagator::new().inject_context(&cx, &mut out);
        assert!(out[TRACE_HEADER].ends_with(":0:3"), "{out:?}");
    }

    #[test]
    fn baggage_values_are_url_encoded() {
        let mut headers = HashMap::new();
        headers.insert("uberctx-user".to_owned(), "Am%C3%A9lie%20D".to_owned());
        headers.insert("uberctx-".to_owned(), "no key".to_owned());
        let cx = JaegerPropagator::new().extract(&headers);
        assert_eq!(cx.baggage().get("user").map(|v| v.to_string()).as_deref(), Some("Amélie D"));
        assert_eq!(cx.baggage().len(), 1);
        let mut out: HashMap<String, String> = HashMap::new();
        JaegerPropagator::new().inject_context(&cx, &mut out);
        assert_eq!(out["uberctx-user"], "Am%C3%A9lie%20D");
    }

    #[test]
    fn jaeger_baggage_header_adds_baggage_without_a_trace() {
        let mut headers = HashMap::new();
        headers.insert("jaeger-baggage".to_owned(), "k1=v1, k2 = v%202".to_owned());
        let cx = JaegerPropagator::new().extract(&headers);
        assert_eq!(cx.baggage().get("k1").map(|v| v.to_string()).as_deref(), Some("v1"));
        assert_eq!(cx.baggage().get("k2").map(|v| v.to_string()).as_deref(), Some("v 2"));
        assert!(!cx.has_active_span());
    }
}
