//! Builds the provider, processor and exporter from a [`Config`] and installs them process-wide.

use crate::config::{Config, ExporterKind, Sampler};
use crate::export::{self, DynExporter, console::ConsoleExporter};
use crate::finish::Finisher;
use crate::processor::{BatchProcessor, Driver, SharedProcessor, Stats};
use crate::sampling::{DebugPolicy, ProductSampler, jaeger_remote, tail::TailSampler};
use crate::{InitError, TraceGuard, global};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_sdk::Resource;
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
    crate::panics::install_hook();
    crate::clock::warm_up();
    let (exporter, driver) = exporter(&config)?;
    let stats = Arc::new(Stats::default());
    let redactor = Arc::new(config.redaction.build().map_err(|e| InitError::Invalid {
        option: e.option().into(),
        value: e.value().into(),
        accepted: e.accepted().into(),
    })?);
    let finisher = Finisher {
        value_length: config.limits.attribute_value_length,
        redactor: config.redaction.enabled.then(|| redactor.clone()),
        keys: Default::default(),
        secrets: crate::secret::Secrets::of(&config),
    };
    let scope = InstrumentationScope::builder("kotaemon-trace").with_version(env!("CARGO_PKG_VERSION")).build();
    let processor =
        Arc::new(BatchProcessor::new(exporter, driver, finisher, &config.batch, stats.clone(), scope.clone())?);
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    let metrics = {
        let stats = stats.clone();
        crate::metrics::Exporters::start(&config, id, move || stats.dropped.load(Ordering::Relaxed))?
    };
    let tail = config.tail.clone().map(|t| Arc::new(TailSampler::new(t)));
    let (sampler, remote_strategy) = ProductSampler::new(&config.sampler, tail.is_some());
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
    let recorder = tail.is_none().then(|| crate::recorder::Recorder {
        sampler: sampler.clone(),
        processor: processor.clone(),
        limits: span_limits,
    });
    let provider = SdkTracerProvider::builder()
        .with_resource(resource(&config))
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
        content: crate::genai::ContentSettings { capture: config.content.enabled, max_chars: config.content.max_chars },
        redactor: Some(redactor),
        id,
    });
    opentelemetry::global::set_tracer_provider(provider.clone());
    opentelemetry::global::set_text_map_propagator(crate::propagation::DroppedRootsToo(crate::propagation::composite(
        &config.propagators,
    )));
    Ok(TraceGuard::active(crate::guard::Active {
        provider,
        processor,
        tail,
        poller,
        metrics,
        stats,
        timeout: config.batch.export_timeout,
        id,
    }))
}

/// After shutdown, other OpenTelemetry users in the process get a no-op provider, not a dead one.
pub(crate) fn reset_global_provider() {
    opentelemetry::global::set_tracer_provider(opentelemetry::trace::noop::NoopTracerProvider::new());
}

fn exporter(config: &Config) -> Result<(Arc<dyn DynExporter>, Driver), InitError> {
    if let Some(custom) = &config.custom_exporter {
        return Ok((custom.clone(), Driver::current_thread()?));
    }
    Ok(match config.exporter {
        ExporterKind::Otlp => {
            let driver = Driver::with_io()?;
            let otlp = export::otlp::build(&config.otlp, driver.runtime())?;
            (export::boxed(otlp), driver)
        }
        ExporterKind::Console => (export::boxed(ConsoleExporter::default()), Driver::current_thread()?),
        ExporterKind::None => (export::boxed(export::DiscardExporter), Driver::current_thread()?),
    })
}

pub(crate) fn resource(config: &Config) -> Resource {
    let attributes = config
        .resource_attributes
        .iter()
        .filter(|(k, _)| k != "service.name")
        .map(|(k, v)| KeyValue::new(k.clone(), v.clone()));
    Resource::builder_empty()
        .with_detector(Box::new(opentelemetry_sdk::resource::TelemetryResourceDetector))
        .with_attributes(attributes)
        .with_service_name(config.service_name())
        .build()
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
    let mirrored = unsampled_parent_drops && crate::current::install();
    global::FastPath { unsampled_parent_drops, roots_drop, mirrored }
}

fn remote_settings(sampler: &Sampler) -> Option<&crate::config::JaegerRemote> {
    match sampler {
        Sampler::JaegerRemote(remote) => Some(remote),
        Sampler::ParentBased(inner) => remote_settings(inner),
        _ => None,
    }
}
