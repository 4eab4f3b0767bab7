//! Secrets named inside a value: `password=hunter2`, `?api_key=…&`, `"token": "…"`, a Rust `Debug`
//! struct (`Login { user: "bob", password: "hunter2" }`, which is how `#[trace_with_otel]` records an
//! argument without a `TypedValue`), Python reprs, YAML and `Authorization: Token …` header lines.
//!
//! The name is judged by the same key rules as attribute keys ([`super::keys::is_secret_key`]), so
//! `max_tokens=512` and `llm.token_count.prompt=12` stay while `OPENAI_API_KEY=…` goes. Only the value is
//! replaced; the name stays readable. The scan is driven by the `=` and `:` in the value: for each, the
//! name before it is read backwards and judged, and only then is the value after it parsed. No regex, no
//! allocation; text without separators costs one byte search.

use super::detect::Kind;
use super::keys::with_judgement;
use std::ops::Range;

/// The longest name and value considered (a longer run is not a name, or is cut there).
const MAX_NAME: usize = 64;
const MAX_VALUE: usize = 1024;

macro_rules! keywords {
    ($(($word:literal, $name:literal)),+ $(,)?) => {
        &[$(($word, $name, concat!("[REDACTED:", $name, "]"))),+]
    };
}

/// Providers whose credentials have no recognisable shape of their own, named by a word of the key
/// (`messagebird_access_key=…`, `SUMO_ACCESS_ID=…`): the value is taken when it looks random (see
/// [`is_random_credential`]). `(word, kind)`. From the keyword-gated rules of gitleaks and detect-secrets.
pub(crate) static KEYWORDS: &[(&str, &str, &str)] = keywords![
    ("messagebird", "messagebird_token"),
    ("sumo", "sumologic_key"),
    ("sumologic", "sumologic_key"),
    ("jfrog", "jfrog_token"),
    ("artifactory", "jfrog_token"),
    ("bintray", "jfrog_token"),
    ("telegram", "telegram_bot_token"),
    ("discord", "discord_token"),
    ("heroku", "heroku_key"),
    ("hubspot", "hubspot_key"),
    ("datadog", "datadog_key"),
    ("dd", "datadog_key"),
    ("mailchimp", "mailchimp_key"),
    ("twitch", "twitch_token"),
    ("twitter", "twitter_token"),
    ("okta", "okta_token"),
    ("snyk", "snyk_token"),
    ("sonar", "sonar_token"),
    ("sonarqube", "sonar_token"),
    ("etsy", "etsy_key"),
    ("finnhub", "finnhub_key"),
    ("flickr", "flickr_key"),
    ("gitter", "gitter_token"),
    ("kraken", "kraken_key"),
    ("kucoin", "kucoin_key"),
    ("launchdarkly", "launchdarkly_key"),
    ("mattermost", "mattermost_token"),
    ("netlify", "netlify_token"),
    ("nytimes", "nytimes_key"),
    ("plaid", "plaid_key"),
    ("rapidapi", "rapidapi_key"),
    ("sendbird", "sendbird_token"),
    ("squarespace", "squarespace_key"),
    ("travis", "travisci_token"),
    ("yandex", "yandex_key"),
    ("zendesk", "zendesk_key"),
    ("asana", "asana_token"),
    ("bitbucket", "bitbucket_secret"),
    ("bittrex", "bittrex_key"),
    ("codecov", "codecov_token"),
    ("cohere", "cohere_key"),
    ("coinbase", "coinbase_key"),
    ("confluent", "confluent_key"),
    ("contentful", "contentful_token"),
    ("fastly", "fastly_key"),
    ("freshbooks", "freshbooks_token"),
    ("intercom", "intercom_token"),
    ("linkedin", "linkedin_secret"),
    ("beamer", "beamer_key"),
    ("adafruit", "adafruit_key"),
    ("algolia", "algolia_key"),
    ("dropbox", "dropbox_token"),
    ("mistral", "mistral_key"),
    ("pagerduty", "pagerduty_key"),
    ("circleci", "circleci_token"),
    ("mapbox", "mapbox_token"),
    ("newrelic", "newrelic_key"),
    ("lob", "lob_key"),
    ("mailgun", "mailgun_key"),
    ("twilio", "twilio_key"),
    ("sentry", "sentry_token"),
    ("shippo", "shippo_token"),
    ("easypost", "easypost_key"),
];

