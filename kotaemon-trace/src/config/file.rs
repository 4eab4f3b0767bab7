//! `kotaemon-trace.toml`: the settings a team writes down on purpose, under the environment.
//!
//! Every file key stands for one environment variable (see [`KEYS`]); the file's values are turned into
//! the text that variable would hold and read by the same parser as the environment, so a setting means
//! the same thing wherever it comes from. The precedence is environment, then file, then default.
//!
//! Unlike the environment, a file is refused when anything in it is wrong (an unknown key, a value of the
//! wrong type, a value the parser rejects): the error names the file, the line, the key, the value and what
//! is accepted. Values of secret keys (`exporter.headers`, `redaction.key`) are never shown.
// Without `config-file` only the key table and origins are used (the file itself is refused).
#![cfg_attr(not(feature = "config-file"), allow(dead_code))]

use super::{Config, env};
use crate::base::error::ConfigFileError;
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};
#[cfg(feature = "config-file")]
use toml::Spanned;
#[cfg(feature = "config-file")]
use toml::de::{DeTable, DeValue};

/// The variable that names the file; without it, `./kotaemon-trace.toml` is read when present.
pub(crate) const PATH_VARIABLE: &str = "KOTAEMON_TRACE_CONFIG";
/// The file read when [`PATH_VARIABLE`] is unset.
pub(crate) const DEFAULT_PATH: &str = "kotaemon-trace.toml";

