//! W3C Baggage (`baggage: key=value;property,...`), read and written by the specification's grammar.
//!
//! - Several `baggage` headers form one list; optional whitespace around keys, values, properties and
//!   members is not part of them.
//! - Keys are RFC 7230 tokens; values are `baggage-octet`s, percent-decoded on the way in (a sequence that
//!   is not UTF-8 becomes U+FFFD) and percent-encoded on the way out (everything outside `baggage-octet`,
//!   and `%`). A value may contain `=`.
//! - Properties (`;k=v;k2`) are kept as OpenTelemetry's baggage metadata in their header form (property
//!   values stay percent-encoded), so they travel on unchanged.
//! - Limits: every member is propagated while the list has at most 64 members and 8192 bytes, the
//!   specification's minimum (also the most OpenTelemetry's `Baggage` holds). Members beyond that are
//!   dropped whole, never cut. A member outside the grammar is dropped and the rest kept (the
//!   specification leaves this choice to the implementation). A key seen twice keeps its first entry.

use opentelemetry::baggage::{BaggageExt as _, BaggageMetadata, KeyValueMetadata};
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator, text_map_propagator::FieldIter};
use opentelemetry::{Context, Key, StringValue};

const BAGGAGE: &str = "baggage";
/// Members propagated at least (and at most: OpenTelemetry's `Baggage` holds 64).
pub(crate) const MAX_MEMBERS: usize = 64;
/// Bytes of the whole `baggage-string` propagated at least (and at most, as above).
pub(crate) const MAX_BYTES: usize = 8192;

/// The `baggage` entry of `OTEL_PROPAGATORS`.
#[derive(Debug)]
pub(crate) struct BaggagePropagator {
    fields: [String; 1],
}

impl BaggagePropagator {
    pub(crate) fn new() -> Self {
        BaggagePropagator { fields: [BAGGAGE.to_owned()] }
    }
}

/// RFC 7230 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A baggage key: an RFC 7230 token.
pub(crate) fn is_token(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(is_tchar)
}

/// `baggage-octet`: printable ASCII except space, `"`, `,`, `;` and `\`.
fn is_baggage_octet(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x2b | 0x2d..=0x3a | 0x3c..=0x5b | 0x5d..=0x7e)
}

