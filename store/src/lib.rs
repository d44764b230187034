//! The shared store where the hosts of an overlay meet: a folder (the tutorial's
//! layout, possibly shared between machines) or etcd. netlab publishes into it,
//! every vxlan-agent follows it, and the flannel-like backend keeps its leases in it.
//!
//! Layers: `key` (checked keys, bounded values) -> `backend` (the operations both
//! stores offer: get, put, create-if-absent, delete-if-unchanged, list, leases,
//! follow) -> keyspaces (`endpoints`: arp/ and fdb/; `leases`: flannel's names).
//! Anything read from a store is untrusted: the folder store never follows a
//! symlink, reads only regular files and only up to a bound; values are bounded on
//! both backends.

mod backend;
mod dir;
pub mod endpoints;
mod error;
mod etcd;
pub mod key;
pub mod leases;
mod url;

pub use backend::{follow, AnyStore, Backoff, Change, Lease, Store};
pub use dir::DirStore;
pub use error::{Error, Result};
pub use etcd::EtcdStore;
pub use key::{KeyPath, Value, MAX_VALUE};
pub use url::{StoreUrl, Tls, DEFAULT_PREFIX};
