//! Span timestamps. Callers' threads read the CPU's time-stamp counter (through `quanta`), which is
//! cheaper than the system clock, and a span reads it twice; the export thread converts the readings to
//! wall-clock time, which is what OTLP carries.
//!
//! The counter's rate cannot be trusted against the system clock: `quanta` calibrates it once per
//! process over about a millisecond, so a preempted read during calibration (a busy virtual machine)
//! leaves its scale off by as much as half a percent for the life of the process; and the system clock
//! itself is slewed by NTP or chrony (up to ±10 % through the kernel's tick length, ±500 ppm through its
//! frequency) and stepped. So nothing here assumes a rate. Readings of all three clocks together
//! ([`Anchor`]s) are taken by callers' threads (the first stamp at least [`ANCHOR_EVERY`] after the last
//! reading takes one: a cheap check on every stamp, both clocks read about a hundred times a second
//! while spans are made) and by the export thread before each batch; the export thread converts a stamp
//! by interpolating between the two readings around it. Interpolation is exact for any constant rate
//! (a miscalibrated counter, a slew), and a rate change costs at most its size times the distance to the
//! nearest reading, which the callers' readings keep under [`ANCHOR_EVERY`].
//!
//! Stamps are placed on the monotonic clock (slewed with the system clock, never stepped), and a span's
//! two stamps are moved to the system clock by one offset, that of the last reading before its start:
//! - a span's length is its length by the monotonic clock, the clock `std::time::Instant` measures, even
//!   when the system clock is stepped while it runs;
//! - a step of the system clock (NTP, a manual change, a leap second) shows in the times of the spans
//!   started after the first reading that follows it, which is at most [`ANCHOR_EVERY`] later while
//!   spans are being made.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

/// A reading of the counter.
pub(crate) type Stamp = quanta::Instant;

/// Stands for "now, by the counter" where the OpenTelemetry API wants a `SystemTime`: our own spans
/// are ended with it so that ending reads the counter, not the system clock. No real end time is the
/// Unix epoch.
pub(crate) const END_NOW: SystemTime = SystemTime::UNIX_EPOCH;

/// A stamp taken this long (by the counter) after the last reading of the clocks takes a new one. Ten
/// milliseconds keep the conversion within a millisecond of the system clock even when its rate changes
/// by 10 % (the most the kernel's tick adjustment allows), for the cost of about a hundred readings of
/// the clocks a second on a busy process (each under 100 ns) and none on an idle one.
pub(crate) const ANCHOR_EVERY: Duration = Duration::from_millis(10);

/// A reading whose three clocks were read further apart than this (the thread was preempted between
/// them) is discarded: it would place stamps near it up to that far off.
const MAX_READ_WINDOW: Duration = Duration::from_micros(20);

/// Readings taken by callers' threads, for the export threads to collect.
const PUBLISHED_CAPACITY: usize = 2048;

/// The counter reading and monotonic instant that the readings' monotonic nanoseconds and the callers'
/// cadence count from; set by `init` (or the first [`Timeline`]). Until it is set stamps take no readings.
static ORIGIN: OnceLock<(Stamp, Instant)> = OnceLock::new();

/// When callers' threads take their next reading.
static CADENCE: Cadence = Cadence::new();

static PUBLISHED: Mutex<Published> = Mutex::new(Published { anchors: VecDeque::new(), total: 0 });

/// A counter reading; takes a reading of the clocks when one is due (see [`ANCHOR_EVERY`]).
#[inline]
pub(crate) fn now() -> Stamp {
    let stamp = quanta::Instant::now();
    if let Some((origin, _)) = ORIGIN.get() {
        let since = stamp.saturating_duration_since(*origin).as_nanos() as u64;
        if CADENCE.is_due(since) {
            publish(stamp, since);
        }
    }
    stamp
}

