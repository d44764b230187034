//! ADD's result in the version the config asked for: the bridge, the host end and the
//! container end (with `sandbox`), the address with its gateway, the routes. 0.3.x and
//! 0.4.0 name each address's family (`"version": "4"`); 1.1.0 adds each interface's
//! MTU. A `prevResult` is kept: ours is appended to it.

use std::net::Ipv4Addr;

use ipnetwork::Ipv4Network;
use netns::mac::Mac;
use serde_json::{json, Map, Value};

use crate::version::Version;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub mac: Option<[u8; 6]>,
    pub mtu: u32,
    /// The namespace path, for the container's end.
    pub sandbox: Option<String>,
}

/// What ADD made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attached {
    pub bridge: Interface,
    pub host: Interface,
    pub container: Interface,
    pub address: Ipv4Network,
    pub gateway: Ipv4Addr,
    /// Destinations routed via the gateway.
    pub routes: Vec<Ipv4Network>,
}

pub fn render(version: Version, attached: &Attached, prev: Option<&Value>) -> Value {
    let list = |key: &str| prev.and_then(|p| p.get(key)).and_then(Value::as_array).cloned().unwrap_or_default();
    let mut interfaces = list("interfaces");
    let first = interfaces.len();
    for interface in [&attached.bridge, &attached.host, &attached.container] {
        interfaces.push(render_interface(version, interface));
    }
    let mut address = Map::new();
    if version.ips_carry_family() {
        address.insert("version".into(), json!("4"));
    }
    address.insert("address".into(), json!(attached.address.to_string()));
    address.insert("gateway".into(), json!(attached.gateway.to_string()));
    // The container's end: the third interface we added.
    address.insert("interface".into(), json!(first + 2));
    let mut ips = list("ips");
    ips.push(Value::Object(address));
    let mut routes = list("routes");
    routes
        .extend(attached.routes.iter().map(|dst| json!({"dst": dst.to_string(), "gw": attached.gateway.to_string()})));
    let dns = prev.and_then(|p| p.get("dns")).cloned().unwrap_or_else(|| json!({}));
    json!({
        "cniVersion": version.as_str(),
        "interfaces": interfaces,
        "ips": ips,
        "routes": routes,
        "dns": dns,
    })
}

fn render_interface(version: Version, interface: &Interface) -> Value {
    let mut object = Map::new();
    object.insert("name".into(), json!(interface.name));
    if let Some(mac) = interface.mac {
        object.insert("mac".into(), json!(Mac::from_octets(mac).to_string()));
    }
    if version.interfaces_carry_mtu() {
        object.insert("mtu".into(), json!(interface.mtu));
    }
    if let Some(sandbox) = &interface.sandbox {
        object.insert("sandbox".into(), json!(sandbox));
    }
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attached() -> Attached {
        let interface = |name: &str, sandbox: Option<&str>| Interface {
            name: name.into(),
            mac: Some([2, 0, 0, 0, 0, 1]),
            mtu: 1450,
            sandbox: sandbox.map(str::to_string),
        };
        Attached {
            bridge: interface("cni0", None),
            host: interface("veth0123456789a", None),
            container: interface("eth0", Some("/run/netns/c1")),
            address: "10.244.1.2/24".parse().unwrap(),
            gateway: "10.244.1.1".parse().unwrap(),
            routes: vec!["10.244.0.0/16".parse().unwrap(), "0.0.0.0/0".parse().unwrap()],
        }
    }

    #[test]
    fn version_1_1_0_has_mtus_and_no_families() {
        let result = render(Version::V1_1_0, &attached(), None);
        assert_eq!(
            result,
            json!({
                "cniVersion": "1.1.0",
                "interfaces": [
                    {"name": "cni0", "mac": "02:00:00:00:00:01", "mtu": 1450},
                    {"name": "veth0123456789a", "mac": "02:00:00:00:00:01", "mtu": 1450},
                    {"name": "eth0", "mac": "02:00:00:00:00:01", "mtu": 1450, "sandbox": "/run/netns/c1"},
                ],
                "ips": [{"address": "10.244.1.2/24", "gateway": "10.244.1.1", "interface": 2}],
                "routes": [{"dst": "10.244.0.0/16", "gw": "10.244.1.1"}, {"dst": "0.0.0.0/0", "gw": "10.244.1.1"}],
                "dns": {},
            })
        );
        assert!(render(Version::V1_0_0, &attached(), None)["interfaces"][0].get("mtu").is_none());
    }

    #[test]
    fn old_versions_name_the_family() {
        for version in [Version::V0_3_1, Version::V0_4_0] {
            let result = render(version, &attached(), None);
            assert_eq!(result["cniVersion"], version.as_str());
            assert_eq!(result["ips"][0]["version"], "4");
            assert!(result["interfaces"][2].get("mtu").is_none());
        }
    }

    #[test]
    fn a_previous_result_is_kept_and_indexes_shift() {
        let prev = json!({
            "cniVersion": "1.0.0",
            "interfaces": [{"name": "lo", "sandbox": "/run/netns/c1"}],
            "ips": [{"address": "127.0.0.1/8", "interface": 0}],
            "dns": {"nameservers": ["10.0.0.10"]},
        });
        let result = render(Version::V1_0_0, &attached(), Some(&prev));
        assert_eq!(result["interfaces"].as_array().unwrap().len(), 4);
        assert_eq!(result["ips"][0]["address"], "127.0.0.1/8");
        assert_eq!(result["ips"][1]["interface"], 3);
        assert_eq!(result["dns"]["nameservers"][0], "10.0.0.10");
    }
}
