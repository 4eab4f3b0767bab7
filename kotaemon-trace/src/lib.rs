//! Production distributed tracing for RAG and LLM-agent services.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod global;
pub mod semconv;
mod span;
mod value;

pub use kotaemon_trace_macros::trace_with_otel;
pub use span::{record, InCurrentSpan, Instrumented};
pub use value::{debug, DebugValue, TypedValue};

/// Support for the code `#[trace_with_otel]` generates. Not a public API: names here change without
/// notice. Generated code reaches everything through `::kotaemon_trace::__private::…`, so a user's own
/// module named `opentelemetry` or `kotaemon_trace` cannot break an expansion.
#[doc(hidden)]
pub mod __private {
    pub use crate::span::{ActiveSpan, Attributes, Callsite, SpanGuard};
    pub use crate::value::{Probe, ViaDebug, ViaNothing, ViaTyped};
    pub use opentelemetry::trace::SpanKind;
    pub use opentelemetry::Value;

    /// Forces a closure to be `FnOnce`, so a body that returns a reference into its captured arguments
    /// borrow-checks as it did before it was wrapped.
    #[inline(always)]
    pub fn call_once<R>(f: impl FnOnce() -> R) -> R {
        f()
    }
}