/// Calibrates the counter now, on the caller of `init` (not when tracing is disabled), rather than on the
/// first traced call, and starts the callers' readings.
pub(crate) fn warm_up() {
    origin();
}

fn origin() -> &'static (Stamp, Instant) {
    ORIGIN.get_or_init(|| (quanta::Instant::now(), Instant::now()))
}

#[cold]
#[inline(never)]
fn publish(stamp: Stamp, since: u64) {
    if !CADENCE.claim(since) {
        return;
    }
    let Some(anchor) = Anchor::read_after(stamp) else { return };
    // A caller never waits: when an export thread holds the lock this reading is skipped.
    if let Ok(mut published) = PUBLISHED.try_lock() {
        if published.anchors.len() == PUBLISHED_CAPACITY {
            published.anchors.pop_front();
        }
        published.anchors.push_back(anchor);
        published.total += 1;
    }
}

/// Decides which stamp takes the next reading: the first at or past `due` (counter nanoseconds since the
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

/// Readings of the counter, the monotonic clock and the system clock at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Anchor {
    pub(crate) stamp: Stamp,
    /// Monotonic nanoseconds since the origin.
    pub(crate) mono: i64,
    /// System-clock nanoseconds since the Unix epoch minus `mono`: changes only when the system clock
    /// is stepped (slewing moves both clocks alike).
    pub(crate) offset: i64,
}

impl Anchor {
    /// Reads both clocks right after the counter gave `first`; `None` when that took longer than
    /// [`MAX_READ_WINDOW`].
    fn read_after(first: Stamp) -> Option<Anchor> {
        let (_, mono_origin) = origin();
        let mono = Instant::now();
        let wall = SystemTime::now();
        if quanta::Instant::now().saturating_duration_since(first) > MAX_READ_WINDOW {
            return None;
        }
        let mono = mono.saturating_duration_since(*mono_origin).as_nanos() as i64;
        Some(Anchor { stamp: first, mono, offset: unix_nanos(wall) - mono })
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
    /// Reads the counter and both clocks now.
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
        (0..8).find_map(|_| Anchor::read_after(quanta::Instant::now())).unwrap_or_else(|| {
            let (_, mono_origin) = origin();
            let stamp = quanta::Instant::now();
            let mono = Instant::now().saturating_duration_since(*mono_origin).as_nanos() as i64;
            Anchor { stamp, mono, offset: unix_nanos(SystemTime::now()) - mono }
        })
    }

    fn collect(&self, seen: &mut u64, into: &mut Vec<Anchor>) {
        let published = PUBLISHED.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = (published.total - *seen).min(published.anchors.len() as u64) as usize;
        into.extend(published.anchors.iter().skip(published.anchors.len() - fresh).copied());
        *seen = published.total;
    }
}

/// Readings of the clocks closer together than this add nothing (and the later one is dropped).
const MIN_GAP: Duration = Duration::from_millis(1);
/// Past this many readings, every other one of the older half is dropped: recent stamps (nearly all)
/// keep every reading, the start of a span that has run for hours keeps a coarser line.
const MAX_ANCHORS: usize = 4096;
/// Before the first reading or after the last, a stamp is placed along the rate measured over at least
/// this much counter time, which a reading's few nanoseconds of noise cannot bend.
const BASELINE: Duration = Duration::from_secs(1);

/// Counter readings to wall-clock time; one per export thread.
#[derive(Debug)]
pub(crate) struct Timeline<S: Source = System> {
    source: S,
    /// In counter order, at least [`MIN_GAP`] apart; never empty.
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
    /// its own, so every stamp of the batch lies between two readings.
    pub(crate) fn advance(&mut self) {
        self.collect();
        let own = self.source.read();
        self.insert(own);
        if self.anchors.len() > MAX_ANCHORS {
            let older = self.anchors.len() / 2;
            let mut index = 0;
            self.anchors.retain(|_| {
                index += 1;
                index > older || index % 2 == 1
            });
        }
    }

