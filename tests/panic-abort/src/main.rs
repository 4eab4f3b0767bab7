//! Annotated sync and async functions in a `panic = "abort"` build.
//!
//! `kotaemon-trace-panic-abort` with no argument traces a few calls and checks every span arrived with
//! its parent and attributes, then re-runs itself with `panic` and checks that child aborts (SIGABRT)
//! after the panic message was printed: the panic hook kotaemon-trace installs must neither hide the
//! message nor hang the abort.
#![forbid(unsafe_code)]

use kotaemon_trace::config::Config;
use kotaemon_trace::{init_with, trace_with_otel};
use opentelemetry_sdk::trace::InMemorySpanExporter;
use std::process::{Command, ExitCode};

#[derive(Debug)]
struct Failure;

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("no documents")
    }
}

#[trace_with_otel("retriever.invoke", fields(retriever.k = k as i64), ret, err)]
fn retrieve(query: &str, k: usize) -> Result<usize, Failure> {
    if query.is_empty() {
        return Err(Failure);
    }
    Ok(k)
}

#[trace_with_otel("handle_user_query")]
async fn answer(question: &str) -> usize {
    tokio::task::yield_now().await;
    retrieve(question, 3).unwrap_or(0)
}

#[trace_with_otel("will_panic")]
fn will_panic(reason: &str) {
    panic!("deliberate: {reason}");
}

fn main() -> ExitCode {
    const { assert!(cfg!(panic = "abort"), "this crate must be built with panic = \"abort\"") };
    let exporter = InMemorySpanExporter::default();
    let guard = init_with(Config::builder().span_exporter(exporter.clone()).build()).expect("init");
    if std::env::args().nth(1).as_deref() == Some("panic") {
        will_panic("abort build");
        unreachable!("a panic aborts");
    }

    let runtime = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    assert_eq!(runtime.block_on(answer("refund policy")), 3);
    assert!(retrieve("", 1).is_err());
    guard.force_flush().expect("flush");
    let spans = exporter.get_finished_spans().expect("spans");
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
    assert_eq!(names, ["retriever.invoke", "handle_user_query", "retriever.invoke"], "{names:?}");
    assert_eq!(spans[0].parent_span_id, spans[1].span_context.span_id(), "the sync child of the async fn");
    assert!(spans[0].attributes.iter().any(|kv| kv.key.as_str() == "retriever.k"));
    assert_eq!(spans[2].status, opentelemetry::trace::Status::error("no documents"));
    guard.shutdown().expect("shutdown");

    let exe = std::env::current_exe().expect("own path");
    let child = Command::new(exe).arg("panic").output().expect("run the panicking child");
    let stderr = String::from_utf8_lossy(&child.stderr);
    assert!(stderr.contains("deliberate: abort build"), "the panic message is printed: {stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(child.status.signal(), Some(6), "the child aborts (SIGABRT): {:?}", child.status);
    }
    #[cfg(not(unix))]
    assert!(!child.status.success());
    println!("panic-abort: 3 spans from sync and async fns; a panic aborts with its message");
    ExitCode::SUCCESS
}
