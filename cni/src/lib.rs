//! netlab's CNI plugin (spec 1.1): attaches containers to the node's leased subnet,
//! natively (no exec of other plugins).
//!
//! The pure core, unit-tested without root: `invocation` (the CNI_* environment),
//! `config` (the network config on stdin), `version`, `names`, `allocate` (which
//! address), `record` (what ADD did), `result` (ADD's output per version), the
//! comparison half of `inspect` and the rule of `masquerade`. The effects at the edge:
//! `state` (the allocator's files under `dataDir`), `kernel` (netlink), the reading
//! half of `inspect`, and `commands`, one file per verb.
//! `subnet_env` is the contract with the node daemon (`vxlan-agent node`), which
//! writes the subnet file this plugin reads.

pub mod allocate;
pub mod commands;
pub mod config;
pub mod error;
pub mod inspect;
pub mod invocation;
pub mod kernel;
pub mod masquerade;
pub mod names;
pub mod record;
pub mod result;
pub mod state;
pub mod subnet_env;
pub mod version;

use std::ffi::OsString;
use std::io::Read;

use serde_json::Value;

pub use error::Error;
use invocation::Request;

/// One invocation, from its environment and standard input to what goes on standard
/// output and the exit code.
pub fn invoke(env: impl Fn(&str) -> Option<OsString>, mut stdin: impl Read) -> (Option<Value>, i32) {
    let request = match Request::from_env(env) {
        Ok(request) => request,
        Err(error) => return (Some(Error::from(error).to_json(None)), 1),
    };
    let mut input = Vec::new();
    // VERSION takes no config (runtimes probe it with whatever they have).
    if request != Request::Version {
        if let Err(error) = stdin.read_to_end(&mut input) {
            return (Some(Error::Stdin(error).to_json(None)), 1);
        }
    }
    match commands::run(&request, &input) {
        Ok(output) => (output, 0),
        Err(error) => (Some(error.to_json(config::version_of(&input))), 1),
    }
}
