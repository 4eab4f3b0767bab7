//! OTLP metrics push: the same series as the scrape endpoint, as cumulative OTLP histograms and sums,
//! sent every export interval (and once more at shutdown) from the metrics thread.
//!
//! Names follow what the spanmetrics connector emits (`traces.span.metrics.calls`,
//! `traces.span.metrics.duration` in ms), so a Prometheus receiving OTLP (`--web.enable-otlp-receiver`)
//! stores them as `traces_span_metrics_calls_total` and `traces_span_metrics_duration_milliseconds_*`,
//! the names Jaeger's Monitor tab queries. `service.name` is a data point attribute as well as a resource
//! attribute, because that is where Prometheus takes the `service_name` label from.

use super::{GenAiKey, Snapshot, SpanSeries};
use crate::base::histogram::{GEN_AI_SECONDS_BOUNDS, GEN_AI_TOKEN_BOUNDS, HistogramSnapshot, SPAN_MS_BOUNDS};
use crate::config::Protocol;
use crate::export::transport::Transport;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
#[cfg(feature = "otlp-grpc")]
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    metric, number_data_point,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use std::time::{SystemTime, UNIX_EPOCH};

fn nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64)
}

fn text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(any_value::Value::StringValue(value.to_owned())) }),
        ..Default::default()
    }
}

