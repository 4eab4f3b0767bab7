//! The batch span processor: a bounded queue in front of one export thread.
//!
//! The caller's thread only moves the finished span into a bounded channel (`try_send`, never blocking);
//! a full queue drops the span and counts it exactly. The export thread redacts and truncates spans
//! (so that work is off the hot path), batches them, and exports with a deadline, so a dead collector can
//! neither block callers nor hang shutdown.

use crate::export::DynExporter;
use crate::finish::Finisher;
use crate::recorder::Record;
use crate::sampling::tail::TailSampler;
use opentelemetry::{Context, InstrumentationScope};
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use opentelemetry_sdk::Resource;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use crossbeam_queue::ArrayQueue;
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
    warned_full: AtomicBool,
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
    Shutdown(SyncSender<OTelSdkResult>),
}

#[derive(Debug)]
pub(crate) struct BatchProcessor {
    queue: Arc<ArrayQueue<SpanData>>,
    /// Spans of annotated functions recorded by our own path (`recorder`): compact records, turned into
    /// `SpanData` on the export thread. Same capacity as `queue`, same drop counting.
    records: Arc<ArrayQueue<Record>>,
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
        let queue = Arc::new(ArrayQueue::new(config.max_queue_size.max(1)));
        let records = Arc::new(ArrayQueue::new(config.max_queue_size.max(1)));
        // Room for a BatchReady plus control messages; senders of control messages wait for room.
        let (doorbell, signals) = mpsc::sync_channel(4);
        let rung = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            queue: queue.clone(),
            records: records.clone(),
            scope,
            rung: rung.clone(),
            exporter: exporter.clone(),
            driver,
            finisher,
            stats: stats.clone(),
            max_batch: config.max_export_batch_size.max(1),
            delay: config.schedule_delay,
            export_timeout: config.export_timeout,
            last_failure_report: None,
        };
        let handle = std::thread::Builder::new()
            .name("kotaemon-trace-export".into())
            .spawn(move || worker.run(signals))?;
        Ok(BatchProcessor {
            queue,
            records,
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
            Ok(()) => self.pushed(self.queue.len()),
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
            Ok(()) => self.pushed(self.records.len()),
            Err(_) => self.full(),
        }
    }

    /// Whether shutdown has started.
    #[inline]
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }

    #[inline]
    fn pushed(&self, waiting: usize) {
        // `waiting` is the length of the queue just pushed to; a batch can also fill across both queues,
        // which the timer or the next push to either one notices.
        if waiting >= self.max_batch && !self.rung.load(Ordering::Relaxed) && !self.rung.swap(true, Ordering::Relaxed) {
            // A full doorbell means the export thread is already being woken.
            let _ = self.doorbell.try_send(Signal::BatchReady);
        }
    }

    #[cold]
    fn full(&self) {
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
        let result = self.control(Signal::Shutdown, timeout);
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

struct Worker {
    queue: Arc<ArrayQueue<SpanData>>,
    records: Arc<ArrayQueue<Record>>,
    /// The scope of the spans in `records` (the SDK's tracer adds it to its own spans).
    scope: InstrumentationScope,
    rung: Arc<AtomicBool>,
    exporter: Arc<dyn DynExporter>,
    driver: Driver,
    finisher: Finisher,
    stats: Arc<Stats>,
    max_batch: usize,
    delay: Duration,
    export_timeout: Duration,
    last_failure_report: Option<Instant>,
}

impl Worker {
    fn run(mut self, signals: mpsc::Receiver<Signal>) {
        let mut batch: Vec<SpanData> = Vec::with_capacity(self.max_batch);
        loop {
            let signal = signals.recv_timeout(self.delay);
            match signal {
                Ok(Signal::BatchReady) | Err(RecvTimeoutError::Timeout) => {
                    self.rung.store(false, Ordering::Relaxed);
                    // Failures are counted and reported inside `export`; the loop goes on.
                    let _ = self.drain(&mut batch);
                }
                Ok(Signal::Flush(reply)) => {
                    let _ = reply.send(self.drain(&mut batch));
                }
                Ok(Signal::Shutdown(reply)) => {
                    let mut result = self.drain(&mut batch);
                    let shutdown = self.exporter.shutdown(self.export_timeout);
                    if result.is_ok() {
                        result = shutdown;
                    }
                    let _ = reply.send(result);
                    return;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.drain(&mut batch);
                    return;
                }
            }
        }
    }

    /// Exports everything queued now, in batches; the first failure is the result.
    fn drain(&mut self, batch: &mut Vec<SpanData>) -> OTelSdkResult {
        let mut result = Ok(());
        loop {
            while batch.len() < self.max_batch {
                match self.records.pop() {
                    Some(record) => batch.push(record.into_span_data(&self.scope)),
                    None => break,
                }
            }
            while batch.len() < self.max_batch {
                match self.queue.pop() {
                    Some(span) => batch.push(span),
                    None => break,
                }
            }
            if batch.is_empty() {
                return result;
            }
            let full = batch.len() >= self.max_batch;
            let exported = self.export(batch);
            if result.is_ok() {
                result = exported;
            }
            if !full {
                return result;
            }
        }
    }

    fn export(&mut self, batch: &mut Vec<SpanData>) -> OTelSdkResult {
        if batch.is_empty() {
            return Ok(());
        }
        let mut spans = std::mem::replace(batch, Vec::with_capacity(self.max_batch));
        for span in &mut spans {
            self.finisher.finish(span);
        }
        let count = spans.len() as u64;
        let future = self.exporter.export(spans);
        let timeout = self.export_timeout;
        let result = self.driver.0.block_on(async move {
            tokio::time::timeout(timeout, future).await.unwrap_or(Err(OTelSdkError::Timeout(timeout)))
        });
        match &result {
            Ok(()) => {
                self.stats.exported.fetch_add(count, Ordering::Relaxed);
            }
            Err(error) => {
                self.stats.failed.fetch_add(count, Ordering::Relaxed);
                // One line per burst of failures, not one per batch.
                let quiet = self.last_failure_report.is_some_and(|t| t.elapsed() < Duration::from_secs(10));
                if !quiet {
                    eprintln!(
                        "kotaemon-trace: exporting {count} spans failed: {error}; {} spans lost so far",
                        self.stats.failed.load(Ordering::Relaxed)
                    );
                    self.last_failure_report = Some(Instant::now());
                }
            }
        }
        result
    }
}
