//! Capturing the spans a piece of code produces: the runtime's own `testing` helper, which users call in
//! their tests too, so the suite exercises exactly what they get.

pub use kotaemon_trace::testing::{attr, capture, capture_async, named, spans_in, spans_linked_to};
