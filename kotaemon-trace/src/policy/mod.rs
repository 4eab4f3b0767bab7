//! Pure decisions, made from configuration: what to redact, what to sample, how contexts are written
//! into and read from headers.

pub(crate) mod propagation;
#[cfg(feature = "sdk")]
pub(crate) mod redact;
pub(crate) mod sampling;
