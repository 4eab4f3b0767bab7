//! One trace as Jaeger's query API returns it, turned into a tree, with the time accounting the commands
//! share: self time and the critical path.
//!
//! **Critical path** (the same definition as Jaeger UI's): start at the end of a root span and walk
//! backwards; at each point the span that is "holding up" the parent is the child that finished last
//! before that point; its own critical path is taken recursively, then the walk continues from that
//! child's start. Gaps where no child runs belong to the parent. The result splits the root's duration
//! into segments, each attributed to exactly one span, so the segments add up to the root's duration.
//! The span with the largest share is the one that took most of the time: making it faster makes the
//! request faster. Plain duration would always blame the root; plain self time would blame a step that
//! ran in parallel with a longer one and delayed nothing.

use serde_json::Value;
use std::collections::HashMap;

/// One span.
#[derive(Clone, Debug, PartialEq)]
pub struct Span {
    pub span_id: String,
    pub parent_id: Option<String>,
    pub name: String,
    pub service: String,
    /// Microseconds since the Unix epoch.
    pub start_us: i64,
    pub duration_us: i64,
    /// Attributes as exported (Jaeger "tags"), in order.
    pub tags: Vec<(String, Value)>,
    /// Events (Jaeger "logs"): timestamp and fields.
    pub events: Vec<(i64, Vec<(String, Value)>)>,
}

impl Span {
    pub fn end_us(&self) -> i64 {
        self.start_us + self.duration_us.max(0)
    }

    pub fn tag(&self, key: &str) -> Option<&Value> {
        self.tags.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// A tag as text (strings unquoted, other values as JSON).
    pub fn tag_text(&self, key: &str) -> Option<String> {
        self.tag(key).map(value_text)
    }

    /// Status Error (Jaeger's `error=true` tag, or `otel.status_code=ERROR`).
    pub fn is_error(&self) -> bool {
        self.tag("error").is_some_and(|v| v == &Value::Bool(true) || v == "true")
            || self.tag("otel.status_code").is_some_and(|v| v == "ERROR")
    }

    /// The exception event's `(type, message)`, if one was recorded.
    pub fn exception(&self) -> Option<(Option<String>, Option<String>)> {
        self.events.iter().find_map(|(_, fields)| {
            let get = |k: &str| fields.iter().find(|(key, _)| key == k).map(|(_, v)| value_text(v));
            let is_exception = get("event").as_deref() == Some("exception") || get("exception.message").is_some();
            is_exception.then(|| (get("exception.type"), get("exception.message")))
        })
    }

    /// What went wrong, as exported: the status description, else the exception message.
    pub fn error_message(&self) -> Option<String> {
        if !self.is_error() {
            return None;
        }
        self.tag_text("otel.status_description")
            .or_else(|| self.exception().and_then(|(_, message)| message))
            .or_else(|| Some("(no message exported)".to_owned()))
    }
}

/// A JSON value as text: strings without quotes.
pub fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A trace with its tree.
#[derive(Clone, Debug)]
pub struct Trace {
    pub trace_id: String,
    /// Sorted by start time.
    pub spans: Vec<Span>,
    /// Children of each span (indices), by start time.
    pub children: Vec<Vec<usize>>,
    /// Spans without a parent in the trace, by start time.
    pub roots: Vec<usize>,
    /// Spans whose parent is not in the trace (not exported, or not arrived yet).
    pub orphans: usize,
    /// Resource attributes per service (Jaeger "process tags").
    pub resources: Vec<(String, Vec<(String, Value)>)>,
}

/// A stretch of time attributed to one span on the critical path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub span: usize,
    pub start_us: i64,
    pub end_us: i64,
}

