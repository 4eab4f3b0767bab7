//! Exit codes, one per kind of failure, documented in `--help` and docs/cli.md.

use std::fmt;

/// Success.
pub const OK: u8 = 0;
/// A failure not covered below (e.g. writing the output failed).
pub const FAILURE: u8 = 1;
/// Bad arguments: an unknown flag, an invalid trace id or duration (clap exits with it itself).
#[allow(dead_code)]
pub const USAGE: u8 = 2;
/// Jaeger's query API could not be reached or answered with an error; `debug` found no Jaeger to use.
pub const JAEGER: u8 = 3;
/// `explain`: Jaeger does not have the trace (after waiting for it).
pub const NOT_FOUND: u8 = 4;
/// `doctor`: a check failed (invalid value, nothing listening, wrong protocol for the port, export
/// failed, the test span did not arrive).
pub const CHECK_FAILED: u8 = 5;
/// `debug`: the command could not be started (not found, not executable).
pub const CANNOT_RUN: u8 = 127;

/// The exit-code table as printed at the end of `--help`.
pub const HELP: &str = "\
Exit codes:
  0    success (doctor: every check passed)
  1    other failure
  2    usage error: bad flag, trace id or duration
  3    Jaeger's query API unreachable or failing; debug: no Jaeger found or started
  4    explain: the trace is not in Jaeger (after waiting for it)
  5    doctor: a check failed (each failure prints its own message)
  debug returns the command's own exit code (128+N when a signal N ended it; 127 if it could not start)";

/// An error that ends the command with a message and an exit code.
#[derive(Debug)]
pub struct Fail {
    pub code: u8,
    pub message: String,
}

impl Fail {
    pub fn new(code: u8, message: impl Into<String>) -> Fail {
        Fail { code, message: message.into() }
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<crate::jaeger::Error> for Fail {
    fn from(e: crate::jaeger::Error) -> Fail {
        Fail::new(
            JAEGER,
            format!(
                "Jaeger's query API failed: {e}\n  (set --jaeger-url or KOTAEMON_TRACE_JAEGER_URL; `kotaemon-trace doctor` checks the setup)"
            ),
        )
    }
}
