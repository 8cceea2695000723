//! Durations as written in workflow files: `7d` (calendar days), `5wd` (working days
//! in the mainland-China calendar) and `48h` (hours).

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Span {
    Days(u32),
    WorkingDays(u32),
    Hours(u32),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{text}` is not a duration: write a whole number followed by `d` (calendar days), `wd` (working days) or `h` (hours), e.g. `7d`, `5wd`, `48h`"
)]
pub struct SpanError {
    pub text: String,
}

impl Span {
    pub fn parse(text: &str) -> Result<Self, SpanError> {
        let err = || SpanError {
            text: text.to_string(),
        };
        let t = text.trim();
        let digits_end = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
        if digits_end == 0 {
            return Err(err());
        }
        let n: u32 = t[..digits_end].parse().map_err(|_| err())?;
        // More than ten years is certainly a typo in a grant workflow.
        if n > 3660 {
            return Err(err());
        }
        match &t[digits_end..] {
            "d" => Ok(Self::Days(n)),
            "wd" => Ok(Self::WorkingDays(n)),
            "h" => Ok(Self::Hours(n)),
            _ => Err(err()),
        }
    }

    /// A rough length in hours, for comparing spans of different units when validating
    /// (a working day counts as 1.4 calendar days).
    pub fn approx_hours(self) -> f64 {
        match self {
            Self::Days(n) => f64::from(n) * 24.0,
            Self::WorkingDays(n) => f64::from(n) * 24.0 * 1.4,
            Self::Hours(n) => f64::from(n),
        }
    }

    pub fn is_zero(self) -> bool {
        matches!(self, Self::Days(0) | Self::WorkingDays(0) | Self::Hours(0))
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Days(n) => write!(f, "{n}d"),
            Self::WorkingDays(n) => write!(f, "{n}wd"),
            Self::Hours(n) => write!(f, "{n}h"),
        }
    }
}

impl FromStr for Span {
    type Err = SpanError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for Span {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Span {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for Span {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A whole number followed by d (calendar days), wd (working days) or h (hours).",
            "type": "string",
            "pattern": "^[0-9]+(d|wd|h)$",
            "examples": ["7d", "5wd", "48h"]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(Span::parse("7d").unwrap(), Span::Days(7));
        assert_eq!(Span::parse("5wd").unwrap(), Span::WorkingDays(5));
        assert_eq!(Span::parse("48h").unwrap(), Span::Hours(48));
        assert_eq!(Span::parse("5wd").unwrap().to_string(), "5wd");
    }

    #[test]
    fn rejects_bad_durations() {
        for bad in ["", "d", "7", "7 days", "-3d", "3.5d", "7w", "99999d"] {
            assert!(Span::parse(bad).is_err(), "{bad} should be rejected");
        }
    }
}
