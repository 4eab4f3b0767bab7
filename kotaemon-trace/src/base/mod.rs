//! Leaves: values, clock, ids, errors, semantic names, call sites, the interfaces upper layers implement.
//! Nothing here uses another layer.

pub(crate) mod callsite;
pub(crate) mod clock;
pub(crate) mod error;
pub(crate) mod histogram;
pub(crate) mod ids;
pub(crate) mod panics;
pub(crate) mod ports;
pub mod semconv;
pub(crate) mod value;
