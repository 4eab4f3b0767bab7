//! W3C Trace Context (`traceparent`, `tracestate`), read and written as the Level 1 Recommendation
//! specifies, with Level 2's random trace-id flag.
//!
//! - `traceparent` version `00` is parsed strictly: exactly 55 characters, lowercase hex, non-zero ids.
//!   A higher version is parsed by the forward-compatibility rules (its first 55 characters, then only a
//!   `-` may follow); version `ff` is invalid. More than one `traceparent` header restarts the trace.
//! - `tracestate` is read only with a valid `traceparent`. Several headers form one list; keys and values
//!   follow the Level 1 grammar; more than 32 members, or any member outside the grammar, discards the
//!   whole list (the Recommendation allows discarding the header; its test suite expects it). A key seen
//!   twice keeps its first (left-most, most recent) entry.
//! - Flags other than sampled (`0x01`) and random trace-id (`0x02`) are cleared: Level 1 reserves them and
//!   requires they be sent as zero.
//!
//! One limit comes from OpenTelemetry's `TraceState`, which holds the list between spans: it refuses a
//! `tenant@system` key whose system part has the full 14 characters the grammar allows, so such a member
//! is dropped (the rest of the list is kept).

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator, text_map_propagator::FieldIter};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState};

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";
/// `version "-" trace-id "-" parent-id "-" trace-flags` for version `00`.
const TRACEPARENT_LEN: usize = 55;
/// The sampled flag (Level 1).
pub(crate) const FLAG_SAMPLED: u8 = 0x01;
/// The random trace-id flag (Level 2): at least the right-most 7 bytes of the trace id are random.
pub(crate) const FLAG_RANDOM: u8 = 0x02;
/// Flags this implementation knows; the others are reserved and written as zero.
const KNOWN_FLAGS: u8 = FLAG_SAMPLED | FLAG_RANDOM;
/// A `tracestate` list holds at most 32 members.
const MAX_MEMBERS: usize = 32;
/// Longest value (`0*255(chr) nblk-chr`).
const MAX_VALUE: usize = 256;

/// The `tracecontext` entry of `OTEL_PROPAGATORS`.
#[derive(Debug)]
pub(crate) struct TraceContextPropagator {
    fields: [String; 2],
}

impl TraceContextPropagator {
    pub(crate) fn new() -> Self {
        TraceContextPropagator { fields: [TRACEPARENT.to_owned(), TRACESTATE.to_owned()] }
    }
}

fn is_hex_lower(bytes: &[u8]) -> bool {
    bytes.iter().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
}

fn hex_value(bytes: &[u8]) -> Option<u128> {
    // Callers checked the digits; `from_str_radix` alone would also accept a leading `+`.
    u128::from_str_radix(std::str::from_utf8(bytes).ok()?, 16).ok()
}

/// Trims the optional whitespace (spaces and horizontal tabs) HTTP allows around a field value.
fn trim_ows(value: &str) -> &str {
    value.trim_matches([' ', '\t'])
}

/// Parses one `traceparent` value: `(trace id, parent id, flags)` with reserved flags cleared, or `None`
/// when the trace must restart.
pub(crate) fn parse_traceparent(value: &str) -> Option<(TraceId, SpanId, TraceFlags)> {
    let b = trim_ows(value).as_bytes();
    // The version: two lowercase hex characters and a dash; `ff` is forbidden.
    if b.len() < 3 || !is_hex_lower(&b[..2]) || b[2] != b'-' || &b[..2] == b"ff" {
        return None;
    }
    if &b[..2] == b"00" {
        if b.len() != TRACEPARENT_LEN {
            return None;
        }
    } else if b.len() < TRACEPARENT_LEN || (b.len() > TRACEPARENT_LEN && b[TRACEPARENT_LEN] != b'-') {
        // A higher version: at least the 55 characters of version 00, and its own fields only after a dash.
        return None;
    }
    let (trace, parent, flags) = (&b[3..35], &b[36..52], &b[53..55]);
    if b[35] != b'-' || b[52] != b'-' || !is_hex_lower(trace) || !is_hex_lower(parent) || !is_hex_lower(flags) {
        return None;
    }
    let trace_id = TraceId::from(hex_value(trace)?);
    let span_id = SpanId::from(hex_value(parent)? as u64);
    if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
        return None;
    }
    let flags = hex_value(flags)? as u8 & KNOWN_FLAGS;
    Some((trace_id, span_id, TraceFlags::new(flags)))
}

/// The `traceparent` value written for a span context (version `00`, reserved flags zero).
pub(crate) fn format_traceparent(sc: &SpanContext) -> String {
    format!("00-{}-{}-{:02x}", sc.trace_id(), sc.span_id(), sc.trace_flags().to_u8() & KNOWN_FLAGS)
}

