//! Attribute names used by the library, in one place so that spans, tests and docs agree.

/// The return value recorded by the `ret` option (OpenInference's name).
pub const OUTPUT_VALUE: &str = "output.value";
/// The length in characters of a model call's result recorded without its text (content capture off).
pub const OUTPUT_LENGTH: &str = "output.length";
/// The message of a recorded error or panic (OTel semantic conventions).
pub const EXCEPTION_MESSAGE: &str = "exception.message";
/// The Rust type of a recorded error (OTel semantic conventions).
pub const EXCEPTION_TYPE: &str = "exception.type";
/// Set by `sample = "always"` (`1`) and `sample = "never"` (`0`); read by the sampler (OpenTracing's
/// `sampling.priority` convention).
pub const SAMPLING_PRIORITY: &str = "sampling.priority";
/// `true` on spans recorded because their request carried the debug header.
pub const DEBUG_FORCED: &str = "kotaemon.debug_forced";
/// `true` on the `exception` event of a panic that escaped the span (OTel semantic conventions).
pub const EXCEPTION_ESCAPED: &str = "exception.escaped";
/// `true` on a span whose future was dropped before it completed (a timeout, a lost `select!`).
pub const CANCELLED: &str = "kotaemon.cancelled";
/// OpenInference's step kind: `LLM`, `RETRIEVER`, `TOOL`… (the macro's `kind` option).
pub const OPENINFERENCE_SPAN_KIND: &str = "openinference.span.kind";
/// The OTel GenAI operation: `chat`, `embeddings`, `execute_tool`, `invoke_agent`, `retrieval`.
pub const GEN_AI_OPERATION_NAME: &str = "gen_ai.operation.name";
