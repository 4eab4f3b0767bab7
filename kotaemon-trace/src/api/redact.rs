//! Redaction: no secret or personal data leaves the process.
//!
//! Every span passes through the [`Redactor`] on the export thread, before any exporter (OTLP, console,
//! your own) sees it: attribute values, event attributes (exception messages included), the status
//! description and link attributes.
//!
//! - **Key rules**: a key that names a secret (`password`, `passwd`, `pwd`, `secret`, `token`, `api_key`,
//!   `auth`, `authorization`, `credential`, `private_key`, `cookie`, `set-cookie`, `session_id`,
//!   `JSESSIONID`, `csrf`/`xsrf`, `jwt`, `ssn`, `social_security`, `credit_card`, `card_number`, `cvv`,
//!   `iban`, `otp`, `pin`, …) has its whole value replaced by `[REDACTED:key]`, numbers included; the key
//!   stays, so you can see that a value existed. Keys are split into words at `.`, `_`, `-` and camelCase,
//!   so `author`, `authority`, `tokenizer` and `passage` are not secrets, nor are counts and predicates
//!   about a secret: `llm.token_count.prompt`, `gen_ai.usage.input_tokens`, `password_length`,
//!   `auth.has_token`. Booleans are never masked.
//! - **Secrets named inline**: the same key rules applied to names inside a value — `password=hunter2`,
//!   `?api_key=…&`, `"token": "…"`, Python `{'secret': '…'}`, YAML `password: s3cret`, a Rust `Debug`
//!   argument such as `Login { user: "bob", password: "hunter2" }`, `Authorization: Token …`. Only the
//!   value goes (`[REDACTED:key]`); `max_tokens=512` and `the password: must be 12 characters` stay.
//! - **Value detectors**, anywhere inside a string, also glued to Chinese text: emails; phone numbers
//!   (`+CC` international, Chinese mobiles and `0xx-` landlines, North American `(415) 555-0100` and
//!   `415-555-0100`); Luhn-valid card numbers with a real issuer prefix; IBANs (mod-97); JWTs; `Bearer`
//!   and `Basic` credentials; provider API keys (`sk-proj-`, `sk-ant-`, `sk-…`, `AKIA`/`ASIA`, `AIza`,
//!   `ghp_`/`gho_`/`ghs_`/`github_pat_`, `xoxb-`/`xoxp-`, `sk_live_`/`rk_live_`, `glpat-`, `hf_`, `npm_`,
//!   `SG.`, `whsec_`, `LTAI`, `AKID`, Slack webhook URLs); PEM private keys, also truncated ones; and the
//!   user info of URLs (`postgres://[REDACTED:url_credentials]@db:5432`).
//! - **Markers**: only the match is replaced, by `[REDACTED:<rule>]` where the rule is `key`, `email`,
//!   `phone`, `credit_card`, `iban`, `jwt`, `bearer`, `api_key`, `url_credentials`, `private_key` or the
//!   name of a configured value pattern. A marker never contains any of the matched text.
//! - **Lookalikes stay**: shapes are confirmed by checksums and context, not by lists of values, so order
//!   and tracking numbers (no Luhn, no issuer), versions, timestamps, UUIDs, hashes, trace ids, IP
//!   addresses, `git@github.com:org/repo` and ordinary prose are returned unchanged (and borrowed).
//! - **Allow-list**: structural keys whose values are code, not user data (`exception.type`, `code.*`,
//!   `otel.*`, `http.route`, `gen_ai.request.model`, `llm.token_count.*`, …) are never redacted; add your
//!   own with [`RedactorBuilder::allow_key`]. `session.id` is masked like any session id: if yours is a
//!   conversation id you group by, allow it.
//! - **Pseudonyms**: [`pseudonym`] (and the macro's `redact(arg)` option) record a keyed hash
//!   (HMAC-SHA256) instead of the value, so the same input gives the same pseudonym and analytics still
//!   work. The key comes from `KOTAEMON_TRACE_REDACTION_KEY`; without it a random key is drawn once per
//!   process, so pseudonyms are stable within one run only.
//! - **Audit**: a span that had anything redacted carries one attribute, `kotaemon.redacted`, listing
//!   `key:rule` pairs — never values.
//!
//! Not redacted: span and event names and attribute keys (they are code), and resource attributes.
//! Configured key patterns apply to attribute keys; names inside values are judged by the default rules.
//! On clean input [`Redactor::redact`] allocates nothing and returns the value borrowed.

#[cfg(feature = "sdk")]
pub use crate::policy::redact::{AUDIT_ATTRIBUTE, KEY_MARKER, RedactionError, Redactor, RedactorBuilder};

/// The pseudonym of `value` under the running pipeline's key (see `Redactor::pseudonym`); `None` when
/// tracing is not initialised.
///
/// ```
/// # use kotaemon_trace::config::{Config, ExporterKind};
/// # let _guard = kotaemon_trace::init_with(Config::builder().exporter(ExporterKind::None).build()).unwrap();
/// let id = kotaemon_trace::redact::pseudonym("+86 139 5998 2352").unwrap();
/// assert!(id.starts_with("anon:"));
/// ```
pub fn pseudonym(value: &str) -> Option<String> {
    crate::hot::state::pseudonym(value)
}
