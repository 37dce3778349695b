//! Command options that carry numbers: parsed and range-checked here, where the fuzz targets
//! reach them, so a bad value is refused with its valid range instead of acting as another.

use crate::feed::replay::Pace;

/// Slowest replay speed-up and lowest fixed rate `--pace` takes (a day's recording at the
/// slowest speed lasts under three years; below that a run never ends in practice).
pub const PACE_MIN: f64 = 1e-3;
/// Largest speed-up and fixed rate `--pace` takes (beyond it, `flood` is the same thing).
pub const PACE_MAX: f64 = 1e9;

/// Parses `--pace`: `flood`, `recorded:SPEED` (the recorded times divided by SPEED) or
/// `fixed:PER_SECOND`; SPEED and PER_SECOND are numbers from [`PACE_MIN`] to [`PACE_MAX`].
pub fn parse_pace(s: &str) -> Result<Pace, String> {
    let number = |what: &str, x: &str| -> Result<f64, String> {
        match x.trim().parse::<f64>() {
            Ok(v) if (PACE_MIN..=PACE_MAX).contains(&v) => Ok(v),
            _ => Err(format!("pace '{s}': {what} must be a number from {PACE_MIN} to {PACE_MAX:e}")),
        }
    };
    Ok(match s.split_once(':') {
        None if s == "flood" => Pace::Flood,
        Some(("recorded", x)) => Pace::Recorded { speed: number("recorded:SPEED", x)? },
        Some(("fixed", x)) => Pace::Fixed { per_second: number("fixed:PER_SECOND", x)? },
        _ => return Err(format!("pace '{s}': use flood, recorded:SPEED or fixed:PER_SECOND")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pace_is_range_checked() {
        assert!(matches!(parse_pace("flood"), Ok(Pace::Flood)));
        assert!(matches!(parse_pace("recorded:1000"), Ok(Pace::Recorded { speed }) if speed == 1000.0));
        assert!(matches!(parse_pace("fixed:0.5"), Ok(Pace::Fixed { per_second }) if per_second == 0.5));
        // On main each of these ran as flood.
        for bad in ["fixed:0", "recorded:-5", "fixed:NaN", "fixed:inf", "recorded:1e10", "fixed:-0", "fixed:"]
        {
            let e = parse_pace(bad).unwrap_err();
            assert!(e.contains("must be a number from 0.001 to 1e9"), "{bad}: {e}");
        }
        assert!(parse_pace("slow").unwrap_err().contains("use flood"));
    }
}
