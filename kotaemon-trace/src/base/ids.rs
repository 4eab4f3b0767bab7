//! Trace and span ids: random, valid (never zero), made per thread without a lock.

use opentelemetry::trace::{SpanId, TraceId};
use std::cell::Cell;
use std::time::SystemTime;

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
                crate::policy::sampling::strategy::ratio_keeps(
                    0.25,
                    if i % 2 == 0 { new_trace_id() } else { new_root_ids().0 },
                )
            })
            .count();
        assert!((23_000..27_000).contains(&kept), "{kept} of 100000 kept at ratio 0.25");
    }
}
