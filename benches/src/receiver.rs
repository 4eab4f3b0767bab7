//! A loopback OTLP collector for the rows that export for real: it accepts OTLP/gRPC (tonic) and
//! OTLP/HTTP protobuf on free ports, decodes every request and counts the spans in it. Decoding is the
//! part of a collector's work that proves the bytes were a valid export; nothing is kept.
//!
//! It runs in the process that launches the measured tracers as child processes, so the CPU time a
//! child reports is the tracer's alone.

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use prost::Message as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// What arrived.
#[derive(Debug, Default)]
pub struct Counts {
    /// Spans decoded from every request.
    pub spans: AtomicU64,
    /// Requests decoded.
    pub requests: AtomicU64,
    /// Request bodies that were not a valid `ExportTraceServiceRequest`.
    pub invalid: AtomicU64,
}

impl Counts {
    fn add(&self, request: &ExportTraceServiceRequest) {
        let spans: usize = request.resource_spans.iter().flat_map(|r| &r.scope_spans).map(|s| s.spans.len()).sum();
        self.spans.fetch_add(spans as u64, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
    }
}

struct Service(Arc<Counts>);

#[tonic::async_trait]
impl TraceService for Service {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.0.add(request.get_ref());
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

/// A running receiver (gRPC and HTTP); stops with the process.
pub struct Receiver {
    /// What arrived so far.
    pub counts: Arc<Counts>,
    grpc: SocketAddr,
    http: SocketAddr,
    stop: Arc<AtomicBool>,
    _runtime: tokio::runtime::Runtime,
}

impl Receiver {
    /// Listens for gRPC and HTTP on two free loopback ports.
    pub fn start() -> Receiver {
        let counts = Arc::new(Counts::default());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("receiver")
            .enable_all()
            .build()
            .expect("receiver runtime");
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind gRPC port");
        let grpc = listener.local_addr().expect("gRPC addr");
        let service = TraceServiceServer::new(Service(counts.clone())).max_decoding_message_size(64 << 20);
        runtime.spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true))),
        );
        let http_listener = TcpListener::bind("127.0.0.1:0").expect("bind HTTP port");
        let http = http_listener.local_addr().expect("HTTP addr");
        http_listener.set_nonblocking(true).expect("nonblocking");
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (counts, stop) = (counts.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match http_listener.accept() {
                        Ok((stream, _)) => {
                            let counts = counts.clone();
                            std::thread::spawn(move || serve_http(stream, &counts));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            });
        }
        Receiver { counts, grpc, http, stop, _runtime: runtime }
    }

    /// `http://127.0.0.1:<port>` of the gRPC listener.
    pub fn grpc_endpoint(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// `http://127.0.0.1:<port>` of the HTTP listener (exporters add `/v1/traces`).
    pub fn http_endpoint(&self) -> String {
        format!("http://{}", self.http)
    }

    /// Spans decoded so far.
    pub fn spans(&self) -> u64 {
        self.counts.spans.load(Ordering::Relaxed)
    }

    /// Waits until the span count stops moving for `quiet` (requests in flight when a child exits).
    pub fn settle(&self, quiet: Duration) -> u64 {
        let mut last = self.spans();
        loop {
            std::thread::sleep(quiet);
            let now = self.spans();
            if now == last {
                return now;
            }
            last = now;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Serves HTTP/1.1 requests on one connection: decodes each body, answers 200 with an empty
/// `ExportTraceServiceResponse`.
fn serve_http(stream: TcpStream, counts: &Counts) {
    let _ = stream.set_nodelay(true);
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    let mut body = Vec::new();
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        body.resize(length, 0);
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        match ExportTraceServiceRequest::decode(body.as_slice()) {
            Ok(request) => counts.add(&request),
            Err(_) => {
                counts.invalid.fetch_add(1, Ordering::Relaxed);
            }
        }
        let response = "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}
