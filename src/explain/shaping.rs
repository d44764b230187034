//! `tc qdisc replace|del dev LINK root ...`: the commands of link shaping. The values
//! are written in units tc reads back to exactly what apply sends (a rate in whole
//! bits, the burst in bytes), so the kernel ends with the same qdisc either way.

use super::{tool, Command};
use crate::model::{IfName, Place, Shaping};

pub(super) fn replace(place: &Place, link: &IfName, shaping: &Shaping) -> Command {
    let mut words = tool("tc", place);
    words.extend(["qdisc", "replace", "dev", link.as_str(), "root"].map(String::from));
    match shaping {
        Shaping::Tbf(tbf) => {
            words.extend(["tbf".into(), "rate".into(), tbf.rate.to_string()]);
            words.extend(["burst".into(), tbf.burst.bytes().to_string(), "latency".into(), tbf.latency.to_string()]);
        }
        Shaping::Netem(netem) => {
            words.extend(["netem".into(), "delay".into(), netem.delay.to_string()]);
            if netem.jitter.micros() > 0 {
                words.push(netem.jitter.to_string());
            }
            if netem.loss.millionths() > 0 {
                words.extend(["loss".into(), netem.loss.to_string()]);
            }
            if let Some(rate) = netem.rate {
                words.extend(["rate".into(), rate.to_string()]);
            }
        }
    }
    Command::new(words)
}

pub(super) fn delete(place: &Place, link: &IfName) -> Command {
    let mut words = tool("tc", place);
    words.extend(["qdisc", "del", "dev", link.as_str(), "root"].map(String::from));
    Command::new(words)
}
