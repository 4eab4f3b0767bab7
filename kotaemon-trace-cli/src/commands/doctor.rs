//! `doctor`: the effective configuration with the source of every value, then checks in the order a span
//! travels (values valid → exporter on → endpoint listening → protocol matches the port → a test span is
//! exported → it can be read back from Jaeger's query API). Every failure has its own message.

use super::{Progress, fetch_settled};
use crate::exit::{CHECK_FAILED, Fail, OK};
use crate::jaeger::{Client, ui_link};
use crate::probe::{self, Endpoint, Unreachable, Wire};
use crate::settings::{self, Row, Source};
use kotaemon_trace::config::{BatchConfig, Config, ExporterKind, JaegerRemote, Origin, Protocol, Sampler, mask_url};
use kotaemon_trace::trace_with_otel;
use std::time::{Duration, Instant};

/// The conventional OTLP ports.
const GRPC_PORT: u16 = 4317;
const HTTP_PORT: u16 = 4318;
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok(String),
    Warn(String),
    Fail(String),
}

/// Prints each check as it completes and remembers whether any failed.
struct Report {
    failed: bool,
}

impl Report {
    fn check(&mut self, name: &str, outcome: Outcome) -> bool {
        let (tag, text, ok) = match outcome {
            Outcome::Ok(t) => ("ok  ", t, true),
            Outcome::Warn(t) => ("warn", t, true),
            Outcome::Fail(t) => {
                self.failed = true;
                ("FAIL", t, false)
            }
        };
        let mut lines = text.lines();
        println!("  {tag}  {name}: {}", lines.next().unwrap_or_default());
        for line in lines {
            println!("        {line}");
        }
        ok
    }

    fn skip(&self, name: &str, why: &str) {
        println!("  skip  {name}: {why}");
    }
}

