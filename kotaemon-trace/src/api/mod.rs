//! Helpers users call over the hot path: GenAI attributes, propagation, pseudonyms, and logs.

pub mod genai;
#[cfg(feature = "tracing")]
pub mod logs;
#[cfg(feature = "otlp-logs")]
pub(crate) mod logs_otlp;
pub mod metrics;
pub mod propagation;
pub mod redact;
