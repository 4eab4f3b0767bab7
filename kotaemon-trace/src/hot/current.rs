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
//! The same byte marks a root the sampler dropped ([`enter_dropped_root`]): a synchronous annotated call
//! under `always_off` opens it instead of minting a trace id and attaching a context, and the ids are made
//! only when something asks for the current trace ([`dropped_root_context`]).
//!
//! The observer slot is process-wide and can be taken once. If something else took it, the mirror is not
//! in effect and the hot path reads the context as before. A thread that attached contexts before the
//! mirror was installed reads as [`UNKNOWN`] until the next change, or until the hot path reads the
//! context itself and records what it saw.

use opentelemetry::Context;
use opentelemetry::context::{ContextObserver, GlobalContextObserver};
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Once};

// The mirror's states that the installed word can make inert are defined with it, in `state`.
use crate::hot::state::{DROPPED_ROOT, NO_SPAN, UNKNOWN, UNSAMPLED};

/// The current context's span is sampled.
const SAMPLED: u8 = 8;
/// A debug trace is forced in the current context: no shortcut applies.
const FORCED: u8 = 16;
/// Written before the probe in [`install`]; never a state.
const PROBE: u8 = 128;

thread_local! {
    static STATE: Cell<u8> = const { Cell::new(UNKNOWN) };
    /// The dropped root open on this thread, and its ids once something asked for them.
    static DROPPED: Cell<DroppedRoot> = const { Cell::new(DroppedRoot::Closed) };
}

/// Roots do not nest: one opens only where the mirror reads [`NO_SPAN`], which it never does while one is
/// open (a context without a span attached inside reads [`DROPPED_ROOT`]). A flag rather than a depth
/// count: opening and closing are then plain stores, with no read-modify-write chained from one call to
/// the next (measured: a count cost about 2 ns a call, as much as the whole dropped root costs now).
#[derive(Clone, Copy)]
enum DroppedRoot {
    Closed,
    /// Open, no ids made yet.
    Open,
    /// Open, with the ids made at the first ask.
    Minted(TraceId, SpanId),
}

fn dropped_root_is_open() -> bool {
    !matches!(DROPPED.try_with(Cell::get), Ok(DroppedRoot::Closed) | Err(_))
}

/// Whether the mirror is installed and in effect.
static ACTIVE: AtomicBool = AtomicBool::new(false);

