//! `explain <trace-id>`: how an answer was produced, read back from the trace. Only what was exported is
//! shown: a value the redactor masked stays masked, an attribute that was not recorded is "not recorded".

use super::{Progress, fetch_settled};
use crate::duration::{human_us, utc_timestamp};
use crate::exit::{Fail, NOT_FOUND, OK};
use crate::jaeger::{Client, ui_link};
use crate::render;
use crate::trace::{Span, Trace, value_text};
use serde_json::{Map, Value, json};
use std::time::Duration;

/// Attributes naming the caller without identifying them.
const CALLER_KEYS: &[&str] = &["user.anonymous_id", "enduser.pseudo.id", "session.id"];

pub fn run(client: &Client, trace_id: &str, json_out: bool, wait: Duration) -> Result<u8, Fail> {
    let mut progress = Progress::new(false);
    let trace = fetch_settled(client, trace_id, wait, &mut progress)?.ok_or_else(|| {
        Fail::new(
            NOT_FOUND,
            format!(
                "trace {trace_id} is not in Jaeger at {} (waited {} s).\n  It may not have been sampled or exported, Jaeger may have evicted it, or it lives in another Jaeger (--jaeger-url).",
                client.url,
                wait.as_secs()
            ),
        )
    })?;
    if json_out {
        let mut value = audit_json(&trace);
        value["jaeger_ui"] = json!(ui_link(&client.url, &trace.trace_id));
        println!("{}", serde_json::to_string_pretty(&value).unwrap_or_default());
    } else {
        print!("{}", audit_text(&trace, &client.url));
    }
    Ok(OK)
}

/// One LLM call.
struct Model<'a> {
    span: &'a Span,
    model: Option<String>,
    response_model: Option<String>,
    provider: Option<String>,
    parameters: Vec<(String, Value)>,
    tokens: Vec<(String, Value)>,
}

fn models(trace: &Trace) -> Vec<Model<'_>> {
    let first = |s: &Span, keys: &[&str]| keys.iter().find_map(|k| s.tag_text(k));
    trace
        .spans
        .iter()
        .filter(|s| {
            ["llm.model_name", "gen_ai.request.model", "gen_ai.response.model"].iter().any(|k| s.tag(k).is_some())
        })
        .map(|s| Model {
            span: s,
            model: first(s, &["llm.model_name", "gen_ai.request.model"]),
            response_model: s.tag_text("gen_ai.response.model"),
            provider: first(s, &["gen_ai.provider.name", "llm.provider", "gen_ai.system"]),
            parameters: s
                .tags
                .iter()
                .filter(|(k, _)| {
                    (k.starts_with("gen_ai.request.") && k != "gen_ai.request.model")
                        || matches!(
                            k.as_str(),
                            "llm.invocation_parameters" | "llm.temperature" | "llm.top_p" | "llm.max_tokens"
                        )
                        || k == "gen_ai.response.finish_reasons"
                })
                .cloned()
                .collect(),
            tokens: s
                .tags
                .iter()
                .filter(|(k, _)| k.starts_with("llm.token_count.") || k.starts_with("gen_ai.usage."))
                .cloned()
                .collect(),
        })
        .collect()
}

/// Documents a step returned, grouped by attribute prefix (`retrieval.documents`, `reranker.output_documents`…).
struct Documents<'a> {
    span: &'a Span,
    prefix: String,
    /// Index → fields (`id`, `score`, `content`, `metadata`).
    docs: Vec<(usize, Vec<(String, Value)>)>,
    count: Option<Value>,
}

