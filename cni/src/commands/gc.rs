//! GC: every allocation and record of an attachment not in the runtime's list
//! (`cni.dev/valid-attachments`, or `cni.dev/attachments`; none given: none is valid)
//! is released, and its veth deleted. It keeps going past failures and reports them
//! all at the end.

use std::collections::BTreeSet;

use super::Error;
use crate::config::NetConf;
use crate::kernel;
use crate::names::AttachmentId;
use crate::state::State;

pub fn gc(conf: &NetConf) -> Result<(), Error> {
    let valid: BTreeSet<(&str, &str)> =
        conf.valid_attachments.iter().flatten().map(|a| (a.container_id.as_str(), a.ifname.as_str())).collect();
    let is_valid = |id: &AttachmentId| valid.contains(&(id.container.as_str(), id.ifname.as_str()));
    let state = State::open(&conf.data_dir, &conf.name)?;
    let mut stale_veths = Vec::new();
    {
        let lock = state.lock()?;
        for id in state.recorded()?.into_iter().filter(|id| !is_valid(id)) {
            match state.record(&id) {
                Ok(Some(record)) => {
                    state.release(&lock, record.address.ip(), &id)?;
                    stale_veths.push(record.host_veth);
                }
                Ok(None) => {}
                Err(_) => stale_veths.push(id.host_veth()),
            }
            state.forget(&lock, &id)?;
        }
        for (address, owner) in state.allocations()? {
            match owner {
                Some(id) if is_valid(&id) => {}
                Some(id) => {
                    state.release(&lock, address, &id)?;
                }
                None => state.release_any(&lock, address)?,
            }
        }
    }
    if stale_veths.is_empty() {
        return Ok(());
    }
    let failures = kernel::run_host(|host| async move {
        let mut failures = Vec::new();
        for veth in &stale_veths {
            if let Err(e) = kernel::remove_veth(&host, veth).await {
                failures.push(e.to_string());
            }
        }
        Ok(failures)
    })?;
    match failures.is_empty() {
        true => Ok(()),
        false => Err(netns::Error::other("gc: delete stale veths", failures.join("; ")).into()),
    }
}
