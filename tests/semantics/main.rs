//! The typed RAG/LLM helpers write the OpenInference and GenAI attribute names; prompt, completion and
//! document text is recorded only when content capture is on, and then cut and redacted; the current
//! trace and span ids are the ones the exporter sees.

use kotaemon_trace::config::{Config, ContentCapture};
use kotaemon_trace::{init_with, llm, retrieval, tool, trace_with_otel, TraceGuard};
use opentelemetry::{Array, Value};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SpanData};
use std::sync::{Mutex, MutexGuard};

static PIPELINE: Mutex<()> = Mutex::new(());

fn pipeline(content: ContentCapture) -> (MutexGuard<'static, ()>, TraceGuard, InMemorySpanExporter) {
    let one = PIPELINE.lock().unwrap_or_else(|e| e.into_inner());
    let exporter = InMemorySpanExporter::default();
    let guard = init_with(Config::builder().content(content).span_exporter(exporter.clone()).build()).unwrap();
    (one, guard, exporter)
}

fn finished(guard: TraceGuard, exporter: &InMemorySpanExporter) -> Vec<SpanData> {
    // Read before shutdown: the in-memory exporter forgets its spans when shut down.
    guard.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    guard.shutdown().unwrap();
    spans
}

fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| &kv.value)
}

#[trace_with_otel("generate.response", skip_all)]
fn generate(prompt: &str) -> String {
    llm::provider("openai");
    llm::model("gpt-4o-mini");
    llm::response_model("gpt-4o-mini-2024-07-18");
    llm::parameters(0.2, 512);
    llm::prompt(prompt);
    let answer = "Your order ships Thursday; questions to support@example.com".to_owned();
    llm::completion(&answer);
    llm::usage(812, 9);
    llm::finish_reason("stop");
    answer
}

#[trace_with_otel("retrieve.customer_history", skip_all)]
fn retrieve() {
    let docs = [
        ("kb-refunds", 0.92, "Refunds take 5 days. Contact alice@example.com"),
        ("kb-returns", 0.81, "Returns within 30 days"),
    ];
    retrieval::documents(docs.iter().map(|(id, score, text)| retrieval::Document {
        id,
        score: *score,
        content: Some(text),
    }));
}

#[trace_with_otel("call_tool.get_order_status", skip_all)]
fn call_tool() {
    tool::call(
        "get_order_status",
        "call_42",
        r#"{"order_id":"ORD-1042","api_key":"sk-proj-AbCdEfGhIjKlMnOpQrStUvWx"}"#,
    );
}

#[test]
fn llm_retrieval_and_tool_attributes_with_content_capture_off() {
    let (_one, guard, exporter) = pipeline(ContentCapture::default());
    generate("where is my order ORD-1042?");
    retrieve();
    call_tool();
    let spans = finished(guard, &exporter);
    let llm_span = spans.iter().find(|s| s.name == "generate.response").unwrap();
    for (key, value) in [
        ("llm.model_name", Value::from("gpt-4o-mini")),
        ("gen_ai.request.model", Value::from("gpt-4o-mini")),
        ("gen_ai.response.model", Value::from("gpt-4o-mini-2024-07-18")),
        ("gen_ai.provider.name", Value::from("openai")),
        ("gen_ai.request.temperature", Value::F64(0.2)),
        ("gen_ai.request.max_tokens", Value::I64(512)),
        ("llm.token_count.prompt", Value::I64(812)),
        ("llm.token_count.completion", Value::I64(9)),
        ("llm.token_count.total", Value::I64(821)),
        ("gen_ai.usage.input_tokens", Value::I64(812)),
        ("gen_ai.usage.output_tokens", Value::I64(9)),
        ("gen_ai.response.finish_reasons", Value::Array(Array::String(vec!["stop".into()]))),
    ] {
        assert_eq!(attr(llm_span, key), Some(&value), "{key}");
    }
    assert_eq!(attr(llm_span, "input.value"), None, "prompts are not captured by default");
    assert_eq!(attr(llm_span, "output.value"), None, "completions are not captured by default");

    let retrieval_span = spans.iter().find(|s| s.name == "retrieve.customer_history").unwrap();
    assert_eq!(attr(retrieval_span, "retrieval.documents.0.document.id"), Some(&Value::from("kb-refunds")));
    assert_eq!(attr(retrieval_span, "retrieval.documents.1.document.score"), Some(&Value::F64(0.81)));
    assert_eq!(attr(retrieval_span, "retrieval.documents.0.document.content"), None);
    assert_eq!(attr(retrieval_span, "output.count"), Some(&Value::I64(2)));

    let tool_span = spans.iter().find(|s| s.name == "call_tool.get_order_status").unwrap();
    assert_eq!(attr(tool_span, "tool.name"), Some(&Value::from("get_order_status")));
    assert_eq!(attr(tool_span, "gen_ai.tool.name"), Some(&Value::from("get_order_status")));
    assert_eq!(attr(tool_span, "gen_ai.tool.call.id"), Some(&Value::from("call_42")));
    let params = attr(tool_span, "tool.parameters").unwrap().as_str();
    assert!(params.contains("ORD-1042") && !params.contains("sk-proj-"), "parameters are redacted: {params}");
}

