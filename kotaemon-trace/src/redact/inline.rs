//! Secrets named inside a value: `password=hunter2`, `?api_key=…&`, `"token": "…"`, a Rust `Debug`
//! struct (`Login { user: "bob", password: "hunter2" }`, which is how `#[trace_with_otel]` records an
//! argument without a `TypedValue`), Python reprs, YAML and `Authorization: Token …` header lines.
//!
//! The name is judged by the same key rules as attribute keys ([`super::keys::is_secret_key`]), so
//! `max_tokens=512` and `llm.token_count.prompt=12` stay while `OPENAI_API_KEY=…` goes. Only the value is
//! replaced; the name stays readable. Two cheap checks run first: a `=` or `:` must be present, and one of
//! the stems of the secret words (`pass`, `secret`, `token`, `key`, `auth`, …) must occur, so ordinary
//! text never reaches the regex.

use super::keys::is_secret_key;
use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::Regex;
use std::ops::Range;

/// Stems of every word the key rules know (see `keys.rs`); a value without one cannot name a secret.
const STEMS: &[&str] = &[
    "pass", "pwd", "secret", "token", "key", "auth", "cred", "cookie", "sess", "csrf", "xsrf", "jwt", "ssn", "cvv",
    "cvc", "otp", "card", "iban", "pin", "bearer", "signature", "social", "security",
];

pub(crate) struct Inline {
    stems: AhoCorasick,
    pair: Regex,
    credential: Regex,
}

impl Inline {
    pub(crate) fn new() -> Self {
        let stems = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostFirst)
            .build(STEMS)
            .expect("stem automaton");
        // name, an optional closing quote (JSON, Python), `=` or `:`, an optional `Some(`, then a double-
        // quoted string (escapes allowed), a single-quoted one, or a bare run up to a delimiter.
        let pair = Regex::new(
            r#"(?x)
            (?P<name>[A-Za-z_][A-Za-z0-9_.\-]{0,63}) ["']? [\ \t]* (?P<sep>[=:]) [\ \t]* (?:Some\()?
            (?: "(?P<dq>(?:[^"\\\n]|\\.){1,1024})"
              | '(?P<sq>[^'\n]{1,1024})'
              | (?P<bare>[^\s"',;&\#)\]}>]{1,1024})
            )"#,
        )
        .expect("inline pair pattern");
        // After `Authorization:` and a scheme word (`Token`, `Digest`, `Bearer`, …): the credential.
        let credential = Regex::new(r"\A[ \t]+(?P<cred>[^\s,;]+)").expect("credential pattern");
        Inline { stems, pair, credential }
    }

    /// Adds the byte range of every secret value named inline; `add` refuses overlaps with earlier findings.
    pub(crate) fn find(&self, value: &str, mut add: impl FnMut(Range<usize>)) {
        if !value.bytes().any(|b| b == b'=' || b == b':') || self.stems.find(value).is_none() {
            return;
        }
        let mut at = 0;
        while at < value.len() {
            let Some(caps) = self.pair.captures_at(value, at) else { break };
            let name = caps.name("name").expect("always present");
            let sep = caps.name("sep").expect("always present");
            // Resume right after the separator, so a non-secret pair (`note: password=…`) cannot hide the
            // pair inside its value.
            let resume = sep.end();
            if !name_starts_here(value, name.start()) || !is_secret_key(name.as_str()) {
                at = resume;
                continue;
            }
            let (content, quoted) = match (caps.name("dq"), caps.name("sq"), caps.name("bare")) {
                (Some(m), _, _) | (_, Some(m), _) => (m, true),
                (_, _, Some(m)) => (m, false),
                _ => unreachable!("one alternative always matches"),
            };
            let text = content.as_str();
            if is_placeholder(text) {
                at = content.end().max(resume);
                continue;
            }
            if !quoted && sep.as_str() == ":" && is_scheme_word(text) {
                // `Authorization: Token 9944b0…`: the scheme stays, the credential goes.
                if let Some(cred) = self.credential.captures(&value[content.end()..]).and_then(|c| c.name("cred")) {
                    let start = content.end() + cred.start();
                    let end = content.end() + cred.end();
                    if looks_like_credential(cred.as_str()) {
                        add(start..end);
                    }
                    at = end;
                    continue;
                }
            }
            // `password: must be 12 characters` is prose; `password: hunter2` is not. An unquoted value
            // after `:` must look like a credential (a digit or a symbol in it); after `=` it always is one.
            if !quoted && sep.as_str() == ":" && !looks_like_credential(text) {
                at = resume;
                continue;
            }
            add(content.range());
            at = content.end().max(resume);
        }
    }
}

