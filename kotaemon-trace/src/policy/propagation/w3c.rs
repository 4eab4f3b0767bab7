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

/// The value of lowercase hex digits (at most 32), or `None` at any other character. One pass that checks
/// and accumulates: `u128::from_str_radix` would also take uppercase and a leading `+`, and costs several
/// times as much on every incoming request.
fn hex_lower(bytes: &[u8]) -> Option<u128> {
    bytes.iter().try_fold(0_u128, |value, &b| {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => return None,
        };
        Some(value << 4 | u128::from(digit))
    })
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
    if b[35] != b'-' || b[52] != b'-' {
        return None;
    }
    let trace_id = TraceId::from(hex_lower(&b[3..35])?);
    let span_id = SpanId::from(hex_lower(&b[36..52])? as u64);
    if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
        return None;
    }
    let flags = hex_lower(&b[53..55])? as u8 & KNOWN_FLAGS;
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

/// Header lists for the propagation tests: repeated names, as HTTP allows, and case-insensitive lookup.
#[cfg(test)]
pub(crate) mod test_headers {
    use opentelemetry::propagation::Extractor;

    pub(crate) struct Headers(pub(crate) Vec<(String, String)>);

    pub(crate) fn headers(list: &[(&str, &str)]) -> Headers {
        Headers(list.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    impl Extractor for Headers {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str())
        }

        fn keys(&self) -> Vec<&str> {
            self.0.iter().map(|(k, _)| k.as_str()).collect()
        }

        fn get_all(&self, key: &str) -> Option<Vec<&str>> {
            let all: Vec<&str> =
                self.0.iter().filter(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str()).collect();
            (!all.is_empty()).then_some(all)
        }
    }
}

/// One test per rule of the Recommendation, named after it.
#[cfg(test)]
mod tests {
    use super::test_headers::headers;
    use super::*;
    use std::collections::HashMap;

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const PARENT: &str = "00f067aa0ba902b7";

    fn parent_of(list: &[(&str, &str)]) -> Option<SpanContext> {
        let cx = TraceContextPropagator::new().extract(&headers(list));
        let sc = cx.span().span_context().clone();
        sc.is_valid().then_some(sc)
    }

    fn traceparent(value: &str) -> Option<SpanContext> {
        parent_of(&[("traceparent", value)])
    }

    fn state_of(list: &[&str]) -> String {
        let mut all = vec![("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")];
        all.extend(list.iter().map(|v| ("tracestate", *v)));
        parent_of(&all).expect("a valid traceparent").trace_state().header()
    }

    fn inject(sc: SpanContext) -> HashMap<String, String> {
        let mut out = HashMap::new();
        TraceContextPropagator::new().inject_context(&Context::new().with_remote_span_context(sc), &mut out);
        out
    }

    #[test]
    fn version_00_is_version_dash_trace_id_dash_parent_id_dash_flags() {
        let sc = traceparent(&format!("00-{TRACE}-{PARENT}-01")).unwrap();
        assert_eq!(sc.trace_id().to_string(), TRACE);
        assert_eq!(sc.span_id().to_string(), PARENT);
        assert!(sc.is_sampled() && sc.is_remote());
        assert!(!traceparent(&format!("00-{TRACE}-{PARENT}-00")).unwrap().is_sampled());
    }

    #[test]
    fn header_name_is_case_insensitive() {
        let value = format!("00-{TRACE}-{PARENT}-01");
        for name in ["traceparent", "TraceParent", "TRACEPARENT"] {
            assert!(parent_of(&[(name, &value)]).is_some(), "{name}");
        }
    }

    #[test]
    fn optional_whitespace_around_the_value_is_ignored() {
        for value in [" 00-{T}-{P}-01", "\t00-{T}-{P}-01", "00-{T}-{P}-01 \t", "\t 00-{T}-{P}-01 \t"] {
            let value = value.replace("{T}", TRACE).replace("{P}", PARENT);
            assert!(traceparent(&value).is_some(), "{value:?}");
        }
    }

    #[test]
    fn version_must_be_two_lowercase_hex_characters_followed_by_a_dash() {
        for version in ["0", "000", "0x", "AA", "0A", ".0", "g0"] {
            assert!(traceparent(&format!("{version}-{TRACE}-{PARENT}-01")).is_none(), "{version}");
        }
    }

    #[test]
    fn version_ff_is_invalid() {
        assert!(traceparent(&format!("ff-{TRACE}-{PARENT}-01")).is_none());
    }