/// Adds the byte range and kind of every secret value named inline; `add` refuses overlaps with earlier
/// findings.
pub(crate) fn find(value: &str, mut add: impl FnMut(Range<usize>, Kind)) {
    let b = value.as_bytes();
    // Separators inside a value already masked are not names' separators.
    let mut skip_to = 0;
    for sep in 0..b.len() {
        if sep < skip_to || !matches!(b[sep], b'=' | b':') {
            continue;
        }
        // `==`, `!=`, `<=`, `>=` and `=>`: comparisons and arrows in code, not an assignment.
        if b[sep] == b'='
            && (b.get(sep + 1).is_some_and(|c| matches!(c, b'=' | b'>'))
                || sep.checked_sub(1).is_some_and(|p| matches!(b[p], b'=' | b'!' | b'<' | b'>')))
        {
            continue;
        }
        let Some(name) = name_before(b, sep) else { continue };
        let (strong, weak) = with_judgement(&value[name], |strong, words| (strong, weak_name(words)));
        if !strong && weak.is_none() {
            continue;
        }
        let Some(pair) = value_after(value, sep) else { continue };
        let content = &value[pair.content.clone()];
        if is_placeholder(content) || is_code_reference(value, &pair) {
            continue;
        }
        // A nested mapping or list (`secrets: {token: …}`): its own pairs are judged one by one.
        if !pair.quoted && (content.starts_with('{') || content.starts_with('[')) {
            continue;
        }
        if let Some(kind) = weak {
            // A named provider or a `…key` name: a value that looks like a credential by itself is that
            // provider's (`messagebird_api_key=…` says whose key it is); otherwise only a secret name takes it.
            if is_random_credential(content, kind == Kind::Key) {
                skip_to = pair.content.end;
                add(pair.content, if strong && kind == Kind::Key { Kind::Key } else { kind });
                continue;
            }
            if !strong {
                continue;
            }
        }
        let colon = b[sep] == b':';
        if !pair.quoted && colon && is_scheme_word(content) {
            // `Authorization: Token 9944b0…`: the scheme stays, the credential goes.
            if let Some(cred) = credential_after(value, pair.content.end)
                && looks_like_credential(&value[cred.clone()])
                && !is_placeholder(&value[cred.clone()])
            {
                skip_to = cred.end;
                add(cred, Kind::Key);
            }
            continue;
        }
        // `password: must be 12 characters` is prose; `password: hunter2` is not. An unquoted value after
        // `:` must look like a credential (a digit or a symbol in it); after `=` it always is one.
        if !pair.quoted && colon && !looks_like_credential(content) {
            continue;
        }
        skip_to = pair.content.end;
        add(pair.content, Kind::Key);
    }
}

/// A name that is not a secret by the key rules but hints at one: a provider's keyword
/// ([`KEYWORDS`]), or a last word `key`/`keys` (`stripe_key`, `LICENSE_KEY`).
fn weak_name(words: &[String]) -> Option<Kind> {
    for word in words {
        if let Some(i) = KEYWORDS.iter().position(|(w, _, _)| *w == word.as_str()) {
            return Some(Kind::Keyword(i as u16));
        }
    }
    matches!(words.last().map(String::as_str), Some("key" | "keys")).then_some(Kind::Key)
}

/// Entropy as the last resort, only under a hinting name: one run of 12+ token characters (16+ under a
/// bare `…key`) with a segment of 12+, letters and digits, and Shannon entropy of 3 bits a character or
/// more. Under a bare `…key` hex digests and UUIDs stay (cache keys, content hashes).
fn is_random_credential(text: &str, generic: bool) -> bool {
    let b = text.as_bytes();
    let min = if generic { 16 } else { 12 };
    if b.len() < min || b.len() > 512 {
        return false;
    }
    if !b.iter().all(|c| c.is_ascii_alphanumeric() || b"_-+/=.:~".contains(c)) {
        return false;
    }
    let longest = text.split(|c: char| !c.is_ascii_alphanumeric()).map(str::len).max().unwrap_or(0);
    let has_letter = b.iter().any(u8::is_ascii_alphabetic);
    let has_digit = b.iter().any(u8::is_ascii_digit);
    if longest < min.min(12) || !has_letter || !has_digit {
        return false;
    }
    if generic && b.iter().all(|c| c.is_ascii_hexdigit() || *c == b'-') {
        return false;
    }
    shannon(b) >= 3.0 && super::catalogue::looks_random(text)
}

fn shannon(b: &[u8]) -> f64 {
    let mut counts = [0u32; 256];
    for c in b {
        counts[usize::from(*c)] += 1;
    }
    let n = b.len() as f64;
    counts.iter().filter(|c| **c > 0).map(|c| f64::from(*c) / n).map(|p| -p * p.log2()).sum()
}

