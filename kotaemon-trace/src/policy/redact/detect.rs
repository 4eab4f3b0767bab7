//! Value detectors: secrets and personal data found anywhere inside a string.
//!
//! A single pass finds which detectors could possibly match (a literal trigger such as `@`, `eyJ`,
//! `-----BEGIN`, a provider prefix, or a run of seven or more digits); a clean string stops there, with no
//! regex run and no allocation. Shapes are then confirmed with checksums and context, which is what keeps
//! tracking numbers, order ids, versions, timestamps, UUIDs and hashes intact:
//! card numbers must pass Luhn and start with a real issuer prefix, IBANs must pass mod-97, phone numbers
//! need an international `+CC`, a Chinese mobile prefix, or the North American `(NXX) NXX-XXXX` form.

use regex::Regex;
use std::borrow::Cow;
use std::ops::Range;

/// What a detector found; the name appears in the marker `[REDACTED:<kind>]` and in the audit attribute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Kind {
    PrivateKey,
    UrlCredentials,
    Jwt,
    Bearer,
    ApiKey,
    /// A value named by a secret key inside the text: `password=…`, `"token": "…"`, `Authorization: Token …`.
    Key,
    Email,
    CreditCard,
    Iban,
    Phone,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::PrivateKey => "private_key",
            Kind::UrlCredentials => "url_credentials",
            Kind::Jwt => "jwt",
            Kind::Bearer => "bearer",
            Kind::ApiKey => "api_key",
            Kind::Key => "key",
            Kind::Email => "email",
            Kind::CreditCard => "credit_card",
            Kind::Iban => "iban",
            Kind::Phone => "phone",
        }
    }

    pub(crate) fn marker(self) -> &'static str {
        match self {
            Kind::PrivateKey => "[REDACTED:private_key]",
            Kind::UrlCredentials => "[REDACTED:url_credentials]",
            Kind::Jwt => "[REDACTED:jwt]",
            Kind::Bearer => "[REDACTED:bearer]",
            Kind::ApiKey => "[REDACTED:api_key]",
            Kind::Key => "[REDACTED:key]",
            Kind::Email => "[REDACTED:email]",
            Kind::CreditCard => "[REDACTED:credit_card]",
            Kind::Iban => "[REDACTED:iban]",
            Kind::Phone => "[REDACTED:phone]",
        }
    }
}

/// What one pass over the bytes saw; each detector runs only when what it needs is there.
#[derive(Clone, Copy, Default)]
struct Seen {
    /// `@`: emails.
    at: bool,
    /// `eyJ`: JWTs.
    jwt: bool,
    /// `bearer` or `basic` and a space, any case.
    bearer: bool,
    /// `-----BEGIN`.
    pem: bool,
    /// `://`: URL user info.
    scheme: bool,
    /// A run of 15 or more key characters (`[A-Za-z0-9_+/-]`): every provider key is one.
    long_run: bool,
    /// Seven digits close together: phone and card numbers.
    digits: bool,
    /// Two capitals and two digits: IBANs.
    iban: bool,
    /// `=` or `:`: secrets named inline.
    pair: bool,
}

/// Shortest provider key the `api_key` pattern accepts, as one run of key characters (`xoxb-` + 10).
const KEY_RUN: usize = 15;

/// Byte classes for [`Detectors::scan`].
const KEY_CHAR: u8 = 1; // [A-Za-z0-9_+/-]: provider keys
const DIGIT: u8 = 2;
const DIGIT_GAP: u8 = 4; // what may separate the digits of a phone or card number: ` -.()+`
const UPPER: u8 = 8;
const MARKER: u8 = 16; // may start a marker: `@ = : e b B -`

const CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        let mut class = 0;
        if b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'+' | b'/') {
            class |= KEY_CHAR;
        }
        if b.is_ascii_digit() {
            class |= DIGIT;
        }
        if matches!(b, b' ' | b'-' | b'.' | b'(' | b')' | b'+') {
            class |= DIGIT_GAP;
        }
        if b.is_ascii_uppercase() {
            class |= UPPER;
        }
        if matches!(b, b'@' | b'=' | b':' | b'e' | b'b' | b'B' | b'-') {
            class |= MARKER;
        }
        table[c] = class;
        c += 1;
    }
    table
};

