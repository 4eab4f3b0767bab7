//! A client for the real Jaeger started by `scripts/jaeger.sh`: reachability (fail under CI, skip with a
//! reason elsewhere) and trace queries through its HTTP API.

use serde_json::Value;
use std::time::{Duration, Instant};

/// Where the test Jaeger listens.
#[derive(Clone, Debug)]
pub struct Jaeger {
    /// Query API base, e.g. `http://127.0.0.1:16686`.
    pub query_url: String,
    /// OTLP gRPC endpoint.
    pub otlp_grpc: String,
    /// OTLP HTTP base endpoint.
    pub otlp_http: String,
}

impl Jaeger {
    /// The Jaeger of `scripts/jaeger.sh start`, or `None` (with the reason printed) when it is not
    /// reachable. Under `CI=true` an unreachable Jaeger is a test failure, never a skip.
    pub fn from_env_or_skip(test: &str) -> Option<Jaeger> {
        let query_url = std::env::var("KOTAEMON_TRACE_JAEGER_URL").unwrap_or_else(|_| "http://127.0.0.1:16686".into());
        let jaeger = Jaeger {
            otlp_grpc: std::env::var("KOTAEMON_TRACE_JAEGER_OTLP_GRPC")
                .unwrap_or_else(|_| "http://127.0.0.1:4317".into()),
            otlp_http: std::env::var("KOTAEMON_TRACE_JAEGER_OTLP_HTTP")
                .unwrap_or_else(|_| "http://127.0.0.1:4318".into()),
            query_url,
        };
        match jaeger.get("/api/services") {
            Ok(_) => Some(jaeger),
            Err(why) => {
                let message = format!(
                    "{test}: Jaeger is not reachable at {} ({why}); start it with `scripts/jaeger.sh start`",
                    jaeger.query_url
                );
                if std::env::var("CI").is_ok_and(|v| v == "true") {
                    panic!("{message} (CI=true requires it)");
                }
                skip_notice(&message);
                None
            }
        }
    }

