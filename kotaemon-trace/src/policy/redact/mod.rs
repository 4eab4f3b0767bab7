//! The redaction engine (what users read of it: `api::redact`).

use crate::base::error::InitError;
use crate::base::ports::TextPolicy;
use crate::config::RedactionConfig;

mod catalogue;
mod context;
mod detect;
mod inline;
mod keys;

use detect::{Detectors, Kind};
use hmac::{Hmac, KeyInit, Mac};
use opentelemetry::trace::Status;
use opentelemetry::{Array, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::SpanData;
use regex::Regex;
use sha2::Sha256;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

/// The attribute listing what was redacted on a span (`key:rule` entries, never values).
pub const AUDIT_ATTRIBUTE: &str = "kotaemon.redacted";
/// The marker that replaces the whole value under a secret key.
pub const KEY_MARKER: &str = "[REDACTED:key]";

/// Keys never redacted by default: structural attributes that carry code names, not user data.
const DEFAULT_ALLOW: &[&str] = &[
    "exception.type",
    "exception.escaped",
    "code.*",
    "otel.*",
    "kotaemon.*",
    "sampler.*",
    "sampling.priority",
    "span.kind",
    "error.type",
    "http.route",
    "http.request.method",
    "http.response.status_code",
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "gen_ai.usage.*",
    "llm.model_name",
    "llm.token_count.*",
    "openinference.span.kind",
    "db.system",
    "rpc.system",
    "service.name",
];

/// A user-supplied value rule: a name for the marker and audit, and the pattern.
#[derive(Clone, Debug)]
struct ValueRule {
    name: String,
    marker: String,
    pattern: Regex,
}

/// An invalid redaction setting, naming the option, the value and what is accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedactionError {
    option: String,
    value: String,
    accepted: String,
}

impl RedactionError {
    /// The variable or builder option.
    pub fn option(&self) -> &str {
        &self.option
    }

    /// The value given.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// What is accepted.
    pub fn accepted(&self) -> &str {
        &self.accepted
    }
}

impl fmt::Display for RedactionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={:?} is not valid: expected {}", self.option, self.value, self.accepted)
    }
}

impl std::error::Error for RedactionError {}

/// The key of the keyed hash behind pseudonyms. `Debug` never shows it.
#[derive(Clone)]
struct PseudonymKey(Arc<[u8]>);

impl fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PseudonymKey(hidden)")
    }
}

/// The key used when none is configured: drawn once per process from the OS, so every redactor of the
/// process (and a pipeline started again) gives the same pseudonyms, and no two processes do.
fn random_key() -> PseudonymKey {
    static PROCESS_KEY: OnceLock<PseudonymKey> = OnceLock::new();
    PROCESS_KEY
        .get_or_init(|| {
            let mut key = [0u8; 32];
            // An OS without a random source cannot run this library meaningfully; say so plainly.
            getrandom::fill(&mut key).expect("the operating system's random source is unavailable");
            PseudonymKey(Arc::from(&key[..]))
        })
        .clone()
}

/// Applies the redaction rules. [`Redactor::default`] has the default rules; [`Redactor::builder`] adds
/// to them.
///
/// ```
/// use kotaemon_trace::redact::Redactor;
///
/// let redactor = Redactor::default();
/// assert_eq!(redactor.redact("db.password", "hunter2"), "[REDACTED:key]");
/// assert_eq!(
///     redactor.redact("note", "mail alice@example.com"),
///     "mail [REDACTED:email]",
/// );
/// // Clean input is returned borrowed: no allocation.
/// assert!(matches!(redactor.redact("note", "order 90320 shipped"), std::borrow::Cow::Borrowed(_)));
/// ```
#[derive(Clone, Debug)]
pub struct Redactor {
    detectors: Arc<Detectors>,
    extra_keys: Vec<Regex>,
    values: Vec<ValueRule>,
    allow_exact: Vec<String>,
    allow_prefixes: Vec<String>,
    capture_arguments: bool,
    options: detect::Options,
    key: PseudonymKey,
    /// Which build this is, for the per-thread cache of key decisions ([`Redactor::redact_cached`]).
    #[cfg_attr(not(feature = "otlp-logs"), allow(dead_code))]
    id: u64,
}

