//! RED and GenAI metrics through the Prometheus scrape endpoint, read back with a real exposition-format
//! parser: every call counts (sampled or not), errors and panics are errors, kinds and entry spans carry
//! the span kinds Jaeger's Monitor tab filters on, model calls feed the GenAI histograms, and the series
//! cap folds what is beyond it into one overflow series.
//!
//! The histograms live in each call site's `static`, so they are cumulative over the process: each test
//! uses functions of its own and one pipeline at a time.

use kotaemon_trace::config::{Config, ExporterKind, MetricsConfig, Sampler};
use kotaemon_trace::{init_with, llm, trace_with_otel, TraceGuard};
use prometheus_parse::{Sample, Scrape, Value};
use std::io::{Read, Write};
use std::sync::{Mutex, MutexGuard};

static ONE_PIPELINE: Mutex<()> = Mutex::new(());

fn pipeline(sampler: Sampler, max_series: usize) -> (MutexGuard<'static, ()>, TraceGuard) {
    let one = ONE_PIPELINE.lock().unwrap_or_else(|e| e.into_inner());
    (one, start(sampler, max_series))
}

/// A pipeline, for a caller that already holds `ONE_PIPELINE`.
fn start(sampler: Sampler, max_series: usize) -> TraceGuard {
    let mut metrics = MetricsConfig::default();
    metrics.prometheus = Some("127.0.0.1:0".into());
    metrics.max_series = max_series;
    let config = Config::builder()
        .service_name("metrics-test")
        .exporter(ExporterKind::None)
        .sampler(sampler)
        .metrics(metrics)
        .build();
    init_with(config).unwrap()
}

/// GET /metrics from the guard's endpoint and parse it.
fn scrape(guard: &TraceGuard) -> Scrape {
    let body = scrape_text(guard);
    Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))).expect("valid exposition format")
}

/// GET /metrics from the guard's endpoint: the exposition text.
fn scrape_text(guard: &TraceGuard) -> String {
    let address = guard.prometheus_address().expect("the endpoint runs");
    assert!(address.ip().is_loopback(), "binds loopback by default");
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(5))).unwrap();
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    body.to_owned()
}

fn find<'a>(scrape: &'a Scrape, metric: &str, labels: &[(&str, &str)]) -> Vec<&'a Sample> {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == metric && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect()
}

fn counter(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    match find(scrape, metric, labels).as_slice() {
        [one] => match &one.value {
            Value::Counter(v) | Value::Untyped(v) | Value::Gauge(v) => *v,
            other => panic!("{metric}: not a counter: {other:?}"),
        },
        other => panic!("{metric} {labels:?}: expected one sample, found {}", other.len()),
    }
}

fn histogram_count(scrape: &Scrape, metric: &str, labels: &[(&str, &str)]) -> (u64, f64, Vec<(f64, f64)>) {
    match find(scrape, metric, labels).as_slice() {
        [one] => match &one.value {
            Value::Histogram(buckets) => {
                let count = buckets.iter().find(|b| b.less_than.is_infinite()).map_or(0.0, |b| b.count);
                let sum = find(scrape, &format!("{metric}_sum"), labels).first().map_or(f64::NAN, |s| match s.value {
                    Value::Untyped(v) | Value::Gauge(v) | Value::Counter(v) => v,
                    _ => f64::NAN,
                });
                (count as u64, sum, buckets.iter().map(|b| (b.less_than, b.count)).collect())
            }
            other => panic!("{metric}: not a histogram: {other:?}"),
        },
        other => panic!("{metric} {labels:?}: expected one histogram, found {}", other.len()),
    }
}

#[derive(Debug)]
struct Refused;
impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("refused")
    }
}

#[trace_with_otel("red.handle", skip_all)]
fn handle(fail: bool) -> Result<u32, Refused> {
    lookup();
    if fail {
        Err(Refused)
    } else {
        Ok(1)
    }
}

#[trace_with_otel("red.lookup")]
fn lookup() {}

#[trace_with_otel("red.explode")]
fn explode() {
    panic!("boom");
}

#[trace_with_otel("red.handle_err", skip_all, err)]
fn handle_err(fail: bool) -> Result<u32, Refused> {
    handle(fail)
}