fn documents(trace: &Trace) -> Vec<Documents<'_>> {
    let mut out = Vec::new();
    for span in &trace.spans {
        let mut groups: Vec<Documents<'_>> = Vec::new();
        for (key, value) in &span.tags {
            let Some((head, field)) = key.split_once(".document.") else { continue };
            let Some((prefix, index)) = head.rsplit_once('.') else { continue };
            let Ok(index) = index.parse::<usize>() else { continue };
            let group = match groups.iter().position(|g| g.prefix == prefix) {
                Some(g) => &mut groups[g],
                None => {
                    groups.push(Documents { span, prefix: prefix.to_owned(), docs: Vec::new(), count: None });
                    groups.last_mut().expect("just pushed")
                }
            };
            match group.docs.iter_mut().find(|(i, _)| *i == index) {
                Some((_, fields)) => fields.push((field.to_owned(), value.clone())),
                None => group.docs.push((index, vec![(field.to_owned(), value.clone())])),
            }
        }
        let retriever = span.name.starts_with("retrieve")
            || span.tag("openinference.span.kind").is_some_and(|k| k == "RETRIEVER")
            || span.tag("gen_ai.operation.name").is_some_and(|k| k == "retrieval");
        if groups.is_empty() && retriever {
            groups.push(Documents { span, prefix: "retrieval.documents".into(), docs: Vec::new(), count: None });
        }
        for mut g in groups {
            g.docs.sort_by_key(|(i, _)| *i);
            g.count = span.tag("output.count").cloned();
            out.push(g);
        }
    }
    out
}

fn is_tool(span: &Span) -> bool {
    span.tag("tool.name").is_some()
        || span.tag("gen_ai.tool.name").is_some()
        || span.tag("openinference.span.kind").is_some_and(|k| k == "TOOL")
        || span.tag("gen_ai.operation.name").is_some_and(|k| k == "execute_tool")
        || span.name.starts_with("call_tool")
}

fn tool_name(span: &Span) -> String {
    span.tag_text("tool.name").or_else(|| span.tag_text("gen_ai.tool.name")).unwrap_or_else(|| span.name.clone())
}

fn field<'a>(fields: &'a [(String, Value)], name: &str) -> Option<&'a Value> {
    fields.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn pairs(list: &[(String, Value)]) -> String {
    list.iter().map(|(k, v)| format!("{k}={}", value_text(v))).collect::<Vec<_>>().join("  ")
}

/// Distinct values of the caller attributes, with the key.
fn callers(trace: &Trace) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for span in &trace.spans {
        for key in CALLER_KEYS {
            if let Some(v) = span.tag_text(key)
                && !out.iter().any(|(k, x)| k == key && *x == v)
            {
                out.push(((*key).to_owned(), v));
            }
        }
    }
    out
}

/// The short note after a step in the tree: what kind of step it was.
fn step_note(span: &Span) -> String {
    let mut notes = Vec::new();
    if let Some(model) = span.tag_text("llm.model_name").or_else(|| span.tag_text("gen_ai.request.model")) {
        notes.push(format!("model={model}"));
    }
    if is_tool(span) {
        notes.push(format!("tool={}", tool_name(span)));
    }
    let docs = span.tags.iter().filter(|(k, _)| k.ends_with(".document.id")).count();
    if docs > 0 {
        notes.push(format!("documents={docs}"));
    }
    notes.join("  ")
}