pub(crate) struct Detectors {
    private_key: Regex,
    url_credentials: Regex,
    jwt: Regex,
    bearer: Regex,
    api_key: Regex,
    email: Regex,
    card: Regex,
    iban: Regex,
    phone_international: Regex,
    phone_cn: Regex,
    phone_nanp: Regex,
}

impl std::fmt::Debug for Detectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Detectors")
    }
}

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("built-in detector pattern {pattern:?} is invalid: {e}"))
}

impl Detectors {
    pub(crate) fn new() -> Self {
        Detectors {
            private_key: re(
                r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?s:.*?)(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\z)",
            ),
            // user:password@ after a scheme; the user and password go, scheme and host stay.
            // The password may itself hold an unescaped `@`: the user info ends at the authority's last `@`.
            url_credentials: re(r"(?i)(?-u:\b)[a-z][a-z0-9+.\-]*://([^\s/?#@:]*:[^\s/?#]+)@"),
            // Header `{"…` (eyJ), two more base64url segments; confirmed by `is_jwt`.
            jwt: re(r"(?-u:\b)eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]*"),
            bearer: re(r"(?i)(?-u:\b)(?:bearer|basic)\s+([A-Za-z0-9._~+/\-]{8,}=*)"),
            api_key: re(concat!(
                r"(?-u:\b)(?:sk-(?:proj-|ant-(?:api\d+-|admin\d+-)?|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}",
                r"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}",
                r"|(?:AKIA|ASIA)[A-Z0-9]{16}",
                r"|AIza[0-9A-Za-z_\-]{35}",
                r"|gh[pousr]_[A-Za-z0-9]{30,}",
                r"|github_pat_[A-Za-z0-9_]{22,}",
                r"|xox[abposr]-[A-Za-z0-9\-]{10,}",
                r"|glpat-[A-Za-z0-9_\-]{20,}",
                r"|hf_[A-Za-z0-9]{30,}",
                r"|npm_[A-Za-z0-9]{36}",
                r"|SG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}",
                r"|whsec_[A-Za-z0-9+/=]{24,}",
                r"|LTAI[A-Za-z0-9]{12,24}(?-u:\b)", // Alibaba Cloud AccessKey ID
                r"|AKID[A-Za-z0-9]{32}(?-u:\b)",    // Tencent Cloud SecretId
                r"|hooks\.slack\.com/services/[A-Za-z0-9]+/[A-Za-z0-9]+/[A-Za-z0-9]{16,})"
            )),
            email: re(
                r"(?i)(?-u:\b)[a-z0-9][a-z0-9._%+\-]*@[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9\-]*[a-z0-9])?)*\.[a-z]{2,24}(?-u:\b)",
            ),
            card: re(r"(?-u:\b)\d(?:[ \-]?\d){12,18}(?-u:\b)"),
            iban: re(r"(?-u:\b)[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?-u:\b)"),
            phone_international: re(r"\+\d{1,3}(?:[ .\-]?\(?\d{1,4}\)?){1,7}(?-u:\b)"),
            // ASCII word boundaries: `手机13912345678` has no Unicode boundary between 机 and 1. Mobiles,
            // and landlines written with the area code and a dash (`010-62345678`, `0755-1234567`).
            phone_cn: re(r"(?-u:\b)(?:1[3-9]\d(?:[ \-]?\d{4}){2}|0[1-9]\d{1,2}-[2-9]\d{6,7})(?-u:\b)"),
            phone_nanp: re(r"(?:\(\d{3}\)\s?|(?-u:\b)\d{3}[.\-])\d{3}[.\-]\d{4}(?-u:\b)"),
        }
    }

    /// One pass over the bytes, no allocation: a clean string stops here, with no regex run. Each byte is
    /// classified by one table lookup; only the few bytes that start a marker are looked at further
    /// (measured: twice as fast as testing each class in turn).
    fn scan(value: &str) -> Seen {
        let b = value.as_bytes();
        let mut seen = Seen::default();
        // Phone and card numbers need a dense run of at least seven digits (separated by at most two of
        // ` -.()+`), which prose with scattered numbers does not have.
        let (mut digits, mut gap, mut run) = (0usize, 0usize, 0usize);
        // The classes of the two bytes before this one, for IBANs (two capitals, then digits).
        let (mut before, mut last) = (0u8, 0u8);
        for (i, &c) in b.iter().enumerate() {
            let class = CLASS[c as usize];
            if class & KEY_CHAR != 0 {
                run += 1;
                seen.long_run |= run >= KEY_RUN;
            } else {
                run = 0;
            }
            if class & DIGIT != 0 {
                digits += 1;
                gap = 0;
                seen.digits |= digits >= 7;
                seen.iban |=
                    last & DIGIT != 0 && before & UPPER != 0 && i >= 3 && CLASS[b[i - 3] as usize] & UPPER != 0;
            } else if class & DIGIT_GAP != 0 && digits > 0 && gap < 2 {
                gap += 1;
            } else {
                digits = 0;
                gap = 0;
            }
            if class & MARKER != 0 {
                let rest = &b[i + 1..];
                match c {
                    b'@' => seen.at = true,
                    b'=' => seen.pair = true,
                    b':' => {
                        seen.pair = true;
                        seen.scheme |= rest.starts_with(b"//");
                    }
                    b'e' => seen.jwt |= rest.starts_with(b"yJ"),
                    b'b' | b'B' => {
                        let word = |w: &[u8]| {
                            rest.len() > w.len()
                                && rest[..w.len()].eq_ignore_ascii_case(w)
                                && rest[w.len()].is_ascii_whitespace()
                        };
                        seen.bearer |= word(b"earer") || word(b"asic");
                    }
                    b'-' => seen.pem |= rest.starts_with(b"----BEGIN"),
                    _ => {}
                }
            }
            (before, last) = (last, class);
        }
        seen
    }

    /// Every secret found in `value`, as byte ranges with their kind, earliest first, not overlapping.
    pub(crate) fn find(&self, value: &str, found: &mut Vec<(Range<usize>, Kind)>) {
        found.clear();
        if value.len() < 6 {
            return;
        }
        let out = &mut Findings { committed: found, pending: Vec::new() };
        let seen = Detectors::scan(value);
        // Most specific first: a JWT inside `Bearer ...`, a password inside a URL before the email-like
        // `pass@host`.
        if seen.pem {
            push_all(&self.private_key, value, Kind::PrivateKey, out);
        }
        if seen.scheme && seen.at {
            for c in self.url_credentials.captures_iter(value) {
                if let Some(g) = c.get(1) {
                    out.add(g.range(), Kind::UrlCredentials);
                }
            }
        }
        if seen.jwt {
            for m in self.jwt.find_iter(value) {
                if is_jwt(m.as_str()) {
                    out.add(m.range(), Kind::Jwt);
                }
            }
        }
        if seen.bearer {
            for c in self.bearer.captures_iter(value) {
                if let Some(g) = c.get(1).filter(|g| is_credential(&c[0], g.as_str())) {
                    out.add(g.range(), Kind::Bearer);
                }
            }
        }
        if seen.long_run {
            for m in self.api_key.find_iter(value) {
                if is_provider_key(m.as_str()) {
                    out.add(m.range(), Kind::ApiKey);
                }
            }
        }
        if seen.pair {
            super::inline::find(value, |range| out.add(range, Kind::Key));
        }
        if seen.at {
            for m in self.email.find_iter(value) {
                if !is_host_login(value, m.range()) {
                    out.add(m.range(), Kind::Email);
                }
            }
        }
        if seen.digits {
            for m in self.card.find_iter(value) {
                if let Some(len) = card_len(m.as_str()) {
                    out.add(m.start()..m.start() + len, Kind::CreditCard);
                }
            }
            for m in self.phone_international.find_iter(value) {
                if let Some(len) = international_phone_len(m.as_str()) {
                    out.add(m.start()..m.start() + len, Kind::Phone);
                }
            }
            push_all(&self.phone_cn, value, Kind::Phone, out);
            for m in self.phone_nanp.find_iter(value) {
                if is_nanp(m.as_str()) {
                    out.add(m.range(), Kind::Phone);
                }
            }
        }
        if seen.iban {
            for m in self.iban.find_iter(value) {
                if is_iban(m.as_str()) {
                    out.add(m.range(), Kind::Iban);
                }
            }
        }
        out.commit();
    }
}

