//! Hiding secrets written into URLs, for every text the library prints: `https://user:pw@host` becomes
//! `https://***@host`.

use std::borrow::Cow;

/// The user-info of a URL (`user:password` in `https://user:password@host/`), if any.
pub(crate) fn userinfo(url: &str) -> Option<(usize, usize)> {
    let start = url.find("://")? + 3;
    let authority_end = url[start..].find(['/', '?', '#']).map_or(url.len(), |i| start + i);
    let at = url[start..authority_end].rfind('@')? + start;
    Some((start, at))
}

pub(crate) fn url_password(url: &str) -> Option<&str> {
    let (start, at) = userinfo(url)?;
    let info = &url[start..at];
    Some(info.split_once(':').map_or(info, |(_, password)| password)).filter(|p| !p.is_empty())
}

/// Every `scheme://user:password@host` in `text` becomes `scheme://***@host`. Linear in `text`.
pub(crate) fn mask_urls(text: &str) -> Cow<'_, str> {
    if !text.contains("://") || !text.contains('@') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        // The authority ends at the first character no URL authority contains.
        let end = tail
            .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace() || c == '"' || c == '\'')
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("***");
                out.push_str(&authority[at..]);
            }
            None => out.push_str(authority),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    Cow::Owned(out)
}