fn is_key_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'*' | b'/')
}

/// A `tracestate` key by the Level 1 grammar: a simple key (`lcalpha 0*255(keychar)`) or a multi-tenant
/// key (`tenant-id "@" system-id`, the tenant 1 to 241 characters from a letter or digit, the system 1 to
/// 14 characters from a letter).
pub(crate) fn is_valid_key(key: &str) -> bool {
    let b = key.as_bytes();
    match key.split_once('@') {
        None => (1..=256).contains(&b.len()) && b[0].is_ascii_lowercase() && b.iter().all(|&c| is_key_char(c)),
        Some((tenant, system)) => {
            let (t, s) = (tenant.as_bytes(), system.as_bytes());
            (1..=241).contains(&t.len())
                && (t[0].is_ascii_lowercase() || t[0].is_ascii_digit())
                && t.iter().all(|&c| is_key_char(c))
                && (1..=14).contains(&s.len())
                && s[0].is_ascii_lowercase()
                && s.iter().all(|&c| is_key_char(c))
        }
    }
}

/// A `tracestate` value by the grammar: 1 to 256 printable ASCII characters except `,` and `=`, the last
/// not a space.
pub(crate) fn is_valid_value(value: &str) -> bool {
    let b = value.as_bytes();
    (1..=MAX_VALUE).contains(&b.len())
        && b.iter().all(|&c| (0x20..=0x7e).contains(&c) && c != b',' && c != b'=')
        && b[b.len() - 1] != b' '
}

/// Parses the `tracestate` header fields, combined in order as one list. `None` discards the list: a
/// member outside the grammar or more than 32 members. Empty and whitespace-only members are allowed and
/// skipped; an empty header is an empty list.
pub(crate) fn parse_tracestate<'a>(fields: impl IntoIterator<Item = &'a str>) -> Option<Vec<(&'a str, &'a str)>> {
    let mut members: Vec<(&str, &str)> = Vec::new();
    let mut count = 0;
    for field in fields {
        for member in field.split(',') {
            let member = trim_ows(member);
            if member.is_empty() {
                continue;
            }
            let (key, value) = member.split_once('=')?;
            count += 1;
            if count > MAX_MEMBERS || !is_valid_key(key) || !is_valid_value(value) {
                return None;
            }
            if members.iter().any(|(k, _)| *k == key) {
                continue; // only one entry per key: the left-most is the most recent position
            }
            members.push((key, value));
        }
    }
    Some(members)
}

/// The list as OpenTelemetry's `TraceState`, without the members it cannot hold (see the module docs).
fn to_trace_state(members: Vec<(&str, &str)>) -> TraceState {
    let held: Vec<(&str, &str)> =
        members.into_iter().filter(|(k, v)| TraceState::from_key_value([(*k, *v)]).is_ok()).collect();
    TraceState::from_key_value(held).unwrap_or_default()
}

/// The `tracestate` value written for a span context: its members in order (an updated member is first:
/// `TraceState::insert` moves it there), only those within the grammar, at most 32. `None` when empty:
/// the Recommendation asks not to send an empty header.
pub(crate) fn format_tracestate(state: &TraceState) -> Option<String> {
    let header = state
        .into_iter()
        .filter(|(k, v)| is_valid_key(k) && is_valid_value(v))
        .take(MAX_MEMBERS)
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    (!header.is_empty()).then_some(header)
}

/// The remote span context in the headers, or `None` when the trace must restart.
pub(crate) fn extract_span_context(extractor: &dyn Extractor) -> Option<SpanContext> {
    let parents = extractor.get_all(TRACEPARENT)?;
    // Two `traceparent` fields cannot be combined into one value: the parent is ambiguous.
    let [value] = parents.as_slice() else { return None };
    let (trace_id, span_id, flags) = parse_traceparent(value)?;
    let members = extractor.get_all(TRACESTATE).and_then(parse_tracestate).unwrap_or_default();
    Some(SpanContext::new(trace_id, span_id, flags, true, to_trace_state(members)))
}

impl TextMapPropagator for TraceContextPropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        let span = cx.span();
        let sc = span.span_context();
        if !sc.is_valid() {
            return;
        }
        injector.set(TRACEPARENT, format_traceparent(sc));
        if let Some(state) = format_tracestate(sc.trace_state()) {
            injector.set(TRACESTATE, state);
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        match extract_span_context(extractor) {
            Some(sc) => cx.with_remote_span_context(sc),
            None => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&self.fields)
    }
}
