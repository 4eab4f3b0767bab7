use kotaemon_trace::trace_with_otel;

#[trace_with_otel("retrieve", name = "retriever.invoke")]
fn retrieve(query: &str) -> usize {
    query.len()
}

fn main() {}
