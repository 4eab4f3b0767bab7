//! `async fn`, native async trait methods, the `Box::pin(async move { .. })` shape, and nesting across
//! `.await`, worker threads and spawned tasks.

use kotaemon_trace::{trace_with_otel, WithCurrentSpan as _};
use kotaemon_trace_tests::capture::{attr, capture_async, named};
use opentelemetry::trace::Status;
use opentelemetry::Value;
use std::future::Future;
use std::pin::Pin;

#[trace_with_otel]
fn sync_step(x: u32) -> u32 {
    x + 1
}

#[trace_with_otel]
async fn leaf(i: u32) -> u32 {
    for _ in 0..3 {
        tokio::task::yield_now().await; // lets the runtime move the task between worker threads
    }
    sync_step(i)
}

#[trace_with_otel]
async fn parent() -> u32 {
    let a = leaf(1).await;
    let b = tokio::spawn(leaf(2).with_current_span()).await.unwrap();
    a + b
}

/// `tracing`'s `Instrument` and this crate's `WithCurrentSpan` imported together: each method name is
/// unambiguous, so code that uses both ecosystems compiles without qualified paths.
#[trace_with_otel]
async fn spawns_with_both_traits_in_scope() -> u32 {
    use tracing::Instrument as _;
    let ours = tokio::spawn(leaf(3).with_current_span()).await.unwrap();
    let theirs = tokio::spawn(async { 1 }.in_current_span()).await.unwrap();
    ours + theirs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trait_names_do_not_clash_with_tracing() {
    let (sum, spans) = capture_async(spawns_with_both_traits_in_scope()).await;
    assert_eq!(sum, 5);
    let root = named(&spans, "spawns_with_both_traits_in_scope");
    assert_eq!(named(&spans, "leaf").parent_span_id, root.span_context.span_id());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_nest_through_await_threads_and_spawned_tasks() {
    let (sum, spans) = capture_async(parent()).await;
    assert_eq!(sum, 5);
    let root = named(&spans, "parent");
    let leaves: Vec<_> = spans.iter().filter(|s| s.name == "leaf").collect();
    assert_eq!(leaves.len(), 2);
    for leaf in &leaves {
        assert_eq!(leaf.parent_span_id, root.span_context.span_id(), "leaf {:?}", attr(leaf, "i"));
        let step = spans
            .iter()
            .find(|s| s.name == "sync_step" && s.parent_span_id == leaf.span_context.span_id())
            .expect("the sync call made from async code is the leaf's child");
        assert!(step.start_time >= leaf.start_time && step.end_time <= leaf.end_time);
    }
}

#[derive(Debug)]
struct Failure;

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("generation failed")
    }
}