/// The name must not continue a longer word (`xpassword=` is matched from its start anyway, but a name
/// glued to a non-ASCII letter is part of that word).
fn name_starts_here(value: &str, start: usize) -> bool {
    value[..start].chars().next_back().is_none_or(|c| !c.is_alphanumeric())
}

/// Values that say a secret is absent or already masked.
fn is_placeholder(text: &str) -> bool {
    let t = text.trim();
    t.is_empty()
        || t.starts_with("[REDACTED")
        || t.bytes().all(|b| matches!(b, b'*' | b'x' | b'X' | b'.' | b'-' | b'#' | b'<' | b'>'))
        || ["none", "null", "nil", "undefined", "true", "false", "<redacted>", "redacted", "hidden", "masked"]
            .iter()
            .any(|p| t.eq_ignore_ascii_case(p))
}

/// An alphabetic word such as `Bearer`, `Token`, `Basic`, `Digest`, `ApiKey`.
fn is_scheme_word(text: &str) -> bool {
    (2..=20).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-')
}

/// At least four characters with a digit or a symbol in them: what a credential has and a word has not.
fn looks_like_credential(text: &str) -> bool {
    text.chars().count() >= 4 && text.chars().any(|c| c.is_ascii_digit() || (c.is_ascii_punctuation() && c != '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(value: &str) -> String {
        let inline = Inline::new();
        let mut found: Vec<Range<usize>> = Vec::new();
        inline.find(value, |r| found.push(r));
        let mut out = value.to_owned();
        for r in found.iter().rev() {
            out.replace_range(r.clone(), "~");
        }
        out
    }

    #[test]
    fn secrets_named_inline() {
        for (value, want) in [
            ("password=hunter2", "password=~"),
            ("GET /login?user=bob&password=Sup3r!&x=1", "GET /login?user=bob&password=~&x=1"),
            (r#"Login { username: "bob", password: "hunter2" }"#, r#"Login { username: "bob", password: "~" }"#),
            (r#"Creds { token: Some("abc.def") }"#, r#"Creds { token: Some("~") }"#),
            (r#"{"api_key": "abc123", "n": 1}"#, r#"{"api_key": "~", "n": 1}"#),
            ("{'token': 'q1w2e3r4'}", "{'token': '~'}"),
            ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG", "AWS_SECRET_ACCESS_KEY=~"),
            ("Server=db;User Id=app;Password=abc;", "Server=db;User Id=app;Password=~;"),
            ("db:\n  password: s3cret\n", "db:\n  password: ~\n"),
            ("Authorization: Token 9944b09199c62bcf", "Authorization: Token ~"),
            ("note: password=abc", "note: password=~"),
            (r#"{"password": "with \"quotes\" inside"}"#, r#"{"password": "~"}"#),
        ] {
            assert_eq!(masked(value), want, "{value}");
        }
    }

    #[test]
    fn names_that_are_not_secrets_and_prose_stay() {
        for value in [
            "max_tokens=512, temperature=0.7",
            "llm.token_count.prompt=123",
            "the password: must be 12 characters long",
            "token=None",
            r#"{"password": ""}"#,
            "password=[REDACTED:key]",
            "author: Jane Austen 2",
            "Authorization: required",
            "reset your password from the account page",
            "key: value",
            "monkey=banana1",
            "auth.has_token=true",
        ] {
            assert_eq!(masked(value), value);
        }
    }
}