    /// GET a query-API path and parse the JSON body.
    pub fn get(&self, path: &str) -> Result<Value, String> {
        let url = format!("{}{path}", self.query_url);
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(5)))
            .http_status_as_error(false)
            .build()
            .into();
        let mut response = agent.get(&url).call().map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response.body_mut().read_to_string().map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{url} answered {status}: {body}"));
        }
        serde_json::from_str(&body).map_err(|e| format!("{url}: {e}"))
    }

    /// The traces of `service`, polling until `ready` accepts them or `timeout` passes (Jaeger ingests
    /// asynchronously). Returns the last answer either way.
    pub fn traces(
        &self,
        service: &str,
        limit: usize,
        timeout: Duration,
        ready: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        let path = format!("/api/traces?service={service}&limit={limit}&lookback=1h");
        loop {
            let traces = self.get(&path).ok().and_then(|v| v["data"].as_array().cloned()).unwrap_or_default();
            if ready(&traces) || Instant::now() >= deadline {
                return traces;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Jaeger's JSON for one span, with helpers to read its tags.
pub struct JaegerSpan<'a>(pub &'a Value);

impl<'a> JaegerSpan<'a> {
    /// The operation (span) name.
    pub fn name(&self) -> &'a str {
        self.0["operationName"].as_str().unwrap_or_default()
    }

    /// The span id (hex).
    pub fn id(&self) -> &'a str {
        self.0["spanID"].as_str().unwrap_or_default()
    }

    /// The parent span id from a CHILD_OF reference, if any.
    pub fn parent(&self) -> Option<&'a str> {
        self.0["references"].as_array()?.iter().find(|r| r["refType"] == "CHILD_OF").and_then(|r| r["spanID"].as_str())
    }

    /// A tag's `(type, value)`, e.g. `("int64", 3)`.
    pub fn tag(&self, key: &str) -> Option<(&'a str, &'a Value)> {
        self.0["tags"]
            .as_array()?
            .iter()
            .find(|t| t["key"] == key)
            .map(|t| (t["type"].as_str().unwrap_or_default(), &t["value"]))
    }

    /// The events ("logs" in Jaeger's JSON): each as its fields' key → value.
    pub fn logs(&self) -> Vec<Vec<(&'a str, &'a Value)>> {
        self.0["logs"]
            .as_array()
            .map(|logs| {
                logs.iter()
                    .map(|l| {
                        l["fields"]
                            .as_array()
                            .map(|f| f.iter().map(|t| (t["key"].as_str().unwrap_or_default(), &t["value"])).collect())
                            .unwrap_or_default()
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// The spans of one trace from Jaeger's JSON.
pub fn spans(trace: &Value) -> Vec<JaegerSpan<'_>> {
    trace["spans"].as_array().map(|s| s.iter().map(JaegerSpan).collect()).unwrap_or_default()
}

/// The `service.name` of a trace's (first) process.
pub fn service_of(trace: &Value) -> String {
    trace["processes"]
        .as_object()
        .and_then(|p| p.values().next())
        .and_then(|p| p["serviceName"].as_str())
        .unwrap_or_default()
        .to_owned()
}

/// The operation names of a Jaeger metrics API answer (`/api/metrics/calls` …) that have at least one
/// data point above zero, sorted.
pub fn metric_operations(answer: &Value) -> Vec<String> {
    let mut names: Vec<String> = answer["metrics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| {
            m["metricPoints"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["gaugeValue"]["doubleValue"].as_f64().is_some_and(|v| v > 0.0)))
        })
        .filter_map(|m| {
            m["labels"].as_array()?.iter().find(|l| l["name"] == "operation")?["value"].as_str().map(str::to_owned)
        })
        .collect();
    names.sort();
    names
}

/// A service name no other test run uses, so queries see only this test's traces.
pub fn unique_service(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// A private Jaeger process on free loopback ports, for tests that need their own configuration
/// (a sampling strategies file) or must stop Jaeger mid-test. Killed on drop.
pub struct JaegerProcess {
    child: Option<std::process::Child>,
    /// Its endpoints.
    pub jaeger: Jaeger,
    /// Remote sampling, HTTP (`http://127.0.0.1:PORT`).
    pub sampling_http: String,
    /// Remote sampling, gRPC (`http://127.0.0.1:PORT`).
    pub sampling_grpc: String,
    binary: std::path::PathBuf,
    ports: Vec<u16>,
    strategies: Option<std::path::PathBuf>,
    /// Configuration overlays and the environment they read.
    overlays: Vec<(std::path::PathBuf, Vec<(String, String)>)>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("the workspace root").to_path_buf()
}

impl JaegerProcess {
    /// Starts the binary built by `scripts/jaeger.sh build`, or returns `None` with the reason printed
    /// (a failure under `CI=true`).
    pub fn spawn(test: &str, strategies: Option<&std::path::Path>) -> Option<JaegerProcess> {
        Self::spawn_with(test, strategies, &[])
    }

    /// Like [`JaegerProcess::spawn`], with more configuration: each `(overlay, env)` adds a `--config`
    /// file merged over the base one, and the environment it reads.
    pub fn spawn_with(
        test: &str,
        strategies: Option<&std::path::Path>,
        overlays: &[(&str, &[(&str, String)])],
    ) -> Option<JaegerProcess> {
        Self::spawn_on(test, strategies, overlays, None)
    }

    /// Like [`JaegerProcess::spawn`], with remote sampling on the given HTTP and gRPC ports (Jaeger's own
    /// 5778 and 5779, which configurations name without a path).
    pub fn spawn_with_sampling_ports(
        test: &str,
        strategies: Option<&std::path::Path>,
        http: u16,
        grpc: u16,
    ) -> Option<JaegerProcess> {
        Self::spawn_on(test, strategies, &[], Some((http, grpc)))
    }

    fn spawn_on(
        test: &str,
        strategies: Option<&std::path::Path>,
        overlays: &[(&str, &[(&str, String)])],
        sampling_ports: Option<(u16, u16)>,
    ) -> Option<JaegerProcess> {
        let binary = cached_binary(test, "Jaeger", "jaeger.sh")?;
        let mut ports: Vec<u16> = (0..8).map(|_| free_port()).collect();
        if let Some((http, grpc)) = sampling_ports {
            (ports[2], ports[3]) = (http, grpc);
        }
        let mut process = JaegerProcess {
            child: None,
            jaeger: Jaeger {
                query_url: format!("http://127.0.0.1:{}", ports[0]),
                otlp_grpc: format!("http://127.0.0.1:{}", ports[5]),
                otlp_http: format!("http://127.0.0.1:{}", ports[6]),
            },
            sampling_http: format!("http://127.0.0.1:{}", ports[2]),
            sampling_grpc: format!("http://127.0.0.1:{}", ports[3]),
            binary,
            ports,
            strategies: strategies.map(|p| p.to_path_buf()),
            overlays: overlays
                .iter()
                .map(|(file, env)| {
                    (repo_root().join(file), env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect())
                })
                .collect(),
        };
        process.launch(test);
        Some(process)
    }

    fn launch(&mut self, test: &str) {
        let ports = &self.ports;
        let mut command = std::process::Command::new(&self.binary);
        command
            .arg("--config")
            .arg(repo_root().join("scripts/jaeger-config.yaml"))
            .env("JAEGER_QUERY_PORT", ports[0].to_string())
            .env("JAEGER_QUERY_GRPC_PORT", ports[1].to_string())
            .env("JAEGER_SAMPLING_HTTP_PORT", ports[2].to_string())
            .env("JAEGER_SAMPLING_GRPC_PORT", ports[3].to_string())
            .env("JAEGER_HEALTH_PORT", ports[4].to_string())
            .env("JAEGER_OTLP_GRPC_PORT", ports[5].to_string())
            .env("JAEGER_OTLP_HTTP_PORT", ports[6].to_string())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        for (overlay, env) in &self.overlays {
            command.arg("--config").arg(overlay);
            command.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        }
        if let Some(file) = &self.strategies {
            command.env("JAEGER_SAMPLING_STRATEGIES", file);
        }
        self.child = Some(command.spawn().expect("start jaeger"));
        let deadline = Instant::now() + Duration::from_secs(90);
        while self.jaeger.get("/api/services").is_err() {
            assert!(Instant::now() < deadline, "{test}: the private Jaeger did not become ready in 90 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Starts Jaeger again on the same ports after [`JaegerProcess::kill`] (a crashed collector coming
    /// back; its in-memory storage starts empty), and waits until it answers.
    pub fn restart(&mut self, test: &str) {
        self.kill();
        self.launch(test);
    }

    /// Stops Jaeger now (SIGKILL: a graceful stop can take over 10 s and the test only needs it gone).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for JaegerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The binary `scripts/SCRIPT build` caches (`scripts/SCRIPT path`), or `None` with the reason printed
/// when it is not built — a test failure under `CI=true`, where a missing service is never a skip.
pub fn cached_binary(test: &str, what: &str, script: &str) -> Option<std::path::PathBuf> {
    let path = std::process::Command::new("bash")
        .arg(repo_root().join("scripts").join(script))
        .arg("path")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|p| std::path::Path::new(p).exists());
    if path.is_none() {
        let message = format!("{test}: no {what} binary; build it with `scripts/{script} build`");
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{message} (CI=true requires it)");
        }
        skip_notice(&message);
    }
    path.map(Into::into)
}

/// Prints why a test skips, straight to stderr: the test harness captures `eprintln!` of passing tests,
/// and a skip must never be silent.
pub fn skip_notice(message: &str) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "SKIPPED {message}");
}
