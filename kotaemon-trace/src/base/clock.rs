//! Span timestamps. Callers' threads read the monotonic clock (`CLOCK_MONOTONIC`, what
//! `std::time::Instant` measures) at a span's start and end; the export thread moves both readings to the
//! system clock by one offset, which is what OTLP carries.
//!
//! Why the monotonic clock, not the CPU's time-stamp counter (cheaper by 10–20 ns a read, see
//! BENCHMARKS.md "Span clock"): the counter's rate against the system clock is not a constant. `quanta`
//! calibrates it once per process over about a millisecond (a preempted read leaves its scale off by as
//! much as half a percent for the life of the process), and NTP or chrony slew the system clock (up to
//! ±10 % through the kernel's tick length, ±500 ppm through its frequency) and step it. Converting counter
//! readings needs readings of both clocks around every stamp, and a span that ends within a reading period
//! of the moment a slew starts or stops still takes part of the rate change into its length (up to the
//! change itself, 10–20 %), which no reading can undo. The kernel slews the monotonic and the system clock
//! alike, so their difference changes only when the system clock is stepped: a stamp on the monotonic clock
//! plus that difference is the system-clock time it was taken at, under any slew, and a span's length is
//! its length by the monotonic clock, exactly.
//!
//! The difference is read ([`Anchor`]s: both clocks back to back) by callers' threads (the first stamp at
//! least [`ANCHOR_EVERY`] after the last reading takes one: a cheap check on every stamp, a hundred readings
//! a second at most while spans are made, none when idle) and by the export thread before each batch. A
//! span's two stamps are moved by the difference of the last reading before its start, so:
//! - a span keeps its length when the system clock is stepped while it runs;
//! - a step of the system clock (NTP, a manual change, a leap second) shows in the times of the spans
//!   started after the first reading that follows it, which is at most [`ANCHOR_EVERY`] later while spans
//!   are being made.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

/// A reading of the monotonic clock: nanoseconds since the process's clock origin (set on the first
/// reading). Eight bytes, so a span record carries its two stamps cheaply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Stamp(u64);

impl Stamp {
    /// How long after `earlier` this stamp was taken; zero when it was taken before.
    pub(crate) fn saturating_duration_since(self, earlier: Stamp) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

/// Stands for "now, by the span clock" where the OpenTelemetry API wants a `SystemTime`: our own spans
/// are ended with it so that ending reads the monotonic clock, not the system clock. No real end time is
/// the Unix epoch.
pub(crate) const END_NOW: SystemTime = SystemTime::UNIX_EPOCH;

/// A stamp taken this long after the last reading of the clocks takes a new one: a step of the system
/// clock reaches spans' times at most this late, for the cost of about a hundred readings a second on a
/// busy process (each under 100 ns) and none on an idle one.
pub(crate) const ANCHOR_EVERY: Duration = Duration::from_millis(10);

/// A reading whose clocks were read further apart than this (the thread was preempted between them) is
/// discarded: its difference could be off by that much.
const MAX_READ_WINDOW: Duration = Duration::from_micros(20);

/// Readings taken by callers' threads, for the export threads to collect.
const PUBLISHED_CAPACITY: usize = 2048;

/// The monotonic instant stamps count from.
static ORIGIN: OnceLock<Instant> = OnceLock::new();

/// When callers' threads take their next reading.
static CADENCE: Cadence = Cadence::new();

static PUBLISHED: Mutex<Published> = Mutex::new(Published { anchors: VecDeque::new(), total: 0 });

/// A stamp now; takes a reading of the clocks when one is due (see [`ANCHOR_EVERY`]).
#[inline]
pub(crate) fn now() -> Stamp {
    let stamp = stamp_of(Instant::now());
    if CADENCE.is_due(stamp.0) {
        publish(stamp);
    }
    stamp
}

#[inline]
fn stamp_of(instant: Instant) -> Stamp {
    Stamp(instant.saturating_duration_since(origin()).as_nanos() as u64)
}

/// Sets the origin now, on the caller of `init` (not when tracing is disabled), rather than on the first
/// traced call.
pub(crate) fn warm_up() {
    origin();
}

#[inline]
fn origin() -> Instant {
    *ORIGIN.get_or_init(Instant::now)
}

#[cold]
#[inline(never)]
fn publish(stamp: Stamp) {
    if !CADENCE.claim(stamp.0) {
        return;
    }
    let Some(anchor) = Anchor::read() else { return };
    // A caller never waits: when an export thread holds the lock this reading is skipped.
    if let Ok(mut published) = PUBLISHED.try_lock() {
        if published.anchors.len() == PUBLISHED_CAPACITY {
            published.anchors.pop_front();
        }
        published.anchors.push_back(anchor);
        published.total += 1;
    }
}

/// Decides which stamp takes the next reading: the first at or past `due` (nanoseconds since the
/// origin), one thread of those that get there together.
#[derive(Debug)]
pub(crate) struct Cadence {
    due: AtomicU64,
}

impl Cadence {
    pub(crate) const fn new() -> Cadence {
        Cadence { due: AtomicU64::new(0) }
    }

