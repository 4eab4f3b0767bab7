//! A tower layer that traces every request a server answers: axum, hyper, tonic (feature `tower`).
//!
//! Each request gets a SERVER span that continues the caller's trace (read with the configured
//! propagators, the debug header honoured as [`crate::propagation::extract`] does), follows the configured
//! sampler, and is the current context while the handler runs and while the response body is sent; the
//! span ends with the body. The request is counted in the RED metrics (`traces_span_metrics_*`, Jaeger's
//! Monitor tab) when a metrics exporter runs.
//!
//! | request | span name | attributes |
//! |---|---|---|
//! | HTTP | `METHOD route` (axum's `MatchedPath`, when the layer is added with `Router::layer`), else `METHOD` | `http.request.method`, `http.route`, `url.path`, `url.scheme`, `server.address`, `server.port`, `user_agent.original`, `http.response.status_code` |
//! | gRPC (`content-type: application/grpc`) | `package.Service/Method` | `rpc.system` = `grpc`, `rpc.service`, `rpc.method`, `rpc.grpc.status_code`, `server.address`, `server.port` |
//!
//! A 5xx response is status Error with `error.type` set to the status code (`"503"`); a gRPC call fails on
//! the codes that put the server at fault (UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE,
//! DATA_LOSS), with `error.type` the code's number. An unknown method is recorded as `_OTHER` (its text in
//! `http.request.method_original`), so span names stay a bounded set.
//!
//! ```
//! use axum::{Router, routing::get};
//! use kotaemon_trace::integrations::tower::ServerLayer;
//!
//! let app: Router = Router::new().route("/orders/{id}", get(|| async { "shipped" })).layer(ServerLayer::new());
//! ```
//!
//! A tonic server takes the same layer:
//!
//! ```no_run
//! # async fn run(routes: tonic::service::Routes) -> Result<(), tonic::transport::Error> {
//! use kotaemon_trace::integrations::tower::ServerLayer;
//!
//! tonic::transport::Server::builder()
//!     .layer(ServerLayer::new())
//!     .add_routes(routes)
//!     .serve("127.0.0.1:50051".parse().unwrap())
//!     .await
//! # }
//! ```

use crate::integrations::exchange::{self, Exchange};
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, ready};

/// Traces every request of the service it wraps; see the [module](self) documentation.
///
/// ```
/// let layer = kotaemon_trace::integrations::tower::ServerLayer::new();
/// # let _ = layer;
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerLayer {
    _private: (),
}

impl ServerLayer {
    /// The layer.
    ///
    /// ```
    /// use kotaemon_trace::integrations::tower::ServerLayer;
    /// let app = axum::Router::<()>::new().layer(ServerLayer::new());
    /// # let _ = app;
    /// ```
    pub fn new() -> Self {
        ServerLayer { _private: () }
    }
}

impl<S> tower_layer::Layer<S> for ServerLayer {
    type Service = ServerService<S>;

    fn layer(&self, inner: S) -> ServerService<S> {
        ServerService { inner }
    }
}

/// The service [`ServerLayer`] makes.
///
/// ```
/// use tower::Layer as _;
/// let service = kotaemon_trace::integrations::tower::ServerLayer::new().layer(tower::service_fn(
///     |_: http::Request<String>| async { Ok::<_, std::convert::Infallible>(http::Response::new(String::new())) },
/// ));
/// # let _ = service;
/// ```
#[derive(Clone, Debug)]
pub struct ServerService<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> tower_service::Service<http::Request<ReqBody>> for ServerService<S>
where
    S: tower_service::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    ResBody: http_body::Body,
{
    type Response = http::Response<ServerBody<ResBody>>;
    type Error = S::Error;
    type Future = ServerFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let (exchange, grpc) = start(&request);
        let inner = {
            let _attached = exchange.context().clone().attach();
            self.inner.call(request)
        };
        ServerFuture { inner, exchange: Some(exchange), grpc }
    }
}

