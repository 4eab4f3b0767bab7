//! Secrets named inside a value: `password=hunter2`, `?api_key=…&`, `"token": "…"`, a Rust `Debug`
//! struct (`Login { user: "bob", password: "hunter2" }`, which is how `#[trace_with_otel]` records an
//! argument without a `TypedValue`), Python reprs, YAML and `Authorization: Token …` header lines.
//!
//! The name is judged by the same key rules as attribute keys ([`super::keys::is_secret_key`]), so
//! `max_tokens=512` and `llm.token_count.prompt=12` stay while `OPENAI_API_KEY=…` goes. Only the value is
//! replaced; the name stays readable. The scan is driven by the `=` and `:` in the value: for each, the
//! name before it is read backwards and judged, and only then is the value after it parsed. No regex, no
//! allocation; text without separators costs one byte search.

use super::keys::is_secret_key;
use std::ops::Range;

/// The longest name and value considered (a longer run is not a name, or is cut there).
const MAX_NAME: usize = 64;
const MAX_VALUE: usize = 1024;

/// Adds the byte range of every secret value named inline; `add` refuses overlaps with earlier findings.
pub(crate) fn find(value: &str, mut add: impl FnMut(Range<usize>)) {
    let b = value.as_bytes();
    // Separators inside a value already masked are not names' separators.
    let mut skip_to = 0;
    for sep in 0..b.len() {
        if sep < skip_to || !matches!(b[sep], b'=' | b':') {
            continue;
        }
        let Some(name) = name_before(b, sep) else { continue };
        if !is_secret_key(&value[name]) {
            continue;
        }
        let Some(pair) = value_after(value, sep) else { continue };
        let content = &value[pair.content.clone()];
        if is_placeholder(content) {
            continue;
        }
        let colon = b[sep] == b':';
        if !pair.quoted && colon && is_scheme_word(content) {
            // `Authorization: Token 9944b0…`: the scheme stays, the credential goes.
            if let Some(cred) = credential_after(value, pair.content.end)
                && looks_like_credential(&value[cred.clone()])
            {
                skip_to = cred.end;
                add(cred);
            }
            continue;
        }
        // `password: must be 12 characters` is prose; `password: hunter2` is not. An unquoted value after
        // `:` must look like a credential (a digit or a symbol in it); after `=` it always is one.
        if !pair.quoted && colon && !looks_like_credential(content) {
            continue;
        }
        skip_to = pair.content.end;
        add(pair.content);
    }
}

fn is_name_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-')
}

/// The name that ends right before the separator at `sep`: `name=`, `name =`, `"name":`, `'name':`.
fn name_before(b: &[u8], sep: usize) -> Option<Range<usize>> {
    let mut end = sep;
    while end > 0 && matches!(b[end - 1], b' ' | b'\t') {
        end -= 1;
    }
    if end > 0 && matches!(b[end - 1], b'"' | b'\'') {
        end -= 1;
    }
    let mut start = end;
    while start > 0 && end - start < MAX_NAME && is_name_byte(b[start - 1]) {
        start -= 1;
    }
    // Names start with a letter or `_` (not `10:14`, not `-x=`) and are not cut from a longer run.
    let starts_well = start < end && (b[start].is_ascii_alphabetic() || b[start] == b'_');
    let whole = start == 0 || !is_name_byte(b[start - 1]);
    (starts_well && whole).then_some(start..end)
}

/// The value after a separator.
struct Pair {
    /// The value without its quotes.
    content: Range<usize>,
    quoted: bool,
}

/// Spaces, an optional `Some(`, then a double-quoted string (escapes allowed), a single-quoted one, or a
/// bare run up to whitespace or a delimiter (`"',;&#)]}>`).
fn value_after(value: &str, sep: usize) -> Option<Pair> {
    let b = value.as_bytes();
    let mut i = sep + 1;
    while i < b.len() && matches!(b[i], b' ' | b'\t') {
        i += 1;
    }
    if value[i..].starts_with("Some(") {
        i += 5;
    }
    match b.get(i)? {
        b'"' => {
            let mut j = i + 1;
            while j < b.len() && j - i <= MAX_VALUE {
                match b[j] {
                    b'\\' => j += 2,
                    b'"' => return (j > i + 1).then_some(Pair { content: i + 1..j, quoted: true }),
                    b'\n' => return None,
                    _ => j += 1,
                }
            }
            None
        }
        b'\'' => {
            let len = value[i + 1..].find(['\'', '\n'])?;
            let close = i + 1 + len;
            (len > 0 && len <= MAX_VALUE && b[close] == b'\'').then_some(Pair { content: i + 1..close, quoted: true })
        }
        _ => {
            let mut end = i;
            for (at, c) in value[i..].char_indices() {
                if c.is_whitespace()
                    || matches!(c, '"' | '\'' | ',' | ';' | '&' | '#' | ')' | ']' | '}' | '>')
                    || at >= MAX_VALUE
                {
                    break;
                }
                end = i + at + c.len_utf8();
            }
            (end > i).then_some(Pair { content: i..end, quoted: false })
        }
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
        let mut found: Vec<Range<usize>> = Vec::new();
        find(value, |r| found.push(r));
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
