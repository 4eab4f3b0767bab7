//! Jaeger remote sampling strategies: parsed from what Jaeger serves, and applied per span. The poller
//! that fetches them is `export::jaeger_remote`.
//!
//! Strategies: probabilistic, rate limiting, and per-operation (a probability per span name, a default
//! probability, and a lower bound of traces per second per operation). Until the first answer the
//! initial rate applies; when Jaeger is unreachable the last good strategy stays in force.
//!
//! The endpoint may name either of Jaeger's sampling servers, since users arrive with configs from both
//! worlds: a URL with a path (`http://localhost:5778/sampling`, Go and Rust SDKs) is polled over HTTP;
//! a URL without one (`http://localhost:14250`, the OTel spec's and Java's form, or Jaeger v2's 5779) over
//! gRPC (`jaeger.api_v2.SamplingManager`).

// The wire format is read only by the poller (`jaeger-remote`) and the fuzz target.
#![cfg_attr(not(feature = "jaeger-remote"), allow(dead_code))]

use super::rate::RateLimiter;
use opentelemetry::KeyValue;
use opentelemetry::trace::TraceId;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Most operations tracked for per-operation strategies; later names share the default.
const MAX_OPERATIONS: usize = 2000;
/// Largest strategy document accepted (bytes).
pub(crate) const MAX_BODY: usize = 1 << 20;

/// A strategy ready to apply.
#[derive(Debug)]
pub(crate) enum Strategy {
    Probabilistic(f64),
    RateLimiting { per_second: f64, limiter: RateLimiter },
    PerOperation(PerOperation),
}

#[derive(Debug)]
pub(crate) struct PerOperation {
    default_probability: f64,
    lower_bound_per_second: f64,
    probabilities: HashMap<String, f64>,
    /// One lower-bound limiter per operation seen, created on first use.
    lower_bounds: Mutex<HashMap<String, Arc<RateLimiter>>>,
}

/// The decision plus the Jaeger-style tags that explain it.
pub(crate) struct Decision {
    pub(crate) sampled: bool,
    pub(crate) attributes: [KeyValue; 2],
}

fn decision(sampled: bool, kind: &'static str, param: f64) -> Decision {
    Decision { sampled, attributes: [KeyValue::new("sampler.type", kind), KeyValue::new("sampler.param", param)] }
}

/// The same trace-id rule as the spec's TraceIdRatioBased, so services agree on a trace.
pub(crate) fn ratio_keeps(ratio: f64, trace_id: TraceId) -> bool {
    if ratio >= 1.0 {
        return true;
    }
    if ratio <= 0.0 {
        return false;
    }
    let bound = (ratio * (1u64 << 63) as f64) as u64;
    let low = u64::from_be_bytes(trace_id.to_bytes()[8..16].try_into().unwrap_or([0; 8])) >> 1;
    low < bound
}

impl Strategy {
    pub(crate) fn decide(&self, trace_id: TraceId, operation: &str) -> Decision {
        match self {
            Strategy::Probabilistic(p) => decision(ratio_keeps(*p, trace_id), "probabilistic", *p),
            Strategy::RateLimiting { per_second, limiter } => {
                decision(limiter.try_acquire(), "ratelimiting", *per_second)
            }
            Strategy::PerOperation(ops) => {
                let p = ops.probabilities.get(operation).copied().unwrap_or(ops.default_probability);
                if ratio_keeps(p, trace_id) {
                    return decision(true, "probabilistic", p);
                }
                let limiter = {
                    let mut bounds = ops.lower_bounds.lock().unwrap_or_else(|e| e.into_inner());
                    match bounds.get(operation) {
                        Some(l) => l.clone(),
                        None if bounds.len() < MAX_OPERATIONS => {
                            let l = Arc::new(RateLimiter::new(ops.lower_bound_per_second, 1.0));
                            bounds.insert(operation.to_owned(), l.clone());
                            l
                        }
                        None => return decision(false, "probabilistic", p),
                    }
                };
                decision(limiter.try_acquire(), "lowerbound", ops.lower_bound_per_second)
            }
        }
    }

