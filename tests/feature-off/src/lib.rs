//! Annotated code as a user would write it; with the `enabled` feature off it must compile to exactly the
//! unannotated functions.

use kotaemon_trace::trace_with_otel;

/// An error type for `err`.
#[derive(Debug)]
pub struct Failure;

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("failure")
    }
}

/// A retriever with state for `fields(self.…)`.
pub struct Retriever {
    /// Documents to return.
    pub k: usize,
}

impl Retriever {
    /// Every option at once.
    #[trace_with_otel("retriever.invoke", skip(self), fields(retriever.k = self.k as i64), ret, err, sample = "always")]
    pub fn invoke(&self, query: &str) -> Result<Vec<String>, Failure> {
        if query.is_empty() {
            return Err(Failure);
        }
        Ok((0..self.k).map(|i| format!("{query}-{i}")).collect())
    }
}

/// An async function.
#[trace_with_otel]
pub async fn generate(prompt: &str) -> usize {
    prompt.len()
}
