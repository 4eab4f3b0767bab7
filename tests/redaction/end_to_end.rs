//! Through the real OTLP/HTTP exporter to a receiver on loopback: no secret byte sequence in what was
//! received, benign attributes intact, the audit attribute present.

use kotaemon_trace::config::{Config, Protocol};
use kotaemon_trace::{init_with, trace_with_otel};
use kotaemon_trace_tests::receiver::Receiver;
use std::fmt;
use std::sync::Mutex;

static PIPELINE: Mutex<()> = Mutex::new(());

#[derive(Debug)]
struct LoginError(String);

impl fmt::Display for LoginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "login failed for {}", self.0)
    }
}

#[trace_with_otel("auth.login", ret, err, fields(user.contact = "reach me at alice.w@example.com", order.id = "order 90320"))]
fn login(username: &str, password: &str, note: &str) -> Result<String, LoginError> {
    let _ = password;
    if note.contains("fail") {
        return Err(LoginError(format!("{username} (phone +44 20 7946 0958)")));
    }
    Ok(format!("session for {username}: Bearer abcdef0123456789ABCDEF"))
}

#[trace_with_otel("user.lookup", redact(phone), skip(card))]
fn lookup(phone: &str, card: &str, query: &str) -> usize {
    phone.len() + card.len() + query.len()
}

const SECRETS: &[&str] = &[
    "hunter2-Secret!",
    "alice.w@example.com",
    "4111 1111 1111 1111",
    "abcdef0123456789ABCDEF",
    "7946 0958",
    "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz012345",
    "+86 139 5998 2352",
];

#[test]
fn no_secret_byte_leaves_the_process_and_benign_values_arrive() {
    let _one = PIPELINE.lock().unwrap_or_else(|e| e.into_inner());
    let receiver = Receiver::start();
    let config = Config::builder()
        .service_name("redaction-e2e")
        .protocol(Protocol::HttpProtobuf)
        .otlp_endpoint(receiver.endpoint())
        .build();
    let guard = init_with(config).unwrap();
    let _ =
        login("alice", "hunter2-Secret!", "card 4111 1111 1111 1111 and key sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz012345");
    let _ = login("bob", "hunter2-Secret!", "please fail");
    lookup("+86 139 5998 2352", "4111 1111 1111 1111", "where is order 90320");
    guard.shutdown().unwrap();

    let bodies = receiver.bodies();
    assert!(!bodies.is_empty(), "the receiver got the export");
    let all: Vec<u8> = bodies.concat();
    for secret in SECRETS {
        assert!(!all.windows(secret.len()).any(|w| w == secret.as_bytes()), "secret {secret:?} reached the collector");
    }
    let text = String::from_utf8_lossy(&all);
    for benign in [
        "order 90320",
        "where is order 90320",
        "alice",
        "auth.login",
        "user.lookup",
        "[REDACTED:key]",
        "[REDACTED:email]",
        "kotaemon.redacted",
        "anon:",
    ] {
        assert!(text.contains(benign), "{benign:?} should arrive intact");
    }
}

#[trace_with_otel("capture.off", fields(kept = "a field"))]
fn with_args(query: &str, limit: i64) -> usize {
    query.len() + limit as usize
}

#[test]
fn argument_capture_can_be_switched_off_globally() {
    let _one = PIPELINE.lock().unwrap_or_else(|e| e.into_inner());
    let exporter = opentelemetry_sdk::trace::InMemorySpanExporter::default();
    let mut redaction = kotaemon_trace::config::RedactionConfig::default();
    redaction.capture_arguments = false;
    let guard = init_with(Config::builder().redaction(redaction).span_exporter(exporter.clone()).build()).unwrap();
    with_args("private question", 3);
    guard.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let span = spans.iter().find(|s| s.name == "capture.off").expect("the span");
    let keys: Vec<&str> = span.attributes.iter().map(|kv| kv.key.as_str()).collect();
    assert_eq!(keys, ["kept"], "fields stay, arguments go");
    guard.shutdown().unwrap();
}
