//! Errors of [`crate::init`] and [`crate::TraceGuard::shutdown`].

use std::fmt;
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
    /// The configuration file is wrong (see [`crate::Config::load`]); nothing was started.
    ConfigFile(crate::ConfigFileError),
    /// The exporter could not be built.
    Exporter(String),
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
            InitError::Exporter(why) => write!(f, "the trace exporter could not be built: {why}"),
            InitError::Io(e) => write!(f, "the export thread could not be started: {e}"),
        }
    }
}

impl std::error::Error for InitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            InitError::Io(e) => Some(e),
            InitError::ConfigFile(e) => Some(e),
            _ => None,
        }
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
