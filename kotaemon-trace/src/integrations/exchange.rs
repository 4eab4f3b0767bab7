//! One request's span and RED timing, shared by the server layer, the HTTP client middleware and the
//! gRPC client layer.
// The server and gRPC functions serve the tower layer; a build with only the reqwest middleware leaves them
// unused.
#![cfg_attr(not(feature = "tower"), allow(dead_code))]

use crate::base::callsite::{Callsite, CallsiteMetrics, Sample};
use opentelemetry::trace::{SpanBuilder, SpanKind, Status, TraceContextExt as _, Tracer as _};
use opentelemetry::{Context, KeyValue};
use std::collections::HashMap;
use std::sync::RwLock;

/// HTTP semantic-convention attribute names.
pub(crate) const HTTP_REQUEST_METHOD: &str = "http.request.method";
pub(crate) const HTTP_REQUEST_METHOD_ORIGINAL: &str = "http.request.method_original";
pub(crate) const HTTP_ROUTE: &str = "http.route";
pub(crate) const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";
pub(crate) const URL_PATH: &str = "url.path";
pub(crate) const URL_SCHEME: &str = "url.scheme";
#[cfg(feature = "reqwest")]
pub(crate) const URL_FULL: &str = "url.full";
pub(crate) const USER_AGENT_ORIGINAL: &str = "user_agent.original";
pub(crate) const SERVER_ADDRESS: &str = "server.address";
pub(crate) const SERVER_PORT: &str = "server.port";
pub(crate) const ERROR_TYPE: &str = "error.type";
pub(crate) const RPC_SYSTEM: &str = "rpc.system";
pub(crate) const RPC_SERVICE: &str = "rpc.service";
pub(crate) const RPC_METHOD: &str = "rpc.method";
pub(crate) const RPC_GRPC_STATUS_CODE: &str = "rpc.grpc.status_code";

/// The method as HTTP semantic conventions name it: one of the standard methods, else `_OTHER` (so span
/// names and metric series stay bounded whatever a client sends).
pub(crate) fn method_name(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::DELETE => "DELETE",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        http::Method::PATCH => "PATCH",
        http::Method::TRACE => "TRACE",
        http::Method::CONNECT => "CONNECT",
        _ => "_OTHER",
    }
}

/// The method's attributes: `http.request.method`, and the original text when it is not a standard one.
pub(crate) fn method_attributes(method: &http::Method, attributes: &mut Vec<KeyValue>) {
    let name = method_name(method);
    attributes.push(KeyValue::new(HTTP_REQUEST_METHOD, name));
    if name == "_OTHER" {
        attributes.push(KeyValue::new(HTTP_REQUEST_METHOD_ORIGINAL, method.as_str().to_owned()));
    }
}

/// A gRPC path `/package.Service/Method` as (`package.Service`, `Method`).
pub(crate) fn grpc_path(path: &str) -> Option<(&str, &str)> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    (!service.is_empty() && !method.is_empty() && !method.contains('/')).then_some((service, method))
}

/// Whether a request or response is gRPC (`content-type: application/grpc[+proto|...]`).
pub(crate) fn is_grpc(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"))
}

/// The `grpc-status` of a header or trailer map.
pub(crate) fn grpc_status(headers: &http::HeaderMap) -> Option<i64> {
    headers.get("grpc-status").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok())
}

/// The most distinct span names kept per kind (for the RED metrics and our recording path, which both
/// need a name that lives as long as the process); later names share one `_OTHER` series and take the
/// SDK's path, so a client sending random paths cannot grow memory.
const MAX_NAMES: usize = 512;

