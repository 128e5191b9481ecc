//! MongoDB-compatible ObjectIds, used as the id of every record on both stores.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// A 12-byte ObjectId: 4 bytes of seconds since the epoch, 5 bytes unique to the process, 3 bytes of
/// counter. Rendered as 24 lowercase hex digits, which is how the spec's JSON shows every `_id`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId([u8; 12]);

/// Why a string is not an ObjectId.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a 24-character hex ObjectId")]
pub struct InvalidObjectId;

impl ObjectId {
    pub const fn from_bytes(bytes: [u8; 12]) -> Self {
        Self(bytes)
    }

    pub const fn bytes(&self) -> [u8; 12] {
        self.0
    }

    /// Seconds since the Unix epoch at which the id was made.
    pub fn timestamp_secs(&self) -> u32 {
        u32::from_be_bytes([self.0[0], self.0[1], self.0[2], self.0[3]])
    }

    /// A new id: unique within the process (counter) and across processes (random 5 bytes).
    // No `Default`: an id that is different every time is not a default value.
    #[cfg(feature = "ssr")]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        use rand::Rng;
        use std::sync::atomic::{AtomicU32, Ordering};
        use std::sync::OnceLock;
        static PROCESS: OnceLock<[u8; 5]> = OnceLock::new();
        static COUNTER: OnceLock<AtomicU32> = OnceLock::new();
        let process = PROCESS.get_or_init(|| rand::thread_rng().gen());
        let counter = COUNTER
            .get_or_init(|| AtomicU32::new(rand::thread_rng().gen_range(0..0x00ff_ffff)))
            .fetch_add(1, Ordering::Relaxed)
            & 0x00ff_ffff;
        let secs = chrono::Utc::now().timestamp().clamp(0, u32::MAX as i64) as u32;
        let mut b = [0u8; 12];
        b[..4].copy_from_slice(&secs.to_be_bytes());
        b[4..9].copy_from_slice(process);
        b[9..].copy_from_slice(&counter.to_be_bytes()[1..]);
        Self(b)
    }
}

impl FromStr for ObjectId {
    type Err = InvalidObjectId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.as_bytes();
        if s.len() != 24 {
            return Err(InvalidObjectId);
        }
        let mut out = [0u8; 12];
        for (i, pair) in s.chunks_exact(2).enumerate() {
            let hi = hex_value(pair[0]).ok_or(InvalidObjectId)?;
            let lo = hex_value(pair[1]).ok_or(InvalidObjectId)?;
            out[i] = (hi << 4) | lo;
        }
        Ok(Self(out))
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Writes the lowercase hex of `bytes` into `out` (two digits a byte; `out` is twice as long).
fn hex_into(bytes: &[u8], out: &mut [u8]) {
    for (b, pair) in bytes.iter().zip(out.chunks_exact_mut(2)) {
        pair[0] = HEX_DIGITS[usize::from(b >> 4)];
        pair[1] = HEX_DIGITS[usize::from(b & 0xf)];
    }
}

/// Lowercase hex of bytes (ids, digests), written straight into one buffer: ids are rendered on
/// every callback, and the formatting machinery per byte showed in its profile.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = vec![0u8; bytes.len() * 2];
    hex_into(bytes, &mut out);
    String::from_utf8(out).unwrap_or_default()
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; 24];
        hex_into(&self.0, &mut buf);
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({self})")
    }
}

impl Serialize for ObjectId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ObjectId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// In the OpenAPI document: a string of 24 lowercase hex digits.
#[cfg(feature = "ssr")]
impl utoipa::PartialSchema for ObjectId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some("^[0-9a-f]{24}$"))
            .description(Some("A MongoDB ObjectId: 24 hex digits"))
            .examples(["65abc123def4567890120000"])
            .into()
    }
}

#[cfg(feature = "ssr")]
impl utoipa::ToSchema for ObjectId {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_renders_24_hex() {
        let id: ObjectId = "507f1f77bcf86cd799439011".parse().unwrap();
        assert_eq!(id.to_string(), "507f1f77bcf86cd799439011");
        let upper: ObjectId = "507F1F77BCF86CD799439011".parse().unwrap();
        assert_eq!(upper, id, "hex is case-insensitive on the way in");
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            "65abc123def456789012", // the spec's own 20-character example
            "507f1f77bcf86cd79943901",
            "507f1f77bcf86cd7994390111",
            "507f1f77bcf86cd79943901g",
            "zzzzzzzzzzzzzzzzzzzzzzzz",
            " 507f1f77bcf86cd79943901",
            "507f1f77-bcf8-6cd7-9943-9011",
        ] {
            assert_eq!(bad.parse::<ObjectId>(), Err(InvalidObjectId), "{bad:?}");
        }
    }

    #[cfg(feature = "ssr")]
    #[test]
    fn new_ids_are_unique_and_carry_the_time() {
        let a = ObjectId::new();
        let b = ObjectId::new();
        assert_ne!(a, b);
        let now = chrono::Utc::now().timestamp() as u32;
        assert!(now.abs_diff(a.timestamp_secs()) <= 2);
        assert_eq!(a.to_string().parse::<ObjectId>().unwrap(), a);
    }
}

#[cfg(test)]
mod hex_tests {
    use super::{hex, ObjectId};

    #[test]
    fn hex_is_lowercase_two_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
        assert_eq!(hex(&[]), "");
        let id: ObjectId = "507f1f77bcf86cd799439011".parse().unwrap();
        assert_eq!(id.to_string(), "507f1f77bcf86cd799439011");
        assert_eq!(format!("{id}"), "507f1f77bcf86cd799439011");
    }
}
