//! `debug -- <command…>`: one traced run. Finds a Jaeger (the configured one; else the locally built one,
//! started with `scripts/jaeger.sh start`; else says how to get one), runs the command with 100 %
//! sampling, debug forcing on and export to that Jaeger, then prints every trace the run produced with
//! its Jaeger UI link and a tree (durations, errors, the critical path marked). Exits with the command's
//! exit code.
//!
//! The run's traces are found by a resource attribute, `kotaemon.debug_run=<random id>`, added to
//! `OTEL_RESOURCE_ATTRIBUTES` for the child: Jaeger shows it as a process tag, so other programs sending
//! to the same Jaeger at the same time are never mixed in.

use super::Progress;
use crate::duration::human_us;
use crate::exit::{CANNOT_RUN, Fail, JAEGER};
use crate::jaeger::{Client, Search, now_us, ui_link};
use crate::probe::{self, Endpoint};
use crate::render;
use crate::settings::Source;
use crate::trace::Trace;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Names the `jaeger.sh` script to start a local Jaeger with.
pub const SCRIPT_ENV: &str = "KOTAEMON_TRACE_JAEGER_SCRIPT";
/// Names Jaeger's OTLP/HTTP base URL when it is not the query host's port 4318.
pub const OTLP_ENV: &str = "KOTAEMON_TRACE_JAEGER_OTLP_ENDPOINT";
/// The resource attribute that marks the run's traces.
pub const RUN_ATTRIBUTE: &str = "kotaemon.debug_run";
/// Where `scripts/jaeger.sh start` serves.
const LOCAL_QUERY: &str = "http://127.0.0.1:16686";
const LOCAL_OTLP: &str = "http://127.0.0.1:4318";
/// Longest wait for `jaeger.sh start` (it waits up to 60 s for readiness itself).
const START_DEADLINE: Duration = Duration::from_secs(90);

pub struct Args {
    pub command: Vec<OsString>,
    pub service: Option<String>,
    pub otlp_endpoint: Option<String>,
    pub wait: Duration,
    pub stop_jaeger: bool,
}

/// The Jaeger the run exports to.
struct Found {
    query: String,
    otlp: String,
    /// The script that started it, when this run started it.
    started_by: Option<PathBuf>,
}

pub fn run(url: &str, source: &Source, args: &Args) -> Result<u8, Fail> {
    let found = find_jaeger(url, source, args.otlp_endpoint.clone())?;
    let client = Client::new(&found.query, Duration::from_secs(5));
    let run_id = run_id();
    let shown = args.command.iter().map(|a| a.to_string_lossy()).collect::<Vec<_>>().join(" ");
    eprintln!(
        "kotaemon-trace debug: running `{shown}` with 100% sampling and debug forcing, exporting to {} (Jaeger {}), run {run_id}",
        found.otlp, found.query
    );
    let lookup = |name: &str| std::env::var(name).ok();
    let mut command = Command::new(&args.command[0]);
    command.args(&args.command[1..]);
    for (name, value) in child_env(&lookup, &found.otlp, &run_id) {
        match value {
            Some(v) => command.env(name, v),
            None => command.env_remove(name),
        };
    }
    let started_us = now_us();
    let mut child = command.spawn().map_err(|e| Fail::new(CANNOT_RUN, format!("cannot run `{shown}`: {e}")))?;
    let status = child.wait().map_err(|e| Fail::new(CANNOT_RUN, format!("waiting for `{shown}` failed: {e}")))?;
    let code = exit_code(&status);
    eprintln!("kotaemon-trace debug: `{shown}` exited with code {code}; collecting its traces from Jaeger");

    // Every service unless told: the program may name its service in code, whatever OTEL_SERVICE_NAME says.
    match collect(&client, args.service.as_deref(), &run_id, started_us, args.wait) {
        Ok(traces) if traces.is_empty() => eprintln!(
            "\nkotaemon-trace debug: no trace of this run reached Jaeger within {} s.\n  \
             Does the program call kotaemon_trace::init() (or use another OpenTelemetry SDK honouring OTEL_*), \
             and flush before it exits (keep the guard alive to the end of main, or call guard.shutdown())?",
            args.wait.as_secs()
        ),
        Ok(traces) => eprint!("{}", report(&traces, &found.query)),
        Err(e) => eprintln!("kotaemon-trace debug: reading the run's traces from Jaeger failed: {e}"),
    }
    if let Some(script) = &found.started_by {
        if args.stop_jaeger {
            eprintln!("kotaemon-trace debug: stopping the Jaeger started for this run");
            let _ = run_script(script, "stop", Duration::from_secs(30));
        } else {
            eprintln!(
                "kotaemon-trace debug: the Jaeger started for this run keeps running so the links work; stop it with `{} stop`",
                script.display()
            );
        }
    }
    Ok(code)
}

