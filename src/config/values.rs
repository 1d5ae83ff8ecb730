//! Parsers for option values: booleans, octal modes, durations, sizes.

use std::time::Duration;

/// `true/yes/1/on` or `false/no/0/off`; a bare flag (`None`) is true.
pub(crate) fn flag(v: Option<&str>) -> Result<bool, String> {
    match v.map(str::to_ascii_lowercase).as_deref() {
        None | Some("true" | "yes" | "1" | "on") => Ok(true),
        Some("false" | "no" | "0" | "off") => Ok(false),
        Some(other) => Err(format!("expected true or false, got {other:?}")),
    }
}

/// An unsigned integer.
pub(crate) fn uint<T: std::str::FromStr>(v: &str) -> Result<T, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("expected a whole number, got {v:?}"))
}

/// An octal permission mask such as `022` or `0755`.
pub(crate) fn octal(v: &str) -> Result<u32, String> {
    let t = v.trim().trim_start_matches("0o");
    match u32::from_str_radix(t, 8) {
        Ok(m) if m <= 0o7777 => Ok(m),
        _ => Err(format!(
            "expected an octal mode like 022 or 0755, got {v:?}"
        )),
    }
}

/// Seconds (`1.5`) or a number with a unit: `500ms`, `30s`, `5m`, `2h`.
pub(crate) fn duration(v: &str) -> Result<Duration, String> {
    let t = v.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = t.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (t, 1.0)
    };
    match num.trim().parse::<f64>() {
        Ok(x) if x >= 0.0 && (x * scale).is_finite() => Ok(Duration::from_secs_f64(x * scale)),
        _ => Err(format!(
            "expected seconds or a duration like 500ms, 30s, 5m, 2h, got {v:?}"
        )),
    }
}

/// Bytes, with an optional binary unit: `512K`, `16M`, `10G`, `1T` (also `KiB`, `MB`…).
pub(crate) fn size(v: &str) -> Result<u64, String> {
    let t = v.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let mult: u64 = match unit
        .trim()
        .to_ascii_uppercase()
        .trim_end_matches("IB")
        .trim_end_matches('B')
    {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => {
            return Err(format!(
                "expected a size like 4096, 512K, 16M or 10G, got {v:?}"
            ))
        }
    };
    num.parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("expected a size like 4096, 512K, 16M or 10G, got {v:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_values() {
        assert_eq!(flag(None), Ok(true));
        assert_eq!(flag(Some("no")), Ok(false));
        assert!(flag(Some("maybe")).is_err());
        assert_eq!(octal("022"), Ok(0o22));
        assert!(octal("9").is_err());
        assert_eq!(duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("5m"), Ok(Duration::from_secs(300)));
        assert!(duration("-1").is_err());
        assert_eq!(size("16M"), Ok(16 << 20));
        assert_eq!(size("10GiB"), Ok(10 << 30));
        assert!(size("12Q").is_err());
    }
}