fn shared_detectors() -> Arc<Detectors> {
    static DETECTORS: OnceLock<Arc<Detectors>> = OnceLock::new();
    DETECTORS.get_or_init(|| Arc::new(Detectors::new())).clone()
}

impl Default for Redactor {
    fn default() -> Self {
        Redactor::builder().build()
    }
}

/// Builds a [`Redactor`] on top of the default rules.
///
/// ```
/// use kotaemon_trace::redact::Redactor;
///
/// let redactor = Redactor::builder()
///     .secret_key_pattern("(?i)^x-internal-")?
///     .value_pattern("employee_id", r"\bEMP-\d{6}\b")?
///     .allow_key("user.email_domain")
///     .pseudonym_key(b"0123456789abcdef0123456789abcdef")
///     .build();
/// assert_eq!(redactor.redact("x-internal-route", "a"), "[REDACTED:key]");
/// assert_eq!(redactor.redact("note", "EMP-123456 asked"), "[REDACTED:employee_id] asked");
/// # Ok::<(), kotaemon_trace::redact::RedactionError>(())
/// ```
#[derive(Debug)]
#[must_use]
pub struct RedactorBuilder {
    redactor: Redactor,
}

impl RedactorBuilder {
    /// Keys matching this regex are secret too (in addition to the defaults).
    pub fn secret_key_pattern(mut self, pattern: &str) -> Result<Self, RedactionError> {
        let re = Regex::new(pattern).map_err(|e| RedactionError {
            option: "KOTAEMON_TRACE_REDACT_KEYS".into(),
            value: pattern.into(),
            accepted: format!("a regular expression ({e})"),
        })?;
        self.redactor.extra_keys.push(re);
        Ok(self)
    }

    /// Matches of this regex inside any value are replaced by `[REDACTED:<name>]`.
    pub fn value_pattern(mut self, name: &str, pattern: &str) -> Result<Self, RedactionError> {
        let valid_name = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid_name {
            return Err(RedactionError {
                option: "KOTAEMON_TRACE_REDACT_VALUES".into(),
                value: name.into(),
                accepted: "a rule name of ASCII letters, digits and '_'".into(),
            });
        }
        let re = Regex::new(pattern).map_err(|e| RedactionError {
            option: "KOTAEMON_TRACE_REDACT_VALUES".into(),
            value: format!("{name}={pattern}"),
            accepted: format!("name=regular expression ({e})"),
        })?;
        self.redactor.values.push(ValueRule { name: name.into(), marker: format!("[REDACTED:{name}]"), pattern: re });
        Ok(self)
    }

    /// A key that is never redacted; `prefix.*` allows every key under the prefix.
    pub fn allow_key(mut self, key: &str) -> Self {
        match key.strip_suffix('*') {
            Some(prefix) => self.redactor.allow_prefixes.push(prefix.to_owned()),
            None => self.redactor.allow_exact.push(key.to_owned()),
        }
        self
    }

    /// Whether the macro records argument values at all (default `true`). Off, only `fields(...)`,
    /// return values and `record` calls are recorded, still redacted.
    pub fn capture_arguments(mut self, capture: bool) -> Self {
        self.redactor.capture_arguments = capture;
        self
    }

    /// Whether IP addresses are redacted (default `true`; `KOTAEMON_TRACE_REDACT_IP`). Off keeps client
    /// addresses for operators who need them and may store them.
    pub fn redact_ip(mut self, redact: bool) -> Self {
        self.redactor.options.ip = redact;
        self
    }

    /// The key of the pseudonym hash; use the same key in every service so pseudonyms join across them.
    pub fn pseudonym_key(mut self, key: &[u8]) -> Self {
        self.redactor.key = PseudonymKey(Arc::from(key));
        self
    }

    /// The finished redactor.
    pub fn build(self) -> Redactor {
        static BUILT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        Redactor { id: BUILT.fetch_add(1, std::sync::atomic::Ordering::Relaxed), ..self.redactor }
    }
}

/// What happened to one value: the result and, when something was redacted, by which rule.
struct Outcome<'a> {
    value: Cow<'a, str>,
    rules: Vec<&'static str>,
    custom: Vec<String>,
}