/// The child's environment changes: `Some` sets, `None` removes.
pub fn child_env(
    lookup: &dyn Fn(&str) -> Option<String>,
    otlp: &str,
    run_id: &str,
) -> Vec<(&'static str, Option<String>)> {
    let resource = match lookup("OTEL_RESOURCE_ATTRIBUTES").filter(|r| !r.trim().is_empty()) {
        Some(existing) => format!("{},{RUN_ATTRIBUTE}={run_id}", existing.trim().trim_end_matches(',')),
        None => format!("{RUN_ATTRIBUTE}={run_id}"),
    };
    vec![
        ("OTEL_SDK_DISABLED", Some("false".into())),
        ("OTEL_TRACES_EXPORTER", Some("otlp".into())),
        ("OTEL_TRACES_SAMPLER", Some("always_on".into())),
        ("OTEL_TRACES_SAMPLER_ARG", None),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", Some("http/protobuf".into())),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", Some(otlp.to_owned())),
        // Signal-specific settings would win over the ones above; headers are credentials meant for
        // another collector and must not travel to this Jaeger.
        ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", None),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", None),
        ("OTEL_EXPORTER_OTLP_HEADERS", None),
        ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", None),
        // Send batches quickly so the run's traces are in Jaeger when the report is printed.
        ("OTEL_BSP_SCHEDULE_DELAY", Some("200".into())),
        // Debug forcing on: the default header honoured, and no cap worth hitting in a debug run.
        ("KOTAEMON_TRACE_DEBUG_HEADER", None),
        ("KOTAEMON_TRACE_DEBUG_PER_SECOND", Some("1000".into())),
        // Tail sampling would hold back fast, successful traces: every trace is wanted here.
        ("KOTAEMON_TRACE_TAIL_LATENCY_MS", None),
        ("OTEL_RESOURCE_ATTRIBUTES", Some(resource)),
    ]
}

/// The exit code to pass on: the child's, or 128 + the signal that ended it.
fn exit_code(status: &std::process::ExitStatus) -> u8 {
    if let Some(code) = status.code() {
        return u8::try_from(code).unwrap_or(1);
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt as _;
        if let Some(signal) = status.signal() {
            return u8::try_from(128 + signal).unwrap_or(1);
        }
    }
    1
}

fn run_id() -> String {
    use std::hash::{BuildHasher as _, Hasher as _};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_i64(now_us());
    h.write_u32(std::process::id());
    format!("{:016x}", h.finish())
}

fn find_jaeger(url: &str, source: &Source, otlp_flag: Option<String>) -> Result<Found, Fail> {
    let configured_otlp = otlp_flag.or_else(|| std::env::var(OTLP_ENV).ok().filter(|v| !v.trim().is_empty()));
    let why = match Client::new(url, Duration::from_secs(3)).services() {
        Ok(_) => {
            let otlp = match configured_otlp {
                Some(o) => o,
                None => otlp_beside(url)?,
            };
            check_otlp_listening(url, &otlp)?;
            return Ok(Found { query: url.to_owned(), otlp, started_by: None });
        }
        Err(e) => e.to_string(),
    };
    eprintln!("kotaemon-trace debug: Jaeger at {url} ({source}) is not reachable: {why}");
    let script = match locate_script(
        std::env::var_os(SCRIPT_ENV).map(PathBuf::from),
        std::env::current_exe().ok(),
        std::env::current_dir().ok(),
    ) {
        Ok(script) => script,
        Err(looked) => return Err(Fail::new(JAEGER, how_to_get_jaeger(url, &why, &looked))),
    };
    let binary = run_script(&script, "path", Duration::from_secs(10)).ok().map(|out| out.trim().to_owned());
    if !binary.as_deref().is_some_and(|b| !b.is_empty() && Path::new(b).exists()) {
        let looked = format!("{} found, but the Jaeger it builds is not built yet", script.display());
        return Err(Fail::new(JAEGER, how_to_get_jaeger(url, &why, &looked)));
    }
    eprintln!(
        "kotaemon-trace debug: starting the local Jaeger with `{} start` (up to {} s)",
        script.display(),
        START_DEADLINE.as_secs()
    );
    if let Err(e) = run_script(&script, "start", START_DEADLINE) {
        let looked = format!("`{} start` failed: {e}", script.display());
        return Err(Fail::new(JAEGER, how_to_get_jaeger(url, &why, &looked)));
    }
    if let Err(e) = Client::new(LOCAL_QUERY, Duration::from_secs(3)).services() {
        let looked = format!("`{} start` finished but {LOCAL_QUERY} does not answer: {e}", script.display());
        return Err(Fail::new(JAEGER, how_to_get_jaeger(url, &why, &looked)));
    }
    Ok(Found {
        query: LOCAL_QUERY.into(),
        otlp: configured_otlp.unwrap_or_else(|| LOCAL_OTLP.into()),
        started_by: Some(script),
    })
}

