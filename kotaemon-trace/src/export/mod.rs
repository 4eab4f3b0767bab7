//! The exporters the export thread drives (through `base::ports::DynExporter`), the export thread
//! itself, and the metric exporters.

#[cfg(feature = "sdk")]
pub(crate) mod console;
#[cfg(feature = "sdk")]
pub(crate) mod finish;
#[cfg(feature = "jaeger-remote")]
pub(crate) mod jaeger_remote;
pub(crate) mod metrics;
#[cfg(any(feature = "otlp-grpc", feature = "otlp-http"))]
pub(crate) mod otlp;
#[cfg(any(feature = "otlp-grpc", feature = "otlp-http"))]
pub(crate) mod otlp_wire;
#[cfg(feature = "sdk")]
pub(crate) mod processor;
pub(crate) mod queue;
pub(crate) mod record;
#[cfg(feature = "sdk")]
pub(crate) mod secret;
#[cfg(any(feature = "otlp-grpc", feature = "otlp-http"))]
pub(crate) mod transport;

#[cfg(feature = "sdk")]
use crate::config::Config;
#[cfg(feature = "sdk")]
use opentelemetry::KeyValue;
#[cfg(feature = "sdk")]
use opentelemetry_sdk::Resource;
#[cfg(feature = "sdk")]
use opentelemetry_sdk::error::OTelSdkResult;
#[cfg(feature = "sdk")]
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

/// `OTEL_TRACES_EXPORTER=none`: spans are created and propagate context, and are then discarded.
#[cfg(feature = "sdk")]
#[derive(Debug, Default)]
pub(crate) struct DiscardExporter;

#[cfg(feature = "sdk")]
impl SpanExporter for DiscardExporter {
    async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
        Ok(())
    }
}

/// The resource every signal is exported with: `OTEL_RESOURCE_ATTRIBUTES` and the service name.
#[cfg(feature = "sdk")]
pub(crate) fn resource(config: &Config) -> Resource {
    let attributes = config
        .resource_attributes
        .iter()
        .filter(|(k, _)| k != "service.name")
        .map(|(k, v)| KeyValue::new(k.clone(), v.clone()));
    Resource::builder_empty()
        .with_detector(Box::new(opentelemetry_sdk::resource::TelemetryResourceDetector))
        .with_attributes(attributes)
        .with_service_name(config.service_name())
        .build()
}
