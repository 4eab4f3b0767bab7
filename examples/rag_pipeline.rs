//! A small RAG pipeline, traced end to end: one request is one trace.
//!
//! ```text
//! handle_user_query                 SERVER  (the request's entry; the caller as a pseudonym)
//! ├─ extract_intent                  CHAIN
//! ├─ retrieve.customer_history       RETRIEVER  (the caller's recent orders)
//! ├─ retrieve.knowledge_base         RETRIEVER  (document ids and scores)
//! ├─ rerank                          RERANKER
//! ├─ call_tool.get_order_status      TOOL, CLIENT  (an unknown order fails here)
//! └─ generate.response               LLM, CLIENT  (model, parameters, token usage)
//! ```
//!
//! Each step says what it is with `kind = "…"` and its details with the typed helpers (`llm::`,
//! `retrieval::`, `tool::`), so Jaeger, OpenInference tools and GenAI dashboards read the same names.
//!
//! Run it with `cargo run --example rag_pipeline`. With no collector configured it prints each trace as a
//! tree on stderr; with `OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318` (Jaeger's OTLP port) the
//! traces appear in Jaeger under the service `rag-example`. Everything is deterministic and offline: the
//! "LLM" is a template and the "tool" a lookup table.

use kotaemon_trace::{llm, record, retrieval, tool, trace_with_otel, Config, ExporterKind};
use std::fmt;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
enum Intent {
    OrderStatus { order_id: String },
    Policy,
}

#[derive(Debug, Clone)]
struct Doc {
    id: &'static str,
    text: &'static str,
    score: f64,
}

struct KnowledgeBase {
    docs: Vec<(&'static str, &'static str)>,
}

#[derive(Debug)]
enum ToolError {
    UnknownOrder(String),
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToolError::UnknownOrder(id) => write!(f, "order {id} was not found"),
        }
    }
}

impl std::error::Error for ToolError {}

#[trace_with_otel("extract_intent", kind = "chain", ret)]
fn extract_intent(user_query: &str) -> Intent {
    let order_id = user_query
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '-')
        .find(|word| word.starts_with("ORD-"));
    match order_id {
        Some(id) => Intent::OrderStatus { order_id: id.to_owned() },
        None => Intent::Policy,
    }
}

#[trace_with_otel("retrieve.knowledge_base", kind = "retriever", skip(kb), fields(retriever.type = "keyword", retriever.k = k as i64))]
async fn retrieve(kb: &KnowledgeBase, user_query: &str, k: usize) -> Vec<Doc> {
    tokio::time::sleep(Duration::from_millis(8)).await; // a vector store round trip
    let words: Vec<String> = user_query.to_lowercase().split_whitespace().map(str::to_owned).collect();
    let mut docs: Vec<Doc> = kb
        .docs
        .iter()
        .map(|(id, text)| {
            let hits = words.iter().filter(|w| text.to_lowercase().contains(w.as_str())).count();
            Doc { id, text, score: hits as f64 / words.len().max(1) as f64 }
        })
        .filter(|d| d.score > 0.0)
        .collect();
    docs.sort_by(|a, b| b.score.total_cmp(&a.score));
    docs.truncate(k);
    retrieval::documents(docs.iter().map(|d| retrieval::Document { id: d.id, score: d.score, content: Some(d.text) }));
    docs
}

#[trace_with_otel("retrieve.customer_history", kind = "retriever", redact(user_phone))]
async fn retrieve_customer_history(user_phone: &str) -> Vec<&'static str> {
    tokio::time::sleep(Duration::from_millis(5)).await; // the orders database
    let orders = if user_phone.is_empty() { vec![] } else { vec!["ORD-1042", "ORD-2077"] };
    let ranked = orders.iter().enumerate().map(|(i, id)| (id, 1.0 - i as f64 / 10.0));
    retrieval::documents(ranked.map(|(id, score)| retrieval::Document { id, score, content: None }));
    orders
}

