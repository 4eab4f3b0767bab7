//! The effective configuration as rows a person can read: each setting with its value (secrets masked),
//! where it came from, and whether an invalid value was replaced. `kotaemon-trace doctor` prints these.
//!
//! Nothing here decides precedence: the origin of a setting is the one the reader recorded when it took
//! the value (see `file::load_with`), and the variable lists are the reader's own (`env::ENDPOINT`, …).

use super::{Config, ConfigProblem, ExporterKind, Origin, Sampler, env, mask};

/// One setting of a [`Config`]: see [`Config::settings`].
///
/// ```
/// use kotaemon_trace::config::{Config, Origin};
///
/// let config = Config::builder().otlp_header("x-api-key", "s3cr3t").build();
/// let headers = config.settings().into_iter().find(|s| s.name == "OTEL_EXPORTER_OTLP_HEADERS").unwrap();
/// assert_eq!(headers.label, "headers");
/// assert_eq!(headers.value, "x-api-key=***");
/// assert_eq!(headers.origin, Origin::Default); // set in Rust, not by a variable or the file
/// assert!(headers.invalid.is_none());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Setting {
    /// The environment variable that sets it: the one the value came from, else the setting's usual
    /// variable (`OTEL_EXPORTER_OTLP_ENDPOINT` for the endpoint).
    pub name: &'static str,
    /// Every variable that can set it, the first set one winning (the file's key for a variable counts as
    /// that variable, under the environment).
    pub variables: &'static [&'static str],
    /// A short name for people: `endpoint`, `sampler`, `service.name`.
    pub label: &'static str,
    /// The effective value as text, secrets masked (header values, URL credentials and query strings, the
    /// pseudonym key).
    pub value: String,
    /// Where the value came from.
    pub origin: Origin,
    /// The problem, when one of [`variables`](Setting::variables) held an invalid value that was replaced
    /// (by the file's value or the default: [`ConfigProblem::fallback`] says which).
    pub invalid: Option<ConfigProblem>,
}

/// One row of the table: label, variables in precedence order, the usual variable, and the value's text.
struct Row {
    label: &'static str,
    variables: &'static [&'static str],
    name: &'static str,
    value: fn(&Config) -> String,
}

