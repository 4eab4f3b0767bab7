//! Jaeger's query API (the HTTP API its UI reads): where it is, and the three calls the commands need.

use crate::settings::Source;
use kotaemon_trace::config::{Config, Origin};
use serde_json::Value;
use std::time::Duration;

/// The query API address when nothing else says otherwise.
pub const DEFAULT_URL: &str = "http://127.0.0.1:16686";
/// The variable that names the query API.
pub const URL_ENV: &str = "KOTAEMON_TRACE_JAEGER_URL";

/// The query API address: `--jaeger-url`, else the configuration's (`KOTAEMON_TRACE_JAEGER_URL`, else
/// `jaeger.query_url` in the config file, as the runtime reads them), else `http://127.0.0.1:16686`; with
/// where it came from. A trailing `/` is dropped.
pub fn resolve_url(flag: Option<&str>, config: &Config) -> (String, Source) {
    if let Some(url) = flag.filter(|u| !u.trim().is_empty()) {
        return (url.trim().trim_end_matches('/').to_owned(), Source::Flag("--jaeger-url"));
    }
    match config.jaeger_query_url() {
        Some(url) => (url.to_owned(), Source::Config(config.origin(URL_ENV))),
        None => (DEFAULT_URL.to_owned(), Source::Config(Origin::Default)),
    }
}

/// Why a call failed.
#[derive(Debug)]
pub enum Error {
    /// Nothing answered, or not HTTP.
    Unreachable(String),
    /// Jaeger answered with an error status or a body that is not its JSON.
    Bad(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Unreachable(why) | Error::Bad(why) => f.write_str(why),
        }
    }
}

/// A client for one Jaeger.
#[derive(Clone)]
pub struct Client {
    pub url: String,
    agent: ureq::Agent,
}

/// One `/api/traces` search.
#[derive(Clone, Debug, Default)]
pub struct Search<'a> {
    pub service: &'a str,
    pub start_us: i64,
    pub end_us: i64,
    pub min_duration: Option<Duration>,
    pub limit: usize,
}

impl Client {
    pub fn new(url: &str, timeout: Duration) -> Client {
        let agent =
            ureq::Agent::config_builder().timeout_global(Some(timeout)).http_status_as_error(false).build().into();
        Client { url: url.trim_end_matches('/').to_owned(), agent }
    }

    /// GET a path; `Ok(None)` for 404.
    fn get(&self, path: &str) -> Result<Option<Value>, Error> {
        if self.url.starts_with("https://") {
            return Err(Error::Unreachable(format!(
                "{}: https is not supported by this build; reach the query API over http (e.g. through a port-forward)",
                self.url
            )));
        }
        let url = format!("{}{path}", self.url);
        let mut response = self.agent.get(&url).call().map_err(|e| Error::Unreachable(format!("{url}: {e}")))?;
        let status = response.status();
        let body = response.body_mut().read_to_string().map_err(|e| Error::Unreachable(format!("{url}: {e}")))?;
        if status.as_u16() == 404 {
            return Ok(None);
        }
        if !status.is_success() {
            let body: String = body.chars().take(300).collect();
            return Err(Error::Bad(format!("{url} answered {status}: {body}")));
        }
        serde_json::from_str(&body).map(Some).map_err(|e| {
            Error::Bad(format!("{url} did not answer with Jaeger's JSON ({e}); is this Jaeger's query port (16686)?"))
        })
    }

    /// The service names Jaeger knows; also the reachability check.
    pub fn services(&self) -> Result<Vec<String>, Error> {
        let json = self.get("/api/services")?.ok_or_else(|| {
            Error::Bad(format!("{}/api/services answered 404: this is not Jaeger's query API (port 16686)", self.url))
        })?;
        Ok(json["data"]
            .as_array()
            .map(|names| names.iter().filter_map(|n| n.as_str().map(str::to_owned)).collect())
            .unwrap_or_default())
    }

    /// One trace by id; `None` when Jaeger does not have it (yet).
    pub fn trace(&self, trace_id: &str) -> Result<Option<Value>, Error> {
        Ok(self
            .get(&format!("/api/traces/{trace_id}"))?
            .and_then(|json| json["data"].as_array().and_then(|d| d.first().cloned())))
    }

    /// Traces of a service in a time window.
    pub fn search(&self, search: &Search<'_>) -> Result<Vec<Value>, Error> {
        let mut path = format!(
            "/api/traces?service={}&start={}&end={}&limit={}",
            encode(search.service),
            search.start_us,
            search.end_us,
            search.limit
        );
        if let Some(min) = search.min_duration {
            path.push_str(&format!("&minDuration={}", crate::duration::go_string(min)));
        }
        Ok(self.get(&path)?.and_then(|json| json["data"].as_array().cloned()).unwrap_or_default())
    }
}

/// Percent-encodes a query parameter value.
pub fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The Jaeger UI page of a trace.
pub fn ui_link(url: &str, trace_id: &str) -> String {
    format!("{}/trace/{trace_id}", url.trim_end_matches('/'))
}

/// Microseconds since the Unix epoch, now.
pub fn now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_beats_config_beats_default() {
        let config = Config::builder().jaeger_query_url("http://from-config:16686").build();
        assert_eq!(
            resolve_url(Some("http://flag:1/"), &config),
            ("http://flag:1".into(), Source::Flag("--jaeger-url"))
        );
        assert_eq!(
            resolve_url(Some(" "), &config),
            ("http://from-config:16686".into(), Source::Config(Origin::Default))
        );
        let none = Config::builder().build();
        assert_eq!(resolve_url(None, &none), (DEFAULT_URL.into(), Source::Config(Origin::Default)));
    }

    #[test]
    fn the_file_is_named_as_the_runtime_records_it() {
        if std::env::var_os(URL_ENV).is_some() {
            return; // The environment would win; this test is about the file.
        }
        let path = std::env::temp_dir().join(format!("kt-cli-jaeger-{}.toml", std::process::id()));
        std::fs::write(&path, "[jaeger]\nquery_url = \"http://from-file:16686/\"\n").unwrap();
        let config = Config::load_from(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        let (url, source) = resolve_url(None, &config);
        assert_eq!(url, "http://from-file:16686");
        assert_eq!(source, Source::Config(Origin::File { path, key: "jaeger.query_url", line: 2 }));
    }

    #[test]
    fn encodes_query_values_and_links() {
        assert_eq!(encode("rag api/v1"), "rag%20api%2Fv1");
        assert_eq!(encode("svc-1_x.y~"), "svc-1_x.y~");
        assert_eq!(ui_link("http://127.0.0.1:16686/", "abc"), "http://127.0.0.1:16686/trace/abc");
    }
}