pub fn run(client: &Client, jaeger_source: &Source, wait: Duration) -> Result<u8, Fail> {
    // What `init()` reads: the environment over `kotaemon-trace.toml`. A wrong file is the first failure.
    let config = match Config::load() {
        Ok(config) => config,
        Err(error) => {
            println!("Checks:");
            println!("  FAIL  configuration file: {error}");
            return Ok(CHECK_FAILED);
        }
    };
    let settings = settings::effective(&config, &client.url, jaeger_source);
    println!("Effective configuration (value, then where it came from):");
    print!("{}", settings_table(&settings));
    println!("\nChecks:");
    let mut report = Report { failed: false };

    // 1. Values.
    let problems: Vec<String> = config.problems().iter().map(ToString::to_string).collect();
    report.check(
        "configuration values",
        if problems.is_empty() {
            Outcome::Ok("every value is valid".into())
        } else {
            Outcome::Fail(format!(
                "{} invalid value(s), defaults used instead:\n{}",
                problems.len(),
                problems.join("\n")
            ))
        },
    );

    // The Jaeger remote sampler, when it is the sampler: which transport and URL gave a strategy.
    if let Some(remote) = remote_sampler(config.sampler()) {
        report.check("jaeger_remote sampler", remote_sampling_check(&config, remote));
    }

    // 2. Is anything exported at all?
    let exporting = if config.is_disabled() {
        report.check("exporter", Outcome::Fail("OTEL_SDK_DISABLED=true: tracing is off, no span is exported".into()))
    } else {
        match config.exporter() {
            ExporterKind::Otlp => report.check("exporter", Outcome::Ok("otlp".into())),
            ExporterKind::Console => report.check(
                "exporter",
                Outcome::Fail("OTEL_TRACES_EXPORTER=console: spans are printed on stderr and never reach Jaeger; unset it or set otlp".into()),
            ),
            ExporterKind::None => report.check(
                "exporter",
                Outcome::Fail("OTEL_TRACES_EXPORTER=none: spans are not exported; unset it or set otlp".into()),
            ),
            other => report.check("exporter", Outcome::Warn(format!("{other:?}: an exporter this doctor does not check"))),
        }
    };

    // 3 and 4. The endpoint, and whether it speaks the configured protocol.
    let otlp = config.otlp();
    let endpoint_ok = exporting && {
        let outcome = endpoint_check(&otlp.endpoint, otlp.protocol);
        report.check("endpoint", outcome)
    };
    if !exporting {
        report.skip("endpoint", "nothing is exported");
    }

    // 5. Jaeger's query API.
    let query_ok = report.check(
        "jaeger query API",
        match client.services() {
            Ok(services) => Outcome::Ok(format!("{} answers ({} services known)", mask_url(&client.url), services.len())),
            // The error quotes the URL it failed on.
            Err(e) => Outcome::Fail(format!(
                "{}\nstart Jaeger (scripts/jaeger.sh start), or point --jaeger-url / KOTAEMON_TRACE_JAEGER_URL at its query port (16686)",
                mask_url(&e.to_string())
            )),
        },
    );

    // 6 and 7. A test span, exported and read back.
    if endpoint_ok {
        match send_test_span(config.clone()) {
            Err(why) => {
                report.check("test span", Outcome::Fail(why));
            }
            Ok((trace_id, took)) => {
                report.check(
                    "test span",
                    Outcome::Ok(format!(
                        "exported to {} in {} ms (trace {trace_id})",
                        mask_url(&otlp.endpoint),
                        took.as_millis()
                    )),
                );
                if query_ok {
                    let started = Instant::now();
                    let outcome = match fetch_settled(client, &trace_id, wait, &mut Progress::new(false)) {
                        Ok(Some(_)) => Outcome::Ok(format!(
                            "found in Jaeger after {} ms: {}",
                            started.elapsed().as_millis(),
                            mask_url(&ui_link(&client.url, &trace_id))
                        )),
                        Ok(None) => Outcome::Fail(format!(
                            "the collector accepted the span but Jaeger at {} did not return trace {trace_id} within {} s.\n\
                             The endpoint may feed another backend, a collector in between may drop or sample it, or Jaeger's ingestion is failing (see its log).",
                            mask_url(&client.url),
                            wait.as_secs()
                        )),
                        Err(e) => Outcome::Fail(format!("reading the trace back failed: {e}")),
                    };
                    report.check("span arrived", outcome);
                } else {
                    report.skip("span arrived", "Jaeger's query API is not reachable");
                }
            }
        }
    } else if exporting {
        report.skip("test span", "the endpoint check failed");
    }

    if report.failed {
        println!("\ndoctor: some checks failed (exit code {CHECK_FAILED})");
        Ok(CHECK_FAILED)
    } else {
        println!("\ndoctor: all checks passed");
        Ok(OK)
    }
}

fn settings_table(settings: &[Row]) -> String {
    let width = settings.iter().map(|s| s.label.len()).max().unwrap_or(0);
    let value_width = settings.iter().map(|s| s.value.chars().count()).max().unwrap_or(0).min(48);
    let mut out = String::new();
    for s in settings {
        out.push_str(&format!("  {:<width$}  {:<value_width$}  {}", s.label, s.value, s.source));
        match (&s.invalid, &s.source) {
            // An invalid variable over a valid file value: the file's value is the one shown.
            (Some(problem), Source::Config(Origin::File { .. })) => {
                out.push_str(&format!(" ({} invalid, ignored)", problem.variable()));
            }
            (Some(_), _) => out.push_str(" (invalid, default used)"),
            (None, _) => {}
        }
        out.push('\n');
    }
    out
}