fn state_of(cx: &Context) -> u8 {
    if cx.get::<crate::policy::sampling::DebugForced>().is_some() {
        return FORCED;
    }
    let span = cx.span();
    let sc = span.span_context();
    match (sc.is_valid(), sc.is_sampled()) {
        // A context without a span attached inside a dropped root (baggage, say) is still in that root.
        (false, _) if dropped_root_is_open() => DROPPED_ROOT,
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

/// The mirror's state of the current context; meaningful only while the mirror is in effect (`install`
/// returned true).
#[inline(always)]
pub(crate) fn state() -> u8 {
    STATE.with(Cell::get)
}

/// Opens a root the sampler drops (`always_off`) on this thread, for a synchronous call, without making
/// anything: no ids, no context attached. Calls under it read [`DROPPED_ROOT`] and do nothing.
///
/// What a dropped root must still do is tell the services it calls not to record either (W3C
/// `sampled=0`), under one trace id. Its ids are therefore made the first time something on this thread
/// asks for the current trace ([`dropped_root_context`]: propagation, log correlation, carrying the
/// trace into a spawned future) and shared by everything under the root. Code that reads
/// `Context::current()` itself sees no span here.
///
/// Only called when the state is [`NO_SPAN`]; [`leave_dropped_root`] closes it.
#[inline(always)]
pub(crate) fn enter_dropped_root() {
    DROPPED.set(DroppedRoot::Open);
    STATE.set(DROPPED_ROOT);
}

/// Closes what [`enter_dropped_root`] opened and forgets its ids.
#[inline(always)]
pub(crate) fn leave_dropped_root() {
    let _ = DROPPED.try_with(|d| d.set(DroppedRoot::Closed));
    // A context attached inside and still attached (guards dropped out of order) keeps its own state.
    if STATE.get() == DROPPED_ROOT {
        STATE.set(NO_SPAN);
    }
}

/// `cx` with the ids of the dropped root open on this thread, when `cx` has no span of its own (it is
/// the current context, or one read from it) and a dropped root is open: a fresh unsampled trace, the
/// same for every ask until the root closes. `None` otherwise, at the cost of one thread-local read.
pub(crate) fn dropped_root_context(cx: &Context) -> Option<Context> {
    if !dropped_root_is_open() || !crate::hot::state::fast_path().roots_drop {
        return None;
    }
    if cx.span().span_context().is_valid() || cx.get::<crate::policy::sampling::DebugForced>().is_some() {
        return None;
    }
    let (trace_id, span_id) = match DROPPED.get() {
        DroppedRoot::Minted(trace_id, span_id) => (trace_id, span_id),
        _ => {
            let (trace_id, span_id) = crate::base::ids::new_root_ids();
            DROPPED.set(DroppedRoot::Minted(trace_id, span_id));
            (trace_id, span_id)
        }
    };
    // Random ids (`base::ids`): the W3C random trace-id flag, sampled off.
    Some(cx.with_remote_span_context(SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(crate::policy::propagation::w3c::FLAG_RANDOM),
        false,
        TraceState::default(),
    )))
}

/// Records the current context's state read by the slow path, for a thread the mirror has not seen
/// change yet.
#[inline]
pub(crate) fn remember(cx: &Context) {
    if ACTIVE.load(Ordering::Relaxed) && STATE.with(Cell::get) == UNKNOWN {
        set(state_of(cx));
    }
}

/// Runs `f` with the current context, given the ids of the dropped root open on this thread if it has no
/// span of its own: what propagation and log correlation report as the current trace.
pub(crate) fn map_current_trace<R>(f: impl FnOnce(&Context) -> R) -> R {
    Context::map_current(|cx| match dropped_root_context(cx) {
        Some(root) => f(&root),
        None => f(cx),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(sampled: bool) -> Context {
        let flags = if sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
        Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from(5),
            SpanId::from(6),
            flags,
            true,
            TraceState::default(),
        ))
    }

    #[test]
    fn the_mirror_follows_every_attach_and_detach_in_and_out_of_order() {
        assert!(install(), "no other observer in this test binary");
        std::thread::spawn(|| {
            assert_eq!(state(), UNKNOWN, "a new thread starts unknown");
            let unsampled = remote(false).attach();
            assert_eq!(state(), UNSAMPLED);
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
                .with_value(crate::policy::sampling::DebugForced { debug_id: None })
                .with_remote_span_context(SpanContext::new(
                    TraceId::from(5),
                    SpanId::from(6),
                    TraceFlags::default(),
                    true,
                    TraceState::default(),
                ))
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

    #[test]
    fn a_dropped_root_reads_as_such_until_it_closes_whatever_is_attached_inside() {
        assert!(install());
        std::thread::spawn(|| {
            let _empty = Context::new().attach();
            assert_eq!(state(), NO_SPAN);
            enter_dropped_root();
            assert_eq!(state(), DROPPED_ROOT);
            {
                let _no_span = Context::new().with_value(7_u32).attach();
                assert_eq!(state(), DROPPED_ROOT, "a context without a span, attached inside, is still in the root");
                let sampled = remote(true).attach();
                assert_eq!(state(), SAMPLED, "a context with a span is that span");
                drop(sampled);
                assert_eq!(state(), DROPPED_ROOT);
            }
            assert_eq!(
                state(),
                DROPPED_ROOT,
                "detached back to the root's own context: never NO_SPAN, so no root opens inside"
            );
            leave_dropped_root();
            assert_eq!(state(), NO_SPAN, "closed");
            let _again = Context::new().attach();
            assert_eq!(state(), NO_SPAN, "no root open: a context without a span is just that");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn without_an_installed_dropping_sampler_nothing_is_made_up() {
        std::thread::spawn(|| {
            enter_dropped_root();
            assert!(dropped_root_context(&Context::new()).is_none(), "no pipeline whose roots drop is installed");
            leave_dropped_root();
        })
        .join()
        .unwrap();
    }
}
