//! The native observability stack, end to end: a private Prometheus and a private Jaeger (with its
//! Monitor tab reading that Prometheus) on free loopback ports, the example service `rag_service` built
//! from `examples/`, driven for a few seconds by the example load generator `rag_load`, and the CLI's
//! `kotaemon-trace slow` read against the resulting traces. Everything it starts is stopped before it
//! returns (and killed on drop if an assertion fails first).
//!
//! The binaries are built here with `cargo build --workspace --example rag_service --example rag_load
//! --bin kotaemon-trace`, into the same target directory and profile as this test, so the test always
//! drives the current source, also when run alone (`cargo test -p kotaemon-trace-tests --test stack`).
//! `cargo test` releases its build lock before running test binaries, so the nested build does not wait
//! on it. `--workspace` gives them the same feature resolution as `cargo test --workspace --all-targets`
//! (scripts/test.sh), so after that command the nested build compiles nothing (measured: a check of
//! about a second); `-p kotaemon-trace-examples` would rebuild ~20 crates with other features.

use kotaemon_trace_tests::jaeger::{metric_operations, spans, unique_service, JaegerProcess, JaegerSpan};
use kotaemon_trace_tests::prometheus::PrometheusProcess;
use serde_json::Value;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Requests the load generator sends: 15 rounds of its 6 questions.
const REQUESTS: u64 = 90;
/// One question in six names an unknown order and fails in the tool.
const FAILING: u64 = REQUESTS / 6;
/// One in six is the slow refund question (the large model).
const SLOW: u64 = REQUESTS / 6;
/// Every 10th request carries the debug header.
const DEBUG_EVERY: u64 = 10;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root").to_path_buf()
}

/// The binaries the stack test runs, built from this workspace.
pub struct Binaries {
    pub rag_service: PathBuf,
    pub rag_load: PathBuf,
    /// The CLI (`kotaemon-trace-cli`), for `kotaemon-trace slow`.
    pub cli: PathBuf,
}

/// Builds the example binaries and the CLI with the cargo running this test, into this test's target
/// directory and profile.
pub fn example_binaries() -> Binaries {
    // This test is `<target>/<profile>/deps/stack-<hash>`.
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("<target>/<profile>").to_path_buf();
    let target_dir = profile_dir.parent().expect("<target>").to_path_buf();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command
        .current_dir(repo_root())
        .args([
            "build",
            "-q",
            "--workspace",
            "--example",
            "rag_service",
            "--example",
            "rag_load",
            "--bin",
            "kotaemon-trace",
        ])
        .env("CARGO_TARGET_DIR", &target_dir);
    if profile_dir.file_name().is_some_and(|p| p == "release") {
        command.arg("--release");
    }
    let status = command.status().expect("run cargo build for the examples");
    assert!(status.success(), "building the example binaries failed: {status}");
    let examples = profile_dir.join("examples");
    Binaries {
        rag_service: examples.join("rag_service"),
        rag_load: examples.join("rag_load"),
        cli: profile_dir.join("kotaemon-trace"),
    }
}

/// A child process killed (and reaped) on drop, whose stdout lines arrive on a channel.
pub struct Process {
    name: &'static str,
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every stdout line read so far.
    pub seen: Vec<String>,
}

impl Process {
    pub fn spawn(name: &'static str, mut command: Command) -> Process {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start {name}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Process { name, child, lines, seen: Vec::new() }
    }

