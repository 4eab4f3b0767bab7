//! The OTLP exporter (gRPC or HTTP/protobuf), built from [`OtlpConfig`].
//!
//! Both transports are async clients (tonic, reqwest). They are built inside, and driven by, the
//! library's own small tokio runtime, so `init()` works the same from a plain `fn main`, from inside
//! `#[tokio::main]` (current-thread or multi-thread), and never needs the user's runtime.

use crate::base::error::{ExporterError, InitError};
use crate::config::{Compression, OtlpConfig, Protocol};
use opentelemetry_otlp::WithExportConfig;
#[cfg(feature = "otlp-http")]
use opentelemetry_otlp::WithHttpConfig;
#[cfg(feature = "otlp-grpc")]
use opentelemetry_otlp::WithTonicConfig;
#[cfg(feature = "otlp-http")]
use std::collections::HashMap;
#[cfg(feature = "otlp-grpc")]
use tonic::transport::{Certificate, ClientTlsConfig, Identity};

/// TLS for an `https://` gRPC endpoint: the configured CA file (else the system's roots) and client
/// certificate. A file that cannot be read is an [`InitError`] naming the variable and the path.
#[cfg(feature = "otlp-grpc")]
fn tls(config: &OtlpConfig) -> Result<ClientTlsConfig, InitError> {
    let read = |variable: &str, path: &std::path::Path| {
        crate::config::read_pem(path).map_err(|why| {
            InitError::invalid(variable, &path.display().to_string(), &format!("a readable PEM file (this one {why})"))
        })
    };
    let tls = &config.tls;
    // A configured CA replaces the system roots (as the other OpenTelemetry SDKs do), which also lets a
    // container without a system trust store use TLS.
    let mut client = match &tls.certificate {
        Some(path) => {
            ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read("OTEL_EXPORTER_OTLP_CERTIFICATE", path)?))
        }
        None => ClientTlsConfig::new().with_native_roots(),
    };
    match (&tls.client_certificate, &tls.client_key) {
        (Some(cert), Some(key)) => {
            let cert = read("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", cert)?;
            client = client.identity(Identity::from_pem(cert, read("OTEL_EXPORTER_OTLP_CLIENT_KEY", key)?));
        }
        (None, None) => {}
        (Some(path), None) | (None, Some(path)) => {
            return Err(InitError::invalid(
                "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
                &path.display().to_string(),
                "a client certificate and its key (OTEL_EXPORTER_OTLP_CLIENT_KEY), both or neither",
            ));
        }
    }
    Ok(client)
}

pub(crate) fn build(
    config: &OtlpConfig,
    runtime: &tokio::runtime::Runtime,
) -> Result<opentelemetry_otlp::SpanExporter, InitError> {
    // tonic's lazy channel spawns its worker onto the runtime that is current while it is built.
    let _entered = runtime.enter();
    let built = match config.protocol {
        #[cfg(not(feature = "otlp-grpc"))]
        Protocol::Grpc => return Err(missing("grpc", "otlp-grpc")),
        #[cfg(feature = "otlp-grpc")]
        Protocol::Grpc => {
            let mut headers = http::HeaderMap::new();
            for (name, value) in &config.headers {
                let key = http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                    InitError::invalid(
                        "OTEL_EXPORTER_OTLP_HEADERS",
                        name,
                        "header names of ASCII letters, digits, '-' and '_'",
                    )
                })?;
                let value = http::HeaderValue::from_str(value).map_err(|_| {
                    InitError::invalid(
                        "OTEL_EXPORTER_OTLP_HEADERS",
                        &format!("{name}=***"),
                        "printable ASCII header values",
                    )
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
            if config.endpoint.starts_with("https://") {
                builder = builder.with_tls_config(tls(config)?);
            } else if let Some(path) = config.tls.certificate.as_ref().or(config.tls.client_certificate.as_ref()) {
                let path = path.display().to_string();
                return Err(InitError::invalid(
                    "OTEL_EXPORTER_OTLP_CERTIFICATE",
                    &path,
                    "an https:// endpoint to be used with",
                ));
            }
            builder.build()
        }
        #[cfg(not(feature = "otlp-http"))]
        Protocol::HttpProtobuf => return Err(missing("http/protobuf", "otlp-http")),
        #[cfg(feature = "otlp-http")]
        Protocol::HttpProtobuf => {
            if let Some(path) = config.tls.certificate.as_ref().or(config.tls.client_certificate.as_ref()) {
                let path = path.display().to_string();
                return Err(InitError::invalid(
                    "OTEL_EXPORTER_OTLP_CERTIFICATE",
                    &path,
                    "OTEL_EXPORTER_OTLP_PROTOCOL=grpc (TLS files are not used over http/protobuf yet)",
                ));
            }
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
    let secrets = crate::export::secret::Secrets::of_otlp(config);
    built.map_err(|e| InitError::Exporter(ExporterError::scrubbed(&e, &|text| secrets.scrub(text))))
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
