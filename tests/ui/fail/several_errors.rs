use kotaemon_trace::trace_with_otel;

// Every mistake in the options is reported at once, each at its token.
#[trace_with_otel(level = "info", ret, ret, sample = "often", name = retrieve)]
fn retrieve(query: &str) -> usize {
    query.len()
}

// So are the mistakes found against the function.
#[trace_with_otel(skip(self, qurey), fields(k = 1, k = 2))]
const fn limit(query: &str) -> usize {
    query.len()
}

// A bad option and a bad item together.
#[trace_with_otel(ret err)]
struct Retriever;

fn main() {}