/// A JWT (or JWE): the payload is a JSON object too (`eyJ`), or the header decodes to a whole JSON
/// object naming an algorithm or a type (`eyJhbGciOi.json` is a file name, not a token).
fn is_jwt(candidate: &str) -> bool {
    let mut parts = candidate.split('.');
    let header = parts.next().unwrap_or("");
    if parts.next().is_some_and(|payload| payload.starts_with("eyJ")) {
        return true;
    }
    let decoded = base64_decode(header);
    decoded.starts_with(b"{")
        && decoded.trim_ascii_end().ends_with(b"}")
        && [&b"\"alg\""[..], b"\"typ\"", b"\"enc\""].iter().any(|k| decoded.windows(k.len()).any(|w| w == *k))
}

/// Standard or URL-safe base64, padding optional; stops at the first byte outside the alphabet.
fn base64_decode(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for b in text.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => break,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(((acc >> bits) & 0xff) as u8);
        }
    }
    out
}

/// A provider key rather than an identifier that happens to start like one (`sk-learn-pipeline-v2`): the
/// generic `sk-` form needs upper case, lower case and digits (random keys have all three), or 32+ hex
/// digits (DashScope, DeepSeek).
fn is_provider_key(candidate: &str) -> bool {
    let Some(body) = candidate.strip_prefix("sk-") else { return true };
    let b = body.as_bytes();
    let hex = b.len() >= 32 && b.iter().all(u8::is_ascii_hexdigit);
    hex || (b.iter().any(u8::is_ascii_digit)
        && b.iter().any(u8::is_ascii_uppercase)
        && b.iter().any(u8::is_ascii_lowercase))
}

