//! netlab's CNI plugin (spec 1.1): attaches containers to the node's leased subnet,
//! natively (no exec of other plugins).
//! `subnet_env` is the contract with the node daemon (`vxlan-agent node`), which
//! writes the subnet file this plugin reads.

pub mod subnet_env;