    fn collect(&mut self) {
        let mut fresh = std::mem::take(&mut self.fresh);
        self.source.collect(&mut self.seen, &mut fresh);
        for anchor in fresh.drain(..) {
            self.insert(anchor);
        }
        self.fresh = fresh;
    }

    fn insert(&mut self, anchor: Anchor) {
        let at = self.anchors.partition_point(|a| a.stamp <= anchor.stamp);
        let near = |other: &Anchor| {
            let gap = if other.stamp <= anchor.stamp {
                anchor.stamp.saturating_duration_since(other.stamp)
            } else {
                other.stamp.saturating_duration_since(anchor.stamp)
            };
            gap < MIN_GAP
        };
        if at.checked_sub(1).is_some_and(|before| near(&self.anchors[before])) || self.anchors.get(at).is_some_and(near)
        {
            return;
        }
        self.anchors.insert(at, anchor);
    }

    /// The wall-clock times of a span that started at `start` and ended at `end`: both placed by the
    /// monotonic clock and moved by the system clock's offset at the start, so the span keeps its length
    /// across a step of the system clock.
    pub(crate) fn span(&self, start: Stamp, end: Option<Stamp>) -> (SystemTime, Option<SystemTime>) {
        let at = self.reading_before(start);
        let offset = self.anchors[at].offset;
        let start_wall = from_unix_nanos(self.mono_near(at, start) + offset);
        let end_wall = end.map(|end| {
            // Most spans end before the next reading after their start: no second search.
            let same = self.anchors.get(at + 1).is_none_or(|next| end < next.stamp) && end >= self.anchors[at].stamp;
            let end_at = if same { at } else { self.reading_before(end) };
            from_unix_nanos(self.mono_near(end_at, end) + offset)
        });
        (start_wall, end_wall)
    }

    /// The wall-clock time of `stamp`.
    pub(crate) fn wall(&self, stamp: Stamp) -> SystemTime {
        self.span(stamp, None).0
    }

    /// The last reading at or before `stamp`, or the first when there is none.
    fn reading_before(&self, stamp: Stamp) -> usize {
        self.anchors.partition_point(|a| a.stamp <= stamp).saturating_sub(1)
    }

    /// Monotonic nanoseconds at `stamp`, along the line through the readings around it (`at` is
    /// [`Self::reading_before`]).
    fn mono_near(&self, at: usize, stamp: Stamp) -> i64 {
        let anchors = &self.anchors;
        let here = anchors[at];
        let (from, to) = if stamp < here.stamp {
            // Before every reading: the rate over the first baseline (or all there is).
            let past = anchors.partition_point(|a| a.stamp.saturating_duration_since(here.stamp) < BASELINE);
            (here, anchors[past.min(anchors.len() - 1)])
        } else if let Some(next) = anchors.get(at + 1) {
            (here, *next)
        } else {
            // After every reading: the rate over the last baseline (or all there is).
            let within = anchors.partition_point(|a| here.stamp.saturating_duration_since(a.stamp) >= BASELINE);
            (anchors[within.saturating_sub(1)], here)
        };
        let counted = signed_nanos(stamp, here.stamp);
        let length = signed_nanos(to.stamp, from.stamp);
        if length <= 0 {
            return here.mono + counted;
        }
        // In floating point, which is exact enough (a rate good to 1e-16 is a nanosecond in 100 days) and
        // cheaper than an integer product that needs 128 bits.
        // (Truncated, not rounded: `f64::round` is a library call, and the nanosecond is below noise.)
        let rate = (to.mono - from.mono) as f64 / length as f64;
        here.mono + (counted as f64 * rate) as i64
    }
}