impl Redactor {
    /// Starts from the default rules.
    pub fn builder() -> RedactorBuilder {
        let mut allow_exact = Vec::new();
        let mut allow_prefixes = Vec::new();
        for key in DEFAULT_ALLOW {
            match key.strip_suffix('*') {
                Some(prefix) => allow_prefixes.push(prefix.to_owned()),
                None => allow_exact.push((*key).to_owned()),
            }
        }
        RedactorBuilder {
            redactor: Redactor {
                detectors: shared_detectors(),
                extra_keys: Vec::new(),
                values: Vec::new(),
                allow_exact,
                allow_prefixes,
                capture_arguments: true,
                options: detect::Options::default(),
                key: random_key(),
                id: 0,
            },
        }
    }

    /// Applies the same rules the pipeline applies to an attribute `key = value`. Borrowed when nothing
    /// matched.
    ///
    /// ```
    /// use kotaemon_trace::redact::Redactor;
    /// let r = Redactor::default();
    /// assert_eq!(r.redact("http.request.header.authorization", "Bearer abc.def"), "[REDACTED:key]");
    /// assert_eq!(r.redact("note", "reset your password from the account page"),
    ///            "reset your password from the account page");
    /// ```
    pub fn redact<'a>(&self, key: &str, value: &'a str) -> Cow<'a, str> {
        self.apply(key, value, &mut Vec::new()).value
    }

    /// A stable pseudonym for `value`: `anon:` and 32 hex digits (the first 128 bits) of HMAC-SHA256 under
    /// this redactor's key. 128 bits keep accidental collisions out of reach (about 2^64 distinct values
    /// before one is likely), so pseudonyms can serve as join keys; without the key they cannot be reversed
    /// or recomputed, not even for low-entropy inputs such as phone numbers.
    ///
    /// ```
    /// use kotaemon_trace::redact::Redactor;
    /// let r = Redactor::builder().pseudonym_key(b"a key shared by every service!!").build();
    /// let id = r.pseudonym("+86 139 5998 2352");
    /// assert!(id.starts_with("anon:") && id.len() == 37);
    /// assert_eq!(id, r.pseudonym("+86 139 5998 2352"));
    /// ```
    pub fn pseudonym(&self, value: &str) -> String {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key.0).expect("HMAC accepts keys of any length");
        mac.update(value.as_bytes());
        let digest = mac.finalize().into_bytes();
        let mut out = String::with_capacity(37);
        out.push_str("anon:");
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for byte in &digest[..16] {
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
        out
    }

    /// Whether the macro records argument values.
    pub fn captures_arguments(&self) -> bool {
        self.capture_arguments
    }

    fn allowed(&self, key: &str) -> bool {
        self.allow_exact.iter().any(|k| k == key) || self.allow_prefixes.iter().any(|p| key.starts_with(p.as_str()))
    }

    fn secret_key(&self, key: &str) -> bool {
        keys::is_secret_key(key) || self.extra_keys.iter().any(|re| re.is_match(key))
    }

    fn apply<'a>(&self, key: &str, value: &'a str, found: &mut Vec<(Range<usize>, Kind)>) -> Outcome<'a> {
        if self.allowed(key) {
            return Outcome { value: Cow::Borrowed(value), rules: Vec::new(), custom: Vec::new() };
        }
        if self.secret_key(key) {
            return Outcome { value: Cow::Owned(KEY_MARKER.to_owned()), rules: vec!["key"], custom: Vec::new() };
        }
        self.apply_value(value, found)
    }

    /// [`Self::redact`] with this thread's cache of key decisions: for callers that redact attribute after
    /// attribute on the caller's thread (the OTLP log appender), where classifying the key each time
    /// (~120 ns: splitting it into words, matching them against the key lists) was most of the cost.
    #[cfg_attr(not(feature = "otlp-logs"), allow(dead_code))]
    pub(crate) fn redact_cached<'a>(&self, key: &str, value: &'a str) -> Cow<'a, str> {
        thread_local! {
            /// The decisions of the redactor last used on this thread.
            static KEYS: std::cell::RefCell<(u64, KeyCache)> = std::cell::RefCell::new((0, KeyCache::default()));
        }
        let decision = KEYS
            .try_with(|cell| {
                let mut cached = cell.try_borrow_mut().ok()?;
                if cached.0 != self.id {
                    *cached = (self.id, KeyCache::default());
                }
                Some(cached.1.decide(self, key))
            })
            .ok()
            .flatten();
        match decision {
            Some(KeyDecision::Allowed) => Cow::Borrowed(value),
            Some(KeyDecision::Secret) => Cow::Owned(KEY_MARKER.to_owned()),
            Some(KeyDecision::ScanValue) => self.apply_value(value, &mut Vec::new()).value,
            None => self.redact(key, value),
        }
    }

    /// The value detectors and custom value rules only.
    fn apply_value<'a>(&self, value: &'a str, found: &mut Vec<(Range<usize>, Kind)>) -> Outcome<'a> {
        let mut outcome = Outcome { value: Cow::Borrowed(value), rules: Vec::new(), custom: Vec::new() };
        self.detectors.find(value, found, self.options);
        let mut redacted = detect::replace(value, found);
        outcome.rules.extend(found.iter().map(|(_, kind)| kind.name()));
        for rule in &self.values {
            if rule.pattern.is_match(&redacted) {
                redacted = Cow::Owned(rule.pattern.replace_all(&redacted, rule.marker.as_str()).into_owned());
                outcome.custom.push(rule.name.clone());
            }
        }
        outcome.value = redacted;
        outcome
    }

    /// Redacts a whole span in place and adds the audit attribute. `cache` remembers key decisions (the
    /// export thread keeps one).
    pub(crate) fn redact_span(&self, span: &mut SpanData, cache: &mut KeyCache) {
        let mut audit: Vec<String> = Vec::new();
        let mut found = Vec::new();
        self.redact_attributes(&mut span.attributes, cache, &mut audit, &mut found);
        for event in &mut span.events.events {
            self.redact_attributes(&mut event.attributes, cache, &mut audit, &mut found);
        }
        for link in &mut span.links.links {
            self.redact_attributes(&mut link.attributes, cache, &mut audit, &mut found);
        }
        if let Status::Error { description } = &mut span.status {
            // The description is free text (an error's message): always scanned, whatever the allow-list.
            let outcome = self.apply_value(description, &mut found);
            if let Cow::Owned(new) = outcome.value {
                note(&mut audit, "otel.status_description", &outcome.rules, &outcome.custom);
                *description = Cow::Owned(new);
            }
        }
        if !audit.is_empty() {
            for entry in &audit {
                // Entries are `key:rule`; rule names hold no `:`.
                if let Some((_, rule)) = entry.rsplit_once(':') {
                    cache.redactions.add(rule);
                }
            }
            audit.sort();
            audit.dedup();
            let list: Vec<StringValue> = audit.into_iter().map(StringValue::from).collect();
            span.attributes.push(KeyValue::new(AUDIT_ATTRIBUTE, Value::Array(Array::String(list))));
        }
    }

    fn redact_attributes(
        &self,
        attributes: &mut [KeyValue],
        cache: &mut KeyCache,
        audit: &mut Vec<String>,
        found: &mut Vec<(Range<usize>, Kind)>,
    ) {
        for kv in attributes {
            let key = kv.key.as_str();
            match cache.decide(self, key) {
                KeyDecision::Allowed => continue,
                KeyDecision::Secret => {
                    kv.value = Value::String(StringValue::from(KEY_MARKER));
                    note(audit, key, &["key"], &[]);
                    continue;
                }
                KeyDecision::ScanValue => {}
            }
            match &mut kv.value {
                Value::String(s) => {
                    let outcome = self.apply_value(s.as_str(), found);
                    if let Cow::Owned(new) = outcome.value {
                        note(audit, key, &outcome.rules, &outcome.custom);
                        *s = StringValue::from(new);
                    }
                }
                Value::Array(Array::String(items)) => {
                    for s in items {
                        let outcome = self.apply_value(s.as_str(), found);
                        if let Cow::Owned(new) = outcome.value {
                            note(audit, key, &outcome.rules, &outcome.custom);
                            *s = StringValue::from(new);
                        }
                    }
                }
                // Numbers can be card or phone numbers too when stored as integers.
                Value::I64(n) => {
                    // The built-in detectors need seven digits; only a custom rule can match fewer.
                    if n.unsigned_abs() < 1_000_000 && self.values.is_empty() {
                        continue;
                    }
                    let mut buffer = [0u8; 20];
                    let text = format_integer(*n, &mut buffer);
                    let outcome = self.apply_value(text, found);
                    if let Cow::Owned(new) = outcome.value {
                        note(audit, key, &outcome.rules, &outcome.custom);
                        kv.value = Value::String(StringValue::from(new));
                    }
                }
                _ => {}
            }
        }
    }
}

