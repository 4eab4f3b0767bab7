//! Value detectors: secrets and personal data found anywhere inside a string.
//!
//! A single pass finds which detectors could possibly match (a literal trigger such as `@`, `eyJ`,
//! `-----BEGIN`, a provider prefix, or a run of seven or more digits); a clean string stops there, with no
//! regex run and no allocation. Shapes are then confirmed with checksums and context, which is what keeps
//! tracking numbers, order ids, versions, timestamps, UUIDs and hashes intact:
//! card numbers must pass Luhn and start with a real issuer prefix, IBANs must pass mod-97, phone numbers
//! need an international `+CC`, a Chinese mobile prefix, or the North American `(NXX) NXX-XXXX` form.

use super::catalogue::{self, Catalogue};
use regex::Regex;
use std::borrow::Cow;
use std::ops::Range;

/// What a detector found; the name appears in the marker `[REDACTED:<kind>]`, in the audit attribute and
/// as the `kind` label of `kotaemon_trace_redactions_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Kind {
    PrivateKey,
    UrlCredentials,
    Jwt,
    Bearer,
    /// A provider token of the catalogue (index into [`catalogue::RULES`]).
    Token(u16),
    /// A random-looking value named by a provider's keyword (index into [`super::inline::KEYWORDS`]).
    Keyword(u16),
    /// A value named by a secret key inside the text: `password=…`, `"token": "…"`, `Authorization: Token …`.
    Key,
    /// `curl -u user:password`.
    Credentials,
    Email,
    CreditCard,
    Iban,
    Phone,
    Ssn,
    Nino,
    IpAddress,
    BitcoinAddress,
    EthereumAddress,
}

impl Kind {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::PrivateKey => "private_key",
            Kind::UrlCredentials => "url_credentials",
            Kind::Jwt => "jwt",
            Kind::Bearer => "bearer",
            Kind::Token(i) => catalogue::RULES[usize::from(i)].name,
            Kind::Keyword(i) => super::inline::KEYWORDS[usize::from(i)].1,
            Kind::Key => "key",
            Kind::Credentials => "credentials",
            Kind::Email => "email",
            Kind::CreditCard => "credit_card",
            Kind::Iban => "iban",
            Kind::Phone => "phone",
            Kind::Ssn => "us_ssn",
            Kind::Nino => "uk_nino",
            Kind::IpAddress => "ip_address",
            Kind::BitcoinAddress => "bitcoin_address",
            Kind::EthereumAddress => "ethereum_address",
        }
    }

    pub(crate) fn marker(self) -> &'static str {
        match self {
            Kind::PrivateKey => "[REDACTED:private_key]",
            Kind::UrlCredentials => "[REDACTED:url_credentials]",
            Kind::Jwt => "[REDACTED:jwt]",
            Kind::Bearer => "[REDACTED:bearer]",
            Kind::Token(i) => catalogue::RULES[usize::from(i)].marker,
            Kind::Keyword(i) => super::inline::KEYWORDS[usize::from(i)].2,
            Kind::Key => "[REDACTED:key]",
            Kind::Credentials => "[REDACTED:credentials]",
            Kind::Email => "[REDACTED:email]",
            Kind::CreditCard => "[REDACTED:credit_card]",
            Kind::Iban => "[REDACTED:iban]",
            Kind::Phone => "[REDACTED:phone]",
            Kind::Ssn => "[REDACTED:us_ssn]",
            Kind::Nino => "[REDACTED:uk_nino]",
            Kind::IpAddress => "[REDACTED:ip_address]",
            Kind::BitcoinAddress => "[REDACTED:bitcoin_address]",
            Kind::EthereumAddress => "[REDACTED:ethereum_address]",
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
    /// Three dots between digits in one run: IPv4.
    ipv4: bool,
    /// Two colons in one run of hex digits and colons: IPv6.
    ipv6: bool,
    /// Two capitals, a space, digits: UK NINOs written in groups.
    nino: bool,
    /// `ddd-dd-d` (or with spaces): US SSNs.
    ssn: bool,
}

