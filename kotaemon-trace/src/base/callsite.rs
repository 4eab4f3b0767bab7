//! What the macro knows about each annotated function, in the `static` it writes per call site.

use crate::base::histogram::SpanHistogram;
use opentelemetry::trace::SpanKind;
use std::sync::atomic::AtomicU8;

/// What the macro knows about an annotated function at compile time; one `static` per function.
#[doc(hidden)]
#[derive(Debug)]
pub struct Callsite {
    /// The span name.
    pub name: &'static str,
    /// The OpenTelemetry span kind: `span_kind = "…"`, else derived from `kind` (CLIENT for model and tool
    /// calls), else INTERNAL.
    pub kind: SpanKind,
    /// Whether `kind` was given with `span_kind`; when it was not and the span is a service's entry (no
    /// local parent), the span is SERVER, as a request's root span is.
    pub kind_explicit: bool,
    /// The `kind = "…"` option.
    pub semantic: Option<Semantic>,
    /// This call site's RED histograms.
    pub metrics: CallsiteMetrics,
    /// How many attributes the macro may record at entry, to size the vector once.
    pub attributes: usize,
    /// The `sample = "…"` option.
    pub sample: Sample,
}

/// The macro's `sample` option.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sample {
    /// The configured sampler decides.
    Default,
    /// Always recorded: a sensitive operation (payment, login). Under an unsampled parent it starts a new
    /// trace linked to the parent's.
    Always,
    /// Never recorded, nor its children under a parent-based sampler (health checks, polling loops).
    Never,
}

/// The macro's `kind` option: what a step is in RAG terms.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Semantic {
    Retriever,
    Reranker,
    Embedding,
    Llm,
    Tool,
    Chain,
    Agent,
    Guardrail,
}

impl Semantic {
    /// The most attributes a kind adds (its OpenInference kind and GenAI operation).
    pub(crate) const ATTRIBUTES: usize = 2;

    /// The OpenInference `openinference.span.kind` value.
    pub const fn openinference(self) -> &'static str {
        match self {
            Semantic::Retriever => "RETRIEVER",
            Semantic::Reranker => "RERANKER",
            Semantic::Embedding => "EMBEDDING",
            Semantic::Llm => "LLM",
            Semantic::Tool => "TOOL",
            Semantic::Chain => "CHAIN",
            Semantic::Agent => "AGENT",
            Semantic::Guardrail => "GUARDRAIL",
        }
    }

    /// The OTel GenAI `gen_ai.operation.name`, where the conventions define one for this kind.
    pub const fn gen_ai_operation(self) -> Option<&'static str> {
        match self {
            Semantic::Llm => Some("chat"),
            Semantic::Embedding => Some("embeddings"),
            Semantic::Tool => Some("execute_tool"),
            Semantic::Agent => Some("invoke_agent"),
            Semantic::Retriever => Some("retrieval"),
            Semantic::Reranker | Semantic::Chain | Semantic::Guardrail => None,
        }
    }
}

pub(crate) const UNREGISTERED: u8 = 0;
pub(crate) const REGISTERED: u8 = 1;
pub(crate) const FOLDED: u8 = 2;

/// The histograms of one call site: `[entry][error]`, where an entry span is the service's SERVER span.
#[doc(hidden)]
#[derive(Debug)]
pub struct CallsiteMetrics {
    pub(crate) state: AtomicU8,
    pub(crate) series: [[SpanHistogram; 2]; 2],
}

impl CallsiteMetrics {
    /// Empty histograms; the macro puts one in each call site's `static`.
    pub const fn new() -> Self {
        CallsiteMetrics {
            state: AtomicU8::new(UNREGISTERED),
            series: [[SpanHistogram::new(), SpanHistogram::new()], [SpanHistogram::new(), SpanHistogram::new()]],
        }
    }
}

impl Default for CallsiteMetrics {
    fn default() -> Self {
        CallsiteMetrics::new()
    }
}
