use kotaemon_trace::trace_with_otel;

#[trace_with_otel("payment.charge", sample = "sometimes")]
fn charge(cents: i64) -> i64 {
    cents
}

fn main() {}
