//! The OTLP exporter (gRPC or HTTP/protobuf), built from [`OtlpConfig`].
//!
//! Both transports are async clients (tonic, reqwest). They are built inside, and driven by, the
//! library's own small tokio runtime, so `init()` works the same from a plain `fn main`, from inside
//! `#[tokio::main]` (current-thread or multi-thread), and never needs the user's runtime.

use crate::base::error::InitError;
use crate::config::Protocol;
use crate::export::otlp_wire::{EncodedResource, encode_request};
use crate::export::transport::Transport;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The span exporter over `transport` (built inside `runtime`, whose reactor drives it).
pub(crate) fn build(transport: &Transport, runtime: &tokio::runtime::Runtime) -> Result<Explained, InitError> {
    // tonic's lazy channel spawns its worker onto the runtime that is current while it is built.
    let _entered = runtime.enter();
    let config = &transport.config;
    match config.protocol {
        #[cfg(not(feature = "otlp-grpc"))]
        Protocol::Grpc => return Err(missing("grpc", "otlp-grpc")),
        #[cfg(not(feature = "otlp-http"))]
        Protocol::HttpProtobuf => return Err(missing("http/protobuf", "otlp-http")),
        _ => {}
    }
    #[cfg(feature = "otlp-grpc")]
    let metadata = crate::export::transport::metadata(config)?;
    Ok(Explained {
        transport: transport.clone(),
        resource: EncodedResource::default(),
        buffer: Arc::new(Mutex::new(Vec::new())),
        shut_down: AtomicBool::new(false),
        #[cfg(feature = "otlp-grpc")]
        metadata,
    })
}

/// The OTLP span exporter: each batch encoded straight into protobuf (`otlp_wire`) in a buffer kept
/// from batch to batch, sent over the shared transport; failures say what TLS trusted (see
/// [`Transport::explain`]).
#[derive(Debug)]
pub(crate) struct Explained {
    transport: Transport,
    resource: EncodedResource,
    /// The last request's buffer, reused for the next: tonic copies it into its frame and the codec puts
    /// it back (over HTTP reqwest keeps the body; with gzip the uncompressed one comes back).
    buffer: Arc<Mutex<Vec<u8>>>,
    shut_down: AtomicBool,
    #[cfg(feature = "otlp-grpc")]
    metadata: tonic::metadata::MetadataMap,
}

impl Explained {
    fn encode(&self, batch: &[SpanData]) -> Vec<u8> {
        let mut kept = self.buffer.lock().unwrap_or_else(|e| e.into_inner());
        let mut buf = std::mem::take(&mut *kept);
        encode_request(&mut buf, &self.resource, batch);
        buf
    }

    #[cfg(feature = "otlp-http")]
    fn give_back(&self, buf: Vec<u8>) {
        give_back(&self.buffer, buf);
    }

    async fn send(&self, body: Vec<u8>) -> Result<(), String> {
        let url = &self.transport.config.endpoint;
        let failed = |why: String| self.transport.explain(&format!("{url}: {why}"));
        match self.transport.config.protocol {
            #[cfg(not(feature = "otlp-http"))]
            Protocol::HttpProtobuf => Err(failed("http/protobuf needs the `otlp-http` cargo feature".into())),
            #[cfg(feature = "otlp-http")]
            Protocol::HttpProtobuf => {
                use crate::export::metrics::otlp::chain;
                let client = self.transport.http().ok_or_else(|| failed("no HTTP client".into()))?;
                let mut call = client.post(url).header("content-type", "application/x-protobuf");
                let body = if self.transport.gzip() {
                    use std::io::Write as _;
                    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                    call = call.header("content-encoding", "gzip");
                    let zipped =
                        encoder.write_all(&body).and_then(|()| encoder.finish()).map_err(|e| failed(e.to_string()));
                    self.give_back(body);
                    zipped?
                } else {
                    body
                };
                for (name, value) in &self.transport.config.headers {
                    call = call.header(name.as_str(), value.as_str());
                }
                let response = call.body(body).send().await.map_err(|e| failed(chain(&e)))?;
                if !response.status().is_success() {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    return Err(failed(format!("answered {status} {}", text.chars().take(200).collect::<String>())));
                }
                Ok(())
            }
            #[cfg(not(feature = "otlp-grpc"))]
            Protocol::Grpc => Err(failed("grpc needs the `otlp-grpc` cargo feature".into())),
            #[cfg(feature = "otlp-grpc")]
            Protocol::Grpc => {
                use crate::export::metrics::otlp::with_causes;
                use std::error::Error as _;
                let channel = self.transport.grpc().ok_or_else(|| failed("no gRPC channel".into()))?;
                let mut client = tonic::client::Grpc::new(channel.clone());
                if self.transport.gzip() {
                    // A collector answers a compressed request compressed (Jaeger does): accept it too.
                    client = client
                        .send_compressed(tonic::codec::CompressionEncoding::Gzip)
                        .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
                }
                let status = |e: tonic::Status| failed(with_causes(e.message().to_owned(), e.source()));
                client.ready().await.map_err(|e| failed(e.to_string()))?;
                let request =
                    tonic::Request::from_parts(self.metadata.clone(), tonic::Extensions::default(), Encoded(body));
                let path = http::uri::PathAndQuery::from_static(EXPORT_PATH);
                client.unary(request, path, Codec(self.buffer.clone())).await.map_err(status)?;
                Ok(())
            }
        }
    }
}

