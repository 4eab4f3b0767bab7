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

use crate::clock::{Stamp, Timeline};
use crate::processor::BatchProcessor;
use crate::sampling::ProductSampler;
use crossbeam_queue::ArrayQueue;
use opentelemetry::trace::{
    Event, Link, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags, TraceId,
};
use opentelemetry::{Context, InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{SamplingDecision, ShouldSample as _, SpanData, SpanEvents, SpanLimits, SpanLinks};
use std::borrow::Cow;
use std::cell::Cell;
use std::sync::Arc;
use std::time::SystemTime;

/// What the hot path needs to record spans without the SDK's tracer; one per installed pipeline.
#[derive(Debug)]
pub(crate) struct Recorder {
    pub(crate) sampler: ProductSampler,
    pub(crate) processor: Arc<BatchProcessor>,
    pub(crate) limits: SpanLimits,
}

/// Attribute vectors the export thread hands back, emptied, for callers to fill again.
///
/// A vector allocated on a caller's thread and freed on the export thread makes the two threads contend
/// for the caller's allocator arena (glibc locks it; the caller then waits in a futex): measured, that
/// and the cache misses on the recycled memory were a quarter of a sampled call with four attributes.
/// Recycled through this queue, the vectors never reach the allocator on either side. Bounded: at most
/// [`SPARE_VECS`] vectors of at most [`SPARE_MAX_CAPACITY`] attributes are kept (about 230 KB).
#[derive(Debug)]
pub(crate) struct Spares {
    queue: ArrayQueue<Vec<KeyValue>>,
}

const SPARE_VECS: usize = 256;
/// New vectors get at least this much room, so that any of them can be reused by most call sites.
const SPARE_MIN_CAPACITY: usize = 8;
const SPARE_MAX_CAPACITY: usize = 16;

impl Spares {
    pub(crate) fn new() -> Spares {
        Spares { queue: ArrayQueue::new(SPARE_VECS) }
    }

    /// An empty vector with room for `wanted` attributes; none allocated for none wanted.
    #[inline]
    pub(crate) fn take(&self, wanted: usize) -> Vec<KeyValue> {
        if wanted == 0 {
            return Vec::new();
        }
        match self.queue.pop() {
            Some(list) if list.capacity() >= wanted => list,
            _ => Vec::with_capacity(wanted.max(SPARE_MIN_CAPACITY)),
        }
    }

    /// Moves the attributes out of `list` into a vector of the export thread's own, and keeps `list` for
    /// a caller to fill again.
    fn recycle(&self, mut list: Vec<KeyValue>) -> Vec<KeyValue> {
        if !(SPARE_MIN_CAPACITY..=SPARE_MAX_CAPACITY).contains(&list.capacity()) {
            return list;
        }
        // One more slot: redaction may add its audit attribute.
        let mut own = Vec::with_capacity(list.len() + 1);
        own.append(&mut list);
        let _ = self.queue.push(list);
        own
    }
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
        self.processor.spares.take(wanted)
    }

    /// Decides and starts a span named `name`, child of `parent`, exactly as the SDK's tracer would with
    /// the same sampler and limits. `None` when the SDK must handle it (telemetry suppressed, pipeline
    /// shutting down): its rules for those cases apply unchanged.
    #[inline(always)]
    pub(crate) fn start(&self, name: &'static str, kind: SpanKind, parent: &Context) -> Option<Started> {
        if parent.is_telemetry_suppressed() || self.processor.is_closed() {
            return None;
        }
        let span_id = new_span_id();
        let parent_span = parent.span();
        let psc = parent_span.span_context();
        let (trace_id, psc) = if psc.is_valid() { (psc.trace_id(), psc) } else { (new_trace_id(), &SpanContext::NONE) };
        let result = self.sampler.should_sample(Some(parent), trace_id, name, &kind, &[], &[]);
        let flags = psc.trace_flags();
        let sampled = match result.decision {
            SamplingDecision::Drop => {
                let sc = SpanContext::new(trace_id, span_id, TraceFlags::default(), false, result.trace_state);
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
                start: crate::clock::now(),
                attributes,
                dropped_attributes,
                extra: None,
            }),
            processor: self.processor.clone(),
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
    processor: Arc<BatchProcessor>,
    limits: SpanLimits,
}

#[derive(Debug)]
struct Recording {
    parent_span_id: SpanId,
    parent_span_is_remote: bool,
    kind: SpanKind,
    name: &'static str,
    start: Stamp,
    attributes: Vec<KeyValue>,
    dropped_attributes: u32,
    /// What most spans never have, out of line so the record stays small.
    extra: Option<Box<Extra>>,
}

#[derive(Debug, Default)]
struct Extra {
    events: SpanEvents,
    links: SpanLinks,
    status: Status,
    /// Set by `update_name`.
    name: Option<Cow<'static, str>>,
}

/// A finished span on its way to the export thread.
#[derive(Debug)]
pub(crate) struct Record {
    span_context: SpanContext,
    data: Recording,
    end: End,
}

/// When a span ended: by the counter (the usual end), or at a time the caller gave.
#[derive(Debug)]
enum End {
    Stamp(Stamp),
    Wall(SystemTime),
}

impl Record {
    /// The SDK's form of the span, as its tracer would have exported it.
    pub(crate) fn into_span_data(self, scope: &InstrumentationScope, timeline: &Timeline, spares: &Spares) -> SpanData {
        let Record { span_context, data, end } = self;
        let start_time = timeline.wall(data.start);
        let end_time = match end {
            End::Stamp(stamp) => timeline.wall(stamp),
            End::Wall(wall) => wall,
        };
        let extra = data.extra.map(|e| *e).unwrap_or_default();
        SpanData {
            span_context,
            parent_span_id: data.parent_span_id,
            parent_span_is_remote: data.parent_span_is_remote,
            span_kind: data.kind,
            name: extra.name.unwrap_or(Cow::Borrowed(data.name)),
            start_time,
            end_time,
            attributes: spares.recycle(data.attributes),
            dropped_attributes_count: data.dropped_attributes,
            events: extra.events,
            links: extra.links,
            status: extra.status,
            instrumentation_scope: scope.clone(),
        }
    }

    pub(crate) fn is_sampled(&self) -> bool {
        self.span_context.is_sampled()
    }
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
        let end =
            if timestamp == crate::clock::END_NOW { End::Stamp(crate::clock::now()) } else { End::Wall(timestamp) };
        self.finish(end);
    }
}

