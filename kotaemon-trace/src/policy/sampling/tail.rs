//! Tail sampling in process: hold the spans of a local trace until its root ends, then keep the whole
//! trace if it has an error, took at least the latency threshold, or the head sampler kept it.
//!
//! Memory is bounded by a cap on buffered spans; past it the oldest trace is dropped whole and counted.
//! Only traces whose root is in this process can be judged here (a trace that continues a remote parent
//! the caller did not sample is never recorded in the first place).

use crate::config::TailConfig;
use opentelemetry::KeyValue;
use opentelemetry::trace::{SpanContext, SpanId, Status, TraceFlags, TraceId};
use opentelemetry_sdk::trace::SpanData;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// Set on kept spans: why the tail kept the trace (`error`, `slow` or `head`).
pub(crate) const TAIL_REASON: &str = "kotaemon.tail_kept";

#[derive(Debug)]
pub(crate) struct TailSampler {
    config: TailConfig,
    buffer: Mutex<Buffer>,
    /// Spans evicted because the buffer was full.
    pub(crate) evicted: AtomicU64,
}

#[derive(Debug, Default)]
struct Buffer {
    traces: HashMap<TraceId, Vec<SpanData>>,
    /// Arrival order of traces, for evicting the oldest.
    order: VecDeque<TraceId>,
    spans: usize,
}

impl TailSampler {
    pub(crate) fn new(config: TailConfig) -> Self {
        TailSampler { config, buffer: Mutex::new(Buffer::default()), evicted: AtomicU64::new(0) }
    }

    /// Takes an ended span; returns the spans to export now (a whole kept trace, or nothing).
    pub(crate) fn on_end(&self, span: SpanData) -> Vec<SpanData> {
        let trace_id = span.span_context.trace_id();
        let is_local_root = span.parent_span_id == SpanId::INVALID || span.parent_span_is_remote;
        let mut buffer = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
        if !is_local_root {
            if !buffer.traces.contains_key(&trace_id) {
                buffer.order.push_back(trace_id);
            }
            buffer.traces.entry(trace_id).or_default().push(span);
            buffer.spans += 1;
            while buffer.spans > self.config.max_buffered_spans {
                let Some(oldest) = buffer.order.pop_front() else { break };
                let gone = buffer.traces.remove(&oldest).map_or(0, |v| v.len());
                buffer.spans -= gone;
                self.evicted.fetch_add(gone as u64, Ordering::Relaxed);
            }
            return Vec::new();
        }
        let mut trace = buffer.traces.remove(&trace_id).unwrap_or_default();
        if !trace.is_empty() {
            buffer.spans -= trace.len();
            buffer.order.retain(|t| *t != trace_id);
        }
        drop(buffer);
        let duration = span.end_time.duration_since(span.start_time).unwrap_or_default();
        trace.push(span);
        let reason = if trace.iter().any(|s| matches!(s.status, Status::Error { .. })) {
            "error"
        } else if duration >= self.config.latency_threshold {
            "slow"
        } else if trace.iter().any(|s| s.span_context.is_sampled()) {
            "head"
        } else {
            return Vec::new();
        };
        for s in &mut trace {
            let sc = &s.span_context;
            s.span_context = SpanContext::new(
                sc.trace_id(),
                sc.span_id(),
                sc.trace_flags() | TraceFlags::SAMPLED,
                sc.is_remote(),
                sc.trace_state().clone(),
            );
            s.attributes.push(KeyValue::new(TAIL_REASON, reason));
        }
        trace
    }

    /// Spans buffered right now (for tests and the memory bound).
    #[cfg(test)]
    pub(crate) fn buffered(&self) -> usize {
        self.buffer.lock().unwrap().spans
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::InstrumentationScope;
    use opentelemetry::trace::{SpanKind, TraceState};
    use opentelemetry_sdk::trace::{SpanEvents, SpanLinks};
    use std::time::{Duration, SystemTime};

    fn span(trace: u128, id: u64, parent: u64, millis: u64, error: bool, sampled: bool) -> SpanData {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let flags = if sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
        SpanData {
            span_context: SpanContext::new(TraceId::from(trace), SpanId::from(id), flags, false, TraceState::default()),
            parent_span_id: SpanId::from(parent),
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: format!("s{id}").into(),
            start_time: start,
            end_time: start + Duration::from_millis(millis),
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: SpanEvents::default(),
            links: SpanLinks::default(),
            status: if error { Status::error("boom") } else { Status::Unset },
            instrumentation_scope: InstrumentationScope::default(),
        }
    }

    fn tail() -> TailSampler {
        TailSampler::new(TailConfig { latency_threshold: Duration::from_millis(500), max_buffered_spans: 10 })
    }

    #[test]
    fn keeps_errors_and_slow_traces_drops_fast_successes() {
        let t = tail();
        assert!(t.on_end(span(1, 2, 1, 5, true, false)).is_empty(), "children wait for their root");
        let kept = t.on_end(span(1, 1, 0, 10, false, false));
        assert_eq!(kept.len(), 2, "an error anywhere keeps the whole trace");
        assert!(kept.iter().all(|s| s.span_context.is_sampled()));
        assert!(kept[0].attributes.contains(&KeyValue::new(TAIL_REASON, "error")));

        t.on_end(span(2, 2, 1, 5, false, false));
        assert_eq!(t.on_end(span(2, 1, 0, 900, false, false)).len(), 2, "slow root");

        t.on_end(span(3, 2, 1, 5, false, false));
        assert!(t.on_end(span(3, 1, 0, 10, false, false)).is_empty(), "fast and fine: dropped");
        assert_eq!(t.on_end(span(4, 1, 0, 10, false, true)).len(), 1, "head-sampled: kept");
        assert_eq!(t.buffered(), 0);
    }

    #[test]
    fn the_buffer_never_exceeds_its_cap() {
        let t = tail();
        for trace in 0..50u128 {
            for id in 2..5u64 {
                t.on_end(span(trace + 10, id, 1, 1, false, false));
                assert!(t.buffered() <= 10);
            }
        }
        assert_eq!(t.evicted.load(Ordering::Relaxed), 150 - t.buffered() as u64);
    }
}
