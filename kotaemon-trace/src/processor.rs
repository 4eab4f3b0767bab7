//! The batch span processor: a bounded queue in front of one export thread.
//!
//! The caller's thread only moves the finished span into a bounded channel (`try_send`, never blocking);
//! a full queue drops the span and counts it exactly. The export thread redacts and truncates spans
//! (so that work is off the hot path), batches them, and exports with a deadline, so a dead collector can
//! neither block callers nor hang shutdown.

use crate::export::DynExporter;
use crate::finish::{Finisher, Limited};
use crate::recorder::Record;
use crate::sampling::tail::TailSampler;
use crossbeam_queue::ArrayQueue;
use opentelemetry::{Context, InstrumentationScope};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::BatchConfig;

/// Counters shared by the processor and the guard.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) exported: AtomicU64,
    pub(crate) dropped: AtomicU64,
    pub(crate) failed: AtomicU64,
    /// String values cut at `OTEL_ATTRIBUTE_VALUE_LENGTH_LIMIT`.
    pub(crate) values_truncated: AtomicU64,
    /// Attributes over a count limit (of a span, an event or a link), as the SDK counted them.
    pub(crate) attributes_dropped: AtomicU64,
    /// Events over `OTEL_SPAN_EVENT_COUNT_LIMIT`.
    pub(crate) events_dropped: AtomicU64,
    /// Links over `OTEL_SPAN_LINK_COUNT_LIMIT`.
    pub(crate) links_dropped: AtomicU64,
    warned_full: AtomicBool,
}

impl Stats {
    fn add_limited(&self, limited: Limited) {
        if limited == Limited::default() {
            return;
        }
        self.values_truncated.fetch_add(limited.values_truncated, Ordering::Relaxed);
        self.attributes_dropped.fetch_add(limited.attributes_dropped, Ordering::Relaxed);
        self.events_dropped.fetch_add(limited.events_dropped, Ordering::Relaxed);
        self.links_dropped.fetch_add(limited.links_dropped, Ordering::Relaxed);
    }
}

/// How the export thread runs an exporter's future: always under the library's own tokio runtime, so
/// every export has a deadline. Exporters without I/O get a current-thread runtime (no extra thread);
/// network clients (tonic, reqwest) get a one-worker runtime that keeps their connections serviced.
pub(crate) struct Driver(tokio::runtime::Runtime);

impl Driver {
    pub(crate) fn current_thread() -> std::io::Result<Driver> {
        Ok(Driver(tokio::runtime::Builder::new_current_thread().enable_time().build()?))
    }

    pub(crate) fn with_io() -> std::io::Result<Driver> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("kotaemon-trace-io")
            .enable_all()
            .build()?;
        Ok(Driver(runtime))
    }

    pub(crate) fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.0
    }
}

/// What wakes the export thread. Spans do not: they wait in the lock-free queue, and the thread is rung
/// only when a full batch is waiting, on a timer, or to flush and shut down.
enum Signal {
    BatchReady,
    Flush(SyncSender<OTelSdkResult>),
    /// With the deadline the worker must answer by.
    Shutdown(SyncSender<OTelSdkResult>, Instant),
}

/// How often (in pushes, per thread) a caller checks whether a batch is waiting; see
/// `BatchProcessor::pushed`.
const LENGTH_CHECK_EVERY: u32 = 16;

#[derive(Debug)]
pub(crate) struct BatchProcessor {
    queue: Arc<ArrayQueue<SpanData>>,
    /// Spans of annotated functions recorded by our own path (`recorder`): compact records, turned into
    /// `SpanData` on the export thread. Same capacity as `queue`, same drop counting.
    records: Arc<ArrayQueue<Record>>,
    /// Attribute vectors of `records`, emptied on the export thread, for callers to fill again.
    pub(crate) spares: Arc<crate::recorder::Spares>,
    /// Set when shutdown starts: spans ending later are discarded, as the SDK discards spans ending
    /// after its provider shut down.
    closed: AtomicBool,
    doorbell: SyncSender<Signal>,
    /// Set when a `BatchReady` is in flight, so a burst rings once, not once per span.
    rung: Arc<AtomicBool>,
    stats: Arc<Stats>,
    pub(crate) exporter: Arc<dyn DynExporter>,
    worker: Mutex<Option<JoinHandle<()>>>,
    max_queue_size: usize,
    max_batch: usize,
    export_timeout: Duration,
}

