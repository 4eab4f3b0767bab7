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
}

impl Inline {
    pub(crate) fn new() -> Self {
        let stems = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostFirst)
            .build(STEMS)
            .expect("stem automaton");
        // name, an optional closing quote (JSON, Python), `=` or `:`, an optional `Some(`, then a double-
        // quoted string (escapes allowed), a single-quoted one, or a bare run up to a delimiter. No capture
        // groups: `Pair::parse` splits the match by hand, so scanning allocates nothing.
        let pair = Regex::new(
            r#"(?x)
            [A-Za-z_][A-Za-z0-9_.\-]{0,63} ["']? [\ \t]* [=:] [\ \t]* (?:Some\()?
            (?: "(?:[^"\\\n]|\\.){1,1024}"
              | '[^'\n]{1,1024}'
              | [^\s"',;&\#)\]}>]{1,1024}
            )"#,
        )
        .expect("inline pair pattern");
        Inline { stems, pair }
    }

    /// Adds the byte range of every secret value named inline; `add` refuses overlaps with earlier findings.
    pub(crate) fn find(&self, value: &str, mut add: impl FnMut(Range<usize>)) {
        if !value.bytes().any(|b| b == b'=' || b == b':') || self.stems.find(value).is_none() {
            return;
        }
        let mut at = 0;
        while at < value.len() {
            let Some(m) = self.pair.find_at(value, at) else { break };
            let pair = Pair::parse(value, m.range());
            // Resume right after the separator, so a non-secret pair (`note: password=…`) cannot hide the
            // pair inside its value.
            let resume = pair.sep + 1;
            if !name_starts_here(value, m.start()) || !is_secret_key(&value[pair.name.clone()]) {
                at = resume;
                continue;
            }
            let content = &value[pair.content.clone()];
            if is_placeholder(content) {
                at = pair.content.end.max(resume);
                continue;
            }
            let colon = value.as_bytes()[pair.sep] == b':';
            if !pair.quoted && colon && is_scheme_word(content) {
                // `Authorization: Token 9944b0…`: the scheme stays, the credential goes.
                if let Some(cred) = credential_after(value, pair.content.end) {
                    if looks_like_credential(&value[cred.clone()]) {
                        add(cred.clone());
                    }
                    at = cred.end;
                    continue;
                }
            }
            // `password: must be 12 characters` is prose; `password: hunter2` is not. An unquoted value
            // after `:` must look like a credential (a digit or a symbol in it); after `=` it always is one.
            if !pair.quoted && colon && !looks_like_credential(content) {
                at = resume;
                continue;
            }
            add(pair.content.clone());
            at = pair.content.end.max(resume);
        }
    }
}

/// One `name = value` match, split into its parts (byte offsets into the whole value).
struct Pair {
    name: Range<usize>,
    /// The `=` or `:`.
    sep: usize,
    /// The value without its quotes.
    content: Range<usize>,
    quoted: bool,
}

impl Pair {
    fn parse(value: &str, m: Range<usize>) -> Pair {
        let b = value.as_bytes();
        let mut i = m.start;
        while i < m.end && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'.' | b'-')) {
            i += 1;
        }
        let name = m.start..i;
        if matches!(b[i], b'"' | b'\'') {
            i += 1;
        }
        while matches!(b[i], b' ' | b'\t') {
            i += 1;
        }
        let sep = i;
        i += 1;
        while i < m.end && matches!(b[i], b' ' | b'\t') {
            i += 1;
        }
        if value[i..m.end].starts_with("Some(") {
            i += 5;
        }
        let quoted = i < m.end && matches!(b[i], b'"' | b'\'');
        let content = if quoted { i + 1..m.end - 1 } else { i..m.end };
        Pair { name, sep, content, quoted }
    }
}

/// After `Authorization: Token`: spaces, then the credential up to whitespace, `,` or `;`.
fn credential_after(value: &str, from: usize) -> Option<Range<usize>> {
    let rest = &value[from..];
    let spaces = rest.len() - rest.trim_start_matches([' ', '\t']).len();
    if spaces == 0 {
        return None;
    }
    let start = from + spaces;
    let len = value[start..].find(|c: char| c.is_whitespace() || c == ',' || c == ';').unwrap_or(value.len() - start);
    (len > 0).then_some(start..start + len)
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
