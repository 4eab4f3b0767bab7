//! The hot path: start a span for an annotated call, record into it, end it.
//!
//! This module knows nothing of configuration or export. It asks [`crate::global`] for the installed
//! tracer; when there is none, every entry point returns an inert value after one atomic load, and the
//! closure that would record arguments is never called, so nothing is formatted or allocated.

use crate::base::callsite::{Callsite, Sample, Semantic};
use crate::base::value::TypedValue;
use crate::export::metrics::CallTimer;
use crate::hot::state as global;
use opentelemetry::trace::{SpanBuilder, SpanKind, Status, TraceContextExt, Tracer};
use opentelemetry::{Context, ContextGuard, Key, KeyValue, Value};
use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

/// Adds the OpenInference kind and, where there is one, the GenAI operation of `semantic`.
fn push_semantic(semantic: Semantic, attributes: &mut Attributes) {
    attributes.push(crate::base::semconv::OPENINFERENCE_SPAN_KIND, Some(Value::from(semantic.openinference())));
    if let Some(operation) = semantic.gen_ai_operation() {
        attributes.push(crate::base::semconv::GEN_AI_OPERATION_NAME, Some(Value::from(operation)));
    }
}

/// Whether the installed pipeline records model-call text (`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`).
fn content_captured() -> bool {
    global::with_installed(|installed| installed.content.enabled).unwrap_or(false)
}

/// What is recorded of content text when capture is off: its pseudonym and its length in characters.
fn concealed(text: &str) -> (Option<String>, i64) {
    (global::pseudonym(text), i64::try_from(text.chars().count()).unwrap_or(i64::MAX))
}

/// Collects the attributes recorded at entry. Only built when the span is recording.
#[doc(hidden)]
pub struct Attributes {
    list: Vec<KeyValue>,
    capture_arguments: bool,
}

