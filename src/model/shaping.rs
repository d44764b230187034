//! Link shaping of one interface: a rate limit (tbf) or an impairment (netem), as
//! value types parsed from tc's own units, so that what the file says is what `tc`
//! would understand.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The root qdisc a lab puts on one of its interfaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "qdisc")]
pub enum Shaping {
    /// `rate` alone (with `burst`, `latency`): a token bucket.
    Tbf(TokenBucket),
    /// `delay`, `jitter`, `loss` (and a `rate`, which netem applies itself).
    Netem(Netem),
}

impl fmt::Display for Shaping {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shaping::Tbf(tbf) => write!(f, "tbf {tbf}"),
            Shaping::Netem(netem) => write!(f, "netem {netem}"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenBucket {
    pub rate: Rate,
    pub burst: Size,
    /// How long a packet may wait in the queue: sets the queue's length in bytes.
    pub latency: Micros,
}

impl TokenBucket {
    /// The queue's length in bytes, as `tc ... tbf latency` computes it: what the rate
    /// sends in `latency`, plus the burst (same floating-point sum, so that a script's
    /// `tc` and netlab give the kernel the same number).
    pub fn limit(&self) -> u64 {
        let bytes = self.rate.bytes_per_second() as f64 * f64::from(self.latency.0) / 1_000_000.0;
        (bytes + f64::from(self.burst.0)) as u64
    }
}

impl fmt::Display for TokenBucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rate {} burst {} latency {}", self.rate, self.burst, self.latency)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Netem {
    pub delay: Micros,
    pub jitter: Micros,
    pub loss: Percent,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<Rate>,
}

impl fmt::Display for Netem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "delay {}", self.delay)?;
        if self.jitter.0 > 0 {
            write!(f, " {}", self.jitter)?;
        }
        if self.loss.0 > 0 {
            write!(f, " loss {}", self.loss)?;
        }
        if let Some(rate) = self.rate {
            write!(f, " rate {rate}")?;
        }
        Ok(())
    }
}

/// A number with a unit, split: "10mbit" -> (10.0, "mbit").
fn split_unit(text: &str) -> Option<(f64, &str)> {
    let text = text.trim();
    let cut = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(cut);
    let value: f64 = number.parse().ok()?;
    value.is_finite().then_some((value, unit.trim()))
}

/// Bits per second, at least 8 (a byte a second: the kernel counts bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Rate(u64);

/// tc's rate units (tc(8), "RATES"); tc compares them without regard to case, so
/// `mbps` is megabytes a second, as there.
const RATE_UNITS: &[(&str, f64)] = &[
    ("bit", 1.0),
    ("kibit", 1024.0),
    ("kbit", 1e3),
    ("mibit", 1048576.0),
    ("mbit", 1e6),
    ("gibit", 1073741824.0),
    ("gbit", 1e9),
    ("tibit", 1099511627776.0),
    ("tbit", 1e12),
    ("bps", 8.0),
    ("kibps", 8.0 * 1024.0),
    ("kbps", 8e3),
    ("mibps", 8.0 * 1048576.0),
    ("mbps", 8e6),
    ("gibps", 8.0 * 1073741824.0),
    ("gbps", 8e9),
    ("tibps", 8.0 * 1099511627776.0),
    ("tbps", 8e12),
];

impl Rate {
    pub fn bits_per_second(self) -> u64 {
        self.0
    }

    pub fn bytes_per_second(self) -> u64 {
        self.0 / 8
    }

    pub fn from_bits(bits: u64) -> Option<Rate> {
        (bits >= 8).then_some(Rate(bits))
    }
}

impl FromStr for Rate {
    type Err = String;
    fn from_str(text: &str) -> Result<Rate, String> {
        let malformed =
            || format!("malformed rate `{text}`: write a number and a unit of tc's, such as 10mbit, 500kbit or 1gbit");
        let (value, unit) = split_unit(text).ok_or_else(malformed)?;
        if unit.is_empty() {
            return Err(format!("rate `{text}` needs a unit, such as {text}mbit or {text}kbit"));
        }
        let scale = RATE_UNITS.iter().find(|(name, _)| name.eq_ignore_ascii_case(unit)).ok_or_else(malformed)?.1;
        let bits = (value * scale).round();
        if !(8.0..=u64::MAX as f64 / 2.0).contains(&bits) {
            return Err(format!("rate `{text}` is out of range: at least 8bit (a byte a second)"));
        }
        Ok(Rate(bits as u64))
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The largest unit that writes it whole: what tc reads back to the same value.
        for (unit, scale) in
            [("tbit", 1_000_000_000_000u64), ("gbit", 1_000_000_000), ("mbit", 1_000_000), ("kbit", 1_000)]
        {
            if self.0.is_multiple_of(scale) {
                return write!(f, "{}{unit}", self.0 / scale);
            }
        }
        write!(f, "{}bit", self.0)
    }
}