/// `n` in decimal, written into `buffer` (an `i64` has at most 20 characters): no allocation per value.
fn format_integer(n: i64, buffer: &mut [u8; 20]) -> &str {
    use std::io::Write as _;
    let mut cursor = std::io::Cursor::new(&mut buffer[..]);
    let _ = write!(cursor, "{n}");
    let written = cursor.position() as usize;
    std::str::from_utf8(&buffer[..written]).unwrap_or_default()
}

fn note(audit: &mut Vec<String>, key: &str, rules: &[&str], custom: &[String]) {
    for rule in rules {
        audit.push(format!("{key}:{rule}"));
    }
    for rule in custom {
        audit.push(format!("{key}:{rule}"));
    }
}

/// Per-key decisions, computed once per distinct key on the export thread. Looked up for every attribute
/// of every span, so hashed with foldhash (seeded, several times faster than SipHash on short keys;
/// measured: SipHash was a tenth of the export thread's time).
#[derive(Debug, Default)]
pub(crate) struct KeyCache {
    decisions: HashMap<String, KeyDecision, foldhash::fast::RandomState>,
    /// Redactions per rule since the export thread last took them (for `kotaemon_trace_redactions_total`).
    pub(crate) redactions: RedactionCounts,
}

/// Redactions counted per rule name. Few distinct names (the catalogue's and the configured rules'), so a
/// list searched in order.
#[derive(Debug, Default)]
pub(crate) struct RedactionCounts(Vec<(String, u64)>);

