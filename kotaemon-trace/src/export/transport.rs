//! One configured OTLP transport per collector, shared by traces, metrics and logs: the reqwest client
//! (HTTP/protobuf) or the tonic channel (gRPC), built from an [`OtlpConfig`] with its TLS files,
//! headers, compression and timeout, so the three signals cannot drift apart (one trusting a CA the
//! other ignores, one compressing and the other not).
//!
//! TLS is rustls with the ring provider over both protocols: no OpenSSL, and the system's roots unless
//! `OTEL_EXPORTER_OTLP_CERTIFICATE` names a CA file, which then replaces them (as the other OpenTelemetry
//! SDKs do). The files are read here, when the exporter is built, so the client key never sits in a
//! `Config`.

use crate::base::error::InitError;
use crate::config::{Compression, OtlpConfig, OtlpTls, Protocol};
use std::path::Path;

/// The transport of one signal to one endpoint. Cheap to clone: the client and the channel are handles
/// to one connection pool.
#[derive(Clone, Debug)]
pub(crate) struct Transport {
    pub(crate) config: OtlpConfig,
    #[cfg(feature = "otlp-http")]
    http: Option<reqwest::Client>,
    #[cfg(feature = "otlp-grpc")]
    grpc: Option<tonic::transport::Channel>,
}

impl Transport {
    /// Builds the client for `config`. For gRPC the channel connects lazily; its worker is spawned on
    /// the runtime current here, so build it inside the runtime that will drive the exports.
    pub(crate) fn new(config: &OtlpConfig) -> Result<Transport, InitError> {
        check_tls_applies(config)?;
        Ok(Transport {
            config: config.clone(),
            #[cfg(feature = "otlp-http")]
            http: match config.protocol {
                Protocol::HttpProtobuf => Some(http_client(config)?),
                Protocol::Grpc => None,
            },
            #[cfg(feature = "otlp-grpc")]
            grpc: match config.protocol {
                Protocol::Grpc => Some(grpc_channel(config)?),
                Protocol::HttpProtobuf => None,
            },
        })
    }

    /// The transport of another signal of the same collector settings (metrics, logs) to `endpoint`
    /// with `tls` (`None`: this one's files). With the same files the reqwest client is reused as is (it
    /// is not bound to a host) and so is a gRPC channel to the same endpoint; otherwise a new one is
    /// built, on the runtime current here.
    pub(crate) fn for_signal(&self, endpoint: &str, tls: Option<&OtlpTls>) -> Result<Transport, InitError> {
        let mut config = self.config.clone();
        config.endpoint = endpoint.to_owned();
        if let Some(tls) = tls.filter(|tls| **tls != self.config.tls) {
            config.tls = tls.clone();
            return Transport::new(&config);
        }
        check_tls_applies(&config)?;
        #[cfg(feature = "otlp-grpc")]
        let grpc = match (&self.grpc, config.protocol) {
            (Some(channel), _) if endpoint == self.config.endpoint => Some(channel.clone()),
            (_, Protocol::Grpc) => Some(grpc_channel(&config)?),
            _ => None,
        };
        Ok(Transport {
            config,
            #[cfg(feature = "otlp-http")]
            http: self.http.clone(),
            #[cfg(feature = "otlp-grpc")]
            grpc,
        })
    }

    #[cfg(feature = "otlp-http")]
    pub(crate) fn http(&self) -> Option<&reqwest::Client> {
        self.http.as_ref()
    }

    #[cfg(feature = "otlp-grpc")]
    pub(crate) fn grpc(&self) -> Option<&tonic::transport::Channel> {
        self.grpc.as_ref()
    }

    /// An export failure, with what TLS trusted when the endpoint is `https://`: a handshake refused
    /// because of a wrong CA file then names the variable and the file to look at.
    pub(crate) fn explain(&self, error: &str) -> String {
        if !self.config.endpoint.starts_with("https://") {
            return error.to_owned();
        }
        let tls = &self.config.tls;
        let trusted = match &tls.certificate {
            Some(path) => format!("{}={}", "OTEL_EXPORTER_OTLP_CERTIFICATE", path.display()),
            None => format!("the system's roots ({} not set)", "OTEL_EXPORTER_OTLP_CERTIFICATE"),
        };
        let client = match &tls.client_certificate {
            Some(path) => {
                format!(", client certificate {}={}", "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", path.display())
            }
            None => String::new(),
        };
        format!("{error} (TLS: the collector's certificate is checked against {trusted}{client})")
    }

