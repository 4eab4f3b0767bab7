//! The RAG pipeline as a small HTTP service: `POST /ask` with `{"question": "...", "user_phone": "..."}`.
//!
//! ```text
//! POST /ask                          SERVER   (continues the caller's `traceparent`; the caller as a pseudonym)
//! ├─ extract_intent                  CHAIN
//! ├─ retrieve.customer_history       RETRIEVER
//! ├─ retrieve.knowledge_base         RETRIEVER
//! ├─ rerank                          RERANKER
//! ├─ call_tool.get_order_status      TOOL, CLIENT   (an unknown order fails here: HTTP 502)
//! │  or call_tool.create_return      TOOL, CLIENT
//! └─ generate.response               LLM, CLIENT    (refund questions go to the slow, large model)
//! ```
//!
//! What a question does is decided by its text, so a fixed list of questions is a fixed mix of fast,
//! slow and failing requests (see `examples/rag_load.rs`):
//!
//! | question mentions | path | time |
//! |---|---|---|
//! | a known order (`ORD-1042`, `ORD-2077`) | `get_order_status`, small model | ~50 ms |
//! | an unknown order (`ORD-9999`) | `get_order_status` fails, HTTP 502 | ~30 ms |
//! | "return" with an order | `create_return`, small model | ~50 ms |
//! | "refund" | large model (`--slow-ms`, default 400 ms): the step that dominates the trace | ~420 ms |
//! | anything else | small model | ~40 ms |
//!
//! Run it with `cargo run --example rag_service` (see docs/stacks.md):
//!
//! | flag | environment | default |
//! |---|---|---|
//! | `--listen ADDR` | `RAG_SERVICE_ADDR` | `127.0.0.1:8080` (port 0: any free port, printed) |
//! | `--max-requests N` | `RAG_SERVICE_MAX_REQUESTS` | none: serve until SIGINT/SIGTERM |
//! | `--slow-ms MS` | `RAG_SERVICE_SLOW_MS` | `400` |
//! | `--log-file PATH` | `RAG_SERVICE_LOG_FILE` | JSON logs (with `trace_id`) on stdout |
//!
//! Tracing is configured as for any kotaemon-trace program (`OTEL_*`, `kotaemon-trace.toml`); the service
//! name defaults to `rag-service`, and metrics default to a Prometheus scrape endpoint on
//! `OTEL_EXPORTER_PROMETHEUS_HOST:PORT` (127.0.0.1:9464) unless `OTEL_METRICS_EXPORTER` says otherwise.
//! The `X-Debug-Tracing: true` header forces a trace whatever the sampler says.
//!
//! On SIGINT, SIGTERM or after `--max-requests` answers it stops accepting, finishes the requests in
//! flight, flushes every span and exits 0.
#![forbid(unsafe_code)]

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use kotaemon_trace::config::{Config, ConfigFileError, Origin};
use kotaemon_trace::{llm, propagation, record, tool, trace_with_otel};

#[path = "shared/rag_steps.rs"]
mod rag_steps;
use rag_steps::{
    Doc, Intent, ToolError, extract_intent, get_order_status, rerank, retrieve, retrieve_customer_history,
};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::watch;

/// The model for questions that need long reasoning; `--slow-ms` is its latency.
const LARGE_MODEL: &str = "template-llm-large";
/// The model for everything else.
const SMALL_MODEL: &str = "template-llm-small";

#[trace_with_otel("call_tool.create_return", kind = "tool", err)]
async fn create_return(order_id: &str) -> Result<&'static str, ToolError> {
    tool::call("create_return", "call-return", &format!(r#"{{"order_id":"{order_id}"}}"#));
    tokio::time::sleep(Duration::from_millis(12)).await; // the returns service
    match order_id {
        "ORD-1042" | "ORD-2077" => Ok("return label sent by email"),
        other => Err(ToolError::UnknownOrder(other.to_owned())),
    }
}

#[trace_with_otel("generate.response", kind = "llm", skip_all)]
async fn generate(question: &str, docs: &[Doc], tool_result: Option<&str>, model: &str, latency: Duration) -> String {
    llm::provider("template");
    llm::model(model);
    llm::parameters(0.0, 256);
    llm::prompt(question); // recorded only with content capture on, and redacted
    tokio::time::sleep(latency).await; // the model
    let context: Vec<&str> = docs.iter().map(|d| d.text).collect();
    let answer = match tool_result {
        Some(result) => format!("Your order: {result}."),
        None if context.is_empty() => "I could not find anything about that.".to_owned(),
        None => format!("From our policies: {}", context.join(" ")),
    };
    llm::completion(&answer);
    // A large model reads a longer prompt (its system prompt and reasoning), so it uses more tokens.
    let scale = if model == LARGE_MODEL { 6 } else { 1 };
    llm::usage(scale * ((question.len() + context.concat().len()) / 4) as u64, scale * (answer.len() / 4) as u64);
    llm::finish_reason("stop");
    answer
}

/// What the pipeline answered, and on which trace.
struct Answered {
    answer: String,
    model: &'static str,
    trace_id: Option<String>,
}

/// A failed request, and on which trace.
#[derive(Debug)]
struct Failed {
    error: ToolError,
    trace_id: Option<String>,
}

impl fmt::Display for Failed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.error.fmt(f)
    }
}

