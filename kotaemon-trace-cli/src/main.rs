//! `kotaemon-trace`: the command-line companion of the kotaemon-trace runtime.
//!
//! - `debug -- <command…>`: one fully traced run, its traces printed as trees with Jaeger links;
//! - `doctor`: the effective configuration and where each value came from, then end-to-end checks;
//! - `explain <trace-id>`: how an answer was produced, read back from the trace;
//! - `slow --service NAME --min-duration 5s`: the slowest recent traces and the step to blame.
//!
//! Jaeger's query API address: `--jaeger-url`, else `KOTAEMON_TRACE_JAEGER_URL`, else the config file,
//! else `http://127.0.0.1:16686`.
#![forbid(unsafe_code)]

mod commands;
mod duration;
mod exit;
mod jaeger;
mod probe;
mod render;
mod settings;
mod trace;

use clap::{Parser, Subcommand};
use std::ffi::OsString;
use std::process::ExitCode;
use std::time::Duration;

const URL_HELP: &str = "Jaeger's query API (the UI port). Else KOTAEMON_TRACE_JAEGER_URL, else the config file, else http://127.0.0.1:16686";

#[derive(Parser, Debug)]
#[command(
    name = "kotaemon-trace",
    version,
    about = "Debug runs, configuration checks and trace read-back for services traced with kotaemon-trace",
    after_help = exit::HELP
)]
struct Cli {
    #[arg(long, global = true, value_name = "URL", help = URL_HELP)]
    jaeger_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a command fully traced and print the traces it produced (links and trees)
    ///
    /// Finds a Jaeger (the configured one; else starts the locally built one with scripts/jaeger.sh,
    /// located through KOTAEMON_TRACE_JAEGER_SCRIPT or above the binary or the current directory; else
    /// prints how to get one). The command runs with OTEL_TRACES_SAMPLER=always_on, debug forcing on
    /// (KOTAEMON_TRACE_DEBUG_PER_SECOND=1000), tail sampling off, and OTLP/HTTP export to that Jaeger
    /// (its host, port 4318, or --otlp-endpoint / KOTAEMON_TRACE_JAEGER_OTLP_ENDPOINT); OTLP headers are
    /// not passed on. Its traces are recognised by the resource attribute kotaemon.debug_run, so other
    /// programs using the same Jaeger are never mixed in. The report goes to stderr.
    #[command(after_help = exit::HELP)]
    Debug {
        /// Only look for the run's traces under this service (default: every service Jaeger knows)
        #[arg(long, value_name = "NAME")]
        service: Option<String>,
        /// Jaeger's OTLP/HTTP base URL (default: the query host, port 4318)
        #[arg(long, value_name = "URL")]
        otlp_endpoint: Option<String>,
        /// Longest wait for the run's traces to arrive after the command exits
        #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
        wait: Duration,
        /// Stop the Jaeger this run started once the report is printed (default: leave it running for the links)
        #[arg(long)]
        stop_jaeger: bool,
        /// The command and its arguments, after `--`
        #[arg(last = true, required = true, num_args = 1.., value_name = "COMMAND")]
        command: Vec<OsString>,
    },
    /// Show the effective configuration and check that a span reaches Jaeger
    ///
    /// Prints every setting kotaemon_trace::init() would use and where it came from (env or default),
    /// with secrets masked (header values, URL passwords, the pseudonym key). Then checks: values valid,
    /// exporter on, something listening at the endpoint, the protocol matching what it speaks (port 4318
    /// with grpc and 4317 with http/protobuf get their own message), a test span exported with that
    /// configuration, and the span read back through Jaeger's query API.
    #[command(after_help = exit::HELP)]
    Doctor {
        /// Longest wait for the test span to appear in Jaeger
        #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
        wait: Duration,
    },
    /// How an answer was produced: steps, models, documents, tools, caller, errors
    ///
    /// Reads the trace from Jaeger's query API (waiting, with progress on stderr, while it is still
    /// arriving) and prints the step tree with durations and the critical path, the models and their
    /// parameters and token counts, the documents retrieved (ids, scores), the tools called and their
    /// outcome, the caller's pseudonymous id (user.anonymous_id) and every error. Only what was exported is
    /// shown: redacted values stay redacted.
    #[command(after_help = exit::HELP)]
    Explain {
        /// The trace id (32 hex digits, as Jaeger and the logs show it)
        #[arg(value_name = "TRACE_ID", value_parser = parse_trace_id)]
        trace_id: String,
        /// Print JSON for tools instead of text
        #[arg(long)]
        json: bool,
        /// Longest wait for a trace that has not (fully) arrived yet
        #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
        wait: Duration,
    },
    /// The slowest recent traces of a service and the step that took most of their time
    ///
    /// The step named is the span with the largest share of the trace's critical path (the chain of
    /// steps the request waited on, computed as Jaeger's UI does): speeding it up shortens the request.
    /// Plain duration would always name the root; plain self time would blame steps that ran in
    /// parallel with a longer one. Reads up to 500 matching traces and sorts them by duration.
    #[command(after_help = exit::HELP)]
    Slow {
        /// The service (OTEL_SERVICE_NAME of the traced program)
        #[arg(long, value_name = "NAME")]
        service: String,
        /// Only traces at least this long (5s, 250ms, 1m30s)
        #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
        min_duration: Duration,
        /// How many traces to list
        #[arg(long, value_name = "N", default_value_t = 10)]
        limit: usize,
        /// How far back to look
        #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = parse_duration)]
        lookback: Duration,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    duration::parse(text)
}

fn parse_trace_id(text: &str) -> Result<String, String> {
    commands::trace_id(text)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // What `init()` reads; a wrong file is `doctor`'s to report, the query API then comes from the
    // environment alone.
    let config = kotaemon_trace::config::Config::load().unwrap_or_else(|_| kotaemon_trace::config::Config::from_env());
    let (url, source) = jaeger::resolve_url(cli.jaeger_url.as_deref(), &config);
    let client = jaeger::Client::new(&url, Duration::from_secs(10));
    let result = match cli.command {
        Command::Explain { trace_id, json, wait } => commands::explain::run(&client, &trace_id, json, wait),
        Command::Slow { service, min_duration, limit, lookback, json } => {
            commands::slow::run(&client, &commands::slow::Args { service, min_duration, limit, lookback, json })
        }
        Command::Doctor { wait } => commands::doctor::run(&client, &source, wait),
        Command::Debug { service, otlp_endpoint, wait, stop_jaeger, command } => commands::debug::run(
            &url,
            &source,
            &commands::debug::Args { command, service, otlp_endpoint, wait, stop_jaeger },
        ),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(fail) => {
            eprintln!("kotaemon-trace: {fail}");
            ExitCode::from(if fail.code == exit::OK { exit::FAILURE } else { fail.code })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_consistent_and_every_command_documents_exit_codes() {
        Cli::command().debug_assert();
        for sub in Cli::command().get_subcommands() {
            let help = sub.clone().render_long_help().to_string();
            assert!(help.contains("Exit codes:") && help.contains("5    doctor"), "{}: {help}", sub.get_name());
        }
    }

    #[test]
    fn arguments_parse_into_commands() {
        let cli = Cli::try_parse_from([
            "kotaemon-trace",
            "slow",
            "--service",
            "rag",
            "--min-duration",
            "1.5s",
            "--jaeger-url",
            "http://j:1",
        ])
        .unwrap();
        assert_eq!(cli.jaeger_url.as_deref(), Some("http://j:1"));
        match cli.command {
            Command::Slow { service, min_duration, limit, .. } => {
                assert_eq!((service.as_str(), min_duration, limit), ("rag", Duration::from_millis(1500), 10));
            }
            other => panic!("{other:?}"),
        }
        let cli = Cli::try_parse_from(["kotaemon-trace", "debug", "--", "cargo", "run", "--example", "x"]).unwrap();
        match cli.command {
            Command::Debug { command, .. } => assert_eq!(command, ["cargo", "run", "--example", "x"]),
            other => panic!("{other:?}"),
        }
        let err = Cli::try_parse_from(["kotaemon-trace", "explain", "not-hex"]).unwrap_err();
        assert_eq!(err.exit_code(), i32::from(exit::USAGE));
        assert!(err.to_string().contains("invalid trace id"), "{err}");
        let err =
            Cli::try_parse_from(["kotaemon-trace", "slow", "--service", "s", "--min-duration", "soon"]).unwrap_err();
        assert!(err.to_string().contains("invalid duration"), "{err}");
        assert!(Cli::try_parse_from(["kotaemon-trace", "debug"]).is_err(), "debug needs a command");
    }
}
