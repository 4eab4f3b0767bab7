//! The integrations against real servers and clients on loopback: an axum server behind the tower layer,
//! a reqwest client with the middleware, a tonic server and client; spans captured through the crate's
//! own pipeline (`kotaemon_trace::testing`).

mod three_services;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::Router;
use kotaemon_trace::integrations::reqwest::TracingMiddleware;
use kotaemon_trace::integrations::tonic::ClientLayer;
use kotaemon_trace::integrations::tower::ServerLayer;
use kotaemon_trace::opentelemetry::trace::{SpanKind, Status, TraceContextExt as _, TraceId};
use kotaemon_trace::opentelemetry_sdk::trace::SpanData;
use kotaemon_trace::{testing, trace_with_otel};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::{Duration, Instant};

type Client = reqwest_middleware::ClientWithMiddleware;

fn traced_client() -> Client {
    reqwest_middleware::ClientBuilder::new(reqwest::Client::new()).with(TracingMiddleware::new()).build()
}

/// Serves `router` with the server layer on a free loopback port, on the current runtime.
async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router.layer(ServerLayer::new())).await });
    address
}

/// The downstream service: items, a failing route, and a route that answers with the `traceparent` it
/// received.
async fn downstream() -> SocketAddr {
    let router = Router::new()
        .route("/items/{id}", get(|| async { lookup_item().await }))
        .route("/fail", get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "overloaded") }))
        .route(
            "/traceparent",
            get(|headers: HeaderMap| async move {
                headers.get("traceparent").and_then(|v| v.to_str().ok()).unwrap_or("none").to_owned()
            }),
        );
    serve(router).await
}

/// What the item route runs: an annotated step, the SERVER span's child when the handler runs in its
/// context.
#[trace_with_otel("lookup_item")]
async fn lookup_item() -> &'static str {
    tokio::task::yield_now().await;
    "an item"
}

/// A service that calls `downstream`'s `/traceparent` through the traced client and answers with what it
/// received.
async fn upstream(downstream: SocketAddr) -> SocketAddr {
    async fn relay(State((client, downstream)): State<(Client, SocketAddr)>) -> String {
        let response = client.get(format!("http://{downstream}/traceparent")).send().await.expect("downstream");
        response.text().await.expect("a body")
    }
    serve(Router::new().route("/relay", get(relay)).with_state((traced_client(), downstream))).await
}