/// The request's SERVER span: the pipeline, start to end. `user_phone` is recorded only as a keyed
/// pseudonym, so the trace says who asked without the number ever leaving the process.
#[trace_with_otel(
    "POST /ask",
    span_kind = "server",
    skip(slow),
    redact(user_phone),
    fields(http.request.method = "POST", http.route = "/ask"),
    err
)]
async fn ask_pipeline(user_phone: &str, question: &str, slow: Duration) -> Result<Answered, Failed> {
    let trace_id = kotaemon_trace::current_trace_id();
    let intent = extract_intent(question);
    let recent_orders = retrieve_customer_history(user_phone).await;
    record("customer.recent_orders", recent_orders.len());
    let docs = rerank(retrieve(question, 4).await);
    let tool_result = match &intent {
        Intent::OrderStatus { order_id } => Some(get_order_status(order_id).await),
        Intent::Return { order_id } => Some(create_return(order_id).await),
        Intent::Refunds | Intent::Policy => None,
    };
    let tool_result = match tool_result {
        Some(Err(error)) => {
            tracing::warn!(error = %error, "tool call failed"); // a log line carrying this trace's id
            record("http.response.status_code", 502);
            return Err(Failed { error, trace_id });
        }
        Some(Ok(result)) => Some(result),
        None => None,
    };
    let (model, latency) =
        if intent == Intent::Refunds { (LARGE_MODEL, slow) } else { (SMALL_MODEL, Duration::from_millis(20)) };
    let answer = generate(question, &docs, tool_result, model, latency).await;
    tracing::info!(model, "answered");
    record("http.response.status_code", 200);
    Ok(Answered { answer, model, trace_id })
}

#[derive(Deserialize)]
struct AskRequest {
    question: String,
    #[serde(default)]
    user_phone: String,
}

#[derive(Serialize)]
struct AskResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    answer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    model: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// The trace this request was recorded under (the caller's, when it sent `traceparent`).
    trace_id: Option<String>,
    /// Whether the debug header forced this trace.
    debug_forced: bool,
}

struct App {
    slow: Duration,
    served: AtomicU64,
    max_requests: Option<u64>,
    /// Set to true when `--max-requests` answers have been given.
    done: watch::Sender<bool>,
}

async fn ask(State(app): State<Arc<App>>, headers: HeaderMap, Json(request): Json<AskRequest>) -> Response {
    // Continue the caller's trace, and grant a forced trace to the debug header.
    let parent = propagation::extract(&headers);
    let debug_forced = parent.is_debug_forced();
    let result = parent.instrument(ask_pipeline(&request.user_phone, &request.question, app.slow)).await;
    let response = match result {
        Ok(Answered { answer, model, trace_id }) => {
            let body = AskResponse { answer: Some(answer), model: Some(model), error: None, trace_id, debug_forced };
            (StatusCode::OK, Json(body)).into_response()
        }
        Err(Failed { error, trace_id }) => {
            let body =
                AskResponse { answer: None, model: None, error: Some(error.to_string()), trace_id, debug_forced };
            (StatusCode::BAD_GATEWAY, Json(body)).into_response()
        }
    };
    let served = app.served.fetch_add(1, Ordering::Relaxed) + 1;
    if app.max_requests.is_some_and(|max| served >= max) {
        let _ = app.done.send(true);
    }
    response
}

struct Args {
    listen: String,
    max_requests: Option<u64>,
    slow: Duration,
    log_file: Option<String>,
}

const USAGE: &str = "usage: rag_service [--listen ADDR] [--max-requests N] [--slow-ms MS] [--log-file PATH]
  --listen ADDR       address to serve on (env RAG_SERVICE_ADDR; default 127.0.0.1:8080; port 0 = any)
  --max-requests N    exit after answering N requests (env RAG_SERVICE_MAX_REQUESTS; default: never)
  --slow-ms MS        latency of the large model used for refund questions (env RAG_SERVICE_SLOW_MS; default 400)
  --log-file PATH     append JSON logs there instead of stdout (env RAG_SERVICE_LOG_FILE)";