/// The request for one push.
pub(crate) fn request(snapshot: &Snapshot, service: &str, started: SystemTime) -> ExportMetricsServiceRequest {
    let (start, now) = (nanos(started), nanos(SystemTime::now()));
    let span_attributes = |s: &SpanSeries| {
        let status = if s.error { "STATUS_CODE_ERROR" } else { "STATUS_CODE_UNSET" };
        let mut attributes = vec![text("service.name", service), text("status.code", status)];
        if s.span_name.is_empty() {
            attributes.push(text("otel.metric.overflow", "true"));
        } else {
            attributes.push(text("span.name", s.span_name));
            attributes.push(text("span.kind", s.span_kind));
        }
        attributes
    };
    let histogram_point = |attributes: Vec<KeyValue>, bounds: &[f64], h: &HistogramSnapshot| HistogramDataPoint {
        attributes,
        start_time_unix_nano: start,
        time_unix_nano: now,
        count: h.count,
        sum: Some(h.sum),
        bucket_counts: h.buckets.clone(),
        explicit_bounds: bounds.to_vec(),
        ..Default::default()
    };
    let histogram = |name: &str, unit: &str, points: Vec<HistogramDataPoint>| Metric {
        name: name.to_owned(),
        unit: unit.to_owned(),
        data: Some(metric::Data::Histogram(Histogram {
            data_points: points,
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        })),
        ..Default::default()
    };
    let calls = snapshot
        .spans
        .iter()
        .map(|s| NumberDataPoint {
            attributes: span_attributes(s),
            start_time_unix_nano: start,
            time_unix_nano: now,
            value: Some(number_data_point::Value::AsInt(s.duration.count as i64)),
            ..Default::default()
        })
        .collect();
    let durations =
        snapshot.spans.iter().map(|s| histogram_point(span_attributes(s), &SPAN_MS_BOUNDS, &s.duration)).collect();
    let gen_ai_attributes = |key: &GenAiKey, token_type: Option<&str>| {
        let mut attributes = vec![text("service.name", service)];
        if key.operation.is_empty() {
            attributes.push(text("otel.metric.overflow", "true"));
        } else {
            attributes.push(text("gen_ai.operation.name", key.operation));
            attributes.push(text("gen_ai.request.model", key.model.as_deref().unwrap_or("unknown")));
            if let Some(provider) = &key.provider {
                attributes.push(text("gen_ai.provider.name", provider));
            }
        }
        if let Some(token_type) = token_type {
            attributes.push(text("gen_ai.token.type", token_type));
        }
        attributes
    };
    let mut gen_ai_durations = Vec::new();
    let mut tokens = Vec::new();
    for (key, values) in &snapshot.gen_ai {
        if values.duration.count > 0 {
            gen_ai_durations.push(histogram_point(
                gen_ai_attributes(key, None),
                &GEN_AI_SECONDS_BOUNDS,
                &values.duration,
            ));
        }
        for (kind, h) in [("input", &values.input_tokens), ("output", &values.output_tokens)] {
            if h.count > 0 {
                tokens.push(histogram_point(gen_ai_attributes(key, Some(kind)), &GEN_AI_TOKEN_BOUNDS, h));
            }
        }
    }
    let counter = |name: &str, value: u64| Metric {
        name: name.to_owned(),
        data: Some(metric::Data::Sum(Sum {
            data_points: vec![NumberDataPoint {
                attributes: vec![text("service.name", service)],
                start_time_unix_nano: start,
                time_unix_nano: now,
                value: Some(number_data_point::Value::AsInt(value as i64)),
                ..Default::default()
            }],
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        })),
        ..Default::default()
    };
    let metrics = vec![
        Metric {
            name: "traces.span.metrics.calls".to_owned(),
            data: Some(metric::Data::Sum(Sum {
                data_points: calls,
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            })),
            ..Default::default()
        },
        histogram("traces.span.metrics.duration", "ms", durations),
        histogram("gen_ai.client.operation.duration", "s", gen_ai_durations),
        histogram("gen_ai.client.token.usage", "{token}", tokens),
        counter("kotaemon_trace.spans.dropped", snapshot.spans_dropped),
        counter("kotaemon_trace.metrics.overflow", snapshot.overflowed),
        Metric {
            name: "kotaemon_trace.redactions".to_owned(),
            data: Some(metric::Data::Sum(Sum {
                data_points: snapshot
                    .redactions
                    .iter()
                    .map(|(kind, n)| NumberDataPoint {
                        attributes: vec![text("service.name", service), text("kind", kind)],
                        start_time_unix_nano: start,
                        time_unix_nano: now,
                        value: Some(number_data_point::Value::AsInt(*n as i64)),
                        ..Default::default()
                    })
                    .collect(),
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            })),
            ..Default::default()
        },
    ];
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource { attributes: vec![text("service.name", service)], ..Default::default() }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "kotaemon-trace".to_owned(),
                    version: env!("CARGO_PKG_VERSION").to_owned(),
                    ..Default::default()
                }),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Sends one request through the shared transport; the error says what failed (and, for `https://`,
/// what TLS trusted), for the once-per-failure-streak report.
pub(crate) async fn push(transport: &Transport, request: ExportMetricsServiceRequest) -> Result<(), String> {
    let url = &transport.config.endpoint;
    let failed = |why: String| transport.explain(&format!("{url}: {why}"));
    match transport.config.protocol {
        #[cfg(not(feature = "otlp-http"))]
        Protocol::HttpProtobuf => Err("http/protobuf needs the `otlp-http` cargo feature".to_owned()),
        #[cfg(feature = "otlp-http")]
        Protocol::HttpProtobuf => {
            use prost::Message as _;
            let client = transport.http().ok_or_else(|| failed("no HTTP client".into()))?;
            let mut body = request.encode_to_vec();
            let mut call = client.post(url).header("content-type", "application/x-protobuf");
            if transport.gzip() {
                use std::io::Write as _;
                let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                body = encoder.write_all(&body).and_then(|()| encoder.finish()).map_err(|e| failed(e.to_string()))?;
                call = call.header("content-encoding", "gzip");
            }
            for (name, value) in &transport.config.headers {
                call = call.header(name.as_str(), value.as_str());
            }
            let response = call.body(body).send().await.map_err(|e| failed(chain(&e)))?;
            if !response.status().is_success() {
                return Err(failed(format!("answered {}", response.status())));
            }
            Ok(())
        }
        #[cfg(not(feature = "otlp-grpc"))]
        Protocol::Grpc => Err("grpc needs the `otlp-grpc` cargo feature".to_owned()),
        #[cfg(feature = "otlp-grpc")]
        Protocol::Grpc => {
            let channel = transport.grpc().ok_or_else(|| failed("no gRPC channel".into()))?;
            let metadata = crate::export::transport::metadata(&transport.config).map_err(|e| failed(e.to_string()))?;
            let mut call = tonic::Request::new(request);
            *call.metadata_mut() = metadata;
            let mut client = MetricsServiceClient::new(channel.clone());
            if transport.gzip() {
                // A collector answers a compressed request compressed: accept it too.
                client = client
                    .send_compressed(tonic::codec::CompressionEncoding::Gzip)
                    .accept_compressed(tonic::codec::CompressionEncoding::Gzip);
            }
            use std::error::Error as _;
            // The status' own text repeats its source: its message and then the causes say it once.
            client.export(call).await.map_err(|e| failed(with_causes(e.message().to_owned(), e.source())))?;
            Ok(())
        }
    }
}

/// An error with its causes: reqwest and tonic put the TLS reason (unknown issuer, …) in the sources.
#[cfg(feature = "otlp-http")]
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    with_causes(error.to_string(), error.source())
}

/// `text`, then each cause not already in it.
pub(crate) fn with_causes(mut text: String, mut source: Option<&(dyn std::error::Error + 'static)>) -> String {
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
