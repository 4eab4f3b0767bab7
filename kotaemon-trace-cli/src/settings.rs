//! The effective configuration for `doctor`: the runtime's own description of it
//! ([`Config::settings`]: values with secrets masked, origins recorded while the configuration was read),
//! plus what only the CLI knows: a `--jaeger-url` flag over the configuration, and the redaction of
//! secret-shaped resource attribute values.

use kotaemon_trace::config::{Config, ConfigProblem, Origin, Setting, mask_url};
use kotaemon_trace::redact::Redactor;
use std::fmt;

/// Where a value came from: a command-line flag, or the configuration `kotaemon_trace::init()` reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag.
    Flag(&'static str),
    /// The environment, the config file or the default, as the runtime recorded it.
    Config(Origin),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(flag) => write!(f, "flag {flag}"),
            Source::Config(origin) => origin.fmt(f),
        }
    }
}

/// One line of `doctor`'s table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub label: &'static str,
    /// Printable: secrets already masked.
    pub value: String,
    pub source: Source,
    /// Set when an invalid value was replaced.
    pub invalid: Option<ConfigProblem>,
}

impl From<Setting> for Row {
    fn from(s: Setting) -> Row {
        Row { label: s.label, value: s.value, source: Source::Config(s.origin), invalid: s.invalid }
    }
}

/// The label of the query API's row, which the CLI resolves itself (a flag may override the configuration).
pub const JAEGER_LABEL: &str = "jaeger query url";

/// The settings `kotaemon_trace::init()` would use, then the Jaeger query API the CLI talks to
/// (`jaeger_url`, resolved from `jaeger_source`).
pub fn effective(config: &Config, jaeger_url: &str, jaeger_source: &Source) -> Vec<Row> {
    let mut rows: Vec<Row> = Vec::new();
    let mut jaeger_invalid = None;
    for setting in config.settings() {
        match setting.label {
            JAEGER_LABEL => jaeger_invalid = setting.invalid,
            "resource attributes" => rows.push(Row { value: redact_attributes(&setting.value), ..setting.into() }),
            _ => rows.push(setting.into()),
        }
    }
    // A flag makes the configuration's value irrelevant, invalid or not.
    let invalid = if matches!(jaeger_source, Source::Flag(_)) { None } else { jaeger_invalid };
    rows.push(Row { label: JAEGER_LABEL, value: mask_url(jaeger_url), source: jaeger_source.clone(), invalid });
    rows
}

/// `k=v,k2=v2` with each value passed through the runtime's span redactor: resource attributes are sent
/// with every span, and a secret-shaped value there (an API key pasted by mistake) is shown masked.
fn redact_attributes(shown: &str) -> String {
    if shown == "none" {
        return shown.to_owned();
    }
    let redactor = Redactor::default();
    shown
        .split(',')
        .map(|entry| match entry.split_once('=') {
            Some((k, v)) => format!("{k}={}", redactor.redact(k, v)),
            // A value holding a comma: its second part is hidden rather than guessed at.
            None => "***".to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(rows: &'a [Row], label: &str) -> &'a Row {
        rows.iter().find(|s| s.label == label).unwrap_or_else(|| panic!("no setting {label}"))
    }

    #[test]
    fn rows_are_the_runtime_settings_and_the_query_api() {
        let config = Config::builder().service_name("rag-api").jaeger_query_url("http://from-config:16686").build();
        let rows = effective(&config, "http://flag:16686", &Source::Flag("--jaeger-url"));
        let names: Vec<&str> = rows.iter().map(|r| r.label).collect();
        let runtime: Vec<&str> = config.settings().iter().map(|s| s.label).collect();
        assert_eq!(names, runtime, "every runtime setting once, in its order, the query API last");
        assert_eq!(get(&rows, "service.name").value, "rag-api");
        assert_eq!(get(&rows, "service.name").source, Source::Config(Origin::Default));
        let jaeger = get(&rows, JAEGER_LABEL);
        assert_eq!((jaeger.value.as_str(), &jaeger.source), ("http://flag:16686", &Source::Flag("--jaeger-url")));
    }

    #[test]
    fn header_values_are_never_shown() {
        let config = Config::builder()
            .otlp_header("authorization", "Bearer s3cr3t-t0ken")
            .otlp_header("x-api-key", "k3y")
            .build();
        let rows = effective(&config, "http://127.0.0.1:16686", &Source::Config(Origin::Default));
        assert_eq!(get(&rows, "headers").value, "authorization=***,x-api-key=***");
        let everything = format!("{rows:?}");
        assert!(!everything.contains("s3cr3t") && !everything.contains("k3y"), "{everything}");
    }

    #[test]
    fn secret_resource_attributes_are_redacted() {
        let config = Config::builder()
            .resource_attribute("team", "search")
            .resource_attribute("api_key", "sk-proj-abcdefghijklmnopqrstuvwx")
            .resource_attribute("deployment.environment", "prod")
            .build();
        let rows = effective(&config, "http://127.0.0.1:16686", &Source::Config(Origin::Default));
        let masked = &get(&rows, "resource attributes").value;
        assert!(masked.starts_with("team=search,api_key=[REDACTED"), "{masked}");
        assert!(masked.ends_with("deployment.environment=prod"), "{masked}");
        assert!(!masked.contains("sk-proj-abcdefghijklmnopqrstuvwx"), "{masked}");
        assert_eq!(redact_attributes("none"), "none");
    }

    #[test]
    fn sources_render_for_people() {
        let env = Source::Config(Origin::Env { variable: "OTEL_SERVICE_NAME".into() });
        assert_eq!(env.to_string(), "env OTEL_SERVICE_NAME");
        assert_eq!(Source::Flag("--jaeger-url").to_string(), "flag --jaeger-url");
        assert_eq!(Source::Config(Origin::Default).to_string(), "default");
    }
}
