//! DEL: the veth goes (found by the record, or by its derived name when there is
//! none), then the allocation and the record. Idempotent: a second DEL, a namespace
//! that is gone, no `prevResult`, no subnet file: all succeed.

use super::Error;
use crate::config::NetConf;
use crate::invocation::Detach;
use crate::kernel;
use crate::state::{self, State};

pub fn del(conf: &NetConf, detach: &Detach) -> Result<(), Error> {
    let id = &detach.id;
    let state = State::open(&conf.data_dir, &conf.name)?;
    let record = match state.record(id) {
        Ok(record) => record,
        // Unreadable: the derived name and a scan of the allocations stand in for it.
        Err(state::Error::Corrupt { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let host_veth = record.as_ref().map_or_else(|| id.host_veth(), |r| r.host_veth.clone());
    kernel::run_host(|host| async move { kernel::remove_veth(&host, &host_veth).await })?;
    let lock = state.lock()?;
    match &record {
        Some(record) => {
            state.release(&lock, record.address.ip(), id)?;
        }
        None => {
            for (address, owner) in state.allocations()? {
                if owner.as_ref() == Some(id) {
                    state.release(&lock, address, id)?;
                }
            }
        }
    }
    state.forget(&lock, id)?;
    Ok(())
}