impl FastSpan {
    #[inline]
    fn finish(&mut self, end: End) {
        let Some(data) = self.data.take() else { return };
        // Like the SDK's span after its provider shut down: nothing more is exported.
        if self.processor.is_closed() {
            return;
        }
        let span_context = self.span_context.clone();
        self.processor.push_record(Record { span_context, data, end });
    }
}

impl Drop for FastSpan {
    fn drop(&mut self) {
        if self.data.is_some() {
            self.finish(End::Stamp(crate::clock::now()));
        }
    }
}

thread_local! {
    /// This thread's id generator state (wyrand); 0 until seeded.
    static ID_STATE: Cell<u64> = const { Cell::new(0) };
}

#[cold]
fn seed() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    // `RandomState` is seeded from the OS once per thread and differs per instance.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64));
    hasher.finish() | 1
}

/// The next 64 random bits of this thread's generator (wyrand: fast, passes BigCrush; ids need
/// uniqueness and uniform bits for ratio sampling, not secrecy).
#[inline]
fn next_u64() -> u64 {
    with_generator(wyrand).unwrap_or_else(seed)
}

/// One step of wyrand on `state`.
#[inline]
fn wyrand(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0xa076_1d64_78bd_642f);
    let t = u128::from(*state) * u128::from(*state ^ 0xe703_7ed1_a0b4_28db);
    ((t >> 64) as u64) ^ (t as u64)
}

/// Runs `f` on this thread's generator state (seeded on first use); `None` while the thread is exiting.
#[inline]
fn with_generator<T>(f: impl FnOnce(&mut u64) -> T) -> Option<T> {
    ID_STATE
        .try_with(|state| {
            let mut s = state.get();
            if s == 0 {
                s = seed();
            }
            let out = f(&mut s);
            state.set(s);
            out
        })
        .ok()
}

