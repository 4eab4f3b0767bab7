//! Head sampling: which traces are recorded.
//!
//! One sampler type, [`ProductSampler`], serves every configuration so the decision stays one match:
//! the spec's samplers, a rate limit, Jaeger remote strategies, all optionally parent-based; on top of
//! them, debug forcing (a request that carried the debug header is recorded whatever the sampler says),
//! the macro's `sample = "always" | "never"` hint, and, when tail sampling is on, recording (not
//! exporting) what the head would drop so the tail can still keep an error or a slow request.

pub(crate) mod rate;
pub(crate) mod strategy;
pub(crate) mod tail;

use crate::config::{DebugConfig, Sampler};
use arc_swap::ArcSwap;
use opentelemetry::trace::{Link, SpanKind, TraceContextExt as _, TraceId, TraceState};
use opentelemetry::{Context, KeyValue, Value};
use opentelemetry_sdk::trace::{SamplingDecision, SamplingResult, ShouldSample};
use rate::RateLimiter;
use std::sync::Arc;
use strategy::{Strategy, ratio_keeps};

use crate::base::semconv::{DEBUG_FORCED, SAMPLING_PRIORITY};
/// Set on spans recorded only for the tail sampler: the head sampler would have dropped the trace.
pub(crate) const HEAD_DROPPED: &str = "kotaemon.head_dropped";

/// Marks a context whose request was granted debug forcing; inherited by every span under it.
#[derive(Clone, Debug)]
pub(crate) struct DebugForced {
    /// Jaeger's `jaeger-debug-id`, when that is how it was asked for.
    pub(crate) debug_id: Option<String>,
}

/// Who may force a trace, and how often.
#[derive(Debug)]
pub(crate) struct DebugPolicy {
    header: Option<http::HeaderName>,
    limiter: RateLimiter,
}

impl DebugPolicy {
    pub(crate) fn new(config: &DebugConfig) -> Self {
        let header = http::HeaderName::from_bytes(config.header.to_ascii_lowercase().as_bytes()).ok();
        DebugPolicy { header, limiter: RateLimiter::new(config.per_second, config.per_second.max(1.0)) }
    }

    /// A grant when the headers (or a Jaeger debug flag already extracted into `cx`) ask for a debug trace
    /// and the per-second cap allows one.
    pub(crate) fn check(&self, headers: &http::HeaderMap, cx: &Context) -> Option<DebugForced> {
        let by_header = self.header.as_ref().and_then(|h| headers.get(h)).is_some_and(|v| {
            let v = v.as_bytes();
            v.eq_ignore_ascii_case(b"true") || v == b"1"
        });
        let debug_id = headers
            .get("jaeger-debug-id")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.chars().take(64).collect::<String>());
        let by_jaeger_flag = cx.get::<crate::policy::propagation::jaeger::JaegerDebugFlag>().is_some();
        if !(by_header || debug_id.is_some() || by_jaeger_flag) {
            return None;
        }
        self.limiter.try_acquire().then_some(DebugForced { debug_id })
    }
}

/// A root decision made without looking at the parent.
#[derive(Debug, Clone)]
enum Root {
    AlwaysOn,
    AlwaysOff,
    Ratio(f64),
    RateLimited(Arc<RateLimiter>),
    Remote(Arc<ArcSwap<Strategy>>),
}

/// The sampler installed in the provider.
#[derive(Debug, Clone)]
pub(crate) struct ProductSampler {
    root: Root,
    parent_based: bool,
    /// With tail sampling on, head-dropped traces are still recorded (not exported) for the tail.
    record_dropped: bool,
}

impl ProductSampler {
    /// The sampler for `config`, and for `jaeger_remote` the shared strategy its poller updates.
    pub(crate) fn new(config: &Sampler, record_dropped: bool) -> (Self, Option<Arc<ArcSwap<Strategy>>>) {
        let (root, parent_based) = match config {
            Sampler::ParentBased(inner) => (Self::root(inner), true),
            other => (Self::root(other), false),
        };
        let remote = match &root {
            Root::Remote(current) => Some(current.clone()),
            _ => None,
        };
        (ProductSampler { root, parent_based, record_dropped }, remote)
    }