impl Attributes {
    /// Adds `key = value` from `fields(...)`; a `None` value (a type with no recordable form) adds nothing.
    #[inline]
    pub fn push(&mut self, key: &'static str, value: Option<Value>) {
        if let Some(value) = value {
            // The vector is sized for every attribute the call site can record, so it never grows here.
            // Kept apart, the growing path lets the compiler write the pair straight into the vector:
            // built on the stack and copied, each pair cost a failed store-to-load forward that waited for
            // the vector's cache line to come from the export thread's core (about 15 ns a pair).
            if self.list.len() < self.list.capacity() {
                self.list.push(KeyValue::new(Key::from_static_str(key), value));
            } else {
                self.push_growing(key, value);
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn push_growing(&mut self, key: &'static str, value: Value) {
        self.list.push(KeyValue::new(Key::from_static_str(key), value));
    }

    /// Adds an argument, unless argument capture is switched off (`KOTAEMON_TRACE_CAPTURE_ARGS=false`).
    #[inline]
    pub fn push_arg(&mut self, key: &'static str, value: impl FnOnce() -> Option<Value>) {
        if self.capture_arguments {
            self.push(key, value());
        }
    }

    /// Adds an argument of a model call (`kind = "llm"` or `"embedding"`): with content capture off (the
    /// default), a text argument is recorded as its pseudonym and its length in characters
    /// (`<key>.length`), never its text; other values as [`Attributes::push_arg`] does.
    #[inline]
    pub fn push_content_arg(&mut self, key: &'static str, value: impl FnOnce() -> Option<Value>) {
        if !self.capture_arguments {
            return;
        }
        match value() {
            Some(Value::String(text)) if !content_captured() => {
                let (pseudonym, length) = concealed(text.as_str());
                self.push(key, pseudonym.map(Value::from));
                self.list.push(KeyValue::new(format!("{key}.length"), length));
            }
            other => self.push(key, other),
        }
    }

    /// Adds an argument as its pseudonym (the `redact(arg)` option): never the raw value.
    #[inline]
    pub fn push_pseudonym(&mut self, key: &'static str, value: Option<Value>) {
        let pseudonym = value.and_then(|v| global::pseudonym(&v.as_str()));
        self.push(key, pseudonym.map(Value::from));
    }
}

/// A started span that is not attached to the current thread: the async form, and the core of
/// [`SpanGuard`]. Ending happens on drop, so every exit path (return, `?`, panic, a dropped future) ends
/// the span exactly once.
#[doc(hidden)]
pub struct ActiveSpan {
    cx: Quiet<Context>,
    /// False when `cx` is the caller's context carried along (an unsampled parent), not a span of ours.
    owned: bool,
    /// The span is ours (`recorder::FastSpan`): ended with `clock::END_NOW`, so the end time comes from
    /// the span clock (monotonic) rather than the system clock.
    fast: bool,
    /// Set once the function returned: a span dropped before that was cancelled or panicked.
    completed: bool,
    /// Set when a panic was already recorded while polling.
    panicked: bool,
    /// Present while a metrics exporter runs, for sampled and unsampled calls alike.
    timer: Quiet<CallTimer>,
}

impl ActiveSpan {
    /// Starts a span named by `site`, child of the current context. `record` runs only when the span is
    /// sampled.
    #[inline(always)]
    pub fn start(site: &'static Callsite, record: impl FnOnce(&mut Attributes)) -> Self {
        // Tracing off costs this one load; everything else is out of line.
        let word = global::word();
        // An async root the sampler drops takes the longer way: its future may be polled anywhere, so it
        // carries a context of its own (`Shortcut::UnsampledRoot`).
        if word == 0 || matches!(by_mirror(word, site), ByMirror::Inert) {
            return ActiveSpan::inert();
        }
        match precheck(site) {
            Shortcut::Nothing => ActiveSpan::inert(),
            Shortcut::RunIn(cx) => ActiveSpan::unrecorded(Some(cx), None),
            shortcut => Self::start_installed(site, shortcut, record),
        }
    }

    #[inline(never)]
    fn start_installed(site: &'static Callsite, shortcut: Shortcut, record: impl FnOnce(&mut Attributes)) -> Self {
        let timer = crate::export::metrics::enabled().then(|| {
            let entry = Context::map_current(|cx| span_kind(site, cx) == SpanKind::Server);
            CallTimer::start(site, entry)
        });
        match shortcut {
            Shortcut::Nothing | Shortcut::KeepParent => return ActiveSpan::unrecorded(None, timer),
            Shortcut::UnsampledRoot(cx) | Shortcut::RunIn(cx) => return ActiveSpan::unrecorded(Some(cx), timer),
            Shortcut::None => {}
        }
        // The SDK's span, when that path is taken, is written into `slot`, not returned: the lookup's
        // result stays a few words, so the paths that make no span never copy a span-sized value.
        let mut slot: Option<Box<opentelemetry_sdk::trace::Span>> = None;
        let started = global::with_installed(|installed| {
            let mut parent = Context::current();
            let kind = span_kind(site, &parent);
            if site.sample == Sample::Default
                && let Some(recorder) = &installed.recorder
            {
                // Our own recording path; `None` leaves the rare cases to the SDK below.
                match recorder.start(site.name, kind.clone(), &parent) {
                    Some(crate::hot::recorder::Started::Recording(mut span)) => {
                        // Finished here, where it was made: every move of a span-sized value is a
                        // memcpy, and returning it through this closure took four (measured: a sixth
                        // of the call). The attribute closure is user code; it may itself make spans,
                        // which read the pipeline through a shared borrow, as this lookup does.
                        let semantic = if site.semantic.is_some() { Semantic::ATTRIBUTES } else { 0 };
                        let list = recorder.attribute_list(site.attributes + semantic);
                        span.add_attributes(entry_attributes(site, installed.capture_arguments, record, list));
                        return Lookup::Recorded(parent.with_span(span));
                    }
                    Some(crate::hot::recorder::Started::Dropped(sc)) => {
                        // Not recorded: only its context, as the SDK's non-recording span would carry.
                        return Lookup::UnsampledRoot(parent.with_remote_span_context(sc));
                    }
                    None => {}
                }
            }
            let mut builder = SpanBuilder::from_name(site.name).with_kind(kind);
            if site.sample != Sample::Default {
                (builder, parent) = with_sample_hint(builder, parent, site.sample);
            }
            slot = Some(Box::new(installed.tracer.build_with_context(builder, &parent)));
            Lookup::Started { parent, capture_arguments: installed.capture_arguments, record }
        });
        let (mut cx, fast) = match (started, slot) {
            (Some(Lookup::Recorded(cx)), _) => (cx, true),
            (Some(Lookup::Started { parent, capture_arguments, record }), Some(mut span)) => {
                use opentelemetry::trace::Span as _;
                if span.is_recording() {
                    let list = entry_attributes(site, capture_arguments, record, Vec::with_capacity(site.attributes));
                    if !list.is_empty() {
                        span.set_attributes(list);
                    }
                }
                (parent.with_span(*span), false)
            }
            (Some(Lookup::UnsampledRoot(cx)), _) => return ActiveSpan::unrecorded(Some(cx), timer),
            _ => return ActiveSpan::unrecorded(None, timer),
        };
        if let Some(call) = timer.as_ref().and_then(|t| t.gen_ai.clone()) {
            cx = cx.with_value(call);
        }
        ActiveSpan {
            cx: Quiet::new(Some(cx)),
            owned: true,
            fast,
            completed: false,
            panicked: false,
            timer: Quiet::new(timer),
        }
    }

    /// A call with no span of its own: `cx` is the context it runs in (an unsampled root's), if any. A
    /// model call being timed still carries its metric labels in the context, for the helpers to fill.
    fn unrecorded(cx: Option<Context>, timer: Option<CallTimer>) -> Self {
        let cx = match timer.as_ref().and_then(|t| t.gen_ai.clone()) {
            Some(call) => Some(cx.unwrap_or_else(Context::current).with_value(call)),
            None => cx,
        };
        ActiveSpan {
            cx: Quiet::new(cx),
            owned: false,
            fast: false,
            completed: false,
            panicked: false,
            timer: Quiet::new(timer),
        }
    }

    /// Whether the function body must run with `cx` current: its own span, an unsampled root's context
    /// (so its children share its trace id and see it unsampled), or metric labels to fill.
    #[inline]
    fn attaches(&self) -> bool {
        self.cx.is_some()
    }

    #[inline(always)]
    fn inert() -> Self {
        ActiveSpan {
            cx: Quiet::new(None),
            owned: false,
            fast: false,
            completed: false,
            panicked: false,
            timer: Quiet::new(None),
        }
    }

    /// Runs `future` with this span current on every poll, and hands the span back with the output so
    /// `ret`/`err` can be recorded. Dropped before completion, the span ends marked cancelled; a panic
    /// while polling ends it with status Error.
    #[inline]
    pub fn run<F: Future>(self, future: F) -> Running<F> {
        Running { span: Some(self), inner: future }
    }

    /// Makes this span the current context until the returned guard drops, while the span itself stays
    /// here to be moved into a future: the statements a function runs before returning
    /// `Box::pin(async move { .. })` are inside the span that the future then carries.
    #[inline]
    pub fn enter(&self) -> Option<ContextGuard> {
        self.cx.as_ref().filter(|_| self.attaches()).map(|cx| cx.clone().attach())
    }

    /// Wraps `future` so that this span is the current context during each of its polls.
    #[inline]
    pub fn instrument<F: Future>(&self, future: F) -> Instrumented<F> {
        Instrumented { cx: self.cx.clone(), inner: future }
    }

    /// Records the return value as `output.value`.
    #[inline]
    pub fn record_ret(&self, value: Option<Value>) {
        if let (true, Some(cx), Some(value)) = (self.owned, self.cx.as_ref(), value) {
            cx.span().set_attribute(KeyValue::new(crate::base::semconv::OUTPUT_VALUE, value));
        }
    }

    /// `ret` of a model call: with content capture off (the default), a text result (a completion) is
    /// recorded as its pseudonym (`output.value`) and its length in characters (`output.length`).
    #[inline]
    pub fn record_content_ret(&self, value: Option<Value>) {
        match value {
            Some(Value::String(text)) if !content_captured() => {
                if let (true, Some(cx)) = (self.owned, self.cx.as_ref()) {
                    let (pseudonym, length) = concealed(text.as_str());
                    let span = cx.span();
                    if let Some(pseudonym) = pseudonym {
                        span.set_attribute(KeyValue::new(crate::base::semconv::OUTPUT_VALUE, pseudonym));
                    }
                    span.set_attribute(KeyValue::new(crate::base::semconv::OUTPUT_LENGTH, length));
                }
            }
            other => self.record_ret(other),
        }
    }

    /// Marks the span as failed when `result` is an `Err`: status Error with the error's `Display`
    /// text, and an `exception` event with `exception.message` and `exception.type`.
    #[inline]
    pub fn record_err<T, E: Display>(&self, result: &Result<T, E>) {
        if let (Some(timer), Err(_)) = (self.timer.as_ref(), result) {
            timer.fail();
        }
        if let (true, Some(cx), Err(error)) = (self.owned, self.cx.as_ref(), result) {
            record_error(cx, error);
        }
    }
}

/// An `Option` without drop glue: its owner's `Drop` takes it when it is `Some`. The inert span (tracing
/// off, an unsampled child) then drops with one inline test instead of a call into field drop glue.
struct Quiet<T>(std::mem::ManuallyDrop<Option<T>>);

impl<T> Quiet<T> {
    #[inline(always)]
    fn new(value: Option<T>) -> Self {
        Quiet(std::mem::ManuallyDrop::new(value))
    }
}

impl<T> std::ops::Deref for Quiet<T> {
    type Target = Option<T>;
    #[inline(always)]
    fn deref(&self) -> &Option<T> {
        &self.0
    }
}

impl<T> std::ops::DerefMut for Quiet<T> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut Option<T> {
        &mut self.0
    }
}

/// What the pipeline lookup decided.
enum Lookup<R> {
    /// No span of ours, but a context to run in: a dropped root's fresh unsampled trace, so the decision
    /// propagates.
    UnsampledRoot(Context),
    /// Our recording path made the span and recorded its attributes: the context to run in.
    Recorded(Context),
    /// The SDK's tracer started a span under `parent` (in the caller's slot); its attributes, user code,
    /// are recorded outside the lookup.
    Started { parent: Context, capture_arguments: bool, record: R },
}

/// The attributes recorded at entry: the `kind` option's, then the macro's fields and arguments.
#[inline]
fn entry_attributes(
    site: &Callsite,
    capture_arguments: bool,
    record: impl FnOnce(&mut Attributes),
    list: Vec<KeyValue>,
) -> Vec<KeyValue> {
    let mut attributes = Attributes { list, capture_arguments };
    if let Some(semantic) = site.semantic {
        push_semantic(semantic, &mut attributes);
    }
    record(&mut attributes);
    attributes.list
}

/// The span kind of a new span: the call site's, except that an entry span (no local parent: a root, or
/// the child of a remote caller) without an explicit kind is SERVER, which is what Jaeger's Monitor tab
/// and service graphs look for by default.
#[inline]
fn span_kind(site: &Callsite, parent: &Context) -> SpanKind {
    if !site.kind_explicit && site.kind == SpanKind::Internal {
        let span = parent.span();
        let sc = span.span_context();
        if !sc.is_valid() || sc.is_remote() {
            return SpanKind::Server;
        }
    }
    site.kind.clone()
}

/// A decision the hot path can make without the SDK.
enum Shortcut {
    /// Unsampled parent, children follow it, and no metrics to time: the call is the plain function.
    Nothing,
    /// The parent is unsampled and its children follow it: make nothing, the parent stays current (the
    /// call is still timed for metrics).
    KeepParent,
    /// A root the sampler always drops: only a fresh unsampled context, so the decision still propagates
    /// (the call is still timed for metrics).
    UnsampledRoot(Context),
    /// The same root with no metrics to time: the call runs in that context and nothing else happens.
    RunIn(Context),
    /// Not decided: the pipeline decides.
    None,
}

/// What the thread-local mirror of the current context (`current.rs`) decides for a call.
enum ByMirror {
    /// The call is the plain function: the child of an unsampled parent under a parent-based sampler, or
    /// anything inside a dropped root.
    Inert,
    /// A root the sampler drops (`always_off`): a synchronous call opens it without making anything.
    DroppedRoot,
    /// Not decided here.
    Ask,
}

/// Inline in every annotated function: a load, a mask and a thread-local byte. Calls that record metrics
/// or carry a `sample` hint take the longer way.
#[inline(always)]
fn by_mirror(word: u64, site: &Callsite) -> ByMirror {
    if !global::is_mirrored(word) || site.sample != Sample::Default || crate::export::metrics::enabled() {
        return ByMirror::Ask;
    }
    let state = crate::hot::current::state();
    if global::inert_in(word, state) {
        ByMirror::Inert
    } else if global::opens_dropped_root(word, state) {
        ByMirror::DroppedRoot
    } else {
        ByMirror::Ask
    }
}

/// The decisions that need no span and no pipeline state, read from the installed word without the
/// thread's pipeline cache. Out of line and returning a few words: the unsampled child (when the mirror is
/// not in effect) and the dropped root return to the caller's inline code, which builds the guard in
/// place rather than copying a span-sized value back (measured: half the cost of those paths).
#[inline(never)]
fn precheck(site: &Callsite) -> Shortcut {
    match shortcut(global::fast_path(), site) {
        Shortcut::KeepParent if !crate::export::metrics::enabled() => Shortcut::Nothing,
        Shortcut::UnsampledRoot(cx) if !crate::export::metrics::enabled() => Shortcut::RunIn(cx),
        other => other,
    }
}

#[inline]
fn shortcut(fast: global::FastPath, site: &Callsite) -> Shortcut {
    if site.sample != Sample::Default || !(fast.unsampled_parent_drops || fast.roots_drop) {
        return Shortcut::None;
    }
    Context::map_current(|cx| {
        crate::hot::current::remember(cx);
        if cx.get::<crate::policy::sampling::DebugForced>().is_some() {
            return Shortcut::None;
        }
        let span = cx.span();
        let sc = span.span_context();
        if sc.is_valid() {
            if !sc.is_sampled() && fast.unsampled_parent_drops {
                return Shortcut::KeepParent;
            }
        } else if fast.roots_drop {
            // Made here, from the context just read: reading it again would cost another lookup.
            return Shortcut::UnsampledRoot(unsampled_root(cx));
        }
        Shortcut::None
    })
}

/// A new trace id and span id under `cx`, not sampled: what the SDK would make for a dropped root, without
/// the span object behind it.
fn unsampled_root(cx: &Context) -> Context {
    use opentelemetry::trace::{SpanContext, TraceFlags, TraceState};
    let (trace_id, span_id) = crate::base::ids::new_root_ids();
    // Random ids: the W3C random trace-id flag, sampled off.
    cx.with_remote_span_context(SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(crate::policy::propagation::w3c::FLAG_RANDOM),
        false,
        TraceState::default(),
    ))
}

/// Applies `sample = "always" | "never"`: a priority attribute the sampler reads, and for "always" under
/// an unsampled parent, a fresh root linked to that parent (its trace was not kept, this span must be).
#[cold]
fn with_sample_hint(builder: SpanBuilder, mut parent: Context, sample: Sample) -> (SpanBuilder, Context) {
    let priority = i64::from(sample == Sample::Always);
    let builder = builder.with_attributes([KeyValue::new(crate::base::semconv::SAMPLING_PRIORITY, priority)]);
    if sample == Sample::Always {
        // Inside a dropped root that made no ids yet, the trace to link to is that root's.
        if let Some(root) = crate::hot::current::dropped_root_context(&parent) {
            parent = root;
        }
        let sc = parent.span().span_context().clone();
        if sc.is_valid() && !sc.is_sampled() {
            let link = opentelemetry::trace::Link::with_context(sc);
            // Keep baggage and other entries, lose the unsampled span: the new span is a root.
            let root = parent.with_remote_span_context(opentelemetry::trace::SpanContext::empty_context());
            return (builder.with_links(vec![link]), root);
        }
    }
    (builder, parent)
}

/// What `err` needs of a return type; the message names the option and what it accepts when a function
/// that does not return a `Result` carries `err`.
#[doc(hidden)]
#[diagnostic::on_unimplemented(
    message = "`err` needs a function returning `Result<T, E>` with `E: Display`; this one returns `{Self}`",
    label = "`err` used here",
    note = "remove `err`, or return a `Result` whose error type implements `std::fmt::Display`"
)]
pub trait ErrResult {
    /// The `Ok` type.
    type Ok;