    #[inline(always)]
    pub(crate) fn is_due(&self, since: u64) -> bool {
        since >= self.due.load(Ordering::Relaxed)
    }

    /// True for the one caller that moves the next reading [`ANCHOR_EVERY`] past `since`.
    pub(crate) fn claim(&self, since: u64) -> bool {
        let due = self.due.load(Ordering::Relaxed);
        since >= due
            && self
                .due
                .compare_exchange(due, since + ANCHOR_EVERY.as_nanos() as u64, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}

#[derive(Debug)]
struct Published {
    anchors: VecDeque<Anchor>,
    /// Readings ever published, so that each export thread takes only those it has not seen.
    total: u64,
}

/// Readings of the monotonic clock and the system clock at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Anchor {
    /// Monotonic nanoseconds since the origin.
    pub(crate) mono: u64,
    /// System-clock nanoseconds since the Unix epoch minus `mono`: changes only when the system clock
    /// is stepped (slewing moves both clocks alike).
    pub(crate) offset: i64,
}

impl Anchor {
    /// Reads the system clock between two readings of the monotonic clock, and takes the middle of
    /// those; `None` when they were further apart than [`MAX_READ_WINDOW`].
    fn read() -> Option<Anchor> {
        let before = Instant::now();
        let wall = SystemTime::now();
        let after = Instant::now();
        let window = after.saturating_duration_since(before);
        if window > MAX_READ_WINDOW {
            return None;
        }
        let mono = stamp_of(before).0 + window.as_nanos() as u64 / 2;
        Some(Anchor { mono, offset: unix_nanos(wall) - mono as i64 })
    }
}

fn unix_nanos(wall: SystemTime) -> i64 {
    match wall.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_nanos()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_nanos()).map_or(i64::MIN, |n| -n),
    }
}

fn from_unix_nanos(nanos: i64) -> SystemTime {
    let magnitude = Duration::from_nanos(nanos.unsigned_abs());
    let time = if nanos >= 0 {
        SystemTime::UNIX_EPOCH.checked_add(magnitude)
    } else {
        SystemTime::UNIX_EPOCH.checked_sub(magnitude)
    };
    time.unwrap_or(SystemTime::UNIX_EPOCH)
}

/// Where a [`Timeline`] gets its readings: the real clocks, or simulated ones in tests.
pub(crate) trait Source {
    /// Reads both clocks now.
    fn read(&self) -> Anchor;
    /// Appends the readings callers' threads published since `seen` (a count this updates).
    fn collect(&self, seen: &mut u64, into: &mut Vec<Anchor>);
}

/// The real clocks.
#[derive(Debug, Default)]
pub(crate) struct System;

impl Source for System {
    fn read(&self) -> Anchor {
        // A preempted reading is retried; after a few, one taken without the check is better than none.
        (0..8).find_map(|_| Anchor::read()).unwrap_or_else(|| {
            let mono = stamp_of(Instant::now()).0;
            Anchor { mono, offset: unix_nanos(SystemTime::now()) - mono as i64 }
        })
    }

