//! The `kotaemon-trace` binary end to end, against the real Jaeger of `scripts/jaeger.sh`.
//!
//! These tests live in the CLI crate, not in the top-level `tests/` crate, because cargo builds a
//! package's binaries for its own integration tests and names them in `CARGO_BIN_EXE_<name>`; from another
//! package the binary would have to be built and located by hand. The Jaeger helpers are shared through
//! a dev-dependency on `kotaemon-trace-tests`.
//!
//! The traced program is this test binary itself: the ignored test `workload` runs a small RAG pipeline
//! (retrieval with scored documents, a tool call, an LLM step, a pseudonymous caller id) when
//! `KT_CLI_WORKLOAD` is set, so the traces are known exactly and no second cargo build is needed.
//!
//! Under `CI=true` an unreachable Jaeger fails the tests that need it; elsewhere they print why they skip.
//! The red `doctor` cases and `debug` without a Jaeger need no Jaeger and always run.

use kotaemon_trace::{llm, retrieval, tool, trace_with_otel};
use kotaemon_trace_tests::jaeger::{Jaeger, spans, unique_service};
use serde_json::Value;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_kotaemon-trace");

// ----------------------------------------------------------------------------------------------------
// The traced workload (runs only in a child process started by the tests below).
// ----------------------------------------------------------------------------------------------------

#[derive(Debug)]
struct ToolError(String);

impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "order {} was not found", self.0)
    }
}

#[trace_with_otel("retrieve.customer_history", skip_all, fields(retriever.type = "vector"))]
fn retrieve(_query: &str) -> Vec<(&'static str, f64)> {
    std::thread::sleep(Duration::from_millis(5));
    let docs = vec![("kb-refunds", 0.92), ("kb-returns", 0.81)];
    retrieval::documents(docs.iter().map(|(id, score)| retrieval::Document { id, score: *score, content: None }));
    docs
}

#[trace_with_otel("call_tool.get_order_status", err)]
fn get_order_status(order_id: &str) -> Result<&'static str, ToolError> {
    tool::call("get_order_status", "call_1", &format!("{{\"order_id\":\"{order_id}\"}}"));
    std::thread::sleep(Duration::from_millis(3));
    if order_id == "ORD-1042" { Ok("shipped") } else { Err(ToolError(order_id.to_owned())) }
}

#[trace_with_otel("generate.response", skip_all)]
fn generate(slow_ms: u64) -> String {
    llm::model("gpt-4o-mini");
    llm::parameters(0.2, 256);
    std::thread::sleep(Duration::from_millis(slow_ms));
    llm::usage(812, 9);
    "Your order shipped.".to_owned()
}

#[trace_with_otel("handle_user_query", skip_all, err, fields(user.anonymous_id = kotaemon_trace::redact::pseudonym("alice@example.com").unwrap_or_default()))]
fn handle_user_query(order_id: &str, slow_ms: u64) -> Result<String, ToolError> {
    println!("TRACE_ID={}", kotaemon_trace::current_trace_id().unwrap_or_default());
    retrieve("where is my order");
    get_order_status(order_id)?;
    Ok(generate(slow_ms))
}

/// Not a test: the traced program the tests run (`KT_CLI_WORKLOAD=ok|error`, `KT_CLI_SERVICE`,
/// `KT_CLI_SLOW_MS`, `KT_CLI_EXIT`). Ignored so that a normal test run never executes it.
#[test]
#[ignore = "the traced program of the CLI tests; they run it in a child process"]
fn workload() {
    let Ok(kind) = std::env::var("KT_CLI_WORKLOAD") else { return };
    let mut config = kotaemon_trace::config::Config::from_env().into_builder();
    if let Ok(service) = std::env::var("KT_CLI_SERVICE") {
        config = config.service_name(service);
    }
    let guard = kotaemon_trace::init_with(config.build()).expect("init");
    let slow_ms = std::env::var("KT_CLI_SLOW_MS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let order = if kind == "error" { "ORD-9" } else { "ORD-1042" };
    let _ = handle_user_query(order, slow_ms);
    guard.shutdown().expect("every span exported");
    if let Some(code) = std::env::var("KT_CLI_EXIT").ok().and_then(|c| c.parse().ok()) {
        std::process::exit(code);
    }
}

// ----------------------------------------------------------------------------------------------------
// Helpers
// ----------------------------------------------------------------------------------------------------

/// A command with no tracing settings inherited from the test's own environment.
fn clean(program: &str) -> Command {
    let mut command = Command::new(program);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy().to_string();
        if name.starts_with("OTEL_") || name.starts_with("KOTAEMON_TRACE_") || name.starts_with("KT_CLI_") {
            command.env_remove(name);
        }
    }
    command
}