impl BatchProcessor {
    pub(crate) fn new(
        exporter: Arc<dyn DynExporter>,
        driver: Driver,
        finisher: Finisher,
        config: &BatchConfig,
        stats: Arc<Stats>,
        scope: InstrumentationScope,
    ) -> std::io::Result<Self> {
        Self::with_retry_for(exporter, driver, finisher, config, stats, scope, RETRY_FOR)
    }

    fn with_retry_for(
        exporter: Arc<dyn DynExporter>,
        driver: Driver,
        finisher: Finisher,
        config: &BatchConfig,
        stats: Arc<Stats>,
        scope: InstrumentationScope,
        retry_for: Duration,
    ) -> std::io::Result<Self> {
        let queue = Arc::new(ArrayQueue::new(config.max_queue_size.max(1)));
        let records = Arc::new(ArrayQueue::new(config.max_queue_size.max(1)));
        let spares = Arc::new(crate::recorder::Spares::new());
        // Room for a BatchReady plus control messages; senders of control messages wait for room.
        let (doorbell, signals) = mpsc::sync_channel(4);
        let rung = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            queue: queue.clone(),
            records: records.clone(),
            spares: spares.clone(),
            scope,
            timeline: crate::clock::Timeline::new(),
            rung: rung.clone(),
            exporter: exporter.clone(),
            driver,
            finisher,
            stats: stats.clone(),
            max_batch: config.max_export_batch_size.max(1),
            delay: config.schedule_delay,
            export_timeout: config.export_timeout,
            retry_for,
            pending: None,
            last_failure_report: None,
        };
        let handle =
            std::thread::Builder::new().name("kotaemon-trace-export".into()).spawn(move || worker.run(signals))?;
        Ok(BatchProcessor {
            queue,
            records,
            spares,
            closed: AtomicBool::new(false),
            doorbell,
            rung,
            stats,
            exporter,
            worker: Mutex::new(Some(handle)),
            max_queue_size: config.max_queue_size,
            max_batch: config.max_export_batch_size.max(1),
            export_timeout: config.export_timeout,
        })
    }

    /// Sends a control signal and waits for its answer, never past `timeout`.
    fn control(&self, make: impl Fn(SyncSender<OTelSdkResult>) -> Signal, timeout: Duration) -> OTelSdkResult {
        let deadline = Instant::now() + timeout;
        let (reply_tx, reply_rx) = mpsc::sync_channel(1);
        let mut signal = make(reply_tx);
        loop {
            match self.doorbell.try_send(signal) {
                Ok(()) => break,
                Err(TrySendError::Disconnected(_)) => return Err(OTelSdkError::AlreadyShutdown),
                Err(TrySendError::Full(s)) => {
                    if Instant::now() >= deadline {
                        return Err(OTelSdkError::Timeout(timeout));
                    }
                    signal = s;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
        match reply_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(result) => result,
            Err(RecvTimeoutError::Timeout) => Err(OTelSdkError::Timeout(timeout)),
            Err(RecvTimeoutError::Disconnected) => Err(OTelSdkError::AlreadyShutdown),
        }
    }
}

/// With tail sampling on, spans pass through the tail sampler first.
#[derive(Debug, Clone)]
pub(crate) struct SharedProcessor {
    pub(crate) batch: Arc<BatchProcessor>,
    pub(crate) tail: Option<Arc<TailSampler>>,
}

impl SpanProcessor for SharedProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    #[inline(always)]
    fn on_end(&self, span: SpanData) {
        match &self.tail {
            None => self.batch.on_end(span),
            Some(tail) => {
                for kept in tail.on_end(span) {
                    self.batch.on_end(kept);
                }
            }
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.batch.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.batch.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.batch.exporter.set_resource(resource);
    }
}

impl BatchProcessor {
    #[inline]
    pub(crate) fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        // Not boxed: an allocation here freed on the export thread makes the two threads' allocators
        // fight, which measured slower than moving the ~360-byte span (benches/hot_path).
        match self.queue.push(span) {
            Ok(()) => self.pushed(&self.queue),
            Err(_) => self.full(),
        }
    }

    /// Queues a span recorded by our own path; the export thread makes its `SpanData`.
    #[inline]
    pub(crate) fn push_record(&self, record: Record) {
        if !record.is_sampled() {
            return;
        }
        match self.records.push(record) {
            Ok(()) => self.pushed(&self.records),
            Err(_) => self.full(),
        }
    }

    /// Whether shutdown has started.
    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    /// After a push to `queue`: wakes the export thread when a batch is waiting. A caller looks at the
    /// queue's length only on every [`LENGTH_CHECK_EVERY`]th push of its thread: the length reads the
    /// queue's head, which the export thread writes on every span it takes, so reading it on every push
    /// cost a cache-line transfer per span whenever the export thread kept pace (measured: a sampled call
    /// 320-390 ns in alternating runs, against 295-315 ns reading it every 16th push). A queue that
    /// fills between checks rings from [`BatchProcessor::full`]; the timer exports the rest.
    #[inline]
    fn pushed<T>(&self, queue: &ArrayQueue<T>) {
        thread_local! {
            static PUSHES: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
        }
        let pushes = PUSHES.with(|p| {
            let n = p.get().wrapping_add(1);
            p.set(n);
            n
        });
        // A batch can also fill across both queues, which the timer or the next check notices.
        if pushes % LENGTH_CHECK_EVERY == 0 && queue.len() >= self.max_batch {
            self.ring();
        }
    }

    /// Wakes the export thread unless a wake is already in flight.
    #[inline]
    fn ring(&self) {
        if !self.rung.load(Ordering::Relaxed) && !self.rung.swap(true, Ordering::Relaxed) {
            // A full doorbell means the export thread is already being woken.
            let _ = self.doorbell.try_send(Signal::BatchReady);
        }
    }

    #[cold]
    fn full(&self) {
        // The export thread may not have been told yet (lengths are checked every few pushes).
        self.ring();
        self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        if !self.stats.warned_full.swap(true, Ordering::Relaxed) {
            eprintln!(
                "kotaemon-trace: the export queue is full ({} spans); dropping spans until it drains. \
                 Raise OTEL_BSP_MAX_QUEUE_SIZE or lower the span rate; the count is reported at shutdown.",
                self.max_queue_size
            );
        }
    }

    pub(crate) fn force_flush(&self) -> OTelSdkResult {
        self.control(Signal::Flush, self.export_timeout)
    }

    pub(crate) fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        // The worker stops exporting a little before the caller stops waiting, so its answer arrives.
        let deadline = Instant::now() + timeout.mul_f32(0.9);
        let result = self.control(|reply| Signal::Shutdown(reply, deadline), timeout);
        // After the final drain, like the SDK marking its provider shut down after its processors.
        self.closed.store(true, Ordering::Relaxed);
        if result.is_ok() {
            if let Some(handle) = self.worker.lock().unwrap_or_else(|e| e.into_inner()).take() {
                let _ = handle.join();
            }
        }
        result
    }
}

