//! The last step before export, run on the export thread: redaction, then the limits the SDK does not
//! apply itself (attribute value length). Redaction comes first so a secret cut in half by truncation is
//! still recognised.

use crate::policy::redact::{KeyCache, Redactor};
use opentelemetry::{Array, KeyValue, StringValue, Value};
use opentelemetry_sdk::trace::SpanData;
use std::sync::Arc;

#[derive(Debug, Default)]
pub(crate) struct Finisher {
    /// `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`, in characters.
    pub(crate) value_length: Option<usize>,
    /// `None` only when redaction was switched off.
    pub(crate) redactor: Option<Arc<Redactor>>,
    pub(crate) keys: KeyCache,
    /// Scrubbed from export error messages before they are logged or returned.
    pub(crate) secrets: crate::export::secret::Secrets,
}

/// What the span limits removed from one span (or a batch, summed): reported in
/// [`ExportStats`](crate::wiring::guard::ExportStats).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Limited {
    pub(crate) values_truncated: u64,
    pub(crate) attributes_dropped: u64,
    pub(crate) events_dropped: u64,
    pub(crate) links_dropped: u64,
}

impl std::ops::AddAssign for Limited {
    fn add_assign(&mut self, other: Limited) {
        self.values_truncated += other.values_truncated;
        self.attributes_dropped += other.attributes_dropped;
        self.events_dropped += other.events_dropped;
        self.links_dropped += other.links_dropped;
    }
}

impl Finisher {
    /// Redacts and truncates `span`, and counts what the limits removed: the values cut here, and the
    /// attributes, events and links over their count limits (which the SDK dropped as the span was
    /// recorded, counting them in the span).
    pub(crate) fn finish(&mut self, span: &mut SpanData) -> Limited {
        let refused = refuse_oversized(span);
        if let Some(redactor) = &self.redactor {
            redactor.redact_span(span, &mut self.keys);
            for (rule, n) in self.keys.redactions.take() {
                crate::export::metrics::record_redactions(rule, n);
            }
        }
        let mut limited = Limited {
            values_truncated: refused,
            attributes_dropped: u64::from(span.dropped_attributes_count)
                + span.events.events.iter().map(|e| u64::from(e.dropped_attributes_count)).sum::<u64>()
                + span.links.links.iter().map(|l| u64::from(l.dropped_attributes_count)).sum::<u64>(),
            events_dropped: u64::from(span.events.dropped_count),
            links_dropped: u64::from(span.links.dropped_count),
        };
        if let Some(limit) = self.value_length {
            limited.values_truncated += truncate_all(&mut span.attributes, limit);
            for event in &mut span.events.events {
                limited.values_truncated += truncate_all(&mut event.attributes, limit);
            }
            for link in &mut span.links.links {
                limited.values_truncated += truncate_all(&mut link.attributes, limit);
            }
        }
        limited
    }
}

/// The longest string value (or status description) the redactor is given, in bytes. A longer one is
/// replaced whole by a short marker before redaction, never cut (a cut could split a secret and hide it
/// from the detectors), so redaction work per value is bounded and nothing unscanned is exported.
pub(crate) const MAX_VALUE_BYTES: usize = 1 << 20;

fn oversized_marker(len: usize) -> String {
    format!("[kotaemon-trace: a value of {len} bytes was removed, over the {MAX_VALUE_BYTES}-byte bound]")
}

/// Replaces every value over [`MAX_VALUE_BYTES`]; returns how many.
fn refuse_oversized(span: &mut SpanData) -> u64 {
    fn in_attributes(attributes: &mut [KeyValue]) -> u64 {
        let mut count = 0;
        for kv in attributes {
            match &mut kv.value {
                Value::String(s) if s.as_str().len() > MAX_VALUE_BYTES => {
                    *s = oversized_marker(s.as_str().len()).into();
                    count += 1;
                }
                Value::Array(Array::String(items)) => {
                    for s in items.iter_mut().filter(|s| s.as_str().len() > MAX_VALUE_BYTES) {
                        *s = oversized_marker(s.as_str().len()).into();
                        count += 1;
                    }
                }
                _ => {}
            }
        }
        count
    }
    let mut count = in_attributes(&mut span.attributes);
    for event in &mut span.events.events {
        count += in_attributes(&mut event.attributes);
    }
    for link in &mut span.links.links {
        count += in_attributes(&mut link.attributes);
    }
    if let opentelemetry::trace::Status::Error { description } = &mut span.status
        && description.len() > MAX_VALUE_BYTES
    {
        *description = oversized_marker(description.len()).into();
        count += 1;
    }
    count
}

/// Cuts every string (and string array item) longer than `limit` characters; returns how many were cut.
fn truncate_all(attributes: &mut [KeyValue], limit: usize) -> u64 {
    let mut cut_count = 0;
    for kv in attributes {
        match &mut kv.value {
            Value::String(s) => {
                if let Some(cut) = truncated(s.as_str(), limit) {
                    *s = cut;
                    cut_count += 1;
                }
            }
            Value::Array(Array::String(items)) => {
                for s in items {
                    if let Some(cut) = truncated(s.as_str(), limit) {
                        *s = cut;
                        cut_count += 1;
                    }
                }
            }
            _ => {}
        }
    }
    cut_count
}

/// The first `limit` characters of `s`, or `None` when it is short enough. Cuts on a character boundary.
fn truncated(s: &str, limit: usize) -> Option<StringValue> {
    if s.len() <= limit {
        // Never more characters than bytes.
        return None;
    }
    let (cut, _) = s.char_indices().nth(limit)?;
    Some(StringValue::from(s[..cut].to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncates_on_character_boundaries() {
        assert_eq!(truncated("héllo", 2).map(|s| s.as_str().to_owned()), Some("hé".to_owned()));
        assert_eq!(truncated("héllo", 5), None);
        assert_eq!(truncated("日本語テキスト", 3).map(|s| s.as_str().to_owned()), Some("日本語".to_owned()));
        let mut attrs = vec![KeyValue::new("a", "abcdef"), KeyValue::new("n", 123456_i64)];
        assert_eq!(truncate_all(&mut attrs, 3), 1);
        assert_eq!(attrs[0].value, Value::from("abc"));
        assert_eq!(attrs[1].value, Value::I64(123456));
    }
}