/// The spans of `trace_id` once `done` accepts them: a server span ends when its response body has been
/// sent, which may be just after the client read the response. Bounded: 10 s.
fn spans_when(trace_id: TraceId, done: impl Fn(&[SpanData]) -> bool) -> Vec<SpanData> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let spans = testing::spans_in(trace_id);
        if done(&spans) || Instant::now() > deadline {
            return spans;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn kinds(spans: &[SpanData], kind: SpanKind) -> Vec<&SpanData> {
    spans.iter().filter(|s| s.span_kind == kind).collect()
}

fn string_attr(span: &SpanData, key: &str) -> Option<String> {
    testing::attr(span, key).map(|v| v.as_str().into_owned())
}

fn int_attr(span: &SpanData, key: &str) -> Option<i64> {
    match testing::attr(span, key) {
        Some(kotaemon_trace::opentelemetry::Value::I64(v)) => Some(*v),
        _ => None,
    }
}

/// The trace id of the capture a future runs in (`capture_async` returns the spans, not the id).
fn current_trace_id() -> TraceId {
    kotaemon_trace::opentelemetry::Context::current().span().span_context().trace_id()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

#[test]
fn an_http_call_is_a_client_span_and_the_server_span_is_its_child() {
    let rt = runtime();
    let address = rt.block_on(downstream());
    let client = traced_client();
    let (trace_id, _) = rt.block_on(testing::capture_async(async {
        let response =
            client.get(format!("http://{address}/items/42")).header("user-agent", "rag-api/1.0").send().await.unwrap();
        assert_eq!(response.status(), 200);
        current_trace_id()
    }));
    let spans = spans_when(trace_id, |s| s.len() >= 4);
    let clients = kinds(&spans, SpanKind::Client);
    let servers = kinds(&spans, SpanKind::Server);
    let step = testing::named(&spans, "lookup_item");
    assert_eq!(step.parent_span_id, servers[0].span_context.span_id(), "the handler runs in the server span");
    assert_eq!((clients.len(), servers.len()), (1, 1), "{spans:#?}");
    let (client_span, server) = (clients[0], servers[0]);

    assert_eq!(client_span.name, "GET");
    assert_eq!(string_attr(client_span, "http.request.method").as_deref(), Some("GET"));
    assert_eq!(string_attr(client_span, "server.address").as_deref(), Some("127.0.0.1"));
    assert_eq!(int_attr(client_span, "server.port"), Some(i64::from(address.port())));
    assert_eq!(string_attr(client_span, "url.full"), Some(format!("http://{address}/items/42")));
    assert_eq!(int_attr(client_span, "http.response.status_code"), Some(200));
    assert_eq!(client_span.status, Status::Unset);

    assert_eq!(server.name, "GET /items/{id}");
    assert_eq!(server.parent_span_id, client_span.span_context.span_id(), "the server continues the client's span");
    assert!(server.parent_span_is_remote);
    assert_eq!(string_attr(server, "http.request.method").as_deref(), Some("GET"));
    assert_eq!(string_attr(server, "http.route").as_deref(), Some("/items/{id}"));
    assert_eq!(string_attr(server, "url.path").as_deref(), Some("/items/42"));
    assert_eq!(string_attr(server, "url.scheme").as_deref(), Some("http"));
    assert_eq!(string_attr(server, "server.address").as_deref(), Some("127.0.0.1"));
    assert_eq!(string_attr(server, "user_agent.original").as_deref(), Some("rag-api/1.0"));
    assert_eq!(int_attr(server, "http.response.status_code"), Some(200));
    assert_eq!(server.status, Status::Unset);
}

#[test]
fn a_5xx_marks_the_server_and_the_client_span_as_errors() {
    let rt = runtime();
    let address = rt.block_on(downstream());
    let client = traced_client();
    let (trace_id, _) = rt.block_on(testing::capture_async(async {
        let response = client.get(format!("http://{address}/fail")).send().await.unwrap();
        assert_eq!(response.status(), 503);
        current_trace_id()
    }));
    let spans = spans_when(trace_id, |s| s.len() >= 3);
    let server = kinds(&spans, SpanKind::Server)[0];
    let client_span = kinds(&spans, SpanKind::Client)[0];
    for span in [server, client_span] {
        assert!(matches!(span.status, Status::Error { .. }), "{} not an error: {:?}", span.name, span.status);
        assert_eq!(string_attr(span, "error.type").as_deref(), Some("503"));
        assert_eq!(int_attr(span, "http.response.status_code"), Some(503));
    }
    assert_eq!(server.name, "GET /fail");
}

#[test]
fn a_request_that_got_no_response_is_an_error() {
    let rt = runtime();
    // A port that was free a moment ago: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let client = traced_client();
    let (trace_id, _) = rt.block_on(testing::capture_async(async {
        assert!(client.get(format!("http://{closed}/")).send().await.is_err());
        current_trace_id()
    }));
    let spans = spans_when(trace_id, |s| s.len() >= 2);
    let client_span = kinds(&spans, SpanKind::Client)[0];
    assert!(matches!(client_span.status, Status::Error { .. }));
    assert_eq!(string_attr(client_span, "error.type").as_deref(), Some("connect"));
}

#[test]
fn url_credentials_never_reach_the_span() {
    let rt = runtime();
    let address = rt.block_on(downstream());
    let client = traced_client();
    let (trace_id, _) = rt.block_on(testing::capture_async(async {
        let url = format!("http://bob:hunter2@{address}/items/7?api_key=sk-live-abcdefghijklmnop1234");
        client.get(url).send().await.unwrap();
        current_trace_id()
    }));
    let spans = spans_when(trace_id, |s| s.len() >= 3);
    let url = string_attr(kinds(&spans, SpanKind::Client)[0], "url.full").unwrap();
    // reqwest moves the user info into an `Authorization` header; the query's secret is masked on export.
    assert!(!url.contains("bob") && !url.contains("hunter2") && !url.contains("sk-live"), "{url}");
    assert!(url.ends_with("/items/7?api_key=[REDACTED:key]"), "{url}");
}

/// A caller whose trace was not sampled: every hop carries the trace, unsampled, and records nothing.
#[test]
fn an_unsampled_caller_makes_no_spans_downstream_and_the_decision_travels_on() {
    let rt = runtime();
    let down = rt.block_on(downstream());
    let up = rt.block_on(upstream(down));
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let received = rt.block_on(async {
        let response = reqwest::Client::new()
            .get(format!("http://{up}/relay"))
            .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-00"))
            .send()
            .await
            .unwrap();
        response.text().await.unwrap()
    });
    let parts: Vec<&str> = received.split('-').collect();
    assert_eq!(parts.len(), 4, "downstream received {received:?}");
    assert_eq!(parts[1], trace_id, "the relay kept the caller's trace");
    assert_eq!(u8::from_str_radix(parts[3], 16).unwrap() & 1, 0, "and its decision not to sample: {received}");
    // A sampled request through both services afterwards: once its spans are in, the unsampled one's
    // would be too if anything had recorded them.
    let (sampled, _) = rt.block_on(testing::capture_async(async {
        traced_client().get(format!("http://{up}/relay")).send().await.unwrap().text().await.unwrap();
        current_trace_id()
    }));
    let sampled_spans = spans_when(sampled, |s| kinds(s, SpanKind::Server).len() >= 2);
    assert_eq!(kinds(&sampled_spans, SpanKind::Server).len(), 2, "{sampled_spans:#?}");
    let id = TraceId::from_hex(trace_id).unwrap();
    assert!(testing::spans_in(id).is_empty(), "{:#?}", testing::spans_in(id));
}

/// The middleware under an unsampled parent in the caller's own process.
#[test]
fn the_middleware_propagates_an_unsampled_parent_without_recording() {
    use kotaemon_trace::opentelemetry::trace::{SpanContext, TraceFlags, TraceState};
    use kotaemon_trace::opentelemetry::Context;
    let rt = runtime();
    let address = rt.block_on(downstream());
    testing::capture(|| ()); // installs the capture pipeline
    let trace_id = TraceId::from(0x51_u128 << 64 | 7);
    let parent = SpanContext::new(trace_id, 9_u64.into(), TraceFlags::default(), true, TraceState::default());
    let cx = Context::new().with_remote_span_context(parent);
    let client = traced_client();
    let received = rt.block_on(kotaemon_trace::opentelemetry::context::FutureExt::with_context(
        async { client.get(format!("http://{address}/traceparent")).send().await.unwrap().text().await.unwrap() },
        cx,
    ));
    assert!(received.starts_with(&format!("00-{trace_id}-")), "{received}");
    let flags = received.rsplit('-').next().unwrap();
    assert_eq!(u8::from_str_radix(flags, 16).unwrap() & 1, 0, "not sampled: {received}");
    std::thread::sleep(Duration::from_millis(100));
    assert!(testing::spans_in(trace_id).is_empty());
}

#[test]
fn the_debug_header_forces_a_trace_the_caller_did_not_sample() {
    let rt = runtime();
    let address = rt.block_on(downstream());
    testing::capture(|| ());
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    rt.block_on(async {
        reqwest::Client::new()
            .get(format!("http://{address}/items/1"))
            .header("traceparent", format!("00-{trace_id}-b7ad6b7169203331-00"))
            .header("x-debug-tracing", "true")
            .send()
            .await
            .unwrap()
    });
    let spans = spans_when(TraceId::from_hex(trace_id).unwrap(), |s| s.len() >= 2);
    assert_eq!(spans.len(), 2, "the server span and its step: {spans:#?}");
    let server = testing::named(&spans, "GET /items/{id}");
    assert_eq!(testing::attr(server, "kotaemon.debug_forced"), Some(&true.into()));
    assert_eq!(testing::named(&spans, "lookup_item").parent_span_id, server.span_context.span_id());
}

#[test]
fn a_route_axum_does_not_match_is_named_by_its_method_only() {
    let rt = runtime();
    let address = rt.block_on(downstream());
    let client = traced_client();
    let (trace_id, _) = rt.block_on(testing::capture_async(async {
        assert_eq!(client.get(format!("http://{address}/nowhere")).send().await.unwrap().status(), 404);
        current_trace_id()
    }));
    let spans = spans_when(trace_id, |s| s.len() >= 3);
    let server = kinds(&spans, SpanKind::Server)[0];
    assert_eq!(server.name, "GET");
    assert_eq!(string_attr(server, "http.route"), None);
    assert_eq!(server.status, Status::Unset, "a 404 is the client's error, not the server's");
}

/// A hyper server without axum: the layer over a plain tower service, served by hyper's own connection.
#[test]
fn a_plain_hyper_server_gets_a_server_span_named_by_its_method() {
    let rt = runtime();
    let address = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            // One connection is all this test makes.
            let (stream, _) = listener.accept().await.expect("a connection");
            let service = tower::ServiceBuilder::new().layer(ServerLayer::new()).service(tower::service_fn(
                |_: http::Request<hyper::body::Incoming>| async {
                    Ok::<_, Infallible>(
                        http::Response::builder().status(500).body(String::from("broken")).expect("a response"),
                    )
                },
            ));
            let io = hyper_util::rt::TokioIo::new(stream);
            let hyper_service = hyper_util::service::TowerToHyperService::new(service);
            let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, hyper_service).await;
        });
        address
    });
    let client = traced_client();
    let (trace_id, _) = rt.block_on(testing::capture_async(async {
        assert_eq!(client.delete(format!("http://{address}/carts/3")).send().await.unwrap().status(), 500);
        current_trace_id()
    }));
    let spans = spans_when(trace_id, |s| kinds(s, SpanKind::Server).len() == 1);
    let server = kinds(&spans, SpanKind::Server)[0];
    let client_span = kinds(&spans, SpanKind::Client)[0];
    assert_eq!(server.name, "DELETE", "no route known: the method alone");
    assert_eq!(server.parent_span_id, client_span.span_context.span_id());
    assert_eq!(string_attr(server, "url.path").as_deref(), Some("/carts/3"));
    assert_eq!(string_attr(server, "http.route"), None);
    assert_eq!(string_attr(server, "error.type").as_deref(), Some("500"));
    assert!(matches!(server.status, Status::Error { .. }));
}

