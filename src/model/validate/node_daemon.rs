//! `node:` of a namespace: the flannel-like mode's node daemon (`vxlan-agent node`)
//! netlab runs there, with its store and its address on the underlay.

use super::Validator;
use crate::model::raw::{Located, RawNodeDaemon};
use crate::model::topology::NodeDaemonSpec;
use netlab_store::StoreUrl;

impl Validator {
    /// `node:`: the flannel-like node daemon's store (an etcd URL without a prefix
    /// means flannel's /coreos.com/network) and its IPv4 address on the underlay.
    pub(super) fn node_daemon(&mut self, raw: &Located<RawNodeDaemon>) -> Option<NodeDaemonSpec> {
        let daemon = &raw.value;
        let store = StoreUrl::parse_with_default(&daemon.store.value, netlab_store::leases::DEFAULT_PREFIX)
            .map_err(|e| self.error(&daemon.store.referenced, e.to_string()))
            .ok();
        if let Some(StoreUrl::Dir(path)) = &store {
            if !path.is_absolute() {
                self.error(
                    &daemon.store.referenced,
                    format!("store `{}`: the folder must be an absolute path", daemon.store.value),
                );
                return None;
            }
        }
        let public_ip = match daemon.public_ip.value.parse::<std::net::Ipv4Addr>() {
            Ok(ip) => Some(ip),
            Err(_) => {
                let message = format!("public_ip `{}` is not an IPv4 address", daemon.public_ip.value);
                self.error(&daemon.public_ip.referenced, message);
                None
            }
        };
        let store_tls = match &daemon.store_tls {
            Some(tls) if store.is_some() => self.store_tls(tls, store.as_ref()),
            _ => None,
        };
        Some(NodeDaemonSpec {
            store: store?,
            store_tls,
            public_ip: public_ip?,
            ip_masq: daemon.ip_masq.unwrap_or(false),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::model::{parse, Place};

    fn file(daemon: &str) -> String {
        format!(
            "name: x\nnodes:\n  n1:\n    interfaces:\n      eth0: {{addresses: [10.0.0.1/24]}}\n    node: {daemon}\n  \
             n2: {{}}\nlinks:\n  - endpoints: [n1:eth0, n2:eth0]\n"
        )
    }

    #[test]
    fn a_node_daemon_has_a_store_and_an_ipv4_address() {
        let topology = parse("lab.yaml", &file("{store: 'etcd://10.0.0.9:2379', public_ip: 10.0.0.1}")).unwrap();
        let node = topology.namespaces[&"n1".parse::<Place>().unwrap()].node.clone().unwrap();
        assert_eq!(node.store.to_string(), "etcd://10.0.0.9:2379/coreos.com/network", "flannel's prefix by default");
        assert_eq!(node.public_ip.to_string(), "10.0.0.1");
        assert!(!node.ip_masq);
        let errors = |daemon: &str| -> Vec<String> {
            let diagnostics = parse("lab.yaml", &file(daemon)).unwrap_err();
            diagnostics.items.iter().map(|d| format!("{}:{}: {}", d.line, d.column, d.message)).collect()
        };
        assert_eq!(
            errors("{store: 'dir:/s', public_ip: 'fe80::1'}"),
            ["6:40: public_ip `fe80::1` is not an IPv4 address"]
        );
        assert_eq!(
            errors("{store: 'dir:s', public_ip: 10.0.0.1}"),
            ["6:19: store `dir:s`: the folder must be an absolute path"]
        );
        let tls = errors("{store: 'dir:/s', public_ip: 10.0.0.1, store_tls: {ca: /ca.pem}}");
        assert!(tls[0].contains("`store_tls` needs an etcd store"), "{tls:?}");
        let unknown = errors("{store: 'dir:/s', public_ip: 10.0.0.1, publicip: x}");
        assert!(
            unknown.iter().any(|e| e.contains("unknown field `publicip`, did you mean `public_ip`?")),
            "{unknown:?}"
        );
    }
}