/// Jaeger's OTLP/HTTP port on the query API's host.
fn otlp_beside(query_url: &str) -> Result<String, Fail> {
    let e = Endpoint::parse(query_url).map_err(|why| Fail::new(JAEGER, why))?;
    let host = if e.host.contains(':') { format!("[{}]", e.host) } else { e.host };
    Ok(format!("http://{host}:4318"))
}

fn check_otlp_listening(query: &str, otlp: &str) -> Result<(), Fail> {
    let endpoint = Endpoint::parse(otlp).map_err(|why| Fail::new(JAEGER, format!("OTLP endpoint: {why}")))?;
    probe::connect(&endpoint, Duration::from_secs(3)).map(drop).map_err(|e| {
        Fail::new(
            JAEGER,
            format!(
                "Jaeger's query API answers at {query}, but nothing accepts OTLP at {otlp} ({e:?}).\n  \
                 Pass Jaeger's OTLP/HTTP base URL with --otlp-endpoint or {OTLP_ENV}."
            ),
        )
    })
}

/// `scripts/jaeger.sh`: from `KOTAEMON_TRACE_JAEGER_SCRIPT` (which must exist), else the nearest
/// `scripts/jaeger.sh` above the binary (a binary built in the workspace), else above the current
/// directory (a checkout). `Err` says where it looked.
pub fn locate_script(from_env: Option<PathBuf>, exe: Option<PathBuf>, cwd: Option<PathBuf>) -> Result<PathBuf, String> {
    if let Some(path) = from_env {
        return if path.is_file() { Ok(path) } else { Err(format!("{SCRIPT_ENV}={} does not exist", path.display())) };
    }
    for start in [exe.as_deref().and_then(Path::parent), cwd.as_deref()].into_iter().flatten() {
        for dir in start.ancestors() {
            let candidate = dir.join("scripts").join("jaeger.sh");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    Err(format!(
        "no scripts/jaeger.sh above the binary ({}) or the current directory ({}), and {SCRIPT_ENV} is not set",
        exe.map(|p| p.display().to_string()).unwrap_or_default(),
        cwd.map(|p| p.display().to_string()).unwrap_or_default()
    ))
}

fn how_to_get_jaeger(url: &str, why: &str, looked: &str) -> String {
    format!(
        "no Jaeger to send the run's traces to.\n  \
         - {url} is not reachable: {why}\n  \
         - local Jaeger: {looked}\n\
         Get one, then run the same command again:\n  \
         - from a kotaemon-trace checkout (Go needed; the first build takes about 8 minutes):\n      \
         scripts/jaeger.sh build && scripts/jaeger.sh start\n  \
         - or with Docker:\n      \
         docker run -d --name jaeger -p 16686:16686 -p 4317:4317 -p 4318:4318 jaegertracing/jaeger:latest\n  \
         - or point at a running one: --jaeger-url URL (or {})\n  \
         Set {SCRIPT_ENV}=/path/to/scripts/jaeger.sh to let `debug` start it for you.",
        crate::jaeger::URL_ENV
    )
}

/// Runs `bash <script> <verb>` within `deadline`, its output shown on stderr; returns its stdout for
/// `path`.
fn run_script(script: &Path, verb: &str, deadline: Duration) -> Result<String, String> {
    let capture = verb == "path";
    let mut child = Command::new("bash")
        .arg(script)
        .arg(verb)
        .stdin(Stdio::null())
        .stdout(if capture { Stdio::piped() } else { Stdio::from(std::io::stderr()) })
        .stderr(Stdio::from(std::io::stderr()))
        .spawn()
        .map_err(|e| format!("cannot run bash: {e}"))?;
    let until = Instant::now() + deadline;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                let mut out = String::new();
                if let Some(mut stdout) = child.stdout.take() {
                    use std::io::Read as _;
                    let _ = stdout.read_to_string(&mut out);
                }
                return if status.success() { Ok(out) } else { Err(format!("exit status {status}")) };
            }
            Ok(None) if Instant::now() >= until => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("did not finish within {} s", deadline.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => return Err(e.to_string()),
        }
    }
}

