//! What runs in every annotated call: the installed pipeline's state as the hot path reads it, the
//! per-thread mirror of the current context, our own span recorder, and the span guards the macro uses.

pub(crate) mod current;
pub(crate) mod recorder;
pub(crate) mod span;
pub(crate) mod state;
