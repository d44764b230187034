//! Devices a file names but netlab does not create (the host's own cards, such as a
//! VM's `eth1`). Validation knows only their names; the checks that need their facts
//! run here, against what the kernel has, before planning: each exists, a VTEP address
//! over one is one of its addresses, a route's gateway through one is on one of its
//! subnets, and an overlay over one fits its MTU. Pure, like the planner: the desired
//! state goes in, and comes out with what follows from those facts (the MTU of each
//! overlay over such a device, spread over its bridge as validation does for declared
//! lower devices).

use std::collections::BTreeMap;
use std::fmt;

use ipnetwork::IpNetwork;

use super::{Desired, Observed, ObservedExisting, ObservedNamespace};
use crate::model::mtu;
use crate::model::{Endpoint, IfName, LinkKind, Place, RouteSpec};

/// An existing device that does not fit what the file asks of it. The file is valid:
/// it is this host that does not match it (exit code 4: the host does not fit the file).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExistingError {
    #[error("existing device `{name}` in {place}: no such link")]
    Missing { place: Place, name: IfName },
    #[error(
        "existing device `{name}` in {place}: it is a link this lab made (apply would delete it), not an existing \
         device; destroy the lab first"
    )]
    Ours { place: Place, name: IfName },
    #[error(
        "VTEP address {local} of `{device}` is not an address of existing device `{name}` in {place} ({addresses})"
    )]
    NotItsAddress { device: Endpoint, local: std::net::IpAddr, place: Place, name: IfName, addresses: Addresses },
    #[error(
        "mtu {given} of `{device}` is larger than {carried} carries over existing device `{name}` in {place} \
         (its mtu {lower_mtu} less {overhead})"
    )]
    VxlanMtu { device: Endpoint, given: u32, carried: u32, place: Place, name: IfName, lower_mtu: u32, overhead: u32 },
    #[error(
        "existing device `{name}` in {place} has mtu {lower_mtu}: less {overhead} of encapsulation it leaves \
         {carried} for `{device}`, below the minimum {}",
        mtu::MIN
    )]
    TooSmall { device: Endpoint, carried: u32, place: Place, name: IfName, lower_mtu: u32, overhead: u32 },
    #[error(
        "mtu {mtu} of `{end}` is larger than the overlay carries ({effective} through `{device}` over existing \
         device `{name}` in {place}): packets would be lost"
    )]
    PortMtu { end: Endpoint, mtu: u32, effective: u32, device: Endpoint, place: Place, name: IfName },
    #[error(
        "gateway {via} of route `{route}` in {place} is not on any subnet of existing device `{name}` ({addresses})"
    )]
    Gateway { route: RouteSpec, via: std::net::IpAddr, place: Place, name: IfName, addresses: Addresses },
}

/// A device's addresses, as messages show them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addresses(pub Vec<IpNetwork>);

impl fmt::Display for Addresses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("it has no address");
        }
        let list: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        write!(f, "it has {}", list.join(", "))
    }
}

/// Every way the existing devices do not fit the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingErrors(pub Vec<ExistingError>);

impl fmt::Display for ExistingErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.as_slice() {
            [one] => write!(f, "{one}"),
            all => {
                f.write_str("existing devices do not fit the file:")?;
                for error in all {
                    write!(f, "\n  {error}")?;
                }
                Ok(())
            }
        }
    }
}

impl std::error::Error for ExistingErrors {}

/// Check the existing devices `desired` names against `observed`, and complete
/// `desired` with what follows from their facts.
pub fn resolve(desired: &Desired, observed: &Observed) -> Result<Desired, ExistingErrors> {
    let mut errors = Vec::new();
    let mut devices: BTreeMap<(Place, IfName), &ObservedExisting> = BTreeMap::new();
    for (place, spec) in desired {
        for name in &spec.existing {
            let facts = match observed.namespaces.get(place) {
                Some(ObservedNamespace::Owned(state)) => state.existing.get(name),
                _ => None,
            };
            let (place, name) = (place.clone(), name.clone());
            match facts {
                None => errors.push(ExistingError::Missing { place, name }),
                Some(facts) if facts.ours => errors.push(ExistingError::Ours { place, name }),
                Some(facts) => {
                    devices.insert((place, name), facts);
                }
            }
        }
    }
    let mut resolved = desired.clone();
    for (place, spec) in desired {
        for (name, link) in &spec.links {
            let LinkKind::Vxlan(vxlan) = &link.kind else { continue };
            let key = (vxlan.underlay.clone(), vxlan.dev.clone());
            let Some(lower) = devices.get(&key) else { continue };
            let (lower_place, lower_name) = key;
            let device = Endpoint { place: place.clone(), name: name.clone() };
            if !lower.addresses.iter().any(|a| a.ip() == vxlan.local) {
                errors.push(ExistingError::NotItsAddress {
                    device: device.clone(),
                    local: vxlan.local,
                    place: lower_place.clone(),
                    name: lower_name.clone(),
                    addresses: Addresses(lower.addresses.iter().copied().collect()),
                });
            }
            let carried = mtu::carried(lower.mtu, vxlan.local);
            if carried < mtu::MIN {
                errors.push(ExistingError::TooSmall {
                    device,
                    carried,
                    place: lower_place,
                    name: lower_name,
                    lower_mtu: lower.mtu,
                    overhead: mtu::overhead(vxlan.local),
                });
                continue;
            }
            let effective = match link.mtu {
                Some(given) if given > carried => {
                    errors.push(ExistingError::VxlanMtu {
                        device,
                        given,
                        carried,
                        place: lower_place,
                        name: lower_name,
                        lower_mtu: lower.mtu,
                        overhead: mtu::overhead(vxlan.local),
                    });
                    continue;
                }
                Some(given) => given,
                None => carried,
            };
            for mtu::TooLarge { end, mtu } in mtu::spread(&mut resolved, &device, effective) {
                errors.push(ExistingError::PortMtu {
                    end,
                    mtu,
                    effective,
                    device: device.clone(),
                    place: lower_place.clone(),
                    name: lower_name.clone(),
                });
            }
        }
        for route in &spec.routes {
            let (Some(dev), Some(via)) = (&route.dev, route.via) else { continue };
            let Some(device) = devices.get(&(place.clone(), dev.clone())) else { continue };
            if !device.addresses.iter().any(|net| net.contains(via) && net.ip() != via) {
                errors.push(ExistingError::Gateway {
                    route: route.clone(),
                    via,
                    place: place.clone(),
                    name: dev.clone(),
                    addresses: Addresses(device.addresses.iter().copied().collect()),
                });
            }
        }
    }
    if errors.is_empty() {
        Ok(resolved)
    } else {
        Err(ExistingErrors(errors))
    }
}