/// How a file value becomes the text of its variable.
#[derive(Clone, Copy)]
enum Shape {
    Text,
    Bool,
    /// A whole number, 0 or more.
    Whole,
    /// A number, or a string (`sampler.arg` holds `0.25` as well as `endpoint=…`).
    NumberOrText,
    /// An array of strings, joined with the separator.
    List(&'static str),
    /// A table of strings, written `k=v` and joined with the separator.
    Table(&'static str),
}

/// One file key: its dotted path, its variable, its shape, and whether its value is a secret.
struct Key {
    path: &'static str,
    variable: &'static str,
    shape: Shape,
    secret: bool,
}

const fn key(path: &'static str, variable: &'static str, shape: Shape) -> Key {
    Key { path, variable, shape, secret: false }
}

const fn secret(path: &'static str, variable: &'static str, shape: Shape) -> Key {
    Key { path, variable, shape, secret: true }
}

/// Every key the file accepts. The file table of docs/configuration.md lists the same pairs.
const KEYS: &[Key] = &[
    key("disabled", "OTEL_SDK_DISABLED", Shape::Bool),
    key("service.name", "OTEL_SERVICE_NAME", Shape::Text),
    key("service.resource_attributes", "OTEL_RESOURCE_ATTRIBUTES", Shape::Table(",")),
    key("exporter.kind", "OTEL_TRACES_EXPORTER", Shape::Text),
    key("exporter.endpoint", "OTEL_EXPORTER_OTLP_ENDPOINT", Shape::Text),
    key("exporter.traces_endpoint", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", Shape::Text),
    key("exporter.protocol", "OTEL_EXPORTER_OTLP_PROTOCOL", Shape::Text),
    secret("exporter.headers", "OTEL_EXPORTER_OTLP_HEADERS", Shape::Table(",")),
    key("exporter.timeout_ms", "OTEL_EXPORTER_OTLP_TIMEOUT", Shape::Whole),
    key("exporter.compression", "OTEL_EXPORTER_OTLP_COMPRESSION", Shape::Text),
    key("sampler.name", "OTEL_TRACES_SAMPLER", Shape::Text),
    key("sampler.arg", "OTEL_TRACES_SAMPLER_ARG", Shape::NumberOrText),
    key("propagators", "OTEL_PROPAGATORS", Shape::List(",")),
    key("batch.max_queue_size", "OTEL_BSP_MAX_QUEUE_SIZE", Shape::Whole),
    key("batch.max_export_batch_size", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", Shape::Whole),
    key("batch.schedule_delay_ms", "OTEL_BSP_SCHEDULE_DELAY", Shape::Whole),
    key("batch.export_timeout_ms", "OTEL_BSP_EXPORT_TIMEOUT", Shape::Whole),
    key("limits.attribute_value_length", "OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT", Shape::Whole),
    key("limits.attribute_count", "OTEL_ATTRIBUTE_COUNT_LIMIT", Shape::Whole),
    key("limits.span_attribute_count", "OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT", Shape::Whole),
    key("limits.span_event_count", "OTEL_SPAN_EVENT_COUNT_LIMIT", Shape::Whole),
    key("limits.span_link_count", "OTEL_SPAN_LINK_COUNT_LIMIT", Shape::Whole),
    key("debug.header", "KOTAEMON_TRACE_DEBUG_HEADER", Shape::Text),
    key("debug.per_second", "KOTAEMON_TRACE_DEBUG_PER_SECOND", Shape::NumberOrText),
    key("tail.latency_ms", "KOTAEMON_TRACE_TAIL_LATENCY_MS", Shape::Whole),
    key("tail.max_spans", "KOTAEMON_TRACE_TAIL_MAX_SPANS", Shape::Whole),
    key("redaction.enabled", "KOTAEMON_TRACE_REDACT", Shape::Bool),
    secret("redaction.key", "KOTAEMON_TRACE_REDACTION_KEY", Shape::Text),
    key("redaction.keys", "KOTAEMON_TRACE_REDACT_KEYS", Shape::List(",")),
    key("redaction.values", "KOTAEMON_TRACE_REDACT_VALUES", Shape::Table(";")),
    key("redaction.allow_keys", "KOTAEMON_TRACE_REDACT_ALLOW_KEYS", Shape::List(",")),
    key("redaction.capture_arguments", "KOTAEMON_TRACE_CAPTURE_ARGS", Shape::Bool),
    key("redaction.redact_ip", "KOTAEMON_TRACE_REDACT_IP", Shape::Bool),
    key("content.capture", "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", Shape::Bool),
    key("content.max_chars", "KOTAEMON_TRACE_CONTENT_MAX_CHARS", Shape::Whole),
    key("logs.exporter", "OTEL_LOGS_EXPORTER", Shape::Text),
    key("logs.otlp_endpoint", "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", Shape::Text),
    key("metrics.exporter", "OTEL_METRICS_EXPORTER", Shape::Text),
    key("metrics.otlp_endpoint", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", Shape::Text),
    key("metrics.export_interval_ms", "OTEL_METRIC_EXPORT_INTERVAL", Shape::Whole),
    key("metrics.prometheus_host", "OTEL_EXPORTER_PROMETHEUS_HOST", Shape::Text),
    key("metrics.prometheus_port", "OTEL_EXPORTER_PROMETHEUS_PORT", Shape::Whole),
    key("metrics.max_series", "KOTAEMON_TRACE_METRICS_MAX_SERIES", Shape::Whole),
    key("jaeger.query_url", "KOTAEMON_TRACE_JAEGER_URL", Shape::Text),
];

/// The file key that stands for `variable`, if any (for `doctor`-style reports).
pub(crate) fn key_of(variable: &str) -> Option<&'static str> {
    KEYS.iter().find(|k| k.variable == variable).map(|k| k.path)
}

/// A file value in the form of its variable, and where it was written.
#[derive(Clone, Debug)]
pub(crate) struct FileValue {
    pub(crate) key: &'static str,
    pub(crate) text: String,
    pub(crate) line: usize,
    span: Range<usize>,
    secret: bool,
}

/// A parsed, checked file: its values by variable name.
#[derive(Clone, Debug, Default)]
pub(crate) struct FileSettings {
    pub(crate) path: Option<PathBuf>,
    pub(crate) values: BTreeMap<&'static str, FileValue>,
}

impl FileSettings {
    pub(crate) fn get(&self, variable: &str) -> Option<String> {
        self.values.get(variable).map(|v| v.text.clone())
    }
}

/// The file to read: `KOTAEMON_TRACE_CONFIG` (which must exist), else `./kotaemon-trace.toml` when present.
pub(crate) fn locate(get_env: &impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    match get_env(PATH_VARIABLE).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) {
        Some(named) => Some(PathBuf::from(named)),
        None => Some(PathBuf::from(DEFAULT_PATH)).filter(|default| default.is_file()),
    }
}

/// Reads and checks the file at `path`.
pub(crate) fn read(path: &Path) -> Result<FileSettings, ConfigFileError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigFileError {
        path: path.to_owned(),
        line: 0,
        column: 0,
        key: String::new(),
        problem: format!("cannot be read: {e}"),
    })?;
    parse(&text, path)
}

/// Without the `config-file` feature a configuration file is refused rather than ignored: settings the
/// operator wrote down must not silently not apply.
#[cfg(not(feature = "config-file"))]
pub(crate) fn parse(_text: &str, path: &Path) -> Result<FileSettings, ConfigFileError> {
    Err(ConfigFileError {
        path: path.to_owned(),
        line: 0,
        column: 0,
        key: String::new(),
        problem: "this build of kotaemon-trace reads no configuration file (enable the `config-file` cargo \
                  feature, or remove the file and use OTEL_* variables)"
            .to_owned(),
    })
}

#[cfg(feature = "config-file")]
/// Parses and checks a file's text; `path` only names it in errors.
pub(crate) fn parse(text: &str, path: &Path) -> Result<FileSettings, ConfigFileError> {
    let error_at = |span: Range<usize>, key: &str, problem: String| {
        let (line, column) = line_and_column(text, span.start);
        ConfigFileError { path: path.to_owned(), line, column, key: key.to_owned(), problem }
    };
    let root = DeTable::parse(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        error_at(span, "", format!("is not valid TOML: {}", e.message()))
    })?;
    let mut values = BTreeMap::new();
    let mut leaves = Vec::new();
    flatten("", root.get_ref(), &mut leaves);
    for (path_text, key_span, value) in leaves {
        let Some(known) = KEYS.iter().find(|k| k.path == path_text) else {
            let problem = format!("unknown key: expected one of {}", accepted_keys(&path_text));
            return Err(error_at(key_span, &path_text, problem));
        };
        let text_value = to_variable_text(known.shape, value.get_ref())
            .map_err(|accepted| error_at(value.span(), known.path, format!("expected {accepted}")))?;
        let (line, _) = line_and_column(text, value.span().start);
        values.insert(
            known.variable,
            FileValue { key: known.path, text: text_value, line, span: value.span(), secret: known.secret },
        );
    }
    let settings = FileSettings { path: Some(path.to_owned()), values };
    // The same parser as the environment; any problem it finds in the file's values refuses the file.
    let checked = env::from_lookup(|name| settings.get(name));
    if let Some(problem) = checked.problems.iter().find(|p| settings.values.contains_key(p.variable())) {
        let value = &settings.values[problem.variable()];
        let shown = if value.secret {
            "(secret, not shown)".to_owned()
        } else {
            // A URL's credentials and query are hidden here as in every other message.
            format!("{:?}", super::mask::mask_urls(&value.text))
        };
        let message = format!("{shown} is not valid: expected {}", problem.accepted());
        return Err(error_at(value.span.clone(), value.key, message));
    }
    Ok(settings)
}