/// The call site a span name records its RED metrics into: one, made once, per name and kind; `_OTHER`
/// past [`MAX_NAMES`].
fn callsite(name: &str, kind: &SpanKind) -> &'static Callsite {
    type Sites = [HashMap<String, &'static Callsite>; 2];
    static SITES: RwLock<Option<Sites>> = RwLock::new(None);
    static OTHER_SERVER: Callsite = site("_OTHER", SpanKind::Server);
    static OTHER_CLIENT: Callsite = site("_OTHER", SpanKind::Client);
    const fn site(name: &'static str, kind: SpanKind) -> Callsite {
        Callsite {
            name,
            kind,
            kind_explicit: true,
            semantic: None,
            metrics: CallsiteMetrics::new(),
            attributes: 0,
            sample: Sample::Default,
        }
    }
    let server = usize::from(*kind == SpanKind::Server);
    if let Some(found) = SITES.read().unwrap_or_else(|e| e.into_inner()).as_ref().and_then(|s| s[server].get(name)) {
        return found;
    }
    let mut sites = SITES.write().unwrap_or_else(|e| e.into_inner());
    let sites = &mut sites.get_or_insert_with(Default::default)[server];
    if let Some(found) = sites.get(name) {
        return found;
    }
    if sites.len() >= MAX_NAMES {
        return if server == 1 { &OTHER_SERVER } else { &OTHER_CLIENT };
    }
    // Leaked on purpose: a call site lives as long as the process, as the macro's `static`s do, and the
    // number of them is capped above.
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    let made: &'static Callsite = Box::leak(Box::new(site(leaked, kind.clone())));
    sites.insert(name.to_owned(), made);
    made
}

/// One request in progress: its span (when a pipeline is installed) and its RED timing (when a metrics
/// exporter runs). Dropping it ends the span, so every path out (a response, an error, a dropped future
/// or body) ends it exactly once.
pub(crate) struct Exchange {
    cx: Context,
    /// Whether `cx` holds a span of ours to end.
    owned: bool,
    /// The span is our recorder's (ended by the counter's clock), not the SDK's.
    fast: bool,
    timer: Option<(&'static Callsite, crate::base::clock::Stamp)>,
    error: bool,
}

impl Exchange {
    /// Starts a span named `name` of `kind` under `parent`. `attributes` runs only when the span is
    /// recorded. Without a pipeline the exchange carries `parent` along, so the context still propagates.
    pub(crate) fn start(
        name: String,
        kind: SpanKind,
        parent: &Context,
        attributes: impl FnOnce(&mut Vec<KeyValue>),
    ) -> Exchange {
        if !crate::hot::state::is_installed() {
            // No pipeline (a library's build, or before `init`): the context is only carried along.
            return Exchange { cx: parent.clone(), owned: false, fast: false, timer: None, error: false };
        }
        let site = callsite(&name, &kind);
        let timer = crate::export::metrics::enabled().then(|| (site, crate::base::clock::now()));
        let started = crate::hot::state::with_installed(|installed| {
            // The path annotated functions take (the same sampler, limits and export queue, without the
            // SDK span's locking and copying), when the name is one the registry keeps.
            if let Some(recorder) = installed.recorder.as_ref().filter(|_| site.name == name) {
                match recorder.start(site.name, kind.clone(), parent) {
                    Some(crate::hot::recorder::Started::Recording(mut span)) => {
                        let mut list = recorder.attribute_list(10);
                        attributes(&mut list);
                        span.add_attributes(list);
                        return (parent.with_span(span), true, true);
                    }
                    Some(crate::hot::recorder::Started::Dropped(sc)) => {
                        return (parent.with_remote_span_context(sc), false, false);
                    }
                    None => {}
                }
            }
            let mut span = installed.tracer.build_with_context(SpanBuilder::from_name(name).with_kind(kind), parent);
            use opentelemetry::trace::Span as _;
            if span.is_recording() {
                let mut list = Vec::with_capacity(10);
                attributes(&mut list);
                span.set_attributes(list);
            }
            (parent.with_span(span), true, false)
        });
        match started {
            Some((cx, owned, fast)) => Exchange { cx, owned, fast, timer, error: false },
            None => Exchange { cx: parent.clone(), owned: false, fast: false, timer, error: false },
        }
    }

