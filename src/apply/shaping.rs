//! Setting and removing the root qdisc of the lab's links (`rate`, `delay`, ...).

use super::changes::ignore_missing;
use super::error::Result;
use super::Executor;
use crate::model::{IfName, Place, Shaping};
use crate::plan::{in_kernel_units, Change};

impl Executor {
    /// `tc qdisc replace dev LINK root ...`: a qdisc of the same kind is changed in place.
    pub(super) async fn set_shaping(&self, place: &Place, link: &IfName, shaping: &Shaping, made: bool) -> Result<()> {
        let index = self.index(place, link).await?;
        self.netlink(place).await?.replace_root_qdisc(index, link.as_str(), &in_kernel_units(shaping)).await?;
        if made {
            self.remember(Change::DeleteShaping { place: place.clone(), link: link.clone() });
        }
        Ok(())
    }

    /// `tc qdisc del dev LINK root`; a link without one (or gone) is done already.
    pub(super) async fn delete_shaping(&self, place: &Place, link: &IfName) -> Result<()> {
        let Ok(index) = self.index(place, link).await else { return Ok(()) };
        ignore_missing(self.netlink(place).await?.delete_root_qdisc(index, link.as_str()).await)?;
        Ok(())
    }
}
