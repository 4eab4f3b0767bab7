//! Span timestamps. Callers' threads read the CPU's time-stamp counter (through `quanta`: about 10 ns a
//! read on the development machine, against 25 ns for the system clock, and a span reads twice); the
//! export thread converts the readings to wall-clock time, which is what OTLP carries.
//!
//! The counter is calibrated against the monotonic clock once per process (under a millisecond; `init`
//! does it so no caller pays it); where it is not usable, `quanta` reads the monotonic clock instead.
//! The counter and the wall clock drift apart by a few microseconds per second (NTP slews the wall
//! clock), so the conversion does not use a single offset: it follows the line through the last two
//! readings of both clocks, taken by the export thread once per batch.

use std::time::{Duration, SystemTime};

/// A reading of the counter.
pub(crate) type Stamp = quanta::Instant;

/// Stands for "now, by the counter" where the OpenTelemetry API wants a `SystemTime`: our own spans
/// are ended with it so that ending reads the counter, not the system clock. No real end time is the
/// Unix epoch.
pub(crate) const END_NOW: SystemTime = SystemTime::UNIX_EPOCH;

#[inline]
pub(crate) fn now() -> Stamp {
    quanta::Instant::now()
}

/// Calibrates the counter now, on the caller of `init` (not when tracing is disabled), rather than on the
/// first traced call.
pub(crate) fn warm_up() {
    let _ = now();
}

/// Readings of both clocks at one moment.
#[derive(Debug, Clone, Copy)]
struct Anchor {
    stamp: Stamp,
    wall: SystemTime,
}

impl Anchor {
    fn take() -> Anchor {
        Anchor { stamp: now(), wall: SystemTime::now() }
    }
}

/// Counter readings to wall-clock time; one per export thread.
#[derive(Debug)]
pub(crate) struct Timeline {
    /// The latest reading of both clocks.
    current: Anchor,
    /// Wall nanoseconds per counter nanosecond between the last two readings (1.0 until there are two).
    rate: f64,
}

/// Rates further from 1 than this mean a wall-clock step (an NTP jump, a manual change), not drift:
/// the conversion then falls back to a plain offset from the latest reading.
const MAX_DRIFT: f64 = 1e-3;
/// Readings closer than this give a noisy rate (two clock reads are tens of nanoseconds apart, a
/// preempted one more); a second apart, the rate is good to a few parts in 10^8.
const MIN_SPAN: Duration = Duration::from_secs(1);

impl Timeline {
    pub(crate) fn new() -> Timeline {
        Timeline { current: Anchor::take(), rate: 1.0 }
    }

    /// Called before each batch is converted: takes a new reading of both clocks when the last one is at
    /// least [`MIN_SPAN`] old (between readings, conversion extrapolates along the measured rate).
    pub(crate) fn advance(&mut self) {
        if now().saturating_duration_since(self.current.stamp) < MIN_SPAN {
            return;
        }
        let next = Anchor::take();
        self.rate = self.rate_between(self.current, next);
        self.current = next;
    }

    fn rate_between(&self, older: Anchor, newer: Anchor) -> f64 {
        let counted = newer.stamp.saturating_duration_since(older.stamp).as_nanos() as f64;
        let Ok(walked) = newer.wall.duration_since(older.wall) else { return 1.0 };
        if counted < MIN_SPAN.as_nanos() as f64 {
            return 1.0;
        }
        let rate = walked.as_nanos() as f64 / counted;
        if (rate - 1.0).abs() > MAX_DRIFT { 1.0 } else { rate }
    }

    /// The wall-clock time of `stamp`.
    pub(crate) fn wall(&self, stamp: Stamp) -> SystemTime {
        let Anchor { stamp: anchor, wall } = self.current;
        match anchor.checked_duration_since(stamp) {
            Some(before) => wall.checked_sub(self.scale(before)).unwrap_or(wall),
            None => wall.checked_add(self.scale(stamp.saturating_duration_since(anchor))).unwrap_or(wall),
        }
    }

    fn scale(&self, counted: Duration) -> Duration {
        if self.rate == 1.0 { counted } else { Duration::from_nanos((counted.as_nanos() as f64 * self.rate) as u64) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nanos(t: SystemTime) -> i128 {
        t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos() as i128
    }

    #[test]
    fn a_stamp_converts_to_the_wall_time_it_was_taken_at() {
        let mut timeline = Timeline::new();
        let (stamp, wall) = (now(), SystemTime::now());
        let first = timeline.current.stamp;
        std::thread::sleep(Duration::from_millis(1100));
        timeline.advance();
        assert!(timeline.current.stamp > first, "a second later the timeline took a new reading");
        let error = nanos(timeline.wall(stamp)) - nanos(wall);
        // Both readings above are tens of nanoseconds apart; drift over a second is a few microseconds.
        assert!(error.abs() < 20_000, "converted {error} ns away from the wall clock");
    }

    #[test]
    fn durations_survive_conversion_and_order_is_kept() {
        let timeline = Timeline::new();
        let start = now();
        std::thread::sleep(Duration::from_millis(5));
        let end = now();
        let (start_wall, end_wall) = (timeline.wall(start), timeline.wall(end));
        let converted = end_wall.duration_since(start_wall).unwrap();
        let counted = end.duration_since(start);
        assert!(converted >= Duration::from_millis(5));
        assert!(converted.abs_diff(counted) < Duration::from_micros(1), "{converted:?} vs {counted:?}");
    }

    #[test]
    fn a_wall_clock_step_falls_back_to_an_offset() {
        let base = Anchor::take();
        let timeline = Timeline { current: base, rate: 1.0 };
        // A wall clock one hour ahead after 2 s of counting is a step, not drift.
        let counted = Duration::from_secs(2);
        let later = Anchor { stamp: base.stamp + counted, wall: base.wall + Duration::from_secs(3600) };
        assert_eq!(timeline.rate_between(base, later), 1.0);
        // Four microseconds more wall time over two seconds is drift (2 ppm): followed.
        let drifting = Anchor { stamp: base.stamp + counted, wall: base.wall + counted + Duration::from_micros(4) };
        let rate = timeline.rate_between(base, drifting);
        assert!((rate - 1.000_002).abs() < 1e-9, "{rate}");
    }
}