impl Trace {
    /// Parses one element of Jaeger's `data` array.
    pub fn from_jaeger(json: &Value) -> Result<Trace, String> {
        let trace_id = json["traceID"].as_str().ok_or("Jaeger's answer has no traceID")?.to_owned();
        let processes = json["processes"].as_object();
        let service_of = |pid: &str| -> String {
            processes.and_then(|p| p.get(pid)).and_then(|p| p["serviceName"].as_str()).unwrap_or("?").to_owned()
        };
        let mut resources: Vec<(String, Vec<(String, Value)>)> = processes
            .map(|p| {
                p.values()
                    .map(|process| {
                        (process["serviceName"].as_str().unwrap_or("?").to_owned(), key_values(&process["tags"]))
                    })
                    .collect()
            })
            .unwrap_or_default();
        resources.sort_by(|a, b| a.0.cmp(&b.0));
        resources.dedup_by(|a, b| a.0 == b.0);
        let mut spans = Vec::new();
        for s in json["spans"].as_array().map(Vec::as_slice).unwrap_or_default() {
            let refs = s["references"].as_array().map(Vec::as_slice).unwrap_or_default();
            let same_trace = |r: &&Value| r["traceID"].as_str().is_none_or(|t| t == trace_id);
            let parent = refs
                .iter()
                .filter(same_trace)
                .find(|r| r["refType"] == "CHILD_OF")
                .or_else(|| refs.iter().filter(same_trace).find(|r| r["refType"] == "FOLLOWS_FROM"))
                .and_then(|r| r["spanID"].as_str())
                .map(str::to_owned);
            spans.push(Span {
                span_id: s["spanID"].as_str().ok_or("a span without spanID")?.to_owned(),
                parent_id: parent,
                name: s["operationName"].as_str().unwrap_or_default().to_owned(),
                service: service_of(s["processID"].as_str().unwrap_or_default()),
                start_us: s["startTime"].as_i64().unwrap_or_default(),
                duration_us: s["duration"].as_i64().unwrap_or_default(),
                tags: key_values(&s["tags"]),
                events: s["logs"]
                    .as_array()
                    .map(|logs| {
                        logs.iter()
                            .map(|l| (l["timestamp"].as_i64().unwrap_or_default(), key_values(&l["fields"])))
                            .collect()
                    })
                    .unwrap_or_default(),
            });
        }
        Ok(Trace::new(trace_id, spans, resources))
    }

    /// Builds the tree from spans in any order.
    pub fn new(trace_id: String, mut spans: Vec<Span>, resources: Vec<(String, Vec<(String, Value)>)>) -> Trace {
        spans.sort_by(|a, b| a.start_us.cmp(&b.start_us).then(a.span_id.cmp(&b.span_id)));
        let index: HashMap<&str, usize> = spans.iter().enumerate().map(|(i, s)| (s.span_id.as_str(), i)).collect();
        let mut children = vec![Vec::new(); spans.len()];
        let mut roots = Vec::new();
        let mut orphans = 0;
        for (i, span) in spans.iter().enumerate() {
            match span.parent_id.as_deref().and_then(|p| index.get(p)) {
                Some(&parent) if parent != i => children[parent].push(i),
                _ => {
                    if span.parent_id.is_some() {
                        orphans += 1;
                    }
                    roots.push(i);
                }
            }
        }
        Trace { trace_id, spans, children, roots, orphans, resources }
    }

    pub fn start_us(&self) -> i64 {
        self.spans.iter().map(|s| s.start_us).min().unwrap_or_default()
    }

    pub fn end_us(&self) -> i64 {
        self.spans.iter().map(Span::end_us).max().unwrap_or_default()
    }

    pub fn duration_us(&self) -> i64 {
        self.end_us() - self.start_us()
    }

    /// Distinct service names, in order of first appearance.
    pub fn services(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in &self.spans {
            if !out.contains(&s.service) {
                out.push(s.service.clone());
            }
        }
        out
    }

    /// The longest root (the request), if any.
    pub fn main_root(&self) -> Option<usize> {
        self.roots.iter().copied().max_by_key(|&r| (self.spans[r].duration_us, std::cmp::Reverse(r)))
    }

    /// Depth-first order with each span's depth: the order the tree is printed in.
    pub fn walk(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::with_capacity(self.spans.len());
        let mut stack: Vec<(usize, usize)> = self.roots.iter().rev().map(|&r| (r, 0)).collect();
        while let Some((i, depth)) = stack.pop() {
            out.push((i, depth));
            stack.extend(self.children[i].iter().rev().map(|&c| (c, depth + 1)));
        }
        out
    }

    /// A span's duration less the time covered by its children (overlaps counted once, clipped to it).
    pub fn self_time_us(&self, i: usize) -> i64 {
        let span = &self.spans[i];
        let (start, end) = (span.start_us, span.end_us());
        let mut covered: Vec<(i64, i64)> = self.children[i]
            .iter()
            .map(|&c| (self.spans[c].start_us.max(start), self.spans[c].end_us().min(end)))
            .filter(|(s, e)| e > s)
            .collect();
        covered.sort_unstable();
        let mut busy = 0;
        let mut cursor = start;
        for (s, e) in covered {
            let s = s.max(cursor);
            if e > s {
                busy += e - s;
                cursor = e;
            }
        }
        (end - start) - busy
    }

    /// The critical path of every root (see the module docs), latest segment first.
    pub fn critical_path(&self) -> Vec<Segment> {
        let mut out = Vec::new();
        for &root in &self.roots {
            self.critical_from(root, self.spans[root].end_us(), &mut out);
        }
        out
    }

