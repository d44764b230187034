//! MAC addresses as written in files and stores ("02:42:c0:a8:00:02").

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A unicast Ethernet address: the kernel refuses a multicast one on a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Mac([u8; 6]);

impl Mac {
    pub fn octets(&self) -> [u8; 6] {
        self.0
    }

    pub fn from_octets(octets: [u8; 6]) -> Self {
        Mac(octets)
    }
}

impl FromStr for Mac {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let invalid = || format!("invalid MAC address `{s}`: expected six hex pairs such as 02:42:c0:a8:00:02");
        let mut octets = [0u8; 6];
        let mut parts = s.split(':');
        for octet in &mut octets {
            let part = parts.next().ok_or_else(invalid)?;
            if part.len() != 2 {
                return Err(invalid());
            }
            *octet = u8::from_str_radix(part, 16).map_err(|_| invalid())?;
        }
        if parts.next().is_some() {
            return Err(invalid());
        }
        if octets[0] & 1 == 1 {
            return Err(format!("MAC address `{s}` is multicast; a link needs a unicast address"));
        }
        if octets == [0; 6] {
            return Err(format!("MAC address `{s}` is all zeros"));
        }
        Ok(Mac(octets))
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl Serialize for Mac {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Mac {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::Mac;

    #[test]
    fn parses_and_prints_lowercase() {
        let mac: Mac = "02:42:C0:A8:00:02".parse().unwrap();
        assert_eq!(mac.to_string(), "02:42:c0:a8:00:02");
    }

    #[test]
    fn refuses_malformed_and_multicast() {
        for bad in
            ["02:42:c0:a8:00", "02:42:c0:a8:00:02:03", "zz:42:c0:a8:00:02", "01:00:5e:00:00:01", "2:42:c0:a8:00:02"]
        {
            assert!(bad.parse::<Mac>().is_err(), "{bad}");
        }
    }
}