    /// The next stdout line starting with `prefix`, whole, waiting at most `timeout`.
    pub fn line_starting(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.starts_with(prefix) {
                        return line;
                    }
                }
                Err(_) => {
                    panic!("{}: no line starting with {prefix:?} within {timeout:?}; saw {:?}", self.name, self.seen)
                }
            }
        }
    }

    /// Waits for the process to exit by itself, at most `timeout`; returns whether it exited with 0,
    /// after reading the rest of its output into `seen`.
    pub fn wait(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(2)) {
                    self.seen.push(line);
                }
                return status.success();
            }
            assert!(
                Instant::now() < deadline,
                "{} did not exit within {timeout:?}; output so far {:?}",
                self.name,
                self.seen
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, as a process manager stops a service.
    pub fn terminate(&self) {
        let status = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status().expect("run kill");
        assert!(status.success(), "kill -TERM {} failed", self.child.id());
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Polls `f` every 500 ms until it returns `Some`, for at most `timeout`; panics with `what` and the last
/// value otherwise.
fn eventually<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match f() {
            Ok(value) => return value,
            Err(last) => assert!(Instant::now() < deadline, "{what}: not true within {timeout:?}; last: {last}"),
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// The value of a single-sample PromQL answer.
fn scalar(result: &[Value]) -> Option<f64> {
    result.first()?["value"][1].as_str()?.parse().ok()
}

/// The span of a trace that holds most of its time: the largest self time (its duration minus the time
/// covered by its children). Returns the span and its self time in microseconds.
pub fn dominant_span(trace: &Value) -> Option<(JaegerSpan<'_>, i64)> {
    let all = spans(trace);
    all.iter()
        .map(|span| {
            let start = span.0["startTime"].as_i64().unwrap_or(0);
            let end = start + span.0["duration"].as_i64().unwrap_or(0);
            // The union of the children's intervals, clipped to the parent.
            let mut children: Vec<(i64, i64)> = all
                .iter()
                .filter(|c| c.parent() == Some(span.id()))
                .map(|c| {
                    let s = c.0["startTime"].as_i64().unwrap_or(0);
                    (s.max(start), (s + c.0["duration"].as_i64().unwrap_or(0)).min(end))
                })
                .filter(|(s, e)| e > s)
                .collect();
            children.sort();
            let mut covered = 0;
            let mut reach = start;
            for (s, e) in children {
                if e > reach {
                    covered += e - s.max(reach);
                    reach = e;
                }
            }
            (JaegerSpan(span.0), end - start - covered)
        })
        .max_by_key(|(_, self_time)| *self_time)
}

fn tag_str<'a>(span: &JaegerSpan<'a>, key: &str) -> Option<&'a str> {
    span.tag(key).and_then(|(_, v)| v.as_str())
}

fn has_true_tag(span: &JaegerSpan<'_>, key: &str) -> bool {
    span.tag(key).is_some_and(|(_, v)| v == true)
}

#[test]
fn the_native_stack_shows_the_example_services_traces_red_metrics_and_slow_step() {
    let service = unique_service("rag-stack");
    let load_service = format!("{service}-load");
    let Binaries { rag_service, rag_load, cli } = example_binaries();

    // Prometheus needs the scrape target and Jaeger needs Prometheus: pick the service's metrics port first.
    let metrics_port = free_port();
    let Some(prometheus) = PrometheusProcess::spawn("stack", &[format!("127.0.0.1:{metrics_port}")]) else { return };
    let env = [("PROMETHEUS_URL", prometheus.url.clone())];
    let Some(jaeger) = JaegerProcess::spawn_with("stack", None, &[("scripts/jaeger-spm.yaml", &env)]) else { return };

    let logs = std::env::temp_dir().join(format!("{service}.log"));
    let mut command = Command::new(&rag_service);
    command
        .args(["--listen", "127.0.0.1:0", "--slow-ms", "300", "--log-file"])
        .arg(&logs)
        .env_clear()
        .env("OTEL_SERVICE_NAME", &service)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &jaeger.jaeger.otlp_http)
        .env("OTEL_EXPORTER_PROMETHEUS_PORT", metrics_port.to_string())
        .env("OTEL_BSP_SCHEDULE_DELAY", "200")
        // The debug header's per-second cap is not what this test is about.
        .env("KOTAEMON_TRACE_DEBUG_PER_SECOND", "100");
    let mut server = Process::spawn("rag_service", command);
    let url = listening_url(&mut server);
    assert!(url.starts_with("http://127.0.0.1:"), "the service binds loopback: {url}");

    // Prometheus applies new targets in batches (every 5 s) before scraping them: wait for the first
    // scrape, so that the counters' increases during the load are seen and the rates are not zero.
    eventually("Prometheus scrapes the service", Duration::from_secs(30), || {
        let up = prometheus.query("up").map_err(|e| e.to_string())?;
        up.iter().any(|s| s["value"][1] == "1").then_some(()).ok_or(format!("{up:?}"))
    });

    // A few seconds of load: 3 workers, 100 ms apart.
    let started = Instant::now();
    let mut command = Command::new(&rag_load);
    command
        .args(["--url", &url, "--requests", &REQUESTS.to_string(), "--concurrency", "3", "--pause-ms", "100"])
        .args(["--debug-every", &DEBUG_EVERY.to_string(), "--json"])
        .env_clear()
        .env("OTEL_SERVICE_NAME", &load_service)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &jaeger.jaeger.otlp_http)
        .env("OTEL_BSP_SCHEDULE_DELAY", "200");
    let mut load = Process::spawn("rag_load", command);
    let summary: Value =
        serde_json::from_str(&load.line_starting("{", Duration::from_secs(120))).expect("the JSON summary");
    assert!(load.wait(Duration::from_secs(30)), "rag_load failed: {summary}");
    let load_time = started.elapsed();
    eprintln!("stack: load {summary}");
    assert_eq!(summary["requests"], REQUESTS, "{summary}");
    assert_eq!(summary["transport_errors"], 0, "{summary}");
    assert_eq!(summary["http_errors"], FAILING, "exactly the unknown-order questions fail: {summary}");
    assert_eq!(summary["ok"], REQUESTS - FAILING, "{summary}");
    assert_eq!(summary["debug_forced"], REQUESTS / DEBUG_EVERY, "the service granted every debug header: {summary}");
    assert!(load_time >= Duration::from_secs(3), "the load ran for a few seconds: {load_time:?}");

    // Traces in Jaeger: one per request, each continuing the load generator's CLIENT span.
    let traces = jaeger.jaeger.traces(&service, 500, Duration::from_secs(60), |t| {
        t.len() as u64 >= REQUESTS && t.iter().all(|t| spans(t).len() >= 7)
    });
    assert_eq!(traces.len() as u64, REQUESTS, "one trace per request in Jaeger");
    let mut errors = Vec::new();
    let mut forced = 0;
    for trace in &traces {
        let all = spans(trace);
        let server = all
            .iter()
            .find(|s| s.name() == "POST /ask" && tag_str(s, "span.kind") == Some("server"))
            .expect("a SERVER span");
        let client = all
            .iter()
            .find(|s| s.name() == "POST /ask" && tag_str(s, "span.kind") == Some("client"))
            .expect("the caller's span");
        assert_eq!(server.parent(), Some(client.id()), "the service continued the caller's trace (traceparent)");
        assert_eq!(server.tag("http.route").map(|(_, v)| v.clone()), Some(Value::from("/ask")));
        if all.iter().any(|s| s.name() == "call_tool.get_order_status" && has_true_tag(s, "error")) {
            assert!(has_true_tag(server, "error"), "a failed tool call fails the request's span");
            errors.push(trace["traceID"].as_str().unwrap_or_default().to_owned());
        }
        if all
            .iter()
            .filter(|s| s.0["processID"] == server.0["processID"])
            .all(|s| has_true_tag(s, "kotaemon.debug_forced"))
        {
            forced += 1;
        }
    }
    assert_eq!(errors.len() as u64, FAILING, "the failing requests' traces carry the tool error");
    assert_eq!(forced, REQUESTS / DEBUG_EVERY, "debug-forced requests are marked on every service span");

    // The slow step: in the slowest trace, the span holding most of the time is the large model's call.
    let slowest = traces
        .iter()
        .max_by_key(|t| {
            spans(t)
                .iter()
                .filter(|s| tag_str(s, "span.kind") == Some("server"))
                .map(|s| s.0["duration"].as_i64().unwrap_or(0))
                .max()
        })
        .expect("a trace");
    let server_us = spans(slowest)
        .iter()
        .find(|s| tag_str(s, "span.kind") == Some("server"))
        .and_then(|s| s.0["duration"].as_i64())
        .unwrap_or(0);
    let (dominant, self_us) = dominant_span(slowest).expect("a dominant span");
    eprintln!("stack: slowest request {server_us} µs; {} holds {self_us} µs of it", dominant.name());
    assert_eq!(dominant.name(), "generate.response", "the slow step is the model call");
    assert_eq!(tag_str(&dominant, "llm.model_name"), Some("template-llm-large"));
    assert!(self_us * 10 >= server_us * 7, "the model call holds most of the request ({self_us} of {server_us} µs)");
    // The CLI's triage command names the same step for the same trace: the seed's "filter Duration > 250ms,
    // find the span holding the time" in one line.
    let slowest_id = slowest["traceID"].as_str().expect("a trace id");
    let output = Command::new(&cli)
        .args([
            "slow",
            "--service",
            &service,
            "--min-duration",
            "250ms",
            "--lookback",
            "1h",
            "--limit",
            "100",
            "--json",
            "--jaeger-url",
        ])
        .arg(&jaeger.jaeger.query_url)
        .env_clear()
        .output()
        .expect("run kotaemon-trace slow");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "kotaemon-trace slow failed: {stdout}{}", String::from_utf8_lossy(&output.stderr));
    let report: Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("kotaemon-trace slow --json: {e}: {stdout}"));
    let rows = report["traces"].as_array().expect("the slow traces");
    assert_eq!(rows.len() as u64, SLOW, "exactly the refund questions take over 250 ms: {stdout}");
    assert!(
        rows.iter().all(|r| r["slowest_step"] == "generate.response"),
        "slow blames the model call in each: {stdout}"
    );
    assert!(rows.iter().any(|r| r["trace_id"] == slowest_id), "the slowest trace is listed: {stdout}");

    // RED series in Prometheus, with every request counted once scraped.
    let calls =
        |selector: &str| format!("sum(traces_span_metrics_calls_total{{service_name=\"{service}\",{selector}}})");
    let server_calls = eventually("Prometheus counts every request", Duration::from_secs(30), || {
        let r = prometheus.query(&calls("span_kind=\"SPAN_KIND_SERVER\"")).map_err(|e| e.to_string())?;
        scalar(&r).filter(|&v| v as u64 == REQUESTS).ok_or(format!("{r:?}"))
    });
    assert_eq!(server_calls as u64, REQUESTS);
    let tool_errors =
        prometheus.query(&calls("span_name=\"call_tool.get_order_status\",status_code=\"STATUS_CODE_ERROR\"")).unwrap();
    assert_eq!(scalar(&tool_errors).map(|v| v as u64), Some(FAILING), "tool errors: {tool_errors:?}");
    let by_model = prometheus
        .query(&format!("sum by (gen_ai_request_model) (gen_ai_client_operation_duration_seconds_count{{service_name=\"{service}\"}})"))
        .unwrap();
    let mut models: Vec<(String, u64)> = by_model
        .iter()
        .map(|r| {
            (
                r["metric"]["gen_ai_request_model"].as_str().unwrap_or_default().to_owned(),
                scalar(std::slice::from_ref(r)).unwrap_or(0.0) as u64,
            )
        })
        .collect();
    models.sort();
    assert_eq!(
        models,
        [("template-llm-large".to_owned(), SLOW), ("template-llm-small".to_owned(), REQUESTS - FAILING - SLOW)]
    );

    // Every query of the Grafana dashboard returns data from this Prometheus.
    crate::files::assert_dashboard_queries_return_data(&service, |promql| prometheus.query(promql));

    // Jaeger's Monitor tab: its metrics API lists the example's operations, per span kind.
    let end = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() + 60_000;
    let metrics = |metric: &str, kind: &str| {
        format!("/api/metrics/{metric}?service={service}&groupByOperation=true&endTs={end}&lookback=600000&step=5000&ratePer=600000&spanKind={kind}")
    };
    let poll = |path: String, want: &[&str]| {
        eventually(&format!("Jaeger {path}"), Duration::from_secs(60), || {
            let answer = jaeger.jaeger.get(&path)?;
            let ops = metric_operations(&answer);
            if ops == want {
                Ok(ops)
            } else {
                let promql = format!("sum by (span_name, span_kind) (rate(traces_span_metrics_calls_total{{service_name=\"{service}\"}}[10m]))");
                Err(format!("{ops:?}; Jaeger answered {answer}; Prometheus {promql}: {:?}", prometheus.query(&promql)))
            }
        })
    };
    poll(metrics("calls", "server"), &["POST /ask"]);
    poll(metrics("calls", "client"), &["call_tool.create_return", "call_tool.get_order_status", "generate.response"]);
    poll(metrics("errors", "client"), &["call_tool.get_order_status"]);
    poll(format!("{}&quantile=0.95", metrics("latencies", "server")), &["POST /ask"]);

    // Logs join traces: every failed tool call logged one JSON line under a trace Jaeger holds as failed.
    let log_text = std::fs::read_to_string(&logs).expect("the service's log file");
    let failed_logs: Vec<String> = log_text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["message"] == "tool call failed")
        .map(|l| l["trace_id"].as_str().unwrap_or_default().to_owned())
        .collect();
    let mut failed_logs_sorted = failed_logs.clone();
    failed_logs_sorted.sort();
    errors.sort();
    assert_eq!(failed_logs_sorted, errors, "the failure log lines carry the failed traces' ids");

    // SIGTERM: the service stops accepting, flushes, and exits 0.
    server.terminate();
    assert!(server.wait(Duration::from_secs(30)), "rag_service exited non-zero on SIGTERM: {:?}", server.seen);
    assert!(
        server.seen.iter().any(|l| l == &format!("rag_service: stopping (SIGTERM) after {REQUESTS} requests")),
        "{:?}",
        server.seen
    );
    assert!(server.seen.iter().any(|l| l == "rag_service: every span flushed"), "{:?}", server.seen);
    let _ = std::fs::remove_file(&logs);
    drop(jaeger);
    drop(prometheus);
}