// ---- gRPC: a hand-written service (prost messages, tonic's codec, no code generation) ----

#[derive(Clone, PartialEq, prost::Message)]
struct Prompt {
    #[prost(string, tag = "1")]
    text: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Completion {
    #[prost(string, tag = "1")]
    text: String,
}

const GENERATE: &str = "/rag.Llm/Generate";

/// `rag.Llm/Generate`: answers, fails with INTERNAL for "fail", NOT_FOUND for "missing".
#[derive(Clone)]
struct LlmServer;

impl tonic::server::NamedService for LlmServer {
    const NAME: &'static str = "rag.Llm";
}

impl<B> tower::Service<http::Request<B>> for LlmServer
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
                return Ok(tonic::Status::unimplemented("no such method").into_http());
            }
            let method = tower::service_fn(|request: tonic::Request<Prompt>| async move {
                match request.into_inner().text.as_str() {
                    "fail" => Err(tonic::Status::internal("the model crashed")),
                    "missing" => Err(tonic::Status::not_found("no such model")),
                    text => Ok(tonic::Response::new(Completion { text: format!("answer to {text}") })),
                }
            });
            let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::<Completion, Prompt>::default());
            Ok(grpc.unary(method, request).await)
        })
    }
}

async fn grpc_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a free port");
    let address = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(
        tonic::transport::Server::builder()
            .layer(ServerLayer::new())
            .add_service(LlmServer)
            .serve_with_incoming(incoming),
    );
    address
}