/// Whether a Jaeger trace carries this run's marker in one of its processes.
fn from_this_run(json: &serde_json::Value, run_id: &str) -> bool {
    json["processes"].as_object().is_some_and(|processes| {
        processes.values().any(|p| {
            p["tags"]
                .as_array()
                .is_some_and(|tags| tags.iter().any(|t| t["key"] == RUN_ATTRIBUTE && t["value"] == run_id))
        })
    })
}

/// The run's traces, polled until their set and span counts stop changing (or `wait` passes).
fn collect(
    client: &Client,
    service: Option<&str>,
    run_id: &str,
    started_us: i64,
    wait: Duration,
) -> Result<Vec<Trace>, crate::jaeger::Error> {
    const POLL: Duration = Duration::from_millis(500);
    let deadline = Instant::now() + wait;
    let mut progress = Progress::new(false);
    let mut previous: Option<Vec<(String, usize)>> = None;
    loop {
        let services: Vec<String> = match service {
            Some(s) => vec![s.to_owned()],
            None => client.services()?.into_iter().filter(|s| s != "jaeger").collect(),
        };
        let mut traces: Vec<Trace> = Vec::new();
        for s in &services {
            let search = Search {
                service: s,
                start_us: started_us - 1_000_000,
                end_us: now_us() + 60_000_000,
                min_duration: None,
                limit: 200,
            };
            for json in client.search(&search)? {
                if from_this_run(&json, run_id)
                    && let Ok(trace) = Trace::from_jaeger(&json)
                    && !traces.iter().any(|t| t.trace_id == trace.trace_id)
                {
                    traces.push(trace);
                }
            }
        }
        let shape: Vec<(String, usize)> = {
            let mut s: Vec<(String, usize)> = traces.iter().map(|t| (t.trace_id.clone(), t.spans.len())).collect();
            s.sort();
            s
        };
        let settled = !traces.is_empty() && traces.iter().all(|t| t.orphans == 0) && previous.as_ref() == Some(&shape);
        let left = deadline.saturating_duration_since(Instant::now());
        if settled || left.is_zero() {
            traces.sort_by_key(Trace::start_us);
            return Ok(traces);
        }
        progress.tick(|| {
            format!("waiting for the run's traces in Jaeger: {} so far ({} s left)", traces.len(), left.as_secs())
        });
        previous = Some(shape);
        std::thread::sleep(POLL.min(left));
    }
}

