//! Polls the strategy Jaeger serves for this service and hands it to the sampler
//! (`policy::sampling::strategy`). Until the first answer the initial rate applies; when Jaeger is
//! unreachable the last good strategy stays in force.
//!
//! The endpoint may name either of Jaeger's sampling servers, since users arrive with configs from both
//! worlds: a URL with a path (`http://localhost:5778/sampling`, Go and Rust SDKs) is polled over HTTP. A
//! URL without one names a port, and both kinds are met bare: Jaeger's HTTP port (`http://localhost:5778`,
//! the one most configs name) and its gRPC ports (`http://localhost:14250`, the OTel spec's and Java's
//! form, Jaeger v2's 5779). So a bare URL is tried over both: over HTTP at `/sampling` first on 5778, over
//! gRPC (`jaeger.api_v2.SamplingManager`) first on any other port; when the first answers in another
//! protocol the other is tried, and the one that gave a strategy is kept for the following polls
//! ([`Source`]; `TraceGuard::jaeger_remote_source` shows it, and so does `kotaemon-trace doctor`).

use crate::config::JaegerRemoteSource as Source;
use crate::policy::sampling::strategy::{
    MAX_BODY, OperationSampling, OperationStrategy, Probabilistic, RateLimiting, Strategy, StrategyResponse,
    from_response, parse_strategy,
};
use arc_swap::ArcSwap;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

