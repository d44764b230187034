//! STATUS: whether ADD can be served now: a usable subnet file and a free address
//! (code 50 otherwise).

use super::{read_subnet_file, Error};
use crate::allocate;
use crate::config::NetConf;
use crate::state::State;

pub fn status(conf: &NetConf) -> Result<(), Error> {
    let env = read_subnet_file(conf).map_err(|e| Error::NotAvailable(e.to_string()))?;
    let state = State::open(&conf.data_dir, &conf.name).map_err(|e| Error::NotAvailable(e.to_string()))?;
    let allocated = state.allocated().map_err(|e| Error::NotAvailable(e.to_string()))?;
    let used = allocated.iter().filter(|address| allocate::assignable(&env.subnet, **address)).count();
    let capacity = allocate::capacity(&env.subnet);
    if used as u64 >= u64::from(capacity) {
        return Err(Error::NotAvailable(format!("no free address in {}: all {capacity} are allocated", env.subnet)));
    }
    Ok(())
}
