//! The recording path of annotated functions: a span type of our own, cheaper than the SDK's.
//!
//! The SDK's span carries its tracer (two reference counts), a full `SpanData` that is moved several times
//! on its way to the processor, and copies the macro's attributes into a vector of its own. [`FastSpan`]
//! asks the same [`ProductSampler`] for the same decision, applies the same [`SpanLimits`] as it records,
//! and at its end moves a compact [`Record`] into the batch processor's queue; the export thread turns the
//! record into the SDK's `SpanData` (adding the instrumentation scope) before redaction, truncation and the
//! exporters, so what is exported is identical to what the SDK would have produced.
//!
//! Only the macro uses this path, and only when the call has no `sample` hint, tail sampling is off and
//! telemetry is not suppressed; everything else (and `kotaemon_trace::tracer()` users) goes through the
//! SDK's tracer.

use crate::base::ids::{new_span_id, new_trace_id};
use crate::export::queue::SpanQueue;
use crate::export::record::{End, Extra, Record, Recording};
use crate::policy::propagation::w3c::FLAG_RANDOM as RANDOM_TRACE_ID;
use crate::policy::sampling::ProductSampler;
use opentelemetry::trace::{Event, Link, SpanContext, SpanKind, Status, TraceContextExt as _, TraceFlags};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SamplingDecision, ShouldSample as _, SpanLimits};
use std::borrow::Cow;
use std::sync::Arc;
use std::time::SystemTime;

/// What the hot path needs to record spans without the SDK's tracer; one per installed pipeline.
#[derive(Debug)]
pub(crate) struct Recorder {
    pub(crate) sampler: ProductSampler,
    pub(crate) queue: Arc<SpanQueue>,
    pub(crate) limits: SpanLimits,
}

/// The outcome of [`Recorder::start`].
pub(crate) enum Started {
    /// Sampled (or recorded for a tail): a span to fill.
    Recording(FastSpan),
    /// The sampler dropped it: only its context, so the decision still propagates.
    Dropped(SpanContext),
}

impl Recorder {
    /// An empty attribute vector for a new span, recycled when one is spare.
    #[inline]
    pub(crate) fn attribute_list(&self, wanted: usize) -> Vec<KeyValue> {
        self.queue.spares.take(wanted)
    }

    /// Decides and starts a span named `name`, child of `parent`, exactly as the SDK's tracer would with
    /// the same sampler and limits. `None` when the SDK must handle it (telemetry suppressed, pipeline
    /// shutting down): its rules for those cases apply unchanged.
    #[inline(always)]
    pub(crate) fn start(&self, name: &'static str, kind: SpanKind, parent: &Context) -> Option<Started> {
        if parent.is_telemetry_suppressed() || self.queue.is_closed() {
            return None;
        }
        let span_id = new_span_id();
        let parent_span = parent.span();
        let psc = parent_span.span_context();
        let (trace_id, psc) = if psc.is_valid() { (psc.trace_id(), psc) } else { (new_trace_id(), &SpanContext::NONE) };
        let result = self.sampler.should_sample(Some(parent), trace_id, name, &kind, &[], &[]);
        // A trace we start has a random id (`base::ids`), which W3C Trace Context Level 2's random
        // trace-id flag announces; a continued trace keeps the flags it came with.
        let flags = if psc.is_valid() { psc.trace_flags() } else { TraceFlags::new(RANDOM_TRACE_ID) };
        let sampled = match result.decision {
            SamplingDecision::Drop => {
                let sc = SpanContext::new(trace_id, span_id, flags.with_sampled(false), false, result.trace_state);
                return Some(Started::Dropped(sc));
            }
            SamplingDecision::RecordAndSample => true,
            SamplingDecision::RecordOnly => false,
        };
        let span_context = SpanContext::new(trace_id, span_id, flags.with_sampled(sampled), false, result.trace_state);
        let mut attributes = result.attributes;
        let limit = self.limits.max_attributes_per_span as usize;
        let dropped_attributes = attributes.len().saturating_sub(limit) as u32;
        attributes.truncate(limit);
        Some(Started::Recording(FastSpan {
            span_context,
            data: Some(Recording {
                parent_span_id: psc.span_id(),
                parent_span_is_remote: psc.is_valid() && psc.is_remote(),
                kind,
                name,
                start: crate::base::clock::now(),
                attributes,
                dropped_attributes,
                extra: None,
            }),
            queue: self.queue.clone(),
            limits: self.limits,
        }))
    }
}

/// A span recorded by our own path; stored in the `Context` like any span, so `SpanRef` helpers
/// (`record`, `genai`, `ret`/`err`, panics) write into it through the `opentelemetry::trace::Span` trait.
#[derive(Debug)]
pub(crate) struct FastSpan {
    span_context: SpanContext,
    /// `None` once ended.
    data: Option<Recording>,
    queue: Arc<SpanQueue>,
    limits: SpanLimits,
}

