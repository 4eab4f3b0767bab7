//! `#[trace_with_otel]` at run time: names, typed attributes, options, and every function shape, checked
//! on the spans the real pipeline exports (SDK in-memory exporter).

mod async_fns;
mod failures;
mod options;
mod shapes;
mod values;
