//! A `reqwest-middleware` middleware that traces every request a client sends (feature `reqwest`).
//!
//! Each request gets a CLIENT span named after its method (`GET`, `POST`), child of the current context,
//! with `http.request.method`, `server.address`, `server.port`, `url.full` (its user info replaced by
//! `REDACTED:REDACTED`; secrets in the query are masked by the redactor, as in every attribute) and
//! `http.response.status_code`. Its context goes into the request's headers with the configured
//! propagators, so the called service's span is its child; inside a root the sampler dropped, the headers
//! carry that root's trace unsampled, so the called service records nothing either. A 4xx or 5xx response
//! is status Error with `error.type` the status code (`"503"`), a request that got no response is status
//! Error with `error.type` `timeout`, `connect` or `request`. The span ends when the response's headers
//! arrive.
//!
//! ```
//! use kotaemon_trace::integrations::reqwest::TracingMiddleware;
//!
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new()).with(TracingMiddleware::new()).build();
//! # let _ = client;
//! ```

use crate::integrations::exchange::{self, Exchange};
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;
use reqwest_middleware::{Middleware, Next};

/// Traces every request of a `reqwest_middleware::ClientWithMiddleware`; see the [module](self)
/// documentation.
///
/// ```
/// let middleware = kotaemon_trace::integrations::reqwest::TracingMiddleware::new();
/// # let _ = middleware;
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct TracingMiddleware {
    _private: (),
}

impl TracingMiddleware {
    /// The middleware.
    ///
    /// ```
    /// use kotaemon_trace::integrations::reqwest::TracingMiddleware;
    /// let builder = reqwest_middleware::ClientBuilder::new(reqwest::Client::new()).with(TracingMiddleware::new());
    /// # let _ = builder;
    /// ```
    pub fn new() -> Self {
        TracingMiddleware { _private: () }
    }
}

#[async_trait::async_trait]
impl Middleware for TracingMiddleware {
    async fn handle(
        &self,
        mut request: reqwest::Request,
        extensions: &mut http::Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        // Inside a root the sampler dropped, its trace: the called service must not record it either.
        let parent = crate::hot::current::map_current_trace(opentelemetry::Context::clone);
        let method = exchange::method_name(request.method());
        let mut exchange = {
            let url = request.url();
            Exchange::start(method.to_owned(), SpanKind::Client, &parent, |attributes| {
                exchange::method_attributes(request.method(), attributes);
                if let Some(host) = url.host_str() {
                    attributes.push(KeyValue::new(exchange::SERVER_ADDRESS, host.to_owned()));
                }
                if let Some(port) = url.port_or_known_default() {
                    attributes.push(KeyValue::new(exchange::SERVER_PORT, i64::from(port)));
                }
                attributes
                    .push(KeyValue::new(exchange::URL_FULL, exchange::without_credentials(url.as_str()).into_owned()));
            })
        };
        crate::api::propagation::inject_context(exchange.context(), request.headers_mut());
        let result =
            crate::hot::span::Instrumented::with_context(exchange.context().clone(), next.run(request, extensions))
                .await;
        match &result {
            Ok(response) => exchange.http_status(response.status(), true),
            Err(error) => exchange.fail(error_type(error).to_owned(), error.to_string()),
        }
        result
    }
}

/// `error.type` of a request that got no response.
fn error_type(error: &reqwest_middleware::Error) -> &'static str {
    match error {
        reqwest_middleware::Error::Reqwest(e) if e.is_timeout() => "timeout",
        reqwest_middleware::Error::Reqwest(e) if e.is_connect() => "connect",
        _ => "request",
    }
}
