use kotaemon_trace::trace_with_otel;

#[trace_with_otel(err)]
fn count(query: &str) -> usize {
    query.len()
}

fn main() {}