    /// Records an `Err` on `span`.
    fn __kt_record_err(&self, span: &ActiveSpan);

    /// The `Ok` value: what `ret` records when `err` is also given.
    fn __kt_ok(&self) -> Option<&Self::Ok>;
}

impl<T, E: Display> ErrResult for Result<T, E> {
    type Ok = T;

    #[inline]
    fn __kt_record_err(&self, span: &ActiveSpan) {
        span.record_err(self);
    }

    #[inline]
    fn __kt_ok(&self) -> Option<&T> {
        self.as_ref().ok()
    }
}

fn record_error<E: Display + ?Sized>(cx: &Context, error: &E) {
    let span = cx.span();
    if !span.is_recording() {
        return;
    }
    let message = error.to_string();
    let type_name = std::any::type_name::<E>();
    span.set_status(Status::error(message.clone()));
    span.add_event(
        "exception",
        vec![
            KeyValue::new(crate::base::semconv::EXCEPTION_MESSAGE, message),
            KeyValue::new(crate::base::semconv::EXCEPTION_TYPE, type_name),
        ],
    );
}

impl Drop for ActiveSpan {
    /// One inline test for the inert span (tracing off, unsampled child), the rest out of line.
    #[inline(always)]
    fn drop(&mut self) {
        if self.owned || self.cx.is_some() || self.timer.is_some() {
            self.release();
        }
    }
}