pub fn audit_text(trace: &Trace, jaeger_url: &str) -> String {
    let mut out = String::new();
    let errors = trace.spans.iter().filter(|s| s.is_error()).count();
    out.push_str(&format!("Trace {}\n", trace.trace_id));
    out.push_str(&format!("  service:  {}\n", trace.services().join(", ")));
    out.push_str(&format!("  started:  {}\n", utc_timestamp(trace.start_us())));
    out.push_str(&format!(
        "  took:     {}  ({} spans, {} with errors)\n",
        human_us(trace.duration_us()),
        trace.spans.len(),
        errors
    ));
    out.push_str(&format!("  view:     {}\n", ui_link(jaeger_url, &trace.trace_id)));
    let who = callers(trace);
    if who.is_empty() {
        out.push_str("  caller:   not recorded (no user.anonymous_id / session.id attribute was exported)\n");
    } else {
        for (key, value) in who {
            out.push_str(&format!("  caller:   {key}={value}\n"));
        }
    }

    out.push_str("\nSteps (* = on the critical path):\n");
    for line in render::tree(trace, &step_note).lines() {
        out.push_str(&format!("  {line}\n"));
    }

    out.push_str("\nModels:\n");
    let models = models(trace);
    if models.is_empty() {
        out.push_str("  none recorded\n");
    }
    for m in &models {
        out.push_str(&format!(
            "  {}: {}",
            m.span.name,
            m.model.clone().unwrap_or_else(|| "(model not recorded)".into())
        ));
        if let Some(r) = m.response_model.as_ref().filter(|r| Some(*r) != m.model.as_ref()) {
            out.push_str(&format!(" (answered by {r})"));
        }
        if let Some(p) = &m.provider {
            out.push_str(&format!(" via {p}"));
        }
        out.push('\n');
        out.push_str(&format!(
            "      parameters: {}\n",
            if m.parameters.is_empty() { "not recorded".into() } else { pairs(&m.parameters) }
        ));
        if !m.tokens.is_empty() {
            out.push_str(&format!("      tokens: {}\n", pairs(&m.tokens)));
        }
    }

    out.push_str("\nDocuments retrieved:\n");
    let docs = documents(trace);
    if docs.is_empty() {
        out.push_str("  none recorded\n");
    }
    for g in &docs {
        let count = g.count.as_ref().map(value_text).unwrap_or_else(|| g.docs.len().to_string());
        out.push_str(&format!("  {} ({}): {count} document(s)\n", g.span.name, g.prefix));
        if g.docs.is_empty() {
            out.push_str("      ids not recorded\n");
        }
        for (index, fields) in &g.docs {
            let id = field(fields, "id").map(value_text).unwrap_or_else(|| "(id not recorded)".into());
            let mut line = format!("      #{index} {id}");
            if let Some(score) = field(fields, "score") {
                line.push_str(&format!("  score={}", value_text(score)));
            }
            if let Some(content) = field(fields, "content") {
                let text: String = value_text(content).chars().take(80).collect();
                line.push_str(&format!("  content={text:?}"));
            }
            out.push_str(&line);
            out.push('\n');
        }
    }

    out.push_str("\nTools called:\n");
    let tools: Vec<&Span> = trace.spans.iter().filter(|s| is_tool(s)).collect();
    if tools.is_empty() {
        out.push_str("  none recorded\n");
    }
    for t in tools {
        let outcome = match t.error_message() {
            Some(message) => format!("FAILED: {message}"),
            None => match t.tag_text("output.value") {
                Some(output) => format!("ok: {output}"),
                None => "ok".into(),
            },
        };
        out.push_str(&format!("  {} ({}) {}  {outcome}\n", tool_name(t), t.name, human_us(t.duration_us)));
        let mut args: Vec<(String, Value)> = Vec::new();
        for key in ["tool.parameters", "gen_ai.tool.call.id"] {
            if let Some(v) = t.tag(key) {
                args.push((key.to_owned(), v.clone()));
            }
        }
        if !args.is_empty() {
            out.push_str(&format!("      {}\n", pairs(&args)));
        }
    }

    out.push_str("\nErrors:\n");
    let failed: Vec<&Span> = trace.spans.iter().filter(|s| s.is_error()).collect();
    if failed.is_empty() {
        out.push_str("  none\n");
    }
    for s in failed {
        let kind = s.exception().and_then(|(kind, _)| kind).map(|k| format!(" [{k}]")).unwrap_or_default();
        out.push_str(&format!("  {}{kind}: {}\n", s.name, s.error_message().unwrap_or_default()));
    }
    if trace.orphans > 0 {
        out.push_str(&format!(
            "\nNote: {} span(s) name a parent that is not in the trace (not exported, or exported by a service that is not sampled).\n",
            trace.orphans
        ));
    }
    out
}