    fn critical_from(&self, i: usize, bound: i64, out: &mut Vec<Segment>) {
        let start = self.spans[i].start_us;
        let mut cursor = bound.min(self.spans[i].end_us());
        let mut candidates = self.children[i].clone();
        while cursor > start {
            let last = candidates
                .iter()
                .enumerate()
                .filter(|&(_, &c)| self.spans[c].start_us < cursor && self.spans[c].end_us() > start)
                .max_by_key(|&(_, &c)| (self.spans[c].end_us().min(cursor), self.spans[c].start_us))
                .map(|(pos, &c)| (pos, c));
            let Some((pos, child)) = last else {
                out.push(Segment { span: i, start_us: start, end_us: cursor });
                break;
            };
            candidates.swap_remove(pos);
            let child_end = self.spans[child].end_us().min(cursor);
            if child_end < cursor {
                out.push(Segment { span: i, start_us: child_end, end_us: cursor });
            }
            self.critical_from(child, child_end, out);
            cursor = self.spans[child].start_us.max(start);
        }
    }

    /// Time each span holds on the critical path, indexed like `spans`.
    pub fn critical_time_us(&self) -> Vec<i64> {
        let mut time = vec![0; self.spans.len()];
        for segment in self.critical_path() {
            time[segment.span] += segment.end_us - segment.start_us;
        }
        time
    }

    /// The span with the most time on the critical path, with that time: where the request spent it.
    pub fn dominant_span(&self) -> Option<(usize, i64)> {
        self.critical_time_us()
            .into_iter()
            .enumerate()
            .filter(|&(_, t)| t > 0)
            .max_by_key(|&(i, t)| (t, std::cmp::Reverse(i)))
            .or_else(|| self.main_root().map(|r| (r, 0)))
    }
}