/// A new, valid (non-zero) span id.
#[inline]
pub(crate) fn new_span_id() -> SpanId {
    loop {
        let id = next_u64();
        if id != 0 {
            return SpanId::from(id);
        }
    }
}

/// A new trace id and span id for a root, from one visit to the thread's generator.
#[inline]
pub(crate) fn new_root_ids() -> (TraceId, SpanId) {
    with_generator(|s| (wyrand(s), wyrand(s), wyrand(s)))
        .filter(|&(high, low, span)| (high | low) != 0 && span != 0)
        .map_or_else(
            || (new_trace_id(), new_span_id()),
            |(high, low, span)| (TraceId::from((u128::from(high) << 64) | u128::from(low)), SpanId::from(span)),
        )
}

/// A new, valid (non-zero) trace id.
#[inline]
pub(crate) fn new_trace_id() -> TraceId {
    loop {
        let id = (u128::from(next_u64()) << 64) | u128::from(next_u64());
        if id != 0 {
            return TraceId::from(id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn records_stay_compact() {
        // What crosses the queue per span; the SDK's `SpanData` is about 360 bytes.
        let (record, span) = (std::mem::size_of::<Record>(), std::mem::size_of::<FastSpan>());
        eprintln!("Record: {record} bytes, FastSpan: {span} bytes, SpanData: {}", std::mem::size_of::<SpanData>());
        assert!(record <= 192 && span <= 224, "Record {record} bytes, FastSpan {span} bytes");
    }

    #[test]
    fn attribute_vectors_are_recycled_within_bounds_and_attributes_move_intact() {
        let spares = Spares::new();
        assert_eq!(spares.take(0).capacity(), 0, "no allocation when nothing will be recorded");
        let mut list = spares.take(3);
        assert!(list.capacity() >= SPARE_MIN_CAPACITY);
        let buffer = list.as_ptr();
        list.extend([KeyValue::new("a", 1_i64), KeyValue::new("b", "two"), KeyValue::new("c", 0.5)]);
        let exported = spares.recycle(list);
        assert_eq!(exported, vec![KeyValue::new("a", 1_i64), KeyValue::new("b", "two"), KeyValue::new("c", 0.5)]);
        assert_ne!(exported.as_ptr(), buffer, "the export thread's own vector is exported");
        let again = spares.take(4);
        assert_eq!((again.as_ptr(), again.len()), (buffer, 0), "the caller's vector comes back empty");
        // Too large to keep, or more than the bound: freed instead of kept.
        let big: Vec<KeyValue> = Vec::with_capacity(SPARE_MAX_CAPACITY + 1);
        let _ = spares.recycle(big);
        assert!(spares.queue.is_empty());
        for _ in 0..SPARE_VECS + 10 {
            let _ = spares.recycle(Vec::with_capacity(SPARE_MIN_CAPACITY));
        }
        assert_eq!(spares.queue.len(), SPARE_VECS);
        // A call site wanting more room than a spare has gets a new vector.
        assert!(spares.take(SPARE_MAX_CAPACITY + 4).capacity() >= SPARE_MAX_CAPACITY + 4);
    }

    #[test]
    fn ids_are_valid_and_distinct_across_threads() {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                // Both ways ids are made: one at a time, and a root's pair at once.
                std::thread::spawn(|| {
                    (0..10_000)
                        .map(|i| if i % 2 == 0 { (new_trace_id(), new_span_id()) } else { new_root_ids() })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut traces = HashSet::new();
        let mut spans = HashSet::new();
        for h in handles {
            for (t, s) in h.join().unwrap() {
                assert_ne!(t, TraceId::INVALID);
                assert_ne!(s, SpanId::INVALID);
                assert!(traces.insert(t), "trace ids repeat");
                assert!(spans.insert(s), "span ids repeat");
            }
        }
    }

    #[test]
    fn trace_id_low_bits_are_uniform_enough_for_ratio_sampling() {
        let kept = (0..100_000)
            .filter(|i| {
                crate::sampling::jaeger_remote::ratio_keeps(
                    0.25,
                    if i % 2 == 0 { new_trace_id() } else { new_root_ids().0 },
                )
            })
            .count();
        assert!((23_000..27_000).contains(&kept), "{kept} of 100000 kept at ratio 0.25");
    }
}
