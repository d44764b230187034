//! Devices netlab does not create. In the host, a name the file uses where a device is
//! expected (a VXLAN device's lower device, a route's `dev`) without declaring it names
//! one of the host's own devices, such as a VM's `eth1`: it is accepted and recorded
//! as existing, and what needs its facts (its addresses, its MTU) is checked at plan
//! time (`plan::existing`). In the namespaces netlab creates everything is netlab's:
//! there an undeclared name stays an error.

use super::Validator;
use crate::model::names::{IfName, Place};

/// Said after an error about a host interface that is declared but linked nowhere.
pub(super) const HINT: &str = "; to use a host device netlab does not create, name it without declaring it";

impl Validator {
    /// Whether `name`, which `place` does not declare, is accepted as an existing device
    /// (it is then recorded as one).
    pub(super) fn existing(&mut self, place: &Place, name: &IfName) -> bool {
        if *place != Place::Host {
            return false;
        }
        self.existing.insert(name.clone());
        true
    }
}
