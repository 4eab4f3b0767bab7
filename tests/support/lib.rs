//! Helpers shared by the integration tests.

pub mod capture;
pub mod jaeger;
pub mod prometheus;
pub mod receiver;

// The Rust examples of the README and of every guide in docs/ are doc tests of this crate, so an example
// that no longer compiles (or no longer does what it says) fails the suite.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct Readme;

#[cfg(doctest)]
#[doc = include_str!("../../docs/architecture.md")]
pub struct ArchitectureGuide;

#[cfg(doctest)]
#[doc = include_str!("../../docs/attribute.md")]
pub struct AttributeGuide;

#[cfg(doctest)]
#[doc = include_str!("../../docs/cli.md")]
pub struct CliGuide;

#[cfg(doctest)]
#[doc = include_str!("../../docs/configuration.md")]
pub struct ConfigurationGuide;

#[cfg(doctest)]
#[doc = include_str!("../../docs/features.md")]
pub struct FeaturesGuide;

#[cfg(doctest)]
#[doc = include_str!("../../docs/fleet.md")]
pub struct FleetGuide;

#[cfg(doctest)]
#[doc = include_str!("../../docs/genai.md")]
pub struct GenAiGuide;

#[cfg(doctest)]
#[doc = include_str!("../../docs/integrations.md")]
pub struct IntegrationsGuide;

#[cfg(doctest)]
#[doc = include_str!("../../docs/logs-and-metrics.md")]
pub struct LogsAndMetricsGuide;

#[cfg(doctest)]
#[doc = include_str!("../../docs/performance.md")]
pub struct PerformanceGuide;

#[cfg(doctest)]
#[doc = include_str!("../../docs/redaction.md")]
pub struct RedactionGuide;

#[cfg(doctest)]
#[doc = include_str!("../../docs/reliability.md")]
pub struct ReliabilityGuide;

#[cfg(doctest)]
#[doc = include_str!("../../docs/sampling.md")]
pub struct SamplingGuide;

#[cfg(doctest)]
#[doc = include_str!("../../docs/stacks.md")]
pub struct StacksGuide;

#[cfg(doctest)]
#[doc = include_str!("../../docs/testing.md")]
pub struct TestingGuide;
