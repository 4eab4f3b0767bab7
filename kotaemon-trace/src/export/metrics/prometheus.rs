//! The Prometheus scrape endpoint: the text exposition format, served on its own thread.
//!
//! It binds `127.0.0.1:9464` unless told otherwise, answers `GET /metrics` (any other path is 404), and
//! reads the live histograms at each scrape; nothing is buffered between scrapes.

use super::Snapshot;
use crate::base::histogram::{GEN_AI_SECONDS_BOUNDS, GEN_AI_TOKEN_BOUNDS, HistogramSnapshot, SPAN_MS_BOUNDS};
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The text for one scrape.
pub(crate) fn render(snapshot: &Snapshot, service: &str) -> String {
    let mut out = String::with_capacity(4096);
    let service = escape(service);

    out.push_str("# HELP traces_span_metrics_calls_total Calls of each traced operation (as the spanmetrics connector names them).\n");
    out.push_str("# TYPE traces_span_metrics_calls_total counter\n");
    for s in &snapshot.spans {
        let _ = writeln!(out, "traces_span_metrics_calls_total{{{}}} {}", span_labels(&service, s), s.duration.count);
    }
    out.push_str("# HELP traces_span_metrics_duration_milliseconds Duration of each traced operation.\n");
    out.push_str("# TYPE traces_span_metrics_duration_milliseconds histogram\n");
    for s in &snapshot.spans {
        histogram(
            &mut out,
            "traces_span_metrics_duration_milliseconds",
            &span_labels(&service, s),
            &SPAN_MS_BOUNDS,
            &s.duration,
        );
    }

    out.push_str("# HELP gen_ai_client_operation_duration_seconds Duration of model calls.\n");
    out.push_str("# TYPE gen_ai_client_operation_duration_seconds histogram\n");
    for (key, values) in &snapshot.gen_ai {
        if values.duration.count > 0 {
            let labels = gen_ai_labels(&service, key, None);
            histogram(
                &mut out,
                "gen_ai_client_operation_duration_seconds",
                &labels,
                &GEN_AI_SECONDS_BOUNDS,
                &values.duration,
            );
        }
    }
    out.push_str("# HELP gen_ai_client_token_usage Tokens used by model calls.\n");
    out.push_str("# TYPE gen_ai_client_token_usage histogram\n");
    for (key, values) in &snapshot.gen_ai {
        for (kind, tokens) in [("input", &values.input_tokens), ("output", &values.output_tokens)] {
            if tokens.count > 0 {
                let labels = gen_ai_labels(&service, key, Some(kind));
                histogram(&mut out, "gen_ai_client_token_usage", &labels, &GEN_AI_TOKEN_BOUNDS, tokens);
            }
        }
    }

    out.push_str("# HELP kotaemon_trace_spans_dropped_total Spans dropped because the export queue was full.\n");
    out.push_str("# TYPE kotaemon_trace_spans_dropped_total counter\n");
    let _ =
        writeln!(out, "kotaemon_trace_spans_dropped_total{{service_name=\"{service}\"}} {}", snapshot.spans_dropped);
    out.push_str(
        "# HELP kotaemon_trace_metrics_overflow_total Series folded into the overflow series by the series cap.\n",
    );
    out.push_str("# TYPE kotaemon_trace_metrics_overflow_total counter\n");
    let _ =
        writeln!(out, "kotaemon_trace_metrics_overflow_total{{service_name=\"{service}\"}} {}", snapshot.overflowed);
    out.push_str("# HELP kotaemon_trace_redactions_total Values redacted before export, by rule.\n");
    out.push_str("# TYPE kotaemon_trace_redactions_total counter\n");
    for (kind, n) in &snapshot.redactions {
        let _ = writeln!(
            out,
            "kotaemon_trace_redactions_total{{service_name=\"{service}\",kind=\"{}\"}} {n}",
            escape(kind)
        );
    }
    out
}

fn span_labels(service: &str, s: &super::SpanSeries) -> String {
    if s.span_name.is_empty() {
        return format!("service_name=\"{service}\",otel_metric_overflow=\"true\",status_code=\"{}\"", status(s.error));
    }
    format!(
        "service_name=\"{service}\",span_name=\"{}\",span_kind=\"{}\",status_code=\"{}\"",
        escape(s.span_name),
        s.span_kind,
        status(s.error)
    )
}

fn status(error: bool) -> &'static str {
    if error { "STATUS_CODE_ERROR" } else { "STATUS_CODE_UNSET" }
}

fn gen_ai_labels(service: &str, key: &super::GenAiKey, token_type: Option<&str>) -> String {
    let mut labels = format!("service_name=\"{service}\"");
    if key.operation.is_empty() {
        labels.push_str(",otel_metric_overflow=\"true\"");
    } else {
        let _ = write!(labels, ",gen_ai_operation_name=\"{}\"", key.operation);
        let _ = write!(labels, ",gen_ai_request_model=\"{}\"", escape(key.model.as_deref().unwrap_or("unknown")));
        if let Some(provider) = &key.provider {
            let _ = write!(labels, ",gen_ai_provider_name=\"{}\"", escape(provider));
        }
    }
    if let Some(token_type) = token_type {
        let _ = write!(labels, ",gen_ai_token_type=\"{token_type}\"");
    }
    labels
}

fn histogram(out: &mut String, name: &str, labels: &str, bounds: &[f64], h: &HistogramSnapshot) {
    let mut cumulative = 0;
    for (bound, count) in bounds.iter().zip(&h.buckets) {
        cumulative += count;
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {cumulative}");
    }
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
    let _ = writeln!(out, "{name}_sum{{{labels}}} {}", h.sum);
    let _ = writeln!(out, "{name}_count{{{labels}}} {}", h.count);
}

/// A label value as the exposition format wants it: `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The running endpoint; stops when dropped.
pub(crate) struct Server {
    stop: Arc<AtomicBool>,
    address: SocketAddr,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    /// Binds `address` and serves `render` to every `GET /metrics`.
    pub(crate) fn start(address: &str, render: impl Fn() -> String + Send + 'static) -> std::io::Result<Server> {
        let listener = TcpListener::bind(address)?;
        let address = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::Builder::new().name("kotaemon-trace-metrics".into()).spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::Acquire) {
                    break;
                }
                if let Ok(stream) = stream {
                    // A slow or silent client cannot hold the endpoint for long.
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
                    let _ = answer(stream, &render);
                }
            }
        })?;
        Ok(Server { stop, address, thread: Some(thread) })
    }

    /// The bound address (useful with port 0).
    pub(crate) fn address(&self) -> SocketAddr {
        self.address
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wake the blocking accept; it sees the flag and returns.
        let _ = TcpStream::connect_timeout(&self.address, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn answer(mut stream: TcpStream, render: &impl Fn() -> String) -> std::io::Result<()> {
    // The request line is all that matters; read until the end of the headers, at most 8 KiB.
    let mut request = Vec::with_capacity(1024);
    let mut buffer = [0u8; 1024];
    while request.len() < 8192 && !request.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&buffer[..n]);
    }
    let line = request.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (status, content_type, body) = match (method, path) {
        ("GET", "/metrics") => ("200 OK", "text/plain; version=0.0.4; charset=utf-8", render()),
        ("GET", _) => ("404 Not Found", "text/plain", "only /metrics is served here\n".to_owned()),
        _ => ("405 Method Not Allowed", "text/plain", "GET /metrics\n".to_owned()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    stream.flush()
}
