//! Helpers shared by the integration tests.

pub mod jaeger;
pub mod receiver;
