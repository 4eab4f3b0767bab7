use kotaemon_trace::trace_with_otel;

#[trace_with_otel(fields(retriever.type))]
fn retrieve(query: &str) -> usize {
    query.len()
}

fn main() {}
