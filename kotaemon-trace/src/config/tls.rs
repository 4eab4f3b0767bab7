//! Certificates for OTLP over TLS.

use std::path::{Path, PathBuf};

/// Certificate files for OTLP over TLS: `OTEL_EXPORTER_OTLP_[TRACES_]CERTIFICATE`,
/// `OTEL_EXPORTER_OTLP_[TRACES_]CLIENT_CERTIFICATE` and `OTEL_EXPORTER_OTLP_[TRACES_]CLIENT_KEY`.
///
/// They apply to an `https://` endpoint over either protocol (`grpc`, `http/protobuf`), for traces, the
/// metrics push and OTLP logs alike. A configured CA replaces the system's roots; without one the
/// system's roots are used. Only the paths are kept here: the files are read when the exporter is built,
/// so the client key never sits in a `Config` (and never in its `Debug`).
///
/// ```
/// use kotaemon_trace::config::{Config, OtlpTls, Protocol};
///
/// let mut tls = OtlpTls::default();
/// tls.certificate = Some("/etc/ssl/collector-ca.pem".into());
/// let config = Config::builder()
///     .protocol(Protocol::Grpc)
///     .otlp_endpoint("https://collector.internal:4317")
///     .otlp_tls(tls)
///     .build();
/// assert!(config.otlp().tls.certificate.is_some());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OtlpTls {
    /// PEM file of the certificate authorities trusted for the collector's certificate (instead of the
    /// system's roots).
    pub certificate: Option<PathBuf>,
    /// PEM file of the client certificate (chain), for mutual TLS; needs `client_key`.
    pub client_certificate: Option<PathBuf>,
    /// PEM file of the client certificate's private key.
    pub client_key: Option<PathBuf>,
}

impl OtlpTls {
    /// Whether any file is configured.
    pub fn is_set(&self) -> bool {
        self.certificate.is_some() || self.client_certificate.is_some() || self.client_key.is_some()
    }
}

/// Reads a PEM file, or says why it cannot be used (the variable and path go in the caller's message).
pub(crate) fn read_pem(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot be read: {e}"))?;
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err("is not a PEM file (no -----BEGIN line)".into());
    }
    Ok(bytes)
}
