use std::fmt;

/// An invalid configuration value that was replaced by its default.
///
/// Its `Display` names the variable, the bad value, what is accepted and what is used instead, e.g.
/// `OTEL_TRACES_SAMPLER="sometimes" is not valid: expected one of always_on, …; using parentbased_always_on`.
/// Values of secret-bearing variables (`OTEL_EXPORTER_OTLP_HEADERS`, `KOTAEMON_TRACE_REDACTION_KEY`) are
/// never shown, nor the password of a URL.
///
/// ```
/// let config = kotaemon_trace::config::Config::from_env();
/// assert!(config.problems().iter().all(|p| !p.variable().is_empty()));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigProblem {
    pub(crate) variable: String,
    pub(crate) value: String,
    pub(crate) accepted: String,
    pub(crate) fallback: String,
}

impl ConfigProblem {
    pub(crate) fn new(variable: &str, value: &str, accepted: impl Into<String>, fallback: impl Into<String>) -> Self {
        ConfigProblem {
            variable: variable.to_owned(),
            // A URL's password never reaches a message, whatever variable it came in.
            value: super::mask::mask_urls(value).into_owned(),
            accepted: accepted.into(),
            fallback: fallback.into(),
        }
    }

    /// The variable (or builder option) that held the bad value.
    pub fn variable(&self) -> &str {
        &self.variable
    }

    /// The value as given (masked for secret-bearing variables).
    pub fn value(&self) -> &str {
        &self.value
    }

    /// What the variable accepts.
    pub fn accepted(&self) -> &str {
        &self.accepted
    }

    /// What is used instead.
    pub fn fallback(&self) -> &str {
        &self.fallback
    }
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}={:?} is not valid: expected {}; using {}",
            self.variable, self.value, self.accepted, self.fallback
        )
    }
}

impl std::error::Error for ConfigProblem {}