impl ActiveSpan {
    #[inline(never)]
    fn release(&mut self) {
        if self.owned {
            self.end();
        }
        if let Some(timer) = self.timer.take() {
            timer.finish(self.panicked || std::thread::panicking());
        }
        self.cx.take();
    }

    #[inline(never)]
    fn end(&mut self) {
        let Some(cx) = self.cx.take() else { return };
        if !self.completed && !self.panicked {
            if std::thread::panicking() {
                record_panic(&cx);
            } else {
                // The future was dropped before it finished: a timeout, a `select!` that lost, a
                // cancelled task.
                cx.span().set_attribute(KeyValue::new(crate::base::semconv::CANCELLED, true));
            }
        }
        end_span(&cx, self.fast);
    }
}

/// Ends the span in `cx`: ours by the span clock (`fast`), the SDK's by its own clock read.
#[inline]
fn end_span(cx: &Context, fast: bool) {
    if fast {
        cx.span().end_with_timestamp(crate::base::clock::END_NOW);
    } else {
        cx.span().end();
    }
}

/// Records the panic unwinding through a span: status Error and an `exception` event with
/// `exception.escaped = true`. The message comes from the panic hook installed by `init`.
#[cold]
fn record_panic(cx: &Context) {
    let span = cx.span();
    if !span.is_recording() {
        return;
    }
    let message = crate::base::panics::last_message().unwrap_or_else(|| "panicked".to_owned());
    span.set_status(Status::error(format!("panicked: {message}")));
    span.add_event(
        "exception",
        vec![
            KeyValue::new(crate::base::semconv::EXCEPTION_MESSAGE, message),
            KeyValue::new(crate::base::semconv::EXCEPTION_TYPE, "panic"),
            KeyValue::new(crate::base::semconv::EXCEPTION_ESCAPED, true),
        ],
    );
}

