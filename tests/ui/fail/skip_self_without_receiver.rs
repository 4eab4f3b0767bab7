use kotaemon_trace::trace_with_otel;

#[trace_with_otel(skip(self))]
fn free(query: &str) -> usize {
    query.len()
}

fn main() {}