/// `Bearer`/`Basic` followed by a credential, not by prose (`Bearer authentication is configured`): a
/// Basic credential decodes to `user:password`; a bearer token has a digit or a symbol in it, or is long
/// and mixed-case.
fn is_credential(whole: &str, token: &str) -> bool {
    if whole.get(..5).is_some_and(|w| w.eq_ignore_ascii_case("basic")) {
        return decodes_to_user_password(token) || (token.len() >= 16 && has_digit_and_mixed_case(token));
    }
    token.bytes().any(|b| b.is_ascii_digit() || b"-._~+/=".contains(&b))
        || (token.len() >= 20
            && token.bytes().any(|b| b.is_ascii_uppercase())
            && token.bytes().any(|b| b.is_ascii_lowercase()))
}

fn has_digit_and_mixed_case(token: &str) -> bool {
    let b = token.as_bytes();
    b.iter().any(u8::is_ascii_digit) && b.iter().any(u8::is_ascii_uppercase) && b.iter().any(u8::is_ascii_lowercase)
}

/// Standard base64 that decodes to printable text with a `:` in it.
fn decodes_to_user_password(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    if body.len() % 4 == 1 || body.len() < 4 {
        return false;
    }
    let (mut acc, mut bits, mut colon) = (0u32, 0u32, false);
    for b in body.bytes() {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return false,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            let byte = ((acc >> bits) & 0xff) as u8;
            if byte == b':' {
                colon = true;
            } else if !(0x20..0x7f).contains(&byte) && byte < 0x80 {
                return false;
            }
        }
    }
    colon
}

/// `user@host` that is a login, not a mailbox: URL user info without a password (`ssh://git@github.com/`)
/// and scp-style remotes (`git@github.com:org/repo.git`).
fn is_host_login(value: &str, range: Range<usize>) -> bool {
    value[..range.start].ends_with("://")
        || value[range.end..].strip_prefix(':').is_some_and(|rest| rest.starts_with(|c: char| !c.is_whitespace()))
}

/// How much of an international-looking match is the number: 8 to 15 digits (E.164), trailing groups
/// dropped when a following number was glued on (`+44 20 7946 0958 2026`).
fn international_phone_len(candidate: &str) -> Option<usize> {
    let mut end = candidate.len();
    loop {
        let digits = candidate[..end].bytes().filter(u8::is_ascii_digit).count();
        if (8..=15).contains(&digits) {
            return Some(end);
        }
        if digits < 8 {
            return None;
        }
        end = candidate[..end].rfind([' ', '.', '-'])?;
    }
}

