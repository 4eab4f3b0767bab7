//! The OTLP exporter (gRPC or HTTP/protobuf), built from [`OtlpConfig`].
//!
//! Both transports are async clients (tonic, reqwest). They are built inside, and driven by, the
//! library's own small tokio runtime, so `init()` works the same from a plain `fn main`, from inside
//! `#[tokio::main]` (current-thread or multi-thread), and never needs the user's runtime.

use crate::config::{Compression, OtlpConfig, Protocol};
use crate::InitError;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use std::collections::HashMap;

pub(crate) fn build(config: &OtlpConfig, runtime: &tokio::runtime::Runtime) -> Result<opentelemetry_otlp::SpanExporter, InitError> {
    // tonic's lazy channel spawns its worker onto the runtime that is current while it is built.
    let _entered = runtime.enter();
    let built = match config.protocol {
        Protocol::Grpc => {
            let mut headers = http::HeaderMap::new();
            for (name, value) in &config.headers {
                let key = http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    InitError::invalid("OTEL_EXPORTER_OTLP_HEADERS", name, "header names of ASCII letters, digits, '-' and '_'")
                })?;
                let value = http::HeaderValue::from_str(value).map_err(|_| {
                    InitError::invalid("OTEL_EXPORTER_OTLP_HEADERS", &format!("{name}=***"), "printable ASCII header values")
                })?;
                headers.insert(key, value);
            }
            let metadata = opentelemetry_otlp::tonic_types::metadata::MetadataMap::from_headers(headers);
            let mut builder = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(config.endpoint.clone())
                .with_protocol(opentelemetry_otlp::Protocol::Grpc)
                .with_timeout(config.timeout)
                .with_metadata(metadata);
            if config.compression == Compression::Gzip {
                builder = builder.with_compression(opentelemetry_otlp::Compression::Gzip);
            }
            builder.build()
        }
        Protocol::HttpProtobuf => {
            let headers: HashMap<String, String> = config.headers.iter().cloned().collect();
            let mut builder = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(config.endpoint.clone())
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_timeout(config.timeout)
                .with_headers(headers);
            if config.compression == Compression::Gzip {
                builder = builder.with_compression(opentelemetry_otlp::Compression::Gzip);
            }
            builder.build()
        }
    };
    built.map_err(|e| InitError::Exporter(crate::secret::Secrets::of_otlp(config).scrub(&e.to_string())))
}
