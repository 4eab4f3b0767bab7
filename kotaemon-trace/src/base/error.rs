//! Errors of [`crate::init`] and [`crate::wiring::guard::TraceGuard::shutdown`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Why the pipeline could not be started. Invalid *environment* values never cause this (they are
/// reported and replaced by defaults); invalid values given in Rust, and system failures, do.
#[derive(Debug)]
#[non_exhaustive]
pub enum InitError {
    /// An option has a value that cannot be used.
    Invalid {
        /// The variable or builder option.
        option: String,
        /// The value given (secrets masked).
        value: String,
        /// What the option accepts.
        accepted: String,
    },
    /// The configuration file is wrong (see [`crate::config::Config::load`]); nothing was started.
    ConfigFile(ConfigFileError),
    /// The exporter could not be built; the source is the exporter's own error.
    Exporter(ExporterError),
    /// A thread or the export runtime could not be started.
    Io(std::io::Error),
}

impl InitError {
    pub(crate) fn invalid(option: &str, value: &str, accepted: &str) -> Self {
        InitError::Invalid { option: option.to_owned(), value: value.to_owned(), accepted: accepted.to_owned() }
    }
}

impl fmt::Display for InitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InitError::Invalid { option, value, accepted } => {
                write!(f, "{option}={value:?} is not valid: expected {accepted}")
            }
            InitError::ConfigFile(e) => write!(f, "the configuration file is refused: {e}"),
            InitError::Exporter(e) => write!(f, "the exporter could not be built: {e}"),
            InitError::Io(e) => write!(f, "the export thread could not be started: {e}"),
        }
    }
}

impl std::error::Error for InitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InitError::Io(e) => Some(e),
            InitError::ConfigFile(e) => Some(e),
            InitError::Exporter(e) => Some(e),
            _ => None,
        }
    }
}

/// An exporter's error and its chain of causes, each as text with the configured secrets (header
/// values, URL passwords) already scrubbed: exporter errors often quote the request, and these texts are
/// printed and returned.
///
/// ```
/// use kotaemon_trace::config::{Config, ExporterKind};
///
/// // Every cause of an `init` failure, outermost first; an exporter's own errors come as its chain.
/// fn causes(error: &kotaemon_trace::InitError) -> Vec<String> {
///     let mut causes = vec![error.to_string()];
///     let mut source = std::error::Error::source(error);
///     while let Some(cause) = source {
///         causes.push(cause.to_string());
///         source = cause.source();
///     }
///     causes
/// }
///
/// // An endpoint no client can send to fails at `init`, and the error names the variable.
/// let config = Config::builder().exporter(ExporterKind::Otlp).otlp_endpoint("http://[::1").build();
/// let error = kotaemon_trace::init_with(config).unwrap_err();
/// assert!(causes(&error)[0].contains("OTEL_EXPORTER_OTLP_ENDPOINT"), "{error}");
/// ```
#[derive(Debug)]
pub struct ExporterError {
    message: String,
    source: Option<Box<ExporterError>>,
}

impl ExporterError {
    /// `error` and its sources, each passed through `scrub`.
    #[cfg_attr(not(feature = "otlp-logs"), allow(dead_code))]
    pub(crate) fn scrubbed(error: &(dyn std::error::Error + 'static), scrub: &dyn Fn(&str) -> String) -> Self {
        ExporterError {
            message: scrub(&error.to_string()),
            source: error.source().map(|source| Box::new(ExporterError::scrubbed(source, scrub))),
        }
    }
}

impl fmt::Display for ExporterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ExporterError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<std::io::Error> for InitError {
    fn from(e: std::io::Error) -> Self {
        InitError::Io(e)
    }
}

/// What went wrong while flushing and shutting down. Spans may have been lost; the counts say how many.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ShutdownError {
    /// Flushing did not finish within the timeout; spans still queued are lost.
    Timeout(Duration),
    /// The last export failed (e.g. the collector is unreachable).
    Export(String),
    /// Some spans were dropped or failed to export during the run.
    SpansLost {
        /// Spans dropped because the export queue was full.
        dropped: u64,
        /// Spans whose export failed.
        failed: u64,
    },
}

impl fmt::Display for ShutdownError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShutdownError::Timeout(t) => write!(f, "flushing spans did not finish within {} ms", t.as_millis()),
            ShutdownError::Export(why) => write!(f, "the final export failed: {why}"),
            ShutdownError::SpansLost { dropped, failed } => write!(
                f,
                "{dropped} spans were dropped because the export queue was full and {failed} failed to export"
            ),
        }
    }
}

impl std::error::Error for ShutdownError {}

/// A configuration file that cannot be used, and why.
///
/// Its `Display` names the file, the line and column, the key, the value and what is accepted:
///
/// ```
/// use kotaemon_trace::config::Config;
///
/// let dir = std::env::temp_dir().join(format!("kt-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir).unwrap();
/// let path = dir.join("kotaemon-trace.toml");
/// std::fs::write(&path, "[sampler]\nname = \"sometimes\"\n").unwrap();
///
/// let error = Config::load_from(&path).unwrap_err();
/// assert_eq!((error.line(), error.key()), (2, "sampler.name"));
/// assert!(error.to_string().contains("\"sometimes\" is not valid: expected one of always_on"));
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigFileError {
    pub(crate) path: PathBuf,
    pub(crate) line: usize,
    pub(crate) column: usize,
    pub(crate) key: String,
    pub(crate) problem: String,
}

impl ConfigFileError {
    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The line of the offending key or value, from 1 (0 when the file could not be read at all).
    pub fn line(&self) -> usize {
        self.line
    }

    /// The column, from 1 (0 when the file could not be read at all).
    pub fn column(&self) -> usize {
        self.column
    }

    /// The dotted key (`sampler.name`), empty for a syntax error outside any key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// What is wrong and what is accepted.
    pub fn problem(&self) -> &str {
        &self.problem
    }
}

impl fmt::Display for ConfigFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if self.key.is_empty() {
            write!(f, ": {}", self.problem)
        } else {
            write!(f, ": {}: {}", self.key, self.problem)
        }
    }
}

impl std::error::Error for ConfigFileError {}
