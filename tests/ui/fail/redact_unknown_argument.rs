use kotaemon_trace::trace_with_otel;

#[trace_with_otel(redact(phon))]
fn lookup(phone: &str) -> usize {
    phone.len()
}

fn main() {}
