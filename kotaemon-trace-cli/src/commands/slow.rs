//! `slow --service NAME --min-duration 5s`: the slowest recent traces, each with the step that took most
//! of its time: the span with the largest share of the critical path (see `trace.rs` for why that and
//! not plain duration or self time).

use crate::duration::{human_us, short, utc_timestamp};
use crate::exit::{Fail, OK};
use crate::jaeger::{Client, Search, now_us, ui_link};
use crate::trace::Trace;
use serde_json::{Value, json};
use std::time::Duration;

/// How many matching traces are read from Jaeger before sorting by duration.
pub const SCAN: usize = 500;

pub struct Args {
    pub service: String,
    pub min_duration: Duration,
    pub limit: usize,
    pub lookback: Duration,
    pub json: bool,
}

/// One line of the report.
#[derive(Debug, PartialEq)]
pub struct Row {
    pub trace_id: String,
    pub start_us: i64,
    pub duration_us: i64,
    pub root: String,
    pub slowest: String,
    pub slowest_us: i64,
    pub errors: usize,
}

/// Traces at least `min` long, longest first, at most `limit`.
pub fn rank(traces: &[Trace], min: Duration, limit: usize) -> Vec<Row> {
    let min_us = min.as_micros() as i64;
    let mut rows: Vec<Row> = traces
        .iter()
        .filter(|t| !t.spans.is_empty() && t.duration_us() >= min_us)
        .map(|t| {
            let (slowest, slowest_us) =
                t.dominant_span().map(|(i, us)| (t.spans[i].name.clone(), us)).unwrap_or_default();
            Row {
                trace_id: t.trace_id.clone(),
                start_us: t.start_us(),
                duration_us: t.duration_us(),
                root: t.main_root().map(|r| t.spans[r].name.clone()).unwrap_or_default(),
                slowest,
                slowest_us,
                errors: t.spans.iter().filter(|s| s.is_error()).count(),
            }
        })
        .collect();
    rows.sort_by(|a, b| b.duration_us.cmp(&a.duration_us).then(a.trace_id.cmp(&b.trace_id)));
    rows.truncate(limit);
    rows
}

pub fn run(client: &Client, args: &Args) -> Result<u8, Fail> {
    let end = now_us();
    let search = Search {
        service: &args.service,
        start_us: end - args.lookback.as_micros() as i64,
        end_us: end + 60_000_000,
        min_duration: Some(args.min_duration),
        limit: SCAN,
    };
    let found = client.search(&search)?;
    let traces: Vec<Trace> = found.iter().filter_map(|t| Trace::from_jaeger(t).ok()).collect();
    let rows = rank(&traces, args.min_duration, args.limit);
    if args.json {
        let out: Vec<Value> = rows
            .iter()
            .map(|r| {
                json!({
                    "trace_id": r.trace_id, "start_time_us": r.start_us, "duration_us": r.duration_us, "root": r.root,
                    "slowest_step": r.slowest, "slowest_step_critical_path_us": r.slowest_us, "errors": r.errors,
                    "jaeger_ui": ui_link(&client.url, &r.trace_id),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&json!({"service": args.service, "traces": out})).unwrap_or_default()
        );
        return Ok(OK);
    }
    print!("{}", table(&rows, args, &client.url));
    Ok(OK)
}

fn table(rows: &[Row], args: &Args, url: &str) -> String {
    let mut out = format!(
        "Traces of {} taking at least {} in the last {} (slowest first):\n",
        args.service,
        short(args.min_duration),
        short(args.lookback)
    );
    if rows.is_empty() {
        out.push_str("  none. Jaeger has no trace of this service that long in that window.\n");
        return out;
    }
    out.push_str(&format!(
        "{:>10}  {:<32}  {:<23}  {:<24}  SLOWEST STEP (share of the critical path)\n",
        "DURATION", "TRACE ID", "STARTED", "ROOT"
    ));
    for r in rows {
        let share = if r.duration_us > 0 { r.slowest_us * 100 / r.duration_us } else { 0 };
        let errors = if r.errors > 0 { format!("  [{} error(s)]", r.errors) } else { String::new() };
        out.push_str(&format!(
            "{:>10}  {:<32}  {:<23}  {:<24}  {}  {} ({share}%){errors}\n",
            human_us(r.duration_us),
            r.trace_id,
            utc_timestamp(r.start_us).trim_end_matches(" UTC"),
            r.root,
            r.slowest,
            human_us(r.slowest_us),
        ));
    }
    out.push_str(&format!("Open one with `kotaemon-trace explain <trace id>` or {}\n", ui_link(url, "<trace id>")));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::tests::span;

    fn t(id: &str, spans: Vec<crate::trace::Span>) -> Trace {
        Trace::new(id.into(), spans, Vec::new())
    }

    #[test]
    fn ranks_long_traces_and_names_the_step_holding_the_time() {
        let traces = vec![
            t("fast", vec![span("a", None, "handle", 0, 900)]),
            t(
                "slow",
                vec![
                    span("a", None, "handle", 0, 6000),
                    span("b", Some("a"), "retrieve", 10, 400),
                    span("c", Some("a"), "generate.response", 500, 5400),
                ],
            ),
            t("slower", vec![span("a", None, "handle", 0, 8000), span("b", Some("a"), "call_tool.search", 0, 7500)]),
        ];
        let rows = rank(&traces, Duration::from_secs(5), 10);
        let got: Vec<(&str, &str, i64)> =
            rows.iter().map(|r| (r.trace_id.as_str(), r.slowest.as_str(), r.slowest_us)).collect();
        assert_eq!(got, [("slower", "call_tool.search", 7_500_000), ("slow", "generate.response", 5_400_000)]);
        assert_eq!(rows[0].root, "handle");
        assert_eq!(rank(&traces, Duration::from_secs(5), 1).len(), 1, "the limit applies");
    }

    #[test]
    fn the_table_is_plain_text_with_shares() {
        let rows = rank(
            &[t("abc", vec![span("a", None, "handle", 0, 6000), span("c", Some("a"), "generate", 600, 5400)])],
            Duration::from_secs(5),
            10,
        );
        let args = Args {
            service: "rag".into(),
            min_duration: Duration::from_secs(5),
            limit: 10,
            lookback: Duration::from_secs(3600),
            json: false,
        };
        let text = table(&rows, &args, "http://j");
        assert!(text.starts_with("Traces of rag taking at least 5s in the last 1h"), "{text}");
        assert!(text.contains("generate  5.40 s (90%)"), "{text}");
        let empty = table(&[], &args, "http://j");
        assert!(empty.contains("none."), "{empty}");
    }
}
