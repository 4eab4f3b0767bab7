//! The observability stack example (`examples/observability-stack/`, `scripts/stack.sh`): the native
//! stack end to end with the example service and load generator (`native`), and the Docker flavour's
//! files checked by parsing (`files`).
#![forbid(unsafe_code)]

mod files;
mod native;
