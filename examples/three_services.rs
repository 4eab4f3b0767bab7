//! Three services, one trace: a RAG API (axum) that calls a tool service over HTTP (reqwest) and a model
//! service over gRPC (tonic), each its own process and its own `service.name`, traced by the
//! integrations alone: no span is written by hand at any edge.
//!
//! ```text
//! rag-api   POST /ask                 SERVER   (integrations::tower::ServerLayer)
//!           └─ rag.answer             INTERNAL (#[trace_with_otel])
//!              ├─ GET                 CLIENT   (integrations::reqwest::TracingMiddleware)
//!              │  rag-tool  GET /orders/{id}      SERVER   (ServerLayer)
//!              │            └─ lookup_order       TOOL
//!              └─ rag.Llm/Generate    CLIENT   (integrations::tonic::ClientLayer)
//!                 rag-llm   rag.Llm/Generate      SERVER   (ServerLayer, gRPC recognised)
//!                           └─ generate.response  LLM
//! ```
//!
//! Run each in its own terminal (any free ports; each prints the address it listens on):
//!
//! ```text
//! cargo run --example three_services -- llm  --listen 127.0.0.1:50051
//! cargo run --example three_services -- tool --listen 127.0.0.1:8081
//! cargo run --example three_services -- api  --listen 127.0.0.1:8080 --tool http://127.0.0.1:8081 --llm http://127.0.0.1:50051
//! curl -s localhost:8080/ask -H 'content-type: application/json' -d '{"question": "where is ORD-1042?"}'
//! ```
//!
//! The order `ORD-9999` makes the tool service fail with HTTP 500 (its database is "down"), which the API
//! answers with 502: the tool's SERVER span, the API's CLIENT span and its SERVER span are errors.
//! Tracing is configured by `OTEL_*` as for any kotaemon-trace program; the service names default to
//! `rag-api`, `rag-tool` and `rag-llm`. On SIGINT or SIGTERM each stops, flushes its spans and exits 0.
#![forbid(unsafe_code)]

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use kotaemon_trace::config::{Config, Origin};
use kotaemon_trace::integrations::{reqwest::TracingMiddleware, tonic::ClientLayer, tower::ServerLayer};
use kotaemon_trace::{llm, tool, trace_with_otel};
use std::convert::Infallible;
use std::future::Future;
use std::io::Write as _;
use std::pin::Pin;
use std::process::ExitCode;
use std::time::Duration;

// ---- the model service's protocol: hand-written prost messages, tonic's codec, no code generation ----

#[derive(Clone, PartialEq, prost::Message)]
struct Prompt {
    #[prost(string, tag = "1")]
    question: String,
    #[prost(string, tag = "2")]
    context: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Completion {
    #[prost(string, tag = "1")]
    text: String,
}

const GENERATE: &str = "/rag.Llm/Generate";

// ---- rag-llm ----

#[trace_with_otel("generate.response", kind = "llm", skip_all)]
async fn generate(question: &str, context: &str) -> String {
    llm::provider("template");
    llm::model("template-llm-small");
    llm::prompt(question);
    tokio::time::sleep(Duration::from_millis(15)).await; // the model
    let answer =
        if context.is_empty() { "I could not find that.".to_owned() } else { format!("Your order: {context}.") };
    llm::completion(&answer);
    llm::usage((question.len() / 4) as u64, (answer.len() / 4) as u64);
    answer
}

/// `rag.Llm/Generate`, written against tonic's server API directly.
#[derive(Clone)]
struct LlmService;

impl tonic::server::NamedService for LlmService {
    const NAME: &'static str = "rag.Llm";
}

impl<B> tower::Service<http::Request<B>> for LlmService
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        Box::pin(async move {
            if request.uri().path() != GENERATE {
                return Ok(tonic::Status::unimplemented("rag.Llm has only Generate").into_http());
            }
            let method = tower::service_fn(|request: tonic::Request<Prompt>| async move {
                let prompt = request.into_inner();
                let text = generate(&prompt.question, &prompt.context).await;
                Ok::<_, tonic::Status>(tonic::Response::new(Completion { text }))
            });
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::<Completion, Prompt>::default());
            Ok(grpc.unary(method, request).await)
        })
    }
}

async fn serve_llm(listener: tokio::net::TcpListener) -> Result<(), String> {
    tonic::transport::Server::builder()
        .layer(ServerLayer::new())
        .add_service(LlmService)
        .serve_with_incoming_shutdown(tonic::transport::server::TcpIncoming::from(listener), stop_signal())
        .await
        .map_err(|e| e.to_string())
}

// ---- rag-tool ----

#[trace_with_otel("lookup_order", kind = "tool", err)]
async fn lookup_order(order_id: &str) -> Result<&'static str, String> {
    tool::call("get_order_status", "call-1", &format!(r#"{{"order_id":"{order_id}"}}"#));
    tokio::time::sleep(Duration::from_millis(5)).await; // the order database
    match order_id {
        "ORD-9999" => Err("the order database is unavailable".to_owned()),
        _ => Ok("shipped on Monday"),
    }
}

async fn order(Path(order_id): Path<String>) -> (StatusCode, String) {
    match lookup_order(&order_id).await {
        Ok(status) => (StatusCode::OK, status.to_owned()),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error),
    }
}

// ---- rag-api ----

type LlmClient = tonic::client::Grpc<kotaemon_trace::integrations::tonic::ClientService<tonic::transport::Channel>>;

#[derive(Clone)]
struct Api {
    http: reqwest_middleware::ClientWithMiddleware,
    tool: String,
    llm: LlmClient,
}

#[derive(Debug)]
enum AskError {
    Tool(String),
    Llm(String),
}