/// `--max-requests`: the service answers that many requests, then stops by itself and flushes; no
/// collector needed (spans are discarded), so this runs everywhere.
#[test]
fn the_service_stops_by_itself_after_max_requests() {
    let Binaries { rag_service, rag_load, .. } = example_binaries();
    let mut command = Command::new(&rag_service);
    command
        .args(["--listen", "127.0.0.1:0", "--max-requests", "6", "--slow-ms", "50"])
        .env_clear()
        .env("OTEL_TRACES_EXPORTER", "none")
        .env("OTEL_METRICS_EXPORTER", "none")
        .env("RAG_SERVICE_LOG_FILE", "/dev/null");
    let mut server = Process::spawn("rag_service", command);
    let url = listening_url(&mut server);
    assert!(
        !server.seen.iter().any(|l| l.contains("metrics on")),
        "OTEL_METRICS_EXPORTER=none switches the endpoint off"
    );
    let mut command = Command::new(&rag_load);
    command
        .args(["--url", &url, "--requests", "6", "--concurrency", "2", "--json"])
        .env_clear()
        .env("OTEL_TRACES_EXPORTER", "none");
    let mut load = Process::spawn("rag_load", command);
    let summary: Value = serde_json::from_str(&load.line_starting("{", Duration::from_secs(60))).unwrap();
    assert!(load.wait(Duration::from_secs(30)));
    assert_eq!((summary["ok"].as_u64(), summary["http_errors"].as_u64()), (Some(5), Some(1)), "{summary}");
    assert!(server.wait(Duration::from_secs(30)), "the service exits 0 after --max-requests: {:?}", server.seen);
    assert!(
        server.seen.iter().any(|l| l == "rag_service: stopping (--max-requests reached) after 6 requests"),
        "{:?}",
        server.seen
    );
    assert!(server.seen.iter().any(|l| l == "rag_service: every span flushed"), "{:?}", server.seen);
}

/// The service's URL from its `listening on` line.
fn listening_url(server: &mut Process) -> String {
    let line = server.line_starting("rag_service: listening on ", Duration::from_secs(30));
    line.trim_start_matches("rag_service: listening on ").split_whitespace().next().expect("the address").to_owned()
}
