//! The callers' side of the export queue: what an ending span does, never blocking.
//!
//! Finished spans wait in bounded lock-free queues; a full queue drops the span and counts it exactly.
//! The export thread (`export::processor`) takes them from here; this side only knows how to push, when to
//! ring the export thread, and how to ask it to flush or shut down.

use crate::export::record::{Record, Spares};
use crossbeam_queue::ArrayQueue;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::SpanData;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::task::Waker;
use std::time::{Duration, Instant};

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

/// What wakes the export thread. Spans do not: they wait in the lock-free queue, and the thread is rung
/// only when a full batch is waiting, on a timer, or to flush and shut down.
pub(crate) enum Signal {
    BatchReady,
    Flush(SyncSender<OTelSdkResult>),
    /// With the deadline the worker must answer by.
    Shutdown(SyncSender<OTelSdkResult>, Instant),
}

/// Wakes the export thread while it waits on a request in flight (in its tokio runtime, not on the
/// doorbell's channel): it leaves its waker here before it looks at the channel, and whoever rings takes
/// it after sending, so a signal sent in between is never missed.
#[derive(Debug, Default)]
pub(crate) struct Alarm(Mutex<Option<Waker>>);

impl Alarm {
    pub(crate) fn set(&self, waker: &Waker) {
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match slot.as_ref() {
            Some(kept) if kept.will_wake(waker) => {}
            _ => *slot = Some(waker.clone()),
        }
    }

    fn wake(&self) {
        let waker = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// How often (in pushes, per thread) a caller checks whether a batch is waiting; see
/// `BatchProcessor::pushed`.
const LENGTH_CHECK_EVERY: u32 = 16;

#[derive(Debug)]
pub(crate) struct SpanQueue {
    /// Spans of the SDK's path.
    pub(crate) spans: Arc<ArrayQueue<SpanData>>,
    /// Spans of annotated functions recorded by our own path (`hot::recorder`): compact records, turned
    /// into `SpanData` on the export thread. Same capacity as `spans`, same drop counting.
    pub(crate) records: Arc<ArrayQueue<Record>>,
    /// Attribute vectors of `records`, emptied on the export thread, for callers to fill again.
    pub(crate) spares: Arc<Spares>,
    /// Set when shutdown starts: spans ending later are discarded, as the SDK discards spans ending
    /// after its provider shut down.
    closed: AtomicBool,
    doorbell: SyncSender<Signal>,
    /// Wakes the export thread after a signal while a request is in flight.
    pub(crate) alarm: Arc<Alarm>,
    /// Set when a `BatchReady` is in flight, so a burst rings once, not once per span. Its own allocation
    /// (as are the queues): the export thread writes it, callers read the fields beside `closed`.
    pub(crate) rung: Arc<AtomicBool>,
    pub(crate) stats: Arc<Stats>,
    max_queue_size: usize,
    max_batch: usize,
}

impl SpanQueue {
    /// Queues of `max_queue_size` spans each, and the receiving end of the export thread's doorbell.
    pub(crate) fn new(
        max_queue_size: usize,
        max_batch: usize,
        stats: Arc<Stats>,
    ) -> (SpanQueue, mpsc::Receiver<Signal>) {
        // Room for a BatchReady plus control messages; senders of control messages wait for room.
        let (doorbell, signals) = mpsc::sync_channel(4);
        let queue = SpanQueue {
            spans: Arc::new(ArrayQueue::new(max_queue_size.max(1))),
            records: Arc::new(ArrayQueue::new(max_queue_size.max(1))),
            spares: Arc::new(Spares::for_batch(max_batch.max(1))),
            closed: AtomicBool::new(false),
            doorbell,
            alarm: Arc::new(Alarm::default()),
            rung: Arc::new(AtomicBool::new(false)),
            stats,
            max_queue_size,
            max_batch: max_batch.max(1),
        };
        (queue, signals)
    }

    /// Sends a control signal and waits for its answer, never past `timeout`.
    pub(crate) fn control(
        &self,
        make: impl Fn(SyncSender<OTelSdkResult>) -> Signal,
        timeout: Duration,
    ) -> OTelSdkResult {
        let deadline = Instant::now() + timeout;
        let (reply_tx, reply_rx) = mpsc::sync_channel(1);
        let mut signal = make(reply_tx);
        loop {
            match self.doorbell.try_send(signal) {
                Ok(()) => {
                    self.alarm.wake();
                    break;
                }
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

    /// Discards spans ending from now on.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        // Not boxed: an allocation here freed on the export thread makes the two threads' allocators
        // fight, which measured slower than moving the ~360-byte span (benches/hot_path).
        match self.spans.push(span) {
            Ok(()) => self.pushed(&self.spans),
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
        if pushes.is_multiple_of(LENGTH_CHECK_EVERY) && queue.len() >= self.max_batch {
            self.ring();
        }
    }

    /// Wakes the export thread unless a wake is already in flight.
    #[inline]
    fn ring(&self) {
        if !self.rung.load(Ordering::Relaxed) && !self.rung.swap(true, Ordering::Relaxed) {
            // A full doorbell means the export thread is already being woken.
            if self.doorbell.try_send(Signal::BatchReady).is_ok() {
                self.alarm.wake();
            }
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
}