fn object(list: &[(String, Value)]) -> Value {
    Value::Object(list.iter().cloned().collect::<Map<String, Value>>())
}

pub fn audit_json(trace: &Trace) -> Value {
    let critical = trace.critical_time_us();
    let start = trace.start_us();
    let steps: Vec<Value> = trace
        .walk()
        .into_iter()
        .map(|(i, depth)| {
            let s = &trace.spans[i];
            json!({
                "span_id": s.span_id,
                "parent_span_id": s.parent_id,
                "name": s.name,
                "service": s.service,
                "depth": depth,
                "start_offset_us": s.start_us - start,
                "duration_us": s.duration_us,
                "self_time_us": trace.self_time_us(i),
                "critical_path_us": critical[i],
                "error": s.error_message(),
                "attributes": object(&s.tags),
            })
        })
        .collect();
    let models: Vec<Value> = models(trace)
        .into_iter()
        .map(|m| {
            json!({
                "span_id": m.span.span_id, "step": m.span.name, "model": m.model, "response_model": m.response_model,
                "provider": m.provider, "parameters": object(&m.parameters), "tokens": object(&m.tokens),
            })
        })
        .collect();
    let documents: Vec<Value> = documents(trace)
        .into_iter()
        .map(|g| {
            let docs: Vec<Value> = g
                .docs
                .iter()
                .map(|(index, fields)| {
                    let mut doc = object(fields);
                    doc["index"] = json!(index);
                    doc
                })
                .collect();
            json!({"span_id": g.span.span_id, "step": g.span.name, "attribute_prefix": g.prefix, "count": g.count, "documents": docs})
        })
        .collect();
    let tools: Vec<Value> = trace
        .spans
        .iter()
        .filter(|s| is_tool(s))
        .map(|t| {
            json!({
                "span_id": t.span_id, "step": t.name, "tool": tool_name(t), "duration_us": t.duration_us,
                "outcome": if t.is_error() { "error" } else { "ok" }, "error": t.error_message(),
                "parameters": t.tag("tool.parameters"), "call_id": t.tag("gen_ai.tool.call.id"), "output": t.tag("output.value"),
            })
        })
        .collect();
    let errors: Vec<Value> = trace
        .spans
        .iter()
        .filter(|s| s.is_error())
        .map(|s| {
            let (kind, exception_message) = s.exception().unwrap_or_default();
            json!({"span_id": s.span_id, "step": s.name, "message": s.error_message(), "exception_type": kind, "exception_message": exception_message})
        })
        .collect();
    let mut caller = Map::new();
    for (key, value) in callers(trace) {
        caller.entry(key).or_insert_with(|| json!([])).as_array_mut().expect("an array").push(json!(value));
    }
    let slowest = trace
        .dominant_span()
        .map(|(i, t)| json!({"span_id": trace.spans[i].span_id, "step": trace.spans[i].name, "critical_path_us": t}));
    json!({
        "trace_id": trace.trace_id,
        "services": trace.services(),
        "resources": trace.resources.iter().map(|(service, attrs)| (service.clone(), object(attrs))).collect::<Map<String, Value>>(),
        "start_time_us": start,
        "start_time": utc_timestamp(start),
        "duration_us": trace.duration_us(),
        "span_count": trace.spans.len(),
        "spans_with_missing_parent": trace.orphans,
        "caller": caller,
        "slowest_step": slowest,
        "steps": steps,
        "models": models,
        "documents": documents,
        "tools": tools,
        "errors": errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::tests::span;

    fn rag_trace() -> Trace {
        let mut root = span("r", None, "handle_user_query", 0, 100);
        root.tags.push(("user.anonymous_id".into(), json!("anon:0123")));
        let mut retrieve = span("a", Some("r"), "retrieve.customer_history", 1, 20);
        retrieve.tags.extend([
            ("retrieval.documents.1.document.id".into(), json!("kb-returns")),
            ("retrieval.documents.0.document.id".into(), json!("kb-refunds")),
            ("retrieval.documents.0.document.score".into(), json!(0.92)),
            ("retrieval.documents.1.document.score".into(), json!(0.81)),
            ("output.count".into(), json!(2)),
        ]);
        let mut tool = span("t", Some("r"), "call_tool.get_order_status", 25, 10);
        tool.tags.extend([
            ("tool.name".into(), json!("get_order_status")),
            ("tool.parameters".into(), json!("{\"order_id\":\"[REDACTED:email]\"}")),
            ("error".into(), json!(true)),
            ("otel.status_description".into(), json!("order ORD-9 was not found")),
        ]);
        tool.events
            .push((30_000, vec![("event".into(), json!("exception")), ("exception.type".into(), json!("ToolError"))]));
        let mut generate = span("g", Some("r"), "generate.response", 40, 55);
        generate.tags.extend([
            ("llm.model_name".into(), json!("gpt-4o-mini")),
            ("gen_ai.request.model".into(), json!("gpt-4o-mini")),
            ("gen_ai.request.temperature".into(), json!(0.2)),
            ("llm.token_count.prompt".into(), json!(812)),
        ]);
        Trace::new("abc".into(), vec![root, retrieve, tool, generate], Vec::new())
    }

    #[test]
    fn the_text_audit_answers_who_what_which_documents_which_tool() {
        let text = audit_text(&rag_trace(), "http://127.0.0.1:16686");
        for expected in [
            "caller:   user.anonymous_id=anon:0123",
            "view:     http://127.0.0.1:16686/trace/abc",
            "generate.response: gpt-4o-mini\n      parameters: gen_ai.request.temperature=0.2\n      tokens: llm.token_count.prompt=812",
            "retrieve.customer_history (retrieval.documents): 2 document(s)\n      #0 kb-refunds  score=0.92\n      #1 kb-returns  score=0.81",
            "get_order_status (call_tool.get_order_status) 10.00 ms  FAILED: order ORD-9 was not found",
            "tool.parameters={\"order_id\":\"[REDACTED:email]\"}",
            "call_tool.get_order_status [ToolError]: order ORD-9 was not found",
            "generate.response  55.00 ms  model=gpt-4o-mini  <- slowest",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
    }

    #[test]
    fn what_was_not_exported_is_said_to_be_missing() {
        let t = Trace::new("abc".into(), vec![span("r", None, "plain", 0, 5)], Vec::new());
        let text = audit_text(&t, "http://j");
        assert!(text.contains("caller:   not recorded"), "{text}");
        assert!(text.contains("Models:\n  none recorded"), "{text}");
        assert!(text.contains("Tools called:\n  none recorded"), "{text}");
        assert!(text.contains("Errors:\n  none"), "{text}");
    }

    #[test]
    fn json_carries_the_same_facts() {
        let v = audit_json(&rag_trace());
        assert_eq!(v["caller"]["user.anonymous_id"], json!(["anon:0123"]));
        assert_eq!(v["models"][0]["model"], "gpt-4o-mini");
        assert_eq!(v["models"][0]["parameters"]["gen_ai.request.temperature"], 0.2);
        assert_eq!(v["documents"][0]["documents"][0]["id"], "kb-refunds");
        assert_eq!(v["documents"][0]["documents"][1]["score"], 0.81);
        assert_eq!(v["tools"][0]["outcome"], "error");
        assert_eq!(v["tools"][0]["tool"], "get_order_status");
        assert_eq!(v["errors"][0]["exception_type"], "ToolError");
        assert_eq!(v["slowest_step"]["step"], "generate.response");
        assert_eq!(v["steps"].as_array().unwrap().len(), 4);
        assert_eq!(v["steps"][0]["depth"], 0);
        assert_eq!(v["duration_us"], 100_000);
    }
}
