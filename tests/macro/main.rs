//! `#[trace_with_otel]` at run time: names, typed attributes, options, and every function shape, checked
//! on the spans the real pipeline exports (SDK in-memory exporter).

mod async_fns;
mod failures;
mod options;
mod shapes;
mod values;

/// The trybuild "pass" crate of every shape, compiled here too so clippy checks it, and run.
#[path = "../ui/pass/every_shape_without_warnings.rs"]
mod every_shape;

#[test]
fn every_shape_runs() {
    every_shape::main();
}
