//! Attribute names used by the library, in one place so that spans, tests and docs agree.

/// The return value recorded by the `ret` option (OpenInference's name).
pub const OUTPUT_VALUE: &str = "output.value";
/// The message of a recorded error or panic (OTel semantic conventions).
pub const EXCEPTION_MESSAGE: &str = "exception.message";
/// The Rust type of a recorded error (OTel semantic conventions).
pub const EXCEPTION_TYPE: &str = "exception.type";