    fn collect(&self, seen: &mut u64, into: &mut Vec<Anchor>) {
        let published = PUBLISHED.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = (published.total - *seen).min(published.anchors.len() as u64) as usize;
        into.extend(published.anchors.iter().skip(published.anchors.len() - fresh).copied());
        *seen = published.total;
    }
}

/// A reading whose difference is within this of the last one kept adds nothing and is not kept: the
/// clocks' difference moves only by the reading noise (tens of nanoseconds) between steps.
const SAME_OFFSET: i64 = 50_000;
/// Past this many kept readings (steps of the system clock, each a reading), the oldest half is dropped.
const MAX_ANCHORS: usize = 4096;

/// Monotonic stamps to system-clock time; one per export thread.
#[derive(Debug)]
pub(crate) struct Timeline<S: Source = System> {
    source: S,
    /// In monotonic order, each where the clocks' difference changed (a step); never empty.
    anchors: Vec<Anchor>,
    /// Readings published by callers' threads that this timeline has taken.
    seen: u64,
    fresh: Vec<Anchor>,
}

impl Timeline<System> {
    pub(crate) fn new() -> Timeline<System> {
        origin();
        Timeline::with_source(System)
    }
}

impl<S: Source> Timeline<S> {
    pub(crate) fn with_source(source: S) -> Timeline<S> {
        let mut timeline = Timeline { anchors: vec![source.read()], source, seen: 0, fresh: Vec::new() };
        timeline.collect();
        timeline
    }

    /// Called before each batch is converted: takes the readings callers' threads published and one of
    /// its own, so a step made before the batch reaches the spans started after it.
    pub(crate) fn advance(&mut self) {
        self.collect();
        let own = self.source.read();
        self.insert(own);
        if self.anchors.len() > MAX_ANCHORS {
            self.anchors.drain(..MAX_ANCHORS / 2);
        }
    }

    fn collect(&mut self) {
        let mut fresh = std::mem::take(&mut self.fresh);
        self.source.collect(&mut self.seen, &mut fresh);
        // Callers' readings come in the order they were published, which is not quite monotonic order
        // when several threads publish; the few out of place are sorted in.
        fresh.sort_unstable_by_key(|a| a.mono);
        for anchor in fresh.drain(..) {
            self.insert(anchor);
        }
        self.fresh = fresh;
    }

    /// Keeps `anchor` when the clocks' difference moved since the reading before it (a step), or when it
    /// is earlier than every reading kept (a stamp taken before the first kept reading is placed by it).
    fn insert(&mut self, anchor: Anchor) {
        let at = self.anchors.partition_point(|a| a.mono <= anchor.mono);
        let same_as = |other: &Anchor| (other.offset - anchor.offset).abs() <= SAME_OFFSET;
        match at.checked_sub(1) {
            Some(before) if same_as(&self.anchors[before]) => {}
            // The reading after it now starts later than needed when it agrees with this one.
            _ if self.anchors.get(at).is_some_and(same_as) => self.anchors[at] = anchor,
            _ => self.anchors.insert(at, anchor),
        }
    }

    /// The system-clock times of a span that started at `start` and ended at `end`: both moved by the
    /// clocks' difference at the start, so the span keeps its monotonic length across a step.
    pub(crate) fn span(&self, start: Stamp, end: Option<Stamp>) -> (SystemTime, Option<SystemTime>) {
        let offset = self.offset_at(start);
        (from_unix_nanos(start.0 as i64 + offset), end.map(|end| from_unix_nanos(end.0 as i64 + offset)))
    }

    /// The system-clock time of `stamp`.
    pub(crate) fn wall(&self, stamp: Stamp) -> SystemTime {
        self.span(stamp, None).0
    }

