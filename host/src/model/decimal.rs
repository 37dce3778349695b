//! Exact decimal numbers for amounts, weights and prices as users write them.
//!
//! A [`Decimal`] is `mantissa * 10^-scale`. It is parsed from text exactly (no binary floating
//! point ever touches an amount that feeds a decision) and quantised with explicit floor or
//! ceiling rounding.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

/// Most fractional digits a [`Decimal`] may carry.
pub const MAX_SCALE: u32 = 36;

/// Most digits (before and after the point together) a decimal's text may have. An `i128`
/// holds 38; the rest leaves room for leading and trailing zeros.
pub const MAX_DIGITS: usize = 100;

/// Largest magnitude of a decimal's exponent (`1e-100` .. `1e100`). Every value the model can
/// use is far inside; the bound keeps parsing linear in the text, whatever the exponent says.
pub const MAX_EXPONENT: i32 = 100;

/// An exact decimal: `mantissa * 10^-scale`.
///
/// Equality, hashing and order are by value: `1.0 == 1` (`Decimal::new(10, 1) == Decimal::ONE`),
/// and equal values hash alike, so a decimal can key a map whatever scale it was written at.
#[derive(Clone, Copy, Debug, Default)]
pub struct Decimal {
    mantissa: i128,
    scale: u32,
}

/// Why a text is not a decimal, or an operation does not fit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecimalError {
    /// The text is not a plain decimal number.
    #[error("'{0}' is not a decimal number (expected digits with an optional sign, point and exponent)")]
    Malformed(String),
    /// Too many digits or too large an exponent for 128 bits.
    #[error("'{0}' has more digits than fit in 128 bits")]
    TooLarge(String),
    /// More digits in the text than [`MAX_DIGITS`].
    #[error("'{text}' has {digits} digits; at most {MAX_DIGITS} are read")]
    TooManyDigits {
        /// The text (cut to its first 40 characters).
        text: String,
        /// How many digits it has.
        digits: usize,
    },
    /// An exponent beyond [`MAX_EXPONENT`].
    #[error(
        "'{0}': exponent out of range; at most {MAX_EXPONENT} either way (1e-{MAX_EXPONENT} .. 1e{MAX_EXPONENT})"
    )]
    Exponent(String),
    /// An arithmetic result does not fit in 128 bits.
    #[error("decimal arithmetic overflowed 128 bits")]
    Overflow,
}

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

impl Decimal {
    /// Zero.
    pub const ZERO: Decimal = Decimal { mantissa: 0, scale: 0 };
    /// One.
    pub const ONE: Decimal = Decimal { mantissa: 1, scale: 0 };

    /// `mantissa * 10^-scale`.
    pub fn new(mantissa: i128, scale: u32) -> Self {
        Decimal { mantissa, scale }
    }

    /// An integer.
    pub fn from_int(v: i64) -> Self {
        Decimal { mantissa: v as i128, scale: 0 }
    }

    /// The mantissa.
    pub fn mantissa(self) -> i128 {
        self.mantissa
    }

    /// Digits after the point.
    pub fn scale(self) -> u32 {
        self.scale
    }

    /// True for values below zero.
    pub fn is_negative(self) -> bool {
        self.mantissa < 0
    }

    /// True for zero.
    pub fn is_zero(self) -> bool {
        self.mantissa == 0
    }

    /// The same value with trailing zero digits removed from the fraction.
    pub fn normalized(self) -> Self {
        if self.mantissa == 0 {
            // Zero at any scale: without this the loop below ran `scale` times.
            return Decimal::ZERO;
        }
        // Most mantissas fit 64 bits, where dividing by 10 is a multiply; in 128 bits it is a
        // call to the division routine. Both loops give the same result.
        if let Ok(m) = i64::try_from(self.mantissa) {
            let (mut m, mut scale) = (m, self.scale);
            while scale > 0 && m % 10 == 0 {
                m /= 10;
                scale -= 1;
            }
            return Decimal { mantissa: m as i128, scale };
        }
        self.normalized_wide()
    }

