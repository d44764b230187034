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
