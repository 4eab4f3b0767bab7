//! Zipkin's B3 propagation (openzipkin/b3-propagation), single header and multiple headers.
//!
//! - Single: `b3: {trace-id}-{span-id}[-{sampling-state}[-{parent-span-id}]]`, or `b3: {sampling-state}`
//!   alone. Ids are lowercase hex: the trace id 32 or 16 characters (a 64-bit id is left-padded with
//!   zeros to 128 bits), span ids 16; all-zero ids are invalid. The sampling state is `1` (accept), `0`
//!   (deny), `d` (debug: accept and force) or absent (defer).
//! - Multiple: `X-B3-TraceId`, `X-B3-SpanId`, optional `X-B3-ParentSpanId`, `X-B3-Sampled` (`1`/`0`, and
//!   the older `true`/`false`), `X-B3-Flags: 1` (debug, which implies accept).
//! - Both propagators read the single header first and fall back to the multiple headers (the single one
//!   takes precedence); they write their own form. A debug request is written as `d` / `X-B3-Flags: 1`,
//!   without `X-B3-Sampled`, as the specification asks.
//!
//! Two choices where the specification leaves room: a deferred decision is read as "not sampled" (the
//! flags carry no "undecided" state, so the sampler's parent-based rule applies), and a sampling state
//! without ids (`b3: 0`) is accepted but gives no parent (there is no trace to continue; the local root
//! decision applies).

use super::jaeger::JaegerDebugFlag;
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator, text_map_propagator::FieldIter};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState};

const SINGLE: &str = "b3";
const TRACE_ID: &str = "x-b3-traceid";
const SPAN_ID: &str = "x-b3-spanid";
const PARENT_SPAN_ID: &str = "x-b3-parentspanid";
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

/// The sampling state of a B3 context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Sampling {
    Defer,
    Deny,
    Accept,
    Debug,
}

/// What a B3 header carried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum B3 {
    /// A trace to continue.
    Context { trace_id: TraceId, span_id: SpanId, sampling: Sampling },
    /// A sampling state without ids (`b3: 0`, `b3: 1`, `b3: d`).
    SamplingOnly(Sampling),
}

fn lower_hex(s: &str, lengths: &[usize]) -> Option<u128> {
    let valid = lengths.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    valid.then(|| u128::from_str_radix(s, 16).ok()).flatten().filter(|&id| id != 0)
}

/// A 128-bit (32 hex) or 64-bit (16 hex, left-padded) trace id.
fn trace_id(hex: &str) -> Option<TraceId> {
    lower_hex(hex, &[16, 32]).map(TraceId::from)
}

fn span_id(hex: &str) -> Option<SpanId> {
    lower_hex(hex, &[16]).map(|id| SpanId::from(id as u64))
}

fn single_sampling(state: &str) -> Option<Sampling> {
    match state {
        "1" => Some(Sampling::Accept),
        "0" => Some(Sampling::Deny),
        "d" => Some(Sampling::Debug),
        _ => None,
    }
}

fn trim_ows(value: &str) -> &str {
    value.trim_matches([' ', '\t'])
}

/// Parses a single `b3` header value; `None` when malformed.
pub(crate) fn parse_single(value: &str) -> Option<B3> {
    let parts: Vec<&str> = trim_ows(value).splitn(5, '-').collect();
    match parts.as_slice() {
        [state] => single_sampling(state).map(B3::SamplingOnly),
        [trace, span, rest @ ..] if rest.len() <= 2 => {
            let sampling = match rest.first() {
                Some(state) => single_sampling(state)?,
                None => Sampling::Defer,
            };
            if let Some(parent) = rest.get(1) {
                span_id(parent)?;
            }
            Some(B3::Context { trace_id: trace_id(trace)?, span_id: span_id(span)?, sampling })
        }
        _ => None,
    }
}