pin_project_lite::pin_project! {
    /// The future of an annotated `async fn` body; see [`ActiveSpan::run`].
    #[doc(hidden)]
    pub struct Running<F> {
        span: Option<ActiveSpan>,
        #[pin]
        inner: F,
    }
}

impl<F: Future> Future for Running<F> {
    type Output = (F::Output, ActiveSpan);

    #[inline]
    fn poll(self: Pin<&mut Self>, task: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let span = this.span.as_mut().expect("a traced future polled after it completed");
        let _attached = span.cx.as_ref().map(|cx| cx.clone().attach());
        // Marks the span while a panic unwinds through this poll; the task that caught it drops the
        // future later, outside the unwinding, where `panicking()` can no longer tell.
        struct PanicGuard<'a>(&'a mut ActiveSpan);
        impl Drop for PanicGuard<'_> {
            fn drop(&mut self) {
                if std::thread::panicking() && !self.0.panicked {
                    if let (true, Some(cx)) = (self.0.owned, self.0.cx.as_ref()) {
                        record_panic(cx);
                    }
                    self.0.panicked = true;
                }
            }
        }
        let guard = PanicGuard(span);
        let output = std::task::ready!(this.inner.poll(task));
        drop(guard);
        let mut span = this.span.take().expect("present until completion");
        span.completed = true;
        Poll::Ready((output, span))
    }
}

