//! `OTEL_*` environment variables → [`Config`], following the OpenTelemetry spec: an empty value is
//! unset, enum values are case-insensitive, an invalid value is a [`ConfigProblem`] and its default is used.

use super::mask::mask_header_values;
use super::{
    BatchConfig, Compression, Config, ConfigProblem, DebugConfig, ExporterKind, JaegerRemote, Limits, MetricsConfig,
    Propagator, Protocol, RedactionConfig, Sampler, TailConfig, traces_url,
};
use std::time::Duration;

// The variables of the settings that more than one variable can set, in precedence order: the first one
// set wins. The reader below and [`Config::settings`](super::Config::settings) share these lists.
pub(super) const PROTOCOL: &[&str] = &["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"];
pub(super) const ENDPOINT: &[&str] = &["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"];
pub(super) const HEADERS: &[&str] = &["OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"];
pub(super) const TIMEOUT: &[&str] = &["OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"];
pub(super) const COMPRESSION: &[&str] = &["OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", "OTEL_EXPORTER_OTLP_COMPRESSION"];

/// Reads one variable; tests pass a map instead of the process environment.
struct Env<F> {
    get: F,
    problems: Vec<ConfigProblem>,
}

impl<F: Fn(&str) -> Option<String>> Env<F> {
    fn var(&self, name: &str) -> Option<String> {
        (self.get)(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
    }

    /// The first of `names` that is set, with its name.
    fn first(&self, names: &[&'static str]) -> Option<(&'static str, String)> {
        names.iter().find_map(|name| self.var(name).map(|v| (*name, v)))
    }

    fn problem(&mut self, variable: &str, value: &str, accepted: &str, fallback: impl Into<String>) {
        // A generic variable read for several signals (the TLS files) is reported once.
        let problem = ConfigProblem::new(variable, value, accepted, fallback);
        if !self.problems.contains(&problem) {
            self.problems.push(problem);
        }
    }

    fn bool(&mut self, name: &'static str, default: bool) -> bool {
        match self.var(name) {
            None => default,
            Some(v) if v.eq_ignore_ascii_case("true") => true,
            Some(v) if v.eq_ignore_ascii_case("false") => false,
            Some(v) => {
                self.problem(name, &v, "true or false", default.to_string());
                default
            }
        }
    }

    fn millis(&mut self, names: &[&'static str], default: Duration) -> Duration {
        match self.first(names) {
            None => default,
            Some((name, v)) => match v.parse::<u64>() {
                Ok(ms) => Duration::from_millis(ms),
                Err(_) => {
                    let fallback = format!("{} ms", default.as_millis());
                    self.problem(name, &v, "a whole number of milliseconds", fallback);
                    default
                }
            },
        }
    }

    fn count<T: std::str::FromStr + ToString + PartialOrd + From<u8> + Copy>(
        &mut self,
        names: &[&'static str],
        default: T,
    ) -> T {
        match self.first(names) {
            None => default,
            Some((name, v)) => match v.parse::<T>() {
                Ok(n) if n > T::from(0) => n,
                _ => {
                    self.problem(name, &v, "a whole number greater than 0", default.to_string());
                    default
                }
            },
        }
    }
}

/// The longest value read from one variable, in bytes. A longer value is a [`ConfigProblem`] and its
/// default is used, so no parser here ever sees more than this.
pub(crate) const MAX_VALUE_LEN: usize = 64 * 1024;

/// Builds a [`Config`] from any variable lookup.
pub(crate) fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Config {
    let oversized: std::cell::RefCell<Vec<(String, usize)>> = std::cell::RefCell::new(Vec::new());
    let get = |name: &str| {
        let value = get(name)?;
        if value.len() > MAX_VALUE_LEN {
            let mut seen = oversized.borrow_mut();
            if !seen.iter().any(|(n, _)| n == name) {
                seen.push((name.to_owned(), value.len()));
            }
            return None;
        }
        Some(value)
    };
    let mut config = from_bounded_lookup(get);
    for (name, len) in oversized.into_inner() {
        // The value itself is not echoed: it may be a secret, and it is long.
        let accepted = format!("at most {MAX_VALUE_LEN} bytes");
        config.problems.push(ConfigProblem::new(&name, &format!("({len} bytes, not shown)"), accepted, "its default"));
    }
    config
}

#[cfg(feature = "internal-hooks")]
impl Config {
    /// See [`MAX_VALUE_LEN`].
    pub(crate) const MAX_ENV_VALUE_LEN: usize = MAX_VALUE_LEN;

    /// [`Config::from_env`] over any lookup, for the fuzz targets (`__hooks::fuzz`).
    pub(crate) fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Config {
        from_lookup(get)
    }
}

fn from_bounded_lookup(get: impl Fn(&str) -> Option<String>) -> Config {
    let mut env = Env { get, problems: Vec::new() };
    let defaults = Config::default();
    let mut config = Config {
        disabled: env.bool("OTEL_SDK_DISABLED", false),
        service_name: env.var("OTEL_SERVICE_NAME"),
        resource_attributes: resource_attributes(&mut env),
        exporter: exporter(&mut env),
        sampler: sampler(&mut env),
        batch: batch(&mut env),
        limits: limits(&mut env),
        propagators: propagators(&mut env).unwrap_or(defaults.propagators),
        debug: debug(&mut env),
        tail: tail(&mut env),
        redaction: redaction(&mut env),
        content: super::ContentCapture {
            enabled: env.bool("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", false),
            max_chars: env.count(&["KOTAEMON_TRACE_CONTENT_MAX_CHARS"], 4096),
        },
        metrics: metrics(&mut env),
        logs_otlp: logs_exporter(&mut env),
        logs_endpoint: url(&mut env, "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT"),
        jaeger_query_url: url(&mut env, "KOTAEMON_TRACE_JAEGER_URL"),
        ..Config::default()
    };
    otlp(&mut env, &mut config);
    // The metrics push and the logs have TLS files of their own only when a signal-specific variable
    // makes them differ from the traces' (the spec's `…_METRICS_…`/`…_LOGS_…`, and `…_TRACES_…`, which
    // the other signals must not inherit); else they share the traces' transport.
    let traces_endpoint = config.otlp.endpoint.clone();
    let metrics_endpoint = config.metrics.otlp_endpoint.clone().unwrap_or_else(|| traces_endpoint.clone());
    config.metrics.otlp_tls = signal_tls(&mut env, &METRICS_TLS, &metrics_endpoint);
    let logs_endpoint = config.logs_endpoint.clone().unwrap_or(traces_endpoint);
    config.logs_tls = signal_tls(&mut env, &LOGS_TLS, &logs_endpoint);
    config.problems = env.problems;
    config
}

fn metrics<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> MetricsConfig {
    const NAME: &str = "OTEL_METRICS_EXPORTER";
    let d = MetricsConfig::default();
    let mut otlp = false;
    let mut prometheus = false;
    if let Some(raw) = env.var(NAME) {
        for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            match entry.to_ascii_lowercase().as_str() {
                "otlp" => otlp = true,
                "prometheus" => prometheus = true,
                "none" => {}
                _ => env.problem(NAME, entry, "a comma-separated list of otlp, prometheus, none", "none"),
            }
        }
    }
    let host = env.var("OTEL_EXPORTER_PROMETHEUS_HOST").unwrap_or_else(|| "127.0.0.1".to_owned());
    let port = match env.var("OTEL_EXPORTER_PROMETHEUS_PORT") {
        None => 9464,
        Some(v) => v.parse::<u16>().unwrap_or_else(|_| {
            env.problem("OTEL_EXPORTER_PROMETHEUS_PORT", &v, "a TCP port number, 0 to 65535", "9464");
            9464
        }),
    };
    // `localhost` binds loopback as the spec's default means; a bare IPv6 address needs brackets.
    let host = if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host };
    MetricsConfig {
        otlp,
        otlp_endpoint: url(env, "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"),
        prometheus: prometheus.then(|| format!("{host}:{port}")),
        export_interval: env.millis(&["OTEL_METRIC_EXPORT_INTERVAL"], d.export_interval),
        max_series: env.count(&["KOTAEMON_TRACE_METRICS_MAX_SERIES"], d.max_series),
        // Read after the traces' endpoint, which it is checked against (see `from_lookup`).
        otlp_tls: None,
    }
}

fn logs_exporter<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> bool {
    const NAME: &str = "OTEL_LOGS_EXPORTER";
    match env.var(NAME) {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("otlp") => true,
        Some(v) if v.eq_ignore_ascii_case("none") => false,
        Some(v) => {
            env.problem(NAME, &v, "otlp or none", "none");
            false
        }
    }
}

/// An `http://` or `https://` URL, without a trailing slash.
fn url<F: Fn(&str) -> Option<String>>(env: &mut Env<F>, name: &'static str) -> Option<String> {
    let v = env.var(name)?;
    if (v.starts_with("http://") || v.starts_with("https://")) && v.len() > "https://".len() {
        Some(v.trim_end_matches('/').to_owned())
    } else {
        env.problem(name, &v, "an http:// or https:// URL", "none");
        None
    }
}

fn resource_attributes<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Vec<(String, String)> {
    const NAME: &str = "OTEL_RESOURCE_ATTRIBUTES";
    let Some(raw) = env.var(NAME) else { return Vec::new() };
    match parse_key_values(&raw) {
        Some(pairs) => pairs,
        None => {
            // The spec: discard the whole variable when any entry is malformed.
            env.problem(
                NAME,
                &raw,
                "comma-separated key=value pairs, values percent-encoded",
                "no resource attributes from it",
            );
            Vec::new()
        }
    }
}

/// `k=v,k2=v2` with percent-decoded values; `None` when any entry is malformed.
fn parse_key_values(raw: &str) -> Option<Vec<(String, String)>> {
    raw.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let (key, value) = entry.split_once('=')?;
            let key = key.trim();
            if key.is_empty() {
                return None;
            }
            Some((key.to_owned(), percent_decode(value.trim())?))
        })
        .collect()
}

fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = value.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn exporter<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> ExporterKind {
    const NAME: &str = "OTEL_TRACES_EXPORTER";
    let Some(raw) = env.var(NAME) else { return ExporterKind::Otlp };
    match raw.to_ascii_lowercase().as_str() {
        "otlp" => ExporterKind::Otlp,
        "console" => ExporterKind::Console,
        "none" => ExporterKind::None,
        _ => {
            env.problem(NAME, &raw, "one of otlp, console, none", "otlp");
            ExporterKind::Otlp
        }
    }
}

fn otlp<F: Fn(&str) -> Option<String>>(env: &mut Env<F>, config: &mut Config) {
    let protocol = match env.first(PROTOCOL) {
        None => Protocol::default(),
        Some((name, v)) => match v.to_ascii_lowercase().as_str() {
            "grpc" => Protocol::Grpc,
            "http/protobuf" => Protocol::HttpProtobuf,
            _ => {
                // http/json is refused rather than half-supported: the metrics push and the tests speak
                // protobuf, and every collector that takes JSON takes protobuf on the same port.
                env.problem(name, &v, "grpc or http/protobuf (http/json is not supported)", "http/protobuf");
                Protocol::default()
            }
        },
    };
    let otlp = &mut config.otlp;
    otlp.protocol = protocol;
    otlp.endpoint = traces_url(protocol, protocol.default_endpoint());
    let default_url = otlp.endpoint.clone();
    // The signal-specific URL is taken as is; the generic one is a base the signal path is appended to.
    if let Some((name, url)) = env.first(ENDPOINT) {
        match check_url(&url) {
            Ok(()) if name == ENDPOINT[0] => otlp.endpoint = url,
            Ok(()) => otlp.endpoint = traces_url(protocol, &url),
            Err(why) => env.problem(name, &url, why, default_url),
        }
    }
    if let Some((name, raw)) = env.first(HEADERS) {
        match parse_key_values(&raw) {
            Some(headers) => otlp.headers = headers,
            // Header values are credentials: the problem shows the names only.
            None => env.problem(
                name,
                &mask_header_values(&raw),
                "comma-separated name=value pairs, values percent-encoded",
                "no extra headers",
            ),
        }
    }
    otlp.timeout = env.millis(TIMEOUT, otlp.timeout);
    otlp.tls = tls(env, &TRACES_TLS, &otlp.endpoint);
    otlp.compression = match env.first(COMPRESSION) {
        None => Compression::None,
        Some((name, v)) => match v.to_ascii_lowercase().as_str() {
            "gzip" => Compression::Gzip,
            "none" => Compression::None,
            _ => {
                env.problem(name, &v, "gzip or none", "none");
                Compression::None
            }
        },
    };
}