    /// The clocks' difference of the last reading at or before `stamp`, or of the first when there is none.
    fn offset_at(&self, stamp: Stamp) -> i64 {
        // Nearly every stamp is after the last step: no search.
        let last = self.anchors[self.anchors.len() - 1];
        if last.mono <= stamp.0 {
            return last.offset;
        }
        self.anchors[self.anchors.partition_point(|a| a.mono <= stamp.0).saturating_sub(1)].offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};

    fn nanos(t: SystemTime) -> i64 {
        unix_nanos(t)
    }

    /// Takes a stamp and reads the system clock back to back, retried until no preemption split them.
    fn stamp_and_wall() -> (Stamp, SystemTime, Duration) {
        let mut best = None;
        for _ in 0..100 {
            let first = now();
            let wall = SystemTime::now();
            let window = now().saturating_duration_since(first);
            if best.is_none_or(|(_, _, w)| window < w) {
                best = Some((first, wall, window));
            }
            if window < Duration::from_micros(2) {
                break;
            }
        }
        best.unwrap()
    }

    #[test]
    fn a_stamp_converts_to_the_wall_time_it_was_taken_at() {
        let mut timeline = Timeline::new();
        let (stamp, wall, window) = stamp_and_wall();
        std::thread::sleep(Duration::from_millis(1100));
        timeline.advance();
        let error = nanos(timeline.wall(stamp)) - nanos(wall);
        // Placed by readings of both clocks taken a few nanoseconds apart, whatever the clocks' rates.
        let allowed = 20_000 + 2 * window.as_nanos() as i64;
        assert!(error.abs() < allowed, "converted {error} ns away from the wall clock");
    }

    #[test]
    fn durations_survive_conversion_and_order_is_kept() {
        let timeline = Timeline::new();
        let before = Instant::now();
        let start = now();
        std::thread::sleep(Duration::from_millis(5));
        let end = now();
        let around = before.elapsed();
        let (start_wall, end_wall) = timeline.span(start, Some(end));
        let converted = end_wall.unwrap().duration_since(start_wall).unwrap();
        // The length by the clock `Instant` measures: at least the sleep, at most what `Instant` saw around
        // both stamps, however long the thread was preempted.
        assert!(converted >= Duration::from_millis(5) && converted <= around, "{converted:?} of {around:?}");
    }

    #[test]
    fn the_caller_cadence_takes_one_reading_per_period() {
        let cadence = Cadence::new();
        let every = ANCHOR_EVERY.as_nanos() as u64;
        assert!(cadence.is_due(0) && cadence.claim(0), "the first stamp takes a reading");
        assert!(!cadence.claim(0), "a second caller at the same moment does not");
        assert!(!cadence.is_due(every - 1));
        assert!(cadence.is_due(every + 5) && cadence.claim(every + 5));
        assert!(!cadence.is_due(2 * every), "the period counts from the reading taken");
    }

    /// Simulated clocks as functions of true time (nanoseconds since the start): the monotonic clock runs
    /// at a rate per true nanosecond that changes at given times (the kernel's slew), and the system clock
    /// is the monotonic clock plus an offset that steps at given times, as in the kernel.
    struct Simulated {
        now: Cell<u64>,
        /// (from true nanosecond, monotonic nanoseconds per true nanosecond), in time order.
        rates: Vec<(u64, f64)>,
        /// (at true nanosecond, step of the system clock in nanoseconds).
        steps: Vec<(u64, i64)>,
        cadence: Cadence,
        published: RefCell<Vec<Anchor>>,
    }

    const WALL_AT_START: i64 = 1_800_000_000_000_000_000;

    impl Simulated {
        fn new(rates: Vec<(u64, f64)>, steps: Vec<(u64, i64)>) -> Simulated {
            let published = RefCell::new(Vec::new());
            Simulated { now: Cell::new(0), rates, steps, cadence: Cadence::new(), published }
        }

        fn mono(&self, t: u64) -> u64 {
            let mut mono = 0.0;
            for (i, &(from, rate)) in self.rates.iter().enumerate() {
                let until = self.rates.get(i + 1).map_or(u64::MAX, |next| next.0);
                if t > from {
                    mono += (t.min(until) - from) as f64 * rate;
                }
            }
            mono.round() as u64
        }

