//! The terminal tree of a trace: one line per span with its duration and error, the critical path marked
//! with `*` in the first column and the span that took most of the time named. Plain text: readable
//! without colour, in logs and CI output.

use crate::duration::human_us;
use crate::trace::{Span, Trace};

/// What to show on each line besides name, duration and error.
pub type Details<'a> = &'a dyn Fn(&Span) -> String;

/// Renders the tree. Lines start with `*` for spans on the critical path; the dominant span gets
/// `<- slowest: X of the critical path`.
pub fn tree(trace: &Trace, details: Details<'_>) -> String {
    let on_path = trace.critical_time_us();
    let total: i64 = on_path.iter().sum();
    let dominant = trace.dominant_span().filter(|&(_, t)| t > 0).map(|(i, _)| i);
    let mut out = String::new();
    // For each depth, whether the ancestor at that depth still has siblings below (draws the `│`).
    let mut open: Vec<bool> = Vec::new();
    let order = trace.walk();
    for (pos, &(i, depth)) in order.iter().enumerate() {
        let span = &trace.spans[i];
        let is_last = order[pos + 1..].iter().take_while(|&&(_, d)| d >= depth).all(|&(_, d)| d != depth);
        open.truncate(depth);
        let mut prefix = String::new();
        if depth > 0 {
            for &more in &open[1..] {
                prefix.push_str(if more { "│  " } else { "   " });
            }
            prefix.push_str(if is_last { "└─ " } else { "├─ " });
        }
        open.push(!is_last);
        let mark = if on_path[i] > 0 { '*' } else { ' ' };
        out.push_str(&format!("{mark} {prefix}{}  {}", span.name, human_us(span.duration_us)));
        if let Some(message) = span.error_message() {
            out.push_str(&format!("  ERROR: {message}"));
        }
        let extra = details(span);
        if !extra.is_empty() {
            out.push_str("  ");
            out.push_str(&extra);
        }
        if Some(i) == dominant && total > 0 {
            out.push_str(&format!(
                "  <- slowest: {} of {} on the critical path ({}%)",
                human_us(on_path[i]),
                human_us(total),
                on_path[i] * 100 / total
            ));
        }
        out.push('\n');
    }
    if trace.orphans > 0 {
        out.push_str(&format!(
            "  ({} span(s) name a parent that is not in the trace: not exported, or still arriving)\n",
            trace.orphans
        ));
    }
    out
}

/// No details.
pub fn no_details(_: &Span) -> String {
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::tests::span;
    use serde_json::json;

    #[test]
    fn draws_the_tree_marks_the_path_and_names_the_slowest_step() {
        let mut tool = span("t", Some("r"), "call_tool.get_order_status", 10, 15);
        tool.tags.push(("error".into(), json!(true)));
        tool.tags.push(("otel.status_description".into(), json!("order ORD-9 was not found")));
        let trace = Trace::new(
            "t".into(),
            vec![
                span("r", None, "handle_user_query", 0, 100),
                span("a", Some("r"), "retrieve", 1, 8),
                span("e", Some("a"), "embed", 2, 1),
                tool,
                span("g", Some("r"), "generate.response", 30, 69),
            ],
            Vec::new(),
        );
        let text = tree(&trace, &|s: &Span| if s.name == "retrieve" { "k=4".into() } else { String::new() });
        let expected = "\
* handle_user_query  100.00 ms
* ├─ retrieve  8.00 ms  k=4
* │  └─ embed  1.00 ms
* ├─ call_tool.get_order_status  15.00 ms  ERROR: order ORD-9 was not found
* └─ generate.response  69.00 ms  <- slowest: 69.00 ms of 100.00 ms on the critical path (69%)
";
        assert_eq!(text, expected);
    }

    #[test]
    fn parallel_branches_off_the_path_are_not_marked_and_orphans_are_reported() {
        let trace = Trace::new(
            "t".into(),
            vec![
                span("r", None, "root", 0, 100),
                span("a", Some("r"), "short_parallel", 10, 20),
                span("b", Some("r"), "long", 5, 90),
                span("x", Some("gone"), "orphan", 50, 1),
            ],
            Vec::new(),
        );
        let text = tree(&trace, &no_details);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("* root"), "{text}");
        assert!(lines[1].starts_with("* ├─ long"), "{text}");
        assert!(lines[2].starts_with("  └─ short_parallel"), "{text}");
        assert!(lines[3].starts_with("* orphan"), "an orphan is shown as a root of its own: {text}");
        assert!(text.contains("1 span(s) name a parent that is not in the trace"), "{text}");
    }
}
