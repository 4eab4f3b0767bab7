//! Keeping configuration secrets out of text: `OTEL_EXPORTER_OTLP_HEADERS` values, the redaction key and
//! passwords written into URLs never reach a `Debug` output, a config problem, an error or a log line.
//!
//! Two tools: `config::mask::mask_urls` hides the user-info and the query string of every URL in a text
//! (`https://user:pw@host/?k=v` → `https://***@host/?***`), and [`Secrets::scrub`] replaces every known secret value in a text that came from
//! elsewhere (an exporter's error message may quote a header or a URL).

use crate::config::mask::url_password;
use crate::config::{Config, OtlpConfig};

// The masking rules themselves live with the configuration (`config::mask`), so the runtime's messages,
// `doctor` and the configuration's own `Display`s hide the same things the same way.
use crate::config::mask::mask_urls;

/// Secret values shorter than this are not searched for: they cannot be told apart from ordinary text,
/// and a two-letter "secret" protects nothing.
const MIN_SECRET_LEN: usize = 4;

/// The secret values of one configuration.
#[derive(Clone, Default)]
pub(crate) struct Secrets(Vec<String>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} hidden)", self.0.len())
    }
}

impl Secrets {
    pub(crate) fn of(config: &Config) -> Secrets {
        let mut secrets = Secrets::of_otlp(&config.otlp);
        secrets.0.extend(config.redaction.pseudonym_key.clone());
        secrets.tidy()
    }

    pub(crate) fn of_otlp(otlp: &OtlpConfig) -> Secrets {
        let mut values: Vec<String> = otlp.headers.iter().map(|(_, value)| value.clone()).collect();
        values.extend(url_password(&otlp.endpoint).map(str::to_owned));
        Secrets(values).tidy()
    }

    fn tidy(mut self) -> Secrets {
        let values = &mut self.0;
        values.retain(|v| v.len() >= MIN_SECRET_LEN);
        // Longest first, so a secret that contains another is replaced whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        self
    }

    /// `text` with every secret value replaced by `***` and URL credentials masked.
    pub(crate) fn scrub(&self, text: &str) -> String {
        let mut out = mask_urls(text).into_owned();
        for secret in &self.0 {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "***");
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrub_replaces_every_secret_value() {
        let config = Config::builder()
            .otlp_header("authorization", "Bearer abcdef123")
            .otlp_header("x-short", "ab")
            .otlp_endpoint("https://user:hunter22@collector:4318")
            .build();
        let secrets = Secrets::of(&config);
        let text = secrets
            .scrub("rejected Bearer abcdef123 for https://user:hunter22@collector:4318/v1/traces; pw hunter22; ab");
        assert_eq!(text, "rejected *** for https://***@collector:4318/v1/traces; pw ***; ab");
        assert_eq!(format!("{secrets:?}"), "Secrets(2 hidden)");
    }

    /// The OTLP HTTP exporter's own `Debug` prints its headers; the provider prints its processors, and
    /// the batch processor its exporter: the boxed exporter must print its type only.
    #[test]
    fn exporters_debug_never_prints_headers() {
        for protocol in [crate::config::Protocol::HttpProtobuf, crate::config::Protocol::Grpc] {
            let config = Config::builder().protocol(protocol).otlp_header("x-api-key", "hdr-s3cr3t-value").build();
            let driver = crate::export::processor::Driver::with_io().unwrap();
            let transport = {
                let _entered = driver.runtime().enter();
                crate::export::transport::Transport::new(&config.otlp).unwrap()
            };
            assert!(!format!("{transport:?}").contains("hdr-s3cr3t-value"), "{transport:?}");
            let exporter = crate::export::otlp::build(&transport, driver.runtime()).unwrap();
            if protocol == crate::config::Protocol::HttpProtobuf {
                assert!(
                    format!("{exporter:?}").contains("hdr-s3cr3t-value"),
                    "the SDK's own Debug leaks: why this matters"
                );
            }
            let boxed = crate::base::ports::boxed(exporter);
            let text = format!("{boxed:?}");
            assert!(!text.contains("hdr-s3cr3t-value"), "{text}");
            assert!(text.starts_with("Exporter("), "{text}");
        }
    }
}
