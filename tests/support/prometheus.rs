//! A private Prometheus built by `scripts/prometheus.sh build`, scraping given targets every second on a
//! free loopback port, with its data in a temporary directory; killed on drop.

use crate::jaeger::cached_binary;
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub struct PrometheusProcess {
    child: Option<std::process::Child>,
    dir: PathBuf,
    /// Its HTTP API, e.g. `http://127.0.0.1:PORT`.
    pub url: String,
}

impl PrometheusProcess {
    /// Starts Prometheus scraping `targets` (`host:port`, path `/metrics`), or returns `None` with the
    /// reason printed (a failure under `CI=true`).
    pub fn spawn(test: &str, targets: &[String]) -> Option<PrometheusProcess> {
        let binary = cached_binary(test, "Prometheus", "prometheus.sh")?;
        let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let dir = std::env::temp_dir().join(format!("kotaemon-trace-prometheus-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let targets: Vec<String> = targets.iter().map(|t| format!("\"{t}\"")).collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: [{}]\n",
            targets.join(", ")
        );
        std::fs::write(dir.join("prometheus.yml"), config).unwrap();
        let child = std::process::Command::new(binary)
            .arg(format!("--config.file={}", dir.join("prometheus.yml").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg(format!("--storage.tsdb.path={}", dir.join("data").display()))
            // Also accept OTLP metrics at /api/v1/otlp/v1/metrics, for the OTLP push tests.
            .arg("--web.enable-otlp-receiver")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start prometheus");
        let process = PrometheusProcess { child: Some(child), dir, url: format!("http://127.0.0.1:{port}") };
        let deadline = Instant::now() + Duration::from_secs(60);
        while process.get("/-/ready").is_err() {
            assert!(Instant::now() < deadline, "{test}: Prometheus did not become ready in 60 s");
            std::thread::sleep(Duration::from_millis(200));
        }
        Some(process)
    }

    fn get(&self, path: &str) -> Result<String, String> {
        let agent: ureq::Agent =
            ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(5))).build().into();
        let mut response = agent.get(&format!("{}{path}", self.url)).call().map_err(|e| e.to_string())?;
        response.body_mut().read_to_string().map_err(|e| e.to_string())
    }

    /// An instant PromQL query's result vector.
    pub fn query(&self, promql: &str) -> Result<Vec<Value>, String> {
        let encoded: String = promql
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        let body = self.get(&format!("/api/v1/query?query={encoded}"))?;
        let json: Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
        Ok(json["data"]["result"].as_array().cloned().unwrap_or_default())
    }
}

impl Drop for PrometheusProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