/// The request's span: the caller's context from the headers, the name and attributes from the request.
fn start<B>(request: &http::Request<B>) -> (Exchange, bool) {
    let headers = request.headers();
    let parent = crate::api::propagation::extract(headers);
    let path = request.uri().path();
    let (host, port) = server_address(request);
    let grpc = exchange::is_grpc(headers).then(|| exchange::grpc_path(path)).flatten();
    if let Some((service, method)) = grpc {
        let exchange = Exchange::start(path[1..].to_owned(), SpanKind::Server, parent.context(), |attributes| {
            exchange::grpc_attributes(service, method, attributes);
            push_address(host, port, attributes);
        });
        return (exchange, true);
    }
    let method = exchange::method_name(request.method());
    let route = request.extensions().get::<axum::extract::MatchedPath>().map(axum::extract::MatchedPath::as_str);
    let name = match route {
        Some(route) => format!("{method} {route}"),
        None => method.to_owned(),
    };
    let exchange = Exchange::start(name, SpanKind::Server, parent.context(), |attributes| {
        exchange::method_attributes(request.method(), attributes);
        if let Some(route) = route {
            attributes.push(KeyValue::new(exchange::HTTP_ROUTE, route.to_owned()));
        }
        attributes.push(KeyValue::new(exchange::URL_PATH, path.to_owned()));
        attributes.push(KeyValue::new(exchange::URL_SCHEME, request.uri().scheme_str().unwrap_or("http").to_owned()));
        push_address(host, port, attributes);
        if let Some(agent) = headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok()) {
            attributes.push(KeyValue::new(exchange::USER_AGENT_ORIGINAL, agent.to_owned()));
        }
    });
    (exchange, false)
}

/// The address the client asked for: the URI's authority (HTTP/2, absolute URIs), else the `Host` header.
fn server_address<B>(request: &http::Request<B>) -> (Option<&str>, Option<u16>) {
    if let Some(host) = request.uri().host() {
        return (Some(host), request.uri().port_u16());
    }
    let Some(host) = request.headers().get(http::header::HOST).and_then(|v| v.to_str().ok()) else {
        return (None, None);
    };
    // `host[:port]`, the host possibly a bracketed IPv6 address.
    match host.rsplit_once(':') {
        Some((name, port)) if !port.contains(']') => (Some(name), port.parse().ok()),
        _ => (Some(host), None),
    }
}

fn push_address(host: Option<&str>, port: Option<u16>, attributes: &mut Vec<KeyValue>) {
    if let Some(host) = host {
        attributes.push(KeyValue::new(exchange::SERVER_ADDRESS, host.to_owned()));
    }
    if let Some(port) = port {
        attributes.push(KeyValue::new(exchange::SERVER_PORT, i64::from(port)));
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`ServerService`]: the request's span is the current context on every poll.
    pub struct ServerFuture<F> {
        #[pin]
        inner: F,
        exchange: Option<Exchange>,
        grpc: bool,
    }
}

impl<F, B, E> Future for ServerFuture<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
    B: http_body::Body,
{
    type Output = Result<http::Response<ServerBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let polled = {
            let _attached = this.exchange.as_ref().map(|e| e.context().clone().attach());
            ready!(this.inner.poll(cx))
        };
        let mut exchange = this.exchange.take().expect("a server future polled after it completed");
        Poll::Ready(match polled {
            Ok(response) => {
                if *this.grpc {
                    // A trailers-only response (most errors) carries its status in the headers.
                    if let Some(code) = exchange::grpc_status(response.headers()) {
                        exchange.grpc_status(code, false);
                    }
                } else {
                    exchange.http_status(response.status(), false);
                }
                let grpc = *this.grpc;
                Ok(response.map(|inner| ServerBody { inner, exchange: Some(exchange), grpc }))
            }
            Err(error) => {
                exchange.fail(std::any::type_name::<E>().to_owned(), "the service failed");
                Err(error)
            }
        })
    }
}

pin_project_lite::pin_project! {
    /// The response body of [`ServerService`]: the request's span ends when the body ends (or is dropped).
    pub struct ServerBody<B> {
        #[pin]
        inner: B,
        exchange: Option<Exchange>,
        grpc: bool,
    }
}

impl<B: http_body::Body> http_body::Body for ServerBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        let mut this = self.project();
        let polled = {
            let _attached = this.exchange.as_ref().map(|e| e.context().clone().attach());
            ready!(this.inner.as_mut().poll_frame(cx))
        };
        finish_frame(this.exchange, *this.grpc, &polled, this.inner.is_end_stream(), false);
        Poll::Ready(polled)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// After a frame of a traced body: a gRPC status in trailers is recorded, a body error fails the request,
/// and the span ends at the body's end.
pub(crate) fn finish_frame<D, E>(
    exchange: &mut Option<Exchange>,
    grpc: bool,
    polled: &Option<Result<http_body::Frame<D>, E>>,
    end_of_stream: bool,
    client: bool,
) {
    let Some(current) = exchange.as_mut() else { return };
    match polled {
        Some(Ok(frame)) => {
            if let (true, Some(trailers)) = (grpc, frame.trailers_ref())
                && let Some(code) = exchange::grpc_status(trailers)
            {
                current.grpc_status(code, client);
            }
        }
        Some(Err(_)) => current.fail(std::any::type_name::<E>().to_owned(), "the body failed"),
        None => {}
    }
    if polled.as_ref().is_none_or(Result::is_err) || end_of_stream {
        exchange.take();
    }
}
