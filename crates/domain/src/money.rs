//! Amounts of money in yuan, held exactly as a whole number of fen (0.01 yuan).
//!
//! Budgets and spending are compared and summed; binary floating point would make
//! `0.1 + 0.2` yuan differ from `0.3` yuan, so every amount is an integer count of fen.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An amount in yuan, exact to the fen. Written and read as a decimal string such as
/// `"1250000.00"`; parsing also accepts integers, thousands separators and a leading `¥`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money {
    fen: i64,
}

/// Why a text is not an amount of money.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("empty amount")]
    Empty,
    #[error(
        "`{0}` is not an amount in yuan (expected digits with at most two decimals, e.g. 12500.50)"
    )]
    Malformed(String),
    #[error("`{0}` has more than two decimals: amounts are exact to the fen (0.01 yuan)")]
    TooPrecise(String),
    #[error("`{0}` is too large: amounts are at most 1000000000000.00 yuan")]
    Overflow(String),
}

impl MoneyError {
    /// The stable code clients see (`details.fields[].code` or `details.reason`).
    pub fn code(&self) -> &'static str {
        match self {
            Self::Overflow(_) => "AMOUNT_TOO_LARGE",
            _ => "INVALID_AMOUNT",
        }
    }
}

impl Money {
    pub const ZERO: Self = Self { fen: 0 };

    /// The largest amount accepted anywhere, in either sign: 1 万亿 (10^12) yuan. Far
    /// above any grant, and far enough below `i64::MAX` fen that sums of amounts cannot
    /// overflow in practice (see the `Sum` impl).
    pub const MAX: Self = Self {
        fen: 1_000_000_000_000 * 100,
    };

    /// `Some` when within ±[`Money::MAX`].
    pub fn checked(self) -> Option<Self> {
        (self.fen.checked_abs()? <= Self::MAX.fen).then_some(self)
    }

    pub const fn from_fen(fen: i64) -> Self {
        Self { fen }
    }

    /// Whole yuan; `None` beyond ±[`Money::MAX`].
    pub fn from_yuan(yuan: i64) -> Option<Self> {
        yuan.checked_mul(100).map(Self::from_fen)?.checked()
    }

    pub const fn fen(self) -> i64 {
        self.fen
    }

