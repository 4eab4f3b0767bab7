//! Zipkin's B3 propagation, single header (`b3: {trace}-{span}-{sampled}[-{parent}]`) and multiple
//! headers (`X-B3-TraceId`, `X-B3-SpanId`, `X-B3-Sampled`, `X-B3-Flags`). A `d` / `X-B3-Flags: 1` debug
//! request is treated as sampled and forcing is requested like Jaeger's debug flag.

use super::jaeger::JaegerDebugFlag;
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator, text_map_propagator::FieldIter};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState};

const SINGLE: &str = "b3";
const TRACE_ID: &str = "x-b3-traceid";
const SPAN_ID: &str = "x-b3-spanid";
const SAMPLED: &str = "x-b3-sampled";
const FLAGS: &str = "x-b3-flags";

#[derive(Debug)]
pub(crate) struct B3Propagator {
    multi: bool,
    fields: Vec<String>,
}

impl B3Propagator {
    pub(crate) fn single() -> Self {
        B3Propagator { multi: false, fields: vec![SINGLE.to_owned()] }
    }

    pub(crate) fn multi() -> Self {
        B3Propagator { multi: true, fields: [TRACE_ID, SPAN_ID, SAMPLED, FLAGS].map(str::to_owned).to_vec() }
    }
}

fn trace_id(hex: &str) -> Option<TraceId> {
    // 64-bit (16 hex) or 128-bit (32 hex) ids.
    if hex.len() != 16 && hex.len() != 32 {
        return None;
    }
    let id = TraceId::from(u128::from_str_radix(hex, 16).ok()?);
    (id != TraceId::INVALID).then_some(id)
}

fn span_id(hex: &str) -> Option<SpanId> {
    if hex.len() != 16 {
        return None;
    }
    let id = SpanId::from(u64::from_str_radix(hex, 16).ok()?);
    (id != SpanId::INVALID).then_some(id)
}

/// `(sampled, debug)` from a sampling state; `None` means "defer" (treated as not sampled).
fn sampling(state: Option<&str>) -> Option<(bool, bool)> {
    match state {
        None => Some((false, false)),
        Some("1") | Some("true") => Some((true, false)),
        Some("0") | Some("false") => Some((false, false)),
        Some("d") => Some((true, true)),
        Some(_) => None,
    }
}

fn context(trace: TraceId, span: SpanId, sampled: bool) -> SpanContext {
    let flags = if sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
    SpanContext::new(trace, span, flags, true, TraceState::default())
}

fn extract_single(value: &str) -> Option<(SpanContext, bool)> {
    if value.len() > 128 {
        return None;
    }
    let parts: Vec<&str> = value.split('-').collect();
    if parts.len() < 2 || parts.len() > 4 {
        return None;
    }
    let (sampled, debug) = sampling(parts.get(2).copied())?;
    if let Some(parent) = parts.get(3) {
        span_id(parent)?;
    }
    Some((context(trace_id(parts[0])?, span_id(parts[1])?, sampled), debug))
}

fn extract_multi(extractor: &dyn Extractor) -> Option<(SpanContext, bool)> {
    let trace = trace_id(extractor.get(TRACE_ID)?.trim())?;
    let span = span_id(extractor.get(SPAN_ID)?.trim())?;
    let debug = extractor.get(FLAGS).is_some_and(|f| f.trim() == "1");
    let (sampled, _) = sampling(extractor.get(SAMPLED).map(str::trim))?;
    Some((context(trace, span, sampled || debug), debug))
}

impl TextMapPropagator for B3Propagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let sc = span.span_context();
        if !sc.is_valid() {
            return;
        }
        let sampled = if sc.is_sampled() { "1" } else { "0" };
        if self.multi {
            injector.set(TRACE_ID, sc.trace_id().to_string());
            injector.set(SPAN_ID, sc.span_id().to_string());
            injector.set(SAMPLED, sampled.to_owned());
        } else {
            injector.set(SINGLE, format!("{}-{}-{sampled}", sc.trace_id(), sc.span_id()));
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        let found = if self.multi {
            extract_multi(extractor)
        } else {
            extractor.get(SINGLE).and_then(|v| extract_single(v.trim()))
        };
        match found {
            Some((sc, true)) => cx.with_remote_span_context(sc).with_value(JaegerDebugFlag),
            Some((sc, false)) => cx.with_remote_span_context(sc),
            None => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&self.fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn sample_cx() -> Context {
        Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from(0x80f198ee56343ba864fe8b2a57d3eff7),
            SpanId::from(0xe457b5a2e4d86bd1),
            TraceFlags::SAMPLED,
            false,
            TraceState::default(),
        ))
    }

    #[test]
    fn single_and_multi_round_trip() {
        for propagator in [B3Propagator::single(), B3Propagator::multi()] {
            let mut headers: HashMap<String, String> = HashMap::new();
            propagator.inject_context(&sample_cx(), &mut headers);
            let back = propagator.extract(&headers);
            let sc = back.span().span_context().clone();
            assert_eq!(sc.trace_id(), TraceId::from(0x80f198ee56343ba864fe8b2a57d3eff7), "{headers:?}");
            assert_eq!(sc.span_id(), SpanId::from(0xe457b5a2e4d86bd1));
            assert!(sc.is_sampled() && sc.is_remote());
        }
        let mut headers: HashMap<String, String> = HashMap::new();
        B3Propagator::single().inject_context(&sample_cx(), &mut headers);
        assert_eq!(headers["b3"], "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1");
    }

    #[test]
    fn sixty_four_bit_ids_debug_and_garbage() {
        let mut headers = HashMap::new();
        headers.insert("b3".to_owned(), "a3ce929d0e0e4736-00f067aa0ba902b7-d-05e3ac9a4f6e3b90".to_owned());
        let cx = B3Propagator::single().extract(&headers);
        assert_eq!(cx.span().span_context().trace_id(), TraceId::from(0xa3ce929d0e0e4736));
        assert!(cx.get::<JaegerDebugFlag>().is_some());
        for bad in [
            "0",
            "x-y",
            "a3ce929d0e0e4736",
            "a3ce929d0e0e4736-00f067aa0ba902b7-7",
            "a3ce929d0e0e4736-0000000000000000-1",
        ] {
            headers.insert("b3".to_owned(), bad.to_owned());
            assert!(!B3Propagator::single().extract(&headers).span().span_context().is_valid(), "{bad}");
        }
    }
}
