//! `ipMasq`: traffic from the node's subnet to outside the cluster network (and not
//! multicast) leaves with the node's address, by one rule in an nftables table of the
//! plugin's own (`ip netlab-cni`). The base chain is named after the subnet and the
//! cluster network it serves, so a netlink lookup of that name (no exec) tells
//! whether the rule is in place; only when it is not does `nft` run, replacing the
//! table whole in one transaction (idempotent, and safe when ADDs race).

use netlab_store::leases::Subnet;
use nftables::schema::Nftables;
use serde_json::{json, Value};

pub const TABLE: &str = "netlab-cni";

/// The chain's name: `masq-<subnet>-<cluster network>`.
pub fn chain(subnet: Subnet, cluster: Subnet) -> String {
    format!("masq-{subnet}-{cluster}")
}

/// The nft batch that makes the table again with the one rule.
pub fn batch(subnet: Subnet, cluster: Subnet) -> Value {
    let table = json!({"family": "ip", "name": TABLE});
    let chain = chain(subnet, cluster);
    let prefix = |s: Subnet| json!({"prefix": {"addr": s.network().to_string(), "len": s.length()}});
    let address = |field: &str, op: &str, right: Value| json!({"match": {"op": op, "left": {"payload": {"protocol": "ip", "field": field}}, "right": right}});
    let multicast = Subnet::new([224, 0, 0, 0].into(), 4).expect("224.0.0.0/4");
    let rule = json!([
        address("saddr", "==", prefix(subnet)),
        address("daddr", "!=", prefix(cluster)),
        address("daddr", "!=", prefix(multicast)),
        {"masquerade": null},
    ]);
    json!({"nftables": [
        {"add": {"table": table}},
        {"delete": {"table": table}},
        {"add": {"table": table}},
        {"add": {"chain": {"family": "ip", "table": TABLE, "name": chain, "type": "nat",
            "hook": "postrouting", "prio": 100, "policy": "accept"}}},
        {"add": {"rule": {"family": "ip", "table": TABLE, "chain": chain, "expr": rule}}},
    ]})
}

/// Whether the rule for this subnet and network is in place (in the calling thread's
/// namespace).
pub fn present(subnet: Subnet, cluster: Subnet) -> Result<bool, String> {
    netns::nft::chain_exists(netns::nft::FAMILY_IP, TABLE, &chain(subnet, cluster)).map_err(|e| e.to_string())
}

/// Put the rule in place if it is not.
pub fn ensure(subnet: Subnet, cluster: Subnet) -> Result<(), String> {
    if present(subnet, cluster)? {
        return Ok(());
    }
    let batch: Nftables<'static> =
        serde_json::from_value(batch(subnet, cluster)).map_err(|e| format!("build nftables batch: {e}"))?;
    nftables::helper::apply_ruleset(&batch).map_err(|e| format!("nft table ip {TABLE}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_is_valid_nftables_json() {
        let subnet: Subnet = "10.244.1.0/24".parse().unwrap();
        let cluster: Subnet = "10.244.0.0/16".parse().unwrap();
        assert_eq!(chain(subnet, cluster), "masq-10.244.1.0/24-10.244.0.0/16");
        let value = batch(subnet, cluster);
        let parsed: Nftables<'static> = serde_json::from_value(value.clone()).unwrap();
        assert_eq!(parsed.objects.len(), 5);
        let rule = &value["nftables"][4]["add"]["rule"];
        assert_eq!(rule["chain"], "masq-10.244.1.0/24-10.244.0.0/16");
        assert_eq!(rule["expr"][0]["match"]["right"]["prefix"]["addr"], "10.244.1.0");
        assert_eq!(rule["expr"][1]["match"]["op"], "!=");
    }
}
