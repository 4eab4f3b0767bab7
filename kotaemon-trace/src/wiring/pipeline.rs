//! Builds the provider, processor and exporter from a [`Config`] and installs them process-wide.

use crate::base::error::InitError;
use crate::base::ports::{self, DynExporter};
use crate::config::{Config, ExporterKind, Sampler};
use crate::export::finish::Finisher;
#[cfg(feature = "jaeger-remote")]
use crate::export::jaeger_remote;
use crate::export::processor::{BatchProcessor, Driver, SharedProcessor};
use crate::export::queue::Stats;
use crate::export::{self, console::ConsoleExporter};
use crate::hot::state as global;
use crate::policy::redact::Redactor;
use crate::policy::sampling::{DebugPolicy, ProductSampler, tail::TailSampler};
use crate::wiring::guard::TraceGuard;
use opentelemetry::InstrumentationScope;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{SdkTracerProvider, SpanLimits};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

pub(crate) fn start(config: Config) -> Result<TraceGuard, InitError> {
    for problem in config.problems() {
        eprintln!("kotaemon-trace: {problem}");
    }
    if config.disabled {
        return Ok(TraceGuard::disabled());
    }
    // Refused before anything starts: a sampler this build cannot poll for.
    #[cfg(not(feature = "jaeger-remote"))]
    if remote_settings(&config.sampler).is_some() {
        return Err(InitError::invalid(
            "OTEL_TRACES_SAMPLER",
            "jaeger_remote",
            "a sampler this build has (enable the `jaeger-remote` cargo feature)",
        ));
    }
    crate::base::panics::install_hook();
    crate::base::clock::warm_up();
    let (exporter, driver, shared) = exporter(&config)?;
    let stats = Arc::new(Stats::default());
    let redactor = Arc::new(Redactor::from_config(&config.redaction)?);
    let finisher = Finisher {
        value_length: config.limits.attribute_value_length,
        redactor: config.redaction.enabled.then(|| redactor.clone()),
        keys: Default::default(),
        secrets: crate::export::secret::Secrets::of(&config),
    };
    let scope = InstrumentationScope::builder("kotaemon-trace").with_version(env!("CARGO_PKG_VERSION")).build();
    let processor =
        Arc::new(BatchProcessor::new(exporter, driver, finisher, &config.batch, stats.clone(), scope.clone())?);
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let metrics = {
        let stats = stats.clone();
        crate::export::metrics::Exporters::start(&config, id, move || stats.dropped.load(Ordering::Relaxed), shared)?
    };
    let tail = config.tail.clone().map(|t| Arc::new(TailSampler::new(t)));
    let (sampler, remote_strategy) = ProductSampler::new(&config.sampler, tail.is_some());
    #[cfg(not(feature = "jaeger-remote"))]
    let _ = remote_strategy;
    #[cfg(feature = "jaeger-remote")]
    let poller = match (remote_strategy, remote_settings(&config.sampler)) {
        (Some(strategy), Some(remote)) => Some(jaeger_remote::start(
            jaeger_remote::Poll {
                endpoint: remote.endpoint.clone(),
                service: config.service_name(),
                interval: remote.polling_interval,
            },
            strategy,
        )?),
        _ => None,
    };
    let limits = &config.limits;
    let span_limits = SpanLimits {
        max_events_per_span: limits.events_per_span,
        max_attributes_per_span: limits.attributes_per_span,
        max_links_per_span: limits.links_per_span,
        max_attributes_per_event: limits.attributes_per_event,
        max_attributes_per_link: limits.attributes_per_link,
    };
    // Annotated functions record through our own path, with the same sampler (its clones share their
    // state: rate limiter tokens, remote strategy), limits and scope; with tail sampling on, the SDK path
    // (the tail sampler sits in its processor).
    let recorder = tail.is_none().then(|| crate::hot::recorder::Recorder {
        sampler: sampler.clone(),
        queue: processor.queue.clone(),
        limits: span_limits,
    });
    let provider = SdkTracerProvider::builder()
        .with_resource(crate::export::resource(&config))
        .with_sampler(sampler)
        .with_span_limits(span_limits)
        .with_span_processor(SharedProcessor { batch: processor.clone(), tail: tail.clone() })
        .build();
    global::install(global::Installed {
        tracer: provider.tracer_with_scope(scope),
        recorder,
        debug: DebugPolicy::new(&config.debug),
        fast: fast_path(&config),
        capture_arguments: config.redaction.capture_arguments,
        content: config.content,
        text: Some(redactor),
        id,
    });
    opentelemetry::global::set_tracer_provider(provider.clone());
    opentelemetry::global::set_text_map_propagator(crate::api::propagation::DroppedRootsToo(
        crate::policy::propagation::composite(&config.propagators),
    ));
    Ok(TraceGuard::active(crate::wiring::guard::Active {
        provider,
        processor,
        tail,
        #[cfg(feature = "jaeger-remote")]
        poller,
        metrics,
        stats,
        timeout: config.batch.export_timeout,
        id,
    }))
}

