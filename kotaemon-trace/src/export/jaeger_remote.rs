//! Polls the strategy Jaeger serves for this service and hands it to the sampler
//! (`policy::sampling::strategy`). Until the first answer the initial rate applies; when Jaeger is
//! unreachable the last good strategy stays in force.
//!
//! The endpoint may name either of Jaeger's sampling servers, since users arrive with configs from both
//! worlds: a URL with a path (`http://localhost:5778/sampling`, Go and Rust SDKs) is polled over HTTP;
//! a URL without one (`http://localhost:14250`, the OTel spec's and Java's form, or Jaeger v2's 5779) over
//! gRPC (`jaeger.api_v2.SamplingManager`).

use crate::policy::sampling::strategy::{
    MAX_BODY, OperationSampling, OperationStrategy, Probabilistic, RateLimiting, Strategy, StrategyResponse,
    from_response, parse_strategy,
};
use arc_swap::ArcSwap;
use std::sync::{Arc, mpsc};
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
}

pub(crate) fn is_grpc(endpoint: &str) -> bool {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    match rest.find('/') {
        None => true,
        Some(i) => rest[i..].trim_end_matches('/').is_empty(),
    }
}

/// Starts the polling thread. The first fetch happens at once, not after one interval.
pub(crate) fn start(poll: Poll, current: Arc<ArcSwap<Strategy>>) -> std::io::Result<Poller> {
    let (stop, stopped) = mpsc::channel::<()>();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new().name("kotaemon-trace-sampling".into()).spawn(move || {
        let mut reported = false;
        loop {
            let fetched = runtime.block_on(fetch(&poll));
            match fetched {
                Ok(strategy) => {
                    current.store(Arc::new(strategy));
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
    Ok(Poller { _stop: stop })
}

async fn fetch(poll: &Poll) -> Result<Strategy, String> {
    let timeout = Duration::from_secs(5);
    if is_grpc(&poll.endpoint) {
        let response = tokio::time::timeout(timeout, fetch_grpc(poll))
            .await
            .map_err(|_| format!("{} timed out", poll.endpoint))??;
        from_response(response.into())
    } else {
        let client = reqwest::Client::builder().timeout(timeout).build().map_err(|e| e.to_string())?;
        let separator = if poll.endpoint.contains('?') { '&' } else { '?' };
        let url = format!("{}{separator}service={}", poll.endpoint, query_escape(&poll.service));
        let response = client.get(&url).send().await.map_err(|e| format!("{} is unreachable: {e}", poll.endpoint))?;
        if !response.status().is_success() {
            return Err(format!("{} answered {}", poll.endpoint, response.status()));
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
        parse_strategy(&body)
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

async fn fetch_grpc(poll: &Poll) -> Result<proto::SamplingStrategyResponse, String> {
    let channel = tonic::transport::Endpoint::from_shared(poll.endpoint.clone())
        .map_err(|e| format!("{} is not a valid gRPC endpoint: {e}", poll.endpoint))?
        .connect()
        .await
        .map_err(|e| format!("{} is unreachable: {e}", poll.endpoint))?;
    let mut client = tonic::client::Grpc::new(channel);
    client.ready().await.map_err(|e| e.to_string())?;
    let path = http::uri::PathAndQuery::from_static("/jaeger.api_v2.SamplingManager/GetSamplingStrategy");
    let codec =
        tonic_prost::ProstCodec::<proto::SamplingStrategyParameters, proto::SamplingStrategyResponse>::default();
    let request = tonic::Request::new(proto::SamplingStrategyParameters { service_name: poll.service.clone() });
    client
        .unary(request, path, codec)
        .await
        .map(|r| r.into_inner())
        .map_err(|s| format!("{}: {}", poll.endpoint, s.message()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_shape_picks_the_transport() {
        assert!(is_grpc("http://localhost:14250"));
        assert!(is_grpc("http://127.0.0.1:5779/"));
        assert!(!is_grpc("http://localhost:5778/sampling"));
        assert!(!is_grpc("http://127.0.0.1:5778/api/sampling"));
    }
}
