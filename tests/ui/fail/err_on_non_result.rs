use kotaemon_trace::trace_with_otel;

#[trace_with_otel(err)]
fn count(query: &str) -> usize {
    query.len()
}

#[trace_with_otel(ret, err)]
async fn generate(prompt: &str) -> String {
    prompt.to_owned()
}

#[trace_with_otel(err)]
fn generate_later(prompt: &str) -> impl std::future::Future<Output = usize> + '_ {
    async move { prompt.len() }
}

fn main() {}
