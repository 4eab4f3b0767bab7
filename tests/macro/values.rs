//! Arguments become attributes with their types; untyped values fall back to `Debug`, else nothing.

use kotaemon_trace::trace_with_otel;
use kotaemon_trace_tests::capture::{attr, capture, named};
use opentelemetry::Value;
use std::borrow::Cow;

#[derive(Debug)]
struct Doc {
    #[allow(dead_code)]
    id: u32,
}

struct NoDebug;

#[trace_with_otel]
#[allow(clippy::too_many_arguments)]
fn typed(
    small: i32,
    big: u64,
    ratio: f32,
    flag: bool,
    text: &str,
    owned: String,
    cow: Cow<'_, str>,
    maybe: Option<i64>,
    nothing: Option<i64>,
    doc: Doc,
    docs: &[Doc],
    opaque: NoDebug,
    nested: &&&str,
) {
    let _ = (small, big, ratio, flag, text, owned, cow, maybe, nothing, doc, docs, opaque, nested);
}

#[test]
fn arguments_are_recorded_with_their_types() {
    let ((), spans) = capture(|| {
        typed(
            -7,
            u64::MAX,
            0.5,
            true,
            "q",
            "o".into(),
            Cow::Borrowed("c"),
            Some(3),
            None,
            Doc { id: 1 },
            &[Doc { id: 2 }],
            NoDebug,
            &&"n",
        )
    });
    let span = named(&spans, "typed");
    assert_eq!(attr(span, "small"), Some(&Value::I64(-7)));
    assert_eq!(attr(span, "big"), Some(&Value::from(u64::MAX.to_string())), "beyond i64: exact text");
    assert_eq!(attr(span, "ratio"), Some(&Value::F64(0.5)));
    assert_eq!(attr(span, "flag"), Some(&Value::Bool(true)));
    assert_eq!(attr(span, "text"), Some(&Value::from("q")));
    assert_eq!(attr(span, "owned"), Some(&Value::from("o")));
    assert_eq!(attr(span, "cow"), Some(&Value::from("c")));
    assert_eq!(attr(span, "maybe"), Some(&Value::I64(3)));
    assert_eq!(attr(span, "nothing"), None, "None records nothing");
    assert_eq!(attr(span, "doc"), Some(&Value::from("Doc { id: 1 }")));
    assert_eq!(attr(span, "docs"), Some(&Value::from("[Doc { id: 2 }]")));
    assert_eq!(attr(span, "opaque"), None, "no Debug: not recorded, and no compile error");
    assert_eq!(attr(span, "nested"), Some(&Value::from("n")));
}

#[trace_with_otel]
fn generic_plain<T>(item: T) -> T {
    item
}

#[trace_with_otel]
fn generic_debug<T: std::fmt::Debug>(item: T) -> T {
    item
}

#[trace_with_otel]
fn generic_where<T>(item: T, label: &str) -> usize
where
    T: AsRef<[u8]>,
{
    item.as_ref().len() + label.len()
}

#[test]
fn generic_arguments_follow_their_bounds() {
    let (_, spans) = capture(|| {
        generic_plain(Doc { id: 5 });
        generic_debug(Doc { id: 6 });
        generic_where(vec![1u8, 2], "x")
    });
    assert_eq!(attr(named(&spans, "generic_plain"), "item"), None);
    assert_eq!(attr(named(&spans, "generic_debug"), "item"), Some(&Value::from("Doc { id: 6 }")));
    assert_eq!(attr(named(&spans, "generic_where"), "label"), Some(&Value::from("x")));
}

#[trace_with_otel]
fn destructured((a, b): (i64, &str), Doc { id }: Doc, [first, _, last]: [u8; 3], _: bool) -> i64 {
    a + i64::from(id) + i64::from(first) + i64::from(last) + b.len() as i64
}

#[test]
fn destructured_arguments_record_their_bound_names() {
    let (sum, spans) = capture(|| destructured((1, "xy"), Doc { id: 2 }, [3, 0, 4], true));
    assert_eq!(sum, 12);
    let span = named(&spans, "destructured");
    assert_eq!(attr(span, "a"), Some(&Value::I64(1)));
    assert_eq!(attr(span, "b"), Some(&Value::from("xy")));
    assert_eq!(attr(span, "id"), Some(&Value::I64(2)));
    assert_eq!(attr(span, "first"), Some(&Value::I64(3)));
    assert_eq!(attr(span, "last"), Some(&Value::I64(4)));
    assert_eq!(span.attributes.len(), 5, "`_` binds nothing: {:?}", span.attributes);
}

#[trace_with_otel]
fn counts(docs: &[&str]) -> usize {
    kotaemon_trace::record("output.count", docs.len());
    kotaemon_trace::record("top", docs.first().copied());
    kotaemon_trace::record("debugged", kotaemon_trace::debug(&Doc { id: 9 }));
    docs.len()
}

#[test]
fn record_adds_typed_attributes_to_the_current_span() {
    let (_, spans) = capture(|| counts(&["a", "b"]));
    let span = named(&spans, "counts");
    assert_eq!(attr(span, "output.count"), Some(&Value::I64(2)));
    assert_eq!(attr(span, "top"), Some(&Value::from("a")));
    assert_eq!(attr(span, "debugged"), Some(&Value::from("Doc { id: 9 }")));
}

#[trace_with_otel(ret, err)]
fn generic_result<T, E: std::fmt::Display>(value: Result<T, E>) -> Result<T, E> {
    value
}

#[test]
fn generic_return_values_without_debug_are_not_recorded() {
    let (_, spans) = capture(|| {
        let _ = generic_result::<NoDebug, String>(Ok(NoDebug));
        let _ = generic_result::<NoDebug, String>(Err("no index".to_owned()));
    });
    assert_eq!(attr(&spans[0], "output.value"), None);
    assert_eq!(attr(&spans[0], "value"), None);
    assert_eq!(spans[1].status, opentelemetry::trace::Status::error("no index"));
}
