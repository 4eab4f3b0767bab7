//! Key rules: does an attribute key name a secret?
//!
//! A key is split into lowercase words at `.`, `_`, `-`, spaces and camelCase boundaries
//! (`userAPIKey` → `user api key`), then matched against secret words and word pairs. Whole-word matching
//! is what keeps `author` apart from `auth`, and a few shapes are deliberately not secrets: counts and
//! sizes (`llm.token_count.prompt`, `gen_ai.usage.input_tokens`, `password_length`) and boolean
//! predicates (`auth.has_token`, `is_authenticated`), which say that a secret exists without carrying it.

/// Words that name a secret on their own: see [`is_secret_word`].
/// `SECRET_WORDS` as a `match`, which compiles to a length switch instead of a linear scan.
fn is_secret_word(word: &str) -> bool {
    matches!(
        word,
        "password"
            | "passwd"
            | "pwd"
            | "passphrase"
            | "secret"
            | "secrets"
            | "token"
            | "apikey"
            | "auth"
            | "authorization"
            | "authentication"
            | "credential"
            | "credentials"
            | "cookie"
            | "cookies"
            | "csrf"
            | "xsrf"
            | "jwt"
            | "ssn"
            | "cvv"
            | "cvc"
            | "otp"
            | "privatekey"
            | "sessionid"
            | "sessiontoken"
            | "accesstoken"
            | "refreshtoken"
            | "bearer"
            | "signature"
            | "mysqlpwd"
            | "creditcard"
            | "cardnumber"
            | "iban"
            | "pin"
            | "jsessionid"
            | "phpsessid"
            | "sessid"
            | "totp"
            | "passcode"
    )
}

/// Pairs of consecutive words that name a secret together.
const SECRET_PAIRS: &[(&str, &str)] = &[
    ("api", "key"),
    ("private", "key"),
    ("secret", "key"),
    ("access", "key"),
    ("account", "key"),
    ("signing", "key"),
    ("encryption", "key"),
    ("session", "id"),
    ("session", "key"),
    ("credit", "card"),
    ("card", "number"),
    ("social", "security"),
    ("set", "cookie"),
    ("client", "secret"),
    ("access", "token"),
    ("refresh", "token"),
    ("id", "token"),
    ("api", "token"),
    ("auth", "token"),
    ("security", "code"),
    ("mysql", "pwd"),
];

/// A word right after a secret word that turns the key into metadata about the secret.
const METADATA_AFTER: &[&str] = &[
    "count",
    "counts",
    "usage",
    "limit",
    "limits",
    "budget",
    "length",
    "len",
    "size",
    "type",
    "kind",
    "expiry",
    "expires",
    "expiration",
    "ttl",
    "age",
    "present",
    "provided",
    "required",
    "enabled",
    "policy",
    "strength",
    "scheme",
    "method",
    "mode",
    "source",
    "status",
    "valid",
    // Where a secret is, or what describes it, not the secret: `token_url`, `password_file`,
    // `secret_name`, `password_hint`.
    "url",
    "uri",
    "endpoint",
    "path",
    "file",
    "name",
    "hint",
    "prompt",
    "label",
    "description",
    "field",
    "env",
    "format",
    "ref",
    "reference",
];

/// Words that make the key a yes/no predicate about the secret.
const PREDICATE_BEFORE: &[&str] = &["has", "is", "was", "needs", "requires", "with", "without", "num", "max", "min"];

/// Splits a key into lowercase words; `out`'s strings are reused between calls.
/// Returns how many words `key` has: they are `out[..count]`. Later entries are kept (not truncated), so
/// their buffers are reused and a thread stops allocating once it has seen its longest keys.
pub(crate) fn words(key: &str, out: &mut Vec<String>) -> usize {
    let mut count = 0;
    let start_word = |out: &mut Vec<String>, count: &mut usize| {
        if out.len() == *count {
            out.push(String::new());
        }
        out[*count].clear();
        *count += 1;
    };
    let mut in_word = false;
    let mut prev: Option<char> = None;
    let mut chars = key.chars().peekable();
    while let Some(c) = chars.next() {
        if !c.is_alphanumeric() {
            in_word = false;
            prev = Some(c);
            continue;
        }
        let boundary = !in_word
            || (c.is_uppercase()
                && prev.is_some_and(|p| {
                    // `userKey` → user|key; `APIKey` → api|key; `HTTPServer` → http|server.
                    p.is_lowercase()
                        || p.is_ascii_digit()
                        || (p.is_uppercase() && chars.peek().is_some_and(|n| n.is_lowercase()))
                }));
        if boundary {
            start_word(out, &mut count);
            in_word = true;
        }
        if c.is_ascii() {
            out[count - 1].push(c.to_ascii_lowercase());
        } else {
            out[count - 1].extend(c.to_lowercase());
        }
        prev = Some(c);
    }
    count
}

