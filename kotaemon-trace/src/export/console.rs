//! `OTEL_TRACES_EXPORTER=console`: each finished trace as a readable tree on stderr.
//!
//! Spans of one trace can reach the exporter in different batches, children first. Spans wait here until
//! their local root (a span whose parent is remote or absent) arrives, then the whole tree is printed.
//! A bounded number of spans wait; past it the oldest trace is printed as it is.

use opentelemetry::Value;
use opentelemetry::trace::{SpanId, Status, TraceId};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// Spans held while waiting for their root; a bound on memory for traces whose root never ends.
const MAX_PENDING_SPANS: usize = 10_000;

#[derive(Debug, Default)]
pub(crate) struct ConsoleExporter {
    pending: Mutex<Pending>,
}

#[derive(Debug, Default)]
struct Pending {
    spans: HashMap<TraceId, Vec<SpanData>>,
    order: Vec<TraceId>,
    count: usize,
}

impl SpanExporter for ConsoleExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let mut ready = Vec::new();
        {
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            for span in batch {
                let trace_id = span.span_context.trace_id();
                let is_local_root = span.parent_span_id == SpanId::INVALID || span.parent_span_is_remote;
                if !pending.spans.contains_key(&trace_id) {
                    pending.order.push(trace_id);
                }
                pending.spans.entry(trace_id).or_default().push(span);
                pending.count += 1;
                if is_local_root {
                    ready.push(pending.take(trace_id));
                }
            }
            while pending.count > MAX_PENDING_SPANS {
                let oldest = pending.order[0];
                ready.push(pending.take(oldest));
            }
        }
        print(&ready);
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let rest: Vec<_> = pending.order.clone().into_iter().map(|t| pending.take(t)).collect();
        drop(pending);
        print(&rest);
        Ok(())
    }
}

impl Pending {
    fn take(&mut self, trace_id: TraceId) -> Vec<SpanData> {
        self.order.retain(|t| *t != trace_id);
        let spans = self.spans.remove(&trace_id).unwrap_or_default();
        self.count -= spans.len();
        spans
    }
}

fn print(traces: &[Vec<SpanData>]) {
    if traces.is_empty() {
        return;
    }
    let mut out = String::new();
    for spans in traces {
        render_trace(&mut out, spans);
    }
    let _ = std::io::stderr().lock().write_all(out.as_bytes());
}

/// Renders one trace: a header line, then each span as `name  duration  [ERROR msg]  key=value …`,
/// children under their parent in start order.
pub(crate) fn render_trace(out: &mut String, spans: &[SpanData]) {
    let Some(first) = spans.first() else { return };
    let _ = writeln!(out, "trace {}", first.span_context.trace_id());
    let ids: std::collections::HashSet<SpanId> = spans.iter().map(|s| s.span_context.span_id()).collect();
    let mut children: HashMap<SpanId, Vec<&SpanData>> = HashMap::new();
    let mut roots = Vec::new();
    for span in spans {
        if ids.contains(&span.parent_span_id) {
            children.entry(span.parent_span_id).or_default().push(span);
        } else {
            roots.push(span);
        }
    }
    for list in children.values_mut() {
        list.sort_by_key(|s| s.start_time);
    }
    roots.sort_by_key(|s| s.start_time);
    let count = roots.len();
    for (i, root) in roots.into_iter().enumerate() {
        render_span(out, root, &children, "", i + 1 == count);
    }
}

fn render_span(
    out: &mut String,
    span: &SpanData,
    children: &HashMap<SpanId, Vec<&SpanData>>,
    prefix: &str,
    last: bool,
) {
    let branch = if last { "└─ " } else { "├─ " };
    let _ = write!(out, "{prefix}{branch}{}  {}", span.name, duration(span.start_time, span.end_time));
    if let Status::Error { description } = &span.status {
        let _ = write!(out, "  ERROR {description:?}");
    }
    for kv in &span.attributes {
        let _ = write!(out, "  {}={}", kv.key, show(&kv.value));
    }
    out.push('\n');
    let child_prefix = format!("{prefix}{}", if last { "   " } else { "│  " });
    for event in &span.events.events {
        let attrs: Vec<String> = event.attributes.iter().map(|kv| format!("{}={}", kv.key, show(&kv.value))).collect();
        let _ = writeln!(out, "{child_prefix}· event {}  {}", event.name, attrs.join("  "));
    }
    if let Some(list) = children.get(&span.span_context.span_id()) {
        for (i, child) in list.iter().enumerate() {
            render_span(out, child, children, &child_prefix, i + 1 == list.len());
        }
    }
}

fn show(value: &Value) -> String {
    match value {
        Value::String(s) => format!("{:?}", s.as_str()),
        other => other.to_string(),
    }
}

fn duration(start: SystemTime, end: SystemTime) -> String {
    let d = end.duration_since(start).unwrap_or_default();
    if d >= Duration::from_secs(1) {
        format!("{:.2} s", d.as_secs_f64())
    } else if d >= Duration::from_millis(1) {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    } else {
        format!("{} µs", d.as_micros())
    }
}
