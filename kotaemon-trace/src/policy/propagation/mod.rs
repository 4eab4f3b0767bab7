//! The propagation formats `OTEL_PROPAGATORS` names, composed in the configured order.

pub(crate) mod b3;
pub(crate) mod jaeger;

use crate::config::Propagator;
use opentelemetry::propagation::{TextMapCompositePropagator, TextMapPropagator};

/// The composite propagator for a configured list.
pub(crate) fn composite(propagators: &[Propagator]) -> TextMapCompositePropagator {
    let list: Vec<Box<dyn TextMapPropagator + Send + Sync>> = propagators
        .iter()
        .map(|p| -> Box<dyn TextMapPropagator + Send + Sync> {
            match p {
                Propagator::TraceContext => Box::new(opentelemetry_sdk::propagation::TraceContextPropagator::new()),
                Propagator::Baggage => Box::new(opentelemetry_sdk::propagation::BaggagePropagator::new()),
                Propagator::B3 => Box::new(b3::B3Propagator::single()),
                Propagator::B3Multi => Box::new(b3::B3Propagator::multi()),
                Propagator::Jaeger => Box::new(jaeger::JaegerPropagator::new()),
            }
        })
        .collect();
    TextMapCompositePropagator::new(list)
}