const fn row(label: &'static str, variables: &'static [&'static str], value: fn(&Config) -> String) -> Row {
    Row { label, variables, name: variables[0], value }
}

fn millis(d: std::time::Duration) -> String {
    format!("{} ms", d.as_millis())
}

/// The rows after `service.name` (whose origin depends on which variable gave the name).
const ROWS: &[Row] = &[
    row("resource attributes", &["OTEL_RESOURCE_ATTRIBUTES"], |c| {
        if c.resource_attributes.is_empty() {
            return "none".to_owned();
        }
        let pairs: Vec<String> =
            c.resource_attributes.iter().map(|(k, v)| format!("{k}={}", mask::mask_urls(v))).collect();
        pairs.join(",")
    }),
    row("sdk disabled", &["OTEL_SDK_DISABLED"], |c| c.disabled.to_string()),
    row("exporter", &["OTEL_TRACES_EXPORTER"], |c| {
        match c.exporter {
            ExporterKind::Otlp => "otlp",
            ExporterKind::Console => "console",
            ExporterKind::None => "none",
        }
        .to_owned()
    }),
    Row {
        label: "protocol",
        variables: env::PROTOCOL,
        name: env::PROTOCOL[1],
        value: |c| c.otlp.protocol.as_str().into(),
    },
    Row {
        label: "endpoint",
        variables: env::ENDPOINT,
        name: env::ENDPOINT[1],
        value: |c| mask::mask_url(&c.otlp.endpoint),
    },
    Row {
        label: "headers",
        variables: env::HEADERS,
        name: env::HEADERS[1],
        value: |c| mask::mask_headers(c.otlp.headers.iter().map(|(name, _)| name.as_str())),
    },
    Row { label: "timeout", variables: env::TIMEOUT, name: env::TIMEOUT[1], value: |c| millis(c.otlp.timeout) },
    Row {
        label: "compression",
        variables: env::COMPRESSION,
        name: env::COMPRESSION[1],
        value: |c| format!("{:?}", c.otlp.compression).to_lowercase(),
    },
    row("sampler", &["OTEL_TRACES_SAMPLER"], |c| sampler_text(&c.sampler)),
    row("sampler argument", &["OTEL_TRACES_SAMPLER_ARG"], |_| "(shown in sampler)".to_owned()),
    row("propagators", &["OTEL_PROPAGATORS"], |c| format!("{:?}", c.propagators).to_lowercase()),
    row("batch delay", &["OTEL_BSP_SCHEDULE_DELAY"], |c| millis(c.batch.schedule_delay)),
    row("export timeout", &["OTEL_BSP_EXPORT_TIMEOUT"], |c| millis(c.batch.export_timeout)),
    row("queue size", &["OTEL_BSP_MAX_QUEUE_SIZE"], |c| c.batch.max_queue_size.to_string()),
    row("batch size", &["OTEL_BSP_MAX_EXPORT_BATCH_SIZE"], |c| c.batch.max_export_batch_size.to_string()),
    row("debug header", &["KOTAEMON_TRACE_DEBUG_HEADER"], |c| {
        if c.debug.per_second > 0.0 { c.debug.header.clone() } else { "off".into() }
    }),
    row("debug traces per second", &["KOTAEMON_TRACE_DEBUG_PER_SECOND"], |c| c.debug.per_second.to_string()),
    row("tail sampling", &["KOTAEMON_TRACE_TAIL_LATENCY_MS"], |c| match &c.tail {
        Some(t) => format!("keep traces ≥ {} ms, errors", t.latency_threshold.as_millis()),
        None => "off".into(),
    }),
    row("redaction", &["KOTAEMON_TRACE_REDACT"], |c| if c.redaction.enabled { "on" } else { "OFF" }.into()),
    row("IP addresses", &["KOTAEMON_TRACE_REDACT_IP"], |c| {
        if c.redaction.redact_ip { "redacted" } else { "kept" }.into()
    }),
    row("pseudonym key", &["KOTAEMON_TRACE_REDACTION_KEY"], |c| {
        if c.redaction.pseudonym_key.is_some() { "set (hidden)" } else { "random per process" }.into()
    }),
    row("content capture", &["OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"], |c| {
        if c.content.enabled { "on" } else { "off" }.into()
    }),
    row("metrics exporter", &["OTEL_METRICS_EXPORTER"], |c| {
        let mut on = Vec::new();
        if c.metrics.otlp {
            on.push("otlp".to_owned());
        }
        if let Some(address) = &c.metrics.prometheus {
            on.push(format!("prometheus on {address}"));
        }
        if on.is_empty() { "none".to_owned() } else { on.join(", ") }
    }),
    row("metrics endpoint", &["OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"], |c| {
        c.metrics.otlp_endpoint.as_deref().map_or_else(|| "the traces' collector".to_owned(), mask::mask_url)
    }),
    row("logs exporter", &["OTEL_LOGS_EXPORTER"], |c| if c.logs_otlp { "otlp" } else { "none" }.into()),
    row("logs endpoint", &["OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"], |c| {
        c.logs_endpoint.as_deref().map_or_else(|| "the traces' collector".to_owned(), mask::mask_url)
    }),
    row("jaeger query url", &["KOTAEMON_TRACE_JAEGER_URL"], |c| {
        c.jaeger_query_url.as_deref().map_or_else(|| "none".to_owned(), mask::mask_url)
    }),
];

/// The sampler with its argument: `parentbased_traceidratio (ratio 0.25)`.
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
            mask::mask_url(&remote.endpoint),
            remote.polling_interval.as_millis(),
            remote.initial_sampling_rate
        ),
        _ => sampler.name().to_owned(),
    }
}

const SERVICE_NAME: &[&str] = &["OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"];

impl Config {
    /// The effective configuration, one [`Setting`] per line of `kotaemon-trace doctor`'s table: the value
    /// each setting has (secrets masked), where it came from ([`Origin::Env`] with the variable that won,
    /// [`Origin::File`] with the file, key and line, or [`Origin::Default`]), and the problem when an
    /// invalid value was replaced.
    ///
    /// The origins are those recorded while the configuration was read ([`Config::load`],
    /// [`Config::from_env`]): the environment over the file over the default, and within a list of
    /// variables (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, then `OTEL_EXPORTER_OTLP_ENDPOINT`) the first one
    /// set. Settings made with the builder report [`Origin::Default`]. `sampler argument` is listed only
    /// when `OTEL_TRACES_SAMPLER_ARG` was used.
    ///
    /// ```
    /// use kotaemon_trace::config::Config;
    ///
    /// for setting in Config::from_env().settings() {
    ///     println!("{:<24} {:<40} {}", setting.label, setting.value, setting.origin);
    /// }
    /// let endpoint = Config::builder().otlp_traces_endpoint("https://u:pw@collector/v1/traces?token=t").build();
    /// let shown = endpoint.settings().into_iter().find(|s| s.label == "endpoint").unwrap().value;
    /// assert_eq!(shown, "https://***@collector/v1/traces?***");
    /// ```
    pub fn settings(&self) -> Vec<Setting> {
        let mut out = Vec::with_capacity(ROWS.len() + 1);
        // The name's origin is that of the variable the name was taken from (see `service_name_and_source`).
        let (service, from) = self.service_name_and_source();
        let used: &[&'static str] = match from {
            Some(variable) if variable == SERVICE_NAME[1] => &SERVICE_NAME[1..],
            Some(_) => &SERVICE_NAME[..1],
            None => &[],
        };
        out.push(self.setting("service.name", SERVICE_NAME, SERVICE_NAME[0], Some(used), service));
        for row in ROWS {
            let value = (row.value)(self);
            let setting = self.setting(row.label, row.variables, row.name, None, value);
            if row.label == "sampler argument" && setting.origin == Origin::Default && setting.invalid.is_none() {
                continue;
            }
            out.push(setting);
        }
        out
    }