impl std::fmt::Display for AskError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AskError::Tool(e) => write!(f, "the tool service failed: {e}"),
            AskError::Llm(e) => write!(f, "the model service failed: {e}"),
        }
    }
}

#[trace_with_otel("rag.answer", skip(api), err)]
async fn answer(api: &Api, question: &str) -> Result<String, AskError> {
    let order_id = question.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')).find(|w| w.starts_with("ORD-"));
    let context = match order_id {
        Some(order_id) => {
            let response = api
                .http
                .get(format!("{}/orders/{order_id}", api.tool))
                .send()
                .await
                .map_err(|e| AskError::Tool(e.to_string()))?;
            let status = response.status();
            let body = response.text().await.map_err(|e| AskError::Tool(e.to_string()))?;
            if !status.is_success() {
                return Err(AskError::Tool(format!("{status}: {body}")));
            }
            body
        }
        None => String::new(),
    };
    let mut llm = api.llm.clone();
    llm.ready().await.map_err(|e| AskError::Llm(e.to_string()))?;
    let prompt = Prompt { question: question.to_owned(), context };
    let codec = tonic_prost::ProstCodec::<Prompt, Completion>::default();
    let path = http::uri::PathAndQuery::from_static(GENERATE);
    let completion =
        llm.unary(tonic::Request::new(prompt), path, codec).await.map_err(|e| AskError::Llm(e.message().to_owned()))?;
    Ok(completion.into_inner().text)
}

#[derive(serde::Deserialize)]
struct AskRequest {
    question: String,
}

#[derive(serde::Serialize)]
struct AskResponse {
    answer: Option<String>,
    error: Option<String>,
    /// The trace this request was recorded under.
    trace_id: Option<String>,
}

async fn ask(State(api): State<Api>, Json(request): Json<AskRequest>) -> (StatusCode, Json<AskResponse>) {
    let trace_id = kotaemon_trace::current_trace_id();
    match answer(&api, &request.question).await {
        Ok(text) => (StatusCode::OK, Json(AskResponse { answer: Some(text), error: None, trace_id })),
        Err(error) => {
            (StatusCode::BAD_GATEWAY, Json(AskResponse { answer: None, error: Some(error.to_string()), trace_id }))
        }
    }
}

async fn serve_http(listener: tokio::net::TcpListener, router: Router) -> Result<(), String> {
    axum::serve(listener, router.layer(ServerLayer::new()))
        .with_graceful_shutdown(stop_signal())
        .await
        .map_err(|e| e.to_string())
}

// ---- the process ----

/// Resolves on SIGINT or SIGTERM.
async fn stop_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
}

const USAGE: &str = "usage: three_services llm|tool --listen ADDR
       three_services api --listen ADDR --tool URL --llm URL";

struct Args {
    role: String,
    listen: String,
    tool: Option<String>,
    llm: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let role = args.next().ok_or(USAGE)?;
    if !matches!(role.as_str(), "api" | "tool" | "llm") {
        return Err(format!("unknown role {role:?}\n{USAGE}"));
    }
    let (mut listen, mut tool, mut llm) = ("127.0.0.1:0".to_owned(), None, None);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        match flag.as_str() {
            "--listen" => listen = value,
            "--tool" => tool = Some(value),
            "--llm" => llm = Some(value),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if role == "api" && (tool.is_none() || llm.is_none()) {
        return Err(format!("the api needs --tool and --llm\n{USAGE}"));
    }
    Ok(Args { role, listen, tool, llm })
}

/// One status line on stdout, flushed at once (tests and scripts read them).
fn say(role: &str, line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "three_services {role}: {line}");
    let _ = out.flush();
}

async fn run(args: Args) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(&args.listen).await.map_err(|e| format!("{}: {e}", args.listen))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    say(&args.role, &format!("listening on {address}"));
    match args.role.as_str() {
        "llm" => serve_llm(listener).await,
        "tool" => serve_http(listener, Router::new().route("/orders/{id}", get(order))).await,
        _ => {
            let http =
                reqwest_middleware::ClientBuilder::new(reqwest::Client::new()).with(TracingMiddleware::new()).build();
            let llm_url = args.llm.unwrap_or_default();
            let channel = tonic::transport::Endpoint::from_shared(llm_url.clone())
                .map_err(|e| format!("--llm {llm_url:?}: {e}"))?
                .connect_lazy();
            let llm = tonic::client::Grpc::new(tower::ServiceBuilder::new().layer(ClientLayer::new()).service(channel));
            let api = Api { http, tool: args.tool.unwrap_or_default(), llm };
            serve_http(listener, Router::new().route("/ask", post(ask)).with_state(api)).await
        }
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let role = args.role.clone();
    let config = match Config::load() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("three_services {role}: {error}");
            return ExitCode::FAILURE;
        }
    };
    let named = !matches!(config.origin("OTEL_SERVICE_NAME"), Origin::Default)
        || !matches!(config.origin("OTEL_RESOURCE_ATTRIBUTES"), Origin::Default);
    let config = if named { config } else { config.into_builder().service_name(format!("rag-{role}")).build() };
    let guard = match kotaemon_trace::init_with(config) {
        Ok(guard) => guard,
        Err(error) => {
            eprintln!("three_services {role}: tracing could not start: {error}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("three_services {role}: cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let served = runtime.block_on(run(args));
    // The runtime is gone before the flush: the guard's shutdown blocks, and must not run on it.
    drop(runtime);
    let code = match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("three_services {role}: {error}");
            ExitCode::FAILURE
        }
    };
    match guard.shutdown() {
        Ok(()) => say(&role, "every span flushed"),
        Err(error) => eprintln!("three_services {role}: flushing the spans: {error}"),
    }
    code
}