/// The variables of one signal's TLS files, each in precedence order (signal-specific, then generic).
pub(super) struct TlsVariables {
    pub(super) certificate: [&'static str; 2],
    pub(super) client_certificate: [&'static str; 2],
    pub(super) client_key: [&'static str; 2],
}

pub(super) const TRACES_TLS: TlsVariables = TlsVariables {
    certificate: ["OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", "OTEL_EXPORTER_OTLP_CERTIFICATE"],
    client_certificate: ["OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"],
    client_key: ["OTEL_EXPORTER_OTLP_TRACES_CLIENT_KEY", "OTEL_EXPORTER_OTLP_CLIENT_KEY"],
};
pub(super) const METRICS_TLS: TlsVariables = TlsVariables {
    certificate: ["OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE", "OTEL_EXPORTER_OTLP_CERTIFICATE"],
    client_certificate: ["OTEL_EXPORTER_OTLP_METRICS_CLIENT_CERTIFICATE", "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"],
    client_key: ["OTEL_EXPORTER_OTLP_METRICS_CLIENT_KEY", "OTEL_EXPORTER_OTLP_CLIENT_KEY"],
};
pub(super) const LOGS_TLS: TlsVariables = TlsVariables {
    certificate: ["OTEL_EXPORTER_OTLP_LOGS_CERTIFICATE", "OTEL_EXPORTER_OTLP_CERTIFICATE"],
    client_certificate: ["OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE", "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE"],
    client_key: ["OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY", "OTEL_EXPORTER_OTLP_CLIENT_KEY"],
};

/// The TLS files of the metrics push or the logs when they differ from the traces' (see the caller).
fn signal_tls<F: Fn(&str) -> Option<String>>(
    env: &mut Env<F>,
    variables: &TlsVariables,
    endpoint: &str,
) -> Option<super::OtlpTls> {
    let specific = [variables, &TRACES_TLS]
        .iter()
        .flat_map(|v| [v.certificate[0], v.client_certificate[0], v.client_key[0]])
        .any(|name| env.var(name).is_some());
    specific.then(|| tls(env, variables, endpoint))
}

/// The TLS files: each must be a readable PEM file (else a problem naming the variable and the path); a
/// client certificate needs its key and the reverse; they apply to an `https://` endpoint (either protocol).
fn tls<F: Fn(&str) -> Option<String>>(env: &mut Env<F>, variables: &TlsVariables, endpoint: &str) -> super::OtlpTls {
    let mut file = |names: &[&'static str]| -> Option<(&'static str, std::path::PathBuf)> {
        let (name, path) = env.first(names)?;
        match super::read_pem(std::path::Path::new(&path)) {
            Ok(_) => Some((name, path.into())),
            Err(why) => {
                env.problem(name, &path, &format!("a readable PEM file (this one {why})"), "no file");
                None
            }
        }
    };
    let certificate = file(&variables.certificate);
    let mut client_certificate = file(&variables.client_certificate);
    let mut client_key = file(&variables.client_key);
    match (&client_certificate, &client_key) {
        (Some((name, path)), None) => {
            let path = path.display().to_string();
            env.problem(
                name,
                &path,
                "a client certificate together with OTEL_EXPORTER_OTLP_CLIENT_KEY",
                "no client certificate",
            );
            client_certificate = None;
        }
        (None, Some((name, path))) => {
            let path = path.display().to_string();
            env.problem(
                name,
                &path,
                "a client key together with OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
                "no client certificate",
            );
            client_key = None;
        }
        _ => {}
    }
    let set = certificate.as_ref().or(client_certificate.as_ref()).or(client_key.as_ref()).map(|(name, _)| *name);
    let tls = super::OtlpTls {
        certificate: certificate.map(|(_, p)| p),
        client_certificate: client_certificate.map(|(_, p)| p),
        client_key: client_key.map(|(_, p)| p),
    };
    if tls.is_set() && !endpoint.starts_with("https://") {
        let name = set.unwrap_or(variables.certificate[1]);
        env.problem(name, endpoint, "an https:// endpoint", "the certificates are ignored");
        return super::OtlpTls::default();
    }
    tls
}

fn check_url(url: &str) -> Result<(), &'static str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or("a URL starting with http:// or https://")?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err("a URL with a host, e.g. http://localhost:4318");
    }
    Ok(())
}

const SAMPLERS: &str = "one of always_on, always_off, traceidratio, rate_limiting, jaeger_remote, \
                        parentbased_always_on, parentbased_always_off, parentbased_traceidratio, \
                        parentbased_rate_limiting, parentbased_jaeger_remote";
const SAMPLER_ARG: &str = "OTEL_TRACES_SAMPLER_ARG";

fn sampler<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Sampler {
    const NAME: &str = "OTEL_TRACES_SAMPLER";
    let default = Sampler::default();
    let Some(raw) = env.var(NAME) else { return default };
    let lower = raw.to_ascii_lowercase();
    let (parent_based, root) = match lower.strip_prefix("parentbased_") {
        Some(root) => (true, root),
        None => (false, lower.as_str()),
    };
    let root = match root {
        "always_on" => Sampler::AlwaysOn,
        "always_off" => Sampler::AlwaysOff,
        "traceidratio" => Sampler::TraceIdRatio(ratio_arg(env)),
        "rate_limiting" => Sampler::RateLimited(rate_arg(env)),
        "jaeger_remote" => Sampler::JaegerRemote(jaeger_remote_arg(env)),
        _ => {
            env.problem(NAME, &raw, SAMPLERS, default.name());
            return default;
        }
    };
    if parent_based { Sampler::ParentBased(Box::new(root)) } else { root }
}

fn ratio_arg<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> f64 {
    match env.var(SAMPLER_ARG) {
        None => 1.0,
        Some(v) => match v.parse::<f64>() {
            Ok(r) if (0.0..=1.0).contains(&r) => r,
            _ => {
                env.problem(SAMPLER_ARG, &v, "a number from 0 to 1", "1.0");
                1.0
            }
        },
    }
}

/// Traces per second for `rate_limiting`; 10 by default, the usual starting point in production.
fn rate_arg<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> f64 {
    match env.var(SAMPLER_ARG) {
        None => 10.0,
        Some(v) => match v.parse::<f64>() {
            Ok(r) if r.is_finite() && r >= 0.0 => r,
            _ => {
                env.problem(SAMPLER_ARG, &v, "a number of traces per second, 0 or more", "10");
                10.0
            }
        },
    }
}

fn jaeger_remote_arg<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> JaegerRemote {
    let mut remote = JaegerRemote::default();
    let Some(raw) = env.var(SAMPLER_ARG) else { return remote };
    const ACCEPTED: &str = "comma-separated endpoint=URL, pollingIntervalMs=N, initialSamplingRate=0..1";
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((key, value)) = entry.split_once('=') else {
            env.problem(SAMPLER_ARG, &raw, ACCEPTED, "the jaeger_remote defaults");
            return JaegerRemote::default();
        };
        let (key, value) = (key.trim(), value.trim());
        let ok = match key {
            "endpoint" => check_url(value).map(|()| remote.endpoint = value.to_owned()).is_ok(),
            "pollingIntervalMs" => value
                .parse::<u64>()
                .ok()
                .filter(|ms| *ms > 0)
                .map(|ms| remote.polling_interval = Duration::from_millis(ms))
                .is_some(),
            "initialSamplingRate" => value
                .parse::<f64>()
                .ok()
                .filter(|r| (0.0..=1.0).contains(r))
                .map(|r| remote.initial_sampling_rate = r)
                .is_some(),
            _ => false,
        };
        if !ok {
            env.problem(SAMPLER_ARG, &raw, ACCEPTED, "the jaeger_remote defaults");
            return JaegerRemote::default();
        }
    }
    remote
}

