//! The batch span processor: a bounded queue in front of one export thread.
//!
//! The caller's thread only moves the finished span into a bounded channel (`try_send`, never blocking);
//! a full queue drops the span and counts it exactly. The export thread redacts and truncates spans
//! (so that work is off the hot path), batches them, and exports with a deadline, so a dead collector can
//! neither block callers nor hang shutdown.

use crate::export::DynExporter;
use crate::finish::Finisher;
use crate::sampling::tail::TailSampler;
use opentelemetry::Context;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use opentelemetry_sdk::Resource;
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

// Spans travel unboxed: a box per span would cost an allocation on the caller's thread, while the size
// difference only costs queue memory (max_queue_size × ~360 bytes).
#[allow(clippy::large_enum_variant)]
enum Message {
    Span(SpanData),
    Flush(SyncSender<OTelSdkResult>),
    Shutdown(SyncSender<OTelSdkResult>),
}

#[derive(Debug)]
pub(crate) struct BatchProcessor {
    sender: SyncSender<Message>,
    stats: Arc<Stats>,
    exporter: Arc<dyn DynExporter>,
    worker: Mutex<Option<JoinHandle<()>>>,
    max_queue_size: usize,
    export_timeout: Duration,
}

impl BatchProcessor {
    pub(crate) fn new(
        exporter: Arc<dyn DynExporter>,
        driver: Driver,
        finisher: Finisher,
        config: &BatchConfig,
        stats: Arc<Stats>,
    ) -> std::io::Result<Self> {
        let (sender, receiver) = mpsc::sync_channel(config.max_queue_size);
        let worker = Worker {
            exporter: exporter.clone(),
            driver,
            finisher,
            stats: stats.clone(),
            max_batch: config.max_export_batch_size,
            delay: config.schedule_delay,
            export_timeout: config.export_timeout,
            last_failure_report: None,
        };
        let handle = std::thread::Builder::new()
            .name("kotaemon-trace-export".into())
            .spawn(move || worker.run(receiver))?;
        Ok(BatchProcessor {
            sender,
            stats,
            exporter,
            worker: Mutex::new(Some(handle)),
            max_queue_size: config.max_queue_size,
            export_timeout: config.export_timeout,
        })
    }

    /// Sends a control message and waits for its answer, never past `timeout`.
    fn control(&self, make: impl Fn(SyncSender<OTelSdkResult>) -> Message, timeout: Duration) -> OTelSdkResult {
        let deadline = Instant::now() + timeout;
        let (reply_tx, reply_rx) = mpsc::sync_channel(1);
        let mut message = make(reply_tx);
        // The queue may be full of spans; wait for room rather than drop a flush, but only until the deadline.
        loop {
            match self.sender.try_send(message) {
                Ok(()) => break,
                Err(TrySendError::Disconnected(_)) => return Err(OTelSdkError::AlreadyShutdown),
                Err(TrySendError::Full(m)) => {
                    if Instant::now() >= deadline {
                        return Err(OTelSdkError::Timeout(timeout));
                    }
                    message = m;
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

/// The processor as the SDK sees it; the guard keeps another handle to flush and shut down directly and
/// get precise results.
/// With tail sampling on, spans pass through the tail sampler first.
#[derive(Debug, Clone)]
pub(crate) struct SharedProcessor {
    pub(crate) batch: Arc<BatchProcessor>,
    pub(crate) tail: Option<Arc<TailSampler>>,
}

impl SpanProcessor for SharedProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    #[inline]
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
        match self.sender.try_send(Message::Span(span)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                if !self.stats.warned_full.swap(true, Ordering::Relaxed) {
                    eprintln!(
                        "kotaemon-trace: the export queue is full ({} spans); dropping spans until it drains. \
                         Raise OTEL_BSP_MAX_QUEUE_SIZE or lower the span rate; the count is reported at shutdown.",
                        self.max_queue_size
                    );
                }
            }
            Err(TrySendError::Disconnected(_)) => {
                self.stats.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    pub(crate) fn force_flush(&self) -> OTelSdkResult {
        self.control(Message::Flush, self.export_timeout)
    }

    pub(crate) fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let result = self.control(Message::Shutdown, timeout);
        if result.is_ok() {
            if let Some(handle) = self.worker.lock().unwrap_or_else(|e| e.into_inner()).take() {
                let _ = handle.join();
            }
        }
        result
    }
}

struct Worker {
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
    fn run(mut self, receiver: mpsc::Receiver<Message>) {
        let mut batch: Vec<SpanData> = Vec::with_capacity(self.max_batch);
        let mut next_export = Instant::now() + self.delay;
        loop {
            let wait = next_export.saturating_duration_since(Instant::now());
            match receiver.recv_timeout(wait) {
                Ok(Message::Span(span)) => {
                    batch.push(span);
                    if batch.len() >= self.max_batch {
                        // Failures are counted and reported inside `export`; periodic exports go on.
                        let _ = self.export(&mut batch);
                        next_export = Instant::now() + self.delay;
                    }
                }
                Ok(Message::Flush(reply)) => {
                    let result = self.export(&mut batch);
                    let _ = reply.send(result);
                }
                Ok(Message::Shutdown(reply)) => {
                    let mut result = self.export(&mut batch);
                    let shutdown = self.exporter.shutdown(self.export_timeout);
                    if result.is_ok() {
                        result = shutdown;
                    }
                    let _ = reply.send(result);
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.export(&mut batch);
                    next_export = Instant::now() + self.delay;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.export(&mut batch);
                    return;
                }
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
