//! Hiding configuration secrets in text: the credentials and query string of a URL, and header values.
//!
//! One set of rules for every place a setting is printed: a [`ConfigProblem`](super::ConfigProblem), the
//! `Debug` of [`OtlpConfig`](super::OtlpConfig), the [`Setting`](super::Setting)s of a configuration, the
//! runtime's error messages and the `kotaemon-trace` CLI. A leaf: it uses nothing but `std`.

use std::borrow::Cow;

/// What stands for a hidden value.
const HIDDEN: &str = "***";

/// A URL with its user-info and its query string hidden: `https://user:pw@host/v1/traces?token=abc` →
/// `https://***@host/v1/traces?***`. A URL carries credentials in either place; the user name goes too,
/// since a token is often written there alone (`https://tok3n@host`).
///
/// ```
/// use kotaemon_trace::config::mask_url;
/// assert_eq!(mask_url("https://user:pa55@collector:4318/v1/traces?token=abc"), "https://***@collector:4318/v1/traces?***");
/// assert_eq!(mask_url("http://127.0.0.1:4317"), "http://127.0.0.1:4317");
/// ```
pub fn mask_url(url: &str) -> String {
    mask_urls(url).into_owned()
}

/// Header names with their values hidden, `authorization=***,x-api-key=***`; `none` when there are none.
///
/// ```
/// use kotaemon_trace::config::mask_headers;
/// assert_eq!(mask_headers(["authorization", "x-api-key"]), "authorization=***,x-api-key=***");
/// assert_eq!(mask_headers(Vec::<&str>::new()), "none");
/// ```
pub fn mask_headers<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let shown: Vec<String> = names.into_iter().map(|name| format!("{}={HIDDEN}", name.trim())).collect();
    if shown.is_empty() { "none".to_owned() } else { shown.join(",") }
}

/// The text of a headers variable (`name=secret,other=secret2`) with the values hidden:
/// `name=***,other=***`. An entry without `=`, or whose name is not an HTTP header name (RFC 9110 token),
/// is hidden whole: it may be a value on its own, or a value pasted where the name belongs.
pub(crate) fn mask_header_values(raw: &str) -> String {
    raw.split(',')
        .map(|entry| match entry.split_once('=') {
            Some((name, _)) if is_header_name(name.trim()) => format!("{}={HIDDEN}", name.trim()),
            _ => HIDDEN.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// RFC 9110 `token`: what an HTTP field name may be.
fn is_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// The user-info of a URL (`user:password` in `https://user:password@host/`), as byte offsets.
fn userinfo(url: &str) -> Option<(usize, usize)> {
    let start = url.find("://")? + 3;
    let authority_end = url[start..].find(['/', '?', '#']).map_or(url.len(), |i| start + i);
    let at = url[start..authority_end].rfind('@')? + start;
    Some((start, at))
}

/// The password of a URL (or its user name when it has no password: a token written alone), if any.
pub(crate) fn url_password(url: &str) -> Option<&str> {
    let (start, at) = userinfo(url)?;
    let info = &url[start..at];
    Some(info.split_once(':').map_or(info, |(_, password)| password)).filter(|p| !p.is_empty())
}

/// Characters that end a URL written inside other text.
fn ends_url(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | ')' | '>' | '<')
}

/// Every `scheme://user:password@host/path?query` in `text` becomes `scheme://***@host/path?***`, wherever
/// it appears (an error message quotes the URL it failed on). Linear in `text`.
pub(crate) fn mask_urls(text: &str) -> Cow<'_, str> {
    if !text.contains("://") || !(text.contains('@') || text.contains('?')) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends at the first character no URL authority contains.
        let end = tail.find(|c: char| matches!(c, '/' | '?' | '#') || ends_url(c)).unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str(HIDDEN);
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        let after = &tail[end..];
        // The path is kept; a query string (tokens, signatures) is hidden up to the fragment or the URL's end.
        let path_end = after.find(|c: char| c == '?' || c == '#' || ends_url(c)).unwrap_or(after.len());
        out.push_str(&after[..path_end]);
        rest = &after[path_end..];
        if let Some(query) = rest.strip_prefix('?') {
            let query_end = query.find(|c: char| c == '#' || ends_url(c)).unwrap_or(query.len());
            out.push('?');
            out.push_str(HIDDEN);
            rest = &query[query_end..];
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_credentials_and_queries_are_masked_wherever_they_appear() {
        assert_eq!(mask_urls("http://localhost:4318/v1/traces"), "http://localhost:4318/v1/traces");
        assert_eq!(mask_urls("https://u:p4ss@collector:4318/v1/traces"), "https://***@collector:4318/v1/traces");
        assert_eq!(
            mask_urls("error sending request for url (https://tok3n@c.example/x?q=a@b): refused"),
            "error sending request for url (https://***@c.example/x?***): refused"
        );
        assert_eq!(mask_urls("a http://x:y@h b https://h2 c"), "a http://***@h b https://h2 c");
        assert_eq!(mask_urls("see \"https://h/p?sig=abc#frag\" now"), "see \"https://h/p?***#frag\" now");
        assert_eq!(mask_urls("no url? here@all"), "no url? here@all");
        assert_eq!(mask_url("https://h?token=1&b=2"), "https://h?***");
        assert_eq!(url_password("https://user:s3cr3t@h/"), Some("s3cr3t"));
        assert_eq!(url_password("https://tok3n@h/"), Some("tok3n"));
        assert_eq!(url_password("https://h/a@b"), None);
    }

    #[test]
    fn header_values_are_hidden_in_parsed_and_raw_form_alike() {
        assert_eq!(mask_header_values("authorization=Bearer s3cr3t, x-api-key=k3y"), "authorization=***,x-api-key=***");
        assert_eq!(mask_header_values("authorization=Bearer%20s3cr3t,broken"), "authorization=***,***");
        // A value where the name belongs (here a URL with a token in its query) is hidden whole.
        assert_eq!(mask_header_values("https://h/?token=s3cr3t=x,ok=y"), "***,ok=***");
        assert_eq!(mask_headers(["authorization", "x-api-key"]), mask_header_values("authorization=a,x-api-key=b"));
    }
}