    /// One setting; `used` narrows the variables whose origin counts (the service name comes from one of its
    /// two variables only, the one that held it).
    fn setting(
        &self,
        label: &'static str,
        variables: &'static [&'static str],
        usual: &'static str,
        used: Option<&[&'static str]>,
        value: String,
    ) -> Setting {
        let candidates = used.unwrap_or(variables);
        let from = candidates.iter().find_map(|v| self.origins.get(*v).map(|origin| (*v, origin.clone())));
        // A problem of the variable the value was not taken from (a malformed OTEL_RESOURCE_ATTRIBUTES under
        // an OTEL_SERVICE_NAME) is not this setting's.
        let scope = if candidates.is_empty() { variables } else { candidates };
        let invalid = self.problems.iter().find(|p| scope.contains(&p.variable())).cloned();
        let (name, origin) = match from {
            Some((variable, origin)) => (variable, origin),
            None => (usual, Origin::Default),
        };
        Setting { name, variables, label, value, origin, invalid }
    }
}

#[cfg(test)]
mod tests {
    use super::super::file;
    use super::*;
    use std::collections::HashMap;
    use std::path::Path;

    /// The configuration these variables and this file text give, read as `Config::load` reads them.
    fn load(vars: &[(&str, &str)], file_text: &str) -> Config {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let settings = file::parse(file_text, Path::new("kotaemon-trace.toml")).unwrap();
        file::load_with(|name| map.get(name).cloned(), settings)
    }

    fn get(config: &Config, label: &str) -> Setting {
        config.settings().into_iter().find(|s| s.label == label).unwrap_or_else(|| panic!("no setting {label}"))
    }

    fn env(variable: &str) -> Origin {
        Origin::Env { variable: variable.to_owned() }
    }