fn push_all(re: &Regex, value: &str, kind: Kind, out: &mut Findings<'_>) {
    for m in re.find_iter(value) {
        out.add(m.range(), kind);
    }
}

/// The findings so far, kept sorted by start and free of overlaps, so that refusing a finding that
/// overlaps an earlier (more specific) one costs a binary search, not a scan of every finding: linear
/// time overall however many findings a hostile value produces.
struct Findings<'a> {
    /// Sorted, non-overlapping.
    committed: &'a mut Vec<(Range<usize>, Kind)>,
    /// The current detector's findings: they arrive in increasing order; sorted, non-overlapping.
    pending: Vec<(Range<usize>, Kind)>,
}

impl Findings<'_> {
    /// Adds a finding unless an earlier one already covers part of it.
    fn add(&mut self, range: Range<usize>, kind: Kind) {
        if self.pending.last().is_some_and(|(last, _)| range.start < last.start) {
            // A detector starting over from the left: fold the previous one's findings in first.
            self.commit();
        }
        if self.pending.last().is_some_and(|(last, _)| range.start < last.end) {
            return;
        }
        // The first committed finding that ends after this one starts is the only one that can overlap.
        let i = self.committed.partition_point(|(r, _)| r.end <= range.start);
        if self.committed.get(i).is_some_and(|(r, _)| r.start < range.end) {
            return;
        }
        self.pending.push((range, kind));
    }

    /// Merges the pending findings into the committed ones (both sorted, disjoint from each other).
    fn commit(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        if self.committed.is_empty() {
            std::mem::swap(self.committed, &mut self.pending);
            return;
        }
        let mut merged = Vec::with_capacity(self.committed.len() + self.pending.len());
        let (mut a, mut b) = (std::mem::take(self.committed).into_iter().peekable(), self.pending.drain(..).peekable());
        loop {
            let take_a = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) => x.0.start <= y.0.start,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            merged.extend(if take_a { a.next() } else { b.next() });
        }
        *self.committed = merged;
    }
}

/// Replaces each finding with its marker; borrowed when there is none.
pub(crate) fn replace<'a>(value: &'a str, found: &[(Range<usize>, Kind)]) -> Cow<'a, str> {
    if found.is_empty() {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len());
    let mut last = 0;
    for (range, kind) in found {
        out.push_str(&value[last..range.start]);
        out.push_str(kind.marker());
        last = range.end;
    }
    out.push_str(&value[last..]);
    Cow::Owned(out)
}

