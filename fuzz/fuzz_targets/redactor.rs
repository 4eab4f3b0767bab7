//! The redactor's detectors (key rules, emails, phones, cards, IBANs, JWTs, provider keys, inline
//! `name=secret` pairs, URL credentials) on arbitrary text. Input: the first line is the attribute key,
//! the rest its value. Invariants: no panic; a borrowed (unchanged) result is the input itself.
#![no_main]

use kotaemon_trace::redact::Redactor;
use libfuzzer_sys::fuzz_target;
use std::borrow::Cow;
use std::sync::OnceLock;

fn redactor() -> &'static Redactor {
    static R: OnceLock<Redactor> = OnceLock::new();
    R.get_or_init(|| Redactor::builder().pseudonym_key(b"fuzzing key, not a secret!!").build())
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (key, value) = text.split_once('\n').unwrap_or(("input.value", &text));
    let out = redactor().redact(key, value);
    if let Cow::Borrowed(same) = &out {
        assert_eq!(*same, value, "a borrowed result is the input itself");
    }
    let _ = redactor().pseudonym(value);
});
