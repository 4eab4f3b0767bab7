//! Three services, one trace, end to end: `examples/three_services.rs` run as three processes (a RAG API
//! on axum, a tool service over HTTP, a model service over gRPC), exporting to a private Jaeger on free
//! loopback ports. Every process it starts is stopped before it returns (killed on drop if an assertion
//! fails first).
//!
//! The example is built here with `cargo build --workspace --example three_services`, into this test's
//! target directory and profile, so the test drives the current source also when run alone;
//! `--workspace` gives it the feature resolution of `cargo test --workspace --all-targets`, so after that
//! command the nested build compiles nothing.

use kotaemon_trace_tests::jaeger::{JaegerProcess, JaegerSpan};
use serde_json::Value;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn example_binary() -> PathBuf {
    // This test is `<target>/<profile>/deps/integrations-<hash>`.
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe.parent().and_then(Path::parent).expect("<target>/<profile>").to_path_buf();
    let target_dir = profile_dir.parent().expect("<target>").to_path_buf();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command
        .current_dir(root)
        .args(["build", "-q", "--workspace", "--example", "three_services"])
        .env("CARGO_TARGET_DIR", &target_dir);
    if profile_dir.file_name().is_some_and(|p| p == "release") {
        command.arg("--release");
    }
    let status = command.status().expect("run cargo build for the example");
    assert!(status.success(), "building the example failed: {status}");
    profile_dir.join("examples").join("three_services")
}

/// One service of the example, killed (and reaped) on drop.
struct Service {
    child: Child,
    address: String,
}