#[cfg(feature = "config-file")]
/// Every leaf of the document as (dotted key, key span, value). Tables named in [`KEYS`] with a table
/// shape are leaves themselves.
fn flatten<'a>(prefix: &str, table: &'a DeTable<'a>, out: &mut Vec<(String, Range<usize>, &'a Spanned<DeValue<'a>>)>) {
    for (key, value) in table {
        let path = if prefix.is_empty() { key.get_ref().to_string() } else { format!("{prefix}.{}", key.get_ref()) };
        let is_table_leaf = KEYS.iter().any(|k| k.path == path && matches!(k.shape, Shape::Table(_)));
        match value.get_ref() {
            DeValue::Table(inner) if !is_table_leaf => flatten(&path, inner, out),
            _ => out.push((path, key.span(), value)),
        }
    }
}

#[cfg(feature = "config-file")]
/// The accepted keys under the same section as `unknown` (all keys when the section is unknown too).
fn accepted_keys(unknown: &str) -> String {
    let section = unknown.rsplit_once('.').map(|(s, _)| s);
    let in_section: Vec<&str> = KEYS
        .iter()
        .map(|k| k.path)
        .filter(|p| section.is_some_and(|s| p.rsplit_once('.').is_some_and(|(ps, _)| ps == s)))
        .collect();
    let list: Vec<&str> = if in_section.is_empty() { KEYS.iter().map(|k| k.path).collect() } else { in_section };
    list.join(", ")
}

