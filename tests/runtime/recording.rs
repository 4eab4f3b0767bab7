//! Annotated functions record through the runtime's own span type, not the SDK's tracer. What reaches the
//! exporter must be what the SDK would have produced: limits and dropped counts, events, links, status,
//! names, scope, parents and ids, drop counting.

use super::exclusive;
use kotaemon_trace::config::{BatchConfig, Config, Limits};
use kotaemon_trace::{init_with, trace_with_otel};
use opentelemetry::trace::{SpanContext, SpanId, Status, TraceContextExt as _, TraceFlags, TraceId, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};
use std::collections::{HashMap, HashSet};
use std::sync::mpsc;

fn tight_limits() -> Limits {
    Limits {
        attribute_value_length: None,
        attributes_per_span: 3,
        events_per_span: 2,
        links_per_span: 1,
        attributes_per_event: 1,
        attributes_per_link: 1,
    }
}

fn linked(n: u128) -> SpanContext {
    SpanContext::new(TraceId::from(n), SpanId::from(n as u64), TraceFlags::SAMPLED, true, Default::default())
}

/// The same calls on whatever span is current, whichever path made it.
fn exercise_current_span() {
    let cx = Context::current();
    let span = cx.span();
    span.set_attribute(KeyValue::new("late.one", 1_i64));
    span.set_attribute(KeyValue::new("late.two", "x"));
    span.add_event("first", vec![KeyValue::new("kept", 1_i64), KeyValue::new("dropped", 2_i64)]);
    span.add_event("second", vec![]);
    span.add_event("third: over the limit", vec![]);
    span.add_link(linked(7), vec![KeyValue::new("kept", true), KeyValue::new("dropped", true)]);
    span.add_link(linked(8), vec![]);
    span.set_status(Status::error("bad input"));
    span.set_status(Status::Unset);
    span.update_name("limited.renamed");
}

#[trace_with_otel("limited", span_kind = "internal", fields(a = 1, b = 2))]
fn limited() {
    exercise_current_span();
}

/// A span's observable content, ids and times left out.
fn content(s: &SpanData) -> String {
    let events: Vec<_> =
        s.events.events.iter().map(|e| (e.name.clone(), e.attributes.clone(), e.dropped_attributes_count)).collect();
    let links: Vec<_> = s
        .links
        .links
        .iter()
        .map(|l| (l.span_context.clone(), l.attributes.clone(), l.dropped_attributes_count))
        .collect();
    format!(
        "name={} kind={:?} attrs={:?} dropped_attrs={} events={events:?} dropped_events={} links={links:?} \
         dropped_links={} status={:?} scope={:?} sampled={} parent_remote={}",
        s.name,
        s.span_kind,
        s.attributes,
        s.dropped_attributes_count,
        s.events.dropped_count,
        s.links.dropped_count,
        s.status,
        s.instrumentation_scope,
        s.span_context.is_sampled(),
        s.parent_span_is_remote,
    )
}

#[test]
fn limits_events_links_status_and_names_match_the_sdk_path() {
    let _one = exclusive();
    let exporter = InMemorySpanExporter::default();
    let guard = init_with(Config::builder().span_exporter(exporter.clone()).limits(tight_limits()).build()).unwrap();
    let tracer = kotaemon_trace::tracer().expect("installed");
    let (ours_parent, sdk_parent) = tracer.in_span("parent", |cx| {
        limited();
        // The same span through the SDK's tracer, which applies the same limits.
        tracer.in_span("limited", |cx| {
            cx.span().set_attributes([KeyValue::new("a", 1_i64), KeyValue::new("b", 2_i64)]);
            exercise_current_span();
        });
        let id = cx.span().span_context().span_id();
        (id, id)
    });
    guard.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let renamed: Vec<&SpanData> = spans.iter().filter(|s| s.name == "limited.renamed").collect();
    assert_eq!(renamed.len(), 2, "{spans:#?}");
    let (ours, sdk) = (renamed[0], renamed[1]);
    assert_eq!(content(ours), content(sdk));
    assert_eq!(ours.dropped_attributes_count, 1, "a, b, late.one kept; late.two dropped and counted");
    assert_eq!(ours.events.dropped_count, 1);
    assert_eq!(ours.events.events[0].dropped_attributes_count, 1);
    assert_eq!(ours.links.dropped_count, 1);
    assert_eq!(ours.links.links[0].dropped_attributes_count, 1);
    assert_eq!(ours.status, Status::error("bad input"), "Unset does not override Error");
    assert_eq!((ours.parent_span_id, sdk.parent_span_id), (ours_parent, sdk_parent));
    assert_eq!(ours.span_context.trace_id(), sdk.span_context.trace_id());
    assert_ne!(ours.span_context.span_id(), sdk.span_context.span_id());
    assert!(ours.start_time <= ours.end_time);
    guard.shutdown().unwrap();
}

