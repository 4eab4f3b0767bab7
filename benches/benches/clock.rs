//! What span timestamps cost: the reads a traced call makes on the caller's thread, and the conversion
//! the export thread makes per span and per batch. See `kotaemon-trace/src/base/clock.rs` for why the
//! hot path reads the monotonic clock rather than the cheaper CPU counter (the `counter` row).
//!
//! `cargo bench -p kotaemon-trace-benches --bench clock`

use criterion::{Criterion, criterion_group, criterion_main};
use kotaemon_trace::__hooks::clock::{Timeline, stamp, warm_up};
use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

fn reads(c: &mut Criterion) {
    warm_up();
    let mut group = c.benchmark_group("clock/read");
    // What the hot path reads: the monotonic clock as nanoseconds since the origin, with the check for a
    // due reading of both clocks (one taken every 10 ms included).
    group.bench_function("stamp", |b| b.iter(|| black_box(stamp())));
    // The monotonic clock alone, and the system clock (what the SDK reads per span start and end).
    group.bench_function("monotonic_clock", |b| b.iter(|| black_box(Instant::now())));
    group.bench_function("system_clock", |b| b.iter(|| black_box(SystemTime::now())));
    // The CPU counter the hot path read before: cheaper, but its rate against the system clock changes
    // with every change of the clock's slew, which a span near it takes into its length.
    group.bench_function("counter", |b| b.iter(|| black_box(quanta::Instant::now())));
    group.finish();
}

fn conversion(c: &mut Criterion) {
    warm_up();
    let mut group = c.benchmark_group("clock/export");
    // A timeline with a few seconds of readings, as on a busy process.
    let mut timeline = Timeline::default();
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(300) {
        let _ = stamp();
        std::thread::sleep(Duration::from_millis(3));
        timeline.advance();
    }
    // The usual span: started after the last step of the system clock.
    let (start, end) = (stamp(), stamp());
    std::thread::sleep(Duration::from_millis(2));
    timeline.advance();
    group.bench_function("span", |b| b.iter(|| black_box(timeline.span(black_box(start), black_box(end)))));
    group.bench_function("advance", |b| b.iter(|| timeline.advance()));
    group.finish();
}

criterion_group!(benches, reads, conversion);
criterion_main!(benches);
