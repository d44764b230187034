//! Which checks may run at the same time. Pings, TCP and UDP checks only send traffic
//! and run together, unless two of them listen on the same port of a namespace. An
//! fdb check reads what the traffic before it taught a bridge, and an overlay check
//! counts packets on devices other traffic also crosses: each of those runs alone,
//! after everything before it has ended.

use std::collections::BTreeSet;
use std::ops::Range;

use crate::model::{Check, Place};

/// The checks cut into consecutive waves: a wave's checks run together, waves one
/// after the other, in the file's order.
pub fn waves(checks: &[&Check]) -> Vec<Range<usize>> {
    let mut waves = Vec::new();
    let mut start = 0;
    let mut listening: BTreeSet<(Place, &'static str, u16)> = BTreeSet::new();
    for (i, check) in checks.iter().enumerate() {
        let alone = matches!(check, Check::Fdb { .. } | Check::Overlay { .. });
        let socket = listens(check);
        let clash = socket.as_ref().is_some_and(|s| listening.contains(s));
        if alone || clash {
            if start < i {
                waves.push(start..i);
            }
            start = i;
            listening.clear();
        }
        if alone {
            waves.push(i..i + 1);
            start = i + 1;
            continue;
        }
        listening.extend(socket);
    }
    if start < checks.len() {
        waves.push(start..checks.len());
    }
    waves
}

/// The port a check has netlab listen on, if it does.
fn listens(check: &Check) -> Option<(Place, &'static str, u16)> {
    match check {
        Check::Tcp { listen: Some((place, on)), .. } => Some((place.clone(), "tcp", on.port())),
        Check::Udp { listen: (place, on), .. } => Some((place.clone(), "udp", on.port())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Endpoint;

    fn node(name: &str) -> Place {
        name.parse().unwrap()
    }

    fn ping(from: &str) -> Check {
        Check::Ping { from: node(from), to: "10.0.0.1".parse().unwrap(), to_label: "10.0.0.1".into() }
    }

    fn tcp(on: &str, port: u16) -> Check {
        let to = format!("10.0.0.1:{port}").parse().unwrap();
        Check::Tcp { from: node("A"), to, listen: Some((node(on), to)) }
    }

    fn udp(on: &str, port: u16) -> Check {
        let to = format!("10.0.0.1:{port}").parse().unwrap();
        Check::Udp { from: node("A"), to, listen: (node(on), to) }
    }

    fn fdb() -> Check {
        let end = Endpoint { place: node("A"), name: "br0".parse().unwrap() };
        Check::Fdb { bridge: end.clone(), learned: vec![end] }
    }

    #[test]
    fn traffic_runs_together_and_fdb_waits_for_it() {
        let checks = [ping("A"), ping("B"), tcp("B", 80), udp("B", 80), fdb(), ping("C")];
        let refs: Vec<&Check> = checks.iter().collect();
        assert_eq!(waves(&refs), [0..4, 4..5, 5..6]);
    }

    #[test]
    fn two_listeners_on_one_port_of_a_namespace_never_overlap() {
        let checks = [tcp("B", 80), tcp("C", 80), ping("A"), tcp("B", 80), udp("B", 80)];
        let refs: Vec<&Check> = checks.iter().collect();
        assert_eq!(waves(&refs), [0..3, 3..5]);
    }

    #[test]
    fn nothing_to_run_is_no_wave() {
        assert!(waves(&[]).is_empty());
        let checks = [fdb(), fdb()];
        let refs: Vec<&Check> = checks.iter().collect();
        assert_eq!(waves(&refs), [0..1, 1..2]);
    }
}
