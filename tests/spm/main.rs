//! Jaeger's Monitor tab without a collector: the service's own Prometheus endpoint, scraped by a real
//! Prometheus, read by a real Jaeger through its metrics API (`/api/metrics/calls`, `/latencies`,
//! `/errors`) — all built from the Go module proxy by `scripts/`, all on loopback, all stopped here.

use kotaemon_trace::config::{Config, ExporterKind, MetricsConfig, Protocol};
use kotaemon_trace::{init_with, llm, trace_with_otel};
use kotaemon_trace_tests::jaeger::{metric_operations, unique_service, JaegerProcess};
use kotaemon_trace_tests::prometheus::PrometheusProcess;
use serde_json::Value;
use std::time::{Duration, Instant};

#[derive(Debug)]
struct NotFound;
impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("order not found")
    }
}

#[trace_with_otel("retrieve.customer_history", kind = "retriever")]
async fn retrieve() {
    tokio::time::sleep(Duration::from_millis(3)).await;
}

#[trace_with_otel("call_tool.get_order_status", kind = "tool", err)]
async fn get_order_status(order: u32) -> Result<&'static str, NotFound> {
    tokio::time::sleep(Duration::from_millis(2)).await;
    if order.is_multiple_of(4) {
        Err(NotFound)
    } else {
        Ok("shipped")
    }
}

#[trace_with_otel("generate.response", kind = "llm", skip_all)]
async fn generate() -> &'static str {
    llm::model("template-llm");
    tokio::time::sleep(Duration::from_millis(5)).await;
    llm::usage(120, 12);
    "ok"
}

#[trace_with_otel("handle_user_query", err)]
async fn handle_user_query(order: u32) -> Result<&'static str, NotFound> {
    retrieve().await;
    let status = get_order_status(order).await?;
    let _ = generate().await;
    Ok(status)
}

/// One pipeline at a time: a pipeline is process-wide.
static ONE_PIPELINE: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// GET a Jaeger metrics API path until `accept` likes the answer, for at most 90 s.
fn poll(jaeger: &JaegerProcess, path: &str, accept: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let answer = jaeger.jaeger.get(path);
        if let Ok(value) = &answer {
            if accept(value) {
                return value.clone();
            }
        }
        assert!(Instant::now() < deadline, "{path}: Jaeger never answered as expected; last answer: {answer:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn jaegers_monitor_tab_reads_the_services_red_metrics_from_prometheus() {
    let _one = ONE_PIPELINE.lock().unwrap_or_else(|e| e.into_inner());
    let service = unique_service("spm");
    // The pipeline first: Prometheus needs the scrape target's address.
    let mut metrics = MetricsConfig::default();
    metrics.prometheus = Some("127.0.0.1:0".into());
    let guard = init_with(
        Config::builder()
            .service_name(&service)
            .exporter(ExporterKind::None)
            .protocol(Protocol::HttpProtobuf)
            .metrics(metrics)
            .build(),
    )
    .unwrap();
    let target = guard.prometheus_address().unwrap().to_string();
    let Some(prometheus) = PrometheusProcess::spawn("spm", &[target]) else { return };
    let env = [("PROMETHEUS_URL", prometheus.url.clone())];
    let Some(jaeger) = JaegerProcess::spawn_with("spm", None, &[("scripts/jaeger-spm.yaml", &env)]) else { return };

    // Steady traffic for a while, so rates over the window have several scrapes to work with.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let until = Instant::now() + Duration::from_secs(6);
    let mut order = 0;
    while Instant::now() < until {
        order += 1;
        let _ = runtime.block_on(handle_user_query(order));
    }

    // Prometheus holds the series under the names and labels Jaeger queries.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let promql =
            format!("traces_span_metrics_calls_total{{service_name=\"{service}\",span_name=\"handle_user_query\"}}");
        if prometheus.query(&promql).is_ok_and(|r| !r.is_empty()) {
            break;
        }
        assert!(Instant::now() < deadline, "Prometheus never scraped the service's metrics");
        std::thread::sleep(Duration::from_millis(500));
    }

    let end = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() + 60_000;
    let query = |kind: &str, metric: &str| {
        format!(
            "/api/metrics/{metric}?service={service}&groupByOperation=true&endTs={end}&lookback=600000&step=5000&ratePer=600000&spanKind={kind}"
        )
    };
    // The entry span is SERVER: what the Monitor tab shows by default.
    let calls =
        poll(&jaeger, &query("server", "calls"), |v| metric_operations(v).contains(&"handle_user_query".to_owned()));
    assert_eq!(metric_operations(&calls), ["handle_user_query"]);
    // Model and tool calls are CLIENT spans.
    let clients = poll(&jaeger, &query("client", "calls"), |v| metric_operations(v).len() >= 2);
    assert_eq!(metric_operations(&clients), ["call_tool.get_order_status", "generate.response"]);
    // One order in four fails in the tool, and the failure reaches the entry span through `err`.
    let errors = poll(&jaeger, &query("client", "errors"), |v| !metric_operations(v).is_empty());
    assert_eq!(metric_operations(&errors), ["call_tool.get_order_status"]);
    let latencies =
        poll(&jaeger, &format!("{}&quantile=0.95", query("server", "latencies")), |v| !metric_operations(v).is_empty());
    assert_eq!(metric_operations(&latencies), ["handle_user_query"]);

    drop(jaeger);
    drop(prometheus);
    guard.shutdown().unwrap();
}

#[trace_with_otel("otlp_push.handle")]
fn pushed() {}

#[test]
fn otlp_metrics_push_lands_in_prometheus_under_the_same_names() {
    let _one = ONE_PIPELINE.lock().unwrap_or_else(|e| e.into_inner());
    let service = unique_service("otlp-metrics");
    let Some(prometheus) = PrometheusProcess::spawn("otlp metrics push", &[]) else { return };
    let mut metrics = MetricsConfig::default();
    metrics.otlp = true;
    metrics.otlp_endpoint = Some(format!("{}/api/v1/otlp/v1/metrics", prometheus.url));
    metrics.export_interval = Duration::from_millis(300);
    let guard =
        init_with(Config::builder().service_name(&service).exporter(ExporterKind::None).metrics(metrics).build())
            .unwrap();
    for _ in 0..5 {
        pushed();
    }
    // The final push at shutdown carries all five calls, whatever the interval did before.
    guard.shutdown().unwrap();
    let promql = format!("traces_span_metrics_calls_total{{service_name=\"{service}\",span_name=\"otlp_push.handle\",span_kind=\"SPAN_KIND_SERVER\",status_code=\"STATUS_CODE_UNSET\"}}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let value = loop {
        if let Some(sample) = prometheus.query(&promql).ok().and_then(|r| r.first().cloned()) {
            break sample["value"][1].as_str().unwrap_or_default().to_owned();
        }
        assert!(Instant::now() < deadline, "Prometheus never received the pushed series: {promql}");
        std::thread::sleep(Duration::from_millis(300));
    };
    assert_eq!(value, "5");
    let histogram = format!(
        "traces_span_metrics_duration_milliseconds_count{{service_name=\"{service}\",span_name=\"otlp_push.handle\"}}"
    );
    let count = prometheus.query(&histogram).unwrap();
    assert_eq!(
        count.first().map(|s| s["value"][1].as_str().unwrap_or_default().to_owned()).as_deref(),
        Some("5"),
        "{count:?}"
    );
}
