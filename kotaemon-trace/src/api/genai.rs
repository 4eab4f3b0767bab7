//! Typed helpers for RAG and LLM steps, so attribute keys are never spelled by hand.
//!
//! Each helper writes to the current span (the annotated function's) both the OpenInference name and,
//! where one exists, the OTel GenAI name, so Phoenix/Arize and GenAI dashboards both read them. Values go
//! through the redactor like every other attribute. Prompt, completion and document *text* is recorded
//! only when content capture is on (`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true` or
//! [`crate::config::Config`]), cut to `KOTAEMON_TRACE_CONTENT_MAX_CHARS`, and redacted before it is recorded.

use crate::hot::state as global;
use opentelemetry::trace::TraceContextExt as _;
use opentelemetry::{Context, KeyValue};

/// Writes attributes to the current span when it is recording.
fn set(attributes: impl FnOnce() -> Vec<KeyValue>) {
    if !global::is_installed() {
        return;
    }
    Context::map_current(|cx| {
        let span = cx.span();
        if span.is_recording() {
            span.set_attributes(attributes());
        }
    });
}

/// Content text as it may be recorded: `None` when capture is off; else redacted, then cut.
///
/// Redaction runs before the cut (a cut first could leave `alice@examp`, which no detector recognises),
/// on a window a little longer than the limit so the work stays bounded for huge prompts; whatever lies
/// beyond the window is cut away anyway.
fn content(key: &str, text: &str) -> Option<String> {
    const WINDOW_MARGIN: usize = 256;
    global::with_installed(|installed| {
        let settings = installed.content;
        if !settings.enabled {
            return None;
        }
        let window = cut(text, settings.max_chars.saturating_add(WINDOW_MARGIN));
        let redacted = match &installed.text {
            Some(text) => text.redact(key, window),
            None => std::borrow::Cow::Borrowed(window),
        };
        Some(cut(&redacted, settings.max_chars).to_owned())
    })
    .flatten()
}

