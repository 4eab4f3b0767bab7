//! A tower layer for tonic's `Channel` that traces every gRPC call a client makes (feature `tonic`).
//!
//! Each call gets a CLIENT span named `package.Service/Method`, child of the current context, with
//! `rpc.system` = `grpc`, `rpc.service`, `rpc.method`, `rpc.grpc.status_code` (and `server.address` /
//! `server.port` when the request's URI carries them); its context travels in the call's metadata with the
//! configured propagators, so the server's span is its child. Any status but OK is status Error with
//! `error.type` the code's number. The span ends with the response stream (for a unary call: when the
//! status arrives). The server side is [`super::tower::ServerLayer`], which recognises gRPC.
//!
//! ```no_run
//! # async fn run() -> Result<(), tonic::transport::Error> {
//! use kotaemon_trace::integrations::tonic::ClientLayer;
//!
//! let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:50051").connect().await?;
//! let channel = tower::ServiceBuilder::new().layer(ClientLayer::new()).service(channel);
//! // let client = MyServiceClient::new(channel);
//! # let _ = channel;
//! # Ok(())
//! # }
//! ```

use crate::integrations::exchange::{self, Exchange};
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, ready};

/// Traces every call of the gRPC client service it wraps; see the [module](self) documentation.
///
/// ```
/// let layer = kotaemon_trace::integrations::tonic::ClientLayer::new();
/// # let _ = layer;
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientLayer {
    _private: (),
}

impl ClientLayer {
    /// The layer.
    ///
    /// ```
    /// use kotaemon_trace::integrations::tonic::ClientLayer;
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:50051").connect_lazy();
    /// let traced = tower::ServiceBuilder::new().layer(ClientLayer::new()).service(channel);
    /// # let _ = traced;
    /// # }
    /// ```
    pub fn new() -> Self {
        ClientLayer { _private: () }
    }
}

impl<S> tower_layer::Layer<S> for ClientLayer {
    type Service = ClientService<S>;

    fn layer(&self, inner: S) -> ClientService<S> {
        ClientService { inner }
    }
}

/// The service [`ClientLayer`] makes.
///
/// ```
/// use tower::Layer as _;
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let channel = tonic::transport::Endpoint::from_static("http://127.0.0.1:50051").connect_lazy();
/// let traced = kotaemon_trace::integrations::tonic::ClientLayer::new().layer(channel);
/// # let _ = traced;
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct ClientService<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> tower_service::Service<http::Request<ReqBody>> for ClientService<S>
where
    S: tower_service::Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Error: std::fmt::Display,
    ResBody: http_body::Body,
{
    type Response = http::Response<ClientBody<ResBody>>;
    type Error = S::Error;
    type Future = ClientFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut TaskContext<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        // Inside a root the sampler dropped, its trace: the called service must not record it either.
        let parent = crate::hot::current::map_current_trace(opentelemetry::Context::clone);
        let uri = request.uri();
        let path = uri.path();
        let name = path.strip_prefix('/').unwrap_or(path).to_owned();
        let exchange = Exchange::start(name, SpanKind::Client, &parent, |attributes| {
            match exchange::grpc_path(path) {
                Some((service, method)) => exchange::grpc_attributes(service, method, attributes),
                None => attributes.push(KeyValue::new(exchange::RPC_SYSTEM, "grpc")),
            }
            if let Some(host) = uri.host() {
                attributes.push(KeyValue::new(exchange::SERVER_ADDRESS, host.to_owned()));
            }
            if let Some(port) = uri.port_u16() {
                attributes.push(KeyValue::new(exchange::SERVER_PORT, i64::from(port)));
            }
        });
        crate::api::propagation::inject_context(exchange.context(), request.headers_mut());
        let inner = {
            let _attached = exchange.context().clone().attach();
            self.inner.call(request)
        };
        ClientFuture { inner, exchange: Some(exchange) }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`ClientService`]: the call's span is the current context on every poll.
    pub struct ClientFuture<F> {
        #[pin]
        inner: F,
        exchange: Option<Exchange>,
    }
}

impl<F, B, E> Future for ClientFuture<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
    B: http_body::Body,
    E: std::fmt::Display,
{
    type Output = Result<http::Response<ClientBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let polled = {
            let _attached = this.exchange.as_ref().map(|e| e.context().clone().attach());
            ready!(this.inner.poll(cx))
        };
        let mut exchange = this.exchange.take().expect("a client future polled after it completed");
        Poll::Ready(match polled {
            Ok(response) => {
                if response.status() != http::StatusCode::OK {
                    exchange.http_status(response.status(), true);
                }
                // A trailers-only response (most errors) carries its status in the headers; otherwise the
                // status comes in the trailers, at the end of the body.
                let exchange = match exchange::grpc_status(response.headers()) {
                    Some(code) => {
                        exchange.grpc_status(code, true);
                        None
                    }
                    None => Some(exchange),
                };
                Ok(response.map(|inner| ClientBody { inner, exchange }))
            }
            Err(error) => {
                // The transport failed (no connection, a timeout): tonic reports it as UNAVAILABLE.
                exchange.fail("14".to_owned(), error.to_string());
                Err(error)
            }
        })
    }
}

pin_project_lite::pin_project! {
    /// The response body of [`ClientService`]: the call's span ends with the stream and its status.
    pub struct ClientBody<B> {
        #[pin]
        inner: B,
        exchange: Option<Exchange>,
    }
}

impl<B: http_body::Body> http_body::Body for ClientBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        let mut this = self.project();
        let polled = ready!(this.inner.as_mut().poll_frame(cx));
        crate::integrations::tower::finish_frame(this.exchange, true, &polled, this.inner.is_end_stream(), true);
        Poll::Ready(polled)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