/// Each trace: id, root, duration, errors, link, tree.
fn report(traces: &[Trace], jaeger_url: &str) -> String {
    let mut out = format!(
        "\nkotaemon-trace debug: {} trace(s) from this run (* = on the critical path, the slowest chain of steps):\n",
        traces.len()
    );
    for t in traces {
        let root = t.main_root().map(|r| t.spans[r].name.clone()).unwrap_or_default();
        let errors = t.spans.iter().filter(|s| s.is_error()).count();
        out.push_str(&format!(
            "\ntrace {}  {root}  {}  {} span(s){}  service {}\n  {}\n",
            t.trace_id,
            human_us(t.duration_us()),
            t.spans.len(),
            if errors > 0 { format!(", {errors} error(s)") } else { String::new() },
            t.services().join(", "),
            ui_link(jaeger_url, &t.trace_id)
        ));
        out.push_str(&render::tree(t, &render::no_details));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn the_child_samples_everything_and_exports_to_the_jaeger_found() {
        let vars: HashMap<&str, &str> = [
            ("OTEL_TRACES_SAMPLER", "traceidratio"),
            ("OTEL_TRACES_SAMPLER_ARG", "0.01"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://prod-collector:4318/v1/traces"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer s3cr3t"),
            ("OTEL_RESOURCE_ATTRIBUTES", "team=search,"),
            ("KOTAEMON_TRACE_TAIL_LATENCY_MS", "5000"),
        ]
        .into_iter()
        .collect();
        let lookup = |n: &str| vars.get(n).map(|v| v.to_string());
        let env: HashMap<&str, Option<String>> =
            child_env(&lookup, "http://127.0.0.1:4318", "abc").into_iter().collect();
        assert_eq!(env["OTEL_TRACES_SAMPLER"].as_deref(), Some("always_on"));
        assert_eq!(env["OTEL_TRACES_SAMPLER_ARG"], None);
        assert_eq!(env["OTEL_EXPORTER_OTLP_ENDPOINT"].as_deref(), Some("http://127.0.0.1:4318"));
        assert_eq!(env["OTEL_EXPORTER_OTLP_PROTOCOL"].as_deref(), Some("http/protobuf"));
        assert_eq!(env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"], None, "it would win over the endpoint");
        assert_eq!(env["OTEL_EXPORTER_OTLP_HEADERS"], None, "credentials stay with their collector");
        assert_eq!(env["KOTAEMON_TRACE_TAIL_LATENCY_MS"], None);
        assert_eq!(env["KOTAEMON_TRACE_DEBUG_PER_SECOND"].as_deref(), Some("1000"));
        assert_eq!(env["OTEL_RESOURCE_ATTRIBUTES"].as_deref(), Some("team=search,kotaemon.debug_run=abc"));
        let fresh: HashMap<&str, Option<String>> = child_env(&|_| None, "http://j:4318", "x").into_iter().collect();
        assert_eq!(fresh["OTEL_RESOURCE_ATTRIBUTES"].as_deref(), Some("kotaemon.debug_run=x"));
    }

    #[test]
    fn the_script_is_found_from_the_env_the_binary_or_the_checkout() {
        let root = std::env::temp_dir().join(format!("kt-cli-locate-{}", std::process::id()));
        let scripts = root.join("ws/scripts");
        std::fs::create_dir_all(&scripts).unwrap();
        std::fs::create_dir_all(root.join("ws/target/debug")).unwrap();
        std::fs::create_dir_all(root.join("elsewhere")).unwrap();
        let script = scripts.join("jaeger.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        let exe = root.join("ws/target/debug/kotaemon-trace");
        assert_eq!(locate_script(None, Some(exe.clone()), None), Ok(script.clone()), "above the binary");
        assert_eq!(
            locate_script(None, Some(root.join("elsewhere/bin")), Some(root.join("ws"))),
            Ok(script.clone()),
            "above the cwd"
        );
        assert_eq!(locate_script(Some(script.clone()), None, None), Ok(script.clone()));
        let missing = locate_script(Some(root.join("nope.sh")), Some(exe), None).unwrap_err();
        assert!(missing.contains("KOTAEMON_TRACE_JAEGER_SCRIPT=") && missing.contains("does not exist"), "{missing}");
        let err = locate_script(None, Some(root.join("elsewhere/bin")), Some(root.join("elsewhere"))).unwrap_err();
        assert!(err.contains("no scripts/jaeger.sh"), "{err}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn the_how_to_names_every_way_to_get_a_jaeger() {
        let text = how_to_get_jaeger("http://127.0.0.1:16686", "connection refused", "no script");
        for expected in [
            "scripts/jaeger.sh build && scripts/jaeger.sh start",
            "docker run",
            "--jaeger-url",
            SCRIPT_ENV,
            "connection refused",
        ] {
            assert!(text.contains(expected), "{expected}: {text}");
        }
    }

    #[test]
    fn only_traces_marked_with_this_run_are_taken() {
        let mine = serde_json::json!({"processes": {"p1": {"serviceName": "s", "tags": [{"key": RUN_ATTRIBUTE, "type": "string", "value": "r1"}]}}});
        let other = serde_json::json!({"processes": {"p1": {"serviceName": "s", "tags": [{"key": RUN_ATTRIBUTE, "type": "string", "value": "r2"}]}}});
        assert!(from_this_run(&mine, "r1"));
        assert!(!from_this_run(&other, "r1"));
        assert!(!from_this_run(&serde_json::json!({}), "r1"));
    }

    #[test]
    fn otlp_is_looked_for_beside_the_query_api() {
        assert_eq!(otlp_beside("http://127.0.0.1:16686").unwrap(), "http://127.0.0.1:4318");
        assert_eq!(otlp_beside("http://[::1]:16686").unwrap(), "http://[::1]:4318");
    }
}
