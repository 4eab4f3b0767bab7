//! The export thread behind the span queue (`export::queue`).
//!
//! The export thread redacts and truncates spans
//! (so that work is off the hot path), batches them, and exports with a deadline, so a dead collector can
//! neither block callers nor hang shutdown. One request is in flight at a time; meanwhile the thread
//! assembles the next batch, so a slow answer costs queue room only past the queue and that batch.

use crate::base::clock::Timeline;
use crate::base::ports::DynExporter;
use crate::config::BatchConfig;
use crate::export::finish::{Finisher, Limited};
use crate::export::queue::{Alarm, Signal, SpanQueue, Stats};
use crate::export::record::{Record, Spares};
use crate::policy::sampling::tail::TailSampler;
use crossbeam_queue::ArrayQueue;
use opentelemetry::{Context, InstrumentationScope};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanProcessor};
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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

    #[cfg(any(feature = "otlp-grpc", feature = "otlp-http"))]
    pub(crate) fn with_io() -> std::io::Result<Driver> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("kotaemon-trace-io")
            .enable_all()
            .build()?;
        Ok(Driver(runtime))
    }

    #[cfg(any(feature = "otlp-grpc", feature = "otlp-http"))]
    pub(crate) fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.0
    }
}

#[derive(Debug)]
pub(crate) struct BatchProcessor {
    /// The callers' side; the hot path holds it too.
    pub(crate) queue: Arc<SpanQueue>,
    pub(crate) exporter: Arc<dyn DynExporter>,
    worker: Mutex<Option<JoinHandle<()>>>,
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
        let (queue, signals) = SpanQueue::new(config.max_queue_size, config.max_export_batch_size, stats.clone());
        let (spans, records, spares, rung, alarm) =
            (queue.spans.clone(), queue.records.clone(), queue.spares.clone(), queue.rung.clone(), queue.alarm.clone());
        let max_batch = config.max_export_batch_size.max(1);
        let (delay, export_timeout) = (config.schedule_delay, config.export_timeout);
        let worker_exporter = exporter.clone();
        let timeline = Timeline::new();
        // Built on its own thread: the request in flight it keeps is not `Send`.
        let run = move || {
            Worker {
                queue: spans,
                records,
                spares,
                scope,
                timeline,
                rung,
                alarm,
                exporter: worker_exporter,
                driver,
                finisher,
                stats,
                max_batch,
                delay,
                export_timeout,
                retry_for,
                batch: Vec::with_capacity(max_batch),
                in_flight: None,
                pending: None,
                last_failure_report: None,
            }
            .run(signals)
        };
        let handle = std::thread::Builder::new().name("kotaemon-trace-export".into()).spawn(run)?;
        Ok(BatchProcessor {
            queue: Arc::new(queue),
            exporter,
            worker: Mutex::new(Some(handle)),
            export_timeout: config.export_timeout,
        })
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
            None => self.batch.queue.on_end(span),
            Some(tail) => {
                for kept in tail.on_end(span) {
                    self.batch.queue.on_end(kept);
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
    pub(crate) fn force_flush(&self) -> OTelSdkResult {
        self.queue.control(Signal::Flush, self.export_timeout)
    }

    pub(crate) fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        // The worker stops exporting a little before the caller stops waiting, so its answer arrives.
        let deadline = Instant::now() + timeout.mul_f32(0.9);
        let result = self.queue.control(|reply| Signal::Shutdown(reply, deadline), timeout);
        // After the final drain, like the SDK marking its provider shut down after its processors.
        self.queue.close();
        if result.is_ok()
            && let Some(handle) = self.worker.lock().unwrap_or_else(|e| e.into_inner()).take()
        {
            let _ = handle.join();
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

/// The export request on its way: the exporter's future (with its timeout), polled by the export thread
/// whenever it waits, so the thread can take the next batch off the queue meanwhile.
struct InFlight {
    future: Pin<Box<dyn Future<Output = OTelSdkResult>>>,
    spans: u64,
}

/// What ended a wait of the export thread.
enum Woken {
    Signal(Signal),
    Timeout,
    Disconnected,
    /// The request in flight finished.
    Sent(OTelSdkResult),
}

struct Worker {
    queue: Arc<ArrayQueue<SpanData>>,
    records: Arc<ArrayQueue<Record>>,
    spares: Arc<Spares>,
    /// The scope of the spans in `records` (the SDK's tracer adds it to its own spans).
    scope: InstrumentationScope,
    /// Converts the records' counter readings to wall-clock time.
    timeline: Timeline,
    rung: Arc<AtomicBool>,
    alarm: Arc<Alarm>,
    exporter: Arc<dyn DynExporter>,
    driver: Driver,
    finisher: Finisher,
    stats: Arc<Stats>,
    max_batch: usize,
    delay: Duration,
    export_timeout: Duration,
    retry_for: Duration,
    /// The next batch, finished (redacted, limited) as its spans are taken off the queue: assembled while
    /// the previous one is in flight. With the queue and the request in flight, the whole of what the
    /// export thread holds: at most the queue and two batches.
    batch: Vec<SpanData>,
    /// At most one request at a time, so batches arrive in order and a collector that went away costs
    /// one batch.
    in_flight: Option<InFlight>,
    /// `Some` while the collector is down: new spans wait in the bounded queue (dropped, counted, once it
    /// is full) until this batch goes through.
    pending: Option<Pending>,
    last_failure_report: Option<Instant>,
}

impl Worker {
    fn run(mut self, signals: mpsc::Receiver<Signal>) {
        loop {
            let wait = match &self.pending {
                Some(pending) => pending.next.saturating_duration_since(Instant::now()),
                None => self.delay,
            };
            let woken = if self.in_flight.is_some() {
                self.wait(&signals, wait)
            } else {
                match signals.recv_timeout(wait) {
                    Ok(signal) => Woken::Signal(signal),
                    Err(RecvTimeoutError::Timeout) => Woken::Timeout,
                    Err(RecvTimeoutError::Disconnected) => Woken::Disconnected,
                }
            };
            match woken {
                // Counted (and reported) in `sent`; the loop goes on.
                Woken::Sent(result) => {
                    let count = self.in_flight.take().map_or(0, |request| request.spans);
                    let _ = self.sent(count, result);
                }
                woken @ (Woken::Signal(Signal::BatchReady) | Woken::Timeout) => {
                    if let Some(pending) = &self.pending {
                        // A full queue while the collector is down is expected; `rung` stays set so
                        // callers stop ringing until the backoff ends.
                        if Instant::now() < pending.next || self.retry(None).is_err() {
                            continue;
                        }
                    }
                    self.rung.store(false, Ordering::Relaxed);
                    // A ring sends full batches only: the rest is assembled further until the next ring
                    // or the timer, which sends everything.
                    let _ = self.drain(None, matches!(woken, Woken::Timeout));
                }
                Woken::Signal(Signal::Flush(reply)) => {
                    let result =
                        self.retry(None).and_then(|()| self.drain(None, true)).and_then(|()| self.settle(None));
                    let _ = reply.send(result);
                }
                Woken::Signal(Signal::Shutdown(reply, deadline)) => {
                    let _ = reply.send(self.finish(Some(deadline)));
                    return;
                }
                Woken::Disconnected => {
                    let _ = self.finish(None);
                    return;
                }
            }
        }
    }

    /// Waits for a signal, the timer, or the request in flight to finish, whichever comes first; the
    /// request makes progress meanwhile.
    fn wait(&mut self, signals: &mpsc::Receiver<Signal>, wait: Duration) -> Woken {
        let Worker { driver, in_flight, alarm, .. } = self;
        let Some(request) = in_flight.as_mut() else { return Woken::Timeout };
        driver.0.block_on(async {
            let mut timer = pin!(tokio::time::sleep(wait));
            std::future::poll_fn(|cx| {
                if let Poll::Ready(result) = request.future.as_mut().poll(cx) {
                    return Poll::Ready(Woken::Sent(result));
                }
                // Before looking at the channel, so a signal sent after the look wakes this task.
                alarm.set(cx.waker());
                match signals.try_recv() {
                    Ok(signal) => return Poll::Ready(Woken::Signal(signal)),
                    Err(mpsc::TryRecvError::Disconnected) => return Poll::Ready(Woken::Disconnected),
                    Err(mpsc::TryRecvError::Empty) => {}
                }
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Woken::Timeout),
                    Poll::Pending => Poll::Pending,
                }
            })
            .await
        })
    }

    /// The last export: the held batch once more, then everything queued, then the wait for the request
    /// in flight; what cannot be sent now (the collector still down, the deadline passed) is counted as
    /// failed.
    fn finish(&mut self, deadline: Option<Instant>) -> OTelSdkResult {
        let mut result = self.retry(deadline).and_then(|()| self.drain(deadline, true));
        // Always: the exporter is shut down only once no request of it is running.
        let last = self.settle(deadline);
        if result.is_ok() {
            result = last;
        }
        if let Some(pending) = self.pending.take() {
            let mut lost = (pending.spans.len() + std::mem::take(&mut self.batch).len()) as u64;
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
        let Some(pending) = self.pending.as_mut() else { return Ok(()) };
        if pending.spans.is_empty() {
            // Nothing is assembled while a batch is held (`drain` waits for the retry), so the batch being
            // filled here is the next one to hold.
            self.fill();
            let Some(pending) = self.pending.as_mut() else { return Ok(()) };
            pending.spans = std::mem::replace(&mut self.batch, Vec::with_capacity(self.max_batch));
            if pending.spans.is_empty() {
                pending.next = Instant::now() + pending.delay;
                return Ok(());
            }
        }
        let spans = self.pending.as_ref().map(|p| p.spans.clone()).unwrap_or_default();
        let count = spans.len() as u64;
        match self.send_now(spans, deadline) {
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

    /// Fills the batch being assembled from the queue, up to a full batch, finishing each span:
    /// annotated functions' records first (built into `SpanData` here, off the callers' threads), then
    /// spans of the SDK path.
    fn fill(&mut self) {
        if self.batch.len() >= self.max_batch {
            return;
        }
        // A fresh reading of the clocks before the spans are taken, after they ended: their stamps are
        // then placed between readings, not extrapolated past the last one (see `base::clock`).
        self.timeline.advance();
        let mut limited = Limited::default();
        while self.batch.len() < self.max_batch {
            let mut span = match self.records.pop() {
                Some(record) => record.into_span_data(&self.scope, &self.timeline, &self.spares),
                None => match self.queue.pop() {
                    Some(span) => span,
                    None => break,
                },
            };
            limited += self.finisher.finish(&mut span);
            self.batch.push(span);
        }
        self.stats.add_limited(limited);
    }

    /// Sends the full batches queued now, one at a time; with `all`, the last, partial one too. Each is
    /// assembled while the one before is in flight. After a failure no more is sent until the held batch
    /// goes through; the error is the result.
    fn drain(&mut self, deadline: Option<Instant>, all: bool) -> OTelSdkResult {
        loop {
            self.fill();
            let full = self.batch.len() >= self.max_batch;
            if self.batch.is_empty() || !(full || all) {
                return Ok(());
            }
            // The request before this one first: one in flight at a time.
            self.settle(deadline)?;
            // Spans that ended meanwhile join a batch that is not full yet.
            self.fill();
            let full = self.batch.len() >= self.max_batch;
            let spans = std::mem::replace(&mut self.batch, Vec::with_capacity(self.max_batch));
            self.start(spans, deadline)?;
            if !full {
                return Ok(());
            }
        }
    }

    /// Starts exporting `spans` and polls the request once, which encodes it and hands it to the client;
    /// an exporter without I/O is done right there.
    fn start(&mut self, spans: Vec<SpanData>, deadline: Option<Instant>) -> OTelSdkResult {
        let count = spans.len() as u64;
        let mut future = self.request(spans, deadline);
        match self.driver.0.block_on(std::future::poll_fn(|cx| Poll::Ready(future.as_mut().poll(cx)))) {
            Poll::Ready(result) => self.sent(count, result),
            Poll::Pending => {
                self.in_flight = Some(InFlight { future, spans: count });
                Ok(())
            }
        }
    }

    /// Waits for the request in flight (until `deadline` at most) and counts its outcome.
    fn settle(&mut self, deadline: Option<Instant>) -> OTelSdkResult {
        let Some(InFlight { future, spans }) = self.in_flight.take() else { return Ok(()) };
        let result = match deadline {
            None => self.driver.0.block_on(future),
            Some(deadline) => {
                let bound = deadline.saturating_duration_since(Instant::now());
                self.driver.0.block_on(async {
                    tokio::time::timeout(bound, future).await.unwrap_or(Err(OTelSdkError::Timeout(bound)))
                })
            }
        };
        self.sent(spans, result)
    }

    /// Counts how a request of `count` spans ended. The usual case keeps no copy of the batch for a
    /// retry, so a batch in flight when the collector goes away is lost (counted as failed); the ones
    /// after it, the one being assembled first, are held.
    fn sent(&mut self, count: u64, result: OTelSdkResult) -> OTelSdkResult {
        let result = result.map_err(|error| self.scrubbed(error));
        match &result {
            Ok(()) => {
                self.stats.exported.fetch_add(count, Ordering::Relaxed);
            }
            Err(error) => {
                self.stats.failed.fetch_add(count, Ordering::Relaxed);
                self.report(count, error, "lost");
                let now = Instant::now();
                self.pending = Some(Pending {
                    spans: std::mem::take(&mut self.batch),
                    since: now,
                    next: now + RETRY_FIRST,
                    delay: RETRY_FIRST,
                });
            }
        }
        result
    }

    /// The export of `spans` with a deadline (the export timeout, or the shutdown deadline if sooner).
    fn request(&self, spans: Vec<SpanData>, deadline: Option<Instant>) -> Pin<Box<dyn Future<Output = OTelSdkResult>>> {
        let timeout = deadline
            .map_or(self.export_timeout, |d| d.saturating_duration_since(Instant::now()).min(self.export_timeout));
        let exporter = self.exporter.clone();
        Box::pin(async move {
            if spans.is_empty() {
                return Ok(());
            }
            let export = exporter.export(spans);
            tokio::time::timeout(timeout, export).await.unwrap_or(Err(OTelSdkError::Timeout(timeout)))
        })
    }

    /// Sends one batch and waits for the answer (the held batch's retries: nothing else goes out
    /// meanwhile).
    fn send_now(&mut self, spans: Vec<SpanData>, deadline: Option<Instant>) -> OTelSdkResult {
        let future = self.request(spans, deadline);
        let result = self.driver.0.block_on(future);
        result.map_err(|error| self.scrubbed(error))
    }

    /// The error text is scrubbed of configured secrets (header values, URL passwords), since it is printed
    /// and returned to the caller.
    fn scrubbed(&self, error: OTelSdkError) -> OTelSdkError {
        match error {
            OTelSdkError::Timeout(t) => OTelSdkError::Timeout(t),
            OTelSdkError::AlreadyShutdown => OTelSdkError::AlreadyShutdown,
            other => OTelSdkError::InternalFailure(self.finisher.secrets.scrub(&other.to_string())),
        }
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
    use std::sync::atomic::AtomicU64;

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
        let exporter = crate::base::ports::boxed(Refuse(attempts.clone()));
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
