//! OTLP over TLS with a custom CA and client certificates, against a loopback TLS endpoint whose
//! certificates the test generates (rcgen). The endpoint terminates TLS and forwards to a plain backend: the
//! loopback OTLP/HTTP receiver (traces and metrics over `http/protobuf` are decoded there), or the real
//! Jaeger for gRPC when one runs. A span or a metrics push that arrives has crossed the TLS hop. The
//! transport the signals share is checked here too: one client, the same compression.

use crate::exclusive;
use kotaemon_trace::__hooks::fuzz::config_from_lookup;
use kotaemon_trace::__hooks::push_metrics_once;
use kotaemon_trace::config::{Config, MetricsConfig, OtlpTls, Protocol};
use kotaemon_trace::init_with;
use kotaemon_trace_tests::jaeger::{unique_service, Jaeger};
use kotaemon_trace_tests::receiver::Receiver;
use opentelemetry::trace::{Span as _, Tracer as _};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio_rustls::rustls::{self, pki_types};

/// A CA, a server certificate for `localhost` and 127.0.0.1, and a client certificate, as PEM files in a
/// scratch directory removed on drop.
struct Pki {
    dir: PathBuf,
    ca: PathBuf,
    client_cert: PathBuf,
    client_key: PathBuf,
    ca_der: pki_types::CertificateDer<'static>,
    server_der: pki_types::CertificateDer<'static>,
    server_key: Vec<u8>,
}

