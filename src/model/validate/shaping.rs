//! `rate`, `burst`, `latency`, `delay`, `jitter` and `loss` of an interface: one root
//! qdisc, tbf for a rate alone, netem as soon as an impairment is asked for.

use std::str::FromStr;

use serde_saphyr::Location;

use super::Validator;
use crate::model::names::IfName;
use crate::model::raw::{Located, RawInterface, Scalar};
use crate::model::shaping::{default_burst, Micros, Netem, Percent, Rate, Shaping, Size, TokenBucket, DEFAULT_LATENCY};

/// What the error says where the kernel lacks netem.
pub(super) fn netem_missing(field: &str) -> String {
    format!("{field} needs the kernel's netem qdisc (sch_netem), which this kernel does not have")
}

/// tbf keeps its bucket as a time in the kernel's ticks of 64 ns, in a u32 (about 274 s).
const MAX_BUCKET_NANOS: u128 = (u32::MAX as u128) * 64;

/// Bytes of an Ethernet header, on top of the MTU in a frame tbf counts.
const ETHERNET_HEADER: u64 = 14;

impl Validator {
    fn shaping_value<T: FromStr<Err = String>>(&mut self, value: &Option<Located<Scalar>>) -> Option<T> {
        let value = value.as_ref()?;
        match value.value.0.parse() {
            Ok(parsed) => Some(parsed),
            Err(message) => {
                self.error(&value.referenced, message);
                None
            }
        }
    }

    pub(super) fn shaping(&mut self, raw: &RawInterface) -> Option<Shaping> {
        let rate: Option<Rate> = self.shaping_value(&raw.rate);
        let burst: Option<Size> = self.shaping_value(&raw.burst);
        let latency: Option<Micros> = self.shaping_value(&raw.latency);
        let delay: Option<Micros> = self.shaping_value(&raw.delay);
        let jitter: Option<Micros> = self.shaping_value(&raw.jitter);
        let loss: Option<Percent> = self.shaping_value(&raw.loss);
        for (field, value) in [("burst", &raw.burst), ("latency", &raw.latency)] {
            if let (Some(value), None) = (value, &raw.rate) {
                self.error(&value.referenced, format!("`{field}` shapes a rate: it needs `rate` on the interface too"));
            }
        }
        if let (Some(value), None) = (&raw.jitter, &raw.delay) {
            self.error(&value.referenced, "`jitter` varies a delay: it needs `delay` on the interface too");
        }
        if let (Some(delay), Some(jitter)) = (delay, jitter) {
            if jitter > delay {
                let at = raw.jitter.as_ref().map(|j| j.referenced).unwrap_or(Location::UNKNOWN);
                self.error(
                    &at,
                    format!("jitter {jitter} is larger than the delay {delay}: packets would be sent before they left"),
                );
            }
        }
        let impaired = [("delay", &raw.delay), ("jitter", &raw.jitter), ("loss", &raw.loss)];
        if !self.features.netem {
            for (field, value) in impaired {
                if let Some(value) = value {
                    self.error(&value.referenced, netem_missing(&format!("`{field}`")));
                }
            }
        }
        if impaired.iter().any(|(_, value)| value.is_some()) {
            if raw.burst.is_some() || raw.latency.is_some() {
                let at = raw.burst.as_ref().or(raw.latency.as_ref()).map(|v| v.referenced).unwrap_or(Location::UNKNOWN);
                self.error(
                    &at,
                    "with `delay` or `loss`, netem applies the rate itself: `burst` and `latency` are tbf's",
                );
            }
            return Some(Shaping::Netem(Netem {
                delay: delay.unwrap_or(Micros(0)),
                jitter: jitter.unwrap_or(Micros(0)),
                loss: loss.unwrap_or(Percent(0)),
                rate,
            }));
        }
        let rate = rate?;
        let burst = burst.unwrap_or_else(|| default_burst(rate));
        let tbf = TokenBucket { rate, burst, latency: latency.unwrap_or(DEFAULT_LATENCY) };
        let at = raw.burst.as_ref().or(raw.rate.as_ref()).map(|v| v.referenced).unwrap_or(Location::UNKNOWN);
        let bucket_nanos = u128::from(burst.bytes()) * 1_000_000_000 / u128::from(rate.bytes_per_second().max(1));
        if bucket_nanos > MAX_BUCKET_NANOS {
            self.error(&at, format!("burst {burst} takes more than the 274 s tbf can hold to send at rate {rate}"));
        }
        // tbf drops a frame larger than its bucket: every full-size packet would be lost.
        let frame = u64::from(raw.mtu.as_ref().map_or(1500, |mtu| mtu.value)) + ETHERNET_HEADER;
        if u64::from(burst.bytes()) < frame {
            self.error(
                &at,
                format!("burst {burst} is smaller than one full frame ({frame} bytes: the MTU and the Ethernet header), which tbf would never send"),
            );
        }
        if tbf.limit() > u64::from(u32::MAX) {
            let at = raw.latency.as_ref().or(raw.rate.as_ref()).map(|v| v.referenced).unwrap_or(Location::UNKNOWN);
            self.error(&at, format!("rate {rate} for latency {} makes a queue larger than tbf's 4 GiB", tbf.latency));
        }
        Some(Shaping::Tbf(tbf))
    }

