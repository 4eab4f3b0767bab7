//! The Docker flavour of the stack, checked without Docker: the compose file, Prometheus, Jaeger and Grafana
//! configuration parse, agree with each other, bind published ports to loopback, and the dashboard's
//! queries name only metrics and labels the library really exports (read from a live scrape of this
//! process's own metrics endpoint). `docker compose config` runs too when a Docker client is installed.

use kotaemon_trace::config::{Config, ExporterKind, MetricsConfig};
use kotaemon_trace::{init_with, llm, trace_with_otel};
use kotaemon_trace_tests::jaeger::skip_notice;
use serde_json::Value as Json;
use serde_yaml::Value as Yaml;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn stack_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root").join("examples/observability-stack")
}

fn yaml(relative: &str) -> Yaml {
    let path = stack_dir().join(relative);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn dashboard() -> Json {
    let path = stack_dir().join("grafana/dashboards/rag.json");
    serde_json::from_str(&std::fs::read_to_string(&path).expect("the dashboard"))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn strings(value: &Yaml) -> Vec<String> {
    value.as_sequence().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_owned)).collect()
}

/// Every panel (rows flattened) with its targets.
fn panels(dashboard: &Json) -> Vec<&Json> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().into_iter().flatten() {
        out.push(panel);
        out.extend(panel["panels"].as_array().into_iter().flatten());
    }
    out
}

/// The Prometheus queries of the dashboard: `(panel title, expr)`.
pub fn prometheus_queries(dashboard: &Json) -> Vec<(String, String)> {
    panels(dashboard)
        .into_iter()
        .flat_map(|p| p["targets"].as_array().into_iter().flatten().map(move |t| (p, t)))
        .filter(|(p, t)| {
            t["datasource"]["uid"] == "prometheus"
                || (t["datasource"].is_null() && p["datasource"]["uid"] == "prometheus")
        })
        .map(|(p, t)| {
            (p["title"].as_str().unwrap_or_default().to_owned(), t["expr"].as_str().unwrap_or_default().to_owned())
        })
        .collect()
}

/// Substitutes the dashboard's variables for a direct Prometheus query.
fn concrete(expr: &str, service: &str) -> String {
    expr.replace("$__rate_interval", "5m").replace("$service", service)
}

