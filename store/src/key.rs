//! Keys and values as every backend stores them: a key is a path of one or two
//! segments below the store's root (`config`, `arp/11.11.11.3`,
//! `subnets/10.244.5.0-24`), a value is a short text. Both are checked once, here,
//! so a backend never builds a path or a request from something unchecked.

use std::fmt;
use std::time::SystemTime;

use crate::error::{Error, Result};

/// The longest value a store holds: a MAC, an address, a lease's JSON all fit many
/// times over; anything longer is refused rather than read without bound.
pub const MAX_VALUE: usize = 4096;

/// The longest segment of a key: a file name on every file system (255 bytes) less
/// what the folder store adds for its temporary names (`.NAME.<16 hex>.tmp`).
const MAX_SEGMENT: usize = 232;

/// A key below the store's root: one segment (`config`) or a folder and a name
/// (`arp/11.11.11.3`). Segments are non-empty, do not start with `.` (hidden names
/// are the folder store's temporary files), and hold no `/`, NUL, whitespace or
/// control characters.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyPath(String);

impl KeyPath {
    pub fn new(text: &str) -> Result<KeyPath> {
        let segments: Vec<&str> = text.split('/').collect();
        if segments.len() > 2 {
            return Err(invalid(text, "a key is NAME or FOLDER/NAME"));
        }
        for segment in &segments {
            check_segment(text, segment)?;
        }
        Ok(KeyPath(text.to_string()))
    }

    /// `folder/name`, both checked.
    pub fn join(folder: &str, name: &str) -> Result<KeyPath> {
        let text = format!("{folder}/{name}");
        check_segment(&text, folder)?;
        check_segment(&text, name)?;
        Ok(KeyPath(text))
    }

    /// The folder of a two-segment key.
    pub fn folder(&self) -> Option<&str> {
        self.0.split_once('/').map(|(folder, _)| folder)
    }

    /// The last segment.
    pub fn name(&self) -> &str {
        self.0.rsplit_once('/').map_or(&self.0, |(_, name)| name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `name` could be a segment of a key (the folder store skips other files).
pub fn is_segment(name: &str) -> bool {
    check_segment(name, name).is_ok()
}

fn check_segment(key: &str, segment: &str) -> Result<()> {
    if segment.is_empty() {
        return Err(invalid(key, "a key has no empty segment"));
    }
    if segment.starts_with('.') {
        return Err(invalid(key, "a key segment cannot start with `.`"));
    }
    if segment.len() > MAX_SEGMENT {
        return Err(invalid(key, "a key segment is at most 232 bytes"));
    }
    if segment.chars().any(|c| c.is_whitespace() || c.is_control() || c == '/') {
        return Err(invalid(key, "a key holds no whitespace, control characters or `/` in a segment"));
    }
    Ok(())
}

fn invalid(key: &str, why: &str) -> Error {
    Error::Invalid { key: key.escape_debug().to_string(), why: why.to_string() }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A value as stored: UTF-8 text of at most `MAX_VALUE` bytes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Value(String);

impl Value {
    pub fn new(key: &KeyPath, text: impl Into<String>) -> Result<Value> {
        let text = text.into();
        if text.len() > MAX_VALUE {
            return Err(too_large(key.as_str(), text.as_bytes()));
        }
        Ok(Value(text))
    }

    /// A value read from a store: bytes, checked for length and encoding.
    pub fn from_bytes(key: &str, bytes: &[u8]) -> Result<Value> {
        if bytes.len() > MAX_VALUE {
            return Err(too_large(key, bytes));
        }
        match std::str::from_utf8(bytes) {
            Ok(text) => Ok(Value(text.to_string())),
            Err(_) => Err(invalid(key, "the value is not UTF-8 text")),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Without the whitespace `echo` leaves around it.
    pub fn trimmed(&self) -> &str {
        self.0.trim()
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn too_large(key: &str, bytes: &[u8]) -> Error {
    let start: String = String::from_utf8_lossy(&bytes[..bytes.len().min(32)]).escape_debug().collect();
    Error::TooLarge { key: key.to_string(), size: bytes.len(), limit: MAX_VALUE, start }
}

/// A value with the time it stops counting, for values bound to a time-to-live.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    pub value: Value,
    /// `None`: kept until deleted.
    pub expires: Option<SystemTime>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_one_or_two_plain_segments() {
        for good in ["config", "arp/11.11.11.3", "fdb/02:42:c0:a8:00:03", "subnets/10.244.5.0-24", "arp/fd00::3"] {
            assert_eq!(KeyPath::new(good).unwrap().to_string(), good);
        }
        for bad in ["", "/arp", "arp/", "a/b/c", "arp/.tmp", "../x", "arp/..", "arp/a b", "arp/a\nb", "arp/\u{0}"] {
            assert!(KeyPath::new(bad).is_err(), "{bad:?}");
        }
        assert!(KeyPath::new(&"x".repeat(233)).is_err());
        assert!(KeyPath::new(&"x".repeat(232)).is_ok());
        let key = KeyPath::join("subnets", "10.244.5.0-24").unwrap();
        assert_eq!((key.folder(), key.name()), (Some("subnets"), "10.244.5.0-24"));
        assert!(KeyPath::join("arp", "..").is_err());
    }

    #[test]
    fn values_are_bounded_utf8() {
        let key = KeyPath::new("arp/1.2.3.4").unwrap();
        assert!(Value::new(&key, "x".repeat(MAX_VALUE)).is_ok());
        let error = Value::new(&key, "y".repeat(MAX_VALUE + 1)).unwrap_err();
        assert!(matches!(error, Error::TooLarge { .. }), "{error}");
        assert!(error.to_string().contains("over the limit of 4096"), "{error}");
        assert!(matches!(Value::from_bytes("k", &[0xff, 0xfe]), Err(Error::Invalid { .. })));
        assert_eq!(Value::from_bytes("k", b" 02:42:c0:a8:00:03\n").unwrap().trimmed(), "02:42:c0:a8:00:03");
    }
}