/// A size in bytes (a burst), at least 1 and at most what the kernel's u32 holds; in
/// JSON a number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct Size(pub(crate) u32);

impl TryFrom<u32> for Size {
    type Error = String;
    fn try_from(bytes: u32) -> Result<Size, String> {
        Size::from_bytes(bytes).ok_or_else(|| "a size is at least 1 byte".to_string())
    }
}

impl From<Size> for u32 {
    fn from(size: Size) -> u32 {
        size.0
    }
}

/// tc's size units (tc(8), "SIZES"): powers of 1024; a bare number is bytes.
const SIZE_UNITS: &[(&str, f64)] = &[
    ("", 1.0),
    ("b", 1.0),
    ("k", 1024.0),
    ("kb", 1024.0),
    ("m", 1048576.0),
    ("mb", 1048576.0),
    ("g", 1073741824.0),
    ("gb", 1073741824.0),
    ("kbit", 128.0),
    ("mbit", 131072.0),
    ("gbit", 134217728.0),
];

impl Size {
    pub fn bytes(self) -> u32 {
        self.0
    }

    pub fn from_bytes(bytes: u32) -> Option<Size> {
        (bytes > 0).then_some(Size(bytes))
    }
}

impl FromStr for Size {
    type Err = String;
    fn from_str(text: &str) -> Result<Size, String> {
        let malformed =
            || format!("malformed size `{text}`: write bytes, or a number and a unit of tc's, such as 32kb");
        let (value, unit) = split_unit(text).ok_or_else(malformed)?;
        let scale = SIZE_UNITS.iter().find(|(name, _)| name.eq_ignore_ascii_case(unit)).ok_or_else(malformed)?.1;
        let bytes = (value * scale).round();
        if !(1.0..=f64::from(u32::MAX)).contains(&bytes) {
            return Err(format!("size `{text}` is out of range 1 byte..=4gb"));
        }
        Ok(Size(bytes as u32))
    }
}

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}b", self.0)
    }
}

/// A duration in microseconds, tc's unit of time; in JSON as written (`"50ms"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Micros(pub(crate) u32);

/// tc's time units (tc(8), "TIMES"). A bare number would be microseconds there; netlab
/// asks for the unit, since `delay: 50` reads as milliseconds to most.
const TIME_UNITS: &[(&str, f64)] = &[
    ("s", 1e6),
    ("sec", 1e6),
    ("secs", 1e6),
    ("ms", 1e3),
    ("msec", 1e3),
    ("msecs", 1e3),
    ("us", 1.0),
    ("usec", 1.0),
    ("usecs", 1.0),
];

/// The longest time accepted: a minute, far beyond any queue or delay worth emulating.
const MAX_MICROS: f64 = 60e6;

impl Micros {
    pub fn micros(self) -> u32 {
        self.0
    }

    /// For what the kernel reports: capped at u32::MAX microseconds.
    pub fn from_micros(micros: u64) -> Micros {
        Micros(u32::try_from(micros).unwrap_or(u32::MAX))
    }
}

impl FromStr for Micros {
    type Err = String;
    fn from_str(text: &str) -> Result<Micros, String> {
        let malformed = || format!("malformed time `{text}`: write a number and a unit, such as 50ms or 200us");
        let (value, unit) = split_unit(text).ok_or_else(malformed)?;
        if unit.is_empty() {
            return Err(format!("time `{text}` needs a unit, such as {text}ms"));
        }
        let scale = TIME_UNITS.iter().find(|(name, _)| name.eq_ignore_ascii_case(unit)).ok_or_else(malformed)?.1;
        let micros = (value * scale).round();
        if micros > MAX_MICROS {
            return Err(format!("time `{text}` is out of range: at most 60s"));
        }
        Ok(Micros(micros as u32))
    }
}

impl fmt::Display for Micros {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_multiple_of(1000) {
            write!(f, "{}ms", self.0 / 1000)
        } else {
            write!(f, "{}us", self.0)
        }
    }
}

/// A share of packets, in millionths (0..=100%); in JSON as written (`"1%"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Percent(pub(crate) u32);

impl Percent {
    pub const MILLION: u32 = 1_000_000;

    pub fn millionths(self) -> u32 {
        self.0
    }
}

impl FromStr for Percent {
    type Err = String;
    fn from_str(text: &str) -> Result<Percent, String> {
        let malformed = || format!("malformed percentage `{text}`: write it as tc does, such as 1% or 0.5%");
        let (value, unit) = split_unit(text).ok_or_else(malformed)?;
        if unit != "%" {
            return Err(malformed());
        }
        if !(0.0..=100.0).contains(&value) {
            return Err(format!("percentage `{text}` is outside 0-100%"));
        }
        Ok(Percent((value * 10_000.0).round() as u32))
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / 10_000;
        let part = self.0 % 10_000;
        if part == 0 {
            write!(f, "{whole}%")
        } else {
            let decimals = format!("{part:04}");
            write!(f, "{whole}.{}%", decimals.trim_end_matches('0'))
        }
    }
}