    #[test]
    fn the_origin_follows_env_over_file_over_default() {
        let text = "[service]\nname = \"from-file\"\n[exporter]\nprotocol = \"grpc\"\ntimeout_ms = 2000\n[batch]\nmax_queue_size = 4096\n";
        let c = load(&[("OTEL_SERVICE_NAME", "from-env"), ("OTEL_EXPORTER_OTLP_TIMEOUT", "1500")], text);
        let service = get(&c, "service.name");
        assert_eq!((service.value.as_str(), service.origin), ("from-env", env("OTEL_SERVICE_NAME")));
        let timeout = get(&c, "timeout");
        assert_eq!((timeout.value.as_str(), timeout.origin), ("1500 ms", env("OTEL_EXPORTER_OTLP_TIMEOUT")));
        let protocol = get(&c, "protocol");
        assert_eq!(protocol.value, "grpc");
        assert_eq!(
            protocol.origin,
            Origin::File { path: "kotaemon-trace.toml".into(), key: "exporter.protocol", line: 4 }
        );
        assert_eq!(protocol.name, "OTEL_EXPORTER_OTLP_PROTOCOL");
        assert!(matches!(get(&c, "queue size").origin, Origin::File { key: "batch.max_queue_size", line: 7, .. }));
        let batch = get(&c, "batch size");
        assert_eq!(
            (batch.value.as_str(), batch.origin, batch.name),
            ("512", Origin::Default, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE")
        );
        // The file alone: its value and its line.
        let c = load(&[], text);
        assert!(matches!(get(&c, "service.name").origin, Origin::File { key: "service.name", line: 2, .. }));
        assert!(matches!(get(&c, "timeout").origin, Origin::File { key: "exporter.timeout_ms", .. }));
    }

    #[test]
    fn the_winning_variable_of_a_list_is_named() {
        let c = load(
            &[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://a:4318"),
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://b:4318/v1/traces"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ],
            "",
        );
        let endpoint = get(&c, "endpoint");
        assert_eq!(endpoint.value, "http://b:4318/v1/traces");
        assert_eq!(endpoint.origin, env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"));
        assert_eq!(endpoint.name, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
        assert_eq!(get(&c, "protocol").origin, env("OTEL_EXPORTER_OTLP_PROTOCOL"));
        // The service name from the resource attributes names that variable.
        let c = load(&[("OTEL_RESOURCE_ATTRIBUTES", "service.name=rag,team=search")], "");
        assert_eq!(get(&c, "service.name").origin, env("OTEL_RESOURCE_ATTRIBUTES"));
        assert_eq!(get(&c, "service.name").value, "rag");
        let c = load(&[("OTEL_RESOURCE_ATTRIBUTES", "team=search")], "");
        assert_eq!(get(&c, "service.name").origin, Origin::Default);
    }

    #[test]
    fn invalid_values_are_flagged_with_what_replaced_them() {
        let c = load(&[("OTEL_TRACES_SAMPLER", "sometimes"), ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s")], "");
        let sampler = get(&c, "sampler");
        assert_eq!((sampler.value.as_str(), &sampler.origin), ("parentbased_always_on", &env("OTEL_TRACES_SAMPLER")));
        assert_eq!(sampler.invalid.as_ref().map(ConfigProblem::variable), Some("OTEL_TRACES_SAMPLER"));
        assert!(get(&c, "timeout").invalid.is_some());
        assert!(get(&c, "exporter").invalid.is_none());
        // An invalid variable over a valid file value: the file's value, and the problem says so.
        let c = load(&[("OTEL_TRACES_SAMPLER", "sometimes")], "[sampler]\nname = \"always_off\"\n");
        let sampler = get(&c, "sampler");
        assert_eq!(sampler.value, "always_off");
        assert!(matches!(sampler.origin, Origin::File { key: "sampler.name", .. }));
        assert_eq!(sampler.invalid.unwrap().fallback(), "sampler.name from the configuration file");
    }

    #[test]
    fn secrets_are_masked_as_everywhere_else_in_the_runtime() {
        let c = load(
            &[
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "https://user:pa55@collector:4318/v1/traces?token=abc"),
                ("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20s3cr3t-t0ken,x-api-key=k3y"),
                ("KOTAEMON_TRACE_REDACTION_KEY", "a-long-enough-pseudonym-key"),
            ],
            "",
        );
        let everything = format!("{:?}", c.settings());
        for secret in ["pa55", "token=abc", "s3cr3t", "k3y", "a-long-enough"] {
            assert!(!everything.contains(secret), "{secret} in {everything}");
        }
        assert_eq!(get(&c, "endpoint").value, "https://***@collector:4318/v1/traces?***");
        assert_eq!(get(&c, "headers").value, "authorization=***,x-api-key=***");
        assert_eq!(get(&c, "pseudonym key").value, "set (hidden)");
        let m = load(
            &[
                ("OTEL_METRICS_EXPORTER", "otlp,prometheus"),
                ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://u:pw@prom:9090/api/v1/otlp/v1/metrics"),
            ],
            "",
        );
        assert_eq!(get(&m, "metrics exporter").value, "otlp, prometheus on 127.0.0.1:9464");
        assert_eq!(get(&m, "metrics endpoint").value, "http://***@prom:9090/api/v1/otlp/v1/metrics");
        assert_eq!(get(&m, "logs exporter").value, "none");
        // The same text as the configuration's `Debug` and its problems.
        let debug = format!("{:?}", c.otlp());
        assert!(debug.contains(&get(&c, "endpoint").value) && debug.contains(&get(&c, "headers").value), "{debug}");
        let bad = load(&[("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20s3cr3t,x-api-key=k3y,broken")], "");
        assert!(bad.problems()[0].value().starts_with("authorization=***,x-api-key=***"), "{}", bad.problems()[0]);
    }

    #[test]
    fn the_sampler_argument_is_listed_only_when_used() {
        assert!(load(&[], "").settings().iter().all(|s| s.label != "sampler argument"));
        let c = load(&[("OTEL_TRACES_SAMPLER", "traceidratio"), ("OTEL_TRACES_SAMPLER_ARG", "0.5")], "");
        assert_eq!(get(&c, "sampler").value, "traceidratio (ratio 0.5)");
        assert_eq!(get(&c, "sampler argument").origin, env("OTEL_TRACES_SAMPLER_ARG"));
    }
}
