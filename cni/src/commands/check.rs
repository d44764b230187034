//! CHECK: the attachment is as ADD left it: recorded, its address still allocated to
//! it and listed in `prevResult`, the container's interface up with that address and
//! its routes, the host end on the bridge, the gateway on the bridge, and with
//! `ipMasq` the masquerade rule in place.

use super::{subnet, Error};
use crate::config::{self, NetConf};
use crate::inspect;
use crate::invocation::Attach;
use crate::kernel;
use crate::masquerade;
use crate::state::State;

pub fn check(conf: &NetConf, attach: &Attach) -> Result<(), Error> {
    let prev = conf
        .prev_result
        .as_ref()
        .ok_or_else(|| config::Error::Invalid("CHECK needs prevResult, the result of the ADD".to_string()))?;
    let fail =
        |problems: Vec<String>| Error::Check { attachment: attach.id.to_string(), problems: problems.join("; ") };
    let state = State::open(&conf.data_dir, &conf.name)?;
    let record = state.record(&attach.id)?.ok_or_else(|| fail(vec!["no allocation is recorded for it".to_string()]))?;
    let mut problems = Vec::new();
    let address = record.address.ip();
    if state.owner(address)?.as_ref() != Some(&attach.id) {
        problems.push(format!("address {address} is not allocated to it"));
    }
    let listed = prev.get("ips").and_then(|ips| ips.as_array()).is_some_and(|ips| {
        ips.iter().any(|ip| ip.get("address").and_then(|a| a.as_str()) == Some(&record.address.to_string()))
    });
    if !listed {
        problems.push(format!("prevResult does not list its address {}", record.address));
    }
    let container_ns = kernel::open_container_namespace(&attach.netns)?;
    problems.extend(inspect::problems(&record, &inspect::observe(&container_ns)?));
    if conf.ip_masq {
        let node_subnet = subnet(&record.address);
        if !masquerade::present(node_subnet, subnet(&record.cluster)).map_err(Error::Masquerade)? {
            problems.push(format!("the masquerade rule for {node_subnet} is missing"));
        }
    }
    match problems.is_empty() {
        true => Ok(()),
        false => Err(fail(problems)),
    }
}
