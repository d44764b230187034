//! Status of each object of a lab, derived from the plan that would repair it: an
//! object no change touches is as the file says.

use serde::Serialize;

use crate::model::{Endpoint, Place, Shaping};
use crate::plan::{Change, Desired, Plan};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ObjectStatus {
    pub object: String,
    pub state: State,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Ok,
    Missing,
    Differs,
    /// Made by the lab but no longer in the file (or no longer right): apply removes it.
    Unexpected,
}

pub fn status(desired: &Desired, plan: &Plan) -> Vec<ObjectStatus> {
    let mut report = Vec::new();
    let changes = &plan.changes;
    for (place, spec) in desired {
        let namespace_missing = match place {
            Place::Node(node) => {
                let missing =
                    changes.iter().any(|c| matches!(c, Change::CreateNamespace { namespace } if namespace == node));
                report.push(entry(format!("namespace {node}"), if missing { State::Missing } else { State::Ok }, None));
                missing
            }
            Place::Host => false,
        };
        for (name, link) in &spec.links {
            let here = Endpoint { place: place.clone(), name: name.clone() };
            let created = namespace_missing
                || changes.iter().any(|c| match c {
                    Change::CreateBridge { place: p, name: n, .. } | Change::CreateVxlan { place: p, name: n, .. } => {
                        *p == here.place && *n == here.name
                    }
                    Change::CreateVeth { a, b } => [a, b].iter().any(|e| e.place == here.place && e.name == here.name),
                    _ => false,
                });
            // Deleted and made again: it is there, with settings only a new link can have.
            let remade = created
                && changes.iter().any(|c| matches!(c, Change::DeleteLink { place: p, name: n, .. } if *p == here.place && *n == here.name));
            let updated = changes.iter().find_map(|c| match c {
                Change::SetLink { place: p, name: n, update } if *p == here.place && *n == here.name => {
                    Some(update.to_string())
                }
                _ => None,
            });
            let object = format!("{} {here}", link.kind.name());
            let (state, detail) = match (created, updated) {
                (_, Some(update)) => (State::Differs, Some(format!("needs{update}"))),
                (true, None) if remade => (State::Differs, Some("to be made again".to_string())),
                (true, None) => (State::Missing, None),
                (false, None) => (State::Ok, None),
            };
            report.push(entry(object, state, detail));
            if let Some(shaping) = &link.shaping {
                report.push(shaping_status(&here, shaping, changes));
            }
            for address in &link.addresses {
                let missing = changes.iter().any(|c| matches!(c, Change::AddAddress { place: p, link: l, address: a } if *p == here.place && l == name && a == address));
                report.push(entry(
                    format!("address {address} on {here}"),
                    if missing { State::Missing } else { State::Ok },
                    None,
                ));
            }
        }
        // Checked when the plan was made (it fails otherwise), and never changed.
        for name in &spec.existing {
            report.push(entry(format!("existing device {name} in {place}"), State::Ok, None));
        }
        for route in &spec.routes {
            let missing = changes
                .iter()
                .any(|c| matches!(c, Change::AddRoute { place: p, route: r } if p == place && r == route));
            report.push(entry(
                format!("route {route} in {place}"),
                if missing { State::Missing } else { State::Ok },
                None,
            ));
        }
        for wanted in &spec.neighbours {
            let set = changes.iter().find_map(|c| match c {
                Change::SetNeighbour { place: p, entry: e, creates } if p == place && e == wanted => Some(*creates),
                _ => None,
            });
            let object = format!("neighbour {} lladdr {} on {}", wanted.ip, wanted.mac, place.qualify(&wanted.dev));
            report.push(entry(object, set_state(set), None));
        }
        for wanted in &spec.fdb {
            let set = changes.iter().find_map(|c| match c {
                Change::SetFdb { place: p, entry: e, creates } if p == place && e == wanted => Some(*creates),
                _ => None,
            });
            let object = format!("fdb {} dst {} on {}", wanted.mac, wanted.dst, place.qualify(&wanted.dev));
            report.push(entry(object, set_state(set), None));
        }
        if !spec.nat.is_empty() {
            let set = changes.iter().find_map(|c| match c {
                Change::SetNatTable { place: p, creates, .. } if p == place => Some(*creates),
                _ => None,
            });
            report.push(entry(format!("nat table in {place}"), set_state(set), None));
        }
        for change in changes {
            if let Change::AddForwardAccept { place: p, accept } = change {
                if p == place {
                    report.push(entry(format!("iptables FORWARD rule in {place}: {accept}"), State::Missing, None));
                }
            }
        }
        for (key, value) in &spec.sysctls {
            let found = changes.iter().find_map(|c| match c {
                Change::SetSysctl { place: p, key: k, previous, .. } if p == place && k == key => {
                    Some(previous.clone())
                }
                _ => None,
            });
            let object = format!("sysctl {key}={value} in {place}");
            report.push(match found {
                None => entry(object, State::Ok, None),
                Some(Some(now)) => entry(object, State::Differs, Some(format!("is {now}"))),
                Some(None) => entry(object, State::Missing, None),
            });
        }
    }
    for agent in crate::plan::agents::desired_agents(desired) {
        let key = agent.key();
        let state = changes.iter().find_map(|c| match c {
            Change::StartAgent { agent: a } if a.key() == key => Some(State::Missing),
            Change::RestartAgent { agent: a, .. } if a.key() == key => Some(State::Differs),
            _ => None,
        });
        report.push(entry(format!("agent of {key}"), state.unwrap_or(State::Ok), None));
    }
    for change in changes {
        let unexpected = matches!(
            change,
            Change::StopAgent { .. }
                | Change::DeleteNamespace { .. }
                | Change::DeleteLink { .. }
                | Change::DeleteAddress { .. }
                | Change::DeleteRoute { .. }
                | Change::DeleteShaping { .. }
        );
        // A link the file wants, deleted only to be made again, is reported above.
        let wanted = matches!(change, Change::DeleteLink { place, name, .. }
            if desired.get(place).is_some_and(|spec| spec.links.contains_key(name)));
        if unexpected && !wanted {
            report.push(entry(change.object(), State::Unexpected, None));
        }
    }
    report
}

/// A link's shaping: missing when the plan makes its qdisc, differs when it changes it.
fn shaping_status(here: &Endpoint, shaping: &Shaping, changes: &[Change]) -> ObjectStatus {
    let set = changes.iter().find_map(|c| match c {
        Change::SetShaping { place, link, now, .. } if *place == here.place && *link == here.name => Some(now),
        _ => None,
    });
    let object = format!("shaping on {here}: {shaping}");
    match set {
        None => entry(object, State::Ok, None),
        Some(None) => entry(object, State::Missing, None),
        Some(Some(now)) => entry(object, State::Differs, Some(format!("is {now}"))),
    }
}

/// A static entry is missing (or has another MAC or destination) when the plan sets it.
/// What a replacing change says of its object: none, in sync; one that creates it,
/// missing; one that replaces it, different.
fn set_state(set: Option<bool>) -> State {
    match set {
        None => State::Ok,
        Some(true) => State::Missing,
        Some(false) => State::Differs,
    }
}

fn entry(object: String, state: State, detail: Option<String>) -> ObjectStatus {
    ObjectStatus { object, state, detail }
}