impl RedactionCounts {
    fn add(&mut self, rule: &str) {
        match self.0.iter_mut().find(|(name, _)| name == rule) {
            Some((_, n)) => *n += 1,
            None => self.0.push((rule.to_owned(), 1)),
        }
    }

    /// The counts so far, leaving zeros (the names stay, so the next span allocates nothing).
    pub(crate) fn take(&mut self) -> impl Iterator<Item = (&str, u64)> {
        self.0.iter_mut().filter(|(_, n)| *n > 0).map(|(name, n)| (name.as_str(), std::mem::take(n)))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyDecision {
    Allowed,
    Secret,
    ScanValue,
}

/// Keys are code, not data, so there are few of them; the bound only guards against keys built from
/// values.
const KEY_CACHE_LIMIT: usize = 4096;

impl KeyCache {
    fn decide(&mut self, redactor: &Redactor, key: &str) -> KeyDecision {
        if let Some(d) = self.decisions.get(key) {
            return *d;
        }
        let decision = if redactor.allowed(key) {
            KeyDecision::Allowed
        } else if redactor.secret_key(key) {
            KeyDecision::Secret
        } else {
            KeyDecision::ScanValue
        };
        if self.decisions.len() >= KEY_CACHE_LIMIT {
            self.decisions.clear();
        }
        self.decisions.insert(key.to_owned(), decision);
        decision
    }
}

impl Redactor {
    /// The redactor `config` describes.
    pub(crate) fn from_config(config: &RedactionConfig) -> Result<Redactor, RedactionError> {
        let mut builder = Redactor::builder().capture_arguments(config.capture_arguments).redact_ip(config.redact_ip);
        for pattern in &config.secret_key_patterns {
            builder = builder.secret_key_pattern(pattern)?;
        }
        for (name, pattern) in &config.value_patterns {
            builder = builder.value_pattern(name, pattern)?;
        }
        for key in &config.allow_keys {
            builder = builder.allow_key(key);
        }
        if let Some(key) = &config.pseudonym_key {
            builder = builder.pseudonym_key(key.as_bytes());
        }
        Ok(builder.build())
    }
}

/// A pattern that does not compile stops `init`, naming the option.
impl From<RedactionError> for InitError {
    fn from(e: RedactionError) -> Self {
        InitError::invalid(e.option(), e.value(), e.accepted())
    }
}

/// What the helpers (GenAI content, pseudonyms) use of the installed redactor.
impl TextPolicy for Redactor {
    fn redact<'a>(&self, key: &str, value: &'a str) -> Cow<'a, str> {
        Redactor::redact(self, key, value)
    }