fn luhn(digits: impl DoubleEndedIterator<Item = u8>) -> bool {
    let mut sum = 0u32;
    for (i, d) in digits.rev().enumerate() {
        let mut v = u32::from(d);
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum.is_multiple_of(10)
}

/// How much of a digit run is a card number: the whole run, or the run without trailing groups that
/// were glued on (`4111 1111 1111 1111 12`). `None` when no prefix of it is one.
fn card_len(candidate: &str) -> Option<usize> {
    let mut end = candidate.len();
    loop {
        if is_card_number(&candidate[..end]) {
            return Some(end);
        }
        end = candidate[..end].rfind([' ', '-'])?;
    }
}

/// 13–19 digits, one separator style, Luhn-valid, and an issuer prefix that exists. Allocation-free.
fn is_card_number(candidate: &str) -> bool {
    let mut separator = None;
    for b in candidate.bytes().filter(|b| !b.is_ascii_digit()) {
        if *separator.get_or_insert(b) != b {
            return false;
        }
    }
    let digits = || candidate.bytes().filter(u8::is_ascii_digit).map(|b| b - b'0');
    if !(13..=19).contains(&digits().count()) || !luhn(digits()) {
        return false;
    }
    let prefix = |n: usize| digits().take(n).fold(0u32, |acc, d| acc * 10 + u32::from(d));
    let (p1, p2, p3, p4, p6) = (prefix(1), prefix(2), prefix(3), prefix(4), prefix(6));
    p1 == 4                                   // Visa
        || (51..=55).contains(&p2)            // Mastercard
        || (2221..=2720).contains(&p4)        // Mastercard 2-series
        || p2 == 34 || p2 == 37               // American Express
        || p4 == 6011 || p2 == 65 || (644..=649).contains(&p3) || (622_126..=622_925).contains(&p6) // Discover
        || (3528..=3589).contains(&p4)        // JCB
        || (2200..=2204).contains(&p4)        // Mir
        || (300..=305).contains(&p3) || p2 == 36 || p2 == 38 || p2 == 39 // Diners
        || p2 == 62                           // UnionPay
        || p2 == 50 || (56..=58).contains(&p2) || p2 == 63 || p2 == 67 // Maestro
}

/// North American numbers: area code and exchange start with 2–9.
fn is_nanp(candidate: &str) -> bool {
    let mut digits = candidate.bytes().filter(u8::is_ascii_digit);
    let area = digits.next();
    let exchange = digits.nth(2);
    let ok = |d: Option<u8>| d.is_some_and(|d| (b'2'..=b'9').contains(&d));
    ok(area) && ok(exchange) && digits.count() == 6
}

/// ISO 13616 mod-97 check.
fn is_iban(candidate: &str) -> bool {
    let compact = || candidate.bytes().filter(|b| *b != b' ');
    if !(15..=34).contains(&compact().count()) {
        return false;
    }
    let rearranged = compact().skip(4).chain(compact().take(4));
    let mut remainder = 0u32;
    for b in rearranged {
        let value = match b {
            b'0'..=b'9' => u32::from(b - b'0'),
            b'A'..=b'Z' => u32::from(b - b'A') + 10,
            _ => return false,
        };
        remainder = if value >= 10 { (remainder * 100 + value) % 97 } else { (remainder * 10 + value) % 97 };
    }
    remainder == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redact(value: &str) -> String {
        let d = Detectors::new();
        let mut found = Vec::new();
        d.find(value, &mut found);
        replace(value, &found).into_owned()
    }

    #[test]
    fn checksums() {
        assert!(is_card_number("4111 1111 1111 1111"));
        assert!(is_card_number("378282246310005"));
        assert!(!is_card_number("4111 1111 1111 1112"), "Luhn");
        assert!(!is_card_number("4111-1111 1111-1111"), "mixed separators");
        assert!(!is_card_number("9111111111111119"), "no issuer starts with 9");
        assert_eq!(card_len("4111 1111 1111 1111 12"), Some(19), "a glued-on group is not part of the card");
        assert_eq!(card_len("4111 1111 1111 1112 12"), None);
        assert!(is_nanp("415-555-0100") && !is_nanp("415-155-0100") && !is_nanp("415-555-01000"));
        assert!(is_iban("GB82 WEST 1234 5698 7654 32"));
        assert!(!is_iban("GB82 WEST 1234 5698 7654 33"));
        assert!(is_nanp("(415) 555-0100"));
        assert!(!is_nanp("(115) 555-0100"));
    }

    #[test]
    fn shape_confirmations() {
        assert!(is_jwt("eyJhbGciOiJIUzI1NiJ9.e30.ZRrHA1JJJW8opsbCGfG"), "header names alg; payload is an empty object");
        assert!(is_jwt("eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0."), "unsigned");
        assert!(!is_jwt("eyJhbGciOi.json.bak"), "a truncated header is not a token");
        assert!(is_provider_key("sk-proj-AbCdEfGh1234567890IjKlMnOp"));
        assert!(is_provider_key("sk-4f3c2b1a0e9d8c7b6a5f4e3d2c1b0a99"), "32 hex digits");
        assert!(!is_provider_key("sk-learn-pipeline-config-v2-final"));
        assert!(decodes_to_user_password("YWxhZGRpbjpvcGVuc2VzYW1l"), "aladdin:opensesame");
        assert!(!decodes_to_user_password("authentication"));
        assert!(is_credential("Bearer abcdef0123", "abcdef0123"));
        assert!(!is_credential("Bearer authentication", "authentication"));
        assert!(!is_credential("Basic understanding", "understanding"));
        assert_eq!(international_phone_len("+44 20 7946 0958 2026"), Some("+44 20 7946 0958".len()));
        assert_eq!(international_phone_len("+1234"), None);
        assert!(is_host_login("git@github.com:org/repo.git", 0..14));
        assert!(is_host_login("ssh://git@github.com/x", 6..20));
        assert!(!is_host_login("mail bob@example.org: thanks", 5..20));
    }

    #[test]
    fn only_the_secret_part_is_replaced() {
        assert_eq!(redact("mail bob@example.org now"), "mail [REDACTED:email] now");
        assert_eq!(redact("postgres://app:hunter22@db:5432/x"), "postgres://[REDACTED:url_credentials]@db:5432/x");
        assert_eq!(redact("Authorization: Bearer abcdefgh12345678"), "Authorization: Bearer [REDACTED:bearer]");
        assert_eq!(redact("card 4111 1111 1111 1111 exp 09/29"), "card [REDACTED:credit_card] exp 09/29");
        assert_eq!(redact("call +1 415 555 0100 today"), "call [REDACTED:phone] today");
        assert_eq!(redact("手机 13912345678 联系"), "手机 [REDACTED:phone] 联系");
        assert_eq!(redact("IBAN GB82WEST12345698765432."), "IBAN [REDACTED:iban].");
        assert_eq!(redact("key AKIAIOSFODNN7EXAMPLE used"), "key [REDACTED:api_key] used");
        assert_eq!(redact("邮箱alice@example.com。"), "邮箱[REDACTED:email]。", "glued to CJK text");
        assert_eq!(redact("卡号4111111111111111"), "卡号[REDACTED:credit_card]");
        assert_eq!(redact("redis://:pw0rd@cache:6379"), "redis://[REDACTED:url_credentials]@cache:6379");
        assert_eq!(
            redact("Login { user: \"bob\", password: \"hunter2\" }"),
            "Login { user: \"bob\", password: \"[REDACTED:key]\" }"
        );
    }

    #[test]
    fn lookalikes_stay() {
        for benign in [
            "tracking number 1Z999AA10123456784",
            "tracking number 9400111899223856937442",
            "order 2024061512345 shipped",
            "v1.2.3-rc.4",
            "2026-01-08T10:14:00.123+08:00",
            "550e8400-e29b-41d4-a716-446655440000",
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "ISBN 978-0-306-40615-7",
            "10.0.0.1:8080",
            "user@localhost",
            "price 1,299.00 and 2,599.00",
            "the ratio is 0.123456789",
        ] {
            assert_eq!(redact(benign), benign);
        }
    }
}

#[cfg(test)]
mod findings_tests {
    use super::*;

    /// What `Findings` replaced: check every earlier finding (quadratic in the number of findings).
    fn naive(ranges: &[(Range<usize>, Kind)]) -> Vec<(Range<usize>, Kind)> {
        let mut out: Vec<(Range<usize>, Kind)> = Vec::new();
        for (range, kind) in ranges {
            if !out.iter().any(|(r, _)| r.start < range.end && range.start < r.end) {
                out.push((range.clone(), *kind));
            }
        }
        out.sort_by_key(|(r, _)| r.start);
        out
    }

    #[test]
    fn the_sorted_findings_keep_the_first_of_overlapping_ones_like_a_full_scan() {
        // Three "detectors", each left to right, overlapping each other in every way.
        let mut offered = Vec::new();
        for (step, len, kind) in [(7, 5, Kind::Jwt), (5, 3, Kind::Email), (3, 4, Kind::Phone)] {
            for start in (0..3000).step_by(step) {
                offered.push((start..start + len, kind));
            }
        }
        let mut committed = Vec::new();
        let mut findings = Findings { committed: &mut committed, pending: Vec::new() };
        for (range, kind) in &offered {
            findings.add(range.clone(), *kind);
        }
        findings.commit();
        assert_eq!(committed, naive(&offered));
        assert!(committed.windows(2).all(|w| w[0].0.end <= w[1].0.start));
    }

    #[test]
    fn hostile_values_give_the_same_findings_as_before() {
        let detectors = Detectors::new();
        let mut found = Vec::new();
        for unit in ["password= token=\"x ", "a@b.co x@y.org ", "4111 1111 1111 1111 +1 415 555 0100 "] {
            let text = unit.repeat(4096 / unit.len());
            detectors.find(&text, &mut found);
            assert!(!found.is_empty(), "{unit}");
            assert!(found.windows(2).all(|w| w[0].0.end <= w[1].0.start), "{unit}: sorted and disjoint");
        }
    }
}
