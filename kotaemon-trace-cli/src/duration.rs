//! Durations on the command line (`5s`, `250ms`, `1m30s`, `1.5s`) and in the output (`49.51 ms`).

use std::time::Duration;

/// Parses a duration: one or more `<number><unit>` parts, units `h`, `m`, `s`, `ms`, `us`/`µs`, `ns`;
/// a bare number is seconds. Fractions are allowed (`1.5s`). Negative or empty values are refused.
pub fn parse(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let refuse = || format!("invalid duration {text:?}: expected e.g. 5s, 250ms, 1m30s, 1.5s");
    if text.is_empty() {
        return Err(refuse());
    }
    if let Ok(secs) = text.parse::<f64>() {
        return seconds(secs).ok_or_else(refuse);
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if number_len == 0 {
            return Err(refuse());
        }
        let number: f64 = rest[..number_len].parse().map_err(|_| refuse())?;
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "h" => 3600.0,
            "m" | "min" => 60.0,
            "s" => 1.0,
            "ms" => 1e-3,
            "us" | "µs" | "μs" => 1e-6,
            "ns" => 1e-9,
            _ => return Err(refuse()),
        };
        rest = &rest[unit_len..];
        total += number * scale;
    }
    seconds(total).ok_or_else(refuse)
}

fn seconds(secs: f64) -> Option<Duration> {
    (secs.is_finite() && (0.0..1e12).contains(&secs)).then(|| Duration::from_secs_f64(secs))
}

/// Microseconds as people read them: `4 µs`, `49.51 ms`, `7.20 s`, `2m05.3s`.
pub fn human_us(micros: i64) -> String {
    let micros = micros.max(0);
    if micros < 1_000 {
        format!("{micros} µs")
    } else if micros < 1_000_000 {
        format!("{:.2} ms", micros as f64 / 1e3)
    } else if micros < 60_000_000 {
        format!("{:.2} s", micros as f64 / 1e6)
    } else {
        let secs = micros as f64 / 1e6;
        let minutes = (secs / 60.0).floor();
        format!("{}m{:04.1}s", minutes as u64, secs - minutes * 60.0)
    }
}

/// A whole-unit duration as typed on a command line: `1h`, `30m`, `5s`, `250ms`; else as [`human_us`].
pub fn short(d: Duration) -> String {
    let (secs, nanos) = (d.as_secs(), d.subsec_nanos());
    match (secs, nanos) {
        (0, 0) => "0s".into(),
        (s, 0) if s % 3600 == 0 => format!("{}h", s / 3600),
        (s, 0) if s % 60 == 0 => format!("{}m", s / 60),
        (s, 0) => format!("{s}s"),
        (0, n) if n % 1_000_000 == 0 => format!("{}ms", n / 1_000_000),
        _ => human_us(d.as_micros() as i64),
    }
}

/// A duration as a Go duration string, the form Jaeger's `minDuration` parameter takes.
pub fn go_string(d: Duration) -> String {
    format!("{}us", d.as_micros())
}

/// Microseconds since the Unix epoch → `2026-01-31 12:00:00.123 UTC` (no time-zone database needed).
pub fn utc_timestamp(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let millis = micros.rem_euclid(1_000_000) / 1_000;
    let (days, day_secs) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{millis:03} UTC",
        day_secs / 3600,
        day_secs % 3600 / 60,
        day_secs % 60
    )
}

/// Days since 1970-01-01 → (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_fractions_and_compounds() {
        assert_eq!(parse("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse("100us"), Ok(Duration::from_micros(100)));
        assert_eq!(parse("100µs"), Ok(Duration::from_micros(100)));
        assert_eq!(parse(" 3 "), Ok(Duration::from_secs(3)), "a bare number is seconds");
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn refuses_what_is_not_a_duration() {
        for bad in ["", "s", "5x", "-5s", "5 s", "ms5", "1..2s", "nan", "inf", "5sec"] {
            let err = parse(bad).expect_err(bad);
            assert!(err.contains("expected e.g. 5s"), "{bad}: {err}");
        }
    }

    #[test]
    fn formats_for_people_and_for_jaeger() {
        assert_eq!(human_us(4), "4 µs");
        assert_eq!(human_us(49_510), "49.51 ms");
        assert_eq!(human_us(7_200_000), "7.20 s");
        assert_eq!(human_us(125_300_000), "2m05.3s");
        assert_eq!(human_us(-3), "0 µs");
        assert_eq!(go_string(Duration::from_secs(5)), "5000000us");
        assert_eq!(short(Duration::from_secs(3600)), "1h");
        assert_eq!(short(Duration::from_secs(90)), "90s");
        assert_eq!(short(Duration::from_secs(120)), "2m");
        assert_eq!(short(Duration::from_millis(250)), "250ms");
        assert_eq!(short(Duration::from_micros(1500)), "1.50 ms");
    }

    #[test]
    fn utc_timestamps() {
        assert_eq!(utc_timestamp(0), "1970-01-01 00:00:00.000 UTC");
        // 2024-02-29 13:14:15.678 UTC (a leap day)
        assert_eq!(utc_timestamp(1_709_212_455_678_000), "2024-02-29 13:14:15.678 UTC");
    }
}