/// While the collector is down, the batch at the head of the line is retried with exponential backoff
/// from this delay ...
const RETRY_FIRST: Duration = Duration::from_millis(100);
/// ... up to this delay between attempts ...
const RETRY_MAX_DELAY: Duration = Duration::from_secs(5);
/// ... for at most this long; then it is counted as failed and the next batch takes its place, so one
/// batch the collector always refuses cannot stop export for good.
pub(crate) const RETRY_FOR: Duration = Duration::from_secs(60);

/// The batch held back while the collector is unreachable; it is exported first when it comes back.
struct Pending {
    spans: Vec<SpanData>,
    since: Instant,
    next: Instant,
    delay: Duration,
}

struct Worker {
    queue: Arc<ArrayQueue<SpanData>>,
    records: Arc<ArrayQueue<Record>>,
    spares: Arc<crate::recorder::Spares>,
    /// The scope of the spans in `records` (the SDK's tracer adds it to its own spans).
    scope: InstrumentationScope,
    /// Converts the records' counter readings to wall-clock time.
    timeline: crate::clock::Timeline,
    rung: Arc<AtomicBool>,
    exporter: Arc<dyn DynExporter>,
    driver: Driver,
    finisher: Finisher,
    stats: Arc<Stats>,
    max_batch: usize,
    delay: Duration,
    export_timeout: Duration,
    retry_for: Duration,
    /// `Some` while the collector is down: new spans wait in the bounded queue (dropped, counted, once it
    /// is full) until this batch goes through.
    pending: Option<Pending>,
    last_failure_report: Option<Instant>,
}

