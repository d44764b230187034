//! Which namespace a veth's peer, or a VXLAN device's lower device, is in. The kernel
//! names it by an id local to the namespace asking (IFLA_LINK_NETNSID) and the other
//! end by its index there; indexes repeat across namespaces (every node's first veth
//! is 2), so matching indexes alone is ambiguous: the ids are asked of the kernel for
//! the namespaces that could hold the other end.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use netns::link::LinkState;

use super::{Kernel, Seen};
use crate::model::Place;

/// For each namespace read, the other namespaces whose id it must give: those holding
/// a link whose index is one a link here points at in another namespace.
pub fn nsids_to_ask(seen: &BTreeMap<Place, Seen>) -> BTreeMap<Place, BTreeSet<Place>> {
    let read: Vec<(&Place, &[LinkState])> = seen
        .iter()
        .filter_map(|(place, seen)| match seen {
            Seen::Read(dump) => Some((place, dump.links.as_slice())),
            _ => None,
        })
        .collect();
    // Index -> the namespaces having a link of that index: one pass, not one per link
    // (a thousand veths in the host each point at index 2 of a node).
    let mut holders: HashMap<u32, Vec<&Place>> = HashMap::new();
    for (place, links) in &read {
        for link in links.iter() {
            holders.entry(link.index).or_default().push(place);
        }
    }
    let mut asks: BTreeMap<Place, BTreeSet<Place>> = BTreeMap::new();
    for (place, links) in &read {
        let targets: BTreeSet<u32> =
            links.iter().filter(|l| l.link_netnsid.is_some()).filter_map(other_end_index).collect();
        for target in targets {
            for other in holders.get(&target).into_iter().flatten().filter(|other| **other != *place) {
                asks.entry((*place).clone()).or_default().insert((*other).clone());
            }
        }
    }
    asks
}

/// The index of the link at the other end: a veth's peer, a VXLAN device's lower
/// device.
fn other_end_index(link: &LinkState) -> Option<u32> {
    match link.kind.as_deref() {
        Some("vxlan") => link.vxlan.as_ref().and_then(|v| v.lower).or(link.peer_index),
        Some("veth") => link.peer_index,
        _ => None,
    }
}

/// The namespace and link at the other end of `link` (in `place`), when it is in one
/// of the namespaces read.
pub fn other_end<'k>(kernel: &'k Kernel, place: &Place, link: &LinkState) -> Option<(&'k Place, &'k LinkState)> {
    let index = other_end_index(link)?;
    let (there, seen) = match link.link_netnsid {
        None => kernel.seen.get_key_value(place)?,
        Some(id) => {
            let there = kernel.nsids.get(place)?.get(&id)?;
            kernel.seen.get_key_value(there)?
        }
    };
    let Seen::Read(dump) = seen else { return None };
    dump.links.iter().find(|l| l.index == index).map(|l| (there, l))
}
