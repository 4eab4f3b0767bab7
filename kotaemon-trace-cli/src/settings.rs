//! The effective configuration, each value with where it came from, for `doctor`. Secrets never leave
//! this module unmasked: header values, passwords and query strings in URLs, the pseudonym key.

use kotaemon_trace::config::{Config, ExporterKind, Sampler};
use kotaemon_trace::redact::Redactor;
use std::fmt;
use std::path::PathBuf;

/// Where a value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag.
    Flag(&'static str),
    /// An environment variable.
    Env(String),
    /// The config file (`kotaemon-trace.toml`).
    File(PathBuf),
    /// Nothing set it.
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(flag) => write!(f, "flag {flag}"),
            Source::Env(name) => write!(f, "env {name}"),
            Source::File(path) => write!(f, "file {}", path.display()),
            Source::Default => f.write_str("default"),
        }
    }
}

/// One effective setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    pub name: &'static str,
    /// Printable: secrets already masked.
    pub value: String,
    pub source: Source,
    /// Set when the source held an invalid value and the default was used instead.
    pub invalid: Option<String>,
}

/// The settings `kotaemon_trace::init()` would use, from `config` (already read from `lookup`, the
/// environment), each with its source. The first variable of each list that is set wins, as in the runtime.
pub fn effective(config: &Config, lookup: &dyn Fn(&str) -> Option<String>) -> Vec<Setting> {
    let set = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
    // The environment first, then the configuration file (`Config::origin` knows which key and line).
    let from_file = |names: &[&'static str]| {
        names.iter().find_map(|n| match config.origin(n) {
            kotaemon_trace::config::Origin::File { path, .. } => Some(Source::File(path)),
            _ => None,
        })
    };
    let source_of = |names: &[&'static str]| -> Source {
        names
            .iter()
            .find(|n| set(n).is_some())
            .map(|n| Source::Env((*n).to_owned()))
            .or_else(|| from_file(names))
            .unwrap_or(Source::Default)
    };
    let otlp = config.otlp();
    let batch = config.batch();
    let redaction = config.redaction();
    let mut out = Vec::new();
    let mut push = |name: &'static str, value: String, source: Source| {
        let invalid = match &source {
            Source::Env(var) => config.problems().iter().find(|p| p.variable() == var).map(ToString::to_string),
            _ => None,
        };
        out.push(Setting { name, value, source, invalid });
    };

    let service_source = if set("OTEL_SERVICE_NAME").is_some() {
        Source::Env("OTEL_SERVICE_NAME".into())
    } else if set("OTEL_RESOURCE_ATTRIBUTES").is_some_and(|r| r.contains("service.name")) {
        Source::Env("OTEL_RESOURCE_ATTRIBUTES".into())
    } else {
        from_file(&["OTEL_SERVICE_NAME"]).unwrap_or(Source::Default)
    };
    push("service.name", config.service_name(), service_source);
    push(
        "resource attributes",
        set("OTEL_RESOURCE_ATTRIBUTES").map(|raw| mask_key_values(&raw)).unwrap_or_else(|| "none".into()),
        source_of(&["OTEL_RESOURCE_ATTRIBUTES"]),
    );
    push("sdk disabled", config.is_disabled().to_string(), source_of(&["OTEL_SDK_DISABLED"]));
    let exporter = match config.exporter() {
        ExporterKind::Otlp => "otlp",
        ExporterKind::Console => "console",
        ExporterKind::None => "none",
    };
    push("exporter", exporter.into(), source_of(&["OTEL_TRACES_EXPORTER"]));
    push(
        "protocol",
        otlp.protocol.as_str().into(),
        source_of(&["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"]),
    );
    push(
        "endpoint",
        mask_url(&otlp.endpoint),
        source_of(&["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"]),
    );
    push(
        "headers",
        mask_headers(&otlp.headers),
        source_of(&["OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"]),
    );
    push(
        "timeout",
        format!("{} ms", otlp.timeout.as_millis()),
        source_of(&["OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"]),
    );
    push(
        "compression",
        format!("{:?}", otlp.compression).to_lowercase(),
        source_of(&["OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION"]),
    );
    push("sampler", sampler_text(config.sampler()), source_of(&["OTEL_TRACES_SAMPLER"]));
    if set("OTEL_TRACES_SAMPLER_ARG").is_some() {
        push("sampler argument", "(shown in sampler)".into(), source_of(&["OTEL_TRACES_SAMPLER_ARG"]));
    }
    push("propagators", format!("{:?}", config.propagators()).to_lowercase(), source_of(&["OTEL_PROPAGATORS"]));
    push("batch delay", format!("{} ms", batch.schedule_delay.as_millis()), source_of(&["OTEL_BSP_SCHEDULE_DELAY"]));
    push("export timeout", format!("{} ms", batch.export_timeout.as_millis()), source_of(&["OTEL_BSP_EXPORT_TIMEOUT"]));
    push("queue size", batch.max_queue_size.to_string(), source_of(&["OTEL_BSP_MAX_QUEUE_SIZE"]));
    push("batch size", batch.max_export_batch_size.to_string(), source_of(&["OTEL_BSP_MAX_EXPORT_BATCH_SIZE"]));
    let debug = config.debug();
    push(
        "debug header",
        if debug.per_second > 0.0 { debug.header.clone() } else { "off".into() },
        source_of(&["KOTAEMON_TRACE_DEBUG_HEADER"]),
    );
    push("debug traces per second", debug.per_second.to_string(), source_of(&["KOTAEMON_TRACE_DEBUG_PER_SECOND"]));
    push(
        "tail sampling",
        config
            .tail()
            .map(|t| format!("keep traces ≥ {} ms, errors", t.latency_threshold.as_millis()))
            .unwrap_or_else(|| "off".into()),
        source_of(&["KOTAEMON_TRACE_TAIL_LATENCY_MS"]),
    );
    push("redaction", if redaction.enabled { "on" } else { "OFF" }.into(), source_of(&["KOTAEMON_TRACE_REDACT"]));
    push(
        "pseudonym key",
        if redaction.pseudonym_key.is_some() { "set (hidden)" } else { "random per process" }.into(),
        source_of(&["KOTAEMON_TRACE_REDACTION_KEY"]),
    );
    push(
        "content capture",
        if config.content().enabled { "on" } else { "off" }.into(),
        source_of(&["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"]),
    );
    out
}