fn kotaemon_trace(jaeger_url: &str) -> Command {
    let mut command = clean(BIN);
    command.arg("--jaeger-url").arg(jaeger_url);
    command
}

/// The workload command line: this test binary running only the ignored `workload` test.
fn workload_command(kind: &str, service: &str) -> Command {
    let mut command = clean(std::env::current_exe().expect("the test binary").to_str().unwrap());
    command
        .args(["--ignored", "--exact", "workload", "--nocapture", "--test-threads", "1"])
        .env("KT_CLI_WORKLOAD", kind)
        .env("KT_CLI_SERVICE", service);
    command
}

fn workload_args() -> Vec<String> {
    let exe = std::env::current_exe().unwrap().to_string_lossy().to_string();
    [exe.as_str(), "--ignored", "--exact", "workload", "--nocapture", "--test-threads", "1"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

/// Runs the workload exporting straight to Jaeger (no CLI involved) and returns its trace id.
fn traced_run(jaeger: &Jaeger, kind: &str, service: &str, slow_ms: u64) -> String {
    let out = workload_command(kind, service)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &jaeger.otlp_http)
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("KT_CLI_SLOW_MS", slow_ms.to_string())
        .output()
        .expect("run the workload");
    assert!(out.status.success(), "workload failed: {}", text(&out.stderr));
    trace_id_in(&text(&out.stdout))
}

fn trace_id_in(stdout: &str) -> String {
    let id = stdout
        .lines()
        .find_map(|l| l.split_once("TRACE_ID=").map(|(_, id)| id.chars().take(32).collect::<String>()))
        .unwrap_or_else(|| panic!("no TRACE_ID line in {stdout}"));
    assert_eq!(id.len(), 32, "{stdout}");
    id
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run(command: &mut Command) -> (i32, String, String) {
    let Output { status, stdout, stderr } = command.output().expect("run kotaemon-trace");
    (status.code().unwrap_or(-1), text(&stdout), text(&stderr))
}

fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().trim_end_matches('/').parse().unwrap()
}

// ----------------------------------------------------------------------------------------------------
// doctor
// ----------------------------------------------------------------------------------------------------

fn doctor_green(protocol: &str) {
    let Some(jaeger) = Jaeger::from_env_or_skip(&format!("doctor green ({protocol})")) else { return };
    let service = unique_service("cli-doctor");
    let endpoint = if protocol == "grpc" { &jaeger.otlp_grpc } else { &jaeger.otlp_http };
    let (code, stdout, stderr) = run(kotaemon_trace(&jaeger.query_url)
        .arg("doctor")
        .env("OTEL_SERVICE_NAME", &service)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
        .env("OTEL_TRACES_SAMPLER", "always_off")
        .env("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key=s3cr3t-value"));
    assert_eq!(code, 0, "stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("service.name") && l.contains(&service) && l.contains("env OTEL_SERVICE_NAME")),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("protocol") && l.contains(protocol) && l.contains("env OTEL_EXPORTER_OTLP_PROTOCOL")),
        "{stdout}"
    );
    assert!(stdout.lines().any(|l| l.contains("timeout") && l.ends_with("default")), "{stdout}");
    assert!(stdout.lines().any(|l| l.contains("jaeger query url") && l.contains("flag --jaeger-url")), "{stdout}");
    assert!(stdout.contains("x-api-key=***"), "{stdout}");
    assert!(!stdout.contains("s3cr3t") && !stderr.contains("s3cr3t"), "a header value was printed");
    assert!(stdout.contains("doctor: all checks passed"), "{stdout}");
    // The span it reports as arrived really is in Jaeger, under the configured service, even though the
    // configured sampler would have dropped it.
    let line =
        stdout.lines().find(|l| l.contains("span arrived: found in Jaeger")).unwrap_or_else(|| panic!("{stdout}"));
    let trace_id = line.rsplit("/trace/").next().unwrap().trim();
    let trace = jaeger.get(&format!("/api/traces/{trace_id}")).expect("the doctor's trace");
    assert_eq!(kotaemon_trace_tests::jaeger::service_of(&trace["data"][0]), service);
    assert_eq!(spans(&trace["data"][0])[0].name(), "kotaemon-trace doctor");
}

#[test]
fn doctor_is_green_over_http_protobuf() {
    doctor_green("http/protobuf");
}

#[test]
fn doctor_is_green_over_grpc() {
    doctor_green("grpc");
}

#[test]
fn doctor_names_the_transport_and_url_the_jaeger_remote_sampler_used() {
    // A private Jaeger (its own ports, so its sampling ports are not 5778/5779): a URL without a path on
    // its HTTP port is tried over gRPC first and then over HTTP; on its gRPC port, gRPC answers at once.
    let Some(jaeger) = kotaemon_trace_tests::jaeger::JaegerProcess::spawn("doctor jaeger_remote", None) else {
        return;
    };
    for (endpoint, expected) in [
        (jaeger.sampling_http.clone(), format!("over HTTP from {}/sampling", jaeger.sampling_http)),
        (format!("{}/", jaeger.sampling_grpc), format!("over gRPC from {}", jaeger.sampling_grpc)),
    ] {
        let (_, stdout, stderr) = run(kotaemon_trace(&jaeger.jaeger.query_url)
            .arg("doctor")
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &jaeger.jaeger.otlp_grpc)
            .env("OTEL_TRACES_SAMPLER", "parentbased_jaeger_remote")
            .env("OTEL_TRACES_SAMPLER_ARG", format!("endpoint={endpoint},pollingIntervalMs=200")));
        let line = stdout
            .lines()
            .find(|l| l.contains("jaeger_remote sampler:"))
            .unwrap_or_else(|| panic!("stdout:\n{stdout}\nstderr:\n{stderr}"));
        assert!(line.contains("ok") && line.contains(&expected), "{line}\nstderr:\n{stderr}");
    }
}