#[cfg(feature = "config-file")]
/// The value in its variable's text form, or what the key accepts.
fn to_variable_text(shape: Shape, value: &DeValue<'_>) -> Result<String, String> {
    match (shape, value) {
        (Shape::Text, DeValue::String(s)) => Ok(s.to_string()),
        (Shape::Text, _) => Err(format!("a string, found {}", value.type_str())),
        (Shape::Bool, DeValue::Boolean(b)) => Ok(b.to_string()),
        (Shape::Bool, _) => Err(format!("true or false, found {}", value.type_str())),
        (Shape::Whole, DeValue::Integer(i)) => match i.as_str().replace('_', "").parse::<u64>() {
            Ok(n) if i.radix() == 10 => Ok(n.to_string()),
            _ => Err(format!("a whole number 0 or more, found {}", i.as_str())),
        },
        (Shape::Whole, _) => Err(format!("a whole number, found {}", value.type_str())),
        (Shape::NumberOrText, DeValue::Integer(i)) => Ok(i.as_str().replace('_', "")),
        (Shape::NumberOrText, DeValue::Float(f)) => Ok(f.as_str().replace('_', "")),
        (Shape::NumberOrText, DeValue::String(s)) => Ok(s.to_string()),
        (Shape::NumberOrText, _) => Err(format!("a number or a string, found {}", value.type_str())),
        (Shape::List(separator), DeValue::Array(items)) => {
            let mut parts = Vec::with_capacity(items.len());
            for item in items.iter() {
                match item.get_ref() {
                    DeValue::String(s) if !s.contains(separator) => parts.push(s.to_string()),
                    DeValue::String(_) => return Err(format!("strings without {separator:?} in them")),
                    other => return Err(format!("an array of strings, found an array holding {}", other.type_str())),
                }
            }
            Ok(parts.join(separator))
        }
        (Shape::List(_), _) => Err(format!("an array of strings, found {}", value.type_str())),
        (Shape::Table(separator), DeValue::Table(entries)) => {
            let mut parts = Vec::with_capacity(entries.len());
            for (name, entry) in entries {
                let DeValue::String(text) = entry.get_ref() else {
                    return Err(format!(
                        "a table of strings, found {} under {:?}",
                        entry.get_ref().type_str(),
                        name.get_ref()
                    ));
                };
                // The environment forms percent-decode (headers, resource attributes) or split on `;`
                // (redaction values): encode what would be read back differently.
                let text = if separator == "," { percent_encode(text) } else { text.to_string() };
                if separator == ";" && text.contains(';') {
                    return Err("patterns without ';' in them".to_owned());
                }
                parts.push(format!("{}={text}", name.get_ref()));
            }
            Ok(parts.join(separator))
        }
        (Shape::Table(_), _) => Err(format!("a table of strings, found {}", value.type_str())),
    }
}

#[cfg(feature = "config-file")]
/// `%`, `,`, `=` and control characters as `%XX`, so the `k=v,…` parser reads the value back unchanged.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | ',' | '=') || c.is_ascii_control() {
            out.push_str(&format!("%{:02X}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(feature = "config-file")]
/// 1-based line and column (in characters) of a byte offset.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Where a setting's value came from.
///
/// ```
/// use kotaemon_trace::config::{Config, Origin};
///
/// let config = Config::from_env();
/// let origin = config.origin("OTEL_BSP_MAX_QUEUE_SIZE");
/// assert!(matches!(origin, Origin::Env { .. } | Origin::Default));
/// assert_eq!(Origin::Env { variable: "OTEL_SERVICE_NAME".into() }.to_string(), "env OTEL_SERVICE_NAME");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// The environment variable `variable`.
    Env {
        /// The variable's name: for a setting that several variables can set, the one that won.
        variable: String,
    },
    /// The configuration file, at this key and line.
    File {
        /// The file.
        path: PathBuf,
        /// The dotted key.
        key: &'static str,
        /// The line, from 1.
        line: usize,
    },
    /// Not set anywhere: the default.
    Default,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Env { variable } => write!(f, "env {variable}"),
            Origin::File { path, key, line } => write!(f, "file {}:{line} ({key})", path.display()),
            Origin::Default => f.write_str("default"),
        }
    }
}