    /// [`normalized`](Self::normalized) in 128 bits throughout.
    fn normalized_wide(self) -> Self {
        if self.mantissa == 0 {
            return Decimal::ZERO;
        }
        let mut d = self;
        while d.scale > 0 && d.mantissa % 10 == 0 {
            d.mantissa /= 10;
            d.scale -= 1;
        }
        d
    }

    /// Rescales to `scale` digits (only upward, exact).
    fn with_scale(self, scale: u32) -> Result<Self, DecimalError> {
        debug_assert!(scale >= self.scale);
        let f = pow10(scale - self.scale).ok_or(DecimalError::Overflow)?;
        Ok(Decimal { mantissa: self.mantissa.checked_mul(f).ok_or(DecimalError::Overflow)?, scale })
    }

    /// Exact sum.
    pub fn checked_add(self, o: Decimal) -> Result<Decimal, DecimalError> {
        let s = self.scale.max(o.scale);
        let (a, b) = (self.with_scale(s)?, o.with_scale(s)?);
        Ok(Decimal { mantissa: a.mantissa.checked_add(b.mantissa).ok_or(DecimalError::Overflow)?, scale: s }
            .normalized())
    }

    /// Exact difference.
    pub fn checked_sub(self, o: Decimal) -> Result<Decimal, DecimalError> {
        self.checked_add(Decimal {
            mantissa: o.mantissa.checked_neg().ok_or(DecimalError::Overflow)?,
            scale: o.scale,
        })
    }

    /// Exact product.
    pub fn checked_mul(self, o: Decimal) -> Result<Decimal, DecimalError> {
        let (a, b) = (self.normalized(), o.normalized());
        let scale = a.scale + b.scale;
        if scale > 2 * MAX_SCALE {
            return Err(DecimalError::Overflow);
        }
        Ok(Decimal { mantissa: a.mantissa.checked_mul(b.mantissa).ok_or(DecimalError::Overflow)?, scale }
            .normalized())
    }

    /// `floor(self * 10^exp)` for a signed decimal exponent, exactly.
    pub fn floor_shifted(self, exp: i32) -> Result<i128, DecimalError> {
        self.round_shifted(exp, false)
    }

    /// `ceil(self * 10^exp)`, exactly.
    pub fn ceil_shifted(self, exp: i32) -> Result<i128, DecimalError> {
        self.round_shifted(exp, true)
    }

    fn round_shifted(self, exp: i32, up: bool) -> Result<i128, DecimalError> {
        if self.mantissa == 0 {
            // Zero at any scale and shift: 10^exp may not fit, the product does.
            return Ok(0);
        }
        let net = exp as i64 - self.scale as i64;
        if net >= 0 {
            let f = u32::try_from(net).ok().and_then(pow10).ok_or(DecimalError::Overflow)?;
            return self.mantissa.checked_mul(f).ok_or(DecimalError::Overflow);
        }
        let Some(d) = u32::try_from(-net).ok().and_then(pow10) else {
            // More than 38 digits below the unit: the value is a fraction of one quantum.
            return Ok(match (self.mantissa.signum(), up) {
                (0, _) => 0,
                (1, true) => 1,
                (1, false) => 0,
                (_, true) => 0,
                (_, false) => -1,
            });
        };
        Ok(divide_rounding(self.mantissa, d, up))
    }

    /// Approximate value for display only; never used in a decision.
    pub fn to_f64_lossy(self) -> f64 {
        self.mantissa as f64 / 10f64.powi(self.scale as i32)
    }

    /// Parses a decimal from a finite `f64`'s shortest round-trip text (for inputs that arrive as
    /// binary floats, such as JSON numbers written by other tools).
    pub fn from_f64_text(v: f64) -> Result<Decimal, DecimalError> {
        if !v.is_finite() {
            return Err(DecimalError::Malformed(v.to_string()));
        }
        format!("{v}").parse()
    }
}