fn sampler_text(sampler: &Sampler) -> String {
    let inner = match sampler {
        Sampler::ParentBased(inner) => inner,
        other => other,
    };
    match inner {
        Sampler::TraceIdRatio(r) => format!("{} (ratio {r})", sampler.name()),
        Sampler::RateLimited(r) => format!("{} ({r} traces/s)", sampler.name()),
        Sampler::JaegerRemote(remote) => format!(
            "{} (endpoint {}, every {} ms, initial {})",
            sampler.name(),
            mask_url(&remote.endpoint),
            remote.polling_interval.as_millis(),
            remote.initial_sampling_rate
        ),
        _ => sampler.name().to_owned(),
    }
}

/// Header names with their values hidden: `authorization=***, x-api-key=***`.
pub fn mask_headers(headers: &[(String, String)]) -> String {
    if headers.is_empty() {
        return "none".into();
    }
    headers.iter().map(|(name, _)| format!("{name}=***")).collect::<Vec<_>>().join(", ")
}

/// A URL with any password and query string hidden: `https://user:***@host/path?***`.
pub fn mask_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (format!("{s}://"), r),
        None => (String::new(), url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => format!("***@{host}"),
        },
        None => authority.to_owned(),
    };
    let tail = match tail.split_once('?') {
        Some((path, _)) => format!("{path}?***"),
        None => tail.to_owned(),
    };
    format!("{scheme}{authority}{tail}")
}