/// The conventional port of the other protocol, when `port` is it: the classic mistake.
fn classic_mistake(protocol: Protocol, endpoint: &Endpoint) -> Option<String> {
    let host = &endpoint.host;
    match (protocol, endpoint.port) {
        (Protocol::Grpc, HTTP_PORT) => Some(format!(
            "port {HTTP_PORT} is OTLP over HTTP, but the protocol is grpc (OTLP over gRPC listens on {GRPC_PORT}).\n\
             Fix one of them: OTEL_EXPORTER_OTLP_ENDPOINT=http://{host}:{GRPC_PORT} to keep grpc, \
             or OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf to keep port {HTTP_PORT}."
        )),
        (Protocol::HttpProtobuf, GRPC_PORT) => Some(format!(
            "port {GRPC_PORT} is OTLP over gRPC, but the protocol is http/protobuf (OTLP over HTTP listens on {HTTP_PORT}).\n\
             Fix one of them: OTEL_EXPORTER_OTLP_ENDPOINT=http://{host}:{HTTP_PORT} to keep http/protobuf, \
             or OTEL_EXPORTER_OTLP_PROTOCOL=grpc to keep port {GRPC_PORT}."
        )),
        _ => None,
    }
}

/// Checks that something listens at the endpoint and speaks the configured protocol.
pub fn endpoint_check(url: &str, protocol: Protocol) -> Outcome {
    let endpoint = match Endpoint::parse(url) {
        Ok(e) => e,
        Err(why) => return Outcome::Fail(why),
    };
    let shown = mask_url(url);
    let where_ = endpoint.authority();
    let wire = match probe::probe(&endpoint, PROBE_TIMEOUT) {
        Ok(wire) => wire,
        Err(unreachable) => {
            let why = match unreachable {
                Unreachable::Refused => format!("nothing is listening on {where_} (connection refused)"),
                Unreachable::Timeout => {
                    format!("no answer from {where_} within {} s (wrong host, or a firewall)", PROBE_TIMEOUT.as_secs())
                }
                Unreachable::Resolve(e) => format!("the host {:?} does not resolve: {e}", endpoint.host),
                Unreachable::Other(e) => format!("cannot connect to {where_}: {e}"),
            };
            let hint = classic_mistake(protocol, &endpoint).map(|c| format!("\nAlso: {c}")).unwrap_or_default();
            return Outcome::Fail(format!(
                "{why}.\nIs the collector or Jaeger running? (scripts/jaeger.sh start runs one on 127.0.0.1:4317/4318){hint}"
            ));
        }
    };
    let wrong_protocol = |speaks: &str| {
        classic_mistake(protocol, &endpoint).unwrap_or_else(|| {
            format!(
                "{where_} speaks {speaks}, but the protocol is {}: set OTEL_EXPORTER_OTLP_PROTOCOL to match the endpoint, or point the endpoint at the {} port ({}).",
                protocol.as_str(),
                protocol.as_str(),
                if protocol == Protocol::Grpc { GRPC_PORT } else { HTTP_PORT }
            )
        })
    };
    match (protocol, wire) {
        (_, Wire::Tls) if !endpoint.https => {
            Outcome::Fail(format!("{where_} speaks TLS: the endpoint must start with https:// ({shown})"))
        }
        (_, _) if endpoint.https => {
            Outcome::Warn(format!("{where_} answers; TLS endpoints are not probed further, the test span will tell"))
        }
        (Protocol::Grpc, Wire::Http2) => {
            Outcome::Ok(format!("{shown} speaks HTTP/2 (gRPC), as the protocol grpc needs"))
        }
        (Protocol::Grpc, Wire::Http1 { .. }) => {
            Outcome::Fail(wrong_protocol("HTTP/1.1 (OTLP/HTTP or another HTTP server)"))
        }
        (Protocol::HttpProtobuf, Wire::Http2) => Outcome::Fail(wrong_protocol("only HTTP/2 (gRPC)")),
        (Protocol::HttpProtobuf, Wire::Http1 { status, content_type }) => {
            let html = content_type.as_deref().is_some_and(|c| c.starts_with("text/html"));
            match status {
                200..=299 if html => Outcome::Fail(format!(
                    "{shown} answers with an HTML page, not OTLP: is this Jaeger's UI/query port (16686)? OTLP over HTTP is port {HTTP_PORT}."
                )),
                200..=299 => Outcome::Ok(format!("{shown} accepts OTLP over HTTP (status {status})")),
                404 => Outcome::Fail(format!(
                    "{shown} answered 404: no OTLP traces receiver at path {:?}.\n\
                     OTEL_EXPORTER_OTLP_ENDPOINT is the base URL (http://host:{HTTP_PORT}; /v1/traces is appended); \
                     OTEL_EXPORTER_OTLP_TRACES_ENDPOINT must be the full URL ending in /v1/traces.",
                    endpoint.path
                )),
                401 | 403 => Outcome::Warn(format!(
                    "{shown} wants credentials (status {status}) for an unauthenticated probe; the test span carries your headers"
                )),
                other => Outcome::Warn(format!(
                    "{shown} answered status {other} to an empty OTLP request; the test span will tell"
                )),
            }
        }
        (_, Wire::Silent) => {
            Outcome::Warn(format!("{where_} accepted the connection but answered nothing; the test span will tell"))
        }
        (_, Wire::Tls) => Outcome::Ok(format!("{where_} speaks TLS")),
        (_, Wire::Unknown(first)) => Outcome::Fail(format!(
            "{where_} answered with something that is neither HTTP nor gRPC (first bytes {first}): is this the collector's OTLP port?"
        )),
        (other, _) => Outcome::Warn(format!("{shown}: the protocol {} is not probed", other.as_str())),
    }
}

