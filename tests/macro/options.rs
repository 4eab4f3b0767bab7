//! Each option of the attribute.

use kotaemon_trace::trace_with_otel;
use kotaemon_trace_tests::capture::{attr, capture, named, spans_in, spans_linked_to};
use opentelemetry::trace::{SpanContext, SpanId, Status, TraceContextExt as _, TraceFlags, TraceId, TraceState};
use opentelemetry::{Context, Value};
use std::fmt;

#[trace_with_otel]
fn default_name() {}

#[trace_with_otel("retriever.invoke")]
fn positional_name() {}

#[trace_with_otel(name = "call_tool.get_order_status")]
fn named_option() {}

#[trace_with_otel]
fn r#type() {}

#[test]
fn span_names() {
    let ((), spans) = capture(|| {
        default_name();
        positional_name();
        named_option();
        r#type();
    });
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
    assert_eq!(names, ["default_name", "retriever.invoke", "call_tool.get_order_status", "type"]);
}

struct Client;

#[trace_with_otel(skip(client, token))]
fn skipping(client: &Client, token: &str, query: &str) -> usize {
    let _ = client;
    token.len() + query.len()
}

#[trace_with_otel(skip_all)]
fn skipping_all(token: &str, query: &str) -> usize {
    token.len() + query.len()
}

#[test]
fn skip_and_skip_all() {
    let (_, spans) = capture(|| {
        skipping(&Client, "secret", "q");
        skipping_all("secret", "q")
    });
    let some = named(&spans, "skipping");
    assert_eq!(attr(some, "token"), None);
    assert_eq!(attr(some, "client"), None);
    assert_eq!(attr(some, "query"), Some(&Value::from("q")));
    assert!(named(&spans, "skipping_all").attributes.is_empty());
}

struct Retriever {
    k: usize,
}

impl Retriever {
    #[trace_with_otel("retriever.invoke", skip(self), fields(retriever.type = "vector", retriever.k = self.k as i64, "http.route" = "/ask", ratio = 0.25))]
    fn invoke(&self, query: &str) -> usize {
        query.len() * self.k
    }
}

#[test]
fn fields_with_dotted_keys_and_expressions() {
    let (_, spans) = capture(|| Retriever { k: 4 }.invoke("abc"));
    let span = named(&spans, "retriever.invoke");
    assert_eq!(attr(span, "retriever.type"), Some(&Value::from("vector")));
    assert_eq!(attr(span, "retriever.k"), Some(&Value::I64(4)));
    assert_eq!(attr(span, "http.route"), Some(&Value::from("/ask")));
    assert_eq!(attr(span, "ratio"), Some(&Value::F64(0.25)));
    assert_eq!(attr(span, "self"), None, "self is never recorded");
    assert_eq!(attr(span, "query"), Some(&Value::from("abc")));
}

#[derive(Debug)]
struct ToolError(&'static str);

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tool failed: {}", self.0)
    }
}

impl std::error::Error for ToolError {}

#[trace_with_otel(ret)]
fn answer(question: &str) -> String {
    format!("answer to {question}")
}

#[trace_with_otel(ret, err)]
fn fallible(fail: bool) -> Result<u32, ToolError> {
    if fail {
        return Err(ToolError("timeout"));
    }
    Ok(42)
}

fn step(fail: bool) -> Result<u32, ToolError> {
    if fail {
        Err(ToolError("upstream"))
    } else {
        Ok(1)
    }
}

#[trace_with_otel(err)]
fn with_question_mark(fail: bool) -> Result<u32, Box<dyn std::error::Error>> {
    let v = step(fail)?;
    Ok(v + 1)
}

#[test]
fn ret_records_the_return_value() {
    let (_, spans) = capture(|| answer("life"));
    assert_eq!(attr(named(&spans, "answer"), "output.value"), Some(&Value::from("answer to life")));
}

