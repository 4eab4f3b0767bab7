//! What span timestamps cost: the reads a traced call makes on the caller's thread, and the conversion
//! the export thread makes per span and per batch. See `kotaemon-trace/src/base/clock.rs` for why the
//! hot path reads the counter and the export thread interpolates between readings of the clocks.
//!
//! `cargo bench -p kotaemon-trace-benches --bench clock`

use criterion::{Criterion, criterion_group, criterion_main};
use kotaemon_trace::__hooks::clock::{Timeline, counter, stamp, warm_up};
use std::hint::black_box;
use std::time::{Duration, Instant, SystemTime};

fn reads(c: &mut Criterion) {
    warm_up();
    let mut group = c.benchmark_group("clock/read");
    // What the hot path did before: the counter alone.
    group.bench_function("counter", |b| b.iter(|| black_box(counter())));
    // What it does now: the counter and the check for a due reading (one taken every 10 ms included).
    group.bench_function("counter+cadence", |b| b.iter(|| black_box(stamp())));
    // The alternatives: the system clock on the hot path (what the SDK reads), the monotonic clock.
    group.bench_function("system_clock", |b| b.iter(|| black_box(SystemTime::now())));
    group.bench_function("monotonic_clock", |b| b.iter(|| black_box(Instant::now())));
    // A start that reads both (system-clock position, counter length): the per-span alternative.
    group.bench_function("counter+system_clock", |b| b.iter(|| black_box((counter(), SystemTime::now()))));
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
    // The usual span: ended before the batch's reading, so placed between two readings.
    let (start, end) = (counter(), counter());
    std::thread::sleep(Duration::from_millis(2));
    timeline.advance();
    group.bench_function("span", |b| b.iter(|| black_box(timeline.span(black_box(start), black_box(end)))));
    // A span that ended after the last reading (during a long drain): extrapolated along the last second.
    let (start, end) = (counter(), counter());
    group.bench_function("span_after_last_reading", |b| {
        b.iter(|| black_box(timeline.span(black_box(start), black_box(end))))
    });
    group.bench_function("advance", |b| b.iter(|| timeline.advance()));
    group.finish();
}

criterion_group!(benches, reads, conversion);
criterion_main!(benches);
