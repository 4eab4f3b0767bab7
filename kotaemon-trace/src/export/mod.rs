//! The exporters the export thread drives (through `base::ports::DynExporter`), the export thread
//! itself, and the metric exporters.

pub(crate) mod console;
pub(crate) mod finish;
pub(crate) mod jaeger_remote;
pub(crate) mod metrics;
pub(crate) mod otlp;
pub(crate) mod processor;
pub(crate) mod queue;
pub(crate) mod record;
pub(crate) mod secret;

use crate::config::Config;
use opentelemetry::KeyValue;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

/// `OTEL_TRACES_EXPORTER=none`: spans are created and propagate context, and are then discarded.
#[derive(Debug, Default)]
pub(crate) struct DiscardExporter;

impl SpanExporter for DiscardExporter {
    async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
        Ok(())
    }
}

/// The resource every signal is exported with: `OTEL_RESOURCE_ATTRIBUTES` and the service name.
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