    /// gzip when configured.
    pub(crate) fn gzip(&self) -> bool {
        self.config.compression == Compression::Gzip
    }
}

/// TLS files with a plain `http://` endpoint are a mistake worth stopping on: the files would be
/// silently unused and the data sent in clear.
fn check_tls_applies(config: &OtlpConfig) -> Result<(), InitError> {
    if config.endpoint.starts_with("https://") {
        return Ok(());
    }
    match config.tls.certificate.as_ref().or(config.tls.client_certificate.as_ref()) {
        Some(path) => Err(InitError::invalid(
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            &path.display().to_string(),
            &format!("an https:// endpoint to be used with (the endpoint is {})", config.endpoint),
        )),
        None => Ok(()),
    }
}

/// A file read for TLS, or an [`InitError`] naming the variable and the path.
fn read(variable: &str, path: &Path) -> Result<Vec<u8>, InitError> {
    crate::config::read_pem(path).map_err(|why| {
        InitError::invalid(variable, &path.display().to_string(), &format!("a readable PEM file (this one {why})"))
    })
}

/// The client certificate and key, both or neither.
type Identity = Option<(Vec<u8>, Vec<u8>)>;

fn identity(config: &OtlpConfig) -> Result<Identity, InitError> {
    match (&config.tls.client_certificate, &config.tls.client_key) {
        (Some(cert), Some(key)) => Ok(Some((
            read("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", cert)?,
            read("OTEL_EXPORTER_OTLP_CLIENT_KEY", key)?,
        ))),
        (None, None) => Ok(None),
        (Some(path), None) | (None, Some(path)) => Err(InitError::invalid(
            "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
            &path.display().to_string(),
            "a client certificate and its key (OTEL_EXPORTER_OTLP_CLIENT_KEY), both or neither",
        )),
    }
}

/// The rustls configuration for an `https://` endpoint over HTTP.
#[cfg(feature = "otlp-http")]
fn rustls_config(config: &OtlpConfig) -> Result<rustls::ClientConfig, InitError> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    match &config.tls.certificate {
        Some(path) => {
            const VARIABLE: &str = "OTEL_EXPORTER_OTLP_CERTIFICATE";
            let pem = read(VARIABLE, path)?;
            let bad = |why: String| InitError::invalid(VARIABLE, &path.display().to_string(), &why);
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| bad(format!("PEM certificates (this one: {e})")))?;
                roots.add(cert).map_err(|e| bad(format!("CA certificates (this one: {e})")))?;
            }
            if roots.is_empty() {
                return Err(bad("a PEM file with at least one CERTIFICATE block".into()));
            }
        }
        None => {
            // Certificates the platform store holds but rustls cannot parse are skipped, as a browser would.
            let loaded = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(loaded.certs);
        }
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| InitError::invalid("OTEL_EXPORTER_OTLP_ENDPOINT", &config.endpoint, &e.to_string()))?
        .with_root_certificates(roots);
    let mut tls = match identity(config)? {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let cert_path = config.tls.client_certificate.as_deref().unwrap_or(Path::new(""));
            let key_path = config.tls.client_key.as_deref().unwrap_or(Path::new(""));
            let chain = CertificateDer::pem_slice_iter(&cert).collect::<Result<Vec<_>, _>>().map_err(|e| {
                InitError::invalid(
                    "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
                    &cert_path.display().to_string(),
                    &format!("PEM certificates (this one: {e})"),
                )
            })?;
            let key = PrivateKeyDer::from_pem_slice(&key).map_err(|e| {
                InitError::invalid(
                    "OTEL_EXPORTER_OTLP_CLIENT_KEY",
                    &key_path.display().to_string(),
                    &format!("a PEM private key (PKCS#8, PKCS#1 or SEC1; this one: {e})"),
                )
            })?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                InitError::invalid(
                    "OTEL_EXPORTER_OTLP_CLIENT_KEY",
                    &key_path.display().to_string(),
                    &format!("the key of OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE (this one: {e})"),
                )
            })?
        }
    };
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tls)
}