/// A started span attached to the current thread for the length of a synchronous call.
#[doc(hidden)]
pub struct SpanGuard {
    /// Dropped by `finish` (no drop glue), after the span ended while current and the previous context
    /// was restored.
    span: std::mem::ManuallyDrop<ActiveSpan>,
    attached: Quiet<ContextGuard>,
    /// What dropping it does; nothing for the inert guard, so dropping that is one test of one byte.
    on_drop: OnDrop,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum OnDrop {
    Nothing,
    /// End the span, restore the context, finish the metrics.
    Finish,
    /// Close the dropped root the call opened (`current::enter_dropped_root`).
    CloseDroppedRoot,
}

impl SpanGuard {
    #[inline(always)]
    fn inert(attached: Option<ContextGuard>) -> Self {
        let on_drop = if attached.is_some() { OnDrop::Finish } else { OnDrop::Nothing };
        SpanGuard { span: std::mem::ManuallyDrop::new(ActiveSpan::inert()), attached: Quiet::new(attached), on_drop }
    }

    #[inline(always)]
    fn dropped_root() -> Self {
        crate::hot::current::enter_dropped_root();
        SpanGuard {
            span: std::mem::ManuallyDrop::new(ActiveSpan::inert()),
            attached: Quiet::new(None),
            on_drop: OnDrop::CloseDroppedRoot,
        }
    }
}

impl SpanGuard {
    /// Starts a span like [`ActiveSpan::start`] and makes it the current context until the guard drops.
    #[inline(always)]
    pub fn enter(site: &'static Callsite, record: impl FnOnce(&mut Attributes)) -> Self {
        let word = global::word();
        if word == 0 {
            return SpanGuard::inert(None);
        }
        match by_mirror(word, site) {
            ByMirror::Inert => return SpanGuard::inert(None),
            ByMirror::DroppedRoot => return SpanGuard::dropped_root(),
            ByMirror::Ask => {}
        }
        match precheck(site) {
            Shortcut::Nothing => SpanGuard::inert(None),
            // Not our span: the root's context is only made current, nothing is ended.
            Shortcut::RunIn(cx) => SpanGuard::inert(Some(cx.attach())),
            shortcut => Self::enter_installed(site, shortcut, record),
        }
    }

