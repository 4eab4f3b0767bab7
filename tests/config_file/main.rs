//! `kotaemon-trace.toml` through the public entry points: `init()` refuses a wrong file before starting
//! anything, a file named by `KOTAEMON_TRACE_CONFIG` must exist, and the environment beats the file,
//! which beats the defaults.
//!
//! One test binary of its own, one `#[test]`: it changes the process environment and the working
//! directory, which no other test may see.

use kotaemon_trace::config::{Config, Origin, Sampler};
use kotaemon_trace::{init, InitError};
use std::path::PathBuf;

struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let dir = std::env::temp_dir().join(format!("kotaemon-trace-config-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const GOOD: &str = r#"
# The settings a team writes down; the environment can still override each one.
[service]
name = "rag-api"
resource_attributes = { "deployment.environment" = "staging" }

[exporter]
kind = "none"
endpoint = "http://127.0.0.1:4317"
protocol = "grpc"
timeout_ms = 3000

[sampler]
name = "parentbased_traceidratio"
arg = 0.25

[debug]
header = "x-force-trace"
"#;

fn clear_env() {
    for name in [
        "KOTAEMON_TRACE_CONFIG",
        "OTEL_SERVICE_NAME",
        "OTEL_TRACES_SAMPLER",
        "OTEL_TRACES_SAMPLER_ARG",
        "OTEL_TRACES_EXPORTER",
    ] {
        std::env::remove_var(name);
    }
}

#[test]
fn init_reads_the_file_under_the_environment_and_refuses_a_wrong_one() {
    let scratch = Scratch::new();
    clear_env();

    // A wrong file: init() fails before starting anything, naming file, line, key, value, accepted.
    let bad = scratch.write("bad.toml", "[service]\nname = \"rag-api\"\n\n[sampler]\nname = \"sometimes\"\n");
    std::env::set_var("KOTAEMON_TRACE_CONFIG", &bad);
    let error = init().map(drop).unwrap_err();
    let InitError::ConfigFile(file_error) = &error else { panic!("expected a file error, got {error}") };
    assert_eq!(file_error.path(), bad.as_path());
    assert_eq!((file_error.line(), file_error.key()), (5, "sampler.name"));
    let text = error.to_string();
    assert!(
        text.contains("bad.toml:5:8: sampler.name: \"sometimes\" is not valid: expected one of always_on"),
        "{text}"
    );

    // An unknown key is refused too, with the keys its section accepts.
    let typo = scratch.write("typo.toml", "[exporter]\nendpiont = \"http://127.0.0.1:4317\"\n");
    std::env::set_var("KOTAEMON_TRACE_CONFIG", &typo);
    let error = Config::load().unwrap_err();
    assert_eq!((error.line(), error.key()), (2, "exporter.endpiont"));
    assert!(error.problem().contains("exporter.endpoint"), "{error}");

    // A named file that does not exist is an error, not a silent default.
    std::env::set_var("KOTAEMON_TRACE_CONFIG", scratch.0.join("missing.toml"));
    let error = Config::load().unwrap_err();
    assert!(error.to_string().contains("missing.toml: cannot be read"), "{error}");

    // Precedence: env over file over default, and each value says where it came from.
    let good = scratch.write("good.toml", GOOD);
    std::env::set_var("KOTAEMON_TRACE_CONFIG", &good);
    std::env::set_var("OTEL_SERVICE_NAME", "from-env");
    let config = Config::load().unwrap();
    assert!(config.problems().is_empty(), "{:?}", config.problems());
    assert_eq!(config.service_name(), "from-env");
    assert_eq!(config.origin("OTEL_SERVICE_NAME"), Origin::Env { variable: "OTEL_SERVICE_NAME".into() });
    assert_eq!(config.sampler(), &Sampler::ParentBased(Box::new(Sampler::TraceIdRatio(0.25))));
    assert_eq!(
        config.origin("OTEL_TRACES_SAMPLER"),
        Origin::File { path: good.clone(), key: "sampler.name", line: 14 }
    );
    assert_eq!(config.otlp().timeout, std::time::Duration::from_secs(3));
    assert_eq!(config.debug().header, "x-force-trace");
    assert_eq!(config.batch().max_queue_size, 2048, "not in the file nor the env: the default");
    assert_eq!(config.origin("OTEL_BSP_MAX_QUEUE_SIZE"), Origin::Default);

    // An invalid environment value is reported, and the file's value (not the default) is used.
    std::env::set_var("OTEL_TRACES_SAMPLER", "sometimes");
    let config = Config::load().unwrap();
    assert_eq!(config.problems().len(), 1);
    assert_eq!(config.problems()[0].variable(), "OTEL_TRACES_SAMPLER");
    assert_eq!(config.sampler(), &Sampler::ParentBased(Box::new(Sampler::TraceIdRatio(0.25))));
    std::env::remove_var("OTEL_TRACES_SAMPLER");

    // init() with the good file starts (exporter "none" from the file) and shuts down cleanly.
    let guard = init().unwrap();
    guard.shutdown().unwrap();

    // Without KOTAEMON_TRACE_CONFIG, ./kotaemon-trace.toml is read when present.
    std::env::remove_var("KOTAEMON_TRACE_CONFIG");
    std::env::remove_var("OTEL_SERVICE_NAME");
    let here = std::env::current_dir().unwrap();
    std::env::set_current_dir(&scratch.0).unwrap();
    assert!(Config::load().unwrap().service_name().starts_with("unknown_service"), "no file yet");
    scratch.write("kotaemon-trace.toml", GOOD);
    let from_cwd = Config::load();
    std::env::set_current_dir(here).unwrap();
    assert_eq!(from_cwd.unwrap().service_name(), "rag-api");
    clear_env();
}