    fn root(config: &Sampler) -> Root {
        match config {
            Sampler::AlwaysOn => Root::AlwaysOn,
            Sampler::AlwaysOff => Root::AlwaysOff,
            Sampler::TraceIdRatio(r) => Root::Ratio(*r),
            Sampler::RateLimited(per_second) => {
                Root::RateLimited(Arc::new(RateLimiter::new(*per_second, per_second.max(1.0))))
            }
            Sampler::JaegerRemote(remote) => {
                Root::Remote(Arc::new(ArcSwap::from_pointee(Strategy::Probabilistic(remote.initial_sampling_rate))))
            }
            // A nested parent-based is the same as one level of it.
            Sampler::ParentBased(inner) => Self::root(inner),
        }
    }

    fn decide_root(&self, trace_id: TraceId, name: &str) -> (bool, Vec<KeyValue>) {
        match &self.root {
            Root::AlwaysOn => (true, Vec::new()),
            Root::AlwaysOff => (false, Vec::new()),
            Root::Ratio(r) => (ratio_keeps(*r, trace_id), Vec::new()),
            Root::RateLimited(limiter) => (limiter.try_acquire(), Vec::new()),
            Root::Remote(current) => {
                let decision = current.load().decide(trace_id, name);
                (decision.sampled, decision.attributes.to_vec())
            }
        }
    }
}

fn result(decision: SamplingDecision, attributes: Vec<KeyValue>, trace_state: TraceState) -> SamplingResult {
    SamplingResult { decision, attributes, trace_state }
}

impl ShouldSample for ProductSampler {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        _span_kind: &SpanKind,
        attributes: &[KeyValue],
        _links: &[Link],
    ) -> SamplingResult {
        let parent = parent_context.filter(|cx| cx.has_active_span());
        let trace_state = parent.map(|cx| cx.span().span_context().trace_state().clone()).unwrap_or_default();

        // The macro's hint beats everything but a debug request.
        let priority = attributes.iter().find(|kv| kv.key.as_str() == SAMPLING_PRIORITY).map(|kv| &kv.value);
        if let Some(forced) = parent_context.and_then(|cx| cx.get::<DebugForced>()) {
            let mut attributes = vec![KeyValue::new(DEBUG_FORCED, true)];
            if let Some(id) = &forced.debug_id {
                attributes.push(KeyValue::new("jaeger.debug_id", id.clone()));
            }
            return result(SamplingDecision::RecordAndSample, attributes, trace_state);
        }
        match priority {
            Some(Value::I64(p)) if *p > 0 => return result(SamplingDecision::RecordAndSample, Vec::new(), trace_state),
            Some(Value::I64(_)) => return result(SamplingDecision::Drop, Vec::new(), trace_state),
            _ => {}
        }

        let (sampled, attributes) = match parent {
            Some(cx) if self.parent_based => {
                let span = cx.span();
                let sc = span.span_context();
                if sc.is_sampled() {
                    (true, Vec::new())
                } else if self.record_dropped && !sc.is_remote() && span.is_recording() {
                    // A head-dropped local trace being recorded for the tail: keep recording its children.
                    return result(SamplingDecision::RecordOnly, vec![KeyValue::new(HEAD_DROPPED, true)], trace_state);
                } else {
                    (false, Vec::new())
                }
            }
            _ => self.decide_root(trace_id, name),
        };
        if sampled {
            result(SamplingDecision::RecordAndSample, attributes, trace_state)
        } else if self.record_dropped {
            result(SamplingDecision::RecordOnly, vec![KeyValue::new(HEAD_DROPPED, true)], trace_state)
        } else {
            result(SamplingDecision::Drop, Vec::new(), trace_state)
        }
    }
}