#[test]
fn every_call_counts_with_its_kind_and_status_and_errors_are_errors() {
    let (_one, guard) = pipeline(Sampler::ParentBased(Box::new(Sampler::AlwaysOn)), 2000);
    for i in 0..10 {
        let _ = handle_err(i % 5 == 0);
    }
    let _ = std::panic::catch_unwind(explode);
    let scrape = scrape(&guard);
    let calls = "traces_span_metrics_calls_total";
    let service = ("service_name", "metrics-test");
    // handle_err is the entry span: SERVER; 2 of its 10 calls returned Err under `err`.
    let server = ("span_kind", "SPAN_KIND_SERVER");
    assert_eq!(
        counter(
            &scrape,
            calls,
            &[service, ("span_name", "red.handle_err"), server, ("status_code", "STATUS_CODE_UNSET")]
        ),
        8.0
    );
    assert_eq!(
        counter(
            &scrape,
            calls,
            &[service, ("span_name", "red.handle_err"), server, ("status_code", "STATUS_CODE_ERROR")]
        ),
        2.0
    );
    // handle has no `err` option: its Err is not recorded as an error. It and lookup are INTERNAL children.
    let internal = ("span_kind", "SPAN_KIND_INTERNAL");
    assert_eq!(
        counter(&scrape, calls, &[("span_name", "red.handle"), internal, ("status_code", "STATUS_CODE_UNSET")]),
        10.0
    );
    assert_eq!(counter(&scrape, calls, &[("span_name", "red.lookup"), internal]), 10.0);
    // A panic is an error.
    assert_eq!(counter(&scrape, calls, &[("span_name", "red.explode"), ("status_code", "STATUS_CODE_ERROR")]), 1.0);
    // The duration histogram holds the same calls, in milliseconds, with cumulative buckets.
    let (count, sum, buckets) = histogram_count(
        &scrape,
        "traces_span_metrics_duration_milliseconds",
        &[("span_name", "red.lookup"), internal, ("status_code", "STATUS_CODE_UNSET")],
    );
    assert_eq!(count, 10);
    assert!((0.0..1000.0).contains(&sum), "{sum}");
    assert!(buckets.windows(2).all(|w| w[0].1 <= w[1].1), "cumulative: {buckets:?}");
    assert_eq!(buckets.iter().map(|b| b.0).filter(|b| b.is_finite()).count(), 16, "spanmetrics' bucket bounds");
    assert_eq!(counter(&scrape, "kotaemon_trace_spans_dropped_total", &[service]), 0.0);
    guard.shutdown().unwrap();
}

#[trace_with_otel("unsampled.root", skip_all)]
fn unsampled_root() {
    unsampled_child();
}

#[trace_with_otel("unsampled.child")]
fn unsampled_child() {}

#[test]
fn unsampled_calls_are_counted_too() {
    let (_one, guard) = pipeline(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)), 2000);
    for _ in 0..7 {
        unsampled_root();
    }
    let scrape = scrape(&guard);
    let calls = "traces_span_metrics_calls_total";
    assert_eq!(counter(&scrape, calls, &[("span_name", "unsampled.root"), ("span_kind", "SPAN_KIND_SERVER")]), 7.0);
    assert_eq!(counter(&scrape, calls, &[("span_name", "unsampled.child"), ("span_kind", "SPAN_KIND_INTERNAL")]), 7.0);
    guard.shutdown().unwrap();
}

#[trace_with_otel("generate.response", kind = "llm", skip_all)]
async fn generate(model: &str, tokens: u64) -> String {
    llm::provider("openai");
    llm::model(model);
    tokio::task::yield_now().await; // the model call; the labels follow the future across polls
    llm::usage(tokens, tokens / 10);
    "answer".to_owned()
}