#[trace_with_otel("rerank", kind = "reranker", skip(docs), fields(input.count = docs.len() as i64))]
fn rerank(user_query: &str, mut docs: Vec<Doc>) -> Vec<Doc> {
    // Prefer shorter passages at equal score: they make tighter prompts.
    docs.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.text.len().cmp(&b.text.len())));
    docs.truncate(2);
    record("output.count", docs.len());
    record("rerank.top_id", docs.first().map(|d| d.id));
    let _ = user_query;
    docs
}

#[trace_with_otel("call_tool.get_order_status", kind = "tool", err)]
async fn get_order_status(order_id: &str) -> Result<&'static str, ToolError> {
    tool::call("get_order_status", "call-1", &format!(r#"{{"order_id":"{order_id}"}}"#));
    tokio::time::sleep(Duration::from_millis(15)).await; // the order service
    match order_id {
        "ORD-1042" => Ok("shipped, arriving Thursday"),
        "ORD-2077" => Ok("being packed"),
        other => Err(ToolError::UnknownOrder(other.to_owned())),
    }
}

#[trace_with_otel("generate.response", kind = "llm", skip_all)]
async fn generate(user_query: &str, docs: &[Doc], order_status: Option<&str>) -> String {
    llm::provider("template");
    llm::model("template-llm");
    llm::parameters(0.0, 256);
    llm::prompt(user_query); // recorded only with content capture on, and redacted
    tokio::time::sleep(Duration::from_millis(25)).await; // the model
    let context: Vec<&str> = docs.iter().map(|d| d.text).collect();
    let answer = match order_status {
        Some(status) => format!("Your order is {status}."),
        None if context.is_empty() => "I could not find anything about that.".to_owned(),
        None => format!("From our policies: {}", context.join(" ")),
    };
    llm::completion(&answer);
    llm::usage(((user_query.len() + context.concat().len()) / 4) as u64, (answer.len() / 4) as u64);
    llm::finish_reason("stop");
    answer
}

/// The request's entry: `user_phone` is recorded only as a keyed pseudonym (`redact`), so the audit can say
/// who asked without the number ever leaving the process.
#[trace_with_otel("handle_user_query", skip(kb), redact(user_phone), err)]
async fn handle_user_query(kb: &KnowledgeBase, user_phone: &str, user_query: &str) -> Result<String, ToolError> {
    let intent = extract_intent(user_query);
    let recent_orders = retrieve_customer_history(user_phone).await;
    record("customer.recent_orders", recent_orders.len());
    let docs = retrieve(kb, user_query, 4).await;
    let docs = rerank(user_query, docs);
    let status = match &intent {
        Intent::OrderStatus { order_id } => Some(get_order_status(order_id).await?),
        Intent::Policy => None,
    };
    Ok(generate(user_query, &docs, status).await)
}

/// The example shows its trace even with no collector: unless an OTLP endpoint or an exporter is
/// configured, it uses the console exporter.
fn config() -> Config {
    let configured = ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER"]
        .iter()
        .any(|name| std::env::var_os(name).is_some());
    let mut builder = Config::from_env().into_builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        builder = builder.service_name("rag-example");
    }
    if !configured {
        builder = builder.exporter(ExporterKind::Console);
    }
    builder.build()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let guard = kotaemon_trace::init_with(config())?;
    let kb = KnowledgeBase {
        docs: vec![
            ("kb-returns", "Items can be returned within 30 days of delivery."),
            ("kb-refunds", "Refunds reach your card 5 to 7 days after we receive the return."),
            ("kb-shipping", "Standard shipping takes 3 to 5 business days."),
            ("kb-orders", "You can follow any order from the orders page."),
        ],
    };
    let queries = ["Where is my order ORD-1042?", "How long do refunds take after a return?", "Status of order ORD-9999"];
    for user_query in queries {
        match handle_user_query(&kb, "+1 415 555 0100", user_query).await {
            Ok(answer) => println!("Q: {user_query}\nA: {answer}\n"),
            Err(error) => println!("Q: {user_query}\n!: {error}\n"),
        }
    }
    guard.shutdown()?;
    Ok(())
}