impl Worker {
    fn run(mut self, signals: mpsc::Receiver<Signal>) {
        let mut batch: Vec<SpanData> = Vec::with_capacity(self.max_batch);
        loop {
            let wait = match &self.pending {
                Some(pending) => pending.next.saturating_duration_since(Instant::now()),
                None => self.delay,
            };
            match signals.recv_timeout(wait) {
                Ok(Signal::BatchReady) | Err(RecvTimeoutError::Timeout) => {
                    if let Some(pending) = &self.pending {
                        // A full queue while the collector is down is expected; `rung` stays set so
                        // callers stop ringing until the backoff ends.
                        if Instant::now() < pending.next || self.retry(None).is_err() {
                            continue;
                        }
                    }
                    self.rung.store(false, Ordering::Relaxed);
                    // Failures are counted and reported inside `send`; the loop goes on.
                    let _ = self.drain(&mut batch, None);
                }
                Ok(Signal::Flush(reply)) => {
                    let result = self.retry(None).and_then(|()| self.drain(&mut batch, None));
                    let _ = reply.send(result);
                }
                Ok(Signal::Shutdown(reply, deadline)) => {
                    let _ = reply.send(self.finish(&mut batch, Some(deadline)));
                    return;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.finish(&mut batch, None);
                    return;
                }
            }
        }
    }

    /// The last export: the held batch once more, then everything queued; what cannot be sent now (the
    /// collector still down, the deadline passed) is counted as failed.
    fn finish(&mut self, batch: &mut Vec<SpanData>, deadline: Option<Instant>) -> OTelSdkResult {
        let mut result = self.retry(deadline).and_then(|()| self.drain(batch, deadline));
        if let Some(pending) = self.pending.take() {
            let mut lost = pending.spans.len() as u64;
            while self.records.pop().is_some() || self.queue.pop().is_some() {
                lost += 1;
            }
            self.stats.failed.fetch_add(lost, Ordering::Relaxed);
        }
        let remaining = deadline.map_or(self.export_timeout, |d| d.saturating_duration_since(Instant::now()));
        let shutdown = self.exporter.shutdown(remaining.min(self.export_timeout));
        if result.is_ok() {
            result = shutdown;
        }
        result
    }