fn debug<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> DebugConfig {
    let mut debug = DebugConfig::default();
    if let Some(header) = env.var("KOTAEMON_TRACE_DEBUG_HEADER") {
        if header.eq_ignore_ascii_case("none") {
            debug.per_second = 0.0;
        } else if http::HeaderName::from_bytes(header.to_ascii_lowercase().as_bytes()).is_ok() {
            debug.header = header.to_ascii_lowercase();
        } else {
            env.problem("KOTAEMON_TRACE_DEBUG_HEADER", &header, "an HTTP header name, or none", "x-debug-tracing");
        }
    }
    if let Some(v) = env.var("KOTAEMON_TRACE_DEBUG_PER_SECOND") {
        match v.parse::<f64>() {
            Ok(r) if r.is_finite() && r >= 0.0 => debug.per_second = r,
            _ => env.problem(
                "KOTAEMON_TRACE_DEBUG_PER_SECOND",
                &v,
                "a number of forced traces per second, 0 or more",
                "5",
            ),
        }
    }
    debug
}

fn redaction<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> RedactionConfig {
    let mut r = RedactionConfig {
        enabled: env.bool("KOTAEMON_TRACE_REDACT", true),
        capture_arguments: env.bool("KOTAEMON_TRACE_CAPTURE_ARGS", true),
        redact_ip: env.bool("KOTAEMON_TRACE_REDACT_IP", true),
        ..RedactionConfig::default()
    };
    const KEYS: &str = "KOTAEMON_TRACE_REDACT_KEYS";
    for pattern in env.var(KEYS).iter().flat_map(|v| v.split(',')).map(str::trim).filter(|p| !p.is_empty()) {
        match compiles(pattern) {
            true => r.secret_key_patterns.push(pattern.to_owned()),
            false => env.problem(KEYS, pattern, "comma-separated regular expressions", "the default key rules only"),
        }
    }
    const VALUES: &str = "KOTAEMON_TRACE_REDACT_VALUES";
    for entry in env.var(VALUES).iter().flat_map(|v| v.split(';')).map(str::trim).filter(|e| !e.is_empty()) {
        let parsed = entry.split_once('=').filter(|(name, pattern)| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && compiles(pattern)
        });
        match parsed {
            Some((name, pattern)) => r.value_patterns.push((name.to_owned(), pattern.to_owned())),
            None => env.problem(
                VALUES,
                entry,
                "name=regex entries separated by ';' (names of letters, digits, '_')",
                "the default detectors only",
            ),
        }
    }
    r.allow_keys = env
        .var("KOTAEMON_TRACE_REDACT_ALLOW_KEYS")
        .map(|v| v.split(',').map(str::trim).filter(|k| !k.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default();
    const KEY: &str = "KOTAEMON_TRACE_REDACTION_KEY";
    if let Some(key) = env.var(KEY) {
        if key.len() >= 16 {
            r.pseudonym_key = Some(key);
        } else {
            // The key itself is a secret: the problem shows its length only.
            env.problem(
                KEY,
                &format!("({} bytes, hidden)", key.len()),
                "at least 16 bytes",
                "a random per-process key",
            );
        }
    }
    r
}

fn tail<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Option<TailConfig> {
    const LATENCY: &str = "KOTAEMON_TRACE_TAIL_LATENCY_MS";
    let raw = env.var(LATENCY)?;
    let Ok(ms) = raw.parse::<u64>() else {
        env.problem(LATENCY, &raw, "a whole number of milliseconds", "tail sampling off");
        return None;
    };
    let d = TailConfig::default();
    Some(TailConfig {
        latency_threshold: Duration::from_millis(ms),
        max_buffered_spans: env.count(&["KOTAEMON_TRACE_TAIL_MAX_SPANS"], d.max_buffered_spans),
    })
}

fn batch<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> BatchConfig {
    let d = BatchConfig::default();
    let mut batch = BatchConfig {
        schedule_delay: env.millis(&["OTEL_BSP_SCHEDULE_DELAY"], d.schedule_delay),
        export_timeout: env.millis(&["OTEL_BSP_EXPORT_TIMEOUT"], d.export_timeout),
        max_queue_size: env.count(&["OTEL_BSP_MAX_QUEUE_SIZE"], d.max_queue_size),
        max_export_batch_size: env.count(&["OTEL_BSP_MAX_EXPORT_BATCH_SIZE"], d.max_export_batch_size),
    };
    if batch.max_export_batch_size > batch.max_queue_size {
        // The spec: the batch size must not exceed the queue size.
        let value = batch.max_export_batch_size.to_string();
        let accepted = format!("at most OTEL_BSP_MAX_QUEUE_SIZE ({})", batch.max_queue_size);
        env.problem("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", &value, &accepted, batch.max_queue_size.to_string());
        batch.max_export_batch_size = batch.max_queue_size;
    }
    batch
}

fn limits<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Limits {
    let d = Limits::default();
    let value_length = match env.first(&["OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT"])
    {
        None => None,
        Some((name, v)) => match v.parse::<usize>() {
            Ok(n) => Some(n),
            Err(_) => {
                env.problem(name, &v, "a whole number of characters", "no limit");
                None
            }
        },
    };
    Limits {
        attribute_value_length: value_length,
        attributes_per_span: env
            .count(&["OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "OTEL_ATTRIBUTE_COUNT_LIMIT"], d.attributes_per_span),
        events_per_span: env.count(&["OTEL_SPAN_EVENT_COUNT_LIMIT"], d.events_per_span),
        links_per_span: env.count(&["OTEL_SPAN_LINK_COUNT_LIMIT"], d.links_per_span),
        attributes_per_event: env
            .count(&["OTEL_EVENT_ATTRIBUTE_COUNT_LIMIT", "OTEL_ATTRIBUTE_COUNT_LIMIT"], d.attributes_per_event),
        attributes_per_link: env
            .count(&["OTEL_LINK_ATTRIBUTE_COUNT_LIMIT", "OTEL_ATTRIBUTE_COUNT_LIMIT"], d.attributes_per_link),
    }
}

fn propagators<F: Fn(&str) -> Option<String>>(env: &mut Env<F>) -> Option<Vec<Propagator>> {
    const NAME: &str = "OTEL_PROPAGATORS";
    let raw = env.var(NAME)?;
    let mut chosen = Vec::new();
    for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match name.to_ascii_lowercase().as_str() {
            "tracecontext" => chosen.push(Propagator::TraceContext),
            "baggage" => chosen.push(Propagator::Baggage),
            "b3" => chosen.push(Propagator::B3),
            "b3multi" => chosen.push(Propagator::B3Multi),
            "jaeger" => chosen.push(Propagator::Jaeger),
            "none" => {}
            _ => {
                env.problem(
                    NAME,
                    name,
                    "a comma-separated list of tracecontext, baggage, b3, b3multi, jaeger, none",
                    "tracecontext,baggage",
                );
                return None;
            }
        }
    }
    chosen.dedup();
    Some(chosen)
}

/// Whether a redaction pattern compiles. Without the `sdk` feature there is no redactor to use patterns,
/// so they are kept as given and checked by the build that has one.
fn compiles(pattern: &str) -> bool {
    #[cfg(feature = "sdk")]
    return regex::Regex::new(pattern).is_ok();
    #[cfg(not(feature = "sdk"))]
    return !pattern.is_empty();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Config {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn metrics_are_off_by_default_and_the_scrape_endpoint_binds_loopback() {
        assert!(!config(&[]).metrics().enabled());
        let c = config(&[("OTEL_METRICS_EXPORTER", "prometheus,otlp")]);
        assert_eq!(c.metrics().prometheus.as_deref(), Some("127.0.0.1:9464"));
        assert!(c.metrics().otlp);
        let c = config(&[
            ("OTEL_METRICS_EXPORTER", "prometheus"),
            ("OTEL_EXPORTER_PROMETHEUS_HOST", "::1"),
            ("OTEL_EXPORTER_PROMETHEUS_PORT", "9100"),
        ]);
        assert_eq!(c.metrics().prometheus.as_deref(), Some("[::1]:9100"));
        let c = config(&[("OTEL_METRICS_EXPORTER", "statsd"), ("OTEL_EXPORTER_PROMETHEUS_PORT", "99999")]);
        let named: Vec<&str> = c.problems().iter().map(|p| p.variable()).collect();
        assert_eq!(named, ["OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_PROMETHEUS_PORT"]);
    }

    #[test]
    fn defaults_follow_the_spec() {
        let c = config(&[]);
        assert!(c.problems().is_empty());
        assert!(!c.is_disabled());
        assert_eq!(c.exporter(), ExporterKind::Otlp);
        assert_eq!(c.otlp().protocol, Protocol::HttpProtobuf);
        assert_eq!(c.otlp().endpoint, "http://localhost:4318/v1/traces");
        assert_eq!(c.otlp().timeout, Duration::from_secs(10));
        assert_eq!(c.sampler(), &Sampler::ParentBased(Box::new(Sampler::AlwaysOn)));
        assert_eq!(c.batch(), &BatchConfig::default());
        assert_eq!(c.propagators(), &[Propagator::TraceContext, Propagator::Baggage]);
        assert!(c.service_name().starts_with("unknown_service"));
    }

    #[test]
    fn service_name_beats_resource_attributes() {
        let c = config(&[("OTEL_SERVICE_NAME", "api"), ("OTEL_RESOURCE_ATTRIBUTES", "service.name=other,team=rag")]);
        assert_eq!(c.service_name(), "api");
        let c = config(&[("OTEL_RESOURCE_ATTRIBUTES", "service.name=other, deployment.environment=prod%20eu")]);
        assert_eq!(c.service_name(), "other");
        assert!(c.resource_attributes.contains(&("deployment.environment".into(), "prod eu".into())));
    }

    #[test]
    fn malformed_resource_attributes_are_discarded_whole() {
        let c = config(&[("OTEL_RESOURCE_ATTRIBUTES", "team=rag,broken")]);
        assert!(c.resource_attributes.is_empty());
        assert_eq!(c.problems()[0].variable(), "OTEL_RESOURCE_ATTRIBUTES");
    }

    #[test]
    fn grpc_endpoint_and_signal_specific_values_win() {
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "GRPC"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "2000"),
            ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "1500"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=abc%3D1"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
        ]);
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        assert_eq!(c.otlp().protocol, Protocol::Grpc);
        assert_eq!(c.otlp().endpoint, "http://127.0.0.1:4317");
        assert_eq!(c.otlp().timeout, Duration::from_millis(1500));
        assert_eq!(c.otlp().headers, vec![("x-api-key".to_string(), "abc=1".to_string())]);
        assert_eq!(c.otlp().compression, Compression::Gzip);
    }

    #[test]
    fn http_appends_the_signal_path_only_to_the_generic_endpoint() {
        let c = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://jaeger:4318/")]);
        assert_eq!(c.otlp().endpoint, "http://jaeger:4318/v1/traces");
        let c = config(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://ignored:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://jaeger:4318/custom"),
        ]);
        assert_eq!(c.otlp().endpoint, "http://jaeger:4318/custom");
    }

    #[test]
    fn every_invalid_value_is_named_and_replaced_by_its_default() {
        let c = config(&[
            ("OTEL_SDK_DISABLED", "yes"),
            ("OTEL_TRACES_EXPORTER", "jaeger"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4317"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s"),
            ("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli"),
            ("OTEL_TRACES_SAMPLER", "sometimes"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "0"),
            ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "-1"),
            ("OTEL_PROPAGATORS", "tracecontext,xray"),
        ]);
        let named: Vec<&str> = c.problems().iter().map(|p| p.variable()).collect();
        assert_eq!(
            named,
            [
                "OTEL_SDK_DISABLED",
                "OTEL_TRACES_EXPORTER",
                "OTEL_TRACES_SAMPLER",
                "OTEL_BSP_MAX_QUEUE_SIZE",
                "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT",
                "OTEL_PROPAGATORS",
                "OTEL_EXPORTER_OTLP_PROTOCOL",
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                "OTEL_EXPORTER_OTLP_TIMEOUT",
                "OTEL_EXPORTER_OTLP_COMPRESSION",
            ]
        );
        assert_eq!(c, Config { problems: c.problems.clone(), ..config(&[]) });
        let sampler = c.problems().iter().find(|p| p.variable() == "OTEL_TRACES_SAMPLER").unwrap();
        assert_eq!(
            sampler.to_string(),
            format!("OTEL_TRACES_SAMPLER=\"sometimes\" is not valid: expected {SAMPLERS}; using parentbased_always_on")
        );
    }

    #[test]
    fn sampler_names_are_case_insensitive_and_take_their_argument() {
        let c = config(&[("OTEL_TRACES_SAMPLER", "ParentBased_TraceIdRatio"), ("OTEL_TRACES_SAMPLER_ARG", "0.25")]);
        assert_eq!(c.sampler(), &Sampler::ParentBased(Box::new(Sampler::TraceIdRatio(0.25))));
        let c = config(&[("OTEL_TRACES_SAMPLER", "traceidratio"), ("OTEL_TRACES_SAMPLER_ARG", "1.5")]);
        assert_eq!(c.sampler(), &Sampler::TraceIdRatio(1.0));
        assert_eq!(c.problems()[0].variable(), "OTEL_TRACES_SAMPLER_ARG");
    }

    #[test]
    fn rate_limiting_and_jaeger_remote_from_env() {
        let c = config(&[("OTEL_TRACES_SAMPLER", "parentbased_rate_limiting"), ("OTEL_TRACES_SAMPLER_ARG", "10")]);
        assert_eq!(c.sampler(), &Sampler::ParentBased(Box::new(Sampler::RateLimited(10.0))));
        let c = config(&[
            ("OTEL_TRACES_SAMPLER", "jaeger_remote"),
            (
                "OTEL_TRACES_SAMPLER_ARG",
                "endpoint=http://127.0.0.1:5778/sampling, pollingIntervalMs=500,initialSamplingRate=0.2",
            ),
        ]);
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        assert_eq!(
            c.sampler(),
            &Sampler::JaegerRemote(JaegerRemote {
                endpoint: "http://127.0.0.1:5778/sampling".into(),
                polling_interval: Duration::from_millis(500),
                initial_sampling_rate: 0.2,
            })
        );
        let c = config(&[("OTEL_TRACES_SAMPLER", "jaeger_remote"), ("OTEL_TRACES_SAMPLER_ARG", "endpoint=localhost")]);
        assert_eq!(c.sampler(), &Sampler::JaegerRemote(JaegerRemote::default()));
        assert_eq!(c.problems()[0].variable(), "OTEL_TRACES_SAMPLER_ARG");
    }

    #[test]
    fn debug_and_tail_settings() {
        let c = config(&[
            ("KOTAEMON_TRACE_DEBUG_HEADER", "X-Force-Trace"),
            ("KOTAEMON_TRACE_DEBUG_PER_SECOND", "2"),
            ("KOTAEMON_TRACE_TAIL_LATENCY_MS", "5000"),
            ("KOTAEMON_TRACE_TAIL_MAX_SPANS", "100"),
        ]);
        assert!(c.problems().is_empty(), "{:?}", c.problems());
        assert_eq!(c.debug(), &DebugConfig { header: "x-force-trace".into(), per_second: 2.0 });
        assert_eq!(c.tail(), Some(&TailConfig { latency_threshold: Duration::from_secs(5), max_buffered_spans: 100 }));
        assert_eq!(config(&[]).tail(), None);
        let c = config(&[("KOTAEMON_TRACE_DEBUG_HEADER", "bad header")]);
        assert_eq!(c.problems()[0].variable(), "KOTAEMON_TRACE_DEBUG_HEADER");
    }

    #[test]
    fn redaction_settings_and_refusals() {
        let c = config(&[
            ("KOTAEMON_TRACE_REDACT_KEYS", "^x-internal-, (?i)employee"),
            ("KOTAEMON_TRACE_REDACT_VALUES", "employee_id=EMP-\\d{6}; bad name=x"),
            ("KOTAEMON_TRACE_REDACT_ALLOW_KEYS", "user.email_domain, app.*"),
            ("KOTAEMON_TRACE_CAPTURE_ARGS", "false"),
            ("KOTAEMON_TRACE_REDACTION_KEY", "short"),
        ]);
        let r = c.redaction();
        assert_eq!(r.secret_key_patterns, ["^x-internal-", "(?i)employee"]);
        assert_eq!(r.value_patterns, [("employee_id".to_string(), "EMP-\\d{6}".to_string())]);
        assert_eq!(r.allow_keys, ["user.email_domain", "app.*"]);
        assert!(!r.capture_arguments);
        assert_eq!(r.pseudonym_key, None);
        let named: Vec<&str> = c.problems().iter().map(|p| p.variable()).collect();
        assert_eq!(named, ["KOTAEMON_TRACE_REDACT_VALUES", "KOTAEMON_TRACE_REDACTION_KEY"]);
        assert!(!c.problems()[1].to_string().contains("short"), "the key is never printed");
        let c = config(&[("KOTAEMON_TRACE_REDACTION_KEY", "a-long-enough-secret-key")]);
        assert!(!format!("{c:?}").contains("a-long-enough-secret-key"));
    }

    #[test]
    fn header_values_never_appear_in_problems() {
        let c = config(&[("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer%20s3cr3t,broken")]);
        let text = c.problems()[0].to_string();
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("authorization=***"), "{text}");
        assert!(!format!("{:?}", config(&[("OTEL_EXPORTER_OTLP_HEADERS", "k=s3cr3t")])).contains("s3cr3t"));
    }

    #[test]
    fn oversized_values_are_refused_unread() {
        let huge = "k=v,".repeat(3 * 1024 * 1024);
        let c = config(&[("OTEL_RESOURCE_ATTRIBUTES", &huge), ("OTEL_SERVICE_NAME", "api")]);
        assert!(c.resource_attributes.is_empty());
        assert_eq!(c.service_name(), "api");
        assert_eq!(c.problems().len(), 1);
        let text = c.problems()[0].to_string();
        assert!(text.starts_with("OTEL_RESOURCE_ATTRIBUTES=\"(12582912 bytes, not shown)\""), "{text}");
        assert!(text.len() < 200, "the problem does not echo the value");
        let at_bound = "a".repeat(MAX_VALUE_LEN);
        assert_eq!(config(&[("OTEL_SERVICE_NAME", &at_bound)]).service_name(), at_bound);
    }

    #[test]
    fn url_passwords_never_appear_in_problems() {
        let c = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://user:pa55word@collector:4318")]);
        let text = c.problems()[0].to_string();
        assert!(!text.contains("pa55word"), "{text}");
        assert!(text.contains("ftp://***@collector:4318"), "{text}");
        let c = config(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "https://user:pa55word@collector:4318")]);
        assert!(!format!("{c:?}").contains("pa55word"));
    }

    #[test]
    fn batch_size_is_clamped_to_the_queue() {
        let c = config(&[("OTEL_BSP_MAX_QUEUE_SIZE", "100"), ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "500")]);
        assert_eq!(c.batch().max_export_batch_size, 100);
        assert_eq!(c.problems().len(), 1);
    }

    #[test]
    fn limits_and_propagators() {
        let c = config(&[
            ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "256"),
            ("OTEL_ATTRIBUTE_COUNT_LIMIT", "64"),
            ("OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", "32"),
            ("OTEL_PROPAGATORS", "baggage, tracecontext"),
        ]);
        assert_eq!(c.limits().attribute_value_length, Some(256));
        assert_eq!(c.limits().attributes_per_span, 32);
        assert_eq!(c.limits().attributes_per_event, 64);
        assert_eq!(c.propagators(), &[Propagator::Baggage, Propagator::TraceContext]);
        let c = config(&[("OTEL_PROPAGATORS", "b3,b3multi,jaeger")]);
        assert_eq!(c.propagators(), &[Propagator::B3, Propagator::B3Multi, Propagator::Jaeger]);
        let c = config(&[("OTEL_PROPAGATORS", "none")]);
        assert!(c.propagators().is_empty());
    }

    #[test]
    fn env_and_builder_give_the_same_config() {
        let from_env = config(&[
            ("OTEL_SERVICE_NAME", "rag-api"),
            ("OTEL_RESOURCE_ATTRIBUTES", "team=search"),
            ("OTEL_TRACES_EXPORTER", "console"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4317"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "x-key=v"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "3000"),
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.5"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", "1000"),
            ("OTEL_PROPAGATORS", "tracecontext"),
        ]);
        let built = Config::builder()
            .service_name("rag-api")
            .resource_attribute("team", "search")
            .exporter(ExporterKind::Console)
            .otlp_endpoint("http://127.0.0.1:4317")
            .protocol(Protocol::Grpc)
            .otlp_header("x-key", "v")
            .otlp_timeout(Duration::from_secs(3))
            .sampler(Sampler::TraceIdRatio(0.5))
            .batch(BatchConfig { schedule_delay: Duration::from_millis(100), ..BatchConfig::default() })
            .limits(Limits { attribute_value_length: Some(1000), ..Limits::default() })
            .propagators([Propagator::TraceContext])
            .build();
        assert_eq!(from_env, built);
    }

    #[test]
    fn metrics_and_logs_take_their_own_tls_files_only_when_a_signal_specific_variable_is_set() {
        let dir = std::env::temp_dir().join(format!("kotaemon-env-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pem = |name: &str| {
            let path = dir.join(name);
            std::fs::write(&path, "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n").unwrap();
            path.display().to_string()
        };
        let (generic, metrics_ca, traces_ca) = (pem("generic.pem"), pem("metrics.pem"), pem("traces.pem"));
        let https = ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://collector:4318");

        // The generic files: one transport for all three signals.
        let c = config(&[https, ("OTEL_EXPORTER_OTLP_CERTIFICATE", &generic)]);
        assert_eq!(c.otlp().tls.certificate.as_deref(), Some(std::path::Path::new(&generic)));
        assert_eq!((&c.metrics().otlp_tls, &c.logs_tls), (&None, &None));

        // A metrics file replaces the generic one for metrics only.
        let c = config(&[
            https,
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", &generic),
            ("OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE", &metrics_ca),
        ]);
        let metrics = c.metrics().otlp_tls.clone().expect("metrics have their own files");
        assert_eq!(metrics.certificate.as_deref(), Some(std::path::Path::new(&metrics_ca)));
        assert_eq!(c.logs_tls, None);

        // A traces file is not the other signals': they read the generic variables (here: none, the
        // system's roots).
        let c = config(&[https, ("OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", &traces_ca)]);
        assert_eq!(c.otlp().tls.certificate.as_deref(), Some(std::path::Path::new(&traces_ca)));
        assert_eq!(c.metrics().otlp_tls, Some(super::super::OtlpTls::default()));
        assert_eq!(c.logs_tls, Some(super::super::OtlpTls::default()));

        // A generic file that cannot be read is reported once, not once per signal.
        let c = config(&[
            https,
            ("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem"),
            ("OTEL_EXPORTER_OTLP_LOGS_CLIENT_KEY", &generic),
            ("OTEL_EXPORTER_OTLP_LOGS_CLIENT_CERTIFICATE", &generic),
        ]);
        let named: Vec<&str> = c.problems().iter().map(|p| p.variable()).collect();
        assert_eq!(named, ["OTEL_EXPORTER_OTLP_CERTIFICATE"], "{:?}", c.problems());
        assert!(c.logs_tls.as_ref().is_some_and(|t| t.client_key.is_some()));

        // Files with a plain http:// metrics endpoint are ignored, and said so under the variable set.
        let c = config(&[
            https,
            ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://prometheus:9090/api/v1/otlp/v1/metrics"),
            ("OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE", &metrics_ca),
        ]);
        assert_eq!(c.problems()[0].variable(), "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE");
        assert_eq!(c.metrics().otlp_tls, Some(super::super::OtlpTls::default()));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