#[test]
fn err_marks_the_span_failed_with_an_exception_event() {
    let (_, spans) = capture(|| {
        let _ = fallible(false);
        let _ = fallible(true);
    });
    let ok = &spans[0];
    assert_eq!(ok.status, Status::Unset);
    assert_eq!(attr(ok, "output.value"), Some(&Value::I64(42)), "with err, ret records the Ok value");
    assert!(ok.events.events.is_empty());
    let failed = &spans[1];
    assert_eq!(failed.status, Status::error("tool failed: timeout"));
    assert_eq!(attr(failed, "output.value"), None);
    let event = &failed.events.events[0];
    assert_eq!(event.name, "exception");
    let field = |k: &str| event.attributes.iter().find(|kv| kv.key.as_str() == k).map(|kv| kv.value.clone());
    assert_eq!(field("exception.message"), Some(Value::from("tool failed: timeout")));
    assert_eq!(field("exception.type"), Some(Value::from(std::any::type_name::<ToolError>())));
}

#[test]
fn err_sees_errors_returned_through_question_mark() {
    let (_, spans) = capture(|| {
        assert_eq!(with_question_mark(false).unwrap(), 2);
        assert!(with_question_mark(true).is_err());
    });
    assert_eq!(spans[0].status, Status::Unset);
    assert_eq!(spans[1].status, Status::error("tool failed: upstream"));
}

#[trace_with_otel(sample = "never")]
fn health_check() -> bool {
    nested_in_health_check()
}

#[trace_with_otel]
fn nested_in_health_check() -> bool {
    true
}

#[trace_with_otel("payment.charge", sample = "always")]
fn charge(amount_cents: i64) -> i64 {
    amount_cents
}

#[test]
fn sample_never_drops_the_span_and_its_children() {
    let (_, spans) = capture(health_check);
    assert!(spans.is_empty(), "{spans:?}");
}

#[test]
fn sample_always_records_under_an_unsampled_parent_as_a_linked_trace() {
    let trace_id = TraceId::from(0x1234_5678_9abc_def0_1234_5678_9abc_def0_u128 ^ u128::from(std::process::id()));
    let parent = SpanContext::new(trace_id, SpanId::from(0x42), TraceFlags::default(), true, TraceState::default());
    {
        let _attached = Context::new().with_remote_span_context(parent).attach();
        default_name(); // follows the unsampled parent: not recorded
        charge(1999);
    }
    assert!(spans_in(trace_id).is_empty(), "nothing is recorded in the unsampled trace");
    let linked = spans_linked_to(trace_id);
    assert_eq!(linked.len(), 1, "{linked:?}");
    let charge = &linked[0];
    assert_eq!(charge.name, "payment.charge");
    assert_ne!(charge.span_context.trace_id(), trace_id, "a new trace");
    assert_eq!(charge.parent_span_id, SpanId::INVALID, "a root");
    assert_eq!(attr(charge, "amount_cents"), Some(&Value::I64(1999)));
    assert_eq!(charge.links.links[0].span_context.span_id(), SpanId::from(0x42));
}

#[test]
fn sample_always_under_a_sampled_parent_is_an_ordinary_child() {
    let (_, spans) = capture(|| charge(5));
    assert_eq!(spans.len(), 1);
    assert!(spans[0].links.links.is_empty());
}

#[trace_with_otel(ret, skip(limit), name = "options.any_order", fields(query = query.to_uppercase(), limit.doubled = limit * 2))]
fn any_order(query: &str, limit: i64) -> usize {
    query.len()
}

#[test]
fn options_in_any_order_and_a_field_replacing_an_argument() {
    let (_, spans) = capture(|| any_order("abc", 4));
    let span = named(&spans, "options.any_order");
    assert_eq!(attr(span, "output.value"), Some(&Value::I64(3)));
    assert_eq!(attr(span, "query"), Some(&Value::from("ABC")), "the field wins over the argument of the same name");
    assert_eq!(span.attributes.iter().filter(|kv| kv.key.as_str() == "query").count(), 1);
    assert_eq!(attr(span, "limit"), None);
    assert_eq!(attr(span, "limit.doubled"), Some(&Value::I64(8)));
}
