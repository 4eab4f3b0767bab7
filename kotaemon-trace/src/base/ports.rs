//! The interfaces the upper layers implement and the lower ones call: an object-safe span exporter (so a
//! user's exporter can sit in the configuration) and the text policy (redaction and pseudonyms) the
//! installed pipeline lends to the helpers.

use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub(crate) type ExportFuture<'a> = Pin<Box<dyn Future<Output = OTelSdkResult> + 'a>>;

/// [`SpanExporter`] is not object safe (its `export` returns `impl Future`); this is.
pub(crate) trait DynExporter: Send + Sync + Debug {
    fn export(&self, batch: Vec<SpanData>) -> ExportFuture<'_>;
    fn shutdown(&self, timeout: Duration) -> OTelSdkResult;
    fn set_resource(&self, resource: &Resource);
}

/// Holds the exporter behind a mutex only for the rare `&mut self` call (`set_resource`); exports take
/// the lock just long enough to start the future, from the single export thread.
struct Boxed<E>(Mutex<E>);

/// The exporter's type only: the OTLP HTTP exporter's own `Debug` prints its request headers, credentials
/// included, and the provider (reachable through `tracer()`) prints its processors.
impl<E> Debug for Boxed<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Exporter({})", std::any::type_name::<E>())
    }
}

impl<E: SpanExporter + 'static> DynExporter for Boxed<E> {
    // Only the export thread exports, one batch at a time, and `set_resource` runs before the first
    // export: the lock is never contended while held across the await.
    #[allow(clippy::await_holding_lock)]
    fn export(&self, batch: Vec<SpanData>) -> ExportFuture<'_> {
        Box::pin(async move {
            // The export future borrows the exporter; holding the guard across it is fine because only the
            // batch processor's thread ever exports.
            let exporter = match self.0.lock() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            exporter.export(batch).await
        })
    }

    fn shutdown(&self, timeout: Duration) -> OTelSdkResult {
        match self.0.lock() {
            Ok(exporter) => exporter.shutdown_with_timeout(timeout),
            Err(poisoned) => poisoned.into_inner().shutdown_with_timeout(timeout),
        }
    }

    fn set_resource(&self, resource: &Resource) {
        match self.0.lock() {
            Ok(mut exporter) => exporter.set_resource(resource),
            Err(poisoned) => poisoned.into_inner().set_resource(resource),
        }
    }
}

pub(crate) fn boxed<E: SpanExporter + 'static>(exporter: E) -> Arc<dyn DynExporter> {
    Arc::new(Boxed(Mutex::new(exporter)))
}

/// What the helpers need of the redactor: content text redacted, and pseudonyms for `redact(arg)`.
pub(crate) trait TextPolicy: Send + Sync + Debug {
    /// `value` as it may be exported under `key`.
    fn redact<'a>(&self, key: &str, value: &'a str) -> std::borrow::Cow<'a, str>;
    /// The stable pseudonym of `value`.
    fn pseudonym(&self, value: &str) -> String;
}