    /// One more attempt at the held batch, if there is one; `Ok` when nothing is held any more (or nothing
    /// is queued yet to find out whether the collector is back).
    fn retry(&mut self, deadline: Option<Instant>) -> OTelSdkResult {
        let Some(pending) = self.pending.as_ref() else { return Ok(()) };
        if pending.spans.is_empty() {
            self.timeline.advance();
            let mut spans = Vec::new();
            while spans.len() < self.max_batch {
                match self.pop() {
                    Some(span) => spans.push(span),
                    None => break,
                }
            }
            if spans.is_empty() {
                if let Some(pending) = self.pending.as_mut() {
                    pending.next = Instant::now() + pending.delay;
                }
                return Ok(());
            }
            let mut limited = Limited::default();
            for span in &mut spans {
                limited += self.finisher.finish(span);
            }
            self.stats.add_limited(limited);
            if let Some(pending) = self.pending.as_mut() {
                pending.spans = spans;
            }
        }
        let spans = self.pending.as_ref().map(|p| p.spans.clone()).unwrap_or_default();
        let count = spans.len() as u64;
        match self.send(spans, deadline) {
            Ok(()) => {
                self.pending = None;
                self.stats.exported.fetch_add(count, Ordering::Relaxed);
                eprintln!("kotaemon-trace: the collector is reachable again; exporting the spans held meanwhile");
                Ok(())
            }
            Err(error) => {
                let given_up = self.pending.as_ref().is_some_and(|p| p.since.elapsed() >= self.retry_for);
                if given_up {
                    // Give this batch up; the next one from the queue is tried in its place, so one batch
                    // the collector always refuses cannot stop export for good.
                    self.stats.failed.fetch_add(count, Ordering::Relaxed);
                    self.report(count, &error, "given up after retrying");
                }
                if let Some(pending) = self.pending.as_mut() {
                    if given_up {
                        pending.spans = Vec::new();
                        pending.since = Instant::now();
                    }
                    pending.delay = (pending.delay * 2).min(RETRY_MAX_DELAY);
                    pending.next = Instant::now() + pending.delay;
                }
                Err(error)
            }
        }
    }

    /// The next finished span: annotated functions' records first (built into `SpanData` here, off the
    /// callers' threads), then spans of the SDK path.
    fn pop(&self) -> Option<SpanData> {
        match self.records.pop() {
            Some(record) => Some(record.into_span_data(&self.scope, &self.timeline, &self.spares)),
            None => self.queue.pop(),
        }
    }

    /// Exports everything queued now, in batches. After a failure no more is sent until the held batch
    /// goes through; the error is the result.
    fn drain(&mut self, batch: &mut Vec<SpanData>, deadline: Option<Instant>) -> OTelSdkResult {
        self.timeline.advance();
        loop {
            while batch.len() < self.max_batch {
                match self.pop() {
                    Some(span) => batch.push(span),
                    None => break,
                }
            }
            if batch.is_empty() {
                return Ok(());
            }
            let full = batch.len() >= self.max_batch;
            self.export(batch, deadline)?;
            if !full {
                return Ok(());
            }
        }
    }

    fn export(&mut self, batch: &mut Vec<SpanData>, deadline: Option<Instant>) -> OTelSdkResult {
        let mut spans = std::mem::replace(batch, Vec::with_capacity(self.max_batch));
        let mut limited = Limited::default();
        for span in &mut spans {
            limited += self.finisher.finish(span);
        }
        self.stats.add_limited(limited);
        let count = spans.len() as u64;
        match self.pending.as_mut() {
            None => {
                // The usual case: the batch is not copied for a retry. The batch in flight when the
                // collector goes away is lost (counted as failed); the ones after it are held.
                let result = self.send(spans, deadline);
                match &result {
                    Ok(()) => {
                        self.stats.exported.fetch_add(count, Ordering::Relaxed);
                    }
                    Err(error) => {
                        self.stats.failed.fetch_add(count, Ordering::Relaxed);
                        self.report(count, error, "lost");
                        self.hold();
                    }
                }
                result
            }
            Some(pending) => {
                // The collector failed lately: keep this batch until it is known to have arrived.
                pending.spans = spans;
                self.retry(deadline)
            }
        }
    }

    /// Enters the held-back state: the next batch waits for the backoff and is kept until it arrives.
    fn hold(&mut self) {
        let now = Instant::now();
        self.pending = Some(Pending { spans: Vec::new(), since: now, next: now + RETRY_FIRST, delay: RETRY_FIRST });
    }

