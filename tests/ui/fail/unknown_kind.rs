use kotaemon_trace::trace_with_otel;

#[trace_with_otel("retrieve", kind = "retreiver")]
fn retrieve() {}

#[trace_with_otel("serve", span_kind = "srv")]
fn serve() {}

#[trace_with_otel("both", kind = llm)]
fn both() {}

fn main() {
    retrieve();
    serve();
    both();
}
