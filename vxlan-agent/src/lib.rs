//! The per-host agent of a dynamic VXLAN overlay (part 7 of the tutorial, done
//! better): it follows a shared store of `arp/<IP>` -> MAC and `fdb/<MAC>` -> VTEP
//! entries and keeps the VXLAN device's neighbour and FDB entries in line with it,
//! ahead of traffic (proactive) or when the kernel misses (L2MISS/L3MISS).
//!
//! Pure parts: `endpoint` (the store's content), `reconcile` (what to change).
//! Effects: `store` (folder or etcd), `kernel` (netlink), `agent` (the loop).

pub mod agent;
pub mod endpoint;
mod kernel;
pub mod reconcile;
pub mod status;
pub mod store;

pub use kernel::PROTOCOL;