/// Parses the multiple `X-B3-*` headers; `None` when absent or malformed.
pub(crate) fn parse_multi(extractor: &dyn Extractor) -> Option<B3> {
    let get = |name| extractor.get(name).map(trim_ows);
    let debug = match get(FLAGS) {
        None => false,
        Some("1") => true,
        Some(_) => return None,
    };
    let sampling = match (debug, get(SAMPLED)) {
        (true, _) => Sampling::Debug,
        (false, None) => Sampling::Defer,
        (false, Some("1" | "true")) => Sampling::Accept,
        (false, Some("0" | "false")) => Sampling::Deny,
        (false, Some(_)) => return None,
    };
    let (Some(trace), Some(span)) = (get(TRACE_ID), get(SPAN_ID)) else {
        // Sampling headers alone carry a decision but no trace.
        let sampling_only = get(SAMPLED).is_some() || debug;
        return (get(TRACE_ID).is_none() && get(SPAN_ID).is_none() && sampling_only)
            .then_some(B3::SamplingOnly(sampling));
    };
    if let Some(parent) = get(PARENT_SPAN_ID) {
        span_id(parent)?;
    }
    Some(B3::Context { trace_id: trace_id(trace)?, span_id: span_id(span)?, sampling })
}

impl TextMapPropagator for B3Propagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let sc = span.span_context();
        if !sc.is_valid() {
            return;
        }
        let debug = sc.is_sampled() && cx.get::<JaegerDebugFlag>().is_some();
        if self.multi {
            injector.set(TRACE_ID, sc.trace_id().to_string());
            injector.set(SPAN_ID, sc.span_id().to_string());
            if debug {
                injector.set(FLAGS, "1".to_owned());
            } else {
                injector.set(SAMPLED, if sc.is_sampled() { "1" } else { "0" }.to_owned());
            }
        } else {
            let state = match (debug, sc.is_sampled()) {
                (true, _) => "d",
                (false, true) => "1",
                (false, false) => "0",
            };
            injector.set(SINGLE, format!("{}-{}-{state}", sc.trace_id(), sc.span_id()));
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        // The single header takes precedence; a malformed one leaves the multiple headers to try.
        let found = extractor.get(SINGLE).and_then(parse_single).or_else(|| parse_multi(extractor));
        let Some(B3::Context { trace_id, span_id, sampling }) = found else { return cx.clone() };
        let sampled = matches!(sampling, Sampling::Accept | Sampling::Debug);
        let flags = if sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
        let cx = cx.with_remote_span_context(SpanContext::new(trace_id, span_id, flags, true, TraceState::default()));
        if sampling == Sampling::Debug { cx.with_value(JaegerDebugFlag) } else { cx }
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

    fn extract(list: &[(&str, &str)]) -> Context {
        B3Propagator::single().extract(&super::super::w3c::test_headers::headers(list))
    }

    const T: &str = "80f198ee56343ba864fe8b2a57d3eff7";
    const S: &str = "e457b5a2e4d86bd1";
    const P: &str = "05e3ac9a4f6e3b90";

    #[test]
    fn single_header_is_trace_span_sampling_parent_with_the_last_two_optional() {
        let ctx =
            |sampling| Some(B3::Context { trace_id: trace_id(T).unwrap(), span_id: span_id(S).unwrap(), sampling });
        assert_eq!(parse_single(&format!("{T}-{S}-1-{P}")), ctx(Sampling::Accept));
        assert_eq!(parse_single(&format!("{T}-{S}-0")), ctx(Sampling::Deny));
        assert_eq!(parse_single(&format!("{T}-{S}-d")), ctx(Sampling::Debug));
        assert_eq!(parse_single(&format!("{T}-{S}")), ctx(Sampling::Defer));
        assert_eq!(parse_single(&format!("{T}-{S}-{P}")), None, "a parent needs the sampling state before it");
        assert_eq!(parse_single(&format!("{T}-{S}-1-{P}-x")), None);
    }

    #[test]
    fn sampling_state_alone_is_recognised_but_gives_no_parent() {
        for (value, sampling) in [("0", Sampling::Deny), ("1", Sampling::Accept), ("d", Sampling::Debug)] {
            assert_eq!(parse_single(value), Some(B3::SamplingOnly(sampling)));
            assert!(!extract(&[("b3", value)]).has_active_span());
        }
        assert_eq!(parse_single("true"), None, "the single header knows only 1, 0 and d");
    }

    #[test]
    fn ids_are_lowercase_hex_of_exact_lengths_and_not_zero() {
        for bad in [
            format!("{}-{S}-1", T.to_uppercase()),
            format!("{T}-{}-1", S.to_uppercase()),
            format!("{T}0-{S}-1"),
            format!("{}-{S}-1", &T[1..]),
            format!("{T}-{}-1", &S[1..]),
            format!("{}-{S}-1", "0".repeat(32)),
            format!("{T}-{}-1", "0".repeat(16)),
            format!("+{}-{S}-1", &T[1..]),
            format!("{T}-{S}-1-{}", &P[1..]),
        ] {
            assert_eq!(parse_single(&bad), None, "{bad}");
        }
    }

    #[test]
    fn sixty_four_bit_trace_id_is_left_padded_to_128_bits() {
        let cx = extract(&[("b3", "a3ce929d0e0e4736-00f067aa0ba902b7-1")]);
        assert_eq!(cx.span().span_context().trace_id().to_string(), "0000000000000000a3ce929d0e0e4736");
    }

    #[test]
    fn debug_implies_accept_and_is_passed_on() {
        let cx = extract(&[("b3", &format!("{T}-{S}-d"))]);
        assert!(cx.span().span_context().is_sampled() && cx.get::<JaegerDebugFlag>().is_some());
        let mut out: HashMap<String, String> = HashMap::new();
        B3Propagator::single().inject_context(&cx, &mut out);
        assert_eq!(out["b3"], format!("{T}-{S}-d"));
        let mut out: HashMap<String, String> = HashMap::new();
        B3Propagator::multi().inject_context(&cx, &mut out);
        assert_eq!(out.get("x-b3-flags").map(String::as_str), Some("1"));
        assert!(!out.contains_key("x-b3-sampled"), "debug implies accept: no X-B3-Sampled");
    }

    #[test]
    fn deferred_sampling_is_read_as_not_sampled() {
        let sc = extract(&[("b3", &format!("{T}-{S}"))]).span().span_context().clone();
        assert!(sc.is_valid() && !sc.is_sampled());
    }

    #[test]
    fn multi_headers_carry_trace_span_parent_sampled_and_flags() {
        let multi = |extra: &[(&'static str, &'static str)]| {
            let mut list = vec![("X-B3-TraceId", T), ("X-B3-SpanId", S)];
            list.extend_from_slice(extra);
            parse_multi(&super::super::w3c::test_headers::headers(&list))
        };
        let ctx =
            |sampling| Some(B3::Context { trace_id: trace_id(T).unwrap(), span_id: span_id(S).unwrap(), sampling });
        assert_eq!(multi(&[("X-B3-Sampled", "1"), ("X-B3-ParentSpanId", P)]), ctx(Sampling::Accept));
        assert_eq!(multi(&[("X-B3-Sampled", "0")]), ctx(Sampling::Deny));
        assert_eq!(multi(&[("X-B3-Sampled", "true")]), ctx(Sampling::Accept), "the older true/false is tolerated");
        assert_eq!(multi(&[("X-B3-Sampled", "false")]), ctx(Sampling::Deny));
        assert_eq!(multi(&[]), ctx(Sampling::Defer));
        assert_eq!(multi(&[("X-B3-Flags", "1")]), ctx(Sampling::Debug));
        assert_eq!(multi(&[("X-B3-Flags", "1"), ("X-B3-Sampled", "0")]), ctx(Sampling::Debug), "debug wins");
        assert_eq!(multi(&[("X-B3-Sampled", "yes")]), None);
        assert_eq!(multi(&[("X-B3-Flags", "2")]), None);
        assert_eq!(multi(&[("X-B3-ParentSpanId", "xyz")]), None);
        let sampling_only = parse_multi(&super::super::w3c::test_headers::headers(&[("X-B3-Sampled", "0")]));
        assert_eq!(sampling_only, Some(B3::SamplingOnly(Sampling::Deny)));
    }

    #[test]
    fn single_header_takes_precedence_over_multi_headers() {
        let other = "0000000000000000000000000000abcd";
        let both = [("b3", &format!("{T}-{S}-1")[..]), ("x-b3-traceid", other), ("x-b3-spanid", S)];
        for propagator in [B3Propagator::single(), B3Propagator::multi()] {
            let cx = propagator.extract(&super::super::w3c::test_headers::headers(&both));
            assert_eq!(cx.span().span_context().trace_id().to_string(), T);
        }
        let only_multi = [("x-b3-traceid", other), ("x-b3-spanid", S), ("x-b3-sampled", "1")];
        let cx = B3Propagator::single().extract(&super::super::w3c::test_headers::headers(&only_multi));
        assert_eq!(cx.span().span_context().trace_id().to_string(), other, "either form is read");
    }
}