/// Jaeger's `[{key, type, value}]` → `(key, value)` pairs.
fn key_values(list: &Value) -> Vec<(String, Value)> {
    list.as_array()
        .map(|items| {
            items.iter().filter_map(|kv| Some((kv["key"].as_str()?.to_owned(), kv["value"].clone()))).collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use serde_json::json;

    /// A span for tests: id, parent, start and duration in ms.
    pub(crate) fn span(id: &str, parent: Option<&str>, name: &str, start_ms: i64, duration_ms: i64) -> Span {
        Span {
            span_id: id.into(),
            parent_id: parent.map(Into::into),
            name: name.into(),
            service: "svc".into(),
            start_us: start_ms * 1000,
            duration_us: duration_ms * 1000,
            tags: Vec::new(),
            events: Vec::new(),
        }
    }

    fn trace(spans: Vec<Span>) -> Trace {
        Trace::new("t".into(), spans, Vec::new())
    }

    fn names(t: &Trace, idx: impl IntoIterator<Item = usize>) -> Vec<String> {
        idx.into_iter().map(|i| t.spans[i].name.clone()).collect()
    }

    #[test]
    fn builds_the_tree_from_spans_in_any_order() {
        let t = trace(vec![
            span("c", Some("a"), "generate", 30, 10),
            span("b", Some("a"), "retrieve", 10, 15),
            span("a", None, "handle", 0, 50),
            span("d", Some("b"), "embed", 11, 2),
        ]);
        assert_eq!(names(&t, t.roots.clone()), ["handle"]);
        let walk: Vec<(String, usize)> = t.walk().into_iter().map(|(i, d)| (t.spans[i].name.clone(), d)).collect();
        assert_eq!(walk, [("handle".into(), 0), ("retrieve".into(), 1), ("embed".into(), 2), ("generate".into(), 1)]);
        assert_eq!(t.orphans, 0);
    }

    #[test]
    fn a_span_whose_parent_was_not_exported_becomes_a_root_and_is_counted() {
        let t = trace(vec![span("a", None, "handle", 0, 50), span("x", Some("missing"), "late", 5, 5)]);
        assert_eq!(names(&t, t.roots.clone()), ["handle", "late"]);
        assert_eq!(t.orphans, 1);
    }

    #[test]
    fn self_time_subtracts_children_once_even_when_they_overlap() {
        let t = trace(vec![
            span("a", None, "root", 0, 100),
            span("b", Some("a"), "x", 10, 30), // 10..40
            span("c", Some("a"), "y", 20, 40), // 20..60, overlaps b
            span("d", Some("a"), "z", 90, 20), // 90..110, overruns the parent: clipped to 90..100
        ]);
        let root = t.spans.iter().position(|s| s.name == "root").unwrap();
        assert_eq!(t.self_time_us(root), (100 - 50 - 10) * 1000);
    }

    #[test]
    fn critical_path_of_a_sequential_pipeline_is_every_step_and_sums_to_the_root() {
        let t = trace(vec![
            span("a", None, "handle", 0, 100),
            span("b", Some("a"), "retrieve", 5, 20),
            span("c", Some("a"), "generate", 30, 65),
        ]);
        let time = t.critical_time_us();
        assert_eq!(time.iter().sum::<i64>(), 100_000);
        let by_name = |n: &str| time[t.spans.iter().position(|s| s.name == n).unwrap()];
        assert_eq!(by_name("generate"), 65_000);
        assert_eq!(by_name("retrieve"), 20_000);
        assert_eq!(by_name("handle"), 15_000);
        assert_eq!(t.spans[t.dominant_span().unwrap().0].name, "generate");
    }

    #[test]
    fn a_long_parallel_branch_that_finished_early_is_not_blamed() {
        // fast_tool runs alone at the end; slow_search ran in parallel with llm, which finished last.
        let t = trace(vec![
            span("r", None, "root", 0, 1000),
            span("s", Some("r"), "slow_search", 0, 600),
            span("l", Some("r"), "llm", 100, 700),       // 100..800
            span("t", Some("r"), "fast_tool", 800, 150), // 800..950
        ]);
        let time = t.critical_time_us();
        let by_name = |n: &str| time[t.spans.iter().position(|s| s.name == n).unwrap()];
        assert_eq!(by_name("fast_tool"), 150_000);
        assert_eq!(by_name("llm"), 700_000);
        assert_eq!(by_name("slow_search"), 100_000, "only the part before llm started holds the path");
        assert_eq!(by_name("root"), 50_000);
        assert_eq!(t.spans[t.dominant_span().unwrap().0].name, "llm");
        // Self time would have said something else: the root's own time and slow_search's are not the answer.
        let search = t.spans.iter().position(|s| s.name == "slow_search").unwrap();
        assert_eq!(t.self_time_us(search), 600_000);
    }

    #[test]
    fn nested_critical_path_descends_into_the_slow_child() {
        let t = trace(vec![
            span("r", None, "handle", 0, 100),
            span("g", Some("r"), "generate", 10, 90),
            span("c", Some("g"), "llm.call", 20, 75), // 20..95
        ]);
        let (dominant, time) = t.dominant_span().unwrap();
        assert_eq!(t.spans[dominant].name, "llm.call");
        assert_eq!(time, 75_000);
        let path: Vec<String> = names(&t, t.critical_path().iter().map(|s| s.span));
        assert!(path.contains(&"generate".to_owned()) && path.contains(&"handle".to_owned()), "{path:?}");
    }

    #[test]
    fn single_span_and_empty_traces() {
        let t = trace(vec![span("a", None, "only", 0, 7)]);
        assert_eq!(t.dominant_span(), Some((0, 7000)));
        let t = trace(vec![span("a", None, "instant", 0, 0)]);
        assert_eq!(t.dominant_span(), Some((0, 0)));
        assert_eq!(trace(Vec::new()).dominant_span(), None);
    }

    #[test]
    fn parses_jaegers_json() {
        let json = json!({
            "traceID": "abc",
            "spans": [
                {"traceID": "abc", "spanID": "1", "operationName": "handle_user_query", "references": [],
                 "startTime": 1_000, "duration": 50_000, "processID": "p1",
                 "tags": [{"key": "user.anonymous_id", "type": "string", "value": "anon:42"}], "logs": []},
                {"traceID": "abc", "spanID": "2", "operationName": "call_tool.get_order_status",
                 "references": [{"refType": "FOLLOWS_FROM", "traceID": "other", "spanID": "9"},
                                {"refType": "CHILD_OF", "traceID": "abc", "spanID": "1"}],
                 "startTime": 2_000, "duration": 10_000, "processID": "p1",
                 "tags": [{"key": "error", "type": "bool", "value": true},
                          {"key": "otel.status_code", "type": "string", "value": "ERROR"}],
                 "logs": [{"timestamp": 3_000, "fields": [
                     {"key": "event", "type": "string", "value": "exception"},
                     {"key": "exception.type", "type": "string", "value": "ToolError"},
                     {"key": "exception.message", "type": "string", "value": "order 7 was not found"}]}]}
            ],
            "processes": {"p1": {"serviceName": "rag", "tags": [{"key": "host.name", "type": "string", "value": "h"}]}}
        });
        let t = Trace::from_jaeger(&json).unwrap();
        assert_eq!(t.services(), ["rag"]);
        assert_eq!(t.roots.len(), 1);
        let tool = &t.spans[1];
        assert_eq!(tool.parent_id.as_deref(), Some("1"), "the link to another trace is not the parent");
        assert!(tool.is_error());
        assert_eq!(tool.error_message().as_deref(), Some("order 7 was not found"));
        assert_eq!(tool.exception(), Some((Some("ToolError".into()), Some("order 7 was not found".into()))));
        assert_eq!(t.spans[0].tag_text("user.anonymous_id").as_deref(), Some("anon:42"));
        assert_eq!(t.resources[0].1[0].0, "host.name");
        assert_eq!(t.duration_us(), 50_000);
    }
}
