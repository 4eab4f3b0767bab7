//! Starting and stopping: builds the pipeline from a configuration, installs it, and the guard that
//! flushes and uninstalls it; and the in-memory pipeline of `testing`.

pub(crate) mod guard;
pub(crate) mod pipeline;
#[cfg(feature = "testing")]
pub mod testing;
