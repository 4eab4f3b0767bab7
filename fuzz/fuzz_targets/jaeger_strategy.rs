//! Jaeger sampling-strategy documents as the remote sampler receives them over HTTP (JSON), then a few
//! sampling decisions with whatever was accepted. Invariants: no panic; documents over the bound refused.
#![no_main]

use kotaemon_trace::__hooks::fuzz::{jaeger_strategy, MAX_STRATEGY_BYTES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let result = jaeger_strategy(data, "GET /api/answer");
    if data.len() > MAX_STRATEGY_BYTES {
        assert!(result.is_err());
    }
});
