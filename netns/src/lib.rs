//! Kernel primitives for netlab over netlink: network namespaces, links, addresses,
//! routes and sysctls. No policy lives here: callers decide what to change, these
//! functions only change it, and report kernel errors with the failed step.

pub mod address;
pub mod blocking;
mod error;
pub mod exec;
pub mod link;
pub mod mac;
pub mod name;
pub mod namespace;
pub mod neighbour;
pub mod nft;
pub mod packet;
pub mod process;
pub mod qdisc;
pub mod route;
pub mod socket;
pub mod sysctl;
pub mod thread;

pub use error::{errno_text, Error, Reason, Result};
pub use namespace::Netns;
pub use socket::Netlink;

/// Re-exported so callers build messages with exactly the types rtnetlink speaks.
pub use rtnetlink::packet_core;
pub use rtnetlink::packet_route;
