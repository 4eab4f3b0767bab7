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

use kotaemon_trace::config::{Config, ExporterKind};
use kotaemon_trace::{llm, record, trace_with_otel};
use std::time::Duration;

#[path = "shared/rag_steps.rs"]
mod rag_steps;
use rag_steps::{
    Doc, Intent, ToolError, extract_intent, get_order_status, rerank, retrieve, retrieve_customer_history,
};

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
#[trace_with_otel("handle_user_query", redact(user_phone), err)]
async fn handle_user_query(user_phone: &str, user_query: &str) -> Result<String, ToolError> {
    let intent = extract_intent(user_query);
    let recent_orders = retrieve_customer_history(user_phone).await;
    record("customer.recent_orders", recent_orders.len());
    let docs = rerank(retrieve(user_query, 4).await);
    let status = match &intent {
        Intent::OrderStatus { order_id } | Intent::Return { order_id } => Some(get_order_status(order_id).await?),
        Intent::Refunds | Intent::Policy => None,
    };
    Ok(generate(user_query, &docs, status).await)
}

/// The example shows its trace even with no collector: unless an OTLP endpoint or an exporter is
/// configured (environment or `kotaemon-trace.toml`), it uses the console exporter.
fn config() -> Result<Config, kotaemon_trace::config::ConfigFileError> {
    let loaded = Config::load()?;
    let configured = ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER"]
        .iter()
        .any(|name| loaded.origin(name) != kotaemon_trace::config::Origin::Default);
    let mut builder = loaded.into_builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        builder = builder.service_name("rag-example");
    }
    if !configured {
        builder = builder.exporter(ExporterKind::Console);
    }
    Ok(builder.build())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let guard = kotaemon_trace::init_with(config()?)?;
    let queries =
        ["Where is my order ORD-1042?", "How long do refunds take after a return?", "Status of order ORD-9999"];
    for user_query in queries {
        match handle_user_query("+1 415 555 0100", user_query).await {
            Ok(answer) => println!("Q: {user_query}\nA: {answer}\n"),
            Err(error) => println!("Q: {user_query}\n!: {error}\n"),
        }
    }
    guard.shutdown()?;
    Ok(())
}
