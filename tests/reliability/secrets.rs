//! Secrets in configuration (`OTEL_EXPORTER_OTLP_HEADERS` values, `KOTAEMON_TRACE_REDACTION_KEY`, a
//! password in the endpoint URL) never appear in `Debug` output, errors or problems.

use crate::exclusive;
use kotaemon_trace::config::{Config, Protocol, RedactionConfig};
use kotaemon_trace::init_with;
use opentelemetry::trace::{Span as _, Tracer as _};

use std::time::Duration;

const HEADER_SECRET: &str = "hdr-s3cr3t-9f8e7d";
const KEY_SECRET: &str = "redaction-key-s3cr3t-0123456789";
const URL_PASSWORD: &str = "url-pa55word-4242";

fn assert_clean(what: &str, text: &str) {
    for secret in [HEADER_SECRET, KEY_SECRET, URL_PASSWORD] {
        assert!(!text.contains(secret), "{what} shows a secret: {text}");
    }
}

fn unreachable_base() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    format!("http://collector:{URL_PASSWORD}@127.0.0.1:{port}")
}

fn secret_config(protocol: Protocol) -> Config {
    Config::builder()
        .protocol(protocol)
        .otlp_endpoint(unreachable_base())
        .otlp_header("authorization", format!("Bearer {HEADER_SECRET}"))
        .otlp_header("x-api-key", HEADER_SECRET)
        .otlp_timeout(Duration::from_millis(300))
        .redaction({
            let mut c = RedactionConfig::default();
            c.pseudonym_key = Some(KEY_SECRET.to_owned());
            c
        })
        .build()
}

#[test]
fn config_debug_shows_names_not_secrets() {
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let config = secret_config(protocol);
        let text = format!("{config:?}");
        assert_clean("Config's Debug", &text);
        assert!(text.contains("authorization") && text.contains("x-api-key"), "header names stay visible: {text}");
        assert!(text.contains("collector:***@127.0.0.1") || text.contains("***@127.0.0.1"), "{text}");
        assert_clean("OtlpConfig's Debug", &format!("{:#?}", config.otlp()));
    }
}

#[test]
fn guard_debug_shows_counters_not_configuration() {
    let _one = exclusive();
    for protocol in [Protocol::HttpProtobuf, Protocol::Grpc] {
        let guard = init_with(secret_config(protocol)).expect("init needs no collector");
        let text = format!("{guard:#?}");
        assert_clean("TraceGuard's Debug", &text);
        assert!(text.contains("spans_dropped"), "{text}");
        let _ = guard.shutdown();
    }
}

#[test]
fn export_errors_and_shutdown_errors_are_scrubbed() {
    let _one = exclusive();
    for protocol in [Protocol::HttpProtobuf, Protocol::Grpc] {
        let guard = init_with(secret_config(protocol)).expect("init needs no collector");
        opentelemetry::global::tracer("secrets").start("s").end();
        let error = guard.force_flush().expect_err("nothing listens");
        assert_clean("the flush error", &error.to_string());
        assert_clean("the flush error's Debug", &format!("{error:?}"));
        let result = guard.shutdown();
        assert!(result.is_err(), "the span is lost and reported");
        assert_clean("the shutdown error", &format!("{result:?}"));
    }
}

#[test]
fn init_errors_mask_header_values() {
    let _one = exclusive();
    let config =
        Config::builder().protocol(Protocol::Grpc).otlp_header("x-api-key", format!("{HEADER_SECRET}\u{7f}")).build();
    let error = init_with(config).expect_err("a control character cannot go in a gRPC header");
    assert_clean("InitError's Display", &error.to_string());
    assert_clean("InitError's Debug", &format!("{error:?}"));
    assert!(error.to_string().contains("x-api-key=***"), "{error}");
}
