//! Ready-made instrumentation of HTTP and gRPC stacks, each behind its own cargo feature (off by default):
//!
//! | feature | module | what it traces |
//! |---|---|---|
//! | `tower` | `integrations::tower` | every request a server answers (axum, hyper, tonic): a SERVER span continuing the caller's trace |
//! | `reqwest` | `integrations::reqwest` | every request a `reqwest-middleware` client sends: a CLIENT span, its context in the headers |
//! | `tonic` | `integrations::tonic` | every call a tonic client makes: a CLIENT span, its context in the metadata |
//!
//! They use the configured propagators (`OTEL_PROPAGATORS`) and honour the debug header
//! (`KOTAEMON_TRACE_DEBUG_HEADER`) as [`crate::propagation`] does, follow the configured sampler, and
//! record each request in the RED metrics when a metrics exporter runs. Without a running pipeline they
//! only carry the context along.

#[cfg(any(feature = "tower", feature = "reqwest"))]
mod exchange;
#[cfg(feature = "reqwest")]
pub mod reqwest;
#[cfg(feature = "tonic")]
pub mod tonic;
#[cfg(feature = "tower")]
pub mod tower;
