//! Timestamps: UTC, millisecond precision, rendered as RFC 3339 (`2025-01-17T10:35:42.123Z`).

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A point in time, truncated to the millisecond so what is stored is exactly what is rendered.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    #[cfg(feature = "ssr")]
    pub fn now() -> Self {
        Self::from_millis(Utc::now().timestamp_millis())
    }

    pub fn from_millis(ms: i64) -> Self {
        Self(
            Utc.timestamp_millis_opt(ms)
                .single()
                .unwrap_or(DateTime::<Utc>::UNIX_EPOCH),
        )
    }

    pub fn millis(&self) -> i64 {
        self.0.timestamp_millis()
    }

    pub fn datetime(&self) -> DateTime<Utc> {
        self.0
    }

    pub fn parse(s: &str) -> Option<Self> {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| Self::from_millis(t.with_timezone(&Utc).timestamp_millis()))
    }
}

impl fmt::Display for Timestamp {
    /// `YYYY-MM-DDTHH:MM:SS.mmmZ`, written digit by digit: timestamps are rendered several times
    /// per callback (SQLite stores them as text), and chrono's general formatter showed in its
    /// profile. Years outside 0..=9999 go through chrono, as before.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use chrono::{Datelike, Timelike};
        let t = self.0;
        let ms = t.timestamp_subsec_millis();
        let Ok(year) = u32::try_from(t.year()) else {
            return f.write_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true));
        };
        if year > 9999 || ms > 999 {
            return f.write_str(&t.to_rfc3339_opts(SecondsFormat::Millis, true));
        }
        let mut buf = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, mut n: u32| {
            for i in (at..at + width).rev() {
                buf[i] = b'0' + (n % 10) as u8;
                n /= 10;
            }
        };
        put(0, 4, year);
        put(5, 2, t.month());
        put(8, 2, t.day());
        put(11, 2, t.hour());
        put(14, 2, t.minute());
        put(17, 2, t.second());
        put(20, 3, ms);
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).ok_or_else(|| serde::de::Error::custom("not an RFC 3339 timestamp"))
    }
}

/// In the OpenAPI document: an RFC 3339 UTC date-time with milliseconds.
#[cfg(feature = "ssr")]
impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::DateTime,
            )))
            .examples(["2025-01-17T10:35:42.123Z"])
            .into()
    }
}

#[cfg(feature = "ssr")]
impl utoipa::ToSchema for Timestamp {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_with_milliseconds_and_z() {
        let t = Timestamp::parse("2025-01-17T10:35:42.123456+00:00").unwrap();
        assert_eq!(t.to_string(), "2025-01-17T10:35:42.123Z");
        let t = Timestamp::parse("2025-01-17T12:35:42+02:00").unwrap();
        assert_eq!(t.to_string(), "2025-01-17T10:35:42.000Z");
    }

    #[test]
    fn rejects_non_rfc3339() {
        assert!(Timestamp::parse("2025-01-17").is_none());
        assert!(Timestamp::parse("yesterday").is_none());
    }
}

#[cfg(test)]
mod display_tests {
    use super::Timestamp;
    use chrono::SecondsFormat;

    #[test]
    fn rendered_as_chrono_renders_rfc_3339_to_the_millisecond() {
        // Every ~37 hours (and an odd millisecond) from 1970 to 2100, and the edges.
        let mut ms: i64 = 0;
        let mut checked = 0;
        while ms < 4_102_444_800_000 {
            let t = Timestamp::from_millis(ms);
            assert_eq!(
                t.to_string(),
                t.datetime().to_rfc3339_opts(SecondsFormat::Millis, true)
            );
            ms += 133_337_777;
            checked += 1;
        }
        assert!(checked > 30_000);
        for ms in [0, 999, 1_000, 253_402_300_799_999, -1, -62_135_596_800_000] {
            let t = Timestamp::from_millis(ms);
            assert_eq!(
                t.to_string(),
                t.datetime().to_rfc3339_opts(SecondsFormat::Millis, true),
                "{ms}"
            );
        }
        assert_eq!(
            Timestamp::parse("2025-01-17T10:35:42.123Z")
                .unwrap()
                .to_string(),
            "2025-01-17T10:35:42.123Z"
        );
    }
}