    #[test]
    fn version_00_has_exact_field_lengths() {
        let cases = [
            format!("00-{TRACE}0-{PARENT}-01"),
            format!("00-{}-{PARENT}-01", &TRACE[1..]),
            format!("00-{TRACE}-{PARENT}0-01"),
            format!("00-{TRACE}-{}-01", &PARENT[1..]),
            format!("00-{TRACE}-{PARENT}-001"),
            format!("00-{TRACE}-{PARENT}-1"),
            format!("00-{TRACE}-{PARENT}-01."),
            format!("00-{TRACE}-{PARENT}-01-what-the-future-will-be-like"),
            format!("00-{TRACE}-{PARENT}"),
        ];
        for value in cases {
            assert!(traceparent(&value).is_none(), "{value}");
        }
    }

    #[test]
    fn ids_and_flags_are_lowercase_hex() {
        let upper_trace = TRACE.to_uppercase();
        let cases = [
            format!("00-{upper_trace}-{PARENT}-01"),
            format!("00-{TRACE}-00F067AA0BA902B7-01"),
            format!("00-{TRACE}-{PARENT}-0A"),
            format!("00-4bf92f3577b34da6a3ce929d0e0e473g-{PARENT}-01"),
            format!("00-{TRACE}-00f067aa0ba902b.-01"),
            format!("00-{TRACE}-{PARENT}-.1"),
            format!("00-+bf92f3577b34da6a3ce929d0e0e4736-{PARENT}-01"),
            format!("00-{TRACE}-+0f067aa0ba902b7-01"),
        ];
        for value in cases {
            assert!(traceparent(&value).is_none(), "{value}");
        }
    }

    #[test]
    fn all_zero_trace_id_is_invalid() {
        assert!(traceparent(&format!("00-{}-{PARENT}-01", "0".repeat(32))).is_none());
    }

    #[test]
    fn all_zero_parent_id_is_invalid() {
        assert!(traceparent(&format!("00-{TRACE}-{}-01", "0".repeat(16))).is_none());
    }

    #[test]
    fn higher_version_parses_the_first_55_characters() {
        let sc = traceparent(&format!("cc-{TRACE}-{PARENT}-01")).unwrap();
        assert_eq!(sc.trace_id().to_string(), TRACE);
        assert!(sc.is_sampled());
    }

    #[test]
    fn higher_version_accepts_more_only_after_a_dash() {
        assert!(traceparent(&format!("cc-{TRACE}-{PARENT}-01-what-the-future-will-be-like")).is_some());
        assert!(traceparent(&format!("cc-{TRACE}-{PARENT}-01.what-the-future-will-be-like")).is_none());
        assert!(traceparent(&format!("cc-{TRACE}-{PARENT}-01-")).is_some());
    }

    #[test]
    fn higher_version_shorter_than_55_characters_restarts_the_trace() {
        assert!(traceparent(&format!("cc-{TRACE}-{PARENT}-1")).is_none());
        assert!(traceparent(&format!("cc-{TRACE}-{PARENT}")).is_none());
    }

    #[test]
    fn higher_version_fields_are_still_checked() {
        assert!(traceparent(&format!("cc-{}-{PARENT}-01-x", "0".repeat(32))).is_none());
        assert!(traceparent(&format!("cc-{TRACE}-{PARENT}-0g-x")).is_none());
        assert!(traceparent(&format!("cc-{TRACE}x{PARENT}-01-x")).is_none());
    }

    #[test]
    fn higher_version_is_downgraded_to_00_on_the_way_out() {
        let sc = traceparent(&format!("cc-{TRACE}-{PARENT}-01-what-the-future-will-be-like")).unwrap();
        assert_eq!(inject(sc)["traceparent"], format!("00-{TRACE}-{PARENT}-01"));
    }

    #[test]
    fn two_traceparent_headers_restart_the_trace() {
        let one = format!("00-{TRACE}-{PARENT}-01");
        let two = format!("00-12345678901234567890123456789012-{PARENT}-01");
        assert!(parent_of(&[("traceparent", &one), ("traceparent", &two)]).is_none());
        assert!(parent_of(&[("traceparent", &one), ("traceparent", &one)]).is_none());
    }

    #[test]
    fn flags_are_a_bit_field_masked_not_compared() {
        // 0x09: sampled plus an undefined flag.
        let sc = traceparent(&format!("00-{TRACE}-{PARENT}-09")).unwrap();
        assert!(sc.is_sampled());
        assert!(!traceparent(&format!("00-{TRACE}-{PARENT}-08")).unwrap().is_sampled());
    }

