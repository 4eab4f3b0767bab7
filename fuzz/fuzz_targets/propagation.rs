//! Incoming propagation headers: traceparent, tracestate, baggage, b3 (single and multi), uber-trace-id
//! with uberctx- baggage, and the debug headers (x-debug-tracing, jaeger-debug-id), all propagators on.
//!
//! Input: lines `name: value` (invalid names or values are skipped, as an HTTP server would refuse them);
//! the first line is also tried as the value of every known header. Invariants: no panic; a context that
//! was extracted can be injected again, and what is injected is extracted as the same trace.
#![no_main]

use kotaemon_trace::config::{Config, ExporterKind, Propagator};
use kotaemon_trace::{init_with, propagation, TraceGuard};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const KNOWN: &[&str] = &[
    "traceparent",
    "tracestate",
    "baggage",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-sampled",
    "x-b3-flags",
    "uber-trace-id",
    "uberctx-user",
    "x-debug-tracing",
    "jaeger-debug-id",
];

fn pipeline() -> &'static TraceGuard {
    static GUARD: OnceLock<TraceGuard> = OnceLock::new();
    GUARD.get_or_init(|| {
        let all =
            [Propagator::TraceContext, Propagator::Baggage, Propagator::B3, Propagator::B3Multi, Propagator::Jaeger];
        init_with(Config::builder().exporter(ExporterKind::None).propagators(all).build()).expect("init")
    })
}

fn check(headers: &http::HeaderMap) {
    let parent = propagation::extract(headers);
    let _ = (parent.trace_id(), parent.is_debug_forced());
    let mut out = http::HeaderMap::new();
    propagation::inject_context(parent.context(), &mut out);
    // What was read is written in every format as the same trace, and read back as that trace; the
    // traceparent written is always version 00, 55 characters.
    if let Some(trace_id) = parent.trace_id() {
        let traceparent = out.get("traceparent").expect("a traceparent for a valid parent").to_str().unwrap();
        assert!(traceparent.len() == 55 && traceparent.starts_with("00-"), "{traceparent}");
        assert_eq!(propagation::extract(&out).trace_id(), Some(trace_id), "{out:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    pipeline();
    let text = String::from_utf8_lossy(data);
    let mut headers = http::HeaderMap::new();
    for line in text.lines() {
        let Some((name, value)) = line.split_once(':') else { continue };
        let (Ok(name), Ok(value)) =
            (http::HeaderName::from_bytes(name.trim().as_bytes()), http::HeaderValue::from_str(value.trim()))
        else {
            continue;
        };
        headers.append(name, value);
    }
    check(&headers);
    if let Some(Ok(value)) = text.lines().next().map(|l| http::HeaderValue::from_str(l.trim())) {
        for name in KNOWN {
            let mut one = http::HeaderMap::new();
            one.insert(*name, value.clone());
            check(&one);
        }
    }
});