/// Shortest run of key characters every catalogue token has (`xoxb-` + 10).
const KEY_RUN: usize = 15;

/// Byte classes for [`Detectors::scan`].
const KEY_CHAR: u8 = 1; // [A-Za-z0-9_+/-]: provider keys
const DIGIT: u8 = 2;
const DIGIT_GAP: u8 = 4; // what may separate the digits of a phone or card number: ` -.()+`
const UPPER: u8 = 8;
const MARKER: u8 = 16; // may start a marker: `@ = : e b B - .`

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
        if matches!(b, b'@' | b'=' | b':' | b'e' | b'b' | b'B' | b'-' | b'.') {
            class |= MARKER;
        }
        table[c] = class;
        c += 1;
    }
    table
};

pub(crate) struct Detectors {
    catalogue: Catalogue,
    private_key: Regex,
    url_credentials: Regex,
    jwt: Regex,
    bearer: Regex,
    ssn: Regex,
    nino: Regex,
    ipv4: Regex,
    ipv6: Regex,
    bitcoin: Regex,
    ethereum: Regex,
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
            catalogue: Catalogue::new(),
            private_key: re(
                r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?s:.*?)(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\z)",
            ),
            // user:password@ after a scheme; the user and password go, scheme and host stay.
            // The password may itself hold an unescaped `@`: the user info ends at the authority's last `@`.
            url_credentials: re(r"(?i)(?-u:\b)[a-z][a-z0-9+.\-]*://([^\s/?#@:\x22'<>;]*:[^\s/?#\x22'<>]+)@"),
            // Header `{"…` (eyJ), two more base64url segments; confirmed by `is_jwt`.
            jwt: re(r"(?-u:\b)eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]*"),
            bearer: re(r"(?i)(?-u:\b)(?:bearer|basic)\s+([A-Za-z0-9._~+/\-]{8,}=*)"),
            ssn: re(r"(?-u:\b)(?:\d{3}-\d{2}-\d{4}|\d{3} \d{2} \d{4})(?-u:\b)"),
            nino: re(r"(?-u:\b)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D](?-u:\b)"),
            ipv4: re(r"(?-u:\b)(?:\d{1,3}\.){3}\d{1,3}(?-u:\b)"),
            ipv6: re(r"(?i)(?-u:\b)(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?:(?:\d{1,3}\.){3}\d{1,3})?"),
            // Base58Check (P2PKH `1…`, P2SH `3…`) and Bech32/Bech32m (`bc1…`), confirmed by their checksums.
            bitcoin: re(
                r"(?-u:\b)(?:[13][1-9A-HJ-NP-Za-km-z]{25,34}|bc1[02-9ac-hj-np-z]{11,71}|BC1[02-9AC-HJ-NP-Z]{11,71})(?-u:\b)",
            ),
            ethereum: re(r"(?-u:\b)0x[0-9a-fA-F]{40}(?-u:\b)"),
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
        // Dots between digits and colons next to hex digits, in the whole value: IP addresses. Counted on
        // the rare path of `.` and `:` only, so prose pays nothing for them.
        let (mut dots, mut colons) = (0u8, 0u8);
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
                seen.nino |=
                    last == DIGIT_GAP && before & UPPER != 0 && i >= 3 && CLASS[b[i - 3] as usize] & UPPER != 0;
                if last & DIGIT == 0 && i >= 7 && matches!(b[i - 1], b'-' | b' ') && b[i - 4] == b[i - 1] {
                    let d = |j: usize| b[j].is_ascii_digit();
                    seen.ssn |= d(i - 2) && d(i - 3) && d(i - 5) && d(i - 6) && d(i - 7);
                }
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
                        let hex = |x: Option<&u8>| x.is_some_and(|x| x.is_ascii_hexdigit() || *x == b':');
                        if hex(i.checked_sub(1).map(|j| &b[j])) || hex(rest.first()) {
                            colons = colons.saturating_add(1);
                            seen.ipv6 |= colons >= 2;
                        }
                    }
                    b'.' if last & DIGIT != 0 && rest.first().is_some_and(u8::is_ascii_digit) => {
                        dots = dots.saturating_add(1);
                        seen.ipv4 |= dots >= 3;
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
    pub(crate) fn find(&self, value: &str, found: &mut Vec<(Range<usize>, Kind)>, options: Options) {
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
            push_where(&self.jwt, value, Kind::Jwt, out, |range| is_jwt(&value[range]));
        }
        if seen.bearer {
            for c in self.bearer.captures_iter(value) {
                if let Some(g) = c.get(1).filter(|g| is_credential(&c[0], g.as_str())) {
                    out.add(g.range(), Kind::Bearer);
                }
            }
        }
        // Every catalogue token is a long run (Sidekiq's `bundle config` form, which is not, is a context rule).
        if seen.long_run {
            self.catalogue.find(value, |range, rule| out.add(range, Kind::Token(rule)));
        }
        if seen.pair || seen.long_run {
            super::context::find(value, |range, kind| out.add(range, kind));
        }
        if seen.pair {
            super::inline::find(value, |range, kind| out.add(range, kind));
        }
        if seen.long_run {
            push_where(&self.bitcoin, value, Kind::BitcoinAddress, out, |range| is_bitcoin_address(&value[range]));
            push_where(&self.ethereum, value, Kind::EthereumAddress, out, |range| is_ethereum_address(&value[range]));
        }
        if seen.at {
            push_where(&self.email, value, Kind::Email, out, |range| !is_host_login(value, range));
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
            if seen.ssn {
                push_where(&self.ssn, value, Kind::Ssn, out, |range| is_ssn(&value[range]));
            }
            push_where(&self.phone_nanp, value, Kind::Phone, out, |range| is_nanp(&value[range]));
        }
        if seen.iban {
            push_where(&self.iban, value, Kind::Iban, out, |range| is_iban(&value[range]));
        }
        if seen.iban || seen.nino {
            push_where(&self.nino, value, Kind::Nino, out, |range| is_nino(&value[range]));
        }
        if options.ip && seen.ipv4 {
            push_where(&self.ipv4, value, Kind::IpAddress, out, |range| is_public_ipv4(value, range));
        }
        if options.ip && seen.ipv6 {
            push_where(&self.ipv6, value, Kind::IpAddress, out, |range| is_ipv6(value, range));
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
pub(crate) fn base64_decode(text: &str) -> Vec<u8> {
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
    push_where(re, value, kind, out, |_| true);
}

/// Every match of `re` in `value` that `keep` confirms (a checksum, a range, its surroundings).
fn push_where(re: &Regex, value: &str, kind: Kind, out: &mut Findings<'_>, keep: impl Fn(Range<usize>) -> bool) {
    for m in re.find_iter(value) {
        if keep(m.range()) {
            out.add(m.range(), kind);
        }
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

/// Per-redactor switches of the shared detectors.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Options {
    /// IP addresses are personal data (`KOTAEMON_TRACE_REDACT_IP`, default on).
    pub(crate) ip: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options { ip: true }
    }
}

/// US Social Security numbers as the SSA issues them: area 001–899 except 666, group 01–99, serial
/// 0001–9999; the numbers the SSA voided after they were printed in advertising are refused too.
fn is_ssn(candidate: &str) -> bool {
    let digits: Vec<u32> = candidate.bytes().filter(u8::is_ascii_digit).map(|b| u32::from(b - b'0')).collect();
    let area = digits[0] * 100 + digits[1] * 10 + digits[2];
    let group = digits[3] * 10 + digits[4];
    let serial = digits[5..].iter().fold(0, |acc, d| acc * 10 + d);
    let all_same = digits.iter().all(|d| *d == digits[0]);
    let advertised = matches!(candidate, "078-05-1120" | "219-09-9999" | "123-45-6789");
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0 && !all_same && !advertised
}

/// UK National Insurance numbers: the regex holds the letters HMRC never uses in the prefix; these
/// prefixes are never allocated either.
fn is_nino(candidate: &str) -> bool {
    let prefix = &candidate[..2];
    let compact: String = candidate.chars().filter(|c| *c != ' ').collect();
    compact.len() == 9 && !matches!(prefix, "BG" | "GB" | "KN" | "NK" | "NT" | "TN" | "ZZ")
}

/// An IPv4 address: four octets 0–255 without leading zeros, not inside a longer dotted run (`1.2.3.4.5`
/// is an OID or a version) nor after `v` (`v1.2.3.4`); loopback, unspecified and broadcast addresses say
/// nothing about anyone and stay.
fn is_public_ipv4(value: &str, range: Range<usize>) -> bool {
    let b = value.as_bytes();
    let before = range.start.checked_sub(1).map(|i| b[i]);
    let after = b.get(range.end).copied();
    let after2 = b.get(range.end + 1).copied();
    if before.is_some_and(|c| c == b'.' || c == b'v' || c == b'V' || c.is_ascii_digit())
        || (after == Some(b'.') && after2.is_some_and(|c| c.is_ascii_digit()))
    {
        return false;
    }
    let text = &value[range];
    if text.split('.').any(|o| o.len() > 1 && o.starts_with('0')) {
        return false;
    }
    match text.parse::<std::net::Ipv4Addr>() {
        Ok(ip) => !(ip.is_loopback() || ip.is_unspecified() || ip.is_broadcast()),
        Err(_) => false,
    }
}

/// An IPv6 address that parses, with at least three groups or a `::` and two, and a digit (`dead::beef`
/// is more likely a path), not loopback or unspecified.
fn is_ipv6(value: &str, range: Range<usize>) -> bool {
    let text = &value[range.clone()];
    let b = value.as_bytes();
    if b.get(range.end).is_some_and(|c| c.is_ascii_alphanumeric() || *c == b':')
        || range.start.checked_sub(1).is_some_and(|i| b[i].is_ascii_alphanumeric() || b[i] == b':')
    {
        return false;
    }
    let groups = text.split(':').filter(|g| !g.is_empty()).count();
    if groups < 2 || (groups < 3 && !text.contains("::")) || !text.bytes().any(|c| c.is_ascii_digit()) {
        return false;
    }
    match text.parse::<std::net::Ipv6Addr>() {
        Ok(ip) => !(ip.is_loopback() || ip.is_unspecified()),
        Err(_) => false,
    }
}

/// Bitcoin addresses: Base58Check (25 bytes, version 0x00 or 0x05, double-SHA-256 checksum) or
/// Bech32/Bech32m (BIP-173/BIP-350 checksum, human part `bc`).
pub(crate) fn is_bitcoin_address(candidate: &str) -> bool {
    if candidate.len() > 3 && candidate[..3].eq_ignore_ascii_case("bc1") {
        return bech32_ok(candidate);
    }
    let Some(bytes) = base58_decode(candidate) else { return false };
    if bytes.len() != 25 || !matches!(bytes[0], 0x00 | 0x05) {
        return false;
    }
    use sha2::Digest;
    let once = sha2::Sha256::digest(&bytes[..21]);
    let twice = sha2::Sha256::digest(once);
    twice[..4] == bytes[21..]
}

fn base58_decode(text: &str) -> Option<Vec<u8>> {
    const ALPHABET: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
    let mut out: Vec<u8> = Vec::with_capacity(32);
    for c in text.bytes() {
        let mut carry = ALPHABET.iter().position(|a| *a == c)? as u32;
        for byte in out.iter_mut().rev() {
            carry += u32::from(*byte) * 58;
            *byte = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            out.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let zeros = text.bytes().take_while(|c| *c == b'1').count();
    let mut full = vec![0u8; zeros];
    full.extend(out);
    Some(full)
}

fn bech32_polymod(values: impl Iterator<Item = u8>) -> u32 {
    const GEN: [u32; 5] = [0x3b6a_57b2, 0x2650_8e6d, 0x1ea1_19fa, 0x3d42_33dd, 0x2a14_62b3];
    let mut chk = 1u32;
    for v in values {
        let top = chk >> 25;
        chk = (chk & 0x01ff_ffff) << 5 ^ u32::from(v);
        for (i, g) in GEN.iter().enumerate() {
            if (top >> i) & 1 == 1 {
                chk ^= g;
            }
        }
    }
    chk
}

/// BIP-173 (Bech32, constant 1) or BIP-350 (Bech32m, constant 0x2bc830a3), one case only.
fn bech32_ok(candidate: &str) -> bool {
    const CHARSET: &[u8] = b"qpzry9x8gf2tvdw0s3jn54khce6mua7l";
    let lower = candidate.to_ascii_lowercase();
    let Some((hrp, data)) = lower.rsplit_once('1') else { return false };
    let mut values = Vec::with_capacity(data.len());
    for c in data.bytes() {
        let Some(v) = CHARSET.iter().position(|x| *x == c) else { return false };
        values.push(v as u8);
    }
    let expanded = hrp.bytes().map(|c| c >> 5).chain([0]).chain(hrp.bytes().map(|c| c & 31)).chain(values);
    matches!(bech32_polymod(expanded), 1 | 0x2bc8_30a3)
}

/// `0x` and 40 hex digits. All one case carries no checksum and is taken as an address; mixed case must
/// pass EIP-55 (each letter upper case where the Keccak-256 of the lower-case address has a nibble ≥ 8).
pub(crate) fn is_ethereum_address(candidate: &str) -> bool {
    let hex = &candidate[2..];
    let has_upper = hex.bytes().any(|c| c.is_ascii_uppercase());
    let has_lower = hex.bytes().any(|c| c.is_ascii_lowercase());
    if !(has_upper && has_lower) {
        return looks_like_address_not_filler(hex);
    }
    eip55_ok(hex)
}

fn looks_like_address_not_filler(hex: &str) -> bool {
    // `0x000…0` and `0xffff…` are sentinels, not someone's account.
    let distinct = hex.bytes().collect::<std::collections::BTreeSet<u8>>().len();
    distinct >= 6
}

pub(crate) fn eip55_ok(hex: &str) -> bool {
    use sha3::Digest;
    let lower = hex.to_ascii_lowercase();
    let hash = sha3::Keccak256::digest(lower.as_bytes());
    hex.bytes().enumerate().all(|(i, c)| {
        let nibble = (hash[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0x0f;
        match c {
            b'a'..=b'f' => nibble < 8,
            b'A'..=b'F' => nibble >= 8,
            _ => true,
        }
    })
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

/// IBAN lengths per country (ISO 13616 registry, SWIFT).
const IBAN_LENGTHS: &[(&[u8; 2], usize)] = &[
    (b"AD", 24),
    (b"AE", 23),
    (b"AL", 28),
    (b"AT", 20),
    (b"AZ", 28),
    (b"BA", 20),
    (b"BE", 16),
    (b"BG", 22),
    (b"BH", 22),
    (b"BR", 29),
    (b"BY", 28),
    (b"CH", 21),
    (b"CR", 22),
    (b"CY", 28),
    (b"CZ", 24),
    (b"DE", 22),
    (b"DK", 18),
    (b"DO", 28),
    (b"EE", 20),
    (b"EG", 29),
    (b"ES", 24),
    (b"FI", 18),
    (b"FO", 18),
    (b"FR", 27),
    (b"GB", 22),
    (b"GE", 22),
    (b"GI", 23),
    (b"GL", 18),
    (b"GR", 27),
    (b"GT", 28),
    (b"HR", 21),
    (b"HU", 28),
    (b"IE", 22),
    (b"IL", 23),
    (b"IQ", 23),
    (b"IS", 26),
    (b"IT", 27),
    (b"JO", 30),
    (b"KW", 30),
    (b"KZ", 20),
    (b"LB", 28),
    (b"LC", 32),
    (b"LI", 21),
    (b"LT", 20),
    (b"LU", 20),
    (b"LV", 21),
    (b"MC", 27),
    (b"MD", 24),
    (b"ME", 22),
    (b"MK", 19),
    (b"MR", 27),
    (b"MT", 31),
    (b"MU", 30),
    (b"NL", 18),
    (b"NO", 15),
    (b"PK", 24),
    (b"PL", 28),
    (b"PS", 29),
    (b"PT", 25),
    (b"QA", 29),
    (b"RO", 24),
    (b"RS", 22),
    (b"SA", 24),
    (b"SC", 31),
    (b"SE", 24),
    (b"SI", 19),
    (b"SK", 24),
    (b"SM", 27),
    (b"ST", 25),
    (b"SV", 28),
    (b"TL", 23),
    (b"TN", 24),
    (b"TR", 26),
    (b"UA", 29),
    (b"VA", 22),
    (b"VG", 24),
    (b"XK", 20),
];

/// ISO 13616: the country's length and the mod-97 check.
fn is_iban(candidate: &str) -> bool {
    let compact = || candidate.bytes().filter(|b| *b != b' ');
    let country = [candidate.as_bytes()[0], candidate.as_bytes()[1]];
    match IBAN_LENGTHS.iter().find(|(c, _)| **c == country) {
        Some((_, len)) if compact().count() == *len => {}
        _ => return false,
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
        d.find(value, &mut found, Options::default());
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
        assert_eq!(redact("key AKIAIOSFODNN7EXAMPLE used"), "key [REDACTED:aws_access_key] used");
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
            "127.0.0.1:8080",
            "OID 1.3.6.1.4.1.311",
            "version v10.2.3.4",
            "user@localhost",
            "price 1,299.00 and 2,599.00",
            "the ratio is 0.123456789",
        ] {
            assert_eq!(redact(benign), benign);
        }
    }

    #[test]
    fn personal_data_by_validation() {
        assert_eq!(redact("client 203.0.113.7 connected"), "client [REDACTED:ip_address] connected");
        assert_eq!(redact("from 2001:db8::8a2e:370:7334 ok"), "from [REDACTED:ip_address] ok");
        assert_eq!(redact("at 10:14:00 and std::io::Read"), "at 10:14:00 and std::io::Read");
        let d = Detectors::new();
        let mut found = Vec::new();
        d.find("client 203.0.113.7 connected", &mut found, Options { ip: false });
        assert!(found.is_empty(), "IP addresses kept when switched off");
        assert_eq!(redact("SSN 536-22-8945 on file"), "SSN [REDACTED:us_ssn] on file");
        for not_ssn in ["SSN 000-22-8945", "SSN 666-22-8945", "SSN 936-22-8945", "SSN 536-00-8945", "SSN 536-22-0000"] {
            assert_eq!(redact(not_ssn), not_ssn);
        }
        assert_eq!(redact("NI number HJ 12 34 56 C"), "NI number [REDACTED:uk_nino]");
        assert_eq!(redact("NI number QQ 12 34 56 C"), "NI number QQ 12 34 56 C", "HMRC's specimen prefix");
        assert_eq!(redact("NI AB123456D."), "NI [REDACTED:uk_nino].");
        assert_eq!(redact("NI GB123456A"), "NI GB123456A", "GB is never allocated");
        assert_eq!(redact("NI DA123456A"), "NI DA123456A", "D is not a first letter");
        assert_eq!(redact("pay 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2 now"), "pay [REDACTED:bitcoin_address] now");
        assert_eq!(redact("pay 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3 now"), "pay 1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3 now");
        assert_eq!(redact("to bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq"), "to [REDACTED:bitcoin_address]");
        assert_eq!(
            redact("to bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdp"),
            "to bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdp"
        );
        assert_eq!(
            redact("eth 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"),
            "eth [REDACTED:ethereum_address]",
            "EIP-55 checksum"
        );
        assert_eq!(
            redact("eth 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD"),
            "eth 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD",
            "a broken checksum"
        );
        assert!(is_iban("DE89 3704 0044 0532 0130 00"));
        assert!(!is_iban("DE89 3704 0044 0532 0130 0"), "German IBANs have 22 characters");
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
            detectors.find(&text, &mut found, Options::default());
            assert!(!found.is_empty(), "{unit}");
            assert!(found.windows(2).all(|w| w[0].0.end <= w[1].0.start), "{unit}: sorted and disjoint");
        }
    }
}