    /// The context the request runs in: its span under the parent.
    pub(crate) fn context(&self) -> &Context {
        &self.cx
    }

    /// Adds an attribute (when the span is recorded).
    pub(crate) fn set(&self, attribute: KeyValue) {
        if self.owned {
            self.cx.span().set_attribute(attribute);
        }
    }

    /// Marks the request failed: status Error with `description`, and `error.type`.
    pub(crate) fn fail(&mut self, error_type: String, description: impl Into<std::borrow::Cow<'static, str>>) {
        self.error = true;
        if self.owned {
            let span = self.cx.span();
            if span.is_recording() {
                span.set_attribute(KeyValue::new(ERROR_TYPE, error_type));
                span.set_status(Status::error(description));
            }
        }
    }

    /// Records an HTTP response status; a 5xx (and, for a client, a 4xx) marks the request failed.
    pub(crate) fn http_status(&mut self, status: http::StatusCode, client: bool) {
        self.set(KeyValue::new(HTTP_RESPONSE_STATUS_CODE, i64::from(status.as_u16())));
        if status.is_server_error() || (client && status.is_client_error()) {
            self.fail(status.as_str().to_owned(), "");
        }
    }

    /// Records a gRPC status. Any code but OK fails a client call; a server fails only on the codes that
    /// say the server is at fault (UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE,
    /// DATA_LOSS), as the RPC semantic conventions ask.
    pub(crate) fn grpc_status(&mut self, code: i64, client: bool) {
        self.set(KeyValue::new(RPC_GRPC_STATUS_CODE, code));
        let failed = if client { code != 0 } else { matches!(code, 2 | 4 | 12 | 13 | 14 | 15) };
        if failed {
            self.fail(code.to_string(), "");
        }
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        if self.owned {
            if self.fast {
                self.cx.span().end_with_timestamp(crate::base::clock::END_NOW);
            } else {
                self.cx.span().end();
            }
        }
        if let Some((site, started)) = self.timer.take() {
            let elapsed = crate::base::clock::now().saturating_duration_since(started);
            let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
            crate::export::metrics::record_call(site, site.kind == SpanKind::Server, self.error, nanos);
        }
    }
}

/// The gRPC and HTTP attributes shared by servers and clients: `rpc.*` for a gRPC path.
pub(crate) fn grpc_attributes(service: &str, method: &str, attributes: &mut Vec<KeyValue>) {
    attributes.push(KeyValue::new(RPC_SYSTEM, "grpc"));
    attributes.push(KeyValue::new(RPC_SERVICE, service.to_owned()));
    attributes.push(KeyValue::new(RPC_METHOD, method.to_owned()));
}

/// A URL without its user info (`user:password@`), which must never be recorded.
#[cfg(feature = "reqwest")]
pub(crate) fn without_credentials(url: &str) -> std::borrow::Cow<'_, str> {
    let Some(scheme_end) = url.find("://") else { return url.into() };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}REDACTED:REDACTED{}", &url[..scheme_end + 3], &rest[at..]).into(),
        None => url.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(feature = "reqwest")]
    fn url_user_info_is_replaced() {
        assert_eq!(without_credentials("https://bob:pw@host:8/a?b=1"), "https://REDACTED:REDACTED@host:8/a?b=1");
        assert_eq!(without_credentials("http://host/a@b"), "http://host/a@b");
        assert_eq!(without_credentials("not a url"), "not a url");
    }

    #[test]
    fn grpc_paths() {
        assert_eq!(grpc_path("/rag.Llm/Generate"), Some(("rag.Llm", "Generate")));
        assert_eq!(grpc_path("/ask"), None);
        assert_eq!(grpc_path("/a/b/c"), None);
    }

    #[test]
    fn unknown_methods_are_other() {
        assert_eq!(method_name(&http::Method::from_bytes(b"BREW").unwrap()), "_OTHER");
        assert_eq!(method_name(&http::Method::PATCH), "PATCH");
    }
}
