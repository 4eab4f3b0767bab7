use kotaemon_trace::trace_with_otel;

#[trace_with_otel(skip(client, tokn))]
fn call(client: u8, token: &str) -> usize {
    usize::from(client) + token.len()
}

fn main() {}
