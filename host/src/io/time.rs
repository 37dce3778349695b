//! Timestamps: integer nanoseconds since the Unix epoch, parsed from integers or RFC 3339 text.
//!
//! RFC 3339 goes through the `time` crate: the calendar is checked (no 31 February, 29 February
//! only in leap years), any UTC offset is accepted and converted to UTC, and a time outside
//! what an `i64` of nanoseconds holds is refused rather than wrapped.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Earliest time a timestamp may name: `i64::MIN` nanoseconds since 1970.
pub const EARLIEST: &str = "1677-09-21T00:12:43.145224192Z";
/// Latest time a timestamp may name: `i64::MAX` nanoseconds since 1970.
pub const LATEST: &str = "2262-04-11T23:47:16.854775807Z";

/// Parses RFC 3339 text (`2020-03-12T00:10:00.0000000Z`, `2020-03-12T01:10:00+01:00`; a space
/// may stand for the `T`) or an integer count of nanoseconds since the epoch, into nanoseconds
/// since the epoch, UTC.
pub fn parse_timestamp(text: &str) -> Result<i64, String> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit() || b == b'-') && !t[1..].contains('-') {
        return t.parse::<i64>().map_err(|e| {
            format!("timestamp '{t}': {e} (integer nanoseconds since 1970 fit from {EARLIEST} to {LATEST})")
        });
    }
    // RFC 3339 allows a space for the `T` (section 5.6); the parser wants the `T`.
    let owned;
    let rfc = if t.len() > 10 && t.as_bytes()[10] == b' ' && t.is_char_boundary(11) {
        owned = format!("{}T{}", &t[..10], &t[11..]);
        owned.as_str()
    } else {
        t
    };
    let at = OffsetDateTime::parse(rfc, &Rfc3339).map_err(|e| {
        format!(
            "timestamp '{}' is neither integer nanoseconds nor RFC 3339 (2020-03-12T00:10:00Z, 2020-03-12T01:10:00+01:00): {e}",
            cut(t)
        )
    })?;
    i64::try_from(at.unix_timestamp_nanos()).map_err(|_| {
        format!("timestamp '{t}' is out of range: times from {EARLIEST} to {LATEST} are supported")
    })
}

/// A text for an error message, cut to its first 40 characters.
fn cut(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

/// Formats nanoseconds since the epoch as RFC 3339 UTC with milliseconds.
pub fn format_timestamp(ns: i64) -> String {
    // Every i64 of nanoseconds is within the years the `time` crate holds.
    let t = OffsetDateTime::from_unix_timestamp_nanos(ns as i128).expect("i64 nanoseconds are in range");
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rfc3339_and_integers() {
        assert_eq!(parse_timestamp("1970-01-01T00:00:00Z").unwrap(), 0);
        // 2020-03-12 is day 18333 since the epoch.
        assert_eq!(
            parse_timestamp("2020-03-12T00:10:00.0000000Z").unwrap(),
            (18_333 * 86_400 + 600) * 1_000_000_000
        );
        assert_eq!(parse_timestamp("2020-03-12T00:04:55.9304460Z").unwrap() % 1_000_000_000, 930_446_000);
        assert_eq!(parse_timestamp("2020-03-12 00:10:00Z").unwrap(), (18_333 * 86_400 + 600) * 1_000_000_000);
        assert_eq!(parse_timestamp("1234").unwrap(), 1234);
        assert_eq!(parse_timestamp("-1234").unwrap(), -1234);
        for bad in
            ["", "2020-13-01T00:00:00Z", "2020-03-12", "2020-03-12T00:00:00", "x", "2020-03-12T00:00:00.Z"]
        {
            assert!(parse_timestamp(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn calendar_is_checked() {
        // On main 2020-02-31 became 2020-03-02 and 2021-02-29 was taken.
        for bad in
            ["2020-02-31T00:00:00Z", "2021-02-29T00:00:00Z", "2020-04-31T12:00:00Z", "2020-01-01T24:00:00Z"]
        {
            let e = parse_timestamp(bad).unwrap_err();
            assert!(e.contains("RFC 3339"), "{bad}: {e}");
        }
        assert!(parse_timestamp("2020-02-29T00:00:00Z").is_ok(), "2020 is a leap year");
        assert!(parse_timestamp("2000-02-29T00:00:00Z").is_ok(), "2000 is a leap year");
        assert!(parse_timestamp("1900-02-29T00:00:00Z").is_err(), "1900 is not");
    }

    #[test]
    fn offsets_convert_to_utc() {
        // On main `+01:00` was refused as "not RFC 3339".
        let utc = parse_timestamp("2020-03-12T00:10:00Z").unwrap();
        assert_eq!(parse_timestamp("2020-03-12T01:10:00+01:00").unwrap(), utc);
        assert_eq!(parse_timestamp("2020-03-11T19:40:00-04:30").unwrap(), utc);
        assert_eq!(parse_timestamp("2020-03-12T00:10:00+00:00").unwrap(), utc);
    }

    #[test]
    fn out_of_range_years_are_refused_not_wrapped() {
        // On main 9999-12-31T23:59:59Z wrapped to 1816.
        for bad in
            ["9999-12-31T23:59:59Z", "2262-04-11T23:47:17Z", "1677-09-21T00:12:43Z", "0001-01-01T00:00:00Z"]
        {
            let e = parse_timestamp(bad).unwrap_err();
            assert!(e.contains("out of range") && e.contains(LATEST) && e.contains(EARLIEST), "{bad}: {e}");
        }
        assert_eq!(parse_timestamp(LATEST).unwrap(), i64::MAX);
        assert_eq!(parse_timestamp(EARLIEST).unwrap(), i64::MIN);
        let e = parse_timestamp("99999999999999999999").unwrap_err();
        assert!(e.contains(LATEST), "{e}");
    }

    #[test]
    fn formats_round_trip() {
        for s in ["2020-03-12T00:04:55.930Z", "2021-05-19T23:59:59.999Z", "1999-12-31T00:00:00.000Z"] {
            assert_eq!(format_timestamp(parse_timestamp(s).unwrap()), s);
        }
        assert_eq!(format_timestamp(i64::MAX), "2262-04-11T23:47:16.854Z");
        assert_eq!(format_timestamp(i64::MIN), "1677-09-21T00:12:43.145Z");
    }
}