#[trace_with_otel("fast.dropped")]
fn fast_dropped(i: u64) -> u64 {
    i
}

#[test]
fn a_full_queue_drops_and_counts_annotated_spans_exactly() {
    super::full_queue_drops_and_counts_exactly(|i| {
        fast_dropped(i);
    });
}

#[trace_with_otel("tree.outer")]
fn outer(n: usize) {
    for i in 0..n {
        inner(i);
    }
}

#[trace_with_otel("tree.inner")]
fn inner(i: usize) -> usize {
    i
}

#[test]
fn parents_and_ids_hold_under_concurrency() {
    let _one = exclusive();
    let exporter = InMemorySpanExporter::default();
    let batch = BatchConfig { max_queue_size: 100_000, ..Default::default() };
    let guard = init_with(Config::builder().span_exporter(exporter.clone()).batch(batch).build()).unwrap();
    const THREADS: usize = 4;
    const ROOTS: usize = 200;
    const CHILDREN: usize = 5;
    std::thread::scope(|scope| {
        for _ in 0..THREADS {
            scope.spawn(|| {
                for _ in 0..ROOTS {
                    outer(CHILDREN);
                }
            });
        }
    });
    guard.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let roots: HashMap<SpanId, &SpanData> =
        spans.iter().filter(|s| s.name == "tree.outer").map(|s| (s.span_context.span_id(), s)).collect();
    assert_eq!(roots.len(), THREADS * ROOTS, "root span ids are unique");
    let traces: HashSet<TraceId> = roots.values().map(|s| s.span_context.trace_id()).collect();
    assert_eq!(traces.len(), THREADS * ROOTS, "every root starts its own trace");
    let mut children_of: HashMap<SpanId, usize> = HashMap::new();
    let mut ids = HashSet::new();
    for s in &spans {
        assert!(s.span_context.is_valid() && s.span_context.is_sampled());
        assert!(ids.insert(s.span_context.span_id()), "span ids are unique");
        if s.name == "tree.inner" {
            let parent = roots.get(&s.parent_span_id).expect("every child's parent is a root of this run");
            assert_eq!(parent.span_context.trace_id(), s.span_context.trace_id());
            assert!(parent.start_time <= s.start_time && s.end_time <= parent.end_time);
            *children_of.entry(s.parent_span_id).or_default() += 1;
        } else {
            assert_eq!(s.parent_span_id, SpanId::INVALID);
        }
    }
    assert!(children_of.values().all(|&n| n == CHILDREN) && children_of.len() == THREADS * ROOTS);
    assert_eq!(guard.stats().spans_dropped, 0);
    guard.shutdown().unwrap();
}

#[test]
fn a_span_ending_after_shutdown_is_not_exported() {
    let _one = exclusive();
    let exporter = InMemorySpanExporter::default();
    let guard = init_with(Config::builder().span_exporter(exporter.clone()).build()).unwrap();
    let (started, release) = (mpsc::channel::<()>(), mpsc::channel::<()>());
    let (started_tx, started_rx) = started;
    let (release_tx, release_rx) = release;
    let worker = std::thread::spawn(move || {
        #[trace_with_otel("late.ender")]
        fn late(started: mpsc::Sender<()>, release: mpsc::Receiver<()>) {
            started.send(()).unwrap();
            release.recv().unwrap();
        }
        late(started_tx, release_rx);
    });
    started_rx.recv().unwrap();
    guard.shutdown().unwrap();
    release_tx.send(()).unwrap();
    worker.join().unwrap();
    assert!(exporter.get_finished_spans().unwrap_or_default().iter().all(|s| s.name != "late.ender"));
}

#[trace_with_otel("field.helper")]
fn field_helper(i: usize) -> usize {
    i * 2
}

#[trace_with_otel("field.user", fields(doubled = field_helper(n)))]
fn field_user(n: usize) -> usize {
    inner(n)
}

#[test]
fn a_field_expression_that_makes_spans_records_both_in_the_callers_trace() {
    // The attribute closure runs while the pipeline is being read; a span made inside it must start
    // normally (as a sibling: the outer span is not current until its fields are recorded).
    let _one = exclusive();
    let exporter = InMemorySpanExporter::default();
    let guard = init_with(Config::builder().span_exporter(exporter.clone()).build()).unwrap();
    let root = kotaemon_trace::tracer().expect("installed").start("field.root");
    let root_cx = Context::current_with_span(root);
    {
        let _attached = root_cx.clone().attach();
        assert_eq!(field_user(21), 21);
    }
    root_cx.span().end();
    guard.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let by_name = |name: &str| spans.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("{name} exported"));
    let (root, user, helper, child) =
        (by_name("field.root"), by_name("field.user"), by_name("field.helper"), by_name("tree.inner"));
    assert!(user.attributes.iter().any(|kv| kv.key.as_str() == "doubled" && kv.value.as_str() == "42"));
    assert_eq!(helper.parent_span_id, root.span_context.span_id(), "helper runs before field.user is current");
    assert_eq!(user.parent_span_id, root.span_context.span_id());
    assert_eq!(child.parent_span_id, user.span_context.span_id());
    for s in [user, helper, child] {
        assert_eq!(s.span_context.trace_id(), root.span_context.trace_id());
    }
    guard.shutdown().unwrap();
}