impl SpanExporter for Explained {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        if self.shut_down.load(Ordering::Relaxed) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        let body = self.encode(&batch);
        // The spans are in `body` now: freed here, before the wait on the network.
        drop(batch);
        self.send(body).await.map_err(OTelSdkError::InternalFailure)
    }

    fn shutdown_with_timeout(&self, _timeout: std::time::Duration) -> OTelSdkResult {
        if self.shut_down.swap(true, Ordering::Relaxed) {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        Ok(())
    }

    fn set_resource(&mut self, resource: &opentelemetry_sdk::Resource) {
        self.resource = EncodedResource::new(resource);
    }
}

/// The gRPC method of OTLP traces.
#[cfg(feature = "otlp-grpc")]
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// Keeps `buf` (emptied) for the next batch.
fn give_back(slot: &Mutex<Vec<u8>>, mut buf: Vec<u8>) {
    buf.clear();
    *slot.lock().unwrap_or_else(|e| e.into_inner()) = buf;
}

/// A request already encoded.
#[cfg(feature = "otlp-grpc")]
struct Encoded(Vec<u8>);

/// tonic's codec for [`Encoded`] requests: the bytes are written as they are; the answer
/// (`ExportTraceServiceResponse`, a partial success at most, which the OTLP specification says not to
/// retry) is read and dropped.
#[cfg(feature = "otlp-grpc")]
struct Codec(Arc<Mutex<Vec<u8>>>);

/// The codec's two sides; the encoder puts the request's buffer back into the exporter's slot.
#[cfg(feature = "otlp-grpc")]
struct Wire(Arc<Mutex<Vec<u8>>>);

#[cfg(feature = "otlp-grpc")]
impl tonic::codec::Codec for Codec {
    type Encode = Encoded;
    type Decode = ();
    type Encoder = Wire;
    type Decoder = Wire;

    fn encoder(&mut self) -> Wire {
        Wire(self.0.clone())
    }

    fn decoder(&mut self) -> Wire {
        Wire(self.0.clone())
    }
}

#[cfg(feature = "otlp-grpc")]
impl tonic::codec::Encoder for Wire {
    type Item = Encoded;
    type Error = tonic::Status;

    fn encode(&mut self, item: Encoded, dst: &mut tonic::codec::EncodeBuf<'_>) -> Result<(), tonic::Status> {
        use bytes::BufMut as _;
        dst.put_slice(&item.0);
        give_back(&self.0, item.0);
        Ok(())
    }
}

#[cfg(feature = "otlp-grpc")]
impl tonic::codec::Decoder for Wire {
    type Item = ();
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<()>, tonic::Status> {
        use bytes::Buf as _;
        src.advance(src.remaining());
        Ok(Some(()))
    }
}

/// The protocol asked for is not in this build.
#[cfg(not(all(feature = "otlp-grpc", feature = "otlp-http")))]
fn missing(protocol: &str, feature: &str) -> InitError {
    InitError::invalid(
        "OTEL_EXPORTER_OTLP_PROTOCOL",
        protocol,
        &format!("a protocol this build has (enable the `{feature}` cargo feature)"),
    )
}
