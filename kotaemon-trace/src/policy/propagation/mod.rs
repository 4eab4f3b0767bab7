//! The propagation formats `OTEL_PROPAGATORS` names, composed in the configured order. Each is written
//! here, to its own specification: `tracecontext` (W3C Trace Context), `baggage` (W3C Baggage), `b3` and
//! `b3multi` (Zipkin B3), `jaeger` (`uber-trace-id`, `uberctx-*`).

pub(crate) mod b3;
pub(crate) mod baggage;
pub(crate) mod jaeger;
pub(crate) mod w3c;

use crate::config::Propagator;
use opentelemetry::propagation::{TextMapCompositePropagator, TextMapPropagator};

/// The composite propagator for a configured list.
pub(crate) fn composite(propagators: &[Propagator]) -> TextMapCompositePropagator {
    let list: Vec<Box<dyn TextMapPropagator + Send + Sync>> = propagators
        .iter()
        .map(|p| -> Box<dyn TextMapPropagator + Send + Sync> {
            match p {
                Propagator::TraceContext => Box::new(w3c::TraceContextPropagator::new()),
                Propagator::Baggage => Box::new(baggage::BaggagePropagator::new()),
                Propagator::B3 => Box::new(b3::B3Propagator::single()),
                Propagator::B3Multi => Box::new(b3::B3Propagator::multi()),
                Propagator::Jaeger => Box::new(jaeger::JaegerPropagator::new()),
            }
        })
        .collect();
    TextMapCompositePropagator::new(list)
}