#[test]
fn model_calls_feed_the_gen_ai_histograms_sampled_or_not() {
    for sampler in [Sampler::AlwaysOn, Sampler::AlwaysOff] {
        let (_one, guard) = pipeline(sampler.clone(), 2000);
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let before = scrape(&guard);
        let model = format!("test-model-{}", sampler.name());
        runtime.block_on(async {
            generate(&model, 800).await;
            generate(&model, 1200).await;
        });
        let scrape = scrape(&guard);
        let labels = [
            ("gen_ai_operation_name", "chat"),
            ("gen_ai_request_model", model.as_str()),
            ("gen_ai_provider_name", "openai"),
        ];
        let (count, _, _) = histogram_count(&scrape, "gen_ai_client_operation_duration_seconds", &labels);
        assert_eq!(count, 2, "{}", sampler.name());
        let input = [labels.as_slice(), &[("gen_ai_token_type", "input")]].concat();
        let (count, sum, _) = histogram_count(&scrape, "gen_ai_client_token_usage", &input);
        assert_eq!((count, sum), (2, 2000.0), "{}", sampler.name());
        let output = [labels.as_slice(), &[("gen_ai_token_type", "output")]].concat();
        assert_eq!(histogram_count(&scrape, "gen_ai_client_token_usage", &output).1, 200.0);
        // The LLM span is a CLIENT span in the RED metrics.
        let client = [("span_name", "generate.response"), ("span_kind", "SPAN_KIND_SERVER")];
        let entry_calls = |s: &Scrape| {
            find(s, "traces_span_metrics_calls_total", &client).first().map_or(0.0, |s| match s.value {
                Value::Counter(v) | Value::Untyped(v) => v,
                _ => 0.0,
            })
        };
        assert_eq!(entry_calls(&scrape) - entry_calls(&before), 0.0, "an explicit kind keeps CLIENT even at the root");
        let client = [("span_name", "generate.response"), ("span_kind", "SPAN_KIND_CLIENT")];
        assert!(counter(&scrape, "traces_span_metrics_calls_total", &client) >= 2.0);
        drop(runtime);
        guard.shutdown().unwrap();
    }
}

#[trace_with_otel("cap.first")]
fn cap_first() {}
#[trace_with_otel("cap.second")]
fn cap_second() {}
#[trace_with_otel("cap.third")]
fn cap_third() {}

#[test]
fn the_series_cap_folds_further_call_sites_into_one_overflow_series_and_counts_them() {
    // Each call site accounts for four series; the sites registered by other tests count too, so the cap
    // is set from what is already there: room for exactly one more site.
    let (_one, guard) = pipeline(Sampler::AlwaysOn, 2000);
    // The registry counts call sites; every span name in this binary belongs to one site, so distinct
    // names are the sites registered so far.
    let already = scrape(&guard)
        .samples
        .iter()
        .filter(|s| s.metric == "traces_span_metrics_calls_total" && s.labels.get("span_name").is_some())
        .map(|s| s.labels.get("span_name").unwrap().to_owned())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    guard.shutdown().unwrap();
    // Still holding ONE_PIPELINE: no other test can register a site in between.
    let guard = start(Sampler::AlwaysOn, (already + 1) * 4);
    let overflowed_before = counter(&scrape(&guard), "kotaemon_trace_metrics_overflow_total", &[]);
    cap_first();
    cap_second();
    cap_third();
    cap_third();
    let scrape = scrape(&guard);
    let registered: Vec<&str> = ["cap.first", "cap.second", "cap.third"]
        .into_iter()
        .filter(|name| !find(&scrape, "traces_span_metrics_calls_total", &[("span_name", name)]).is_empty())
        .collect();
    assert_eq!(registered, ["cap.first"], "only one site fits under the cap");
    let overflow = counter(
        &scrape,
        "traces_span_metrics_calls_total",
        &[("otel_metric_overflow", "true"), ("status_code", "STATUS_CODE_UNSET")],
    );
    assert!(overflow >= 3.0, "the calls beyond the cap are still counted, in the overflow series: {overflow}");
    assert_eq!(
        counter(&scrape, "kotaemon_trace_metrics_overflow_total", &[]) - overflowed_before,
        2.0,
        "two sites folded"
    );
    guard.shutdown().unwrap();
}

#[test]
fn only_metrics_is_served() {
    let (_one, guard) = pipeline(Sampler::AlwaysOn, 2000);
    let address = guard.prometheus_address().unwrap();
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.write_all(b"GET /secrets HTTP/1.1\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 404"), "{response}");
    guard.shutdown().unwrap();
    assert!(std::net::TcpStream::connect(address).is_err(), "the endpoint stops with the pipeline");
}

