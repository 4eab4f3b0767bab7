//! One module per command, and what they share: waiting for a trace that is still arriving.

pub mod debug;
pub mod doctor;
pub mod explain;
pub mod slow;

use crate::jaeger::{Client, Error};
use crate::trace::Trace;
use std::time::{Duration, Instant};

/// Progress lines on stderr, at most one a second, so long waits are visible but not noisy.
pub struct Progress {
    last: Option<Instant>,
    quiet: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        Progress { last: None, quiet }
    }

    pub fn tick(&mut self, message: impl FnOnce() -> String) {
        if self.quiet || self.last.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) {
            return;
        }
        self.last = Some(Instant::now());
        eprintln!("kotaemon-trace: {}", message());
    }
}

/// A trace as it settles in Jaeger: fetched until it is there, no span names a missing parent and the
/// span count stopped changing, or until `wait` has passed. `Ok(None)`: Jaeger never had it.
pub fn fetch_settled(
    client: &Client,
    trace_id: &str,
    wait: Duration,
    progress: &mut Progress,
) -> Result<Option<Trace>, Error> {
    const POLL: Duration = Duration::from_millis(300);
    let started = Instant::now();
    let deadline = started + wait;
    let mut previous: Option<usize> = None;
    let mut last: Option<Trace> = None;
    loop {
        if let Some(json) = client.trace(trace_id)? {
            let trace = Trace::from_jaeger(&json).map_err(Error::Bad)?;
            let count = trace.spans.len();
            if trace.orphans == 0 && previous == Some(count) {
                return Ok(Some(trace));
            }
            previous = Some(count);
            last = Some(trace);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(last);
        }
        // A complete trace is confirmed by one more fetch without a word; anything else is a visible wait.
        let waiting = last.as_ref().is_none_or(|t| t.orphans > 0) || started.elapsed() >= Duration::from_secs(1);
        if waiting {
            progress.tick(|| match &last {
                None => format!("waiting for trace {trace_id} to arrive in Jaeger ({} s left)", left.as_secs()),
                Some(t) => format!(
                    "trace {trace_id}: {} spans so far, waiting for the rest ({} s left)",
                    t.spans.len(),
                    left.as_secs()
                ),
            });
        }
        std::thread::sleep(POLL.min(left));
    }
}

/// Normalises a trace id: 1 to 32 hex digits, lower case, left-padded to 32.
pub fn trace_id(text: &str) -> Result<String, String> {
    let t = text.trim().to_ascii_lowercase();
    if t.is_empty() || t.len() > 32 || !t.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("invalid trace id {text:?}: expected up to 32 hex digits, as Jaeger shows it"));
    }
    Ok(format!("{t:0>32}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_are_checked_and_normalised() {
        assert_eq!(trace_id("4BF92F3577B34DA6A3CE929D0E0E4736").unwrap(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(trace_id("a3ce929d0e0e4736").unwrap(), "0000000000000000a3ce929d0e0e4736");
        for bad in ["", "xyz", "4bf92f3577b34da6a3ce929d0e0e47360", "12 34"] {
            assert!(trace_id(bad).is_err(), "{bad}");
        }
    }
}