thread_local! {
    static WORDS: std::cell::RefCell<Vec<String>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Whether `key` names a secret under the default rules. Allocation-free after a thread's first keys.
pub(crate) fn is_secret_key(key: &str) -> bool {
    WORDS
        .try_with(|buf| match buf.try_borrow_mut() {
            Ok(mut words_buf) => classify(key, &mut words_buf),
            Err(_) => classify(key, &mut Vec::new()),
        })
        .unwrap_or_else(|_| classify(key, &mut Vec::new()))
}

/// `f` given whether `key` names a secret (as [`is_secret_key`]) and the words of `key`: one split for
/// callers that judge the words further. Allocation-free after a thread's first keys.
pub(crate) fn with_judgement<R>(key: &str, f: impl FnOnce(bool, &[String]) -> R) -> R {
    // As `classify`, keeping the words of the whole key; a key without `.` is split once.
    let run = |buf: &mut Vec<String>| {
        let last_segment = key.rsplit('.').next().unwrap_or(key);
        let predicate = |buf: &[String]| buf.len() > 1 && PREDICATE_BEFORE.contains(&buf[0].as_str());
        let n = words(key, buf);
        let is_predicate = if last_segment.len() == key.len() {
            predicate(&buf[..n])
        } else {
            let m = words(last_segment, buf);
            let p = predicate(&buf[..m]);
            words(key, buf);
            p
        };
        (!is_predicate && is_secret_words(&buf[..n]), n)
    };
    WORDS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            let (secret, n) = run(&mut buf);
            f(secret, &buf[..n])
        }
        Err(_) => {
            let mut own = Vec::new();
            let (secret, n) = run(&mut own);
            f(secret, &own[..n])
        }
    })
}

fn classify(key: &str, words_buf: &mut Vec<String>) -> bool {
    // A key whose last segment is a predicate (`auth.has_token`, `user.is_authenticated`) holds a yes/no
    // about the secret, never the secret.
    let last_segment = key.rsplit('.').next().unwrap_or(key);
    let n = words(last_segment, words_buf);
    if n > 1 && PREDICATE_BEFORE.contains(&words_buf[0].as_str()) {
        return false;
    }
    let n = words(key, words_buf);
    is_secret_words(&words_buf[..n])
}

fn is_secret_words(words: &[String]) -> bool {
    // The whole key run together catches `apiKey`-less spellings such as `apikey` and `x-api-key`.
    for (i, word) in words.iter().enumerate() {
        let hit_len = if is_secret_word(word) {
            Some(1)
        } else if words.get(i + 1).is_some_and(|next| SECRET_PAIRS.contains(&(word.as_str(), next.as_str()))) {
            Some(2)
        } else {
            None
        };
        let Some(len) = hit_len else { continue };
        let after = words.get(i + len).map(String::as_str);
        let before = i.checked_sub(1).and_then(|b| words.get(b)).map(String::as_str);
        let is_metadata = after.is_some_and(|a| METADATA_AFTER.contains(&a));
        let is_predicate = before.is_some_and(|b| PREDICATE_BEFORE.contains(&b));
        if !is_metadata && !is_predicate {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_keys() {
        for key in [
            "password",
            "db.password",
            "userPassword",
            "passwd",
            "mysql_pwd",
            "client_secret",
            "api_key",
            "apiKey",
            "x-api-key",
            "X-API-KEY",
            "openai.apikey",
            "auth",
            "http.request.header.authorization",
            "Authorization",
            "credentials",
            "private_key",
            "privateKey",
            "cookie",
            "Set-Cookie",
            "session_id",
            "sessionId",
            "session.id",
            "csrf_token",
            "xsrf",
            "jwt",
            "ssn",
            "credit_card",
            "card_number",
            "token",
            "access_token",
            "refreshToken",
            "github.token",
            "social_security_number",
            "otp",
            "cvv",
            "JSESSIONID",
            "PHPSESSID",
            "totp",
            "passcode",
        ] {
            assert!(is_secret_key(key), "{key} should be secret");
        }
    }

    #[test]
    fn keys_that_only_look_like_secrets() {
        for key in [
            "author",
            "authors",
            "document.author",
            "llm.token_count.prompt",
            "llm.token_count.completion",
            "gen_ai.usage.input_tokens",
            "gen_ai.usage.output_tokens",
            "auth.has_token",
            "is_authenticated",
            "password_length",
            "token_budget",
            "session",
            "user.id",
            "tokenizer",
            "passage",
            "keyword",
            "monkey",
            "secretary",
            "retriever.k",
            "input.value",
            "max_tokens",
            "auth_type",
            "pinned",
            "oauth.token_url",
            "auth_endpoint",
            "password_file",
            "secret_name",
            "password_hint",
        ] {
            assert!(!is_secret_key(key), "{key} should not be secret");
        }
    }

    #[test]
    fn words_split_on_separators_and_case() {
        let mut w = Vec::new();
        let n = words("userAPIKey.HTTPServer-x_y", &mut w);
        assert_eq!(w[..n], ["user", "api", "key", "http", "server", "x", "y"]);
    }
}
