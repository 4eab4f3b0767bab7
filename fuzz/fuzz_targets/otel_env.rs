//! Every `OTEL_*` / `KOTAEMON_TRACE_*` variable the configuration reads, from arbitrary bytes.
//!
//! Input: lines `NAME=VALUE` (the environment), or, when the first byte is odd, the rest of the input as
//! the value of every variable at once. Invariants: no panic; `Debug` and every problem's `Display`
//! render; a problem never shows a header value or the redaction key.
#![no_main]

use kotaemon_trace::__hooks::fuzz::config_from_lookup;
use libfuzzer_sys::fuzz_target;
use std::collections::HashMap;

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let config = if mode % 2 == 1 {
        config_from_lookup(|_| Some(text.to_string()))
    } else {
        let map: HashMap<&str, &str> = text.lines().filter_map(|line| line.split_once('=')).collect();
        config_from_lookup(|name| map.get(name).map(|v| v.to_string()))
    };
    let _ = format!("{config:?}");
    for problem in config.problems() {
        let _ = problem.to_string();
        let value = problem.value();
        if problem.variable().ends_with("_HEADERS") {
            assert!(value.split(',').all(|e| e == "***" || e.ends_with("=***")), "a header value is shown: {value:?}");
        }
        if problem.variable() == "KOTAEMON_TRACE_REDACTION_KEY" {
            assert!(value.ends_with("hidden)") || value.ends_with("not shown)"), "the key is shown: {value:?}");
        }
    }
});
