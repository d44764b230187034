//! Where a place of the model is in the kernel. The model only names places; the
//! edges (observe, apply, checks, the firewall's runners) enter them.

use crate::model::Place;

pub trait KernelPlace {
    /// The network namespace to enter: the host's own, or the node's under /run/netns.
    fn to_netns(&self) -> netns::Netns;
}

impl KernelPlace for Place {
    fn to_netns(&self) -> netns::Netns {
        match self {
            Place::Host => netns::Netns::Host,
            Place::Node(node) => netns::Netns::Named(node.as_str().to_string()),
        }
    }
}