/// Runs every Prometheus query of the dashboard against a real Prometheus holding the example
/// service's metrics (called by the native stack test) and asserts each returns data.
pub fn assert_dashboard_queries_return_data(service: &str, query: impl Fn(&str) -> Result<Vec<Json>, String>) {
    let queries = prometheus_queries(&dashboard());
    assert!(queries.len() >= 8, "the dashboard has its Prometheus panels: {queries:?}");
    for (title, expr) in queries {
        let promql = concrete(&expr, service);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let result = query(&promql);
            let has_number = result.as_ref().is_ok_and(|r| {
                r.iter().any(|s| s["value"][1].as_str().is_some_and(|v| v.parse::<f64>().is_ok_and(f64::is_finite)))
            });
            if has_number {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "dashboard panel {title:?}: {promql} returned no finite value: {result:?}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// Metric and label names in a PromQL expression: `(metrics, labels)` where metrics are identifiers
/// followed by a selector or range, and labels those inside `{…}` matchers and `by (…)` clauses.
fn names_in(expr: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut metrics = BTreeSet::new();
    let mut labels = BTreeSet::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    let mut in_string = false;
    let mut in_braces = false;
    let mut in_by = false;
    while i < bytes.len() {
        let c = bytes[i] as char;
        if in_string {
            if c == '\\' {
                i += 1;
            } else if c == '"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' => in_braces = true,
            '}' => in_braces = false,
            ')' => in_by = false,
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                let word = &expr[start..i];
                let next = expr[i..].trim_start().chars().next();
                if in_braces || in_by {
                    labels.insert(word.to_owned());
                } else if word == "by" || word == "without" {
                    in_by = true;
                } else if matches!(next, Some('{') | Some('[')) {
                    metrics.insert(word.to_owned());
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    (metrics, labels)
}

#[trace_with_otel("generate.response", kind = "llm", skip_all)]
fn generate() {
    llm::model("dashboard-check-model");
    llm::usage(10, 2);
}

#[trace_with_otel("call_tool.check", kind = "tool")]
fn tool() {}

/// Metric names (with their `_bucket`/`_sum`/`_count` series) and label names of a live scrape of this
/// process's kotaemon-trace metrics endpoint.
fn exported_names() -> (BTreeSet<String>, BTreeSet<String>) {
    let mut metrics = MetricsConfig::default();
    metrics.prometheus = Some("127.0.0.1:0".into());
    let guard = init_with(
        Config::builder().service_name("dashboard-check").exporter(ExporterKind::None).metrics(metrics).build(),
    )
    .unwrap();
    generate();
    tool();
    let address = guard.prometheus_address().expect("the metrics endpoint");
    let body =
        ureq::get(&format!("http://{address}/metrics")).call().expect("scrape").body_mut().read_to_string().unwrap();
    guard.shutdown().unwrap();
    let mut names = BTreeSet::new();
    let mut labels = BTreeSet::new();
    for line in body.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (name, rest) = line.split_at(line.find(['{', ' ']).unwrap_or(line.len()));
        names.insert(name.to_owned());
        if let Some(inner) = rest.strip_prefix('{').and_then(|r| r.split('}').next()) {
            labels.extend(inner.split(',').filter_map(|kv| kv.split('=').next()).map(str::to_owned));
        }
    }
    (names, labels)
}

#[test]
fn the_dashboard_queries_name_only_metrics_and_labels_the_library_exports() {
    let dashboard = dashboard();
    assert_eq!(dashboard["uid"], "kotaemon-rag");
    let (exported, exported_labels) = exported_names();
    for required in [
        "traces_span_metrics_calls_total",
        "traces_span_metrics_duration_milliseconds_bucket",
        "gen_ai_client_operation_duration_seconds_bucket",
        "gen_ai_client_token_usage_sum",
    ] {
        assert!(exported.contains(required), "the library exports {required}: {exported:?}");
    }
    let queries = prometheus_queries(&dashboard);
    let mut used = BTreeSet::new();
    for (title, expr) in &queries {
        let (metrics, labels) = names_in(expr);
        assert!(!metrics.is_empty(), "panel {title:?} queries no metric: {expr}");
        for metric in &metrics {
            assert!(
                exported.contains(metric),
                "panel {title:?} uses {metric}, which kotaemon-trace does not export ({exported:?})"
            );
        }
        for label in &labels {
            assert!(
                exported_labels.contains(label),
                "panel {title:?} uses the label {label}, not exported ({exported_labels:?})"
            );
        }
        assert!(expr.contains("service_name=\"$service\""), "panel {title:?} follows the service variable: {expr}");
        used.extend(metrics);
        used.extend(labels.into_iter().map(|l| format!("label:{l}")));
    }
    // What issue 9 asks of the dashboard: RED per step, latency and tokens by model, errors per tool.
    let titles: Vec<&str> = panels(&dashboard).iter().filter_map(|p| p["title"].as_str()).collect();
    for (needle, what) in [
        ("by step", "RED per step"),
        ("latency by model", "latency by model"),
        ("Tokens per second by model", "tokens per model"),
        ("per tool", "error rate per tool"),
    ] {
        assert!(titles.iter().any(|t| t.contains(needle)), "a panel for {what}: {titles:?}");
    }
    for needed in [
        "traces_span_metrics_calls_total",
        "traces_span_metrics_duration_milliseconds_bucket",
        "gen_ai_client_operation_duration_seconds_bucket",
        "gen_ai_client_token_usage_sum",
        "label:span_name",
        "label:gen_ai_request_model",
        "label:status_code",
    ] {
        assert!(used.contains(needed), "the dashboard uses {needed}");
    }
    let tool_panel = queries.iter().find(|(t, _)| t.contains("per tool")).expect("the tool panel");
    assert!(tool_panel.1.contains("call_tool") && tool_panel.1.contains("STATUS_CODE_ERROR"), "{tool_panel:?}");
    // Every panel's data source is one that Grafana is provisioned with.
    let uids = datasource_uids();
    for panel in panels(&dashboard).into_iter().filter(|p| p["type"] != "row") {
        let uid = panel["datasource"]["uid"].as_str().unwrap_or_default();
        assert!(uids.contains(uid), "panel {:?} uses data source {uid:?}, not provisioned ({uids:?})", panel["title"]);
    }
    let variable = &dashboard["templating"]["list"][0];
    assert_eq!(variable["name"], "service");
    assert!(variable["definition"]
        .as_str()
        .is_some_and(|d| d.contains("traces_span_metrics_calls_total") && d.contains("service_name")));
}

fn datasource_uids() -> BTreeSet<String> {
    let sources = yaml("grafana/provisioning/datasources/datasources.yaml");
    sources["datasources"]
        .as_sequence()
        .into_iter()
        .flatten()
        .filter_map(|d| d["uid"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn grafana_is_provisioned_with_prometheus_jaeger_and_the_span_to_logs_link() {
    let sources = yaml("grafana/provisioning/datasources/datasources.yaml");
    let list = sources["datasources"].as_sequence().expect("datasources");
    let by_type = |t: &str| list.iter().find(|d| d["type"] == t).unwrap_or_else(|| panic!("a {t} data source"));
    let prometheus = by_type("prometheus");
    let jaeger = by_type("jaeger");
    let loki = by_type("loki");
    assert_eq!(prometheus["url"], "http://prometheus:9090");
    assert_eq!(jaeger["url"], "http://jaeger:16686");
    assert_eq!(loki["url"], "http://loki:3100");
    // Span → logs: the Jaeger data source points at Loki and filters on the trace id. Grafana expands
    // `$…` in provisioning files, so its own variables must be written `$${…}`.
    let to_logs = &jaeger["jsonData"]["tracesToLogsV2"];
    assert_eq!(to_logs["datasourceUid"], loki["uid"]);
    let query = to_logs["query"].as_str().expect("a logs query");
    assert!(query.contains("trace_id=\"$${__trace.traceId}\""), "{query}");
    assert_eq!(jaeger["jsonData"]["tracesToMetrics"]["datasourceUid"], prometheus["uid"]);
    // Logs → trace, the way back.
    let derived = &loki["jsonData"]["derivedFields"][0];
    assert_eq!(derived["datasourceUid"], jaeger["uid"]);
    assert_eq!(derived["matcherRegex"], "trace_id");
    // No unescaped `${` (it would be replaced by an empty environment variable).
    let text = std::fs::read_to_string(stack_dir().join("grafana/provisioning/datasources/datasources.yaml")).unwrap();
    for (i, _) in text.match_indices("${") {
        assert!(i > 0 && &text[i - 1..i] == "$", "unescaped ${{ in datasources.yaml at byte {i}");
    }
    // The dashboards provider reads the directory the compose file mounts the dashboards into.
    let providers = yaml("grafana/provisioning/dashboards/dashboards.yaml");
    let path = providers["providers"][0]["options"]["path"].as_str().expect("a provider path");
    let compose = yaml("docker-compose.yml");
    let mounts = strings(&compose["services"]["grafana"]["volumes"]);
    assert!(
        mounts.iter().any(|m| m == &format!("./grafana/dashboards:{path}:ro")),
        "{mounts:?} mounts the dashboards at {path}"
    );
}

#[test]
fn the_compose_file_runs_jaeger_v2_with_spm_prometheus_grafana_and_the_example_on_loopback() {
    let compose = yaml("docker-compose.yml");
    let services = compose["services"].as_mapping().expect("services");
    let names: BTreeSet<&str> = services.keys().filter_map(Yaml::as_str).collect();
    for service in ["rag-service", "rag-load", "jaeger", "prometheus", "grafana", "loki", "alloy"] {
        assert!(names.contains(service), "the compose file runs {service}: {names:?}");
    }
    let image = compose["services"]["jaeger"]["image"].as_str().unwrap();
    assert_eq!(image, "jaegertracing/jaeger:2.13.0", "the official Jaeger v2 image matching the v1.76 the tests build");
    // Published ports are bound to loopback.
    for (name, service) in services {
        for port in strings(&service["ports"]) {
            assert!(port.starts_with("127.0.0.1:"), "{name:?} publishes {port} beyond this machine");
        }
        // Every file mounted from this directory exists.
        for mount in strings(&service["volumes"]) {
            if let Some(local) = mount.strip_prefix("./") {
                let file = local.split(':').next().unwrap();
                assert!(stack_dir().join(file).exists(), "{name:?} mounts {file}, which does not exist");
            }
        }
    }
    // The example service, built from this repository, with metrics on the port Prometheus scrapes.
    let rag = &compose["services"]["rag-service"];
    let dockerfile = rag["build"]["dockerfile"].as_str().unwrap();
    let context = stack_dir().join(rag["build"]["context"].as_str().unwrap());
    assert!(context.join(dockerfile).exists(), "the Dockerfile {dockerfile}");
    assert!(context.join("Cargo.toml").exists(), "the build context is the workspace root");
    let env = &rag["environment"];
    assert_eq!(env["OTEL_METRICS_EXPORTER"], "prometheus");
    assert_eq!(env["OTEL_EXPORTER_OTLP_ENDPOINT"], "http://jaeger:4318");
    let metrics_port = env["OTEL_EXPORTER_PROMETHEUS_PORT"].as_str().unwrap();
    let prometheus = yaml("prometheus.yml");
    let targets = strings(&prometheus["scrape_configs"][0]["static_configs"][0]["targets"]);
    assert_eq!(targets, [format!("rag-service:{metrics_port}")]);
    // The load generator is bounded.
    let load = strings(&compose["services"]["rag-load"]["command"]);
    assert!(load.windows(2).any(|w| w[0] == "--requests" && w[1].parse::<u64>().is_ok()), "{load:?}");
    assert_eq!(compose["services"]["rag-load"]["restart"], "no");

    // Jaeger: the config it is started with reads the span metrics from that Prometheus under the names
    // the library exports, and the UI shows the Monitor tab.
    let command = strings(&compose["services"]["jaeger"]["command"]);
    assert_eq!(command, ["--config", "/etc/jaeger/jaeger.yaml"]);
    let jaeger = yaml("jaeger.yaml");
    let query = &jaeger["extensions"]["jaeger_query"];
    let metrics_store = query["storage"]["metrics"].as_str().expect("a metrics storage for SPM");
    let store = &jaeger["extensions"]["jaeger_storage"]["metric_backends"][metrics_store]["prometheus"];
    assert_eq!(store["endpoint"], "http://prometheus:9090");
    assert_eq!(store["metric_namespace"], "traces_span_metrics");
    assert_eq!((store["normalize_calls"].as_bool(), store["normalize_duration"].as_bool()), (Some(true), Some(true)));
    assert_eq!(store["latency_unit"], "ms");
    let ui_config = query["ui"]["config_file"].as_str().unwrap();
    let jaeger_mounts = strings(&compose["services"]["jaeger"]["volumes"]);
    let ui_file = jaeger_mounts.iter().find(|m| m.contains(ui_config)).expect("the UI config is mounted");
    let ui: Json = serde_json::from_str(
        &std::fs::read_to_string(stack_dir().join(ui_file.trim_start_matches("./").split(':').next().unwrap()))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(ui["monitor"]["menuEnabled"], true);
    // Jaeger's own span → logs link: a link pattern opening the trace's logs in Grafana.
    let links = ui["linkPatterns"].as_array().expect("link patterns");
    assert!(
        links.iter().any(|l| l["url"].as_str().is_some_and(|u| u.contains("#{traceID}") && u.contains("loki"))),
        "{links:?}"
    );
    // The ports the OTLP receivers listen on are the ones published.
    let http = jaeger["receivers"]["otlp"]["protocols"]["http"]["endpoint"].as_str().unwrap();
    assert!(http.ends_with(":4318"));
    assert!(strings(&compose["services"]["jaeger"]["ports"]).contains(&"127.0.0.1:4318:4318".to_owned()));
}

#[test]
fn docker_compose_config_accepts_the_file_where_docker_exists() {
    let file = stack_dir().join("docker-compose.yml");
    let compose = std::process::Command::new("docker").args(["compose", "version"]).output();
    match compose {
        Err(e) => {
            return skip_notice(&format!(
                "stack: `docker compose config` not run: no Docker client on this machine ({e})"
            ))
        }
        Ok(o) if !o.status.success() => {
            return skip_notice("stack: `docker compose config` not run: the Docker client here has no compose plugin")
        }
        Ok(_) => {}
    }
    let output =
        std::process::Command::new("docker").args(["compose", "-f"]).arg(&file).args(["config", "--quiet"]).output();
    match output {
        Err(e) => panic!("docker compose config: {e}"),
        Ok(o) => assert!(o.status.success(), "docker compose config: {}", String::from_utf8_lossy(&o.stderr)),
    }
}