/// The first `max_chars` characters of `text`.
fn cut(text: &str, max_chars: usize) -> &str {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// LLM calls: model, parameters, token usage, finish reason, and (opt-in) prompt and completion.
///
/// ```
/// use kotaemon_trace::{llm, trace_with_otel};
///
/// #[trace_with_otel("generate.response", skip_all)]
/// fn generate(prompt: &str) -> String {
///     llm::model("gpt-4o-mini");
///     llm::parameters(0.2, 512);
///     llm::prompt(prompt); // recorded only with content capture on
///     let answer = "Your order ships Thursday.".to_owned();
///     llm::completion(&answer);
///     llm::usage(812, 9);
///     llm::finish_reason("stop");
///     answer
/// }
/// # generate("where is my order?");
/// ```
pub mod llm {
    use super::{content, set};
    use crate::export::metrics::GenAiCall;
    use opentelemetry::KeyValue;

    /// The model: `llm.model_name` and `gen_ai.request.model`.
    pub fn model(name: &str) {
        GenAiCall::with_current(|call| call.set_model(name));
        let name = name.to_owned();
        set(|| vec![KeyValue::new("llm.model_name", name.clone()), KeyValue::new("gen_ai.request.model", name)]);
    }

    /// The model that answered, when it differs from the one asked for: `gen_ai.response.model`.
    pub fn response_model(name: &str) {
        let name = name.to_owned();
        set(|| vec![KeyValue::new("gen_ai.response.model", name)]);
    }

    /// The provider (`openai`, `anthropic`, …): `gen_ai.provider.name` and `llm.provider`.
    pub fn provider(name: &str) {
        GenAiCall::with_current(|call| call.set_provider(name));
        let name = name.to_owned();
        set(|| vec![KeyValue::new("gen_ai.provider.name", name.clone()), KeyValue::new("llm.provider", name)]);
    }

    /// Temperature and max tokens: `gen_ai.request.temperature`, `gen_ai.request.max_tokens`, and
    /// OpenInference's `llm.invocation_parameters` (JSON).
    pub fn parameters(temperature: f64, max_tokens: u32) {
        set(|| {
            vec![
                KeyValue::new("gen_ai.request.temperature", temperature),
                KeyValue::new("gen_ai.request.max_tokens", i64::from(max_tokens)),
                KeyValue::new(
                    "llm.invocation_parameters",
                    format!("{{\"temperature\":{temperature},\"max_tokens\":{max_tokens}}}"),
                ),
            ]
        });
    }

    /// Token usage: `llm.token_count.{prompt,completion,total}` and `gen_ai.usage.{input,output}_tokens`.
    ///
    /// In a `kind = "llm"` or `"embedding"` function, also feeds `gen_ai.client.token.usage` (when a
    /// metrics exporter runs), labelled by the model and provider set with [`model`] and [`provider`].
    pub fn usage(input_tokens: u64, output_tokens: u64) {
        GenAiCall::with_current(|call| call.record_tokens(input_tokens, output_tokens));
        let (i, o) = (input_tokens as i64, output_tokens as i64);
        set(|| {
            vec![
                KeyValue::new("llm.token_count.prompt", i),
                KeyValue::new("llm.token_count.completion", o),
                KeyValue::new("llm.token_count.total", i + o),
                KeyValue::new("gen_ai.usage.input_tokens", i),
                KeyValue::new("gen_ai.usage.output_tokens", o),
            ]
        });
    }

    /// Why generation stopped: `gen_ai.response.finish_reasons`.
    pub fn finish_reason(reason: &str) {
        let reason = reason.to_owned();
        set(|| {
            vec![KeyValue::new(
                "gen_ai.response.finish_reasons",
                opentelemetry::Value::Array(vec![opentelemetry::StringValue::from(reason)].into()),
            )]
        });
    }

    /// The prompt text (`input.value`), only with content capture on; cut and redacted.
    pub fn prompt(text: &str) {
        if let Some(text) = content("input.value", text) {
            set(|| vec![KeyValue::new("input.value", text)]);
        }
    }

    /// The completion text (`output.value`), only with content capture on; cut and redacted.
    pub fn completion(text: &str) {
        if let Some(text) = content("output.value", text) {
            set(|| vec![KeyValue::new("output.value", text)]);
        }
    }
}

/// Retrieval: the documents returned, as `retrieval.documents.N.document.{id,score,content}` and their
/// count as `output.count`.
///
/// ```
/// use kotaemon_trace::{retrieval, trace_with_otel};
///
/// #[trace_with_otel("retrieve.customer_history")]
/// fn retrieve(query: &str) -> Vec<(String, f64)> {
///     let docs = vec![("kb-refunds".to_owned(), 0.92), ("kb-returns".to_owned(), 0.81)];
///     retrieval::documents(docs.iter().map(|(id, score)| retrieval::Document { id, score: *score, content: None }));
///     docs
/// }
/// # retrieve("refund");
/// ```
pub mod retrieval {
    use super::{content, set};
    use opentelemetry::KeyValue;

    /// One retrieved document. `content` is recorded only with content capture on.
    #[derive(Clone, Copy, Debug)]
    pub struct Document<'a> {
        /// The document's id.
        pub id: &'a str,
        /// Its relevance score.
        pub score: f64,
        /// Its text, if you want it recorded (content capture must be on too).
        pub content: Option<&'a str>,
    }

    /// Documents beyond this many are counted but not listed, to keep spans bounded.
    pub const MAX_LISTED: usize = 32;

    /// Records the documents returned.
    pub fn documents<'a>(docs: impl IntoIterator<Item = Document<'a>>) {
        let mut attributes = Vec::new();
        let mut count = 0i64;
        for (i, doc) in docs.into_iter().enumerate() {
            count += 1;
            if i >= MAX_LISTED {
                continue;
            }
            attributes.push(KeyValue::new(format!("retrieval.documents.{i}.document.id"), doc.id.to_owned()));
            attributes.push(KeyValue::new(format!("retrieval.documents.{i}.document.score"), doc.score));
            if let Some(text) = doc.content.and_then(|t| content("retrieval.document.content", t)) {
                attributes.push(KeyValue::new(format!("retrieval.documents.{i}.document.content"), text));
            }
        }
        attributes.push(KeyValue::new("output.count", count));
        set(|| attributes);
    }
}

/// Tool calls: `tool.name`, `gen_ai.tool.name`, the call id and the parameters (JSON, redacted).
///
/// ```
/// use kotaemon_trace::{tool, trace_with_otel};
///
/// #[trace_with_otel("call_tool.get_order_status", skip_all)]
/// fn get_order_status(order_id: &str) -> &'static str {
///     tool::call("get_order_status", "call_42", &format!("{{\"order_id\":\"{order_id}\"}}"));
///     "shipped"
/// }
/// # get_order_status("ORD-1042");
/// ```
pub mod tool {
    use super::set;
    use opentelemetry::KeyValue;

    /// The tool, the call id and its parameters as JSON.
    pub fn call(name: &str, call_id: &str, parameters_json: &str) {
        let (name, id, params) = (name.to_owned(), call_id.to_owned(), parameters_json.to_owned());
        set(|| {
            vec![
                KeyValue::new("tool.name", name.clone()),
                KeyValue::new("gen_ai.tool.name", name),
                KeyValue::new("gen_ai.tool.call.id", id),
                KeyValue::new("tool.parameters", params),
            ]
        });
    }
}

/// The current trace id (32 hex digits, as Jaeger shows it), for loggers of your own.
///
/// ```
/// assert_eq!(kotaemon_trace::current_trace_id(), None); // no span is current here
/// ```
pub fn current_trace_id() -> Option<String> {
    crate::hot::current::map_current_trace(|cx| {
        let span = cx.span();
        let sc = span.span_context();
        sc.is_valid().then(|| sc.trace_id().to_string())
    })
}

/// The current span id (16 hex digits).
///
/// ```
/// assert_eq!(kotaemon_trace::current_span_id(), None);
/// ```
pub fn current_span_id() -> Option<String> {
    crate::hot::current::map_current_trace(|cx| {
        let span = cx.span();
        let sc = span.span_context();
        sc.is_valid().then(|| sc.span_id().to_string())
    })
}
