//! Jaeger's native propagation format: `uber-trace-id: {trace-id}:{span-id}:{parent-span-id}:{flags}`
//! (hex; flags bit 1 = sampled, bit 2 = debug) and baggage in `uberctx-{key}` headers.
//!
//! Written here because the published Jaeger propagator crate lags the OpenTelemetry release this
//! library is built on; the format is small and fully covered by the tests below.

use opentelemetry::baggage::BaggageExt as _;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator, text_map_propagator::FieldIter};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState};
use opentelemetry::{Context, KeyValue};

const TRACE_HEADER: &str = "uber-trace-id";
const BAGGAGE_PREFIX: &str = "uberctx-";
const FLAG_SAMPLED: u8 = 0x01;
const FLAG_DEBUG: u8 = 0x02;
/// Longest header value accepted; anything longer is malformed input, not a trace id.
const MAX_HEADER_LEN: usize = 128;

/// Whether the extracted Jaeger context carried the debug flag.
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

/// Parses `uber-trace-id`; `None` for anything malformed.
fn parse(value: &str) -> Option<(SpanContext, bool)> {
    if value.len() > MAX_HEADER_LEN {
        return None;
    }
    // Some clients URL-encode the colons.
    let decoded;
    let value = if value.contains("%3A") || value.contains("%3a") {
        decoded = value.replace("%3A", ":").replace("%3a", ":");
        decoded.as_str()
    } else {
        value
    };
    let mut parts = value.split(':');
    let (trace, span, _parent, flags) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || trace.is_empty() || trace.len() > 32 || span.is_empty() || span.len() > 16 {
        return None;
    }
    let trace_id = TraceId::from(u128::from_str_radix(trace, 16).ok()?);
    let span_id = SpanId::from(u64::from_str_radix(span, 16).ok()?);
    let flags = u8::from_str_radix(flags, 16).ok()?;
    if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
        return None;
    }
    let sampled = flags & (FLAG_SAMPLED | FLAG_DEBUG) != 0;
    let trace_flags = if sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
    let context = SpanContext::new(trace_id, span_id, trace_flags, true, TraceState::default());
    Some((context, flags & FLAG_DEBUG != 0))
}

impl TextMapPropagator for JaegerPropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let sc = span.span_context();
        if sc.is_valid() {
            let flags = if sc.is_sampled() { FLAG_SAMPLED } else { 0 };
            injector.set(TRACE_HEADER, format!("{}:{}:0:{flags:x}", sc.trace_id(), sc.span_id()));
        }
        for (key, (value, _)) in cx.baggage() {
            injector.set(&format!("{BAGGAGE_PREFIX}{key}"), value.to_string());
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let mut cx = cx.clone();
        if let Some((span_context, debug)) = extractor.get(TRACE_HEADER).and_then(|v| parse(v.trim())) {
            cx = cx.with_remote_span_context(span_context);
            if debug {
                cx = cx.with_value(JaegerDebugFlag);
            }
        }
        let baggage: Vec<KeyValue> = extractor
            .keys()
            .into_iter()
            .filter_map(|k| {
                let key = k.to_ascii_lowercase();
                let name = key.strip_prefix(BAGGAGE_PREFIX)?.to_owned();
                let value = extractor.get(k)?.to_owned();
                Some(KeyValue::new(name, value))
            })
            .collect();
        if !baggage.is_empty() {
            cx = cx.with_baggage(baggage);
        }
        cx
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&self.fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
}