/// The Jaeger remote sampler's settings, when it is the sampler (alone or under `parentbased_`).
fn remote_sampler(sampler: &Sampler) -> Option<&JaegerRemote> {
    match sampler {
        Sampler::JaegerRemote(remote) => Some(remote),
        Sampler::ParentBased(inner) => remote_sampler(inner),
        _ => None,
    }
}

/// How long the sampler may take to get its first strategy: a URL without a path may be tried over both
/// transports, each bounded by the poller's 5 s timeout.
const REMOTE_SAMPLING_WAIT: Duration = Duration::from_secs(12);

/// Starts the configured sampler (nothing exported) and reports which transport and URL gave it a
/// strategy: a URL without a path is resolved by trying both, and the user should see which one won.
fn remote_sampling_check(config: &Config, remote: &JaegerRemote) -> Outcome {
    let endpoint = mask_url(&remote.endpoint);
    let config = config.clone().into_builder().exporter(ExporterKind::None).build();
    let guard = match kotaemon_trace::init_with(config) {
        Ok(guard) => guard,
        Err(e) => return Outcome::Fail(format!("kotaemon_trace::init failed: {e}")),
    };
    let deadline = Instant::now() + REMOTE_SAMPLING_WAIT;
    let source = loop {
        match guard.jaeger_remote_source() {
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            source => break source,
        }
    };
    let _ = guard.shutdown();
    match source {
        Some(source) => Outcome::Ok(format!(
            "strategy received over {} from {} (endpoint {endpoint})",
            source.transport(),
            mask_url(source.url())
        )),
        None => Outcome::Fail(format!(
            "no strategy from {endpoint} within {} s (the reason is printed above); until one arrives the \
             initial rate {} applies.\nPoint endpoint= at Jaeger's sampling port: HTTP 5778 (with or without \
             /sampling) or gRPC 5779 / 14250",
            REMOTE_SAMPLING_WAIT.as_secs(),
            remote.initial_sampling_rate
        )),
    }
}

#[trace_with_otel("kotaemon-trace doctor", skip_all, fields(kotaemon.doctor = true))]
fn doctor_span() -> Option<String> {
    kotaemon_trace::current_trace_id()
}