/// A value that is code naming where the secret lives, not the secret: `os.getenv("X")`,
/// `process.env.X`, `ENV["X"]`, `settings.DB_PASSWORD` followed by a call or an index.
fn is_code_reference(value: &str, pair: &Pair) -> bool {
    if pair.quoted {
        return false;
    }
    let content = &value[pair.content.clone()];
    // An identifier path called or indexed: `os.getenv("X")`, `ENV["X"]`, `config.get('x')`.
    let path_len = content.bytes().take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':')).count();
    let called = path_len > 0
        && content.as_bytes()[0].is_ascii_alphabetic()
        && matches!(content.as_bytes().get(path_len), Some(b'(' | b'['));
    called || content.starts_with("process.env.") || content.starts_with("os.environ") || content.starts_with("env.")
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
    let whole = start == 0 || !is_name_byte(b[start - 1]);
    // `--password=…`: the flag's dashes are not part of the name.
    while start < end && b[start] == b'-' {
        start += 1;
    }
    // Names start with a letter or `_` (not `10:14`, not `-x=`) and are not cut from a longer run.
    let starts_well = start < end && (b[start].is_ascii_alphabetic() || b[start] == b'_');
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
            // Brackets opened inside the value close inside it (`${NPM_TOKEN}`, `{{ secret }}`): the value
            // ends at a closer only when nothing is open, so a span never cuts a pair in half.
            let mut end = i;
            let mut depth = 0u32;
            for (at, c) in value[i..].char_indices() {
                if at >= MAX_VALUE {
                    break;
                }
                match c {
                    '(' | '[' | '{' | '<' => depth += 1,
                    ')' | ']' | '}' | '>' if depth > 0 => depth -= 1,
                    '\n' => break,
                    // Inside brackets only the closer ends the value: `getenv("X")`, `{{ secret }}`.
                    _ if depth > 0 => {}
                    // CJK and other non-ASCII punctuation (`。`, `，`) ends a value glued to prose.
                    _ if c.is_whitespace()
                        || (!c.is_ascii() && !c.is_alphanumeric())
                        || matches!(c, '"' | '\'' | ',' | ';' | '&' | '#' | ')' | ']' | '}' | '>') =>
                    {
                        break;
                    }
                    _ => {}
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

/// Values that say a secret is absent, elsewhere or already masked: empty, `[REDACTED…]`, all `x`/`*`,
/// `none`/`null`, template and environment references (`${VAR}`, `$VAR`, `%VAR%`, `{{ var }}`, `%s`,
/// `%(name)s`, `{}`), and documentation fillers (`<your-token>`, `insert_key_here`, `your_api_key`).
pub(crate) fn is_placeholder(text: &str) -> bool {
    let t = text.trim();
    // Case-insensitive tests without lowering into a new string: this runs on kept values too.
    let starts = |p: &str| t.len() >= p.len() && t.as_bytes()[..p.len()].eq_ignore_ascii_case(p.as_bytes());
    let ends = |p: &str| t.len() >= p.len() && t.as_bytes()[t.len() - p.len()..].eq_ignore_ascii_case(p.as_bytes());
    let contains = |p: &str| t.as_bytes().windows(p.len()).any(|w| w.eq_ignore_ascii_case(p.as_bytes()));
    let ident = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.');
    t.is_empty()
        || t.starts_with("[REDACTED")
        || t.bytes().all(|b| matches!(b, b'*' | b'x' | b'X' | b'.' | b'-' | b'#' | b'<' | b'>' | b'_'))
        || [
            "none",
            "null",
            "nil",
            "undefined",
            "true",
            "false",
            "<redacted>",
            "redacted",
            "hidden",
            "masked",
            "changeme",
        ]
        .iter()
        .any(|p| t.eq_ignore_ascii_case(p))
        || (t.starts_with("${") && t.ends_with('}'))
        || (t.starts_with("{{") && t.ends_with("}}"))
        || (t.starts_with('<') && t.ends_with('>'))
        || (t.starts_with('%') && t.ends_with('%') && t.len() > 2)
        || t.strip_prefix('$').is_some_and(ident)
        || matches!(t, "%s" | "%r" | "%d" | "{}" | "?" | "...")
        || (t.starts_with("%(") && t.ends_with(")s"))
        || (starts("insert") && ends("here"))
        || (starts("your") && t.len() > 4 && !t.as_bytes()[4..].iter().any(u8::is_ascii_digit))
        || ends("_here")
        || contains("xxxx")
        || contains("placeholder")
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
        super::super::masked_by(value, |value, add| find(value, add))
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