#[trace_with_otel("timed.step")]
fn timed_step() {
    std::thread::sleep(std::time::Duration::from_millis(3));
}

#[test]
fn timestamps_read_from_the_monotonic_clock_land_on_the_wall_clock() {
    // Annotated spans take their times from the monotonic clock and are converted on the export thread; the
    // exported times must be the wall-clock times of the call (within a millisecond) and keep its length.
    use std::time::{Duration, SystemTime};
    let _one = exclusive();
    let exporter = InMemorySpanExporter::default();
    let guard = init_with(Config::builder().span_exporter(exporter.clone()).build()).unwrap();
    let before = SystemTime::now();
    timed_step();
    let after = SystemTime::now();
    // A span ended by hand with a time of its own keeps that time.
    let given_end = after + Duration::from_secs(1);
    {
        #[trace_with_otel("ended.by.hand")]
        fn ended_by_hand(end: SystemTime) {
            use opentelemetry::trace::TraceContextExt as _;
            Context::current().span().end_with_timestamp(end);
        }
        ended_by_hand(given_end);
    }
    guard.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let span = spans.iter().find(|s| s.name == "timed.step").expect("exported");
    let slack = Duration::from_millis(1);
    assert!(
        span.start_time + slack >= before && span.start_time <= after,
        "start {:?} not within the call",
        span.start_time
    );
    assert!(span.end_time <= after + slack && span.end_time >= span.start_time);
    let length = span.end_time.duration_since(span.start_time).unwrap();
    assert!(
        length >= Duration::from_millis(3)
            && length < Duration::from_millis(3) + (after.duration_since(before).unwrap())
    );
    let by_hand = spans.iter().find(|s| s.name == "ended.by.hand").expect("exported");
    assert_eq!(by_hand.end_time, given_end);
    guard.shutdown().unwrap();
}

#[trace_with_otel("mirror.outer", skip_all)]
fn mirror_outer(switch_to: Option<Context>) {
    match switch_to {
        Some(cx) => {
            let _attached = cx.attach();
            mirror_inner();
        }
        None => mirror_inner(),
    }
}

#[trace_with_otel("mirror.inner")]
fn mirror_inner() {}

#[test]
fn children_follow_whichever_context_is_current_whoever_attached_it() {
    // Under a parent-based sampler the hot path learns "the parent is not sampled" from a per-thread
    // mirror of the current context that OpenTelemetry keeps up to date on every attach and detach; a
    // context attached by user code in the middle of an unsampled trace must be seen at once.
    let _one = exclusive();
    let exporter = InMemorySpanExporter::default();
    let guard = init_with(Config::builder().span_exporter(exporter.clone()).build()).unwrap();
    let remote = |id: u64, sampled: bool| {
        let flags = if sampled { TraceFlags::SAMPLED } else { TraceFlags::default() };
        Context::new().with_remote_span_context(SpanContext::new(
            TraceId::from(u128::from(id)),
            SpanId::from(id),
            flags,
            true,
            Default::default(),
        ))
    };
    std::thread::spawn(move || {
        let unsampled = remote(7, false).attach();
        mirror_outer(None);
        mirror_outer(Some(remote(8, true)));
        mirror_outer(None);
        drop(unsampled);
        let _sampled = remote(9, true).attach();
        mirror_outer(None);
    })
    .join()
    .unwrap();
    guard.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let parents: Vec<(&str, u64)> =
        spans.iter().map(|s| (s.name.as_ref(), u64::from_be_bytes(s.parent_span_id.to_bytes()))).collect();
    assert_eq!(spans.len(), 3, "{parents:?}");
    assert!(parents.contains(&("mirror.inner", 8)), "the child under the context user code attached: {parents:?}");
    assert!(parents.contains(&("mirror.outer", 9)), "{parents:?}");
    let outer = spans.iter().find(|s| s.name == "mirror.outer").unwrap();
    assert!(spans.iter().any(|s| s.name == "mirror.inner" && s.parent_span_id == outer.span_context.span_id()));
    guard.shutdown().unwrap();
}