/// Exports one span with the configuration under test (sampling forced on so it is never dropped by the
/// sampler, batches sent at once) and returns its trace id.
fn send_test_span(config: Config) -> Result<(String, Duration), String> {
    let batch = BatchConfig {
        schedule_delay: Duration::from_millis(100),
        export_timeout: config.batch().export_timeout.min(Duration::from_secs(10)),
        ..config.batch().clone()
    };
    let endpoint = mask_url(&config.otlp().endpoint);
    let config = config.into_builder().sampler(Sampler::AlwaysOn).batch(batch).build();
    let started = Instant::now();
    let guard = kotaemon_trace::init_with(config).map_err(|e| format!("kotaemon_trace::init failed: {e}"))?;
    let trace_id = doctor_span();
    let shutdown = guard.shutdown();
    let took = started.elapsed();
    let trace_id = trace_id.ok_or("the test span was not recorded (tracing is disabled?)")?;
    match shutdown {
        Ok(()) => Ok((trace_id, took)),
        Err(e) => Err(format!("the test span was not delivered to {endpoint}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read as _, Write as _};
    use std::net::TcpListener;

    fn closed_port() -> u16 {
        TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    /// A one-shot server answering `reply` to the first request.
    fn server(reply: &'static [u8]) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = listener.accept() {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                let _ = s.write_all(reply);
            }
        });
        port
    }

    fn fail_text(o: Outcome) -> String {
        match o {
            Outcome::Fail(t) => t,
            other => panic!("expected a failure, got {other:?}"),
        }
    }

    #[test]
    fn nothing_listening_is_named() {
        let text = fail_text(endpoint_check(&format!("http://127.0.0.1:{}", closed_port()), Protocol::Grpc));
        assert!(text.starts_with("nothing is listening on 127.0.0.1:"), "{text}");
    }

    #[test]
    fn an_http_server_for_grpc_and_a_grpc_server_for_http_are_told_apart() {
        let http = server(b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\n\r\n");
        let text = fail_text(endpoint_check(&format!("http://127.0.0.1:{http}"), Protocol::Grpc));
        assert!(text.contains("speaks HTTP/1.1") && text.contains("the protocol is grpc"), "{text}");
        let grpc = server(&[0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0x40, 0]);
        let text = fail_text(endpoint_check(&format!("http://127.0.0.1:{grpc}/v1/traces"), Protocol::HttpProtobuf));
        assert!(text.contains("speaks only HTTP/2 (gRPC)") && text.contains("the protocol is http/protobuf"), "{text}");
        let grpc = server(&[0, 0, 6, 4, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0x40, 0]);
        assert!(matches!(endpoint_check(&format!("http://127.0.0.1:{grpc}"), Protocol::Grpc), Outcome::Ok(_)));
    }

    #[test]
    fn the_classic_port_mistakes_get_their_own_message() {
        let e = Endpoint::parse("http://collector:4318").unwrap();
        let text = classic_mistake(Protocol::Grpc, &e).unwrap();
        assert!(text.starts_with("port 4318 is OTLP over HTTP, but the protocol is grpc"), "{text}");
        assert!(text.contains("OTEL_EXPORTER_OTLP_ENDPOINT=http://collector:4317"), "{text}");
        let e = Endpoint::parse("http://collector:4317/v1/traces").unwrap();
        let text = classic_mistake(Protocol::HttpProtobuf, &e).unwrap();
        assert!(text.starts_with("port 4317 is OTLP over gRPC, but the protocol is http/protobuf"), "{text}");
        assert_eq!(classic_mistake(Protocol::Grpc, &Endpoint::parse("http://c:4317").unwrap()), None);
    }

    #[test]
    fn html_and_404_answers_are_explained() {
        let ui = server(b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\r\n");
        let text = fail_text(endpoint_check(&format!("http://127.0.0.1:{ui}/v1/traces"), Protocol::HttpProtobuf));
        assert!(text.contains("HTML page, not OTLP"), "{text}");
        let missing = server(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
        let text = fail_text(endpoint_check(&format!("http://127.0.0.1:{missing}/wrong"), Protocol::HttpProtobuf));
        assert!(text.contains("answered 404") && text.contains("\"/wrong\""), "{text}");
    }

    fn env(variable: &str) -> Source {
        Source::Config(Origin::Env { variable: variable.into() })
    }

    #[test]
    fn the_settings_table_names_sources_and_invalid_values() {
        let problem = kotaemon_trace::__hooks::fuzz::config_from_lookup(|name| {
            (name == "OTEL_EXPORTER_OTLP_TIMEOUT").then(|| "x".to_owned())
        })
        .problems()[0]
            .clone();
        let table = settings_table(&[
            Row { label: "protocol", value: "grpc".into(), source: env("OTEL_EXPORTER_OTLP_PROTOCOL"), invalid: None },
            Row {
                label: "timeout",
                value: "10000 ms".into(),
                source: env("OTEL_EXPORTER_OTLP_TIMEOUT"),
                invalid: Some(problem.clone()),
            },
            Row {
                label: "sampler",
                value: "always_off".into(),
                source: Source::Config(Origin::File { path: "k.toml".into(), key: "sampler.name", line: 2 }),
                invalid: Some(problem),
            },
        ]);
        assert_eq!(
            table,
            "  protocol  grpc        env OTEL_EXPORTER_OTLP_PROTOCOL\n  \
             timeout   10000 ms    env OTEL_EXPORTER_OTLP_TIMEOUT (invalid, default used)\n  \
             sampler   always_off  file k.toml:2 (sampler.name) (OTEL_EXPORTER_OTLP_TIMEOUT invalid, ignored)\n"
        );
    }

    /// `doctor` prints secrets exactly as the runtime does in its own text (`Debug` of the configuration,
    /// problems, file errors): one set of masking rules.
    #[test]
    fn doctor_and_the_runtime_mask_the_same_secrets_the_same_way() {
        let endpoint = "https://user:pa55@collector:4318/v1/traces?token=t0k3n";
        let query_only = "http://jaeger:16686/?api_key=q5ecret";
        let config = Config::builder()
            .otlp_traces_endpoint(endpoint)
            .otlp_header("authorization", "Bearer s3cr3t")
            .otlp_header("x-api-key", "k3y")
            .jaeger_query_url(query_only)
            .build();
        let rows = settings::effective(&config, query_only, &Source::Config(Origin::Default));
        let table = settings_table(&rows);
        let runtime = format!("{:?}", config.otlp());
        for masked in ["https://***@collector:4318/v1/traces?***", "authorization=***,x-api-key=***"] {
            assert!(table.contains(masked), "doctor shows {masked}: {table}");
            assert!(runtime.contains(masked), "the runtime shows {masked}: {runtime}");
        }
        assert!(table.contains("http://jaeger:16686/?***"), "{table}");
        assert_eq!(mask_url(query_only), "http://jaeger:16686/?***");
        for secret in ["pa55", "t0k3n", "s3cr3t", "k3y", "q5ecret"] {
            assert!(!table.contains(secret) && !runtime.contains(secret), "{secret}: {table}\n{runtime}");
        }
        // The runtime's problems (an invalid value) and file errors mask the same way.
        let problem = kotaemon_trace::__hooks::fuzz::config_from_lookup(|name| {
            (name == "OTEL_EXPORTER_OTLP_ENDPOINT").then(|| "ftp://user:pa55@collector:4318/?token=t0k3n".to_owned())
        });
        assert_eq!(problem.problems()[0].value(), mask_url("ftp://user:pa55@collector:4318/?token=t0k3n"));
        let headers = kotaemon_trace::__hooks::fuzz::config_from_lookup(|name| {
            (name == "OTEL_EXPORTER_OTLP_HEADERS")
                .then(|| "authorization=Bearer%20s3cr3t,x-api-key=k3y,broken".to_owned())
        });
        assert_eq!(headers.problems()[0].value(), "authorization=***,x-api-key=***,***");
        let file = kotaemon_trace::__hooks::fuzz::config_file(
            "[exporter]\nendpoint = \"ftp://user:pa55@c:4318/?token=t0k3n\"\n",
        )
        .unwrap_err();
        assert!(file.to_string().contains(&mask_url("ftp://user:pa55@c:4318/?token=t0k3n")), "{file}");
    }
}
