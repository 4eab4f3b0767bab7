//! A span recorded by the hot path, on its way to the export thread, and the attribute vectors the two
//! sides pass back and forth.

use crate::base::clock::{Stamp, Timeline};
use crossbeam_queue::ArrayQueue;
use opentelemetry::trace::{SpanContext, SpanId, SpanKind, Status};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use std::borrow::Cow;
use std::time::SystemTime;

/// Attribute vectors the export thread hands back, emptied, for callers to fill again.
///
/// A vector allocated on a caller's thread and freed on the export thread makes the two threads contend
/// for the caller's allocator arena (glibc locks it; the caller then waits in a futex): measured, that
/// and the cache misses on the recycled memory were a quarter of a sampled call with four attributes.
/// Recycled through this queue, the vectors never reach the allocator on either side. Room for a whole
/// batch (the export thread takes a batch at a time; with fewer spares, the rest of each batch's vectors
/// were freed there and allocated again by callers), within bounds: [`SPARE_VECS`] to [`SPARE_VECS_MAX`]
/// vectors of at most [`SPARE_MAX_CAPACITY`] attributes (about 460 KB for the default batch of 512).
#[derive(Debug)]
pub(crate) struct Spares {
    queue: ArrayQueue<Vec<KeyValue>>,
}

const SPARE_VECS: usize = 256;
const SPARE_VECS_MAX: usize = 2048;
/// New vectors get at least this much room, so that any of them can be reused by most call sites.
const SPARE_MIN_CAPACITY: usize = 8;
const SPARE_MAX_CAPACITY: usize = 16;

impl Spares {
    #[cfg(test)]
    pub(crate) fn new() -> Spares {
        Spares { queue: ArrayQueue::new(SPARE_VECS) }
    }

    /// Room for the vectors of a batch of `max_batch` spans, within the bounds.
    pub(crate) fn for_batch(max_batch: usize) -> Spares {
        Spares { queue: ArrayQueue::new(max_batch.clamp(SPARE_VECS, SPARE_VECS_MAX)) }
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
    pub(crate) fn recycle(&self, mut list: Vec<KeyValue>) -> Vec<KeyValue> {
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

#[derive(Debug)]
pub(crate) struct Recording {
    pub(crate) parent_span_id: SpanId,
    pub(crate) parent_span_is_remote: bool,
    pub(crate) kind: SpanKind,
    pub(crate) name: &'static str,
    pub(crate) start: Stamp,
    pub(crate) attributes: Vec<KeyValue>,
    pub(crate) dropped_attributes: u32,
    /// What most spans never have, out of line so the record stays small.
    pub(crate) extra: Option<Box<Extra>>,
}

#[derive(Debug, Default)]
pub(crate) struct Extra {
    pub(crate) events: SpanEvents,
    pub(crate) links: SpanLinks,
    pub(crate) status: Status,
    /// Set by `update_name`.
    pub(crate) name: Option<Cow<'static, str>>,
}

/// A finished span on its way to the export thread.
#[derive(Debug)]
pub(crate) struct Record {
    pub(crate) span_context: SpanContext,
    pub(crate) data: Recording,
    pub(crate) end: End,
}

/// When a span ended: by the span clock (the usual end), or at a time the caller gave.
#[derive(Debug)]
pub(crate) enum End {
    Stamp(Stamp),
    Wall(SystemTime),
}

impl Record {
    /// The SDK's form of the span, as its tracer would have exported it.
    pub(crate) fn into_span_data(self, scope: &InstrumentationScope, timeline: &Timeline, spares: &Spares) -> SpanData {
        let Record { span_context, data, end } = self;
        let (start_time, end_time) = match end {
            End::Stamp(stamp) => {
                let (start, end) = timeline.span(data.start, Some(stamp));
                (start, end.unwrap_or(start))
            }
            End::Wall(wall) => (timeline.wall(data.start), wall),
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

#[cfg(test)]
mod tests {
    use super::*;

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
        // Room for a batch's vectors, within the bounds.
        let room = |batch| Spares::for_batch(batch).queue.capacity();
        assert_eq!((room(1), room(512), room(1_000_000)), (SPARE_VECS, 512, SPARE_VECS_MAX));
    }
}
