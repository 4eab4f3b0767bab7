use kotaemon_trace::trace_with_otel;

trait Retriever {
    #[trace_with_otel]
    fn retrieve(&self, query: &str) -> Vec<String>;
}

fn main() {}