/// Parsed from and written as text, as the file has them.
macro_rules! as_text {
    ($($type:ty),*) => {$(
        impl TryFrom<String> for $type {
            type Error = String;
            fn try_from(text: String) -> Result<$type, String> {
                text.parse()
            }
        }

        impl From<$type> for String {
            fn from(value: $type) -> String {
                value.to_string()
            }
        }
    )*};
}

as_text!(Rate, Micros, Percent);

/// What a kernel offers that a file may need: known to the caller (probed at the edge,
/// see `netns::qdisc::netem_available`), so validation itself reads nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KernelFeatures {
    /// The netem qdisc (sch_netem), built in or as a module.
    pub netem: bool,
}

impl KernelFeatures {
    /// Everything present: for callers that validate a file without a kernel to run it on.
    pub const ALL: KernelFeatures = KernelFeatures { netem: true };
}

impl Default for KernelFeatures {
    fn default() -> Self {
        KernelFeatures::ALL
    }
}

/// The default burst for a rate: what the rate sends in 4 ms (one timer tick at
/// HZ=250, Debian's; tc-tbf(8): the burst must be at least rate/HZ), plus 1600 bytes
/// (tc's default MTU for its burst computations), so that a full packet always fits.
pub fn default_burst(rate: Rate) -> Size {
    let bytes = rate.bytes_per_second() / 250 + 1600;
    Size(u32::try_from(bytes).unwrap_or(u32::MAX))
}

/// tbf's default queue latency.
pub const DEFAULT_LATENCY: Micros = Micros(50_000);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_in_tc_units() {
        assert_eq!("10mbit".parse::<Rate>().unwrap().bits_per_second(), 10_000_000);
        assert_eq!("500kbit".parse::<Rate>().unwrap().bytes_per_second(), 62_500);
        assert_eq!("1gbit".parse::<Rate>().unwrap().to_string(), "1gbit");
        assert_eq!("1.5Mbit".parse::<Rate>().unwrap().to_string(), "1500kbit");
        assert_eq!("2MBps".parse::<Rate>().unwrap().bits_per_second(), 16_000_000, "tc: mbps is megabytes");
        assert_eq!("1kibit".parse::<Rate>().unwrap().to_string(), "1024bit");
        assert!("10".parse::<Rate>().unwrap_err().contains("needs a unit"));
        assert!("10mbits".parse::<Rate>().unwrap_err().starts_with("malformed rate `10mbits`"));
        assert!("fast".parse::<Rate>().is_err());
        assert!("0bit".parse::<Rate>().unwrap_err().contains("out of range"));
    }

    #[test]
    fn sizes_times_and_percentages() {
        assert_eq!("32kb".parse::<Size>().unwrap().bytes(), 32 * 1024);
        assert_eq!("1600".parse::<Size>().unwrap().bytes(), 1600);
        assert_eq!("1mbit".parse::<Size>().unwrap().bytes(), 131_072);
        assert!("0".parse::<Size>().is_err());
        assert!("5gb".parse::<Size>().is_err());
        assert_eq!("50ms".parse::<Micros>().unwrap().micros(), 50_000);
        assert_eq!("1.5s".parse::<Micros>().unwrap().to_string(), "1500ms");
        assert_eq!("250us".parse::<Micros>().unwrap().to_string(), "250us");
        assert!("50".parse::<Micros>().unwrap_err().contains("needs a unit"));
        assert!("2min".parse::<Micros>().is_err());
        assert_eq!("0.5%".parse::<Percent>().unwrap().to_string(), "0.5%");
        assert_eq!("100%".parse::<Percent>().unwrap().millionths(), Percent::MILLION);
        assert!("101%".parse::<Percent>().unwrap_err().contains("outside 0-100%"));
        assert!("5".parse::<Percent>().is_err());
    }

    #[test]
    fn json_as_written() {
        let shaping = Shaping::Netem(Netem {
            delay: "20ms".parse().unwrap(),
            jitter: "250us".parse().unwrap(),
            loss: "0.5%".parse().unwrap(),
            rate: Some("1mbit".parse().unwrap()),
        });
        let json = serde_json::to_string(&shaping).unwrap();
        assert_eq!(json, r#"{"qdisc":"netem","delay":"20ms","jitter":"250us","loss":"0.5%","rate":"1mbit"}"#);
        assert_eq!(serde_json::from_str::<Shaping>(&json).unwrap(), shaping);
    }

    #[test]
    fn limit_and_default_burst_as_tc_computes_them() {
        let rate: Rate = "10mbit".parse().unwrap();
        let burst = default_burst(rate);
        assert_eq!(burst.bytes(), 1_250_000 / 250 + 1600);
        let tbf = TokenBucket { rate, burst, latency: DEFAULT_LATENCY };
        // 1,250,000 B/s for 50 ms, plus the burst.
        assert_eq!(tbf.limit(), 62_500 + 6600);
    }
}
