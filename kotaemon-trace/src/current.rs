//! A thread-local mirror of what the hot path needs to know about OpenTelemetry's current context: is
//! there a span, and is it sampled.
//!
//! Reading the current context itself costs a thread-local behind an accessor function and a `RefCell`
//! borrow (about 7 ns on the development machine), which made the child of an unsampled parent, the most
//! frequent call under ratio sampling, cost that much more than a plain call. OpenTelemetry tells a
//! process-wide [`ContextObserver`] about every change of a thread's current context, whoever attaches
//! or detaches it; the mirror keeps one byte per thread from those calls, so the hot path reads a plain
//! thread-local byte instead.
//!
//! The observer slot is process-wide and can be taken once. If something else took it, the mirror is not
//! in effect and the hot path reads the context as before. A thread that attached contexts before the
//! mirror was installed reads as [`UNKNOWN`] until the next change, or until the hot path reads the
//! context itself and records what it saw.

use opentelemetry::context::{ContextObserver, GlobalContextObserver};
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::Context;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};

/// Nothing known on this thread yet.
const UNKNOWN: u8 = 0;
/// The current context has no valid span.
const NO_SPAN: u8 = 1;
/// The current context's span is valid and not sampled.
const UNSAMPLED: u8 = 2;
/// The current context's span is sampled.
const SAMPLED: u8 = 3;
/// A debug trace is forced in the current context: no shortcut applies.
const FORCED: u8 = 4;
/// Written before the probe in [`install`]; never a state.
const PROBE: u8 = u8::MAX;

thread_local! {
    static STATE: Cell<u8> = const { Cell::new(UNKNOWN) };
}

/// Whether the mirror is installed and in effect.
static ACTIVE: AtomicBool = AtomicBool::new(false);

fn state_of(cx: &Context) -> u8 {
    if cx.get::<crate::sampling::DebugForced>().is_some() {
        return FORCED;
    }
    let span = cx.span();
    let sc = span.span_context();
    match (sc.is_valid(), sc.is_sampled()) {
        (false, _) => NO_SPAN,
        (true, false) => UNSAMPLED,
        (true, true) => SAMPLED,
    }
}

fn set(state: u8) {
    // A thread being torn down has no state to keep.
    let _ = STATE.try_with(|s| s.set(state));
}

/// Keeps [`STATE`] in step with the current context. Called by OpenTelemetry while it holds the
/// thread's context cell: it must not touch the context API beyond reading `to`.
struct Mirror;

impl ContextObserver for Mirror {
    fn on_context_enter(&self, _from: &Context, to: &Context) {
        set(state_of(to));
    }

    fn on_context_exit(&self, _from: &Context, to: &Context) {
        set(state_of(to));
    }
}

/// Installs the mirror (once per process); whether it is in effect.
pub(crate) fn install() -> bool {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        GlobalContextObserver::set(Arc::new(Mirror));
        // The slot may already be taken (it warns and keeps the other observer): find out by attaching a
        // context and seeing whether the mirror heard of it.
        set(PROBE);
        let attached = Context::new().attach();
        let heard = STATE.with(Cell::get) != PROBE;
        drop(attached);
        if !heard {
            set(UNKNOWN);
        }
        ACTIVE.store(heard, Ordering::Release);
    });
    ACTIVE.load(Ordering::Acquire)
}

/// Whether the current context is, by the mirror, a valid span that is not sampled. `false` when not
/// known; meaningful only while the mirror is in effect (`install` returned true).
#[inline(always)]
pub(crate) fn is_unsampled_span() -> bool {
    STATE.with(Cell::get) == UNSAMPLED
}

/// Records the current context's state read by the slow path, for a thread the mirror has not seen
/// change yet.
#[inline]
pub(crate) fn remember(cx: &Context) {
    if ACTIVE.load(Ordering::Relaxed) && STATE.with(Cell::get) == UNKNOWN {
        set(state_of(cx));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

    fn remote(sampled: bool) -> Context {
        let flags = if sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
        Context::new().with_remote_span_context(SpanContext::new(TraceId::from(5), SpanId::from(6), flags, true, TraceState::default()))
    }

    fn state() -> u8 {
        STATE.with(Cell::get)
    }

    #[test]
    fn the_mirror_follows_every_attach_and_detach_in_and_out_of_order() {
        assert!(install(), "no other observer in this test binary");
        std::thread::spawn(|| {
            assert_eq!(state(), UNKNOWN, "a new thread starts unknown");
            let unsampled = remote(false).attach();
            assert_eq!(state(), UNSAMPLED);
            assert!(is_unsampled_span());
            {
                let _sampled = remote(true).attach();
                assert_eq!(state(), SAMPLED);
                let _empty = Context::new().attach();
                assert_eq!(state(), NO_SPAN);
            }
            assert_eq!(state(), UNSAMPLED, "restored on detach");
            // Out of order: dropping an inner guard first leaves the current context unchanged.
            let outer = remote(true).attach();
            let inner = Context::new().attach();
            drop(outer);
            assert_eq!(state(), NO_SPAN);
            drop(inner);
            assert_eq!(state(), UNSAMPLED, "both popped; the unsampled context is current again");
            drop(unsampled);
            assert_eq!(state(), NO_SPAN);
            let forced = Context::new()
                .with_value(crate::sampling::DebugForced { debug_id: None })
                .with_remote_span_context(SpanContext::new(TraceId::from(5), SpanId::from(6), TraceFlags::default(), true, TraceState::default()))
                .attach();
            assert_eq!(state(), FORCED, "a forced debug trace is never skipped");
            drop(forced);
        })
        .join()
        .unwrap();
    }

    #[test]
    fn a_thread_seen_first_by_the_slow_path_is_remembered() {
        assert!(install());
        std::thread::spawn(|| {
            assert_eq!(state(), UNKNOWN);
            Context::map_current(remember);
            assert_eq!(state(), NO_SPAN);
        })
        .join()
        .unwrap();
    }
}
