use kotaemon_trace::trace_with_otel;

#[trace_with_otel]
const fn limit() -> usize {
    10
}

fn main() {}
