use kotaemon_trace::trace_with_otel;

#[trace_with_otel(ret, err, ret)]
fn answer() -> Result<u8, String> {
    Ok(1)
}

fn main() {}
