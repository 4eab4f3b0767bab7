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
//!   `auth.has_token`, nor names of where a secret is (`token_url`, `password_file`, `secret_name`).
//!   Booleans are never masked.
//! - **Secrets named inline**: the same key rules applied to names inside a value — `password=hunter2`,
//!   `?api_key=…&`, `"token": "…"`, Python `{'secret': '…'}`, YAML `password: s3cret`, TOML, `.env`,
//!   `--password=…` flags, connection strings (`Password=…;`, `AccountKey=…`), a Rust `Debug` argument such
//!   as `Login { user: "bob", password: "hunter2" }`, `Authorization: Token …`. Only the value goes
//!   (`[REDACTED:key]`), exactly the value: quotes and brackets around it stay as they were.
//!   `max_tokens=512` and `the password: must be 12 characters` stay, and so do placeholders, which say
//!   where a secret lives rather than what it is: `${NPM_TOKEN}`, `$VAR`, `%VAR%`, `{{ token }}`, `%s`,
//!   `%(password)s`, `<your-token>`, `insert_key_here`, all-`x` values, and code such as
//!   `os.getenv("DB_PASSWORD")` or `process.env.TOKEN`.
//! - **Context**: the values of a Kubernetes `Secret` manifest (`data:`/`stringData:`), NuGet's
//!   `<add key="ClearTextPassword" value="…"/>`, `curl -u user:password` (`[REDACTED:credentials]`).
//! - **Provider keywords, entropy last**: a name that names a provider whose credentials have no shape of
//!   their own (`MESSAGEBIRD_ACCESS_KEY`, `sumo_access_id`, `jfrog`, `heroku`, `datadog`, … about sixty)
//!   or ends in `key` takes a value only when the value looks random (one run of letters and digits, 12+
//!   characters, about 3 bits of entropy a character or more); ids, hashes, UUIDs and trace ids in
//!   ordinary telemetry are never judged by entropy.
//! - **Provider tokens**, anywhere inside a string: a catalogue of about 80 formats, each with its own
//!   rule name — `openai_api_key`, `anthropic_api_key`, `aws_access_key`, `gcp_api_key`, `github_token`
//!   (the CRC32 checksum of `ghp_…` tokens confirms them), `github_pat`, `gitlab_token`, `slack_token`,
//!   `slack_webhook`, `discord_bot_token` (its first part must decode to a numeric id), `discord_webhook`,
//!   `telegram_bot_token`, `stripe_key`, `npm_token`, `pypi_token`, `huggingface_token`, `jfrog_token`,
//!   `onepassword_token`, `flyio_token`, `planetscale_token`, `sourcegraph_token`, `sentry_token`,
//!   `easypost_key`, `shippo_token`, `sidekiq_secret`, `azure_storage_key`, `vault_token`, … A token whose
//!   body is a placeholder (`ghp_xxxx…`, `sk_live_YOUR_KEY_HERE`) is kept. One pass of an Aho-Corasick
//!   automaton over the formats' literal prefixes decides which rules run at all.
//! - **Personal data by validation, not shape**, also glued to Chinese text: emails; phone numbers
//!   (`+CC` international, Chinese mobiles and `0xx-` landlines, North American `(415) 555-0100` and
//!   `415-555-0100`); card numbers (Luhn and a real issuer prefix); IBANs (the country's length and
//!   mod-97); US SSNs (`us_ssn`: area, group and serial ranges the SSA issues); UK National Insurance
//!   numbers (`uk_nino`: HMRC's prefix rules); IPv4 and IPv6 addresses (`ip_address`; loopback and
//!   unspecified addresses stay; keep them all with `KOTAEMON_TRACE_REDACT_IP=false` or
//!   [`RedactorBuilder::redact_ip`]); Bitcoin addresses (`bitcoin_address`: Base58Check or Bech32
//!   checksum) and Ethereum addresses (`ethereum_address`: mixed case must pass the EIP-55 checksum). Also
//!   JWTs; `Bearer` and `Basic` credentials; PEM private keys, also truncated ones; and the user info of
//!   URLs (`postgres://[REDACTED:url_credentials]@db:5432`).
//! - **Markers**: only the match is replaced, by `[REDACTED:<rule>]` where the rule is `key`, a
//!   catalogue format's name, a personal-data kind (`email`, `phone`, `credit_card`, `iban`, `us_ssn`,
//!   `uk_nino`, `ip_address`, `bitcoin_address`, `ethereum_address`), `jwt`, `bearer`, `credentials`,
//!   `url_credentials`, `private_key` or the name of a configured value pattern. A marker never contains
//!   any of the matched text.
//! - **Lookalikes stay**: shapes are confirmed by checksums and context, not by lists of values, so order
//!   and tracking numbers (no Luhn, no issuer), versions, timestamps, UUIDs, hashes, trace ids, OIDs,
//!   `git@github.com:org/repo` and ordinary prose are returned unchanged (and borrowed).
//! - **Allow-list**: structural keys whose values are code, not user data (`exception.type`, `code.*`,
//!   `otel.*`, `http.route`, `gen_ai.request.model`, `llm.token_count.*`, …) are never redacted; add your
//!   own with [`RedactorBuilder::allow_key`]. `session.id` is masked like any session id: if yours is a
//!   conversation id you group by, allow it.
//! - **Pseudonyms**: [`pseudonym`] (and the macro's `redact(arg)` option) record a keyed hash
//!   (HMAC-SHA256) instead of the value, so the same input gives the same pseudonym and analytics still
//!   work. The key comes from `KOTAEMON_TRACE_REDACTION_KEY`; without it a random key is drawn once per
//!   process, so pseudonyms are stable within one run only.
//! - **Audit**: a span that had anything redacted carries one attribute, `kotaemon.redacted`, listing
//!   `key:rule` pairs — never values. With a metrics exporter on, `kotaemon_trace_redactions_total{kind}`
//!   counts redactions per rule (`kotaemon_trace.redactions` over OTLP); the kinds are the rule names
//!   above, a bounded set.
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
