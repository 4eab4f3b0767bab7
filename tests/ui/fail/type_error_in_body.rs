use kotaemon_trace::trace_with_otel;

#[trace_with_otel(ret, err)]
fn parse(input: &str) -> Result<u32, String> {
    let n: u32 = input.len();
    Ok(n)
}

#[trace_with_otel]
async fn fetch(id: u32) -> String {
    id
}

fn main() {}