mod proto {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SamplingStrategyParameters {
        #[prost(string, tag = "1")]
        pub service_name: String,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct SamplingStrategyResponse {
        #[prost(int32, tag = "1")]
        pub strategy_type: i32,
        #[prost(message, optional, tag = "2")]
        pub probabilistic_sampling: Option<Probabilistic>,
        #[prost(message, optional, tag = "3")]
        pub rate_limiting_sampling: Option<RateLimiting>,
        #[prost(message, optional, tag = "4")]
        pub operation_sampling: Option<PerOperation>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Probabilistic {
        #[prost(double, tag = "1")]
        pub sampling_rate: f64,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RateLimiting {
        #[prost(int32, tag = "1")]
        pub max_traces_per_second: i32,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Operation {
        #[prost(string, tag = "1")]
        pub operation: String,
        #[prost(message, optional, tag = "2")]
        pub probabilistic_sampling: Option<Probabilistic>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct PerOperation {
        #[prost(double, tag = "1")]
        pub default_sampling_probability: f64,
        #[prost(double, tag = "2")]
        pub default_lower_bound_traces_per_second: f64,
        #[prost(message, repeated, tag = "3")]
        pub per_operation_strategies: Vec<Operation>,
    }
}

impl From<proto::SamplingStrategyResponse> for StrategyResponse {
    fn from(r: proto::SamplingStrategyResponse) -> Self {
        let probabilistic = |p: proto::Probabilistic| Probabilistic { sampling_rate: p.sampling_rate };
        StrategyResponse {
            strategy_type: Some(serde_json::Value::from(r.strategy_type)),
            probabilistic_sampling: r.probabilistic_sampling.map(probabilistic),
            rate_limiting_sampling: r
                .rate_limiting_sampling
                .map(|l| RateLimiting { max_traces_per_second: f64::from(l.max_traces_per_second) }),
            operation_sampling: r.operation_sampling.map(|o| OperationSampling {
                default_sampling_probability: o.default_sampling_probability,
                default_lower_bound_traces_per_second: o.default_lower_bound_traces_per_second,
                per_operation_strategies: o
                    .per_operation_strategies
                    .into_iter()
                    .map(|s| OperationStrategy {
                        operation: s.operation,
                        probabilistic_sampling: s.probabilistic_sampling.map(probabilistic),
                    })
                    .collect(),
            }),
        }
    }
}

// ---- polling ----

/// Where and how often to poll.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Poll {
    pub(crate) endpoint: String,
    pub(crate) service: String,
    pub(crate) interval: Duration,
}

/// Keeps polling until dropped; the sampler reads `current`.
pub(crate) struct Poller {
    _stop: mpsc::Sender<()>,
    used: Arc<Mutex<Option<Source>>>,
}

impl Poller {
    /// The transport and URL of the last strategy received; `None` before the first.
    pub(crate) fn source(&self) -> Option<Source> {
        self.used.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Jaeger's HTTP sampling port: a bare URL naming it is tried over HTTP first.
const HTTP_SAMPLING_PORT: u16 = 5778;
/// The path Jaeger serves strategies at on its HTTP sampling port (agent, all-in-one and v2).
const HTTP_SAMPLING_PATH: &str = "/sampling";

/// What `endpoint` may mean, in the order to try: one HTTP URL when it has a path, else both
/// transports at that port.
pub(crate) fn candidates(endpoint: &str) -> Vec<Source> {
    let scheme_end = endpoint.find("://").map_or(0, |i| i + 3);
    let rest = &endpoint[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    if !rest[authority_end..].trim_end_matches('/').is_empty() {
        return vec![Source::Http(endpoint.to_owned())];
    }
    let base = &endpoint[..scheme_end + authority_end];
    let http = Source::Http(format!("{base}{HTTP_SAMPLING_PATH}"));
    let grpc = Source::Grpc(base.to_owned());
    let port = rest[..authority_end].rsplit_once(':').and_then(|(_, port)| port.parse::<u16>().ok());
    if port == Some(HTTP_SAMPLING_PORT) { vec![http, grpc] } else { vec![grpc, http] }
}

/// Starts the polling thread. The first fetch happens at once, not after one interval.
pub(crate) fn start(poll: Poll, current: Arc<ArcSwap<Strategy>>) -> std::io::Result<Poller> {
    let (stop, stopped) = mpsc::channel::<()>();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let used = Arc::new(Mutex::new(None));
    let shown = used.clone();
    std::thread::Builder::new().name("kotaemon-trace-sampling".into()).spawn(move || {
        let mut reported = false;
        let mut order = candidates(&poll.endpoint);
        loop {
            match runtime.block_on(fetch_any(&poll, &mut order)) {
                Ok(strategy) => {
                    let strategy = strategy.continuing(&current.load());
                    current.store(Arc::new(strategy));
                    *shown.lock().unwrap_or_else(|e| e.into_inner()) = order.first().cloned();
                    reported = false;
                }
                Err(why) if !reported => {
                    eprintln!(
                        "kotaemon-trace: jaeger_remote sampler: {}; keeping the current strategy",
                        crate::config::mask::mask_urls(&why.to_string())
                    );
                    reported = true;
                }
                Err(_) => {}
            }
            match stopped.recv_timeout(poll.interval) {
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                _ => return,
            }
        }
    })?;
    Ok(Poller { _stop: stop, used })
}

/// Tries the transports in `order` until one gives a strategy, and moves that one to the front, so
/// the next polls use what worked first. Stops at the first failure when nothing accepts a connection
/// at the endpoint (Jaeger down): the other transport would fail the same way, only later.
async fn fetch_any(poll: &Poll, order: &mut [Source]) -> Result<Strategy, String> {
    let mut failures = Vec::new();
    for index in 0..order.len() {
        match fetch(poll, &order[index]).await {
            Ok(strategy) => {
                order[..=index].rotate_right(1);
                return Ok(strategy);
            }
            Err(why) => failures.push(why),
        }
        if !accepts_connections(&order[index]).await {
            failures.push("nothing accepts connections there".to_owned());
            break;
        }
    }
    Err(failures.join("; "))
}

/// Whether a TCP connection to the source's host and port opens (within a second).
async fn accepts_connections(source: &Source) -> bool {
    let Ok(uri) = source.url().parse::<http::Uri>() else { return false };
    let Some(host) = uri.host() else { return false };
    let port = uri.port_u16().unwrap_or(if uri.scheme_str() == Some("https") { 443 } else { 80 });
    let host = host.trim_start_matches('[').trim_end_matches(']');
    matches!(
        tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect((host, port))).await,
        Ok(Ok(_))
    )
}

async fn fetch(poll: &Poll, source: &Source) -> Result<Strategy, String> {
    let timeout = Duration::from_secs(5);
    match source {
        Source::Grpc(endpoint) => {
            let response = tokio::time::timeout(timeout, fetch_grpc(endpoint, &poll.service))
                .await
                .map_err(|_| format!("{endpoint} (gRPC) timed out"))??;
            from_response(response.into())
        }
        Source::Http(endpoint) => {
            let builder = reqwest::Client::builder().timeout(timeout);
            // With OTLP/HTTP in the build, reqwest's rustls has no crypto provider of its own: hand it the
            // transport's TLS (system roots), which also lets an https:// sampling endpoint work.
            #[cfg(feature = "otlp-http")]
            let builder = builder.tls_backend_preconfigured(crate::export::transport::system_tls()?);
            let client = builder.build().map_err(|e| e.to_string())?;
            let separator = if endpoint.contains('?') { '&' } else { '?' };
            let url = format!("{endpoint}{separator}service={}", query_escape(&poll.service));
            let response =
                client.get(&url).send().await.map_err(|e| format!("{endpoint} (HTTP) is unreachable: {e}"))?;
            if !response.status().is_success() {
                return Err(format!("{endpoint} (HTTP) answered {}", response.status()));
            }
            // Read at most one byte over the bound: a huge answer is refused without being downloaded.
            let mut response = response;
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(|e| e.to_string())? {
                body.extend_from_slice(&chunk[..chunk.len().min(MAX_BODY + 1 - body.len())]);
                if body.len() > MAX_BODY {
                    break;
                }
            }
            parse_strategy(&body).map_err(|why| format!("{endpoint} (HTTP): {why}"))
        }
    }
}

/// Percent-encodes a query value (service names are usually plain, but need not be).
fn query_escape(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn fetch_grpc(endpoint: &str, service: &str) -> Result<proto::SamplingStrategyResponse, String> {
    let channel = tonic::transport::Endpoint::from_shared(endpoint.to_owned())
        .map_err(|e| format!("{endpoint} is not a valid gRPC endpoint: {e}"))?
        .connect()
        .await
        .map_err(|e| format!("{endpoint} (gRPC) is unreachable: {e}"))?;
    let mut client = tonic::client::Grpc::new(channel);
    client.ready().await.map_err(|e| e.to_string())?;
    let path = http::uri::PathAndQuery::from_static("/jaeger.api_v2.SamplingManager/GetSamplingStrategy");
    let codec =
        tonic_prost::ProstCodec::<proto::SamplingStrategyParameters, proto::SamplingStrategyResponse>::default();
    let request = tonic::Request::new(proto::SamplingStrategyParameters { service_name: service.to_owned() });
    client
        .unary(request, path, codec)
        .await
        .map(|r| r.into_inner())
        .map_err(|s| format!("{endpoint} (gRPC): {}", s.message()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_means_http_and_a_bare_port_both_transports_in_the_likelier_order() {
        let http = |u: &str| Source::Http(u.to_owned());
        let grpc = |u: &str| Source::Grpc(u.to_owned());
        assert_eq!(candidates("http://localhost:5778/sampling"), [http("http://localhost:5778/sampling")]);
        assert_eq!(candidates("http://127.0.0.1:5778/api/sampling"), [http("http://127.0.0.1:5778/api/sampling")]);
        // Jaeger's HTTP port, bare: HTTP at its sampling path first, gRPC if that answers otherwise.
        assert_eq!(
            candidates("http://127.0.0.1:5778"),
            [http("http://127.0.0.1:5778/sampling"), grpc("http://127.0.0.1:5778")]
        );
        assert_eq!(
            candidates("http://127.0.0.1:5778/"),
            [http("http://127.0.0.1:5778/sampling"), grpc("http://127.0.0.1:5778")]
        );
        // Any other bare port: gRPC first (14250, 5779), then HTTP.
        assert_eq!(
            candidates("http://localhost:14250"),
            [grpc("http://localhost:14250"), http("http://localhost:14250/sampling")]
        );
        assert_eq!(candidates("http://[::1]:5779/"), [grpc("http://[::1]:5779"), http("http://[::1]:5779/sampling")]);
    }
}