    fn pseudonym(&self, value: &str) -> String {
        Redactor::pseudonym(self, value)
    }
}

/// For the finders' tests: `value` with every range a finder reports replaced by `~`.
#[cfg(test)]
fn masked_by(value: &str, find: impl FnOnce(&str, &mut dyn FnMut(Range<usize>, Kind))) -> String {
    let mut found: Vec<Range<usize>> = Vec::new();
    find(value, &mut |r, _| found.push(r));
    let mut out = value.to_owned();
    for r in found.iter().rev() {
        out.replace_range(r.clone(), "~");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::InstrumentationScope;
    use opentelemetry::trace::{Event, Link, SpanContext, SpanId, SpanKind, TraceFlags, TraceId, TraceState};
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use std::time::SystemTime;

    fn span(attributes: Vec<KeyValue>) -> SpanData {
        let cx = SpanContext::new(TraceId::from(1), SpanId::from(2), TraceFlags::SAMPLED, false, TraceState::default());
        SpanData {
            span_context: cx.clone(),
            parent_span_id: SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: "login".into(),
            start_time: SystemTime::UNIX_EPOCH,
            end_time: SystemTime::UNIX_EPOCH,
            attributes,
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: Status::Unset,
            instrumentation_scope: InstrumentationScope::default(),
        }
    }

    fn get<'a>(attributes: &'a [KeyValue], key: &str) -> &'a Value {
        &attributes.iter().find(|kv| kv.key.as_str() == key).unwrap_or_else(|| panic!("{key} missing")).value
    }

    fn audit(span: &SpanData) -> Vec<String> {
        match span.attributes.iter().filter(|kv| kv.key.as_str() == AUDIT_ATTRIBUTE).collect::<Vec<_>>().as_slice() {
            [] => Vec::new(),
            [one] => match &one.value {
                Value::Array(Array::String(items)) => items.iter().map(|s| s.as_str().to_owned()).collect(),
                other => panic!("audit attribute is {other:?}"),
            },
            _ => panic!("more than one audit attribute"),
        }
    }

    #[test]
    fn every_place_that_carries_text_is_redacted_and_audited_without_values() {
        let r = Redactor::default();
        let mut s = span(vec![
            KeyValue::new("db.password", "hunter2"),
            KeyValue::new("user.pin", 4321_i64),
            KeyValue::new("auth.has_token", true),
            KeyValue::new("input.value", "mail alice@example.com please"),
            KeyValue::new("llm.token_count.prompt", 12_i64),
            KeyValue::new("tags", Value::Array(Array::String(vec!["ok".into(), "call +86 139 5998 2352".into()]))),
            KeyValue::new("order", 4111111111111111_i64),
            KeyValue::new("exception.type", "alice@example.com"),
            KeyValue::new("query", "where is order 90320"),
        ]);
        s.events.events.push(Event::new(
            "exception",
            SystemTime::UNIX_EPOCH,
            vec![KeyValue::new("exception.message", "login failed for bob@example.org")],
            0,
        ));
        let link_cx =
            SpanContext::new(TraceId::from(3), SpanId::from(4), TraceFlags::SAMPLED, true, TraceState::default());
        s.links.links.push(Link::new(link_cx, vec![KeyValue::new("link.note", "Bearer abcdef0123456789")], 0));
        s.status = Status::error("card 4111 1111 1111 1111 declined");

        r.redact_span(&mut s, &mut KeyCache::default());

        assert_eq!(get(&s.attributes, "db.password"), &Value::from(KEY_MARKER));
        assert_eq!(get(&s.attributes, "user.pin"), &Value::from(KEY_MARKER), "numbers under a secret key too");
        assert_eq!(get(&s.attributes, "auth.has_token"), &Value::Bool(true));
        assert_eq!(get(&s.attributes, "input.value"), &Value::from("mail [REDACTED:email] please"));
        assert_eq!(get(&s.attributes, "llm.token_count.prompt"), &Value::I64(12), "a count, not a token");
        assert_eq!(
            get(&s.attributes, "tags"),
            &Value::Array(Array::String(vec!["ok".into(), "call [REDACTED:phone]".into()]))
        );
        assert_eq!(get(&s.attributes, "order"), &Value::from("[REDACTED:credit_card]"), "integers are scanned");
        assert_eq!(get(&s.attributes, "exception.type"), &Value::from("alice@example.com"), "allow-listed");
        assert_eq!(get(&s.attributes, "query"), &Value::from("where is order 90320"));
        assert_eq!(
            get(&s.events.events[0].attributes, "exception.message"),
            &Value::from("login failed for [REDACTED:email]")
        );
        assert_eq!(s.events.events[0].name, "exception", "event names are code and stay");
        assert_eq!(get(&s.links.links[0].attributes, "link.note"), &Value::from("Bearer [REDACTED:bearer]"));
        assert_eq!(s.status, Status::error("card [REDACTED:credit_card] declined"));

        let audit = audit(&s);
        for entry in [
            "db.password:key",
            "user.pin:key",
            "input.value:email",
            "tags:phone",
            "order:credit_card",
            "exception.message:email",
            "link.note:bearer",
            "otel.status_description:credit_card",
        ] {
            assert!(audit.iter().any(|a| a == entry), "{entry} missing from {audit:?}");
        }
        let printed = audit.join(",");
        for secret in ["hunter2", "4321", "alice", "5998", "4111", "bob@", "abcdef0123456789"] {
            assert!(!printed.contains(secret), "the audit attribute must not carry {secret:?}");
        }
        assert_eq!(s.name, "login");
    }

    #[test]
    fn a_clean_span_is_left_alone_and_gets_no_audit_attribute() {
        let r = Redactor::default();
        let attributes = vec![
            KeyValue::new("input.value", "How does retrieval-augmented generation work?"),
            KeyValue::new("retriever.top_k", 5_i64),
            KeyValue::new("gen_ai.usage.input_tokens", 1200_i64),
            KeyValue::new("document.author", "Jane Austen"),
        ];
        let mut s = span(attributes.clone());
        r.redact_span(&mut s, &mut KeyCache::default());
        assert_eq!(s.attributes, attributes);
        assert!(audit(&s).is_empty());
    }

    #[test]
    fn configuration_adds_rules_and_allows_keys() {
        let r = Redactor::builder()
            .secret_key_pattern("(?i)^x-internal-")
            .unwrap()
            .value_pattern("employee_id", r"\bEMP-\d{6}\b")
            .unwrap()
            .allow_key("support.contact")
            .allow_key("public.*")
            .build();
        assert_eq!(r.redact("X-Internal-Route", "a"), KEY_MARKER);
        assert_eq!(r.redact("note", "EMP-123456 asked"), "[REDACTED:employee_id] asked");
        assert_eq!(r.redact("support.contact", "help@example.com"), "help@example.com");
        assert_eq!(r.redact("public.password", "shown"), "shown", "the allow-list wins over key rules");
        assert_eq!(r.redact("note", "help@example.com"), "[REDACTED:email]", "defaults still apply");

        let e = Redactor::builder().value_pattern("bad", "(unclosed").unwrap_err();
        assert!(e.option().starts_with("KOTAEMON_TRACE_REDACT_VALUES"));
        assert!(e.value().contains("(unclosed") && e.accepted().contains("regular expression"), "{e}");
        let e = Redactor::builder().value_pattern("has space", "x").unwrap_err();
        assert!(e.accepted().contains("letters"), "{e}");
        assert!(Redactor::builder().secret_key_pattern("[").is_err());
    }

    #[test]
    fn integers_are_scanned_by_every_rule_that_could_match_them() {
        // Short integers skip the built-in detectors (they need seven digits), but not a custom rule.
        let with_rule = Redactor::builder().value_pattern("pin", r"^\d{4}$").unwrap().build();
        let mut s = span(vec![KeyValue::new("order.check", 4321_i64), KeyValue::new("count", 12_i64)]);
        with_rule.redact_span(&mut s, &mut KeyCache::default());
        assert_eq!(get(&s.attributes, "order.check"), &Value::from("[REDACTED:pin]"));
        assert_eq!(get(&s.attributes, "count"), &Value::I64(12));
        let r = Redactor::default();
        let mut s = span(vec![
            KeyValue::new("negative", -4111111111111111_i64),
            KeyValue::new("extreme", i64::MIN),
            KeyValue::new("short", 999_999_i64),
        ]);
        r.redact_span(&mut s, &mut KeyCache::default());
        assert_eq!(get(&s.attributes, "negative"), &Value::from("-[REDACTED:credit_card]"));
        assert_eq!(get(&s.attributes, "extreme"), &Value::I64(i64::MIN), "20 characters fit the buffer");
        assert_eq!(get(&s.attributes, "short"), &Value::I64(999_999));
    }

    #[test]
    fn the_cached_path_decides_as_the_uncached_one_for_each_redactor() {
        let default = Redactor::default();
        let custom = Redactor::builder().allow_key("db.password").secret_key_pattern("(?i)^note$").unwrap().build();
        let cases = [
            ("db.password", "hunter2"),
            ("note", "mail alice@example.com"),
            ("input.value", "order 90320 shipped"),
            ("exception.type", "alice@example.com"),
            ("auth.has_token", "true"),
        ];
        // Alternating redactors on one thread: the cache must follow whichever is used.
        for _ in 0..2 {
            for r in [&default, &custom] {
                for (key, value) in cases {
                    assert_eq!(r.redact_cached(key, value), r.redact(key, value), "{key}");
                }
            }
        }
        assert_eq!(custom.redact_cached("db.password", "hunter2"), "hunter2", "allowed by the custom redactor");
        assert_eq!(default.redact_cached("db.password", "hunter2"), KEY_MARKER);
        assert!(matches!(default.redact_cached("input.value", "order 90320 shipped"), Cow::Borrowed(_)));
    }

    /// Arbitrary text built from the characters every detector reacts to (anchors, separators, quotes,
    /// brackets, digits, multi-byte characters): no panic, and a borrowed result is the input.
    #[test]
    fn arbitrary_text_never_panics() {
        let pieces = [
            "ghp_",
            "xoxb-",
            "sk-",
            "AKIA",
            "MT",
            ":A",
            "Q~",
            "AccountKey=",
            "sig=",
            "kind: Secret\n",
            "data:\n  ",
            "<add key=\"password\" value=\"",
            "curl -u ",
            "contribsys.com ",
            "password=",
            "token: ",
            "${",
            "}",
            "{{",
            "\"",
            "'",
            "(",
            ")",
            "[",
            "<",
            ">",
            "=",
            ":",
            "::",
            ".",
            "-",
            "_",
            " ",
            "\n",
            "0x",
            "bc1",
            "1",
            "3",
            "9",
            "a1B2c3D4e5F6g7H8",
            "4111 1111 1111 1111",
            "536-22-8945",
            "AB 12 34 56 C",
            "192.168.1.1",
            "fe80::1",
            "值",
            "。",
            "é",
            "\u{2003}",
            "@",
            "://",
            "Bearer ",
            "eyJ",
        ];
        let r = Redactor::default();
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        for _ in 0..3000 {
            let mut text = String::new();
            for _ in 0..(state % 24) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                text.push_str(pieces[(state % pieces.len() as u64) as usize]);
            }
            if let Cow::Borrowed(same) = r.redact("note", &text) {
                assert_eq!(same, text);
            }
            let _ = r.redact("password_note", &text);
        }
    }

    #[test]
    fn clean_input_is_borrowed_and_markers_never_echo() {
        let r = Redactor::default();
        for clean in ["", "order 90320 shipped", "gpt-4o-mini", "2026-01-08T10:14:00Z"] {
            assert!(matches!(r.redact("note", clean), Cow::Borrowed(_)), "{clean}");
        }
        let out = r.redact("note", "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz012345 and 4111 1111 1111 1111");
        assert_eq!(out, "[REDACTED:openai_api_key] and [REDACTED:credit_card]");
    }
}