/// `floor(m / d)` (or the ceiling when `up`), for `d > 0`: in 64 bits when both fit, where
/// the division is one instruction rather than a call; the same result either way.
fn divide_rounding(m: i128, d: i128, up: bool) -> i128 {
    if let (Ok(m), Ok(d)) = (i64::try_from(m), i64::try_from(d)) {
        let (q, r) = (m.div_euclid(d), m.rem_euclid(d));
        return (if up && r != 0 { q + 1 } else { q }) as i128;
    }
    divide_rounding_wide(m, d, up)
}

/// [`divide_rounding`] in 128 bits.
fn divide_rounding_wide(m: i128, d: i128, up: bool) -> i128 {
    let (q, r) = (m.div_euclid(d), m.rem_euclid(d));
    if up && r != 0 { q + 1 } else { q }
}

/// The integer the digits of `int` then `frac` spell (ASCII digits, checked before), or
/// `None` when it passes 128 bits. Up to 18 digits fit 64 bits without a check a digit.
fn digits_value(int: &str, frac: &str) -> Option<i128> {
    if int.len() + frac.len() <= 18 {
        let m = int.bytes().chain(frac.bytes()).fold(0u64, |m, b| m * 10 + (b - b'0') as u64);
        return Some(m as i128);
    }
    digits_value_wide(int, frac)
}

/// The text nearly every book and tick file holds, in one pass: an optional sign and at most 18
/// digits with at most one point, nothing else. `None` for anything else (spaces, exponents,
/// more digits, a malformed text), which the general parser then reads or refuses; where this
/// gives a value, it is the general parser's (a property test).
fn parse_plain(text: &[u8]) -> Option<Decimal> {
    let (neg, body) = match text.first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    if body.len() > 19 {
        return None;
    }
    let (mut m, mut digits, mut point) = (0u64, 0usize, None);
    for (i, &c) in body.iter().enumerate() {
        match c {
            b'0'..=b'9' => {
                m = m * 10 + (c - b'0') as u64;
                digits += 1;
            }
            b'.' if point.is_none() => point = Some(i),
            _ => return None,
        }
    }
    if digits == 0 || digits > 18 {
        return None;
    }
    let scale = point.map_or(0, |p| body.len() - p - 1) as u32;
    let mantissa = if neg { -(m as i128) } else { m as i128 };
    Some(Decimal { mantissa, scale }.normalized())
}

/// [`digits_value`] in 128 bits, checked a digit.
fn digits_value_wide(int: &str, frac: &str) -> Option<i128> {
    let mut m: i128 = 0;
    for b in int.bytes().chain(frac.bytes()) {
        m = m.checked_mul(10)?.checked_add((b - b'0') as i128)?;
    }
    Some(m)
}

/// A text for an error message, cut to its first 40 characters.
fn cut(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

impl FromStr for Decimal {
    type Err = DecimalError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match parse_plain(text.as_bytes()) {
            Some(d) => Ok(d),
            None => parse_general(text),
        }
    }
}

/// Any decimal text: spaces around it, a sign, digits with a point, an exponent; every check.
fn parse_general(text: &str) -> Result<Decimal, DecimalError> {
    let bad = || DecimalError::Malformed(cut(text));
    let big = || DecimalError::TooLarge(cut(text));
    let t = text.trim();
    let (neg, body) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    // A byte search: 'e' and 'E' are ASCII, so a hit is a char boundary.
    let (num, exp) = match body.bytes().position(|b| b == b'e' || b == b'E') {
        Some(i) => {
            let e = &body[i + 1..];
            let digits = e.strip_prefix(['-', '+']).unwrap_or(e);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            // Bounded before any arithmetic: `0e-2147483648` once meant 2^31 loop turns.
            let e = e.parse::<i32>().ok().filter(|e| e.unsigned_abs() <= MAX_EXPONENT as u32);
            (&body[..i], e.ok_or_else(|| DecimalError::Exponent(cut(text)))?)
        }
        None => (body, 0),
    };
    let (int, frac) = match num.find('.') {
        Some(i) => (&num[..i], &num[i + 1..]),
        None => (num, ""),
    };
    if int.is_empty() && frac.is_empty() {
        return Err(bad());
    }
    if !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    if int.len() + frac.len() > MAX_DIGITS {
        return Err(DecimalError::TooManyDigits { text: cut(text), digits: int.len() + frac.len() });
    }
    let mut m = digits_value(int, frac).ok_or_else(big)?;
    let mut scale = frac.len() as i64 - exp as i64;
    if scale < 0 {
        m = m.checked_mul(pow10((-scale) as u32).ok_or_else(big)?).ok_or_else(big)?;
        scale = 0;
    }
    let mut d = Decimal { mantissa: if neg { -m } else { m }, scale: scale as u32 }.normalized();
    if d.scale > MAX_SCALE {
        // Keep the value exact or refuse: digits beyond MAX_SCALE must be zero.
        return Err(big());
    }
    d.scale = d.scale.min(MAX_SCALE);
    Ok(d)
}