    #[inline(never)]
    fn enter_installed(site: &'static Callsite, shortcut: Shortcut, record: impl FnOnce(&mut Attributes)) -> Self {
        let mut span = ActiveSpan::start_installed(site, shortcut, record);
        // A synchronous call cannot be cancelled; only a panic ends it early, and `finish` sees that.
        span.completed = true;
        let attached = if span.owned {
            span.cx.as_ref().map(|cx| cx.clone().attach())
        } else {
            // Not our span: nothing reads the context after this, so it moves into the attachment.
            span.cx.take().map(Context::attach)
        };
        SpanGuard { span: std::mem::ManuallyDrop::new(span), attached: Quiet::new(attached), on_drop: OnDrop::Finish }
    }
}

impl Drop for SpanGuard {
    #[inline(always)]
    fn drop(&mut self) {
        match self.on_drop {
            OnDrop::Nothing => {}
            OnDrop::Finish => self.finish(),
            OnDrop::CloseDroppedRoot => crate::hot::current::leave_dropped_root(),
        }
    }
}

impl SpanGuard {
    #[inline(never)]
    fn finish(&mut self) {
        if self.span.owned {
            self.span.owned = false;
            if let Some(cx) = self.span.cx.take() {
                if std::thread::panicking() {
                    record_panic(&cx);
                }
                end_span(&cx, self.span.fast);
            }
        }
        // Restore the previous context only after the span ended while current.
        self.attached.take();
        // Then the rest of the span's drop (metrics); an inert span is left in its place.
        drop(std::mem::replace(&mut *self.span, ActiveSpan::inert()));
    }
}

impl std::ops::Deref for SpanGuard {
    type Target = ActiveSpan;
    #[inline]
    fn deref(&self) -> &ActiveSpan {
        &self.span
    }
}

pin_project_lite::pin_project! {
    /// A future that runs with a span as its current context on every poll; see
    /// [`ActiveSpan::instrument`] and [`WithCurrentSpan`].
    pub struct Instrumented<F> {
        cx: Option<Context>,
        #[pin]
        inner: F,
    }
}

impl<F> Instrumented<F> {
    pub(crate) fn with_context(cx: Context, inner: F) -> Self {
        Instrumented { cx: Some(cx), inner }
    }
}

impl<F: Future> Future for Instrumented<F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, task: &mut std::task::Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _attached = this.cx.as_ref().map(|cx| cx.clone().attach());
        this.inner.poll(task)
    }
}

