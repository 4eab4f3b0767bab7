use kotaemon_trace::trace_with_otel;

#[trace_with_otel(skip_all, skip(token))]
fn call(token: &str) -> usize {
    token.len()
}

fn main() {}