#[test]
fn doctor_red_when_nothing_listens_at_the_endpoint() {
    let port = closed_port();
    let (code, stdout, _) = run(kotaemon_trace(&format!("http://127.0.0.1:{}", closed_port()))
        .arg("doctor")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://127.0.0.1:{port}")));
    assert_eq!(code, 5, "{stdout}");
    assert!(
        stdout.contains(&format!("FAIL  endpoint: nothing is listening on 127.0.0.1:{port} (connection refused)")),
        "{stdout}"
    );
    assert!(stdout.contains("skip  test span: the endpoint check failed"), "{stdout}");
    assert!(stdout.contains("FAIL  jaeger query API"), "the unreachable query API is its own failure: {stdout}");
}

#[test]
fn doctor_reads_the_config_file_and_names_it_as_the_source() {
    let dir = std::env::temp_dir().join(format!("kt-cli-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("kotaemon-trace.toml");
    let port = closed_port();
    std::fs::write(&file, format!("[service]\nname = \"from-file\"\n[exporter]\nendpoint = \"http://127.0.0.1:{port}\"\n[jaeger]\nquery_url = \"http://127.0.0.1:{port}\"\n")).unwrap();
    // No --jaeger-url: the file's jaeger.query_url is used, and said to be.
    let (code, stdout, _) = run(clean(BIN).arg("doctor").env("KOTAEMON_TRACE_CONFIG", &file));
    assert_eq!(code, 5, "nothing listens there: {stdout}");
    let line = |name: &str| stdout.lines().find(|l| l.contains(name)).unwrap_or_default().to_owned();
    assert!(
        line("service.name").contains("from-file")
            && line("service.name").contains(&format!("file {}", file.display())),
        "{stdout}"
    );
    assert!(line("jaeger query url").contains(&format!("file {}", file.display())), "{stdout}");
    // A wrong file is refused first, with file, line and key.
    std::fs::write(&file, "[sampler]\nname = \"sometimes\"\n").unwrap();
    let (code, stdout, _) = run(clean(BIN).arg("doctor").env("KOTAEMON_TRACE_CONFIG", &file));
    assert_eq!(code, 5, "{stdout}");
    assert!(
        stdout.contains("FAIL  configuration file:") && stdout.contains("kotaemon-trace.toml:2:8: sampler.name"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn doctor_red_names_each_invalid_value() {
    let (code, stdout, _) = run(kotaemon_trace(&format!("http://127.0.0.1:{}", closed_port()))
        .arg("doctor")
        .env("OTEL_TRACES_SAMPLER", "sometimes")
        .env("OTEL_EXPORTER_OTLP_TIMEOUT", "10s")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://127.0.0.1:{}", closed_port())));
    assert_eq!(code, 5, "{stdout}");
    assert!(stdout.contains("FAIL  configuration values: 2 invalid value(s)"), "{stdout}");
    assert!(stdout.contains("OTEL_TRACES_SAMPLER=\"sometimes\" is not valid"), "{stdout}");
    assert!(stdout.contains("OTEL_EXPORTER_OTLP_TIMEOUT=\"10s\" is not valid"), "{stdout}");
    assert!(stdout.lines().any(|l| l.contains("sampler") && l.contains("(invalid, default used)")), "{stdout}");
}

#[test]
fn doctor_red_when_spans_are_not_exported_at_all() {
    let (code, stdout, _) = run(kotaemon_trace(&format!("http://127.0.0.1:{}", closed_port()))
        .arg("doctor")
        .env("OTEL_TRACES_EXPORTER", "console"));
    assert_eq!(code, 5, "{stdout}");
    assert!(stdout.contains("FAIL  exporter: OTEL_TRACES_EXPORTER=console"), "{stdout}");
}

#[test]
fn doctor_red_when_the_protocol_does_not_match_the_port() {
    let Some(jaeger) = Jaeger::from_env_or_skip("doctor wrong protocol") else { return };
    // grpc against the OTLP/HTTP port.
    let (code, stdout, _) = run(kotaemon_trace(&jaeger.query_url)
        .arg("doctor")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &jaeger.otlp_http));
    assert_eq!(code, 5, "{stdout}");
    let expected = if port_of(&jaeger.otlp_http) == 4318 {
        "FAIL  endpoint: port 4318 is OTLP over HTTP, but the protocol is grpc".to_owned()
    } else {
        format!(
            "FAIL  endpoint: 127.0.0.1:{} speaks HTTP/1.1 (OTLP/HTTP or another HTTP server), but the protocol is grpc",
            port_of(&jaeger.otlp_http)
        )
    };
    assert!(stdout.contains(&expected), "expected {expected:?} in\n{stdout}");
    assert!(stdout.contains("skip  test span"), "{stdout}");
    // http/protobuf against the OTLP/gRPC port.
    let (code, stdout, _) = run(kotaemon_trace(&jaeger.query_url)
        .arg("doctor")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &jaeger.otlp_grpc));
    assert_eq!(code, 5, "{stdout}");
    let expected = if port_of(&jaeger.otlp_grpc) == 4317 {
        "FAIL  endpoint: port 4317 is OTLP over gRPC, but the protocol is http/protobuf".to_owned()
    } else {
        format!(
            "FAIL  endpoint: 127.0.0.1:{} speaks only HTTP/2 (gRPC), but the protocol is http/protobuf",
            port_of(&jaeger.otlp_grpc)
        )
    };
    assert!(stdout.contains(&expected), "expected {expected:?} in\n{stdout}");
    // The query API (UI port) given as the OTLP endpoint.
    let (code, stdout, _) =
        run(kotaemon_trace(&jaeger.query_url).arg("doctor").env("OTEL_EXPORTER_OTLP_ENDPOINT", &jaeger.query_url));
    assert_eq!(code, 5, "{stdout}");
    assert!(stdout.contains("answers with an HTML page, not OTLP"), "{stdout}");
}

// ----------------------------------------------------------------------------------------------------
// debug
// ----------------------------------------------------------------------------------------------------

#[test]
fn debug_runs_the_command_fully_traced_and_prints_its_linked_trace() {
    let Some(jaeger) = Jaeger::from_env_or_skip("debug run") else { return };
    let service = unique_service("cli-debug");
    let started = Instant::now();
    let (code, stdout, stderr) = run(kotaemon_trace(&jaeger.query_url)
        .arg("debug")
        .arg("--otlp-endpoint")
        .arg(&jaeger.otlp_http)
        .arg("--")
        .args(workload_args())
        .env("KT_CLI_WORKLOAD", "error")
        .env("KT_CLI_SERVICE", &service)
        .env("KT_CLI_EXIT", "7")
        // What debug overrides: nothing would be sampled or sent to this Jaeger otherwise.
        .env("OTEL_TRACES_SAMPLER", "always_off")
        .env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", format!("http://127.0.0.1:{}/v1/traces", closed_port())));
    let took = started.elapsed();
    assert_eq!(code, 7, "the command's exit code is passed on\nstdout:\n{stdout}\nstderr:\n{stderr}");
    let trace_id = trace_id_in(&stdout);
    assert!(stderr.contains("1 trace(s) from this run"), "{stderr}");
    assert!(stderr.contains(&format!("trace {trace_id}  handle_user_query")), "{stderr}");
    assert!(stderr.contains(&format!("{}/trace/{trace_id}", jaeger.query_url)), "{stderr}");
    let tree: Vec<&str> = stderr.lines().skip_while(|l| !l.contains("/trace/")).skip(1).take(4).collect();
    assert!(tree[0].starts_with("* handle_user_query  "), "{tree:?}");
    assert!(tree[0].contains("ERROR: order ORD-9 was not found"), "{tree:?}");
    assert!(tree[1].starts_with("* ├─ retrieve.customer_history  "), "{tree:?}");
    assert!(
        tree[2].starts_with("* └─ call_tool.get_order_status  ")
            && tree[2].contains("ERROR: order ORD-9 was not found"),
        "{tree:?}"
    );
    assert!(stderr.contains("<- slowest:"), "{stderr}");
    // In Jaeger: one linked trace (the children name the root as parent), marked as this debug run.
    let trace = &jaeger.get(&format!("/api/traces/{trace_id}")).unwrap()["data"][0];
    let all = spans(trace);
    let root = all.iter().find(|s| s.name() == "handle_user_query").unwrap();
    assert_eq!(all.len(), 3, "{trace:#}");
    assert!(all.iter().filter(|s| s.name() != "handle_user_query").all(|s| s.parent() == Some(root.id())));
    let process = trace["processes"].as_object().unwrap().values().next().unwrap();
    assert!(process["tags"].as_array().unwrap().iter().any(|t| t["key"] == "kotaemon.debug_run"), "{process:#}");
    eprintln!("debug run, command included, took {} ms", took.as_millis());
}

#[test]
fn debug_reports_a_command_that_cannot_start() {
    let Some(jaeger) = Jaeger::from_env_or_skip("debug cannot start") else { return };
    let (code, _, stderr) = run(kotaemon_trace(&jaeger.query_url).args([
        "debug",
        "--otlp-endpoint",
        &jaeger.otlp_http,
        "--",
        "/nonexistent/kt-cli-no-such-program",
    ]));
    assert_eq!(code, 127, "{stderr}");
    assert!(stderr.contains("cannot run `/nonexistent/kt-cli-no-such-program`"), "{stderr}");
}

/// A stand-in for `scripts/jaeger.sh` that records what it was asked and fails `start`.
fn fake_script(dir: &std::path::Path, binary_exists: bool) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let binary = dir.join("jaeger-bin");
    if binary_exists {
        std::fs::write(&binary, "").unwrap();
    }
    let script = dir.join("jaeger.sh");
    let body = format!(
        "#!/usr/bin/env bash\necho \"$1\" >> {log}\ncase \"$1\" in\n  path) echo {bin} ;;\n  start) echo 'jaeger: exited during start' >&2; exit 1 ;;\nesac\n",
        log = dir.join("calls").display(),
        bin = binary.display()
    );
    std::fs::write(&script, body).unwrap();
    script
}

#[test]
fn debug_without_any_jaeger_says_exactly_how_to_get_one() {
    let dir = std::env::temp_dir().join(format!("kt-cli-nojaeger-{}", std::process::id()));
    let script = fake_script(&dir, false);
    let url = format!("http://127.0.0.1:{}", closed_port());
    let (code, stdout, stderr) =
        run(kotaemon_trace(&url).env("KOTAEMON_TRACE_JAEGER_SCRIPT", &script).args(["debug", "--", "true"]));
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains(&format!("Jaeger at {url} (flag --jaeger-url) is not reachable")), "{stderr}");
    assert!(stderr.contains("the Jaeger it builds is not built yet"), "{stderr}");
    assert!(stderr.contains("scripts/jaeger.sh build && scripts/jaeger.sh start"), "{stderr}");
    assert!(stderr.contains("docker run"), "{stderr}");
    assert!(stdout.is_empty(), "the command was not run: {stdout}");
    assert_eq!(std::fs::read_to_string(dir.join("calls")).unwrap(), "path\n", "nothing was built or started");

    // With the binary built, `debug` starts it through the script; a failed start is reported.
    let script = fake_script(&dir.join("built"), true);
    let (code, _, stderr) =
        run(kotaemon_trace(&url).env("KOTAEMON_TRACE_JAEGER_SCRIPT", &script).args(["debug", "--", "true"]));
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("start` failed"), "{stderr}");
    assert!(stderr.contains("jaeger: exited during start"), "the script's own output is shown: {stderr}");
    assert_eq!(std::fs::read_to_string(dir.join("built/calls")).unwrap(), "path\nstart\n");
    std::fs::remove_dir_all(&dir).unwrap();
}

// ----------------------------------------------------------------------------------------------------
// explain
// ----------------------------------------------------------------------------------------------------

#[test]
fn explain_tells_how_a_known_answer_was_produced() {
    let Some(jaeger) = Jaeger::from_env_or_skip("explain") else { return };
    let service = unique_service("cli-explain");
    let trace_id = traced_run(&jaeger, "error", &service, 5);
    // Straight after the run: explain waits for the trace if it is still arriving.
    let (code, stdout, stderr) = run(kotaemon_trace(&jaeger.query_url).args(["explain", &trace_id]));
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    for expected in [
        format!("Trace {trace_id}"),
        format!("service:  {service}"),
        "3 spans, 2 with errors".to_owned(),
        "Steps (* = on the critical path):".to_owned(),
        "* ├─ retrieve.customer_history".to_owned(),
        "retrieve.customer_history (retrieval.documents): 2 document(s)".to_owned(),
        "#0 kb-refunds  score=0.92".to_owned(),
        "#1 kb-returns  score=0.81".to_owned(),
        "get_order_status (call_tool.get_order_status)".to_owned(),
        "FAILED: order ORD-9 was not found".to_owned(),
        "tool.parameters={\"order_id\":\"ORD-9\"}".to_owned(),
        "call_tool.get_order_status [".to_owned(),
        "Models:\n  none recorded".to_owned(),
    ] {
        assert!(stdout.contains(&expected), "missing {expected:?} in\n{stdout}");
    }
    let caller = stdout.lines().find(|l| l.contains("caller:")).unwrap();
    assert!(caller.contains("user.anonymous_id=anon:") && !caller.contains("alice"), "{caller}");

    // A successful run: the model, its parameters and token counts.
    let ok_id = traced_run(&jaeger, "ok", &service, 5);
    let (code, stdout, _) = run(kotaemon_trace(&jaeger.query_url).args(["explain", "--json", &ok_id]));
    assert_eq!(code, 0, "{stdout}");
    let v: Value = serde_json::from_str(&stdout).expect("--json prints JSON");
    assert_eq!(v["trace_id"], ok_id);
    assert_eq!(v["span_count"], 4);
    assert_eq!(v["models"][0]["model"], "gpt-4o-mini");
    assert_eq!(v["models"][0]["parameters"]["gen_ai.request.temperature"], 0.2);
    assert_eq!(v["models"][0]["parameters"]["gen_ai.request.max_tokens"], 256);
    assert_eq!(v["models"][0]["tokens"]["llm.token_count.total"], 821);
    assert_eq!(v["documents"][0]["documents"][0]["id"], "kb-refunds");
    assert_eq!(v["tools"][0]["tool"], "get_order_status");
    assert_eq!(v["tools"][0]["outcome"], "ok");
    assert_eq!(v["errors"], serde_json::json!([]));
    assert!(v["caller"]["user.anonymous_id"][0].as_str().unwrap().starts_with("anon:"));
    assert_eq!(v["steps"][0]["name"], "handle_user_query");
    assert_eq!(v["jaeger_ui"], format!("{}/trace/{ok_id}", jaeger.query_url));
}

#[test]
fn explain_of_an_unknown_trace_waits_then_says_so() {
    let Some(jaeger) = Jaeger::from_env_or_skip("explain unknown") else { return };
    let started = Instant::now();
    let (code, _, stderr) = run(kotaemon_trace(&jaeger.query_url).args([
        "explain",
        "--wait",
        "1500ms",
        "0123456789abcdef0123456789abcdef",
    ]));
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("waiting for trace 0123456789abcdef0123456789abcdef"), "progress is shown: {stderr}");
    assert!(stderr.contains("is not in Jaeger"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10), "the wait is bounded");
}

#[test]
fn explain_and_slow_without_jaeger_exit_3_and_bad_arguments_exit_2() {
    let url = format!("http://127.0.0.1:{}", closed_port());
    let (code, _, stderr) = run(kotaemon_trace(&url).args(["explain", "0123456789abcdef0123456789abcdef"]));
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("Jaeger's query API failed"), "{stderr}");
    let (code, _, stderr) = run(kotaemon_trace(&url).args(["slow", "--service", "x"]));
    assert_eq!(code, 3, "{stderr}");
    let (code, _, stderr) = run(kotaemon_trace(&url).args(["explain", "not-a-trace-id"]));
    assert_eq!(code, 2, "{stderr}");
    let (code, _, stderr) = run(kotaemon_trace(&url).args(["slow", "--service", "x", "--min-duration", "fast"]));
    assert_eq!(code, 2, "{stderr}");
}

#[test]
fn jaeger_url_comes_from_the_flag_else_the_env() {
    let url = format!("http://127.0.0.1:{}", closed_port());
    let (_, stdout, _) =
        run(clean(BIN).arg("doctor").env("KOTAEMON_TRACE_JAEGER_URL", &url).env("OTEL_TRACES_EXPORTER", "none"));
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("jaeger query url") && l.contains(&url) && l.contains("env KOTAEMON_TRACE_JAEGER_URL")),
        "{stdout}"
    );
    let (_, stdout, _) = run(clean(BIN).arg("doctor").env("OTEL_TRACES_EXPORTER", "none"));
    assert!(
        stdout.lines().any(|l| l.contains("jaeger query url")
            && l.contains("http://127.0.0.1:16686")
            && l.trim_end().ends_with("default")),
        "{stdout}"
    );
}