impl FastSpan {
    /// Adds the attributes recorded at entry, after the sampler's, within the attribute limit.
    #[inline]
    pub(crate) fn add_attributes(&mut self, mut list: Vec<KeyValue>) {
        let limit = self.limits.max_attributes_per_span as usize;
        if let Some(data) = &mut self.data {
            if data.attributes.is_empty() {
                // The common case: the macro's vector becomes the span's, no copy.
                data.dropped_attributes += list.len().saturating_sub(limit) as u32;
                list.truncate(limit);
                data.attributes = list;
            } else {
                for kv in list {
                    push_limited(data, kv, limit);
                }
            }
        }
    }

    fn extra(data: &mut Recording) -> &mut Extra {
        data.extra.get_or_insert_with(Default::default)
    }
}

#[inline]
fn push_limited(data: &mut Recording, kv: KeyValue, limit: usize) {
    if data.attributes.len() < limit {
        data.attributes.push(kv);
    } else {
        data.dropped_attributes += 1;
    }
}

impl opentelemetry::trace::Span for FastSpan {
    fn add_event_with_timestamp<T>(&mut self, name: T, timestamp: SystemTime, mut attributes: Vec<KeyValue>)
    where
        T: Into<Cow<'static, str>>,
    {
        let events_limit = self.limits.max_events_per_span as usize;
        let attributes_limit = self.limits.max_attributes_per_event as usize;
        if let Some(data) = &mut self.data {
            let events = &mut Self::extra(data).events;
            if events.events.len() < events_limit {
                let dropped = attributes.len().saturating_sub(attributes_limit);
                attributes.truncate(attributes_limit);
                events.events.push(Event::new(name, timestamp, attributes, dropped as u32));
            } else {
                events.dropped_count += 1;
            }
        }
    }

    fn span_context(&self) -> &SpanContext {
        &self.span_context
    }

    fn is_recording(&self) -> bool {
        self.data.is_some()
    }

    fn set_attribute(&mut self, attribute: KeyValue) {
        let limit = self.limits.max_attributes_per_span as usize;
        if let Some(data) = &mut self.data {
            push_limited(data, attribute, limit);
        }
    }

    fn set_status(&mut self, status: Status) {
        if let Some(data) = &mut self.data {
            // Ok > Error > Unset, as the SDK orders them.
            if data.extra.as_ref().map_or(status > Status::Unset, |e| status > e.status) {
                Self::extra(data).status = status;
            }
        }
    }

    fn update_name<T>(&mut self, new_name: T)
    where
        T: Into<Cow<'static, str>>,
    {
        if let Some(data) = &mut self.data {
            Self::extra(data).name = Some(new_name.into());
        }
    }

    fn add_link(&mut self, span_context: SpanContext, mut attributes: Vec<KeyValue>) {
        let links_limit = self.limits.max_links_per_span as usize;
        let attributes_limit = self.limits.max_attributes_per_link as usize;
        if let Some(data) = &mut self.data {
            let links = &mut Self::extra(data).links;
            if links.links.len() < links_limit {
                let dropped = attributes.len().saturating_sub(attributes_limit);
                attributes.truncate(attributes_limit);
                links.links.push(Link::new(span_context, attributes, dropped as u32));
            } else {
                links.dropped_count += 1;
            }
        }
    }

    fn end_with_timestamp(&mut self, timestamp: SystemTime) {
        // `END_NOW` is how our entry points end the span without reading the system clock.
        let end = if timestamp == crate::base::clock::END_NOW {
            End::Stamp(crate::base::clock::now())
        } else {
            End::Wall(timestamp)
        };
        self.finish(end);
    }
}

impl FastSpan {
    #[inline]
    fn finish(&mut self, end: End) {
        let Some(data) = self.data.take() else { return };
        // Like the SDK's span after its provider shut down: nothing more is exported.
        if self.queue.is_closed() {
            return;
        }
        let span_context = self.span_context.clone();
        self.queue.push_record(Record { span_context, data, end });
    }
}

impl Drop for FastSpan {
    fn drop(&mut self) {
        if self.data.is_some() {
            self.finish(End::Stamp(crate::base::clock::now()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_stay_compact() {
        // What crosses the queue per span; the SDK's `SpanData` is about 360 bytes.
        let (record, span) = (std::mem::size_of::<Record>(), std::mem::size_of::<FastSpan>());
        eprintln!(
            "Record: {record} bytes, FastSpan: {span} bytes, SpanData: {}",
            std::mem::size_of::<opentelemetry_sdk::trace::SpanData>()
        );
        assert!(record <= 192 && span <= 224, "Record {record} bytes, FastSpan {span} bytes");
    }
}