/// TLS for HTTP clients outside OTLP (the Jaeger strategy poller): the system's roots, no client
/// certificate. reqwest's rustls backend is built without a default crypto provider (`ring` is given here,
/// as for OTLP), so every reqwest client of this crate must be handed its TLS configuration.
#[cfg(all(feature = "otlp-http", feature = "jaeger-remote"))]
pub(crate) fn system_tls() -> Result<rustls::ClientConfig, String> {
    rustls_config(&OtlpConfig::default()).map_err(|e| e.to_string())
}

/// The HTTP client: TLS from the configuration, the export timeout. Headers and compression are set
/// per request (the exporters add them), so one client serves every endpoint of the collector.
#[cfg(feature = "otlp-http")]
fn http_client(config: &OtlpConfig) -> Result<reqwest::Client, InitError> {
    // The client is not bound to a URL: an endpoint it could never send to is refused here, at `init`,
    // rather than on every export.
    reqwest::Url::parse(&config.endpoint).map_err(|e| {
        InitError::invalid(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            &config.endpoint,
            &format!("an http:// or https:// URL ({e})"),
        )
    })?;
    let mut builder = reqwest::Client::builder().timeout(config.timeout).connect_timeout(config.timeout);
    // Built for plain http:// too: the endpoint may redirect, and one client shape keeps this simple.
    builder = builder.tls_backend_preconfigured(rustls_config(config)?);
    builder.build().map_err(|e| {
        InitError::invalid("OTEL_EXPORTER_OTLP_ENDPOINT", &config.endpoint, &format!("a usable HTTP client ({e})"))
    })
}

/// The gRPC channel: TLS from the configuration, the export timeout; connects on first use.
#[cfg(feature = "otlp-grpc")]
fn grpc_channel(config: &OtlpConfig) -> Result<tonic::transport::Channel, InitError> {
    use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
    let invalid = |why: String| InitError::invalid("OTEL_EXPORTER_OTLP_ENDPOINT", &config.endpoint, &why);
    let mut endpoint = Endpoint::from_shared(config.endpoint.clone())
        .map_err(|e| invalid(format!("a URL tonic accepts ({e})")))?
        .timeout(config.timeout)
        .connect_timeout(config.timeout);
    if config.endpoint.starts_with("https://") {
        let mut tls = match &config.tls.certificate {
            Some(path) => ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(read("OTEL_EXPORTER_OTLP_CERTIFICATE", path)?)),
            None => ClientTlsConfig::new().with_native_roots(),
        };
        if let Some((cert, key)) = identity(config)? {
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        endpoint = endpoint.tls_config(tls).map_err(|e| invalid(format!("a usable TLS configuration ({e})")))?;
    }
    Ok(endpoint.connect_lazy())
}

/// gRPC metadata from the configured headers; a header that cannot be one is named.
#[cfg(feature = "otlp-grpc")]
pub(crate) fn metadata(config: &OtlpConfig) -> Result<tonic::metadata::MetadataMap, InitError> {
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
    Ok(tonic::metadata::MetadataMap::from_headers(headers))
}

/// The endpoint of another signal on the same collector: its own variable when set, else the traces'
/// URL with `/v1/traces` replaced by `path` over HTTP (gRPC endpoints have no path).
pub(crate) fn signal_url(traces: &OtlpConfig, own: Option<&str>, path: &str) -> String {
    match (own, traces.protocol) {
        (Some(url), _) => url.to_owned(),
        (None, Protocol::Grpc) => traces.endpoint.clone(),
        (None, Protocol::HttpProtobuf) => match traces.endpoint.strip_suffix("/v1/traces") {
            Some(base) => format!("{base}{path}"),
            None => traces.endpoint.clone(),
        },
    }
}