#[test]
fn every_command_has_help_with_exit_codes() {
    for args in
        [&["--help"][..], &["debug", "--help"], &["doctor", "--help"], &["explain", "--help"], &["slow", "--help"]]
    {
        let (code, stdout, _) = run(clean(BIN).args(args));
        assert_eq!(code, 0, "{args:?}");
        assert!(stdout.contains("Exit codes:") && stdout.contains("4    explain"), "{args:?}: {stdout}");
    }
}

// ----------------------------------------------------------------------------------------------------
// slow
// ----------------------------------------------------------------------------------------------------

#[test]
fn slow_lists_only_the_slow_trace_and_names_the_slow_step() {
    let Some(jaeger) = Jaeger::from_env_or_skip("slow") else { return };
    let service = unique_service("cli-slow");
    let slow_id = traced_run(&jaeger, "ok", &service, 400);
    let fast_id = traced_run(&jaeger, "ok", &service, 1);
    // Both must be in Jaeger before asking, so that the fast one's absence means something.
    let _ =
        jaeger.traces(&service, 10, Duration::from_secs(15), |t| t.len() == 2 && t.iter().all(|t| spans(t).len() == 4));
    let (code, stdout, stderr) = run(kotaemon_trace(&jaeger.query_url).args([
        "slow",
        "--service",
        &service,
        "--min-duration",
        "200ms",
        "--json",
    ]));
    assert_eq!(code, 0, "{stderr}");
    let v: Value = serde_json::from_str(&stdout).unwrap();
    let traces = v["traces"].as_array().unwrap();
    assert_eq!(traces.len(), 1, "only the trace over 200 ms: {stdout}");
    assert_eq!(traces[0]["trace_id"], slow_id);
    assert_ne!(traces[0]["trace_id"], fast_id);
    assert_eq!(traces[0]["slowest_step"], "generate.response");
    assert!(traces[0]["slowest_step_critical_path_us"].as_i64().unwrap() >= 400_000, "{stdout}");
    let (code, stdout, _) =
        run(kotaemon_trace(&jaeger.query_url).args(["slow", "--service", &service, "--min-duration", "200ms"]));
    assert_eq!(code, 0);
    let row = stdout.lines().find(|l| l.contains(&slow_id)).unwrap_or_else(|| panic!("{stdout}"));
    assert!(row.contains("handle_user_query") && row.contains("generate.response"), "{row}");
    let (_, both, _) =
        run(kotaemon_trace(&jaeger.query_url).args(["slow", "--service", &service, "--min-duration", "0s", "--json"]));
    let v: Value = serde_json::from_str(&both).unwrap();
    let ids: Vec<&str> = v["traces"].as_array().unwrap().iter().map(|t| t["trace_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [slow_id.as_str(), fast_id.as_str()], "slowest first");
}