    /// Sends one batch with a deadline (the export timeout, or the shutdown deadline if sooner). The error
    /// text is scrubbed of configured secrets (header values, URL passwords), since it is printed and
    /// returned to the caller.
    fn send(&mut self, spans: Vec<SpanData>, deadline: Option<Instant>) -> OTelSdkResult {
        if spans.is_empty() {
            return Ok(());
        }
        let timeout = deadline
            .map_or(self.export_timeout, |d| d.saturating_duration_since(Instant::now()).min(self.export_timeout));
        let future = self.exporter.export(spans);
        let result = self.driver.0.block_on(async move {
            tokio::time::timeout(timeout, future).await.unwrap_or(Err(OTelSdkError::Timeout(timeout)))
        });
        result.map_err(|error| match error {
            OTelSdkError::Timeout(t) => OTelSdkError::Timeout(t),
            OTelSdkError::AlreadyShutdown => OTelSdkError::AlreadyShutdown,
            other => OTelSdkError::InternalFailure(self.finisher.secrets.scrub(&other.to_string())),
        })
    }

    /// One line per burst of failures, not one per batch.
    fn report(&mut self, count: u64, error: &OTelSdkError, what: &str) {
        let quiet = self.last_failure_report.is_some_and(|t| t.elapsed() < Duration::from_secs(10));
        if !quiet {
            eprintln!(
                "kotaemon-trace: exporting {count} spans failed ({what}): {error}; {} spans lost so far, \
                 later spans are held (up to OTEL_BSP_MAX_QUEUE_SIZE) and retried",
                self.stats.failed.load(Ordering::Relaxed)
            );
            self.last_failure_report = Some(Instant::now());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
    use opentelemetry_sdk::trace::{SdkTracerProvider, SpanExporter};

    /// Refuses every batch, counting the attempts.
    #[derive(Debug)]
    struct Refuse(Arc<AtomicU64>);

    impl SpanExporter for Refuse {
        async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
            self.0.fetch_add(1, Ordering::Relaxed);
            Err(OTelSdkError::InternalFailure("refused".into()))
        }
    }

    #[test]
    fn a_batch_refused_past_the_retry_window_is_given_up_and_counted() {
        let attempts = Arc::new(AtomicU64::new(0));
        let stats = Arc::new(Stats::default());
        let config = BatchConfig {
            max_queue_size: 100,
            max_export_batch_size: 10,
            schedule_delay: Duration::from_secs(60),
            export_timeout: Duration::from_secs(1),
        };
        let exporter = crate::export::boxed(Refuse(attempts.clone()));
        let driver = Driver::current_thread().unwrap();
        let window = Duration::from_millis(300);
        let processor = Arc::new(
            BatchProcessor::with_retry_for(
                exporter,
                driver,
                Finisher::default(),
                &config,
                stats.clone(),
                InstrumentationScope::builder("test").build(),
                window,
            )
            .unwrap(),
        );
        let provider = SdkTracerProvider::builder()
            .with_span_processor(SharedProcessor { batch: processor.clone(), tail: None })
            .build();
        let tracer = provider.tracer("retry");
        let spans = |n: usize| (0..n).for_each(|_| tracer.start("s").end());

        spans(5);
        assert!(processor.force_flush().is_err());
        assert_eq!(stats.failed.load(Ordering::Relaxed), 5, "the batch that found the collector gone is lost");
        spans(7);
        assert!(processor.force_flush().is_err());
        assert_eq!(stats.failed.load(Ordering::Relaxed), 5, "the next batch is held, not lost");
        // The worker keeps retrying on its own with backoff, then gives the batch up (bounded wait).
        let deadline = Instant::now() + Duration::from_secs(10);
        while stats.failed.load(Ordering::Relaxed) < 12 {
            assert!(Instant::now() < deadline, "the held batch was never given up");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(attempts.load(Ordering::Relaxed) >= 4, "retried more than the flushes asked");
        assert_eq!(stats.exported.load(Ordering::Relaxed), 0);
        assert_eq!(stats.dropped.load(Ordering::Relaxed), 0);
        assert!(processor.shutdown_with_timeout(Duration::from_secs(2)).is_ok(), "nothing is held any more");
        assert_eq!(stats.failed.load(Ordering::Relaxed), 12);
    }
}