    /// Parse a decimal amount in yuan: `"12500"`, `"12,500.5"`, `"¥12500.50"`, `"-3.20"`.
    pub fn parse(text: &str) -> Result<Self, MoneyError> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(MoneyError::Empty);
        }
        let cleaned: String = trimmed
            .trim_start_matches(['¥', '￥'])
            .chars()
            .filter(|c| *c != ',' && *c != '，')
            .collect();
        let (negative, digits) = match cleaned.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, cleaned.as_str()),
        };
        let (whole, frac) = match digits.split_once('.') {
            Some((w, f)) => (w, f),
            None => (digits, ""),
        };
        let malformed = || MoneyError::Malformed(trimmed.to_string());
        if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return Err(malformed());
        }
        if !frac.bytes().all(|b| b.is_ascii_digit()) || (digits.contains('.') && frac.is_empty()) {
            return Err(malformed());
        }
        if frac.len() > 2 {
            // Trailing zeros beyond the fen are harmless ("1.500").
            if frac[2..].bytes().any(|b| b != b'0') {
                return Err(MoneyError::TooPrecise(trimmed.to_string()));
            }
        }
        let overflow = || MoneyError::Overflow(trimmed.to_string());
        let whole: i64 = whole.parse().map_err(|_| overflow())?;
        let mut frac_fen: i64 = 0;
        for (i, b) in frac.bytes().take(2).enumerate() {
            let digit = i64::from(b - b'0');
            frac_fen += if i == 0 { digit * 10 } else { digit };
        }
        let fen = whole
            .checked_mul(100)
            .and_then(|f| f.checked_add(frac_fen))
            .ok_or_else(overflow)?;
        Self::from_fen(if negative { -fen } else { fen })
            .checked()
            .ok_or_else(overflow)
    }

    /// Parse an amount that may say its unit: `"80万元"` / `"80万"` are 800 000 yuan (up to
    /// six decimals, exact to the fen), `"500元"` is 500 yuan; without a unit the text is
    /// in yuan, as [`Money::parse`].
    pub fn parse_with_unit(text: &str) -> Result<Self, MoneyError> {
        let trimmed = text.trim();
        let wan = trimmed
            .strip_suffix("万元")
            .or_else(|| trimmed.strip_suffix('万'));
        let Some(number) = wan else {
            return Self::parse(trimmed.strip_suffix('元').unwrap_or(trimmed));
        };
        let malformed = || MoneyError::Malformed(trimmed.to_string());
        let number = number.trim().trim_start_matches(['¥', '￥']);
        let (negative, digits) = match number.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, number),
        };
        let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !all_digits(whole) || !all_digits(frac) {
            return Err(malformed());
        }
        if digits.contains('.') && frac.is_empty() {
            return Err(malformed());
        }
        // One 万元 is 1 000 000 fen: six decimals are exact, more must be zeros.
        let frac = frac.trim_end_matches('0');
        if frac.len() > 6 {
            return Err(MoneyError::TooPrecise(trimmed.to_string()));
        }
        let overflow = || MoneyError::Overflow(trimmed.to_string());
        let frac_fen: i64 = format!("{frac:0<6}").parse().map_err(|_| malformed())?;
        let fen = whole
            .parse::<i64>()
            .map_err(|_| overflow())?
            .checked_mul(1_000_000)
            .and_then(|f| f.checked_add(frac_fen))
            .ok_or_else(overflow)?;
        Self::from_fen(if negative { -fen } else { fen })
            .checked()
            .ok_or_else(overflow)
    }

    /// `None` when the result is beyond ±[`Money::MAX`].
    pub fn checked_add(self, other: Self) -> Option<Self> {
        self.fen
            .checked_add(other.fen)
            .map(Self::from_fen)?
            .checked()
    }

    /// `None` when the result is beyond ±[`Money::MAX`].
    pub fn checked_sub(self, other: Self) -> Option<Self> {
        self.fen
            .checked_sub(other.fen)
            .map(Self::from_fen)?
            .checked()
    }

    /// For reports only (e.g. what is left of a total): never wraps or panics.
    pub fn saturating_sub(self, other: Self) -> Self {
        Self::from_fen(self.fen.saturating_sub(other.fen))
    }

    pub fn is_negative(self) -> bool {
        self.fen < 0
    }

    /// This amount as a fraction of `total` (e.g. budget execution rate); `None` when
    /// `total` is zero.
    pub fn ratio_of(self, total: Self) -> Option<f64> {
        if total.fen == 0 {
            None
        } else {
            Some(self.fen as f64 / total.fen as f64)
        }
    }

    /// Yuan as a float, for display and CEL comparisons only; never for sums.
    pub fn as_yuan_f64(self) -> f64 {
        self.fen as f64 / 100.0
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.fen < 0 { "-" } else { "" };
        let abs = self.fen.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl FromStr for Money {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Sums saturate at the largest representable amount instead of wrapping or panicking.
/// Every amount is at most [`Money::MAX`] (10^12 yuan), so a sum can only saturate past
/// 92,000 maximal amounts; where a sum decides something (what is left on a budget
/// line), use [`Money::checked_add`] and [`Money::checked_sub`], which refuse instead.
impl std::iter::Sum for Money {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        Self::from_fen(iter.fold(0i64, |acc, m| acc.saturating_add(m.fen)))
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Repr {
            Text(String),
            Int(i64),
        }
        match Repr::deserialize(deserializer)? {
            Repr::Text(s) => Self::parse(&s).map_err(serde::de::Error::custom),
            Repr::Int(i) => {
                Self::from_yuan(i).ok_or_else(|| serde::de::Error::custom("amount too large"))
            }
        }
    }
}

impl JsonSchema for Money {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Money".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "An amount in yuan, exact to the fen, written as a decimal string such as \"12500.50\".",
            "type": ["string", "integer"],
            "pattern": "^-?[0-9]+(\\.[0-9]{1,2})?$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_may_say_their_unit() {
        let p = |s: &str| Money::parse_with_unit(s);
        assert_eq!(p("80万元"), Ok(Money::from_yuan(800_000).unwrap()));
        assert_eq!(p("50万"), Ok(Money::from_yuan(500_000).unwrap()));
        assert_eq!(p("12.345678万元"), Ok(Money::from_fen(12_345_678)));
        assert_eq!(p("500元"), Ok(Money::from_yuan(500).unwrap()));
        assert_eq!(p("300000.00"), Ok(Money::from_yuan(300_000).unwrap()));
        assert_eq!(p("1.2345678万").unwrap_err().code(), "INVALID_AMOUNT");
        assert_eq!(p("约12万").unwrap_err().code(), "INVALID_AMOUNT");
        assert_eq!(p("万元").unwrap_err().code(), "INVALID_AMOUNT");
        assert_eq!(
            p("999999999999999万").unwrap_err().code(),
            "AMOUNT_TOO_LARGE"
        );
    }

    #[test]
    fn parses_and_prints_exactly() {
        assert_eq!(Money::parse("12500").unwrap().fen(), 1_250_000);
        assert_eq!(Money::parse("12,500.5").unwrap().fen(), 1_250_050);
        assert_eq!(Money::parse("¥0.07").unwrap().to_string(), "0.07");
        assert_eq!(Money::parse("-3.20").unwrap().to_string(), "-3.20");
        assert_eq!(Money::parse("1.500").unwrap().fen(), 150);
        let sum = Money::parse("0.1")
            .unwrap()
            .checked_add(Money::parse("0.2").unwrap());
        assert_eq!(sum, Some(Money::parse("0.3").unwrap()));
    }

    #[test]
    fn rejects_what_is_not_an_amount() {
        assert_eq!(Money::parse(" "), Err(MoneyError::Empty));
        assert!(matches!(Money::parse("12a"), Err(MoneyError::Malformed(_))));
        assert!(matches!(Money::parse("1."), Err(MoneyError::Malformed(_))));
        assert!(matches!(Money::parse(".5"), Err(MoneyError::Malformed(_))));
        assert!(matches!(
            Money::parse("1.234"),
            Err(MoneyError::TooPrecise(_))
        ));
        assert!(matches!(
            Money::parse("99999999999999999999"),
            Err(MoneyError::Overflow(_))
        ));
    }

    #[test]
    fn amounts_are_bounded_and_arithmetic_is_checked() {
        assert_eq!(Money::parse("1000000000000").unwrap(), Money::MAX);
        assert_eq!(
            Money::parse("-1000000000000.00").unwrap().fen(),
            -Money::MAX.fen()
        );
        for big in [
            "1000000000000.01",
            "92233720368547758.07",
            "-92233720368547758.08",
        ] {
            let e = Money::parse(big).unwrap_err();
            assert_eq!(e.code(), "AMOUNT_TOO_LARGE", "{big}");
        }
        assert_eq!(Money::from_yuan(i64::MAX), None);
        assert_eq!(Money::MAX.checked_add(Money::from_fen(1)), None);
        assert_eq!(
            (-Money::MAX.fen()).checked_sub(1),
            Some(-Money::MAX.fen() - 1)
        );
        assert_eq!(
            Money::from_fen(-Money::MAX.fen()).checked_sub(Money::from_fen(1)),
            None
        );
        let many = std::iter::repeat_n(Money::from_fen(i64::MAX), 3);
        assert_eq!(
            many.sum::<Money>().fen(),
            i64::MAX,
            "saturates, never wraps"
        );
        assert!(serde_json::from_str::<Money>("\"1000000000000.01\"").is_err());
        assert!(serde_json::from_str::<Money>("10000000000001").is_err());
    }

    #[test]
    fn serde_round_trip_is_a_string() {
        let m = Money::parse("42.10").unwrap();
        let json = serde_json::to_string(&m).unwrap();
        assert_eq!(json, "\"42.10\"");
        assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), m);
        assert_eq!(serde_json::from_str::<Money>("42").unwrap().fen(), 4200);
    }
}