        fn offset(&self, t: u64) -> i64 {
            WALL_AT_START + self.steps.iter().filter(|(at, _)| *at <= t).map(|(_, step)| step).sum::<i64>()
        }

        fn wall(&self, t: u64) -> i64 {
            self.mono(t) as i64 + self.offset(t)
        }

        fn anchor(&self, t: u64) -> Anchor {
            Anchor { mono: self.mono(t), offset: self.offset(t) }
        }

        /// What a caller's `now()` does at `t`.
        fn stamp(&self, t: u64) -> Stamp {
            self.now.set(t);
            let stamp = Stamp(self.mono(t));
            if self.cadence.is_due(stamp.0) && self.cadence.claim(stamp.0) {
                self.published.borrow_mut().push(self.anchor(t));
            }
            stamp
        }
    }

    impl Source for &Simulated {
        fn read(&self) -> Anchor {
            self.anchor(self.now.get())
        }

        fn collect(&self, seen: &mut u64, into: &mut Vec<Anchor>) {
            let published = self.published.borrow();
            into.extend_from_slice(&published[*seen as usize..]);
            *seen = published.len() as u64;
        }
    }

    struct Outcome {
        /// Largest distance of a converted start or end from the simulated system clock, in nanoseconds.
        worst_position: i64,
        /// Largest error of a converted length against the monotonic clock's, in nanoseconds.
        worst_length: i64,
        spans: usize,
    }

    /// Spans of 0.2 ms to 3 s started in bursts with idle gaps, converted by a timeline that advances every
    /// 5 s, as the export thread does; each span compared with the simulated clocks. Spans whose start
    /// and end straddle a step, or that start within a reading period after one, are left out of the
    /// position check (their length is checked).
    fn run(clocks: &Simulated) -> Outcome {
        const MS: u64 = 1_000_000;
        let mut spans = Vec::new();
        let mut t = 3 * MS;
        let mut k = 0_u64;
        while t < 40_000 * MS {
            let length = match k % 11 {
                0 => 3_000 * MS,
                1 | 2 => MS / 5,
                n => n * 7 * MS,
            };
            spans.push((t, t + length));
            k += 1;
            // Bursts of a hundred spans 1.3 ms apart, then up to 2.6 s of nothing.
            t += if k.is_multiple_of(100) { (k % 7) * 400 * MS } else { 1_300_000 + (k % 3) * 100_000 };
        }
        let mut events: Vec<u64> = spans.iter().flat_map(|&(s, e)| [s, e]).collect();
        events.sort_unstable();
        let mut stamps = std::collections::HashMap::new();
        let mut timeline = Timeline::with_source(clocks);
        let mut outcome = Outcome { worst_position: 0, worst_length: 0, spans: 0 };
        let mut next_export = 5_000 * MS;
        let mut exported = 0;
        let mut by_end = spans.clone();
        by_end.sort_unstable_by_key(|&(_, e)| e);
        for &at in events.iter().chain(std::iter::once(&u64::MAX)) {
            while at >= next_export && next_export < 50_000 * MS {
                clocks.now.set(next_export);
                timeline.advance();
                while exported < by_end.len() && by_end[exported].1 < next_export {
                    let (s, e) = by_end[exported];
                    let (start, end) = timeline.span(stamps[&s], Some(stamps[&e]));
                    let (start, end) = (nanos(start), nanos(end.unwrap()));
                    // A reading period by the monotonic clock, which the slowest slew stretches by 10 %.
                    let noticed = s.saturating_sub(ANCHOR_EVERY.as_nanos() as u64 * 11 / 10);
                    if !clocks.steps.iter().any(|&(at, _)| at > noticed && at <= e) {
                        outcome.worst_position = outcome
                            .worst_position
                            .max((start - clocks.wall(s)).abs())
                            .max((end - clocks.wall(e)).abs());
                    }
                    let length = clocks.mono(e) as i64 - clocks.mono(s) as i64;
                    outcome.worst_length = outcome.worst_length.max(((end - start) - length).abs());
                    outcome.spans += 1;
                    exported += 1;
                }
                next_export += 5_000 * MS;
            }
            if at != u64::MAX {
                stamps.entry(at).or_insert_with(|| clocks.stamp(at));
            }
        }
        assert_eq!(outcome.spans, spans.len(), "every span was converted");
        outcome
    }