async fn generate(address: SocketAddr, text: &str) -> Result<String, tonic::Status> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{address}")).unwrap().connect_lazy();
    let channel = tower::ServiceBuilder::new().layer(ClientLayer::new()).service(channel);
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let path = http::uri::PathAndQuery::from_static(GENERATE);
    let codec = tonic_prost::ProstCodec::<Prompt, Completion>::default();
    let response = grpc.unary(tonic::Request::new(Prompt { text: text.to_owned() }), path, codec).await?;
    Ok(response.into_inner().text)
}

fn grpc_call(text: &'static str) -> (Result<String, tonic::Status>, SpanData, SpanData) {
    let rt = runtime();
    let address = rt.block_on(grpc_server());
    let ((result, trace_id), _) = rt.block_on(testing::capture_async(async {
        let result = generate(address, text).await;
        (result, current_trace_id())
    }));
    let spans = spans_when(trace_id, |s| s.len() >= 3);
    let client = kinds(&spans, SpanKind::Client).first().copied().cloned().unwrap_or_else(|| panic!("{spans:#?}"));
    let server = kinds(&spans, SpanKind::Server).first().copied().cloned().unwrap_or_else(|| panic!("{spans:#?}"));
    (result, client, server)
}

#[test]
fn a_grpc_call_is_a_client_span_and_the_server_span_is_its_child() {
    let (result, client, server) = grpc_call("refunds?");
    assert_eq!(result.unwrap(), "answer to refunds?");
    for span in [&client, &server] {
        assert_eq!(span.name, "rag.Llm/Generate");
        assert_eq!(string_attr(span, "rpc.system").as_deref(), Some("grpc"));
        assert_eq!(string_attr(span, "rpc.service").as_deref(), Some("rag.Llm"));
        assert_eq!(string_attr(span, "rpc.method").as_deref(), Some("Generate"));
        assert_eq!(int_attr(span, "rpc.grpc.status_code"), Some(0), "{span:#?}");
        assert_eq!(span.status, Status::Unset);
    }
    assert_eq!(server.parent_span_id, client.span_context.span_id(), "the context travelled in the metadata");
    assert_eq!(server.span_context.trace_id(), client.span_context.trace_id());
}