#[trace_with_otel(ret, err)]
async fn generate(prompt: &str, fail: bool) -> Result<String, Failure> {
    tokio::task::yield_now().await;
    if fail {
        return Err(Failure);
    }
    let words = prompt.split_whitespace().count();
    Ok(format!("{words} words"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_ret_and_err() {
    let (_, spans) = capture_async(async {
        generate("a b c", false).await.unwrap();
        generate("x", true).await.unwrap_err();
    })
    .await;
    assert_eq!(attr(&spans[0], "output.value"), Some(&Value::from("3 words")));
    assert_eq!(spans[1].status, Status::error("generation failed"));
}

trait Tool {
    async fn call(&self, input: &str) -> String;
    fn call_boxed<'a>(&'a self, input: &'a str) -> Pin<Box<dyn Future<Output = String> + Send + 'a>>;
}

struct Weather;

impl Tool for Weather {
    #[trace_with_otel("call_tool.weather")]
    async fn call(&self, input: &str) -> String {
        tokio::task::yield_now().await;
        leaf(7).await;
        format!("sunny in {input}")
    }

    // The shape `#[async_trait]` generates: the span must cover the future, not just its construction.
    #[trace_with_otel("call_tool.weather_boxed")]
    fn call_boxed<'a>(&'a self, input: &'a str) -> Pin<Box<dyn Future<Output = String> + Send + 'a>> {
        let city = input.to_owned();
        Box::pin(async move {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            leaf(8).await;
            format!("rainy in {city}")
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_async_trait_methods_and_the_boxed_future_shape() {
    let (out, spans) = capture_async(async {
        let native = Weather.call("Paris").await;
        let boxed = Weather.call_boxed("Oslo").await;
        (native, boxed)
    })
    .await;
    assert_eq!(out.0, "sunny in Paris");
    assert_eq!(out.1, "rainy in Oslo");
    for name in ["call_tool.weather", "call_tool.weather_boxed"] {
        let tool = named(&spans, name);
        let child = spans.iter().find(|s| s.name == "leaf" && s.parent_span_id == tool.span_context.span_id());
        assert!(child.is_some(), "{name} is the parent of the leaf awaited inside it");
    }
    let boxed = named(&spans, "call_tool.weather_boxed");
    let took = boxed.end_time.duration_since(boxed.start_time).unwrap();
    assert!(took >= std::time::Duration::from_millis(20), "the span covers the future's run: {took:?}");
    assert_eq!(attr(boxed, "input"), Some(&Value::from("Oslo")));
}

#[trace_with_otel]
fn prepare(query: &str) -> String {
    query.trim().to_owned()
}

fn parse_count(text: &str) -> Result<u32, std::num::ParseIntError> {
    text.parse()
}

trait Reranker {
    fn rerank<'a>(
        &'a self,
        query: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<u32, std::num::ParseIntError>> + Send + 'a>>;
    fn rerank_later(&self, query: &str) -> impl Future<Output = Result<u32, std::num::ParseIntError>> + Send;
    async fn rerank_native(&self, query: &str) -> Result<u32, std::num::ParseIntError>;
}

struct Cross;

impl Reranker for Cross {
    // Statements before the returned future run inside the span; `?` inside the future with `ret`/`err`.
    #[trace_with_otel("rerank.boxed", ret, err)]
    fn rerank<'a>(
        &'a self,
        query: &'a str,
    ) -> Pin<Box<dyn Future<Output = Result<u32, std::num::ParseIntError>> + Send + 'a>> {
        let prepared = prepare(query);
        Box::pin(async move {
            tokio::task::yield_now().await;
            leaf(1).await;
            let n = parse_count(&prepared)?;
            Ok(n * 2)
        })
    }

    // A bare `async move` block returned as `impl Future`: the span covers the future too.
    #[trace_with_otel("rerank.later", ret, err)]
    fn rerank_later(&self, query: &str) -> impl Future<Output = Result<u32, std::num::ParseIntError>> + Send {
        let prepared = prepare(query);
        async move {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            leaf(2).await;
            Ok(parse_count(&prepared)? + 1)
        }
    }

    #[trace_with_otel("rerank.native", ret, err)]
    async fn rerank_native(&self, query: &str) -> Result<u32, std::num::ParseIntError> {
        leaf(3).await;
        Ok(parse_count(&prepare(query))? + 2)
    }
}

fn child_of<'a>(
    spans: &'a [opentelemetry_sdk::trace::SpanData],
    name: &str,
    parent: &str,
) -> Option<&'a opentelemetry_sdk::trace::SpanData> {
    let parent = named(spans, parent);
    spans.iter().find(|s| s.name == name && s.parent_span_id == parent.span_context.span_id())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returned_futures_with_ret_and_err() {
    let (out, spans) = capture_async(async {
        let boxed = Cross.rerank(" 21 ").await;
        let later = Cross.rerank_later(" 41 ").await;
        let native = Cross.rerank_native(" 40 ").await;
        let failed = tokio::spawn(async { Cross.rerank("x").await }.with_current_span()).await.unwrap();
        (boxed, later, native, failed.is_err())
    })
    .await;
    assert_eq!(out, (Ok(42), Ok(42), Ok(42), true));
    for name in ["rerank.boxed", "rerank.later", "rerank.native"] {
        let span = spans.iter().find(|s| s.name == name && s.status == Status::Unset).unwrap();
        assert_eq!(attr(span, "output.value"), Some(&Value::I64(42)), "{name}");
        assert!(
            spans.iter().any(|s| s.name == "leaf" && s.parent_span_id == span.span_context.span_id()),
            "{name}: the span covers the future, so what it awaits is its child"
        );
    }
    assert!(child_of(&spans, "prepare", "rerank.later").is_some(), "statements before the future run inside the span");
    let later = named(&spans, "rerank.later");
    assert!(later.end_time.duration_since(later.start_time).unwrap() >= std::time::Duration::from_millis(20));
    let failed = spans.iter().find(|s| s.name == "rerank.boxed" && s.status != Status::Unset).expect("the failed call");
    assert_eq!(failed.status, Status::error("invalid digit found in string"));
    assert_eq!(attr(failed, "output.value"), None);
    assert_eq!(failed.events.events[0].name, "exception");
    assert!(spans
        .iter()
        .filter(|s| s.name == "prepare")
        .all(|p| spans.iter().any(|r| r.name.starts_with("rerank.") && r.span_context.span_id() == p.parent_span_id)));
}

#[trace_with_otel(ret)]
async fn first_word(text: &str) -> &str {
    tokio::task::yield_now().await;
    text.split_whitespace().next().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_fn_returning_a_borrow_of_its_argument() {
    let text = String::from("refund policy");
    let (word, spans) = capture_async(first_word(&text)).await;
    assert_eq!(word, "refund");
    assert_eq!(attr(named(&spans, "first_word"), "output.value"), Some(&Value::from("refund")));
    assert_eq!(attr(named(&spans, "first_word"), "text"), Some(&Value::from("refund policy")));
}