    #[test]
    fn other_flags_are_set_to_zero_on_the_way_out() {
        let sc = traceparent(&format!("00-{TRACE}-{PARENT}-ff")).unwrap();
        assert_eq!(sc.trace_flags().to_u8(), 0x03, "only sampled and random are kept");
        assert!(inject(sc).get("traceparent").unwrap().ends_with("-03"));
        let odd =
            SpanContext::new(TraceId::from(1), SpanId::from(2), TraceFlags::new(0xf5), false, TraceState::default());
        assert_eq!(inject(odd)["traceparent"], "00-00000000000000000000000000000001-0000000000000002-01");
    }

    #[test]
    fn random_trace_id_flag_is_passed_through_unchanged() {
        for (flags, random) in [("02", true), ("03", true), ("01", false), ("00", false)] {
            let sc = traceparent(&format!("00-{TRACE}-{PARENT}-{flags}")).unwrap();
            assert_eq!(sc.trace_flags().to_u8() & FLAG_RANDOM != 0, random, "{flags}");
            assert_eq!(&inject(sc)["traceparent"][53..], flags);
        }
    }

    #[test]
    fn nothing_is_written_for_an_invalid_context() {
        assert!(inject(SpanContext::empty_context()).is_empty());
    }

    #[test]
    fn tracestate_is_not_parsed_when_traceparent_is_invalid() {
        let cx = TraceContextPropagator::new().extract(&headers(&[
            ("traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
            ("tracestate", "foo=1"),
        ]));
        assert!(!cx.span().span_context().is_valid());
        assert_eq!(cx.span().span_context().trace_state().header(), "");
        let cx = TraceContextPropagator::new().extract(&headers(&[("tracestate", "foo=1")]));
        assert!(!cx.has_active_span(), "tracestate without traceparent is discarded");
    }

    #[test]
    fn tracestate_failure_does_not_affect_traceparent() {
        let sc = parent_of(&[("traceparent", &format!("00-{TRACE}-{PARENT}-01")), ("tracestate", "FOO=1")]).unwrap();
        assert_eq!(sc.trace_id().to_string(), TRACE);
        assert_eq!(sc.trace_state().header(), "");
    }

    #[test]
    fn tracestate_header_name_is_case_insensitive() {
        let tp = format!("00-{TRACE}-{PARENT}-01");
        let sc = parent_of(&[("traceparent", &tp), ("TraceState", "foo=1")]).unwrap();
        assert_eq!(sc.trace_state().header(), "foo=1");
    }

    #[test]
    fn multiple_tracestate_headers_are_one_list_in_order() {
        assert_eq!(state_of(&["foo=1", "bar=2,baz=3"]), "foo=1,bar=2,baz=3");
    }

    #[test]
    fn empty_tracestate_header_is_accepted() {
        assert_eq!(state_of(&[""]), "");
        assert_eq!(state_of(&["foo=1", ""]), "foo=1");
        assert_eq!(state_of(&["", "foo=1"]), "foo=1");
    }

    #[test]
    fn empty_and_whitespace_only_list_members_are_allowed() {
        assert_eq!(state_of(&["foo=1,,bar=2, \t ,"]), "foo=1,bar=2");
    }

    #[test]
    fn spaces_and_tabs_around_list_members_are_ignored() {
        assert_eq!(state_of(&["foo=1 \t , \t bar=2, \t baz=3"]), "foo=1,bar=2,baz=3");
        assert_eq!(state_of(&["\t foo=1 \t"]), "foo=1");
    }

    #[test]
    fn simple_key_is_lcalpha_then_up_to_255_key_characters() {
        assert!(is_valid_key("a"));
        assert!(is_valid_key("my-tracing_system*/1"));
        assert!(is_valid_key(&"z".repeat(256)));
        assert!(!is_valid_key(&"z".repeat(257)));
        assert!(!is_valid_key("1abc"), "a simple key starts with a letter");
        assert!(!is_valid_key(""));
        for bad in ["FOO", "foo ", "foo.bar", "foo=bar", "føo", "foo,bar", "_foo"] {
            assert!(!is_valid_key(bad), "{bad}");
        }
    }

    #[test]
    fn multi_tenant_key_is_tenant_at_system() {
        assert!(is_valid_key("tenant@system"));
        assert!(is_valid_key("1tenant@x"), "a tenant may start with a digit");
        assert!(is_valid_key(&format!("{}@{}", "t".repeat(241), "v".repeat(14))));
        assert!(!is_valid_key(&format!("{}@v", "t".repeat(242))), "tenant at most 241");
        assert!(!is_valid_key(&format!("t@{}", "v".repeat(15))), "system at most 14");
        for bad in ["@system", "tenant@", "tenant@1system", "foo@bar@baz", "foo@@bar", "_t@v", "t@V"] {
            assert!(!is_valid_key(bad), "{bad}");
        }
    }

    #[test]
    fn value_is_printable_ascii_without_comma_or_equals_and_no_trailing_space() {
        assert!(is_valid_value("t61rcWkgMzE"));
        assert!(is_valid_value(" leading space kept"));
        assert!(is_valid_value("!\"#$%&'()*+-./:;<>?@[\\]^_`{|}~"));
        assert!(is_valid_value(&"v".repeat(256)));
        assert!(!is_valid_value(&"v".repeat(257)));
        for bad in ["", "a=b", "a,b", "tab\there", "trailing ", "é"] {
            assert!(!is_valid_value(bad), "{bad:?}");
        }
        // Leading spaces belong to the value; the trailing ones are whitespace around the member.
        assert_eq!(state_of(&["foo= 1 "]), "foo= 1");
    }

    #[test]
    fn invalid_list_member_discards_the_tracestate() {
        for bad in ["foo =1", "FOO=1", "foo.bar=1", "foo=bar=baz", "foo=,bar=3", "foo", "=1", "foo=1,@v=2"] {
            assert_eq!(state_of(&[bad]), "", "{bad}");
        }
        assert_eq!(state_of(&["foo=1", "bar=2,BAD=3"]), "", "across headers too");
    }

    #[test]
    fn at_most_32_list_members() {
        let members = |n: usize| (1..=n).map(|i| format!("bar{i:02}={i:02}")).collect::<Vec<_>>();
        let thirty_two = members(32);
        let heads = [thirty_two[..10].join(","), thirty_two[10..20].join(","), thirty_two[20..].join(",")];
        let kept = state_of(&heads.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(kept, thirty_two.join(","));
        assert_eq!(state_of(&[&members(33).join(",")]), "", "33 members discard the list");
    }

    #[test]
    fn only_one_entry_per_key() {
        assert_eq!(state_of(&["foo=1,foo=2"]), "foo=1", "the left-most is the most recent position");
        assert_eq!(state_of(&["foo=1", "foo=2"]), "foo=1");
    }

    #[test]
    fn key_and_value_length_limits_across_headers() {
        let long = format!("{}=1", "z".repeat(256));
        assert_eq!(state_of(&["foo=1", &long]), format!("foo=1,{long}"));
        assert_eq!(state_of(&["foo=1", &format!("{}=1", "z".repeat(257))]), "");
        let tenant = format!("{}@{}=1", "t".repeat(241), "v".repeat(13));
        assert_eq!(state_of(&["foo=1", &tenant]), format!("foo=1,{tenant}"));
    }

    #[test]
    fn system_id_of_14_characters_is_dropped_as_the_trace_state_type_refuses_it() {
        // Valid by the grammar, refused by OpenTelemetry's TraceState: that member alone is lost.
        assert_eq!(state_of(&["foo=1", &format!("t@{}=1", "v".repeat(14)), "bar=2"]), "foo=1,bar=2");
    }

    #[test]
    fn outgoing_tracestate_puts_the_updated_member_first_and_keeps_the_rest_in_order() {
        let sc = parent_of(&[
            ("traceparent", &format!("00-{TRACE}-{PARENT}-01")),
            ("tracestate", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE,other=x"),
        ])
        .unwrap();
        let updated = sc.trace_state().insert("congo", "ucfJifl5GOE").unwrap();
        let sc = SpanContext::new(sc.trace_id(), SpanId::from(7), sc.trace_flags(), false, updated);
        assert_eq!(inject(sc.clone())["tracestate"], "congo=ucfJifl5GOE,rojo=00f067aa0ba902b7,other=x");
        let added = sc.trace_state().insert("new", "1").unwrap();
        let sc = SpanContext::new(sc.trace_id(), sc.span_id(), sc.trace_flags(), false, added);
        assert!(inject(sc)["tracestate"].starts_with("new=1,congo="));
    }

    #[test]
    fn outgoing_tracestate_is_never_empty_nor_outside_the_grammar() {
        let sc =
            |state: TraceState| SpanContext::new(TraceId::from(1), SpanId::from(2), TraceFlags::SAMPLED, false, state);
        assert!(!inject(sc(TraceState::default())).contains_key("tracestate"));
        // The SDK type accepts a value the grammar does not (a trailing space); it is not sent.
        let lax = TraceState::from_key_value([("ok", "1"), ("bad", "x ")]).unwrap();
        assert_eq!(inject(sc(lax))["tracestate"], "ok=1");
    }

    #[test]
    fn fields_are_traceparent_and_tracestate() {
        let p = TraceContextPropagator::new();
        assert_eq!(p.fields().collect::<Vec<_>>(), ["traceparent", "tracestate"]);
    }
}
