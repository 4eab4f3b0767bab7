//! `async fn`, native async trait methods, the `Box::pin(async move { .. })` shape, and nesting across
//! `.await`, worker threads and spawned tasks.

use kotaemon_trace::{trace_with_otel, InCurrentSpan as _};
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
    let b = tokio::spawn(leaf(2).in_current_span()).await.unwrap();
    a + b
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