/// Carries the caller's trace into a future that runs elsewhere, e.g. one given to `tokio::spawn`, so that
/// the spans it makes are children of the span that spawned it. (Named apart from `tracing`'s
/// `Instrument::in_current_span`, so both traits can be imported together.)
///
/// ```
/// use kotaemon_trace::WithCurrentSpan as _;
///
/// # async fn fetch_embeddings() {}
/// # async fn run() {
/// let task = tokio::spawn(fetch_embeddings().with_current_span());
/// task.await.unwrap();
/// # }
/// ```
pub trait WithCurrentSpan: Future + Sized {
    /// Wraps the future with the current context, attached on each poll.
    fn with_current_span(self) -> Instrumented<Self> {
        // Inside a dropped root, its ids are made now, so the future's calls stay in its trace.
        let cx = global::is_installed().then(|| crate::hot::current::map_current_trace(Context::clone));
        Instrumented { cx, inner: self }
    }
}

impl<F: Future> WithCurrentSpan for F {}

/// Adds an attribute to the current span from inside an annotated function, with the same typed-value
/// rules as arguments. Does nothing when no span is current or tracing is not initialised.
///
/// ```
/// use kotaemon_trace::{record, trace_with_otel};
///
/// #[trace_with_otel("retrieve.knowledge_base")]
/// fn retrieve(query: &str) -> Vec<String> {
///     let docs = vec![format!("doc about {query}")];
///     record("output.count", docs.len());
///     docs
/// }
/// # retrieve("refunds");
/// ```
pub fn record(key: impl Into<Key>, value: impl TypedValue) {
    if !global::is_installed() {
        return;
    }
    Context::map_current(|cx| {
        let span = cx.span();
        if span.is_recording()
            && let Some(value) = value.to_value()
        {
            span.set_attribute(KeyValue::new(key, value));
        }
    });
}