impl fmt::Display for Decimal {
    /// Plain digits, a point where the scale puts one (no exponent); allocates nothing: the
    /// breach file writes one an event.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = itoa::Buffer::new();
        let digits = buf.format(self.mantissa.unsigned_abs());
        let s = self.scale as usize;
        if self.mantissa < 0 {
            f.write_str("-")?;
        }
        if digits.len() > s {
            let (int, frac) = digits.split_at(digits.len() - s);
            f.write_str(int)?;
            if !frac.is_empty() {
                f.write_str(".")?;
                f.write_str(frac)?;
            }
            Ok(())
        } else {
            f.write_str("0.")?;
            for _ in digits.len()..s {
                f.write_str("0")?;
            }
            f.write_str(digits)
        }
    }
}

impl PartialOrd for Decimal {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Decimal {
    /// Exact for every pair of decimals, however far apart their scales (no rounding, no
    /// overflow): signs first, then magnitudes brought to one scale in `u128`.
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (self.normalized(), other.normalized());
        let sign = a.mantissa.signum().cmp(&b.mantissa.signum());
        if sign != Ordering::Equal || a.mantissa == 0 {
            return sign;
        }
        let magnitude = cmp_magnitude(a.mantissa.unsigned_abs(), a.scale, b.mantissa.unsigned_abs(), b.scale);
        if a.mantissa < 0 { magnitude.reverse() } else { magnitude }
    }
}

/// Compares `x * 10^-xs` with `y * 10^-ys`, both non-zero.
fn cmp_magnitude(x: u128, xs: u32, y: u128, ys: u32) -> Ordering {
    if xs > ys {
        return cmp_magnitude(y, ys, x, xs).reverse();
    }
    // x has the fewer fraction digits: scale it up. If that overflows `u128`, x * 10^k is
    // beyond any u128 (x >= 1), so beyond y.
    match 10u128.checked_pow(ys - xs).and_then(|f| x.checked_mul(f)) {
        Some(x) => x.cmp(&y),
        None => Ordering::Greater,
    }
}

impl PartialEq for Decimal {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Decimal {}

impl Hash for Decimal {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // The normalized form is one per value (fewest fraction digits, zero at scale 0).
        let n = self.normalized();
        n.mantissa.hash(state);
        n.scale.hash(state);
    }
}

