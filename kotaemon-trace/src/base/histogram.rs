//! A fixed-bucket histogram of atomics: recording is a few relaxed additions, no lock, no allocation, so
//! every annotated call can afford it. `const` constructible, so one lives in each call site's `static`.
// Snapshots are read only by the metric exporters.
#![cfg_attr(not(any(feature = "prometheus", feature = "otlp-grpc", feature = "otlp-http")), allow(dead_code))]

use std::sync::atomic::{AtomicU64, Ordering};

/// Bucket upper bounds of span durations, in milliseconds: those of the OpenTelemetry Collector's
/// spanmetrics connector, which Jaeger's Monitor tab computes its quantiles from.
pub(crate) const SPAN_MS_BOUNDS: [f64; 16] =
    [2.0, 4.0, 6.0, 8.0, 10.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1000.0, 1400.0, 2000.0, 5000.0, 10000.0, 15000.0];

/// [`SPAN_MS_BOUNDS`] in nanoseconds, for comparing without a division on the hot path.
const SPAN_NS_BOUNDS: [u64; 16] = {
    let mut out = [0u64; 16];
    let mut i = 0;
    while i < 16 {
        out[i] = SPAN_MS_BOUNDS[i] as u64 * 1_000_000;
        i += 1;
    }
    out
};

/// Buckets of `gen_ai.client.operation.duration`, in seconds (the GenAI conventions' advice).
pub(crate) const GEN_AI_SECONDS_BOUNDS: [f64; 14] =
    [0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92];

/// Buckets of `gen_ai.client.token.usage`, in tokens (the GenAI conventions' advice).
pub(crate) const GEN_AI_TOKEN_BOUNDS: [f64; 14] = [
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0, 16777216.0,
    67108864.0,
];

/// Counts per bucket (one more than bounds: the last is +Inf), total count and sum, all cumulative.
#[derive(Debug)]
pub(crate) struct Histogram<const B: usize> {
    buckets: [AtomicU64; B],
    count: AtomicU64,
    /// In the unit the caller records (nanoseconds for spans, micro-units for GenAI values).
    sum: AtomicU64,
}

/// A consistent-enough copy for export: counts per bucket (not cumulative), count, sum.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct HistogramSnapshot {
    pub(crate) buckets: Vec<u64>,
    pub(crate) count: u64,
    pub(crate) sum: f64,
}

impl<const B: usize> Histogram<B> {
    pub(crate) const fn new() -> Self {
        Histogram { buckets: [const { AtomicU64::new(0) }; B], count: AtomicU64::new(0), sum: AtomicU64::new(0) }
    }

    #[inline]
    fn add(&self, bucket: usize, value: u64) {
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
        // Count last: a reader that sees the count also sees a bucket for it (readers tolerate the rest).
        self.count.fetch_add(1, Ordering::Release);
    }

    /// `scale` converts the recorded unit into the exported one (e.g. 1e-6 for ns → ms).
    pub(crate) fn snapshot(&self, scale: f64) -> HistogramSnapshot {
        let count = self.count.load(Ordering::Acquire);
        HistogramSnapshot {
            buckets: self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect(),
            count,
            sum: self.sum.load(Ordering::Relaxed) as f64 * scale,
        }
    }

    pub(crate) fn count(&self) -> u64 {
        self.count.load(Ordering::Acquire)
    }
}

/// A span duration histogram: 16 bounds + the +Inf bucket.
pub(crate) type SpanHistogram = Histogram<17>;

impl SpanHistogram {
    #[inline]
    pub(crate) fn record_nanos(&self, nanos: u64) {
        let bucket = SPAN_NS_BOUNDS.iter().position(|&bound| nanos <= bound).unwrap_or(SPAN_NS_BOUNDS.len());
        self.add(bucket, nanos);
    }
}

/// A GenAI histogram: 14 bounds + the +Inf bucket; values kept in millionths to sum in integers.
pub(crate) type GenAiHistogram = Histogram<15>;

impl GenAiHistogram {
    pub(crate) fn record(&self, value: f64, bounds: &[f64; 14]) {
        let bucket = bounds.iter().position(|&bound| value <= bound).unwrap_or(bounds.len());
        self.add(bucket, (value.max(0.0) * 1e6) as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_land_in_the_first_bucket_whose_bound_they_do_not_exceed() {
        let h = SpanHistogram::new();
        h.record_nanos(1_500_000); // 1.5 ms → le 2
        h.record_nanos(2_000_000); // 2 ms → le 2 (bounds are inclusive, as in Prometheus)
        h.record_nanos(60_000_000); // 60 ms → le 100
        h.record_nanos(20_000_000_000); // 20 s → +Inf
        let s = h.snapshot(1e-6);
        assert_eq!(s.count, 4);
        assert_eq!(s.buckets[0], 2);
        assert_eq!(s.buckets[6], 1);
        assert_eq!(s.buckets[16], 1);
        assert!((s.sum - 20_063.5).abs() < 1e-9, "{}", s.sum);
    }

    #[test]
    fn gen_ai_values_keep_fractions() {
        let h = GenAiHistogram::new();
        h.record(0.015, &GEN_AI_SECONDS_BOUNDS);
        h.record(812.0, &GEN_AI_TOKEN_BOUNDS);
        let s = h.snapshot(1e-6);
        assert_eq!(s.buckets[1], 1);
        assert_eq!(s.buckets[5], 1);
        assert!((s.sum - 812.015).abs() < 1e-9);
    }
}
