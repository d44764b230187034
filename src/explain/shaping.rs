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

#[cfg(test)]
mod tests {
    use super::*;

    fn words(command: &Command) -> String {
        command.to_string()
    }

    #[test]
    fn tc_commands_in_the_host_and_in_a_node() {
        let lab = |fields: &str| {
            let text = format!(
                "name: t\nhost:\n  interfaces:\n    h0: {{{fields}}}\nnodes:\n  A:\n    interfaces:\n      eth0: {{}}\n\
                 links:\n  - endpoints: [A:eth0, h0]\n"
            );
            let topology = crate::model::parse("t.yaml", &text).expect("valid");
            topology.namespaces[&Place::Host].links[&"h0".parse::<IfName>().unwrap()].shaping.expect("shaped")
        };
        let h0: IfName = "h0".parse().unwrap();
        assert_eq!(
            words(&replace(&Place::Host, &h0, &lab("rate: 1500kbit"))),
            "tc qdisc replace dev h0 root tbf rate 1500kbit burst 2350 latency 50ms"
        );
        let netem = lab("delay: 20ms, jitter: 500us, loss: 0.5%, rate: 1gbit");
        assert_eq!(
            words(&replace(&Place::Node("A".parse().unwrap()), &h0, &netem)),
            "tc -n A qdisc replace dev h0 root netem delay 20ms 500us loss 0.5% rate 1gbit"
        );
        assert_eq!(words(&delete(&Place::Host, &h0)), "tc qdisc del dev h0 root");
    }
}