fn trim_ows(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

/// Percent-decodes `value`; octets that are not UTF-8 become U+FFFD. A `%` not followed by two hex digits
/// is kept as it is.
pub(crate) fn percent_decode(value: &str) -> String {
    let b = value.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (b[i], b.get(i + 1).copied().and_then(hex), b.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encodes every byte of `value` outside `keep`, and `%`.
pub(crate) fn percent_encode(value: &str, keep: impl Fn(u8) -> bool) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b != b'%' && keep(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One property (`key` or `key=value`) in header form, OWS trimmed; `None` outside the grammar.
fn property(raw: &str) -> Option<String> {
    match raw.split_once('=') {
        None => is_token(trim_ows(raw)).then(|| trim_ows(raw).to_owned()),
        Some((key, value)) => {
            let (key, value) = (trim_ows(key), trim_ows(value));
            (is_token(key) && value.bytes().all(is_baggage_octet)).then(|| format!("{key}={value}"))
        }
    }
}

/// One list member: `(key, decoded value, properties in header form)`; `None` outside the grammar.
pub(crate) fn parse_member(member: &str) -> Option<(String, String, String)> {
    let mut parts = member.split(';');
    let (key, value) = parts.next()?.split_once('=')?;
    let (key, value) = (trim_ows(key), trim_ows(value));
    if !is_token(key) || !value.bytes().all(is_baggage_octet) {
        return None;
    }
    let properties = parts.map(property).collect::<Option<Vec<_>>>()?;
    Some((key.to_owned(), percent_decode(value), properties.join(";")))
}

/// Parses the `baggage` header fields, combined in order as one list, within the limits (see the module
/// docs). Empty members (as left by joining headers) are skipped.
pub(crate) fn parse<'a>(fields: impl IntoIterator<Item = &'a str>) -> Vec<(String, String, String)> {
    let mut out: Vec<(String, String, String)> = Vec::new();
    let mut bytes = 0;
    for field in fields {
        for member in field.split(',').map(trim_ows).filter(|m| !m.is_empty()) {
            if out.len() == MAX_MEMBERS {
                return out;
            }
            let Some(parsed) = parse_member(member) else { continue };
            // The member's size as it will be written again, with its separating comma.
            let size = member.len() + usize::from(!out.is_empty());
            if bytes + size > MAX_BYTES || out.iter().any(|(k, _, _)| *k == parsed.0) {
                continue;
            }
            bytes += size;
            out.push(parsed);
        }
    }
    out
}

/// One member in header form, or `None` when its key is not a token. Property values the metadata holds
/// outside `baggage-octet` are encoded; properties with invalid keys are left out.
fn format_member(key: &str, value: &str, metadata: &str) -> Option<String> {
    let key = trim_ows(key);
    if !is_token(key) {
        return None;
    }
    let mut member = format!("{key}={}", percent_encode(value, is_baggage_octet));
    for raw in metadata.split(';').map(trim_ows).filter(|p| !p.is_empty()) {
        let prop = match raw.split_once('=') {
            None => is_token(raw).then(|| raw.to_owned()),
            Some((k, v)) => is_token(trim_ows(k)).then(|| {
                // Already in header form, so `%` is an escape here, not a character to encode.
                let v: String =
                    trim_ows(v)
                        .bytes()
                        .map(|b| {
                            if b == b'%' || is_baggage_octet(b) { (b as char).to_string() } else { format!("%{b:02X}") }
                        })
                        .collect();
                format!("{}={v}", trim_ows(k))
            }),
        };
        if let Some(prop) = prop {
            member.push(';');
            member.push_str(&prop);
        }
    }
    Some(member)
}

/// The `baggage` value for a context's baggage, within the limits, or `None` when there is none.
pub(crate) fn format(cx: &Context) -> Option<String> {
    let mut members: Vec<String> = Vec::new();
    let mut bytes = 0;
    for (key, (value, metadata)) in cx.baggage() {
        let Some(member) = format_member(key.as_str(), value.as_str(), metadata.as_str()) else { continue };
        let size = member.len() + usize::from(!members.is_empty());
        if members.len() < MAX_MEMBERS && bytes + size <= MAX_BYTES {
            bytes += size;
            members.push(member);
        }
    }
    (!members.is_empty()).then(|| members.join(","))
}

/// `cx` with `entries` added to the baggage it already has (another propagator may have read some): an
/// entry already present keeps its value.
pub(crate) fn merge(cx: &Context, entries: Vec<(String, String, String)>) -> Context {
    if entries.is_empty() {
        return cx.clone();
    }
    let existing = cx.baggage();
    let mut list: Vec<KeyValueMetadata> =
        existing.iter().map(|(k, (v, m))| KeyValueMetadata::new(k.clone(), v.clone(), m.clone())).collect();
    for (key, value, metadata) in entries {
        if existing.get(key.as_str()).is_none() {
            list.push(KeyValueMetadata::new(Key::new(key), StringValue::from(value), BaggageMetadata::from(metadata)));
        }
    }
    cx.with_baggage(list)
}

impl TextMapPropagator for BaggagePropagator {
    fn inject_context(&self, cx: &Context, injector: &mut dyn Injector) {
        if let Some(value) = format(cx) {
            injector.set(BAGGAGE, value);
        }
    }

    fn extract_with_context(&self, cx: &Context, extractor: &dyn Extractor) -> Context {
        match extractor.get_all(BAGGAGE) {
            Some(fields) => merge(cx, parse(fields)),
            None => cx.clone(),
        }
    }

    fn fields(&self) -> FieldIter<'_> {
        FieldIter::new(&self.fields)
    }
}

/// One test per rule of the W3C Baggage specification, named after it.
#[cfg(test)]
mod tests {
    use super::super::w3c::test_headers::headers;
    use super::*;
    use std::collections::HashMap;

    fn extract(values: &[&str]) -> Context {
        let list: Vec<(&str, &str)> = values.iter().map(|v| ("baggage", *v)).collect();
        BaggagePropagator::new().extract(&headers(&list))
    }

    fn value(cx: &Context, key: &str) -> Option<String> {
        cx.baggage().get(key).map(|v| v.to_string())
    }

    fn inject(cx: &Context) -> Option<String> {
        let mut out: HashMap<String, String> = HashMap::new();
        BaggagePropagator::new().inject_context(cx, &mut out);
        out.remove("baggage")
    }

    #[test]
    fn list_of_key_value_members() {
        let cx = extract(&["userId=alice,serverNode=DF%2028,isProduction=false"]);
        assert_eq!(value(&cx, "userId").as_deref(), Some("alice"));
        assert_eq!(value(&cx, "serverNode").as_deref(), Some("DF 28"));
        assert_eq!(value(&cx, "isProduction").as_deref(), Some("false"));
    }

    #[test]
    fn multiple_baggage_headers_are_one_list() {
        let cx = extract(&["userId=alice", "serverNode=DF%2028,isProduction=false"]);
        assert_eq!(cx.baggage().len(), 3);
    }

    #[test]
    fn whitespace_around_keys_values_and_members_is_not_part_of_them() {
        let cx = extract(&["userId =   alice", " serverNode = DF%2028\t, isProduction = false "]);
        assert_eq!(value(&cx, "userId").as_deref(), Some("alice"));
        assert_eq!(value(&cx, "serverNode").as_deref(), Some("DF 28"));
        assert_eq!(value(&cx, "isProduction").as_deref(), Some("false"));
    }

    #[test]
    fn key_is_a_token() {
        assert!(is_token("userId") && is_token("a!#$%&'*+-.^_`|~9"));
        for bad in ["", "a b", "a,b", "a;b", "a=b", "a\"b", "a(b", "a@b", "a/b", "ké"] {
            assert!(!is_token(bad), "{bad:?}");
        }
        let cx = extract(&["bad key=1,a@b=2,good=3"]);
        assert_eq!(cx.baggage().len(), 1, "invalid members are dropped, the rest kept");
        assert_eq!(value(&cx, "good").as_deref(), Some("3"));
    }

    #[test]
    fn value_is_baggage_octets() {
        for bad in ["k=a b", "k=a\"b", "k=a\\b"] {
            assert_eq!(extract(&[bad]).baggage().len(), 0, "{bad}");
        }
        assert_eq!(value(&extract(&["k="]), "k").as_deref(), Some(""), "an empty value is allowed");
    }

    #[test]
    fn value_may_contain_equal_signs() {
        assert_eq!(value(&extract(&["k=a=b=="]), "k").as_deref(), Some("a=b=="));
    }

    #[test]
    fn values_are_percent_decoded() {
        assert_eq!(value(&extract(&["userId=Am%C3%A9lie"]), "userId").as_deref(), Some("Amélie"));
        assert_eq!(value(&extract(&["k=100%25"]), "k").as_deref(), Some("100%"));
    }

    #[test]
    fn invalid_utf8_after_decoding_becomes_the_replacement_character() {
        assert_eq!(value(&extract(&["k=a%FFb"]), "k").as_deref(), Some("a\u{FFFD}b"));
    }

    #[test]
    fn values_outside_baggage_octet_and_percent_are_percent_encoded() {
        let cx = Context::new().with_baggage(vec![opentelemetry::KeyValue::new("k", "Amélie 100%,;\"\\")]);
        let header = inject(&cx).unwrap();
        assert_eq!(header, "k=Am%C3%A9lie%20100%25%2C%3B%22%5C");
        assert_eq!(value(&extract(&[&header]), "k").as_deref(), Some("Amélie 100%,;\"\\"), "round trip");
    }

    #[test]
    fn properties_are_kept_and_propagated() {
        let cx = extract(&["key1=value1;property1;property2, key3=value3; propertyKey=propertyValue"]);
        let (v, meta) = cx.baggage().get_with_metadata("key1").unwrap();
        assert_eq!((v.as_str(), meta.as_str()), ("value1", "property1;property2"));
        assert_eq!(cx.baggage().get_with_metadata("key3").unwrap().1.as_str(), "propertyKey=propertyValue");
        let again = extract(&[&inject(&cx).unwrap()]);
        assert_eq!(again.baggage().get_with_metadata("key3").unwrap().1.as_str(), "propertyKey=propertyValue");
        assert_eq!(extract(&["k=v;bad key"]).baggage().len(), 0, "a property outside the grammar");
    }

    #[test]
    fn at_least_64_members_are_propagated() {
        let list = (0..64).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join(",");
        let cx = extract(&[&list]);
        assert_eq!(cx.baggage().len(), 64);
        assert_eq!(extract(&[&inject(&cx).unwrap()]).baggage().len(), 64);
        let more = (0..70).map(|i| format!("k{i}=v")).collect::<Vec<_>>().join(",");
        assert_eq!(extract(&[&more]).baggage().len(), 64, "the rest dropped whole");
    }

    #[test]
    fn at_least_8192_bytes_are_propagated_and_members_are_never_cut() {
        // Two members of 4095 bytes each and a separator: 8191 bytes, all propagated.
        let big = |k: &str| format!("{k}={}", "v".repeat(4093));
        let header = format!("{},{}", big("a"), big("b"));
        assert_eq!(header.len(), 8191);
        let cx = extract(&[&header]);
        assert_eq!(cx.baggage().len(), 2);
        assert_eq!(inject(&cx).unwrap().len(), 8191);
        // One more member would pass 8192 bytes: it is dropped whole, never cut.
        let cx = extract(&[&header, "c=12"]);
        assert_eq!(cx.baggage().len(), 2);
        assert!(value(&cx, "c").is_none());
    }

    #[test]
    fn a_member_larger_than_4096_bytes_is_propagated() {
        // The current specification has no per-member limit (the 4096 of earlier drafts was removed).
        let header = format!("k={}", "v".repeat(5000));
        assert_eq!(value(&extract(&[&header]), "k").map(|v| v.len()), Some(5000));
    }

    #[test]
    fn duplicate_keys_keep_the_first_entry() {
        assert_eq!(value(&extract(&["k=1,k=2"]), "k").as_deref(), Some("1"));
    }

    #[test]
    fn baggage_read_by_another_propagator_is_kept() {
        let cx = Context::new().with_baggage(vec![opentelemetry::KeyValue::new("tenant", "acme")]);
        let cx = BaggagePropagator::new().extract_with_context(&cx, &headers(&[("baggage", "user=alice,tenant=x")]));
        assert_eq!(value(&cx, "tenant").as_deref(), Some("acme"));
        assert_eq!(value(&cx, "user").as_deref(), Some("alice"));
    }

    #[test]
    fn no_header_is_written_without_baggage() {
        assert_eq!(inject(&Context::new()), None);
    }
}
