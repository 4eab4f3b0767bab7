//! `kotaemon-trace.toml` from arbitrary text.
//!
//! Invariants: no panic; an accepted file gives a configuration whose `Debug` renders and that has no
//! problems (a file is refused whole, never half-applied); a refusal renders and names a line within the
//! text. (That secret values never show in refusals is a unit test of `config/file.rs`.)
#![no_main]

use kotaemon_trace::__hooks::fuzz::config_file;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match config_file(text) {
        Ok(config) => {
            let _ = format!("{config:?}");
            assert!(config.problems().is_empty(), "an accepted file left problems: {:?}", config.problems());
        }
        Err(error) => {
            let shown = error.to_string();
            assert!(error.line() <= text.lines().count().max(1) + 1, "line {} past the text: {shown}", error.line());
        }
    }
});
