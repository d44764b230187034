//! The per-host agent of a dynamic VXLAN overlay (part 7 of the tutorial, done
//! better): it follows a shared store of `arp/<IP>` -> MAC and `fdb/<MAC>` -> VTEP
//! entries and keeps the VXLAN device's neighbour and FDB entries in line with it,
//! ahead of traffic (proactive) or when the kernel misses (L2MISS/L3MISS).
//!
//! Pure parts: `reconcile` (what to change), `core` (the loop's decisions);
//! for the flannel-like mode, `subnet` (which subnet a node leases) and `node::plan`
//! (the routes and entries the other nodes' leases ask for).
//! Effects: `kernel` (netlink), `run` (the loop), `lock`, `status` (files).
//! The store itself is the `netlab-store` crate.

pub mod core;
mod error;
mod kernel;
mod lock;
pub mod node;
pub mod reconcile;
pub mod run;
pub mod status;
pub mod subnet;

pub use error::Error;
pub use kernel::PROTOCOL;