impl Pki {
    fn generate(label: &str) -> Pki {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let dir = std::env::temp_dir().join(format!("kotaemon-tls-{label}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
        let server_key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&server_key, &ca)
            .unwrap();
        let client_key = KeyPair::generate().unwrap();
        let client =
            CertificateParams::new(vec!["rag-api.client".to_owned()]).unwrap().signed_by(&client_key, &ca).unwrap();
        let write = |name: &str, text: String| {
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path
        };
        Pki {
            ca: write("ca.pem", ca.pem()),
            client_cert: write("client.pem", client.pem()),
            client_key: write("client.key", client_key.serialize_pem()),
            ca_der: ca.der().clone(),
            server_der: server.der().clone(),
            server_key: server_key.serialize_der(),
            dir,
        }
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A loopback TLS endpoint forwarding each connection to `backend`; stops on drop.
struct TlsProxy {
    addr: SocketAddr,
    handshakes_ok: Arc<AtomicUsize>,
    handshakes_failed: Arc<AtomicUsize>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl TlsProxy {
    fn start(pki: &Pki, backend: SocketAddr, require_client_certificate: bool) -> TlsProxy {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if require_client_certificate {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(pki.ca_der.clone()).unwrap();
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build().unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let key = pki_types::PrivateKeyDer::Pkcs8(pki_types::PrivatePkcs8KeyDer::from(pki.server_key.clone()));
        let mut config = builder.with_single_cert(vec![pki.server_der.clone()], key).unwrap();
        // gRPC clients offer h2, the OTLP/HTTP client http/1.1; the backend speaks whichever was chosen.
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (ok2, failed2) = (ok.clone(), failed.clone());
        runtime.spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { continue };
                let (acceptor, ok, failed) = (acceptor.clone(), ok2.clone(), failed2.clone());
                tokio::spawn(async move {
                    match acceptor.accept(tcp).await {
                        Ok(mut tls) => {
                            ok.fetch_add(1, Ordering::Relaxed);
                            if let Ok(mut upstream) = tokio::net::TcpStream::connect(backend).await {
                                let _ = tokio::io::copy_bidirectional(&mut tls, &mut upstream).await;
                            }
                        }
                        Err(_) => {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        TlsProxy { addr, handshakes_ok: ok, handshakes_failed: failed, runtime: Some(runtime) }
    }

    fn endpoint(&self) -> String {
        format!("https://localhost:{}", self.addr.port())
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn backend(jaeger: &Jaeger) -> SocketAddr {
    jaeger.otlp_grpc.trim_start_matches("http://").parse().expect("host:port of Jaeger's OTLP gRPC")
}

/// Exports one span through `proxy` with `tls`; the flush result and the service name.
fn export_one(proxy: &TlsProxy, tls: OtlpTls) -> (Result<(), kotaemon_trace::ShutdownError>, String) {
    let service = unique_service("tls");
    let config = Config::builder()
        .service_name(&service)
        .protocol(Protocol::Grpc)
        .otlp_endpoint(proxy.endpoint())
        .otlp_timeout(Duration::from_secs(3))
        .otlp_tls(tls)
        .build();
    let guard = init_with(config).expect("init");
    opentelemetry::global::tracer("tls").start("over-tls").end();
    let flushed = guard.force_flush();
    let _ = guard.shutdown();
    (flushed, service)
}

#[test]
fn grpc_over_tls_with_a_custom_ca_reaches_jaeger() {
    let _one = exclusive();
    let Some(jaeger) = Jaeger::from_env_or_skip("grpc_over_tls_with_a_custom_ca_reaches_jaeger") else { return };
    let pki = Pki::generate("ca");
    let proxy = TlsProxy::start(&pki, backend(&jaeger), false);

    let (flushed, service) = export_one(&proxy, {
        let mut c = OtlpTls::default();
        c.certificate = Some(pki.ca.clone());
        c
    });
    flushed.expect("the collector's certificate is trusted through the configured CA");
    let traces = jaeger.traces(&service, 5, Duration::from_secs(20), |t| !t.is_empty());
    assert_eq!(traces.len(), 1, "the span crossed the TLS hop into Jaeger");
    assert!(proxy.handshakes_ok.load(Ordering::Relaxed) >= 1);

    // Without the CA the same endpoint is refused: the certificate is what made it work.
    let failed_before = proxy.handshakes_failed.load(Ordering::Relaxed);
    let (flushed, _) = export_one(&proxy, OtlpTls::default());
    assert!(flushed.is_err(), "an unknown issuer must be refused");
    assert!(proxy.handshakes_failed.load(Ordering::Relaxed) > failed_before, "the TLS handshake is what failed");
}

#[test]
fn mutual_tls_sends_the_client_certificate() {
    let _one = exclusive();
    let Some(jaeger) = Jaeger::from_env_or_skip("mutual_tls_sends_the_client_certificate") else { return };
    let pki = Pki::generate("mtls");
    let proxy = TlsProxy::start(&pki, backend(&jaeger), true);
    let mut with_ca = OtlpTls::default();
    with_ca.certificate = Some(pki.ca.clone());

    let (flushed, _) = export_one(&proxy, with_ca.clone());
    assert!(flushed.is_err(), "the endpoint requires a client certificate");
    let mut tls = with_ca.clone();
    tls.client_certificate = Some(pki.client_cert.clone());
    tls.client_key = Some(pki.client_key.clone());
    let (flushed, service) = export_one(&proxy, tls);
    flushed.expect("with the client certificate the handshake succeeds");
    assert_eq!(jaeger.traces(&service, 5, Duration::from_secs(20), |t| !t.is_empty()).len(), 1);
}

#[test]
fn missing_or_unreadable_certificate_files_are_named() {
    let _one = exclusive();
    let pki = Pki::generate("files");
    let not_pem = pki.dir.join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let lookup = |vars: Vec<(&'static str, String)>| {
        move |name: &str| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone())
    };
    let base = || {
        vec![
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".to_owned()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://localhost:4317".to_owned()),
        ]
    };

    let mut vars = base();
    vars.push(("OTEL_EXPORTER_OTLP_CERTIFICATE", "/nonexistent/ca.pem".into()));
    vars.push(("OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE", not_pem.display().to_string()));
    let config = config_from_lookup(lookup(vars));
    let texts: Vec<String> = config.problems().iter().map(ToString::to_string).collect();
    assert!(
        texts[0].starts_with(
            "OTEL_EXPORTER_OTLP_CERTIFICATE=\"/nonexistent/ca.pem\" is not valid: expected a readable PEM file"
        ),
        "{texts:?}"
    );
    assert!(
        texts[1]
            .starts_with(&format!("OTEL_EXPORTER_OTLP_TRACES_CLIENT_CERTIFICATE={:?}", not_pem.display().to_string())),
        "{texts:?}"
    );
    assert!(texts[1].contains("not a PEM file"), "{texts:?}");
    assert_eq!(config.otlp().tls, OtlpTls::default());

    // Good files are kept; a key without its certificate is named.
    let mut vars = base();
    vars.push(("OTEL_EXPORTER_OTLP_CERTIFICATE", pki.ca.display().to_string()));
    vars.push(("OTEL_EXPORTER_OTLP_CLIENT_KEY", pki.client_key.display().to_string()));
    let config = config_from_lookup(lookup(vars));
    assert_eq!(config.otlp().tls.certificate.as_ref(), Some(&pki.ca));
    assert_eq!(config.problems()[0].variable(), "OTEL_EXPORTER_OTLP_CLIENT_KEY");

    // From the builder, a file that disappeared is an init error naming the variable and the path.
    let config = Config::builder()
        .protocol(Protocol::Grpc)
        .otlp_endpoint("https://localhost:4317")
        .otlp_tls({
            let mut c = OtlpTls::default();
            c.certificate = Some("/nonexistent/ca.pem".into());
            c
        })
        .build();
    let error = init_with(config).expect_err("the CA file is missing").to_string();
    assert!(error.starts_with("OTEL_EXPORTER_OTLP_CERTIFICATE=\"/nonexistent/ca.pem\" is not valid"), "{error}");
}

fn ca_of(pki: &Pki) -> OtlpTls {
    let mut tls = OtlpTls::default();
    tls.certificate = Some(pki.ca.clone());
    tls
}

fn mutual(pki: &Pki) -> OtlpTls {
    let mut tls = ca_of(pki);
    tls.client_certificate = Some(pki.client_cert.clone());
    tls.client_key = Some(pki.client_key.clone());
    tls
}

/// Traces (and metrics pushed at shutdown) to `proxy` over `protocol` with `tls`.
fn config(proxy: &TlsProxy, protocol: Protocol, tls: OtlpTls) -> Config {
    let mut metrics = MetricsConfig::default();
    metrics.otlp = true;
    Config::builder()
        .service_name("tls-check")
        .protocol(protocol)
        .otlp_endpoint(proxy.endpoint())
        .otlp_timeout(Duration::from_secs(3))
        .otlp_tls(tls)
        .metrics(metrics)
        .build()
}

/// Ends one span, flushes, shuts down (which pushes the metrics once more); the flush result.
fn export_span(config: Config) -> Result<(), kotaemon_trace::ShutdownError> {
    let guard = init_with(config).expect("init");
    opentelemetry::global::tracer("tls").start("over-tls").end();
    let flushed = guard.force_flush();
    let _ = guard.shutdown();
    flushed
}

fn span_names(receiver: &Receiver) -> Vec<String> {
    receiver
        .bodies_to("/v1/traces")
        .iter()
        .flat_map(|body| {
            ExportTraceServiceRequest::decode(body.as_slice()).expect("an OTLP trace request").resource_spans
        })
        .flat_map(|r| r.scope_spans)
        .flat_map(|s| s.spans)
        .map(|s| s.name)
        .collect()
}

fn metric_names(receiver: &Receiver) -> Vec<String> {
    receiver
        .bodies_to("/v1/metrics")
        .iter()
        .flat_map(|body| {
            ExportMetricsServiceRequest::decode(body.as_slice()).expect("an OTLP metrics request").resource_metrics
        })
        .flat_map(|r| r.scope_metrics)
        .flat_map(|s| s.metrics)
        .map(|m| m.name)
        .collect()
}

/// Waits (briefly) for a counter the proxy's tasks update after the client has its answer.
fn eventually(what: &str, check: impl Fn() -> bool) {
    let until = std::time::Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(std::time::Instant::now() < until, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn http_protobuf_over_tls_with_a_custom_ca_carries_traces_and_metrics() {
    let _one = exclusive();
    let pki = Pki::generate("http-ca");
    let receiver = Receiver::start();
    let proxy = TlsProxy::start(&pki, receiver.addr(), false);

    let config = config(&proxy, Protocol::HttpProtobuf, ca_of(&pki));
    let guard = init_with(config.clone()).expect("init");
    opentelemetry::global::tracer("tls").start("over-tls").end();
    guard.force_flush().expect("the collector's certificate is trusted through the configured CA");
    // The connection goes back to the client's pool just after the response; the metrics push at
    // shutdown then finds it idle there.
    std::thread::sleep(Duration::from_millis(300));
    guard.shutdown().expect("shutdown");
    assert_eq!(span_names(&receiver), ["over-tls"], "the span crossed the TLS hop");
    assert!(
        metric_names(&receiver).iter().any(|n| n == "traces.span.metrics.calls"),
        "the metrics push at shutdown went through the same TLS transport"
    );
    assert_eq!(
        proxy.handshakes_ok.load(Ordering::Relaxed),
        1,
        "traces and the metrics push share one client: one connection, one handshake"
    );
    push_metrics_once(&config).expect("a metrics push on its own transport");

    // Without the CA the same endpoint is refused: the certificate is what made it work.
    let failed_before = proxy.handshakes_failed.load(Ordering::Relaxed);
    let error = export_span(self::config(&proxy, Protocol::HttpProtobuf, OtlpTls::default()))
        .expect_err("an unknown issuer must be refused")
        .to_string();
    assert!(error.contains("the system's roots"), "{error}");
    eventually("the TLS handshake is what failed", || proxy.handshakes_failed.load(Ordering::Relaxed) > failed_before);
}

#[test]
fn http_protobuf_mutual_tls_sends_the_client_certificate() {
    let _one = exclusive();
    let pki = Pki::generate("http-mtls");
    let receiver = Receiver::start();
    let proxy = TlsProxy::start(&pki, receiver.addr(), true);

    let without = config(&proxy, Protocol::HttpProtobuf, ca_of(&pki));
    assert!(push_metrics_once(&without).is_err(), "the endpoint requires a client certificate");
    assert!(export_span(without).is_err(), "the endpoint requires a client certificate");
    assert!(span_names(&receiver).is_empty());

    let with = config(&proxy, Protocol::HttpProtobuf, mutual(&pki));
    export_span(with.clone()).expect("with the client certificate the handshake succeeds");
    assert_eq!(span_names(&receiver), ["over-tls"]);
    assert!(metric_names(&receiver).iter().any(|n| n == "traces.span.metrics.calls"));
    push_metrics_once(&with).expect("the metrics push sends the client certificate too");
}

#[test]
fn a_wrong_ca_is_refused_with_an_error_naming_the_variable_and_the_file() {
    let _one = exclusive();
    let pki = Pki::generate("served");
    let other = Pki::generate("other");
    let receiver = Receiver::start();
    let proxy = TlsProxy::start(&pki, receiver.addr(), false);
    let named = format!("OTEL_EXPORTER_OTLP_CERTIFICATE={}", other.ca.display());
    for protocol in [Protocol::HttpProtobuf, Protocol::Grpc] {
        let failed_before = proxy.handshakes_failed.load(Ordering::Relaxed);
        let config = config(&proxy, protocol, ca_of(&other));
        let error = export_span(config.clone()).expect_err("a collector certificate from another CA").to_string();
        assert!(error.contains(&named), "{protocol:?} traces: {error}");
        let error = push_metrics_once(&config).expect_err("a collector certificate from another CA");
        assert!(error.contains(&named), "{protocol:?} metrics: {error}");
        eventually("the handshakes failed", || proxy.handshakes_failed.load(Ordering::Relaxed) >= failed_before + 2);
    }
    assert!(receiver.bodies().is_empty(), "nothing crossed a handshake that failed");
}

#[test]
fn grpc_tls_handshakes_with_the_custom_ca_and_the_client_certificate() {
    let _one = exclusive();
    let pki = Pki::generate("grpc-mtls");
    // The backend does not speak gRPC: only the TLS hop in front of it is under test here (the Jaeger
    // tests above carry spans end to end).
    let receiver = Receiver::start();
    let proxy = TlsProxy::start(&pki, receiver.addr(), true);

    let failed_before = proxy.handshakes_failed.load(Ordering::Relaxed);
    let _ = push_metrics_once(&config(&proxy, Protocol::Grpc, ca_of(&pki)));
    eventually("without a client certificate the handshake fails", || {
        proxy.handshakes_failed.load(Ordering::Relaxed) > failed_before
    });

    let ok_before = proxy.handshakes_ok.load(Ordering::Relaxed);
    let _ = push_metrics_once(&config(&proxy, Protocol::Grpc, mutual(&pki)));
    eventually("the custom CA and the client certificate complete the handshake", || {
        proxy.handshakes_ok.load(Ordering::Relaxed) > ok_before
    });
}

#[test]
fn tls_files_over_http_protobuf_are_read_from_the_environment() {
    let _one = exclusive();
    let pki = Pki::generate("env");
    let vars = [
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_owned()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://localhost:4318".to_owned()),
        ("OTEL_EXPORTER_OTLP_CERTIFICATE", pki.ca.display().to_string()),
        ("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", pki.client_cert.display().to_string()),
        ("OTEL_EXPORTER_OTLP_CLIENT_KEY", pki.client_key.display().to_string()),
    ];
    let config = config_from_lookup(|name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| v.clone()));
    assert!(config.problems().is_empty(), "{:?}", config.problems());
    assert_eq!(config.otlp().tls, mutual(&pki));

    // http/json is refused by name, with what is accepted.
    let config = config_from_lookup(|name| (name == "OTEL_EXPORTER_OTLP_PROTOCOL").then(|| "http/json".to_owned()));
    let text = config.problems()[0].to_string();
    assert!(
        text.starts_with(
            "OTEL_EXPORTER_OTLP_PROTOCOL=\"http/json\" is not valid: expected grpc or http/protobuf (http/json is not supported)"
        ),
        "{text}"
    );
}

#[test]
fn otlp_logs_use_the_same_tls_settings() {
    use kotaemon_trace::logs::OtlpLogs;
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use tracing_subscriber::layer::SubscriberExt as _;

    let _one = exclusive();
    let pki = Pki::generate("logs-mtls");
    let receiver = Receiver::start();
    let proxy = TlsProxy::start(&pki, receiver.addr(), true);
    let send = |tls: OtlpTls| {
        let config = Config::builder()
            .protocol(Protocol::HttpProtobuf)
            .otlp_endpoint(proxy.endpoint())
            .otlp_timeout(Duration::from_secs(3))
            .otlp_tls(tls)
            .otlp_logs(None)
            .build();
        let logs = OtlpLogs::from_config(&config).expect("the TLS files are usable").expect("logs asked for");
        let subscriber = tracing_subscriber::registry().with(logs.layer());
        tracing::subscriber::with_default(subscriber, || tracing::info!("written over TLS"));
        let _ = logs.shutdown();
    };

    send(ca_of(&pki));
    assert!(receiver.bodies_to("/v1/logs").is_empty(), "the endpoint requires a client certificate");
    send(mutual(&pki));
    let bodies = receiver.bodies_to("/v1/logs");
    let bodies: Vec<String> = bodies
        .iter()
        .flat_map(|b| ExportLogsServiceRequest::decode(b.as_slice()).expect("an OTLP logs request").resource_logs)
        .flat_map(|r| r.scope_logs)
        .flat_map(|s| s.log_records)
        .map(|r| format!("{:?}", r.body))
        .collect();
    assert_eq!(bodies.len(), 1, "one record crossed the TLS hop");
    assert!(bodies[0].contains("written over TLS"), "{bodies:?}");
}

#[test]
fn the_metrics_push_uses_its_own_tls_files_when_given() {
    let _one = exclusive();
    let pki = Pki::generate("metrics-own");
    let other = Pki::generate("metrics-other");
    let receiver = Receiver::start();
    let proxy = TlsProxy::start(&pki, receiver.addr(), false);
    // Traces trust the wrong CA; the metrics push (OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE) the right one.
    let mut metrics = MetricsConfig::default();
    metrics.otlp = true;
    metrics.otlp_tls = Some(ca_of(&pki));
    let config = Config::builder()
        .protocol(Protocol::HttpProtobuf)
        .otlp_endpoint(proxy.endpoint())
        .otlp_timeout(Duration::from_secs(3))
        .otlp_tls(ca_of(&other))
        .metrics(metrics)
        .build();
    assert!(export_span(config.clone()).is_err(), "the traces' CA is not the collector's");
    assert!(span_names(&receiver).is_empty());
    assert!(metric_names(&receiver).iter().any(|n| n == "traces.span.metrics.calls"), "metrics went through");
    push_metrics_once(&config).expect("the metrics' own CA");
}

#[test]
fn gzip_applies_to_the_metrics_push_as_to_traces() {
    let _one = exclusive();
    let receiver = Receiver::start();
    let mut metrics = MetricsConfig::default();
    metrics.otlp = true;
    let config = Config::builder()
        .protocol(Protocol::HttpProtobuf)
        .otlp_endpoint(receiver.endpoint())
        .compression(kotaemon_trace::config::Compression::Gzip)
        .metrics(metrics)
        .build();
    export_span(config.clone()).expect("a plain loopback receiver");
    push_metrics_once(&config).expect("a plain loopback receiver");
    let gzip = |body: &Vec<u8>| body.starts_with(&[0x1f, 0x8b]);
    let (traces, metrics) = (receiver.bodies_to("/v1/traces"), receiver.bodies_to("/v1/metrics"));
    assert!(!traces.is_empty() && traces.iter().all(gzip), "traces are gzipped");
    assert_eq!(metrics.len(), 2, "at shutdown and the single push");
    assert!(metrics.iter().all(gzip), "and so is the metrics push");
}

#[test]
fn gzip_over_grpc_reaches_jaeger_with_every_span() {
    let _one = exclusive();
    // The OTLP request is encoded by the crate and sent through tonic's raw codec: Jaeger must accept it
    // compressed, and decode every span of a batch larger than one HTTP/2 window.
    let Some(jaeger) = kotaemon_trace_tests::jaeger::JaegerProcess::spawn("gzip_over_grpc", None) else { return };
    let service = unique_service("grpc-gzip");
    let config = Config::builder()
        .service_name(&service)
        .protocol(Protocol::Grpc)
        .otlp_endpoint(jaeger.jaeger.otlp_grpc.clone())
        .compression(kotaemon_trace::config::Compression::Gzip)
        .build();
    let guard = init_with(config).expect("init");
    let tracer = opentelemetry::global::tracer("gzip");
    for i in 0..600 {
        let mut span = tracer.start(format!("gz-{i}"));
        span.set_attribute(opentelemetry::KeyValue::new("prompt", "where is my order ".repeat(8)));
        span.end();
    }
    guard.shutdown().expect("every span exported");
    let traces = jaeger.jaeger.traces(&service, 1000, Duration::from_secs(20), |t| t.len() == 600);
    assert_eq!(traces.len(), 600, "every span arrived, decoded, through gzip");
}