#[trace_with_otel(name = "red.notify")]
fn notify(note: &str) -> usize {
    note.len()
}

#[test]
fn redactions_are_counted_by_kind_on_the_export_thread() {
    let (_one, guard) = pipeline(Sampler::AlwaysOn, 2000);
    let before = scrape(&guard);
    let count = |scrape: &Scrape, kind: &str| {
        let samples = find(scrape, "kotaemon_trace_redactions_total", &[("kind", kind)]);
        samples.first().map_or(0.0, |_| counter(scrape, "kotaemon_trace_redactions_total", &[("kind", kind)]))
    };
    for _ in 0..3 {
        notify("mail alice@example.com or bob@example.org");
        notify("token xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx");
    }
    notify("nothing to hide here");
    guard.force_flush().unwrap();
    let after = scrape(&guard);
    assert_eq!(count(&after, "email") - count(&before, "email"), 6.0, "two per call, three calls");
    assert_eq!(count(&after, "slack_token") - count(&before, "slack_token"), 3.0);
    assert!(
        find(&after, "kotaemon_trace_redactions_total", &[]).iter().all(|s| s.labels.get("kind").is_some()),
        "every series names its kind"
    );
    guard.shutdown().unwrap();
}

#[trace_with_otel("dropped.root", skip_all)]
async fn dropped_root_calls(client: &reqwest_middleware::ClientWithMiddleware, url: &str) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}

/// The integrations count each request in the RED series, under the span's name and kind, also when the
/// sampler drops the trace: Jaeger's Monitor tab lists the server's operations.
#[test]
fn the_server_layer_and_the_http_client_record_red_series() {
    use kotaemon_trace::integrations::{reqwest::TracingMiddleware, tower::ServerLayer};
    let (_one, guard) = pipeline(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)), 2000);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let router = axum::Router::new()
            .route("/orders/{id}", axum::routing::get(|| async { "shipped" }))
            .route("/fail", axum::routing::get(|| async { (axum::http::StatusCode::BAD_GATEWAY, "no") }))
            .route(
                "/traceparent",
                axum::routing::get(|headers: axum::http::HeaderMap| async move {
                    headers.get("traceparent").and_then(|v| v.to_str().ok()).unwrap_or("none").to_owned()
                }),
            )
            .layer(ServerLayer::new());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        let client =
            reqwest_middleware::ClientBuilder::new(reqwest::Client::new()).with(TracingMiddleware::new()).build();
        for path in ["/orders/1", "/orders/2", "/fail"] {
            client.get(format!("http://{address}{path}")).send().await.unwrap();
        }
        // A root the sampler drops still has a trace, and sends it unsampled: the called service records
        // nothing and starts no orphan trace of its own.
        let sent = dropped_root_calls(&client, &format!("http://{address}/traceparent")).await;
        let parts: Vec<&str> = sent.split('-').collect();
        assert_eq!(parts.len(), 4, "{sent}");
        assert!(parts[1].len() == 32 && parts[1] != "0".repeat(32), "a trace id: {sent}");
        let flags = u8::from_str_radix(parts[3], 16).unwrap();
        assert_eq!(flags & 1, 0, "not sampled: {sent}");
    });
    // The exposition text itself: `prometheus-parse` skips a line whose label value holds braces, as a
    // route template does (Prometheus reads it).
    let series = |name: &str, kind: &str, status: &str| {
        format!(
            "traces_span_metrics_calls_total{{service_name=\"metrics-test\",span_name=\"{name}\",\
             span_kind=\"SPAN_KIND_{kind}\",status_code=\"STATUS_CODE_{status}\"}} "
        )
    };
    let expected = [
        series("GET /orders/{id}", "SERVER", "UNSET") + "2",
        series("GET /fail", "SERVER", "ERROR") + "1",
        series("GET", "CLIENT", "UNSET") + "3",
        series("GET", "CLIENT", "ERROR") + "1",
    ];
    // A server span ends when its body has been sent, which may be just after the client read it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut text = scrape_text(&guard);
    while !expected.iter().all(|line| text.lines().any(|l| l == line)) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
        text = scrape_text(&guard);
    }
    for line in &expected {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
    drop(runtime);
    guard.shutdown().unwrap();
}
