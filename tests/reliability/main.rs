//! Reliability and security promises of the pipeline: span limits (cut, capped and counted), secrets kept
//! out of every `Debug`, error and problem text, a collector that crashes and comes back, and one that is
//! slow to answer.
//!
//! Each test installs the process-wide pipeline, so they take `PIPELINE` to run one at a time.

use std::sync::{Mutex, MutexGuard};

mod bounds;
mod flapping;
mod in_flight;
mod limits;
mod loopback;
mod secrets;
mod tls;

static PIPELINE: Mutex<()> = Mutex::new(());

fn exclusive() -> MutexGuard<'static, ()> {
    PIPELINE.lock().unwrap_or_else(|e| e.into_inner())
}
