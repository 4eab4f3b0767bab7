//! The steps both RAG examples share (`rag_pipeline` runs them once per question, `rag_service` per
//! request): intent extraction, the two retrievals, re-ranking and the order-status tool. Deterministic
//! and offline: the "vector store" is a keyword match over four passages, the "order service" a table.

use kotaemon_trace::{record, retrieval, tool, trace_with_otel};
use std::fmt;
use std::time::Duration;

/// What the question asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Intent {
    OrderStatus { order_id: String },
    Return { order_id: String },
    Refunds,
    Policy,
}

/// A passage of the knowledge base, scored against the question.
#[derive(Debug, Clone)]
pub struct Doc {
    pub id: &'static str,
    pub text: &'static str,
    pub score: f64,
}

pub const KNOWLEDGE_BASE: [(&str, &str); 4] = [
    ("kb-returns", "Items can be returned within 30 days of delivery."),
    ("kb-refunds", "Refunds reach your card 5 to 7 days after we receive the return."),
    ("kb-shipping", "Standard shipping takes 3 to 5 business days."),
    ("kb-orders", "You can follow any order from the orders page."),
];

/// Why a tool call failed.
#[derive(Debug)]
pub enum ToolError {
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
pub fn extract_intent(question: &str) -> Intent {
    let lower = question.to_lowercase();
    let order_id = question
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '-')
        .find(|word| word.starts_with("ORD-"))
        .map(str::to_owned);
    match order_id {
        Some(order_id) if lower.contains("return") => Intent::Return { order_id },
        Some(order_id) => Intent::OrderStatus { order_id },
        None if lower.contains("refund") => Intent::Refunds,
        None => Intent::Policy,
    }
}

#[trace_with_otel("retrieve.customer_history", kind = "retriever", redact(user_phone))]
pub async fn retrieve_customer_history(user_phone: &str) -> Vec<&'static str> {
    tokio::time::sleep(Duration::from_millis(5)).await; // the orders database
    let orders = if user_phone.is_empty() { vec![] } else { vec!["ORD-1042", "ORD-2077"] };
    let ranked = orders.iter().enumerate().map(|(i, id)| (id, 1.0 - i as f64 / 10.0));
    retrieval::documents(ranked.map(|(id, score)| retrieval::Document { id, score, content: None }));
    orders
}

#[trace_with_otel("retrieve.knowledge_base", kind = "retriever", fields(retriever.type = "keyword", retriever.k = k as i64))]
pub async fn retrieve(question: &str, k: usize) -> Vec<Doc> {
    tokio::time::sleep(Duration::from_millis(8)).await; // a vector store round trip
    let words: Vec<String> = question.to_lowercase().split_whitespace().map(str::to_owned).collect();
    let mut docs: Vec<Doc> = KNOWLEDGE_BASE
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

#[trace_with_otel("rerank", kind = "reranker", skip_all, fields(input.count = docs.len() as i64))]
pub fn rerank(mut docs: Vec<Doc>) -> Vec<Doc> {
    docs.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.text.len().cmp(&b.text.len())));
    docs.truncate(2);
    record("output.count", docs.len());
    record("rerank.top_id", docs.first().map(|d| d.id));
    docs
}

#[trace_with_otel("call_tool.get_order_status", kind = "tool", err)]
pub async fn get_order_status(order_id: &str) -> Result<&'static str, ToolError> {
    tool::call("get_order_status", "call-status", &format!(r#"{{"order_id":"{order_id}"}}"#));
    tokio::time::sleep(Duration::from_millis(15)).await; // the order service
    match order_id {
        "ORD-1042" => Ok("shipped, arriving Thursday"),
        "ORD-2077" => Ok("being packed"),
        other => Err(ToolError::UnknownOrder(other.to_owned())),
    }
}