/// `k=v,k2=v2` with each value passed through the runtime's redactor (a secret key or a secret-shaped
/// value is masked, the rest shown).
pub fn mask_key_values(raw: &str) -> String {
    let redactor = Redactor::default();
    raw.split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| match entry.split_once('=') {
            Some((k, v)) => format!("{}={}", k.trim(), redactor.redact(k.trim(), v.trim())),
            None => "***".to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        move |name| map.get(name).cloned()
    }

    /// The `Config` these variables give, built through the runtime's builder (its env reader is private).
    fn config_from(vars: &[(&str, &str)]) -> Config {
        let mut b = Config::builder();
        for (k, v) in vars {
            b = match *k {
                "OTEL_SERVICE_NAME" => b.service_name(*v),
                "OTEL_EXPORTER_OTLP_ENDPOINT" => b.otlp_endpoint(*v),
                "OTEL_EXPORTER_OTLP_PROTOCOL" if *v == "grpc" => b.protocol(kotaemon_trace::config::Protocol::Grpc),
                "OTEL_EXPORTER_OTLP_HEADERS" => v.split(',').fold(b, |b, kv| {
                    let (k, v) = kv.split_once('=').unwrap();
                    b.otlp_header(k, v)
                }),
                _ => b,
            };
        }
        b.build()
    }

    fn get<'a>(settings: &'a [Setting], name: &str) -> &'a Setting {
        settings.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no setting {name}"))
    }

    #[test]
    fn each_value_names_its_source() {
        let vars = [
            ("OTEL_SERVICE_NAME", "rag-api"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
        ];
        let settings = effective(&config_from(&vars), &lookup(&vars));
        assert_eq!(get(&settings, "service.name").value, "rag-api");
        assert_eq!(get(&settings, "service.name").source, Source::Env("OTEL_SERVICE_NAME".into()));
        assert_eq!(get(&settings, "protocol").value, "grpc");
        assert_eq!(get(&settings, "protocol").source, Source::Env("OTEL_EXPORTER_OTLP_PROTOCOL".into()));
        assert_eq!(get(&settings, "endpoint").value, "http://127.0.0.1:4317");
        assert_eq!(get(&settings, "timeout").source, Source::Default);
        assert_eq!(get(&settings, "sampler").value, "parentbased_always_on");
        assert_eq!(get(&settings, "sampler").source, Source::Default);
    }

    #[test]
    fn the_signal_specific_variable_is_named_when_it_wins() {
        let vars = [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:4318/v1/traces"),
        ];
        let settings = effective(&Config::default(), &lookup(&vars));
        assert_eq!(get(&settings, "endpoint").source, Source::Env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT".into()));
    }

    #[test]
    fn header_values_are_never_shown() {
        let vars = [("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer s3cr3t-t0ken,x-api-key=k3y")];
        let settings = effective(&config_from(&vars), &lookup(&vars));
        let headers = get(&settings, "headers");
        assert_eq!(headers.value, "authorization=***, x-api-key=***");
        let everything = format!("{settings:?}");
        assert!(!everything.contains("s3cr3t") && !everything.contains("k3y"), "{everything}");
    }

    #[test]
    fn masks_urls_and_secret_resource_attributes() {
        assert_eq!(
            mask_url("https://user:pa55@collector:4318/v1/traces?token=abc"),
            "https://user:***@collector:4318/v1/traces?***"
        );
        assert_eq!(mask_url("http://tok3n@collector:4318"), "http://***@collector:4318");
        assert_eq!(mask_url("http://127.0.0.1:4317"), "http://127.0.0.1:4317");
        let masked =
            mask_key_values("team=search,api_key=sk-proj-abcdefghijklmnopqrstuvwx,deployment.environment=prod");
        assert!(masked.starts_with("team=search,api_key=[REDACTED"), "{masked}");
        assert!(masked.ends_with("deployment.environment=prod"), "{masked}");
        assert!(!masked.contains("sk-proj-abcdefghijklmnopqrstuvwx"), "{masked}");
        assert_eq!(mask_headers(&[]), "none");
    }

    #[test]
    fn sources_render_for_people() {
        assert_eq!(Source::Env("OTEL_SERVICE_NAME".into()).to_string(), "env OTEL_SERVICE_NAME");
        assert_eq!(Source::File("kotaemon-trace.toml".into()).to_string(), "file kotaemon-trace.toml");
        assert_eq!(Source::Flag("--jaeger-url").to_string(), "flag --jaeger-url");
        assert_eq!(Source::Default.to_string(), "default");
    }
}
