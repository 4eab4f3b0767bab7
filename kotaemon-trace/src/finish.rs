//! The last step before export, run on the export thread: redaction, then the limits the SDK does not
//! apply itself (attribute value length). Redaction comes first so a secret cut in half by truncation is
//! still recognised.

use crate::redact::{KeyCache, Redactor};
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
}

impl Finisher {
    pub(crate) fn finish(&mut self, span: &mut SpanData) {
        if let Some(redactor) = &self.redactor {
            redactor.redact_span(span, &mut self.keys);
        }
        if let Some(limit) = self.value_length {
            truncate_all(&mut span.attributes, limit);
            for event in &mut span.events.events {
                truncate_all(&mut event.attributes, limit);
            }
            for link in &mut span.links.links {
                truncate_all(&mut link.attributes, limit);
            }
        }
    }
}

fn truncate_all(attributes: &mut [KeyValue], limit: usize) {
    for kv in attributes {
        match &mut kv.value {
            Value::String(s) => {
                if let Some(cut) = truncated(s.as_str(), limit) {
                    *s = cut;
                }
            }
            Value::Array(Array::String(items)) => {
                for s in items {
                    if let Some(cut) = truncated(s.as_str(), limit) {
                        *s = cut;
                    }
                }
            }
            _ => {}
        }
    }
}

/// The first `limit` characters of `s`, or `None` when it is short enough. Cuts on a character boundary.
fn truncated(s: &str, limit: usize) -> Option<StringValue> {
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
        truncate_all(&mut attrs, 3);
        assert_eq!(attrs[0].value, Value::from("abc"));
        assert_eq!(attrs[1].value, Value::I64(123456));
    }
}