#[test]
fn a_grpc_server_fault_marks_both_sides() {
    let (result, client, server) = grpc_call("fail");
    assert_eq!(result.unwrap_err().code(), tonic::Code::Internal);
    for span in [&client, &server] {
        assert_eq!(int_attr(span, "rpc.grpc.status_code"), Some(13));
        assert!(matches!(span.status, Status::Error { .. }), "{span:#?}");
        assert_eq!(string_attr(span, "error.type").as_deref(), Some("13"));
    }
}

#[test]
fn a_grpc_not_found_fails_the_client_but_not_the_server() {
    let (result, client, server) = grpc_call("missing");
    assert_eq!(result.unwrap_err().code(), tonic::Code::NotFound);
    assert_eq!(int_attr(&client, "rpc.grpc.status_code"), Some(5));
    assert_eq!(int_attr(&server, "rpc.grpc.status_code"), Some(5));
    assert!(matches!(client.status, Status::Error { .. }));
    assert_eq!(server.status, Status::Unset);
}

// ---- `tracing` spans and annotated functions in async code ----

/// The `tracing` subscriber with the OpenTelemetry layer over the capture pipeline's tracer, installed once.
fn tracing_bridge() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use tracing_subscriber::layer::SubscriberExt as _;
        testing::capture(|| ());
        let tracer = kotaemon_trace::tracer().expect("the capture pipeline is installed");
        let subscriber = tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(tracer));
        tracing::subscriber::set_global_default(subscriber).expect("no other subscriber in this binary");
    });
}

#[trace_with_otel("ours.outer", skip_all)]
async fn ours_outer() {
    use tracing::Instrument as _;
    async {
        tokio::task::yield_now().await;
        ours_inner().await;
    }
    .instrument(tracing::info_span!("tracing.middle"))
    .await;
}

#[trace_with_otel("ours.inner", skip_all)]
async fn ours_inner() {
    tokio::task::yield_now().await;
}

#[test]
fn tracing_spans_and_annotated_async_functions_nest_in_either_order() {
    use tracing::Instrument as _;
    tracing_bridge();
    let rt = runtime();
    let (trace_id, _) = rt.block_on(testing::capture_async(
        async {
            ours_outer().await;
            current_trace_id()
        }
        .instrument(tracing::info_span!("tracing.top")),
    ));
    let spans = spans_when(trace_id, |s| s.len() >= 4);
    let by_name = |n: &str| spans.iter().find(|s| s.name == n).unwrap_or_else(|| panic!("no {n} in {spans:#?}"));
    let (top, outer, middle, inner) =
        (by_name("tracing.top"), by_name("ours.outer"), by_name("tracing.middle"), by_name("ours.inner"));
    assert_eq!(outer.parent_span_id, top.span_context.span_id(), "ours inside a tracing span");
    assert_eq!(middle.parent_span_id, outer.span_context.span_id(), "a tracing span inside ours");
    assert_eq!(inner.parent_span_id, middle.span_context.span_id(), "ours inside that again");
}

#[trace_with_otel("ours.sees_itself", skip_all)]
async fn sees_itself() -> (String, kotaemon_trace::opentelemetry::trace::SpanId) {
    tokio::task::yield_now().await;
    let cx = kotaemon_trace::opentelemetry::Context::current();
    let span = cx.span();
    (kotaemon_trace::current_trace_id().unwrap_or_default(), span.span_context().span_id())
}

#[test]
fn the_opentelemetry_current_context_inside_an_annotated_async_fn_is_its_span() {
    let rt = runtime();
    let ((_, seen), spans) = rt.block_on(testing::capture_async(sees_itself()));
    let span = testing::named(&spans, "ours.sees_itself");
    assert_eq!(seen, span.span_context.span_id());
}
