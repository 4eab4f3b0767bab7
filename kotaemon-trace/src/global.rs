//! The process-wide installed pipeline that the hot path reads.
//!
//! One atomic pointer load tells an annotated call whether tracing is on; `init` stores, the guard's
//! shutdown clears. Swapping (rather than a `OnceLock`) lets a process shut down and initialise again,
//! which tests and hot-reloading services both do.

use arc_swap::ArcSwapOption;
use opentelemetry_sdk::trace::SdkTracer;
use std::sync::Arc;

pub(crate) struct Installed {
    pub(crate) tracer: SdkTracer,
    /// Who may force a debug trace; read by `propagation::extract`.
    pub(crate) debug: crate::sampling::DebugPolicy,
    /// Which `init` installed it, so an older guard's shutdown cannot remove a newer pipeline.
    pub(crate) id: u64,
}

static INSTALLED: ArcSwapOption<Installed> = ArcSwapOption::const_empty();

/// A borrowed view of the installed pipeline, valid while held.
pub(crate) struct InstalledRef(arc_swap::Guard<Option<Arc<Installed>>>);

impl std::ops::Deref for InstalledRef {
    type Target = Installed;
    #[inline]
    fn deref(&self) -> &Installed {
        match &*self.0 {
            Some(installed) => installed,
            None => unreachable!("InstalledRef is only built around Some"),
        }
    }
}

/// The installed pipeline, if any. Cheap: a lock-free load, no reference count touched.
#[inline]
pub(crate) fn installed() -> Option<InstalledRef> {
    let guard = INSTALLED.load();
    guard.is_some().then(|| InstalledRef(guard))
}

pub(crate) fn install(installed: Installed) {
    INSTALLED.store(Some(Arc::new(installed)));
}

pub(crate) fn uninstall(id: u64) {
    INSTALLED.rcu(|current| match current {
        Some(installed) if installed.id == id => None,
        other => other.clone(),
    });
}