impl Service {
    /// Starts `role` exporting to `jaeger` and waits (at most 60 s) for the address it listens on.
    fn start(binary: &Path, role: &str, extra: &[&str], jaeger: &JaegerProcess) -> Service {
        let mut child = Command::new(binary)
            .arg(role)
            .args(extra)
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", &jaeger.jaeger.otlp_http)
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
            .env("OTEL_TRACES_SAMPLER", "parentbased_always_on")
            .env("OTEL_BSP_SCHEDULE_DELAY", "100")
            .env_remove("OTEL_SERVICE_NAME")
            .env_remove("OTEL_RESOURCE_ATTRIBUTES")
            .env_remove("OTEL_METRICS_EXPORTER")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("start {role}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let prefix = format!("three_services {role}: listening on ");
        let line = lines.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|_| panic!("{role} did not start"));
        let address = line.strip_prefix(&prefix).unwrap_or_else(|| panic!("{role}: unexpected {line:?}")).to_owned();
        Service { child, address }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// POST /ask; returns the status and the trace id the API answered with.
fn ask(api: &Service, question: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .http_status_as_error(false)
        .build()
        .into();
    let body = serde_json::json!({ "question": question }).to_string();
    let mut response = agent
        .post(&format!("http://{}/ask", api.address))
        .header("content-type", "application/json")
        .send(body.as_str())
        .expect("the API answers");
    let status = response.status().as_u16();
    let answer: Value = serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
    (status, answer["trace_id"].as_str().expect("a trace id").to_owned())
}

/// The trace from Jaeger once it has `spans` spans of `services` services, waiting at most 30 s.
fn trace(jaeger: &JaegerProcess, trace_id: &str, spans: usize, services: usize) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let answer = jaeger.jaeger.get(&format!("/api/traces/{trace_id}")).ok();
        let trace = answer.and_then(|a| a["data"].get(0).cloned());
        if let Some(trace) = trace {
            let count = trace["spans"].as_array().map_or(0, Vec::len);
            let seen = trace["processes"].as_object().map_or(0, |p| p.len());
            if (count >= spans && seen >= services) || Instant::now() > deadline {
                return trace;
            }
        } else {
            assert!(Instant::now() < deadline, "trace {trace_id} never reached Jaeger");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A trace's spans, each with its service's name.
fn by_service(trace: &Value) -> Vec<(String, JaegerSpan<'_>)> {
    trace["spans"]
        .as_array()
        .expect("spans")
        .iter()
        .map(|s| {
            let process = s["processID"].as_str().unwrap_or_default();
            let service = trace["processes"][process]["serviceName"].as_str().unwrap_or_default().to_owned();
            (service, JaegerSpan(s))
        })
        .collect()
}

fn find<'a>(spans: &'a [(String, JaegerSpan<'a>)], service: &str, name: &str, kind: &str) -> &'a JaegerSpan<'a> {
    spans
        .iter()
        .find(|(s, span)| {
            s == service && span.name() == name && span.tag("span.kind").map(|t| t.1) == Some(&kind.into())
        })
        .map(|(_, span)| span)
        .unwrap_or_else(|| {
            let all: Vec<String> = spans.iter().map(|(s, span)| format!("{s} {}", span.name())).collect();
            panic!("no {kind} span {name:?} of {service} among {all:?}")
        })
}

fn is_error(span: &JaegerSpan<'_>) -> bool {
    span.tag("error").is_some_and(|(_, v)| v == &Value::Bool(true))
}

#[test]
fn three_services_one_trace_in_jaeger() {
    let Some(jaeger) = JaegerProcess::spawn("three_services_one_trace_in_jaeger", None) else { return };
    let binary = example_binary();
    let llm = Service::start(&binary, "llm", &[], &jaeger);
    let tool = Service::start(&binary, "tool", &[], &jaeger);
    let (tool_url, llm_url) = (format!("http://{}", tool.address), format!("http://{}", llm.address));
    let api = Service::start(&binary, "api", &["--tool", &tool_url, "--llm", &llm_url], &jaeger);

    let (status, ok_trace) = ask(&api, "where is ORD-1042?");
    assert_eq!(status, 200);
    let (status, failed_trace) = ask(&api, "where is ORD-9999?");
    assert_eq!(status, 502);

    // POST /ask, rag.answer, GET (client), GET /orders/{id}, lookup_order, rag.Llm/Generate twice,
    // generate.response.
    let trace_ok = trace(&jaeger, &ok_trace, 8, 3);
    let spans = by_service(&trace_ok);
    assert!(spans.iter().all(|(_, s)| s.0["traceID"] == ok_trace.as_str()), "one trace id across the three");
    let api_server = find(&spans, "rag-api", "POST /ask", "server");
    let tool_client = find(&spans, "rag-api", "GET", "client");
    let llm_client = find(&spans, "rag-api", "rag.Llm/Generate", "client");
    let tool_server = find(&spans, "rag-tool", "GET /orders/{id}", "server");
    let llm_server = find(&spans, "rag-llm", "rag.Llm/Generate", "server");
    assert_eq!(tool_server.parent(), Some(tool_client.id()), "the tool's SERVER span is the API's CLIENT span's child");
    assert_eq!(
        llm_server.parent(),
        Some(llm_client.id()),
        "the model's SERVER span is the API's gRPC CLIENT span's child"
    );
    assert_eq!(api_server.parent(), None, "the API's span is the root");
    assert_eq!(llm_server.tag("rpc.grpc.status_code").map(|t| t.1.clone()), Some(0.into()));
    assert!(!spans.iter().any(|(_, s)| is_error(s)), "the successful request has no error span");

    // POST /ask, rag.answer, GET (client), GET /orders/{id}, lookup_order: the model is never called.
    let trace_failed = trace(&jaeger, &failed_trace, 5, 2);
    let spans = by_service(&trace_failed);
    let tool_client = find(&spans, "rag-api", "GET", "client");
    let api_server = find(&spans, "rag-api", "POST /ask", "server");
    let tool_server = find(&spans, "rag-tool", "GET /orders/{id}", "server");
    for span in [tool_client, api_server, tool_server] {
        assert!(is_error(span), "{} should be an error: {}", span.name(), span.0);
    }
    assert_eq!(tool_client.tag("error.type").map(|t| t.1.clone()), Some("500".into()));
    assert_eq!(api_server.tag("error.type").map(|t| t.1.clone()), Some("502".into()));

    // The service graph: the API calls the tool and the model.
    let deadline = Instant::now() + Duration::from_secs(30);
    let edges = loop {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis();
        let answer = jaeger.jaeger.get(&format!("/api/dependencies?endTs={now}&lookback=3600000")).unwrap_or_default();
        let mut edges: Vec<(String, String)> = answer["data"]
            .as_array()
            .map(|links| {
                links
                    .iter()
                    .map(|l| {
                        (l["parent"].as_str().unwrap_or("").to_owned(), l["child"].as_str().unwrap_or("").to_owned())
                    })
                    .collect()
            })
            .unwrap_or_default();
        // Jaeger's in-memory store also lists each service's calls to itself (a parent and child span of
        // one service); the graph is the edges between services.
        edges.retain(|(parent, child)| parent != child);
        edges.sort();
        if edges.len() >= 2 || Instant::now() > deadline {
            break edges;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let expected = [("rag-api".to_owned(), "rag-llm".to_owned()), ("rag-api".to_owned(), "rag-tool".to_owned())];
    assert_eq!(edges, expected);
    drop((api, tool, llm));
}