/// Environment over file over defaults. An invalid environment value falls back to the file's value for
/// that setting when there is one (else to the default), and its problem says which.
pub(crate) fn load_with(get_env: impl Fn(&str) -> Option<String>, file: FileSettings) -> Config {
    let read = |ignored: &[String]| {
        let origins = std::cell::RefCell::new(BTreeMap::new());
        let mut config = env::from_lookup(|name| {
            // The origin is recorded as the value is handed to the parser, so it names exactly the variable
            // the parser used (the first set one of a list). Empty and oversized values are not used: the
            // parser treats them as unset, or refuses them as a problem, so they are no origin.
            let usable = |v: &String| !v.trim().is_empty() && v.len() <= env::MAX_VALUE_LEN;
            let from_env = get_env(name).filter(|v| !v.trim().is_empty() && !ignored.iter().any(|i| i == name));
            if let Some(value) = from_env {
                if usable(&value) {
                    origins.borrow_mut().insert(name.to_owned(), Origin::Env { variable: name.to_owned() });
                }
                return Some(value);
            }
            let value = file.values.get(name)?;
            if usable(&value.text) {
                let path = file.path.clone().unwrap_or_default();
                origins.borrow_mut().insert(name.to_owned(), Origin::File { path, key: value.key, line: value.line });
            }
            Some(value.text.clone())
        });
        config.origins = std::sync::Arc::new(origins.into_inner());
        config
    };
    let config = read(&[]);
    let overridden: Vec<String> = config
        .problems
        .iter()
        .map(|p| p.variable().to_owned())
        .filter(|v| file.values.contains_key(v.as_str()))
        .collect();
    if overridden.is_empty() {
        return config;
    }
    let mut problems = config.problems;
    for problem in &mut problems {
        if let Some(value) = file.values.get(problem.variable()) {
            problem.fallback = format!("{} from the configuration file", value.key);
        }
    }
    let mut config = read(&overridden);
    config.problems = problems;
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Result<FileSettings, ConfigFileError> {
        parse(text, Path::new("kotaemon-trace.toml"))
    }

    #[test]
    fn every_key_maps_to_a_variable_the_environment_parser_reads() {
        let text = r#"
            disabled = false
            propagators = ["tracecontext", "baggage", "b3"]
            [service]
            name = "rag-api"
            resource_attributes = { "deployment.environment" = "prod", "team" = "a,b=c" }
            [exporter]
            kind = "otlp"
            endpoint = "http://127.0.0.1:4317"
            protocol = "grpc"
            headers = { "x-api-key" = "k-123" }
            timeout_ms = 2_500
            compression = "gzip"
            [sampler]
            name = "parentbased_traceidratio"
            arg = 0.25
            [batch]
            max_queue_size = 4096
            [limits]
            attribute_value_length = 512
            [debug]
            header = "x-force-trace"
            per_second = 2
            [redaction]
            keys = ["^x-internal-"]
            values = { employee_id = 'EMP-\d{6}' }
            [content]
            capture = true
            max_chars = 100
            [jaeger]
            query_url = "http://127.0.0.1:16686"
        "#;
        let settings = check(text).unwrap();
        let config = load_with(|_| None, settings);
        assert!(config.problems().is_empty(), "{:?}", config.problems());
        assert_eq!(config.service_name(), "rag-api");
        assert!(config.resource_attributes.contains(&("team".to_owned(), "a,b=c".to_owned())));
        assert_eq!(config.otlp().endpoint, "http://127.0.0.1:4317");
        assert_eq!(config.otlp().headers, vec![("x-api-key".to_owned(), "k-123".to_owned())]);
        assert_eq!(config.otlp().timeout, std::time::Duration::from_millis(2500));
        assert_eq!(config.batch().max_queue_size, 4096);
        assert_eq!(config.debug().header, "x-force-trace");
        assert!(config.content().enabled);
        assert_eq!(config.jaeger_query_url(), Some("http://127.0.0.1:16686"));
        assert_eq!(
            config.origin("OTEL_SERVICE_NAME"),
            Origin::File { path: "kotaemon-trace.toml".into(), key: "service.name", line: 5 }
        );
    }

    #[test]
    fn unknown_keys_are_refused_with_their_line_and_the_keys_of_their_section() {
        let error = check("[exporter]\nendpont = \"http://x\"\n").unwrap_err();
        assert_eq!((error.line(), error.column(), error.key()), (2, 1, "exporter.endpont"));
        assert!(error.problem().contains("exporter.endpoint"), "{error}");
        let error = check("[exportr]\nendpoint = \"http://x\"\n").unwrap_err();
        assert_eq!(error.key(), "exportr.endpoint");
    }

    #[test]
    fn wrong_types_and_bad_values_name_key_value_and_what_is_accepted() {
        let error = check("[exporter]\ntimeout_ms = \"ten seconds\"\n").unwrap_err();
        assert_eq!((error.line(), error.key()), (2, "exporter.timeout_ms"));
        assert_eq!(error.problem(), "expected a whole number, found string");
        let error = check("[exporter]\nprotocol = \"grcp\"\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "kotaemon-trace.toml:2:12: exporter.protocol: \"grcp\" is not valid: expected grpc or http/protobuf (http/json is not supported)"
        );
        let error = check("propagators = [\"tracecontext\", 3]").unwrap_err();
        assert!(error.problem().contains("array of strings"), "{error}");
        let error = check("[batch]\nmax_queue_size = -1\n").unwrap_err();
        assert!(error.problem().contains("0 or more"), "{error}");
    }

    #[test]
    fn secret_values_never_appear_in_errors() {
        let error = check("[exporter]\nheaders = { \"authorization\" = \"Bearer s3cr3t\", \"bad header\" = \"x\" }\n");
        if let Err(error) = error {
            assert!(!error.to_string().contains("s3cr3t"), "{error}");
        }
        let error = check("[exporter]\nheaders = \"authorization=Bearer s3cr3t\"\n").unwrap_err();
        assert!(!error.to_string().contains("s3cr3t"), "{error}");
        let error = check("[exporter]\nendpoint = \"ftp://user:pa55@collector:4318/?token=t0k\"\n").unwrap_err();
        assert!(error.to_string().contains("\"ftp://***@collector:4318/?***\" is not valid"), "{error}");
    }

    #[test]
    fn syntax_errors_point_at_the_line() {
        let error = check("[service]\nname = \"unterminated\n").unwrap_err();
        assert_eq!(error.line(), 2);
        assert!(error.problem().starts_with("is not valid TOML"), "{error}");
    }

    #[test]
    fn environment_beats_file_beats_default() {
        let settings = check("[service]\nname = \"from-file\"\n[batch]\nmax_queue_size = 4096\n").unwrap();
        let env = |name: &str| (name == "OTEL_SERVICE_NAME").then(|| "from-env".to_owned());
        let config = load_with(env, settings);
        assert_eq!(config.service_name(), "from-env");
        assert_eq!(config.origin("OTEL_SERVICE_NAME"), Origin::Env { variable: "OTEL_SERVICE_NAME".into() });
        assert_eq!(config.batch().max_queue_size, 4096);
        assert!(matches!(config.origin("OTEL_BSP_MAX_QUEUE_SIZE"), Origin::File { line: 4, .. }));
        assert_eq!(config.batch().max_export_batch_size, 512);
        assert_eq!(config.origin("OTEL_BSP_MAX_EXPORT_BATCH_SIZE"), Origin::Default);
    }

    #[test]
    fn an_invalid_environment_value_falls_back_to_the_file_not_the_default() {
        let settings = check("[sampler]\nname = \"traceidratio\"\narg = 0.25\n").unwrap();
        let env = |name: &str| (name == "OTEL_TRACES_SAMPLER").then(|| "sometimes".to_owned());
        let config = load_with(env, settings);
        assert_eq!(config.sampler(), &super::super::Sampler::TraceIdRatio(0.25));
        assert!(matches!(config.origin("OTEL_TRACES_SAMPLER"), Origin::File { .. }));
        assert_eq!(config.problems().len(), 1);
        assert_eq!(config.problems()[0].fallback(), "sampler.name from the configuration file");
    }
}
