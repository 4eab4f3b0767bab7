//! The OTLP exporter (gRPC or HTTP/protobuf), built from [`OtlpConfig`].
//!
//! Both transports are async clients (tonic, reqwest). They are built inside, and driven by, the
//! library's own small tokio runtime, so `init()` works the same from a plain `fn main`, from inside
//! `#[tokio::main]` (current-thread or multi-thread), and never needs the user's runtime.

use crate::base::error::{ExporterError, InitError};
use crate::config::{Compression, Protocol};
use crate::export::transport::Transport;
use opentelemetry_otlp::WithExportConfig;
#[cfg(feature = "otlp-http")]
use opentelemetry_otlp::WithHttpConfig;
#[cfg(feature = "otlp-grpc")]
use opentelemetry_otlp::WithTonicConfig;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
#[cfg(feature = "otlp-http")]
use std::collections::HashMap;

/// The span exporter over `transport` (built inside `runtime`, whose reactor drives it).
pub(crate) fn build(transport: &Transport, runtime: &tokio::runtime::Runtime) -> Result<Explained, InitError> {
    // tonic's lazy channel spawns its worker onto the runtime that is current while it is built.
    let _entered = runtime.enter();
    let config = &transport.config;
    let built = match config.protocol {
        #[cfg(not(feature = "otlp-grpc"))]
        Protocol::Grpc => return Err(missing("grpc", "otlp-grpc")),
        #[cfg(feature = "otlp-grpc")]
        Protocol::Grpc => {
            let mut builder = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(config.endpoint.clone())
                .with_protocol(opentelemetry_otlp::Protocol::Grpc)
                .with_timeout(config.timeout)
                .with_metadata(crate::export::transport::metadata(config)?);
            if let Some(channel) = transport.grpc() {
                builder = builder.with_channel(channel.clone());
            }
            if config.compression == Compression::Gzip {
                builder = builder.with_compression(opentelemetry_otlp::Compression::Gzip);
            }
            builder.build()
        }
        #[cfg(not(feature = "otlp-http"))]
        Protocol::HttpProtobuf => return Err(missing("http/protobuf", "otlp-http")),
        #[cfg(feature = "otlp-http")]
        Protocol::HttpProtobuf => {
            let headers: HashMap<String, String> = config.headers.iter().cloned().collect();
            let mut builder = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(config.endpoint.clone())
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_timeout(config.timeout)
                .with_headers(headers);
            if let Some(client) = transport.http() {
                builder = builder.with_http_client(client.clone());
            }
            if config.compression == Compression::Gzip {
                builder = builder.with_compression(opentelemetry_otlp::Compression::Gzip);
            }
            builder.build()
        }
    };
    let secrets = crate::export::secret::Secrets::of_otlp(config);
    let inner = built.map_err(|e| InitError::Exporter(ExporterError::scrubbed(&e, &|text| secrets.scrub(text))))?;
    Ok(Explained { inner, transport: transport.clone() })
}

/// The OTLP span exporter whose failures say what TLS trusted (see [`Transport::explain`]).
#[derive(Debug)]
pub(crate) struct Explained {
    inner: opentelemetry_otlp::SpanExporter,
    transport: Transport,
}

impl SpanExporter for Explained {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.inner.export(batch).await.map_err(|e| match e {
            OTelSdkError::InternalFailure(why) => OTelSdkError::InternalFailure(self.transport.explain(&why)),
            other => other,
        })
    }

    fn shutdown_with_timeout(&self, timeout: std::time::Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.inner.set_resource(resource);
    }
}

/// The protocol asked for is not in this build.
#[cfg(not(all(feature = "otlp-grpc", feature = "otlp-http")))]
fn missing(protocol: &str, feature: &str) -> InitError {
    InitError::invalid(
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        protocol,
        &format!("a protocol this build has (enable the `{feature}` cargo feature)"),
    )
}
