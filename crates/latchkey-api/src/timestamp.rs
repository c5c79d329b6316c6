//! Timestamps on the wire: RFC 3339 in any offset and precision on input; UTC with `Z` at
//! second precision on output (`2026-01-01T00:00:00Z`).

use serde::{Deserialize, Deserializer, Serializer};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

const EXPECTED: &str = "an RFC 3339 timestamp such as 2026-01-01T00:00:00Z";

/// Normalises to UTC at second precision.
pub fn normalise(t: OffsetDateTime) -> OffsetDateTime {
    let t = t.to_offset(UtcOffset::UTC);
    t.replace_nanosecond(0).unwrap_or(t)
}

/// Parses any RFC 3339 timestamp and normalises it.
pub fn parse(text: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).ok().map(normalise)
}

/// Writes `t` as UTC with `Z` at second precision.
pub fn format(t: OffsetDateTime) -> String {
    normalise(t)
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

/// `#[serde(with = "timestamp")]` for a required timestamp.
pub fn serialize<S: Serializer>(t: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(*t))
}

/// `#[serde(with = "timestamp")]` for a required timestamp.
pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
    let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
    parse(&text).ok_or_else(|| serde::de::Error::custom(format!("expected {EXPECTED}")))
}

/// `#[serde(with = "timestamp::option")]` for an optional timestamp (`null` is `None`).
pub mod option {
    use super::*;

    /// Writes `Some(t)` as a timestamp and `None` as `null`.
    pub fn serialize<S: Serializer>(t: &Option<OffsetDateTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::serialize(t, s),
            None => s.serialize_none(),
        }
    }

    /// Reads a timestamp or `null`.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<OffsetDateTime>, D::Error> {
        match Option::<std::borrow::Cow<'de, str>>::deserialize(d)? {
            None => Ok(None),
            Some(text) => parse(&text)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("expected {EXPECTED}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_any_offset_and_precision_and_writes_utc_seconds() {
        for (input, output) in [
            ("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"),
            ("2026-01-01T02:00:00.999+02:00", "2026-01-01T00:00:00Z"),
            ("2025-12-31T19:30:00-04:30", "2026-01-01T00:00:00Z"),
            ("2026-01-01t00:00:00.123456789z", "2026-01-01T00:00:00Z"),
        ] {
            assert_eq!(format(parse(input).expect(input)), output, "{input}");
        }
        for bad in [
            "",
            "2026-01-01",
            "2026-01-01 00:00:00",
            "yesterday",
            "2026-13-01T00:00:00Z",
        ] {
            assert!(parse(bad).is_none(), "{bad}");
        }
    }
}
