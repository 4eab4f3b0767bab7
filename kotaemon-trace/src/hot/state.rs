//! The process-wide installed pipeline that the hot path reads.
//!
//! `init` stores it, the guard's shutdown clears it; swapping (rather than a `OnceLock`) lets a process
//! shut down and initialise again, which tests and hot-reloading services both do.
//!
//! The hot path pays one relaxed atomic load when nothing is installed. When a pipeline is installed,
//! each thread keeps its own reference, refreshed only when the generation changes, so annotated calls on
//! many threads never touch a shared reference count.

use arc_swap::ArcSwapOption;
use opentelemetry_sdk::trace::SdkTracer;
use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Shortcuts the hot path may take without asking the SDK, derived from the sampler once at `init`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FastPath {
    /// A child of an unsampled parent is itself unsampled (parent-based sampler, no tail sampling).
    pub(crate) unsampled_parent_drops: bool,
    /// A new root is never sampled (`always_off`, no tail sampling).
    pub(crate) roots_drop: bool,
    /// The thread-local mirror of the current context is in effect (`current::install`).
    pub(crate) mirrored: bool,
}

pub(crate) struct Installed {
    pub(crate) tracer: SdkTracer,
    /// The recording path of annotated functions; `None` when they must use the SDK's (tail sampling).
    pub(crate) recorder: Option<crate::hot::recorder::Recorder>,
    /// Who may force a debug trace; read by `propagation::extract`.
    pub(crate) debug: crate::policy::sampling::DebugPolicy,
    pub(crate) fast: FastPath,
    /// Redaction of content text and pseudonyms (`redact(arg)`, `redact::pseudonym`), also when redaction
    /// of exports is off.
    pub(crate) text: Option<Arc<dyn crate::base::ports::TextPolicy>>,
    /// `KOTAEMON_TRACE_CAPTURE_ARGS`.
    pub(crate) capture_arguments: bool,
    /// Prompt/completion/document text capture.
    pub(crate) content: crate::config::ContentCapture,
    /// Which `init` installed it, so an older guard's shutdown cannot remove a newer pipeline.
    pub(crate) id: u64,
}

// The states are single bits so that the hot path tests "inert here?" with one mask: the bits of
// `UNSAMPLED` and `DROPPED_ROOT` are those of the installed word's flags that make them inert
// (`KEEP_PARENT`, `ROOTS_DROP`). They are the states the context mirror (`hot::current`) reports.

/// Nothing known on this thread yet.
pub(crate) const UNKNOWN: u8 = 0;
/// The current context's span is valid and not sampled.
pub(crate) const UNSAMPLED: u8 = 1;
/// No span in the current context, but inside a root the sampler dropped whose ids are made only when
/// something asks for them (see `hot::current::enter_dropped_root`).
pub(crate) const DROPPED_ROOT: u8 = 2;
/// The current context has no valid span.
pub(crate) const NO_SPAN: u8 = 4;
static INSTALLED: ArcSwapOption<Installed> = ArcSwapOption::const_empty();
/// The `id` of the installed pipeline shifted left by [`FLAG_BITS`], its [`FastPath`] in the low bits; 0
/// when none is installed. One word, so the hot path reads the shortcuts of exactly the pipeline it sees
/// installed.
static GENERATION: AtomicU64 = AtomicU64::new(0);

const KEEP_PARENT: u64 = 1;
const ROOTS_DROP: u64 = 2;
const MIRRORED: u64 = 4;
const FLAG_BITS: u32 = 3;

fn encode(id: u64, fast: FastPath) -> u64 {
    (id << FLAG_BITS)
        | if fast.unsampled_parent_drops { KEEP_PARENT } else { 0 }
        | if fast.roots_drop { ROOTS_DROP } else { 0 }
        | if fast.mirrored { MIRRORED } else { 0 }
}