    /// Shaping is for the lab's veth ends: a bridge's or `lo`'s qdisc is not one to set.
    pub(super) fn shaping_only_on_veths(&mut self, name: &IfName, raw: &RawInterface) {
        let fields = [&raw.rate, &raw.burst, &raw.latency, &raw.delay, &raw.jitter, &raw.loss];
        if let Some(value) = fields.into_iter().flatten().next() {
            self.error(&value.referenced, format!("shaping applies to veth ends (those of `links:`), not to `{name}`"));
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::model::shaping::{KernelFeatures, Shaping};
    use crate::model::{parse_for, IfName, Place};

    const LAB: &str = "name: t
nodes:
  A:
    interfaces:
      eth0: {FIELDS}
  B:
    interfaces:
      eth0: {}
links:
  - endpoints: [A:eth0, B:eth0]
";

    fn lab(fields: &str) -> String {
        LAB.replace("{FIELDS}", fields)
    }

    /// Each error as "line:column: message".
    fn errors(fields: &str, features: KernelFeatures) -> Vec<String> {
        match parse_for("t.yaml", &lab(fields), features) {
            Ok(_) => Vec::new(),
            Err(diagnostics) => {
                diagnostics.items.iter().map(|d| format!("{}:{}: {}", d.line, d.column, d.message)).collect()
            }
        }
    }

    fn shaping(fields: &str) -> Option<Shaping> {
        let topology = parse_for("t.yaml", &lab(fields), KernelFeatures::ALL).expect("valid");
        let node = Place::Node("A".parse().unwrap());
        topology.namespaces[&node].links[&"eth0".parse::<IfName>().unwrap()].shaping
    }

    #[test]
    fn a_rate_alone_is_a_token_bucket_with_tc_defaults() {
        let Some(Shaping::Tbf(tbf)) = shaping("{rate: 10mbit}") else { panic!("tbf") };
        assert_eq!(
            (tbf.rate.to_string(), tbf.burst.bytes(), tbf.latency.to_string()),
            ("10mbit".into(), 6600, "50ms".into())
        );
        let Some(Shaping::Tbf(tbf)) = shaping("{rate: 1gbit, burst: 32kb, latency: 10ms}") else { panic!("tbf") };
        assert_eq!((tbf.burst.bytes(), tbf.latency.micros()), (32768, 10_000));
        assert_eq!(shaping("{}"), None);
        let Some(Shaping::Netem(netem)) = shaping("{delay: 20ms, jitter: 5ms, loss: 1%, rate: 1mbit}") else {
            panic!("netem")
        };
        assert_eq!(netem.to_string(), "delay 20ms 5ms loss 1% rate 1mbit");
    }

    #[test]
    fn a_burst_smaller_than_a_frame_is_refused() {
        let all = KernelFeatures::ALL;
        let refused = errors("{rate: 10mbit, burst: 1kb}", all);
        assert_eq!(refused.len(), 1, "{refused:?}");
        assert!(refused[0].contains("burst 1024b is smaller than one full frame (1514 bytes"), "{refused:?}");
        assert!(errors("{rate: 10mbit, burst: 1514b}", all).is_empty());
        assert!(errors("{rate: 10mbit, burst: 1kb, mtu: 1000}", all).is_empty());
    }

    #[test]
    fn errors_are_located_at_the_value() {
        let all = KernelFeatures::ALL;
        assert_eq!(
            errors("{rate: 10mbits}", all),
            ["5:20: malformed rate `10mbits`: write a number and a unit of tc's, such as 10mbit, 500kbit or 1gbit"]
        );
        assert_eq!(errors("{rate: 10}", all), ["5:20: rate `10` needs a unit, such as 10mbit or 10kbit"]);
        assert_eq!(errors("{burst: 32kb}", all), ["5:21: `burst` shapes a rate: it needs `rate` on the interface too"]);
        assert_eq!(
            errors("{jitter: 5ms}", all),
            ["5:22: `jitter` varies a delay: it needs `delay` on the interface too"]
        );
        assert_eq!(errors("{delay: 5ms, loss: 120%}", all), ["5:32: percentage `120%` is outside 0-100%"]);
        assert_eq!(
            errors("{rate: 1kbit, burst: 1gb}", all),
            ["5:34: burst 1073741824b takes more than the 274 s tbf can hold to send at rate 1kbit"]
        );
        assert_eq!(
            errors("{delay: 5ms, latency: 10ms}", all)[0],
            "5:35: `latency` shapes a rate: it needs `rate` on the interface too"
        );
    }

    #[test]
    fn netem_fields_name_the_missing_kernel_feature() {
        let without = KernelFeatures { netem: false };
        assert_eq!(
            errors("{rate: 10mbit, delay: 20ms, loss: 1%}", without),
            [
                "5:35: `delay` needs the kernel's netem qdisc (sch_netem), which this kernel does not have",
                "5:47: `loss` needs the kernel's netem qdisc (sch_netem), which this kernel does not have",
            ]
        );
        assert!(errors("{rate: 10mbit}", without).is_empty(), "tbf needs no netem");
        assert!(errors("{delay: 20ms, loss: 1%}", KernelFeatures::ALL).is_empty());
    }

    #[test]
    fn shaping_is_for_veth_ends() {
        let text = "name: t\nhost:\n  bridges:\n    br0: {rate: 10mbit}\n";
        let message = parse_for("t.yaml", text, KernelFeatures::ALL).unwrap_err().items[0].message.clone();
        assert_eq!(message, "shaping applies to veth ends (those of `links:`), not to `br0`");
    }
}
