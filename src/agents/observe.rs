//! The vxlan-agents running where a lab's agents run: every `vxlan-agent run` process
//! whose network namespace is one of the lab's places (a node's namespace, or the
//! host's). A namespace is told by its inode, not its name: another sandbox, or
//! another machine's view of /run/netns, has an `ov1` of its own.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;

use super::process::{all_pids, command_line, net_namespace, runs_program, start_time};
use super::PROGRAM;
use crate::kernel_place::KernelPlace;
use crate::model::{IfName, Place};
use crate::plan::agents::{AgentKey, ObservedAgent};

/// The agents running in `places` (those whose namespace exists).
pub fn observe<'a>(places: impl IntoIterator<Item = &'a Place>) -> Vec<ObservedAgent> {
    let mut by_inode: HashMap<u64, Place> = HashMap::new();
    for place in places {
        let inode = match place {
            Place::Host => net_namespace(None),
            Place::Node(_) => std::fs::metadata(place.to_netns().path()).ok().map(|m| m.ino()),
        };
        if let Some(inode) = inode {
            by_inode.insert(inode, place.clone());
        }
    }
    let mut agents = Vec::new();
    for pid in all_pids() {
        let Some(words) = command_line(pid) else { continue };
        if !runs_program(&words, PROGRAM) || !matches!(words.get(1).map(String::as_str), Some("run" | "node")) {
            continue;
        }
        let Some(underlay) = net_namespace(Some(pid)).and_then(|inode| by_inode.get(&inode)) else { continue };
        let Some(key) = served(&words[1..], underlay) else { continue };
        let Some(started) = start_time(pid) else { continue };
        agents.push(ObservedAgent { key, underlay: underlay.clone(), args: words[1..].to_vec(), pid, started });
    }
    agents.sort_by_key(|a| (a.key.clone(), a.pid));
    agents
}

/// The device an agent serves, from its arguments: `--netns` (default: the namespace
/// it runs in) and `--device`; a node daemon (`node`) serves the namespace it runs in.
fn served(args: &[String], underlay: &Place) -> Option<AgentKey> {
    if args.first().map(String::as_str) == Some("node") {
        return Some(AgentKey { place: underlay.clone(), device: None });
    }
    let value = |option: &str| {
        args.iter().enumerate().find_map(|(i, word)| {
            word.strip_prefix(&format!("{option}="))
                .map(str::to_string)
                .or_else(|| (word == option).then(|| args.get(i + 1).cloned()).flatten())
        })
    };
    let device: IfName = value("--device")?.parse().ok()?;
    let place = match value("--netns") {
        Some(netns) => Place::Node(netns.parse().ok()?),
        None => underlay.clone(),
    };
    Some(AgentKey { place, device: Some(device) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        text.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn the_device_served_is_read_from_the_arguments() {
        let host1: Place = "host1".parse().unwrap();
        let key = served(&words("run --netns ov1 --device vxlan1 --store dir:/x"), &host1).unwrap();
        assert_eq!(key.to_string(), "ov1:vxlan1");
        let key = served(&words("run --device=vxlan1"), &host1).unwrap();
        assert_eq!(key.to_string(), "host1:vxlan1");
        assert_eq!(served(&words("run --netns ov1"), &host1), None);
        assert_eq!(served(&words("run --netns ../x --device vxlan1"), &host1), None);
        assert_eq!(
            served(&words("node --store dir:/x --public-ip 10.0.0.1"), &host1).unwrap().to_string(),
            "host1 (node daemon)"
        );
    }
}
