//! Time spans on the command line: `90s`, `30m`, `24h`, `7d`.

use std::time::Duration;

/// Parses a span such as `24h`; the error says what a good one looks like.
pub fn parse_span(raw: &str) -> Result<Duration, String> {
    let s = raw.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 =
        number.parse().map_err(|_| format!("'{raw}' is not a time span; write it like 90s, 30m, 24h or 7d"))?;
    let millis = match unit.trim() {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(format!("'{raw}' has no unit ms, s, m, h or d; write it like 90s, 30m, 24h or 7d")),
    };
    n.checked_mul(millis)
        .filter(|total| *total <= 400 * 86_400_000)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("'{raw}' is too long; at most 400d"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans() {
        assert_eq!(parse_span("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_span("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_span("24h"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_span(" 7d "), Ok(Duration::from_secs(7 * 86_400)));
        for bad in ["", "h", "24", "1.5h", "-1h", "24x", "99999999999999999999d", "401d"] {
            assert!(parse_span(bad).is_err(), "{bad}");
        }
    }
}