/// The installed word: 0 when nothing is installed.
#[inline(always)]
pub(crate) fn word() -> u64 {
    GENERATION.load(Ordering::Relaxed)
}

// The mirror's states that these flags make inert are the same bits.
const _: () = assert!(UNSAMPLED as u64 == KEEP_PARENT && DROPPED_ROOT as u64 == ROOTS_DROP);

/// Whether the thread-local mirror of the current context (`current.rs`) is in effect by the installed word.
#[inline(always)]
pub(crate) fn is_mirrored(word: u64) -> bool {
    word & MIRRORED != 0
}

/// Whether an annotated call does nothing where the mirror reads `state`: under an unsampled parent whose
/// children follow it, or inside a dropped root. A load, two masks: inline in every call.
#[inline(always)]
pub(crate) fn inert_in(word: u64, state: u8) -> bool {
    u64::from(state) & word & (KEEP_PARENT | ROOTS_DROP) != 0
}

/// Whether an annotated call where the mirror reads `state` is a root the sampler drops.
#[inline(always)]
pub(crate) fn opens_dropped_root(word: u64, state: u8) -> bool {
    word & ROOTS_DROP != 0 && state == NO_SPAN
}

/// The shortcuts of the installed pipeline (none when nothing is installed), without touching its
/// thread-local cache.
#[inline]
pub(crate) fn fast_path() -> FastPath {
    let word = GENERATION.load(Ordering::Relaxed);
    FastPath {
        unsampled_parent_drops: word & KEEP_PARENT != 0,
        roots_drop: word & ROOTS_DROP != 0,
        mirrored: word & MIRRORED != 0,
    }
}

thread_local! {
    static CACHED: RefCell<Option<Arc<Installed>>> = const { RefCell::new(None) };
}

/// Runs `f` with the installed pipeline, or returns `None` after a single atomic load.
#[inline]
pub(crate) fn with_installed<R>(f: impl FnOnce(&Installed) -> R) -> Option<R> {
    let generation = GENERATION.load(Ordering::Acquire) >> FLAG_BITS;
    if generation == 0 {
        return None;
    }
    let mut f = Some(f);
    let cached_result = CACHED.try_with(|cached| {
        let fresh = matches!(&*cached.borrow(), Some(i) if i.id == generation);
        if !fresh {
            // Refreshing needs the slot exclusively; if a caller up the stack holds it, read the shared copy.
            let mut slot = cached.try_borrow_mut().ok()?;
            *slot = INSTALLED.load_full();
        }
        let slot = cached.borrow();
        let f = f.take()?;
        Some(slot.as_deref().map(f))
    });
    match cached_result {
        Ok(Some(result)) => result,
        // Thread-local storage unavailable (thread exiting) or busy: the shared copy, one atomic load more.
        _ => {
            let f = f.take()?;
            INSTALLED.load().as_deref().map(f)
        }
    }
}

/// Whether a pipeline is installed.
#[inline]
pub(crate) fn is_installed() -> bool {
    GENERATION.load(Ordering::Relaxed) != 0
}

pub(crate) fn install(installed: Installed) {
    let word = encode(installed.id, installed.fast);
    INSTALLED.store(Some(Arc::new(installed)));
    GENERATION.store(word, Ordering::Release);
}

pub(crate) fn uninstall(id: u64) {
    let previous = INSTALLED.rcu(|current| match current {
        Some(installed) if installed.id == id => None,
        other => other.clone(),
    });
    if let Some(p) = previous.as_ref().filter(|p| p.id == id) {
        let _ = GENERATION.compare_exchange(encode(p.id, p.fast), 0, Ordering::AcqRel, Ordering::Relaxed);
    }
}

/// The pseudonym of `value` under the installed pipeline's key; `None` when nothing is installed.
pub(crate) fn pseudonym(value: &str) -> Option<String> {
    with_installed(|installed| installed.text.as_ref().map(|t| t.pseudonym(value))).flatten()
}