#[test]
fn content_capture_on_records_text_cut_and_redacted() {
    let (_one, guard, exporter) = pipeline(ContentCapture { enabled: true, max_chars: 40 });
    generate("where is my order ORD-1042? call me at +44 20 7946 0958 please, it is late");
    retrieve();
    let spans = finished(guard, &exporter);
    let llm_span = spans.iter().find(|s| s.name == "generate.response").unwrap();
    let prompt = attr(llm_span, "input.value").expect("captured").as_str().into_owned();
    assert!(prompt.starts_with("where is my order ORD-1042? call me at "), "{prompt}");
    assert!(!prompt.contains("7946"), "redacted before recording: {prompt}");
    assert!(prompt.chars().count() <= 40, "cut to the limit: {prompt}");
    let completion = attr(llm_span, "output.value").unwrap().as_str().into_owned();
    assert!(!completion.contains("support@example.com"), "{completion}");
    let retrieval_span = spans.iter().find(|s| s.name == "retrieve.customer_history").unwrap();
    let doc = attr(retrieval_span, "retrieval.documents.0.document.content").unwrap().as_str().into_owned();
    assert!(doc.starts_with("Refunds take 5 days") && !doc.contains("alice@"), "{doc}");
}

#[trace_with_otel("generate.answer", kind = "llm", ret)]
fn answer(prompt: &str, temperature: f64) -> String {
    let _ = temperature;
    format!("Reply to: {prompt}")
}

#[test]
fn model_call_arguments_and_result_follow_content_capture() {
    let prompt = "où est ma commande ORD-1042 ?";
    let reply = format!("Reply to: {prompt}");
    let spans = {
        let (_one, guard, exporter) = pipeline(ContentCapture::default());
        answer(prompt, 0.2);
        finished(guard, &exporter)
    };
    let off = spans.iter().find(|s| s.name == "generate.answer").unwrap();
    let concealed = attr(off, "prompt").expect("recorded as a pseudonym").as_str().into_owned();
    assert!(concealed.starts_with("anon:") && !concealed.contains("ORD-1042"), "{concealed}");
    assert_eq!(attr(off, "prompt.length"), Some(&Value::I64(prompt.chars().count() as i64)));
    assert_eq!(attr(off, "temperature"), Some(&Value::F64(0.2)), "numbers are parameters, not content");
    let output = attr(off, "output.value").unwrap().as_str().into_owned();
    assert!(output.starts_with("anon:") && !output.contains("Reply"), "{output}");
    assert_eq!(attr(off, "output.length"), Some(&Value::I64(reply.chars().count() as i64)));

    let (_one, guard, exporter) = pipeline(ContentCapture { enabled: true, max_chars: 4096 });
    answer(prompt, 0.2);
    let spans = finished(guard, &exporter);
    let on = spans.iter().find(|s| s.name == "generate.answer").unwrap();
    assert_eq!(attr(on, "prompt"), Some(&Value::from(prompt)));
    assert_eq!(attr(on, "prompt.length"), None);
    assert_eq!(attr(on, "output.value"), Some(&Value::from(reply)));
}

#[trace_with_otel("ids")]
fn ids() -> (Option<String>, Option<String>) {
    (kotaemon_trace::current_trace_id(), kotaemon_trace::current_span_id())
}