fn parse_args() -> Result<Args, String> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut listen = env("RAG_SERVICE_ADDR").unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let mut max_requests = env("RAG_SERVICE_MAX_REQUESTS");
    let mut slow_ms = env("RAG_SERVICE_SLOW_MS").unwrap_or_else(|| "400".to_owned());
    let mut log_file = env("RAG_SERVICE_LOG_FILE");
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"));
        match flag.as_str() {
            "--listen" => listen = value()?,
            "--max-requests" => max_requests = Some(value()?),
            "--slow-ms" => slow_ms = value()?,
            "--log-file" => log_file = Some(value()?),
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let max_requests = match max_requests {
        Some(n) => Some(
            n.parse::<u64>().ok().filter(|&n| n > 0).ok_or(format!("--max-requests: {n:?} is not a count above 0"))?,
        ),
        None => None,
    };
    let slow = Duration::from_millis(
        slow_ms.parse().map_err(|_| format!("--slow-ms: {slow_ms:?} is not a number of milliseconds"))?,
    );
    Ok(Args { listen, max_requests, slow, log_file })
}

/// `OTEL_*` and `kotaemon-trace.toml` as usual, with this example's defaults: the service name
/// `rag-service`, and a Prometheus scrape endpoint unless metrics were configured.
fn config() -> Result<Config, ConfigFileError> {
    let config = Config::load()?;
    let name_given = !matches!(config.origin("OTEL_SERVICE_NAME"), Origin::Default)
        || !matches!(config.origin("OTEL_RESOURCE_ATTRIBUTES"), Origin::Default);
    let metrics_given = !matches!(config.origin("OTEL_METRICS_EXPORTER"), Origin::Default);
    let metrics = config.metrics().clone();
    let mut builder = config.into_builder();
    if !name_given {
        builder = builder.service_name("rag-service");
    }
    if !metrics_given {
        let host = std::env::var("OTEL_EXPORTER_PROMETHEUS_HOST").unwrap_or_else(|_| "127.0.0.1".to_owned());
        let port = std::env::var("OTEL_EXPORTER_PROMETHEUS_PORT").unwrap_or_else(|_| "9464".to_owned());
        let mut metrics = metrics;
        metrics.prometheus = Some(format!("{host}:{port}"));
        builder = builder.metrics(metrics);
    }
    Ok(builder.build())
}

/// JSON logs carrying `trace_id` / `span_id`, and `tracing` events as events on the current span.
fn install_logs(log_file: Option<&str>) -> std::io::Result<()> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let registry = tracing_subscriber::registry().with(kotaemon_trace::logs::span_events());
    match log_file {
        Some(path) => {
            let file = Arc::new(std::fs::OpenOptions::new().create(true).append(true).open(path)?);
            registry.with(kotaemon_trace::logs::json(move || Arc::clone(&file))).init();
        }
        None => registry.with(kotaemon_trace::logs::json(std::io::stdout)).init(),
    }
    Ok(())
}

/// Resolves when the service should stop: SIGINT, SIGTERM, or `--max-requests` reached.
async fn stop_signal(mut done: watch::Receiver<bool>) -> &'static str {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        () = terminate => "SIGTERM",
        _ = done.wait_for(|done| *done) => "--max-requests reached",
    }
}

async fn serve(args: &Args, app: Arc<App>) -> std::io::Result<u64> {
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    let address: SocketAddr = listener.local_addr()?;
    say(&format!("listening on http://{address} (POST /ask, GET /healthz)"));
    let router =
        Router::new().route("/ask", post(ask)).route("/healthz", get(|| async { "ok" })).with_state(Arc::clone(&app));
    let (reason_tx, reason_rx) = tokio::sync::oneshot::channel();
    let stop = stop_signal(app.done.subscribe());
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let _ = reason_tx.send(stop.await);
        })
        .await?;
    let reason = reason_rx.await.unwrap_or("the server stopped");
    say(&format!("stopping ({reason}) after {} requests", app.served.load(Ordering::Relaxed)));
    Ok(app.served.load(Ordering::Relaxed))
}

/// One status line on stdout, flushed at once (tests and scripts read them).
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "rag_service: {line}");
    let _ = out.flush();
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let guard =
        match config().map_err(|e| e.to_string()).and_then(|c| kotaemon_trace::init_with(c).map_err(|e| e.to_string()))
        {
            Ok(guard) => guard,
            Err(error) => {
                eprintln!("rag_service: tracing could not start: {error}");
                return ExitCode::FAILURE;
            }
        };
    if let Some(address) = guard.prometheus_address() {
        say(&format!("metrics on http://{address}/metrics"));
    }
    if let Err(error) = install_logs(args.log_file.as_deref()) {
        eprintln!("rag_service: cannot open the log file: {error}");
        return ExitCode::FAILURE;
    }
    let (done, _) = watch::channel(false);
    let app = Arc::new(App { slow: args.slow, served: AtomicU64::new(0), max_requests: args.max_requests, done });
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("rag_service: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let served = runtime.block_on(serve(&args, app));
    // The runtime is gone before the flush: the guard's shutdown blocks, and must not run on it.
    drop(runtime);
    let code = match served {
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rag_service: {} : {error}", args.listen);
            ExitCode::FAILURE
        }
    };
    match guard.shutdown() {
        Ok(()) => say("every span flushed"),
        Err(error) => eprintln!("rag_service: flushing the spans: {error}"),
    }
    code
}