/// `later - earlier` in counter nanoseconds, negative when `later` is the earlier.
fn signed_nanos(later: Stamp, earlier: Stamp) -> i64 {
    match later.checked_duration_since(earlier) {
        Some(after) => after.as_nanos() as i64,
        None => -(earlier.saturating_duration_since(later).as_nanos() as i64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};

    fn nanos(t: SystemTime) -> i64 {
        unix_nanos(t)
    }

    /// Reads the counter and the system clock back to back, retried until no preemption split them.
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
        assert!(timeline.anchors.len() >= 2, "a second later the timeline took a new reading");
        let error = nanos(timeline.wall(stamp)) - nanos(wall);
        // Interpolated between readings taken a few nanoseconds apart, whatever the counter's calibration.
        let allowed = 20_000 + 2 * window.as_nanos() as i64;
        assert!(error.abs() < allowed, "converted {error} ns away from the wall clock");
    }

    #[test]
    fn durations_survive_conversion_and_order_is_kept() {
        let timeline = Timeline::new();
        let start = now();
        std::thread::sleep(Duration::from_millis(5));
        let end = now();
        let (start_wall, end_wall) = timeline.span(start, Some(end));
        let converted = end_wall.unwrap().duration_since(start_wall).unwrap();
        assert!(converted >= Duration::from_millis(4), "{converted:?}");
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

    /// Simulated clocks as functions of the counter's nanoseconds since `base`: the monotonic clock runs
    /// at a rate per counter nanosecond that changes at given times, and the system clock is the
    /// monotonic clock plus an offset that steps at given times.
    struct Simulated {
        base: Stamp,
        now: Cell<u64>,
        /// (from counter nanosecond, monotonic nanoseconds per counter nanosecond), in time order.
        rates: Vec<(u64, f64)>,
        /// (at counter nanosecond, step of the system clock in nanoseconds).
        steps: Vec<(u64, i64)>,
        cadence: Cadence,
        published: RefCell<Vec<Anchor>>,
    }

    const WALL_AT_START: i64 = 1_800_000_000_000_000_000;

    impl Simulated {
        fn new(rates: Vec<(u64, f64)>, steps: Vec<(u64, i64)>) -> Simulated {
            let base = quanta::Instant::now();
            let published = RefCell::new(Vec::new());
            Simulated { base, now: Cell::new(0), rates, steps, cadence: Cadence::new(), published }
        }

        fn mono(&self, t: u64) -> i64 {
            let mut mono = 0.0;
            for (i, &(from, rate)) in self.rates.iter().enumerate() {
                let until = self.rates.get(i + 1).map_or(u64::MAX, |next| next.0);
                if t > from {
                    mono += (t.min(until) - from) as f64 * rate;
                }
            }
            mono.round() as i64
        }

        fn offset(&self, t: u64) -> i64 {
            WALL_AT_START + self.steps.iter().filter(|(at, _)| *at <= t).map(|(_, step)| step).sum::<i64>()
        }

        fn wall(&self, t: u64) -> i64 {
            self.mono(t) + self.offset(t)
        }

        fn anchor(&self, t: u64) -> Anchor {
            Anchor { stamp: self.base + Duration::from_nanos(t), mono: self.mono(t), offset: self.offset(t) }
        }

        /// What a caller's `now()` does at `t`.
        fn stamp(&self, t: u64) -> Stamp {
            self.now.set(t);
            if self.cadence.is_due(t) && self.cadence.claim(t) {
                self.published.borrow_mut().push(self.anchor(t));
            }
            self.base + Duration::from_nanos(t)
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
        /// Largest error of a converted length against the monotonic clock's, relative.
        worst_length: f64,
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
        let mut outcome = Outcome { worst_position: 0, worst_length: 0.0, spans: 0 };
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
                    let noticed = s.saturating_sub(ANCHOR_EVERY.as_nanos() as u64);
                    if !clocks.steps.iter().any(|&(at, _)| at > noticed && at <= e) {
                        outcome.worst_position = outcome
                            .worst_position
                            .max((start - clocks.wall(s)).abs())
                            .max((end - clocks.wall(e)).abs());
                    }
                    let length = (clocks.mono(e) - clocks.mono(s)) as f64;
                    outcome.worst_length = outcome.worst_length.max(((end - start) as f64 - length).abs() / length);
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
    fn a_miscalibrated_counter_and_an_ntp_slew_are_followed() {
        // The counter runs 0.5 % fast against the clocks (a calibration upset by preemption); NTP slews the
        // clock by the most its frequency may be set to (±500 ppm), starting and stopping between readings.
        let counter = 1.0 / 1.005;
        let clocks = Simulated::new(
            vec![(0, counter), (7_777 * MS, counter * 1.0005), (19_013 * MS, counter * 0.9995), (31_001 * MS, counter)],
            vec![],
        );
        let outcome = run(&clocks);
        assert!(outcome.worst_position < 1_000_000, "{} ns from the system clock", outcome.worst_position);
        assert!(outcome.worst_length < 1e-3, "lengths off by {}", outcome.worst_length);
    }

    #[test]
    fn the_fastest_slew_the_kernel_allows_is_followed_within_a_millisecond() {
        // chrony slews through the tick length, which the kernel lets run 10 % fast or slow, on top of the
        // ±500 ppm frequency; the slew starts and stops at arbitrary moments.
        let clocks = Simulated::new(
            vec![(0, 1.0), (2_345 * MS + 678, 1.1005), (11_111 * MS, 0.8995), (23_456 * MS + 1, 1.0)],
            vec![],
        );
        let outcome = run(&clocks);
        assert!(outcome.worst_position < 1_000_000, "{} ns from the system clock", outcome.worst_position);
        // Lengths follow the monotonic clock, except that a span within one reading period of a moment
        // the rate changed by 20 % takes part of that change (at most 2 ms over the 10 ms period).
        assert!(outcome.worst_length < 1e-2, "lengths off by {}", outcome.worst_length);
    }

    #[test]
    fn stamps_outside_the_readings_follow_the_rate_of_the_nearest_second() {
        // The counter runs 2 % fast; readings at 10 s, 10.5 s, 11 s, 12 s, 13 s.
        let clocks = Simulated::new(vec![(0, 1.0 / 1.02)], vec![]);
        clocks.now.set(10_000 * MS);
        let mut timeline = Timeline::with_source(&clocks);
        for at in [10_500, 11_000, 12_000, 13_000] {
            clocks.now.set(at * MS);
            timeline.advance();
        }
        // A span started long before the first reading and one ended after the last.
        for (start, end) in [(1_000 * MS, 10_200 * MS), (12_900 * MS, 15_000 * MS)] {
            let (s, e) =
                timeline.span(clocks.base + Duration::from_nanos(start), Some(clocks.base + Duration::from_nanos(end)));
            // Exact but for rounding: the simulated clocks are whole nanoseconds, extrapolated 9 s.
            assert!(
                (nanos(s) - clocks.wall(start)).abs() <= 20,
                "start {start}: {} vs {}",
                nanos(s),
                clocks.wall(start)
            );
            assert!((nanos(e.unwrap()) - clocks.wall(end)).abs() <= 20, "end {end}");
        }
    }

    #[test]
    fn a_stepped_system_clock_moves_later_spans_and_keeps_every_length() {
        // An hour forward, then two seconds back (a leap second's worth and more), between readings.
        let clocks = Simulated::new(
            vec![(0, 1.0 / 1.003)],
            vec![(6_500 * MS + 333, 3_600_000_000_000), (17_250 * MS + 17, -2_000_000_000)],
        );
        let outcome = run(&clocks);
        // Spans that start a reading period after the step carry the new time (the others are left out
        // of the check above); spans that straddle it keep their length.
        assert!(outcome.worst_position < 1_000_000, "{} ns from the system clock", outcome.worst_position);
        assert!(outcome.worst_length < 1e-3, "lengths off by {}", outcome.worst_length);
    }
}
