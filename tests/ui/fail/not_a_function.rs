use kotaemon_trace::trace_with_otel;

#[trace_with_otel]
struct Retriever {
    k: usize,
}

fn main() {}
