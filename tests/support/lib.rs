//! Helpers shared by the integration tests.

pub mod capture;
pub mod jaeger;
pub mod prometheus;
pub mod receiver;