    /// This strategy, fetched anew, with the rate limiters' budget of the one it replaces where the rate
    /// is the same. A fresh limiter has its whole burst available: replaced at every poll, the
    /// per-operation lower bound would let one more trace of each operation through per poll (one per
    /// second with `pollingIntervalMs=1000`, beside a target of about one per second), and a
    /// rate-limiting strategy one more burst.
    pub(crate) fn continuing(self, previous: &Strategy) -> Strategy {
        match (self, previous) {
            (
                Strategy::RateLimiting { per_second, limiter },
                Strategy::RateLimiting { per_second: was, limiter: old },
            ) if per_second == *was => {
                limiter.continue_from(old);
                Strategy::RateLimiting { per_second, limiter }
            }
            (Strategy::PerOperation(ops), Strategy::PerOperation(old))
                if ops.lower_bound_per_second == old.lower_bound_per_second =>
            {
                let kept = old.lower_bounds.lock().unwrap_or_else(|e| e.into_inner()).clone();
                *ops.lower_bounds.lock().unwrap_or_else(|e| e.into_inner()) = kept;
                Strategy::PerOperation(ops)
            }
            (strategy, _) => strategy,
        }
    }
}

// ---- the wire format (Jaeger's JSON; `strategyType` may be a number or a name) ----

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct StrategyResponse {
    pub(crate) strategy_type: Option<serde_json::Value>,
    pub(crate) probabilistic_sampling: Option<Probabilistic>,
    pub(crate) rate_limiting_sampling: Option<RateLimiting>,
    pub(crate) operation_sampling: Option<OperationSampling>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Probabilistic {
    pub(crate) sampling_rate: f64,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct RateLimiting {
    pub(crate) max_traces_per_second: f64,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct OperationSampling {
    pub(crate) default_sampling_probability: f64,
    pub(crate) default_lower_bound_traces_per_second: f64,
    pub(crate) per_operation_strategies: Vec<OperationStrategy>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct OperationStrategy {
    pub(crate) operation: String,
    pub(crate) probabilistic_sampling: Option<Probabilistic>,
}

fn clamp_probability(p: f64) -> Result<f64, String> {
    if p.is_finite() && (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("sampling probability {p} is outside 0..=1"))
    }
}

fn rate(r: f64) -> Result<f64, String> {
    if r.is_finite() && r >= 0.0 { Ok(r) } else { Err(format!("traces per second {r} is negative or not finite")) }
}

/// Parses a strategy document; every number is validated, so a bad answer never replaces a good one.
pub(crate) fn parse_strategy(body: &[u8]) -> Result<Strategy, String> {
    if body.len() > MAX_BODY {
        return Err(format!("strategy document of {} bytes exceeds {MAX_BODY}", body.len()));
    }
    let response: StrategyResponse =
        serde_json::from_slice(body).map_err(|e| format!("not a sampling strategy: {e}"))?;
    from_response(response)
}

pub(crate) fn from_response(response: StrategyResponse) -> Result<Strategy, String> {
    if let Some(ops) = response.operation_sampling {
        let mut probabilities = HashMap::new();
        for op in ops.per_operation_strategies.into_iter().take(MAX_OPERATIONS) {
            let p = op.probabilistic_sampling.map(|p| p.sampling_rate).unwrap_or(ops.default_sampling_probability);
            probabilities.insert(op.operation, clamp_probability(p)?);
        }
        return Ok(Strategy::PerOperation(PerOperation {
            default_probability: clamp_probability(ops.default_sampling_probability)?,
            lower_bound_per_second: rate(ops.default_lower_bound_traces_per_second)?,
            probabilities,
            lower_bounds: Mutex::new(HashMap::new()),
        }));
    }
    let kind = match &response.strategy_type {
        None => None,
        Some(serde_json::Value::Number(n)) => Some(n.as_u64().unwrap_or(u64::MAX)),
        Some(serde_json::Value::String(s)) => Some(match s.to_ascii_uppercase().as_str() {
            "PROBABILISTIC" => 0,
            "RATE_LIMITING" | "RATELIMITING" => 1,
            _ => u64::MAX,
        }),
        Some(other) => return Err(format!("strategyType {other} is neither a number nor a name")),
    };
    match (kind, response.probabilistic_sampling, response.rate_limiting_sampling) {
        (Some(1), _, Some(r)) | (None, None, Some(r)) => {
            let per_second = rate(r.max_traces_per_second)?;
            Ok(Strategy::RateLimiting { per_second, limiter: RateLimiter::new(per_second, per_second.max(1.0)) })
        }
        (Some(0) | None, Some(p), _) => Ok(Strategy::Probabilistic(clamp_probability(p.sampling_rate)?)),
        _ => Err("the strategy names no probabilistic, rate-limiting or per-operation settings".into()),
    }
}

// ---- gRPC (jaeger.api_v2.SamplingManager), the same messages as protobuf ----

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_jaeger_v1_76_sends() {
        let s = parse_strategy(br#"{"strategyType":0,"probabilisticSampling":{"samplingRate":0.25}}"#).unwrap();
        assert!(matches!(s, Strategy::Probabilistic(p) if p == 0.25));
        let s = parse_strategy(br#"{"strategyType":"RATE_LIMITING","rateLimitingSampling":{"maxTracesPerSecond":10}}"#)
            .unwrap();
        assert!(matches!(s, Strategy::RateLimiting { per_second, .. } if per_second == 10.0));
        let s = parse_strategy(
            br#"{"strategyType":0,"probabilisticSampling":{"samplingRate":0.1},
                "operationSampling":{"defaultSamplingProbability":0.1,"defaultLowerBoundTracesPerSecond":0,
                "perOperationStrategies":[{"operation":"checkout","probabilisticSampling":{"samplingRate":1}}]}}"#,
        )
        .unwrap();
        let Strategy::PerOperation(ops) = &s else { panic!("per-operation expected") };
        assert_eq!(ops.probabilities["checkout"], 1.0);
        let kept = (0..1000u128)
            .filter(|i| s.decide(TraceId::from(i * 0x9E3779B97F4A7C15_u128 + 1), "checkout").sampled)
            .count();
        assert_eq!(kept, 1000);
        let other = (0..4000u128)
            .filter(|i| s.decide(TraceId::from(i.wrapping_mul(0x9E3779B97F4A7C15F39CC0605CEDC835)), "browse").sampled)
            .count();
        assert!((300..500).contains(&other), "about 10 % of 4000, got {other}");
    }

    #[test]
    fn a_strategy_fetched_again_keeps_the_lower_bound_budget_already_spent() {
        let document = br#"{"strategyType":0,"operationSampling":{"defaultSamplingProbability":0,
            "defaultLowerBoundTracesPerSecond":0.001,"perOperationStrategies":[]}}"#;
        let first = parse_strategy(document).unwrap();
        let id = TraceId::from(7u128);
        assert!(first.decide(id, "checkout").sampled, "the lower bound lets the first trace through");
        assert!(!first.decide(id, "checkout").sampled, "and then one per 1000 s");
        // The next poll brings the same document: no new trace gets through.
        let second = parse_strategy(document).unwrap().continuing(&first);
        assert!(!second.decide(id, "checkout").sampled, "the budget spent before the poll stays spent");
        assert!(second.decide(id, "browse").sampled, "an operation not seen before has its own budget");
        // Without carrying it over, each poll would let one more through.
        assert!(parse_strategy(document).unwrap().decide(id, "checkout").sampled);

        let limited = br#"{"strategyType":1,"rateLimitingSampling":{"maxTracesPerSecond":0.001}}"#;
        let first = parse_strategy(limited).unwrap();
        assert!(first.decide(id, "x").sampled && !first.decide(id, "x").sampled);
        assert!(!parse_strategy(limited).unwrap().continuing(&first).decide(id, "x").sampled);
    }

    #[test]
    fn rejects_bad_documents_without_panicking() {
        for bad in
            [&b"{"[..], b"[]", br#"{"probabilisticSampling":{"samplingRate":7}}"#, br#"{"strategyType":{}}"#, b"{}"]
        {
            assert!(parse_strategy(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
        assert!(parse_strategy(&vec![b' '; MAX_BODY + 1]).is_err());
    }
}
