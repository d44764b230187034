//! Checks of VXLAN devices across namespaces: the lower device and VTEP address in the
//! underlay, one device per VNI, port and local address there, and MTUs that fit the
//! overlay (and no less than the kernel's minimum of 68). A lower device the file
//! declares is checked here; an existing one (a host device netlab does not create)
//! only at plan time, when its facts are known.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::{name_hint, node_hint, Validator, VxlanSite, MIN_MTU};
use crate::model::mtu;
use crate::model::names::{IfName, Place};
use crate::model::topology::{Endpoint, LinkKind, NamespaceSpec};

impl Validator {
    /// Across namespaces: each VXLAN device's lower device and VTEP address exist in its
    /// underlay, no two devices share VNI, port and local address there, and nothing on
    /// its bridge (nor the far end of a veth on it) is larger than the overlay carries:
    /// the lower device's MTU less 50 bytes of IPv4 encapsulation (70 for IPv6). Where
    /// the file gives no MTU, that one is chosen.
    pub(super) fn overlays(&mut self, namespaces: &mut BTreeMap<Place, NamespaceSpec>) {
        let sites = std::mem::take(&mut self.vxlan_sites);
        let mut tunnels: BTreeMap<(Place, u32, u16, IpAddr), IfName> = BTreeMap::new();
        for site in &sites {
            let LinkKind::Vxlan(vxlan) = namespaces[&site.place].links[&site.name].kind.clone() else { continue };
            let Some(underlay) = namespaces.get(&vxlan.underlay) else {
                let hint = node_hint(vxlan.underlay.to_string().as_str(), namespaces.keys());
                self.error(&site.underlay_at, format!("unknown underlay `{}`{hint}", vxlan.underlay));
                continue;
            };
            let lower_name = vxlan.underlay.qualify(&vxlan.dev);
            // The lower device's MTU as the file sets it; `None`: an existing device.
            let lower = match underlay.links.get(&vxlan.dev) {
                Some(lower) => {
                    if !lower.addresses.iter().any(|a| a.ip() == vxlan.local) {
                        let message = format!("VTEP address {} is not an address of {lower_name}", vxlan.local);
                        self.error(&site.local_at, message);
                    }
                    Some(lower.mtu)
                }
                None if self.existing(&vxlan.underlay, &vxlan.dev) => None,
                None => {
                    let hint = name_hint(vxlan.dev.as_str(), underlay.links.keys());
                    self.error(&site.dev_at, format!("no lower device `{}` in {}{hint}", vxlan.dev, vxlan.underlay));
                    continue;
                }
            };
            let key = (vxlan.underlay.clone(), vxlan.vni, vxlan.port, vxlan.local);
            if let Some(other) = tunnels.insert(key, site.name.clone()) {
                self.error(
                    &site.at,
                    format!(
                        "vni {} on port {} from {} is already `{other}`'s in {}",
                        vxlan.vni, vxlan.port, vxlan.local, vxlan.underlay
                    ),
                );
            }
            // An existing lower device's MTU is known at plan time only.
            let Some(lower_mtu) = lower else { continue };
            let carried = mtu::carried(lower_mtu.unwrap_or(mtu::DEFAULT), vxlan.local);
            if carried < MIN_MTU {
                let overhead = mtu::overhead(vxlan.local);
                self.error(
                    &site.dev_at,
                    format!(
                        "{lower_name} (mtu {}) leaves {carried} bytes for the overlay once {overhead} bytes of \
                         encapsulation are taken: the kernel needs at least {MIN_MTU}",
                        lower_mtu.unwrap_or(mtu::DEFAULT)
                    ),
                );
                continue;
            }
            let effective = match &site.mtu {
                // Out of range: reported where the devices are declared.
                Some(given) if given.value < MIN_MTU => continue,
                Some(given) if given.value > carried => {
                    let overhead = mtu::overhead(vxlan.local);
                    self.error(
                        &given.referenced,
                        format!(
                            "mtu {} is larger than {carried} carries over {lower_name} (its mtu less {overhead})",
                            given.value
                        ),
                    );
                    continue;
                }
                Some(given) => given.value,
                None => carried,
            };
            let device = Endpoint { place: site.place.clone(), name: site.name.clone() };
            for too_large in mtu::spread(namespaces, &device, effective) {
                self.too_large(site, &too_large, effective);
            }
        }
    }

    fn too_large(&mut self, site: &VxlanSite, too_large: &mtu::TooLarge, effective: u32) {
        let mtu::TooLarge { end, mtu } = too_large;
        let at = self.declared.get(&(end.place.clone(), end.name.clone())).copied().unwrap_or(site.at);
        self.error(
            &at,
            format!(
                "mtu {mtu} of `{end}` is larger than the overlay carries ({effective} through `{}`): packets would be lost",
                site.place.qualify(&site.name)
            ),
        );
    }
}