#[test]
fn current_ids_are_the_exported_ones() {
    let (_one, guard, exporter) = pipeline(ContentCapture::default());
    let (trace_id, span_id) = ids();
    let spans = finished(guard, &exporter);
    let span = spans.iter().find(|s| s.name == "ids").unwrap();
    assert_eq!(trace_id, Some(span.span_context.trace_id().to_string()));
    assert_eq!(span_id, Some(span.span_context.span_id().to_string()));
    assert_eq!(trace_id.unwrap().len(), 32);
    assert_eq!(kotaemon_trace::current_trace_id(), None, "outside any span");
}

mod kinds {
    use super::{attr, finished, pipeline};
    use kotaemon_trace::config::ContentCapture;
    use kotaemon_trace::trace_with_otel;
    use opentelemetry::trace::SpanKind;
    use opentelemetry::Value;

    #[trace_with_otel("handle_user_query", skip_all)]
    fn handle_user_query() {
        retrieve();
        rerank();
        embed();
        generate();
        call_tool();
        plan();
        check();
        agent();
        consume();
    }
    #[trace_with_otel("retrieve.customer_history", kind = "retriever")]
    fn retrieve() {}
    #[trace_with_otel("rerank", kind = "reranker")]
    fn rerank() {}
    #[trace_with_otel("embed.query", kind = "embedding")]
    fn embed() {}
    #[trace_with_otel("generate.response", kind = "llm")]
    fn generate() {}
    #[trace_with_otel("call_tool.get_order_status", kind = "tool")]
    fn call_tool() {}
    #[trace_with_otel("plan", kind = "chain")]
    fn plan() {}
    #[trace_with_otel("guard.output", kind = "guardrail")]
    fn check() {}
    #[trace_with_otel("agent.run", kind = "agent", span_kind = "internal")]
    fn agent() {}
    #[trace_with_otel("queue.consume", span_kind = "consumer")]
    fn consume() {}

    #[trace_with_otel("worker.tick", span_kind = "internal")]
    fn explicit_internal_root() {}

    #[test]
    fn kind_sets_openinference_and_gen_ai_names_and_the_span_kind() {
        let (_one, guard, exporter) = pipeline(ContentCapture::default());
        handle_user_query();
        explicit_internal_root();
        let spans = finished(guard, &exporter);
        let get = |name: &str| spans.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no span {name}"));
        let expect = [
            ("retrieve.customer_history", "RETRIEVER", Some("retrieval"), SpanKind::Internal),
            ("rerank", "RERANKER", None, SpanKind::Internal),
            ("embed.query", "EMBEDDING", Some("embeddings"), SpanKind::Client),
            ("generate.response", "LLM", Some("chat"), SpanKind::Client),
            ("call_tool.get_order_status", "TOOL", Some("execute_tool"), SpanKind::Client),
            ("plan", "CHAIN", None, SpanKind::Internal),
            ("guard.output", "GUARDRAIL", None, SpanKind::Internal),
            ("agent.run", "AGENT", Some("invoke_agent"), SpanKind::Internal),
        ];
        for (name, openinference, operation, kind) in expect {
            let span = get(name);
            assert_eq!(attr(span, "openinference.span.kind"), Some(&Value::from(openinference)), "{name}");
            assert_eq!(attr(span, "gen_ai.operation.name"), operation.map(Value::from).as_ref(), "{name}");
            assert_eq!(span.span_kind, kind, "{name}");
        }
        let consume = get("queue.consume");
        assert_eq!(consume.span_kind, SpanKind::Consumer);
        assert_eq!(attr(consume, "openinference.span.kind"), None, "no kind, no OpenInference attribute");
        // A service's entry span is SERVER unless a kind is given explicitly.
        assert_eq!(get("handle_user_query").span_kind, SpanKind::Server);
        assert_eq!(get("worker.tick").span_kind, SpanKind::Internal);
    }

    #[test]
    fn a_span_continuing_a_remote_caller_is_server() {
        use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceId, TraceState};
        let (_one, guard, exporter) = pipeline(ContentCapture::default());
        let remote = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        {
            let _cx = opentelemetry::Context::current().with_remote_span_context(remote).attach();
            handle_user_query();
        }
        let spans = finished(guard, &exporter);
        let root = spans.iter().find(|s| s.name == "handle_user_query").unwrap();
        assert_eq!(root.span_kind, SpanKind::Server);
        assert_eq!(root.parent_span_id, SpanId::from_hex("00f067aa0ba902b7").unwrap());
        let child = spans.iter().find(|s| s.name == "plan").unwrap();
        assert_eq!(child.span_kind, SpanKind::Internal, "a local child is not an entry span");
    }
}
