use kotaemon_trace::trace_with_otel;

#[trace_with_otel(skip(phone), redact(phone))]
fn lookup(phone: &str) -> usize {
    phone.len()
}

fn main() {}