impl serde::Serialize for Decimal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'a> serde::Deserialize<'a> for Decimal {
    fn deserialize<D: serde::Deserializer<'a>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Decimal;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a decimal number or a string holding one")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Decimal, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Decimal, E> {
                Ok(Decimal::from_int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Decimal, E> {
                Ok(Decimal::new(v as i128, 0))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Decimal, E> {
                Decimal::from_f64_text(v).map_err(E::custom)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Decimal, A::Error> {
                // serde_json's arbitrary_precision hands numbers over as a one-entry map holding
                // the number's exact text.
                let (_k, v): (String, String) =
                    map.next_entry()?.ok_or_else(|| serde::de::Error::custom("empty number"))?;
                v.parse().map_err(serde::de::Error::custom)
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn parses_exactly() {
        assert_eq!(d("195.210000000"), Decimal::new(19521, 2));
        assert_eq!(d("-0.5"), Decimal::new(-5, 1));
        assert_eq!(d("1e3"), Decimal::new(1000, 0));
        assert_eq!(d("2.5E-3"), Decimal::new(25, 4));
        assert_eq!(d(".5"), Decimal::new(5, 1));
        assert_eq!(d("+7"), Decimal::new(7, 0));
        for bad in ["", "-", ".", "1.2.3", "abc", "1e", "NaN", "inf", "1,5", "0x10"] {
            assert!(bad.parse::<Decimal>().is_err(), "{bad} parsed");
        }
        assert!(matches!("1e40".parse::<Decimal>(), Err(DecimalError::TooLarge(_))));
    }

    #[test]
    fn exponent_and_digits_are_bounded_before_any_work() {
        // On main `0e-2147483648` took 18 s of CPU (a normalising loop 2^31 turns long).
        let t = std::time::Instant::now();
        for text in ["0e-2147483648", "0e2147483647", "1e-101", "5E+101", "0.0e-99999999999"] {
            let e = text.parse::<Decimal>().unwrap_err();
            assert!(matches!(e, DecimalError::Exponent(_) | DecimalError::Malformed(_)), "{text}: {e}");
        }
        assert!(t.elapsed() < std::time::Duration::from_secs(1), "bounded: {:?}", t.elapsed());
        let e = "0e-2147483648".parse::<Decimal>().unwrap_err().to_string();
        assert!(e.contains("exponent out of range; at most 100"), "{e}");
        assert_eq!(d("0e-100"), Decimal::ZERO);
        assert_eq!(d("1e-36"), Decimal::new(1, 36));
        assert_eq!(d("1e30"), Decimal::new(10i128.pow(30), 0));
        let long = format!("0.{}1", "0".repeat(100));
        let e = long.parse::<Decimal>().unwrap_err();
        assert!(matches!(e, DecimalError::TooManyDigits { digits: 102, .. }), "{e}");
        assert!(e.to_string().len() < 120, "the message cuts the text: {e}");
        assert_eq!(d(&format!("{}1", "0".repeat(99))), Decimal::ONE);
        // Zero at any scale normalises at once.
        assert_eq!(Decimal::new(0, u32::MAX).normalized(), Decimal::ZERO);
        assert_eq!(Decimal::new(5, u32::MAX).floor_shifted(0).unwrap(), 0);
    }

    proptest::proptest! {
        /// The one-pass parser gives the general parser's value and scale wherever it gives
        /// one, and gives one for every plain text of at most 18 digits.
        #[test]
        fn the_plain_parser_agrees_with_the_general_one(text in "[-+]?[0-9.]{0,20}|[-+ 0-9.eE]{0,12}") {
            if let Some(d) = parse_plain(text.as_bytes()) {
                let g = parse_general(&text).unwrap();
                proptest::prop_assert_eq!((d.mantissa, d.scale), (g.mantissa, g.scale), "{}", text);
            } else {
                let body = text.trim_start_matches(['-', '+']);
                let plain = text.len() - body.len() <= 1
                    && body.bytes().filter(|&b| b == b'.').count() <= 1
                    && body.bytes().all(|b| b == b'.' || b.is_ascii_digit())
                    && (1..=18).contains(&body.bytes().filter(u8::is_ascii_digit).count());
                proptest::prop_assert!(!plain, "{} is plain but was not parsed in one pass", text);
            }
        }

        /// Display writes the mantissa's digits with the point `scale` places from the right
        /// (leading zeros as needed), any mantissa and scale, and parses back to the value.
        #[test]
        fn displays_digits_and_point(m: i128, scale in 0u32..=MAX_SCALE + 4) {
            let digits = m.unsigned_abs().to_string();
            let s = scale as usize;
            let padded = format!("{}{digits}", "0".repeat((s + 1).saturating_sub(digits.len())));
            let (int, frac) = padded.split_at(padded.len() - s);
            let want = format!("{}{int}{}{frac}", if m < 0 { "-" } else { "" }, if s > 0 { "." } else { "" });
            let got = Decimal::new(m, scale).to_string();
            proptest::prop_assert_eq!(&got, &want);
            if scale <= MAX_SCALE {
                proptest::prop_assert_eq!(got.parse::<Decimal>().unwrap(), Decimal::new(m, scale));
            }
        }
    }

    #[test]
    fn displays_round_trip() {
        for s in ["0", "1", "-1", "0.001", "-123.456", "100"] {
            assert_eq!(d(s).to_string(), s);
            assert_eq!(d(&d(s).to_string()), d(s));
        }
    }

    #[test]
    fn rounds_floor_and_ceil() {
        assert_eq!(d("1.25").floor_shifted(1).unwrap(), 12);
        assert_eq!(d("1.25").ceil_shifted(1).unwrap(), 13);
        assert_eq!(d("-1.25").floor_shifted(1).unwrap(), -13);
        assert_eq!(d("-1.25").ceil_shifted(1).unwrap(), -12);
        assert_eq!(d("1.2").floor_shifted(1).unwrap(), 12);
        assert_eq!(d("1.2").ceil_shifted(1).unwrap(), 12);
        assert_eq!(d("3").floor_shifted(-1).unwrap(), 0);
        assert_eq!(d("3").ceil_shifted(-1).unwrap(), 1);
        assert_eq!(d("1e-30").ceil_shifted(-20).unwrap(), 1);
        assert_eq!(d("-1e-30").floor_shifted(-20).unwrap(), -1);
    }

    #[test]
    fn arithmetic_is_exact() {
        assert_eq!(d("0.1").checked_add(d("0.2")).unwrap(), d("0.3"));
        assert_eq!(d("1").checked_sub(d("0.825")).unwrap(), d("0.175"));
        assert_eq!(d("1.5").checked_mul(d("0.825")).unwrap(), d("1.2375"));
        assert!(d("0.3") > d("0.29999"));
        assert!(Decimal::new(i128::MAX, 0).checked_mul(d("2")).is_err());
    }

    #[test]
    fn deserializes_json_numbers_exactly() {
        let v: Vec<Decimal> = serde_json::from_str("[195.210000000, \"0.1\", 3, -2]").unwrap();
        assert_eq!(v, vec![d("195.21"), d("0.1"), d("3"), d("-2")]);
    }

    #[test]
    fn equality_is_by_value_as_order_is() {
        // On main `Decimal::new(10, 1) != Decimal::ONE` while `cmp` said Equal.
        assert_eq!(Decimal::new(10, 1), Decimal::ONE);
        assert_eq!(Decimal::new(0, 7), Decimal::ZERO);
        assert_eq!(Decimal::new(-2500, 3), d("-2.5"));
        assert_ne!(Decimal::new(11, 1), Decimal::ONE);
        let set: std::collections::HashSet<Decimal> =
            [Decimal::ONE, Decimal::new(10, 1), Decimal::new(1000, 3), d("1")].into_iter().collect();
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn order_is_exact_where_rescaling_overflows() {
        // On main cmp fell back to f64 here and called these Equal: 1.7014118346046923e37 both.
        let a = Decimal::new(i128::MAX / 10 + 1, 0);
        let b = Decimal::new(i128::MAX, 1);
        assert_eq!(a.cmp(&b), Ordering::Greater);
        assert_ne!(a, b);
        assert!(Decimal::new(i128::MAX, 0) > Decimal::new(i128::MAX, 1));
        assert!(Decimal::new(i128::MIN, 0) < Decimal::new(i128::MIN, 1));
        assert!(Decimal::new(i128::MIN, 0) < Decimal::new(i128::MAX, 0));
        assert!(Decimal::new(1, u32::MAX) > Decimal::ZERO);
        assert!(Decimal::new(1, u32::MAX) < Decimal::new(1, u32::MAX - 1));
        assert!(Decimal::new(-1, u32::MAX) > Decimal::new(-1, 0));
    }

    fn any_decimal() -> impl proptest::strategy::Strategy<Value = Decimal> {
        use proptest::prelude::*;
        prop_oneof![
            // Small values at small scales, so equal values at different scales come up often.
            (-1000i128..1000, 0u32..6).prop_map(|(m, s)| Decimal::new(m * 10i128.pow(s % 3), s)),
            (any::<i128>(), 0u32..45).prop_map(|(m, s)| Decimal::new(m, s)),
            (
                prop::sample::select(vec![i128::MIN, i128::MIN + 1, -1, 0, 1, i128::MAX / 10 + 1, i128::MAX]),
                prop::sample::select(vec![0u32, 1, 2, 37, 38, 39, 100, u32::MAX])
            )
                .prop_map(|(m, s)| Decimal::new(m, s)),
        ]
    }

    fn hash_of(x: Decimal) -> u64 {
        // A fixed hasher, so equal values must give equal numbers.
        let mut h = std::collections::hash_map::DefaultHasher::new();
        x.hash(&mut h);
        h.finish()
    }

    /// The exact order, by a different route: both sides as `mantissa * 10^(S - scale)` in
    /// 256 bits (hi, lo), only for scales where that fits.
    fn reference_cmp(a: Decimal, b: Decimal) -> Option<Ordering> {
        let s = a.scale().max(b.scale());
        let wide = |x: Decimal| -> Option<(i128, u128)> {
            let f = 10u128.checked_pow(s - x.scale())?;
            // |m| * f as 256 bits, from 64-bit limbs.
            let m = x.mantissa().unsigned_abs();
            let (m1, m0) = (m >> 64, m & u64::MAX as u128);
            let (f1, f0) = (f >> 64, f & u64::MAX as u128);
            let p00 = m0 * f0;
            let p01 = m0 * f1;
            let p10 = m1 * f0;
            let p11 = m1.checked_mul(f1)?;
            let mid = (p00 >> 64) + (p01 & u64::MAX as u128) + (p10 & u64::MAX as u128);
            let lo = (p00 & u64::MAX as u128) | (mid << 64);
            let hi = p11.checked_add((p01 >> 64) + (p10 >> 64) + (mid >> 64))?;
            let hi = i128::try_from(hi).ok()?;
            Some(if x.is_negative() {
                // Two's complement negation of (hi, lo).
                let (nlo, borrow) = 0u128.overflowing_sub(lo);
                (-hi - borrow as i128, nlo)
            } else {
                (hi, lo)
            })
        };
        Some(wide(a)?.cmp(&wide(b)?))
    }

    proptest::proptest! {
        #[test]
        fn the_64_bit_paths_match_the_128_bit_ones(
            a in any_decimal(),
            exp in -45i32..45,
            d in proptest::prop_oneof![1i128..20, 1i128..i64::MAX as i128, 1i128..i128::MAX],
            digits in "[0-9]{0,45}",
            cut in 0usize..46,
        ) {
            use proptest::prop_assert_eq;
            // Raw fields: equality of decimals is by value, which would hide a wrong scale.
            let (n, w) = (a.normalized(), a.normalized_wide());
            prop_assert_eq!((n.mantissa, n.scale), (w.mantissa, w.scale));
            for up in [false, true] {
                prop_assert_eq!(divide_rounding(a.mantissa, d, up), divide_rounding_wide(a.mantissa, d, up));
            }
            prop_assert_eq!(a.floor_shifted(exp), a.normalized_wide().floor_shifted(exp));
            let (int, frac) = digits.split_at(cut.min(digits.len()));
            prop_assert_eq!(digits_value(int, frac), digits_value_wide(int, frac));
        }

        #[test]
        fn eq_hash_and_cmp_agree(a in any_decimal(), b in any_decimal(), c in any_decimal()) {
            use proptest::prop_assert_eq;
            prop_assert_eq!(a == b, a.cmp(&b) == Ordering::Equal);
            prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
            if a == b {
                prop_assert_eq!(hash_of(a), hash_of(b));
            }
            prop_assert_eq!(a, a.normalized());
            prop_assert_eq!(hash_of(a), hash_of(a.normalized()));
            if a <= b && b <= c {
                proptest::prop_assert!(a <= c);
            }
            if let Some(r) = reference_cmp(a, b) {
                prop_assert_eq!(a.cmp(&b), r, "{:?} vs {:?}", a, b);
            }
        }
    }
}