/// The traces' OTLP transport and the runtime driving it, for the metrics push to reuse.
#[cfg(any(feature = "otlp-grpc", feature = "otlp-http"))]
type Shared = Option<crate::export::metrics::SharedTransport>;
#[cfg(not(any(feature = "otlp-grpc", feature = "otlp-http")))]
type Shared = Option<std::convert::Infallible>;

fn exporter(config: &Config) -> Result<(Arc<dyn DynExporter>, Driver, Shared), InitError> {
    if let Some(custom) = &config.custom_exporter {
        return Ok((custom.clone(), Driver::current_thread()?, None));
    }
    Ok(match config.exporter {
        #[cfg(any(feature = "otlp-grpc", feature = "otlp-http"))]
        ExporterKind::Otlp => {
            let driver = Driver::with_io()?;
            let transport = {
                let _entered = driver.runtime().enter();
                export::transport::Transport::new(&config.otlp)?
            };
            let otlp = export::otlp::build(&transport, driver.runtime())?;
            let shared =
                crate::export::metrics::SharedTransport { transport, runtime: driver.runtime().handle().clone() };
            (ports::boxed(otlp), driver, Some(shared))
        }
        #[cfg(not(any(feature = "otlp-grpc", feature = "otlp-http")))]
        ExporterKind::Otlp => {
            return Err(InitError::invalid(
                "OTEL_TRACES_EXPORTER",
                "otlp",
                "console or none (this build has no OTLP exporter: enable the `otlp-grpc` or `otlp-http` cargo feature)",
            ));
        }
        ExporterKind::Console => (ports::boxed(ConsoleExporter::default()), Driver::current_thread()?, None),
        ExporterKind::None => (ports::boxed(export::DiscardExporter), Driver::current_thread()?, None),
    })
}

/// What the hot path may decide alone: only the decisions that never consume sampler state (a rate
/// limit's tokens, a remote strategy's lower bound) and never change with tail sampling.
fn fast_path(config: &Config) -> global::FastPath {
    if config.tail.is_some() {
        return global::FastPath::default();
    }
    let (parent_based, root) = match &config.sampler {
        Sampler::ParentBased(root) => (true, root.as_ref()),
        other => (false, other),
    };
    let roots_drop = matches!(root, Sampler::AlwaysOff) || matches!(root, Sampler::TraceIdRatio(r) if *r <= 0.0);
    let unsampled_parent_drops = parent_based || roots_drop;
    // The mirror costs a call on every context change; it is only worth it when the shortcut it feeds
    // applies.
    let mirrored = unsampled_parent_drops && crate::hot::current::install();
    global::FastPath { unsampled_parent_drops, roots_drop, mirrored }
}

fn remote_settings(sampler: &Sampler) -> Option<&crate::config::JaegerRemote> {
    match sampler {
        Sampler::JaegerRemote(remote) => Some(remote),
        Sampler::ParentBased(inner) => remote_settings(inner),
        _ => None,
    }
}