    const MS: u64 = 1_000_000;

    #[test]
    fn an_ntp_slew_moves_no_span_and_changes_no_length() {
        // NTP slews the clock by the most its frequency may be set to (±500 ppm), starting and stopping
        // between readings.
        let clocks =
            Simulated::new(vec![(0, 1.0), (7_777 * MS, 1.0005), (19_013 * MS, 0.9995), (31_001 * MS, 1.0)], vec![]);
        let outcome = run(&clocks);
        assert_eq!(outcome.worst_position, 0, "ns from the system clock");
        assert_eq!(outcome.worst_length, 0, "ns off the monotonic length");
    }

    #[test]
    fn the_fastest_slew_the_kernel_allows_moves_no_span_and_changes_no_length() {
        // chrony slews through the tick length, which the kernel lets run 10 % fast or slow, on top of the
        // ±500 ppm frequency; the slew starts, reverses and stops at arbitrary moments, spans straddling each.
        let clocks = Simulated::new(
            vec![(0, 1.0), (2_345 * MS + 678, 1.1005), (11_111 * MS, 0.8995), (23_456 * MS + 1, 1.0)],
            vec![],
        );
        let outcome = run(&clocks);
        assert_eq!(outcome.worst_position, 0, "ns from the system clock");
        assert_eq!(outcome.worst_length, 0, "ns off the monotonic length");
    }

    #[test]
    fn a_stepped_system_clock_moves_later_spans_and_keeps_every_length() {
        // An hour forward, then two seconds back (a leap second's worth and more), between readings, while
        // the clock is also being slewed.
        let clocks = Simulated::new(
            vec![(0, 1.0), (4_000 * MS, 1.05)],
            vec![(6_500 * MS + 333, 3_600_000_000_000), (17_250 * MS + 17, -2_000_000_000)],
        );
        let outcome = run(&clocks);
        // Spans that start a reading period after the step carry the new time (the others are left out
        // of the check above); spans that straddle it keep their length.
        assert_eq!(outcome.worst_position, 0, "ns from the system clock");
        assert_eq!(outcome.worst_length, 0, "ns off the monotonic length");
        // And the spans started within a reading period after a step are what the check left out: they
        // carry the time before it, so they are off by the step, and no more.
        let mut timeline = Timeline::with_source(&clocks);
        let just_after = 6_500 * MS + 1_000;
        let stamp = clocks.stamp(just_after);
        clocks.now.set(just_after + 2 * ANCHOR_EVERY.as_nanos() as u64);
        timeline.advance();
        let off = nanos(timeline.wall(stamp)) - clocks.wall(just_after);
        assert!(off == 0 || off == -3_600_000_000_000, "{off}");
    }

    #[test]
    fn readings_that_add_nothing_are_not_kept() {
        let clocks = Simulated::new(vec![(0, 1.0)], vec![(30_000 * MS, 5_000_000)]);
        let mut timeline = Timeline::with_source(&clocks);
        for k in 1..=6_000 {
            let _ = clocks.stamp(k * 10 * MS);
            if k % 100 == 0 {
                timeline.advance();
            }
        }
        assert_eq!(timeline.anchors.len(), 2, "one reading per step of the system clock: {:?}", timeline.anchors);
        let before = nanos(timeline.wall(Stamp(clocks.mono(29_000 * MS))));
        assert_eq!(before, clocks.wall(29_000 * MS));
        assert_eq!(nanos(timeline.wall(Stamp(clocks.mono(31_000 * MS)))), clocks.wall(31_000 * MS));
    }
}
