//! `sysctls:` of a namespace. Most `net.*` keys are per network namespace, but some are
//! the machine's: set in a node they would fail (the key is absent or read-only there)
//! or, were they writable, change every namespace. Those are refused in nodes; under
//! `host` (the initial namespace, where they are writable) they are allowed with a
//! warning that the value is the whole machine's.

use std::collections::BTreeMap;

use super::Validator;
use crate::model::names::{Place, SysctlKey};
use crate::model::raw::RawNode;

/// `net.*` keys global to the machine, derived on Linux 6.18 (Debian 12) by comparing
/// `find /proc/sys/net -type f` in the initial namespace with the same in a fresh one
/// (`unshare --net`): the keys absent from the fresh namespace (per-device folders under
/// `conf` and `neigh` left out), then those present there but read-only while writable
/// in the initial one. Keys of modules that were not loaded (sctp, ...) are not listed.
/// Sorted, for a binary search.
const GLOBAL: &[&str] = &[
    "net.core.bpf_jit_enable",
    "net.core.bpf_jit_harden",
    "net.core.bpf_jit_kallsyms",
    "net.core.bpf_jit_limit",
    "net.core.busy_poll",
    "net.core.busy_read",
    "net.core.default_qdisc",
    "net.core.dev_weight",
    "net.core.dev_weight_rx_bias",
    "net.core.dev_weight_tx_bias",
    "net.core.devconf_inherit_init_net",
    "net.core.fb_tunnels_only_for_init_net",
    "net.core.flow_limit_cpu_bitmap",
    "net.core.flow_limit_table_len",
    "net.core.gro_normal_batch",
    "net.core.high_order_alloc_disable",
    "net.core.max_skb_frags",
    "net.core.mem_pcpu_rsv",
    "net.core.message_burst",
    "net.core.message_cost",
    "net.core.netdev_budget",
    "net.core.netdev_budget_usecs",
    "net.core.netdev_max_backlog",
    "net.core.netdev_rss_key",
    "net.core.netdev_tstamp_prequeue",
    "net.core.netdev_unregister_timeout_secs",
    "net.core.rmem_default",
    "net.core.rmem_max",
    "net.core.rps_sock_flow_entries",
    "net.core.skb_defer_max",
    "net.core.warnings",
    "net.core.wmem_default",
    "net.core.wmem_max",
    "net.ipv4.cipso_cache_bucket_size",
    "net.ipv4.cipso_cache_enable",
    "net.ipv4.cipso_rbm_optfmt",
    "net.ipv4.cipso_rbm_strictvalid",
    "net.ipv4.fib_sync_mem",
    "net.ipv4.inet_peer_maxttl",
    "net.ipv4.inet_peer_minttl",
    "net.ipv4.inet_peer_threshold",
    "net.ipv4.ipfrag_secret_interval",
    "net.ipv4.route.error_burst",
    "net.ipv4.route.error_cost",
    "net.ipv4.route.gc_elasticity",
    "net.ipv4.route.gc_interval",
    "net.ipv4.route.gc_min_interval",
    "net.ipv4.route.gc_min_interval_ms",
    "net.ipv4.route.gc_thresh",
    "net.ipv4.route.gc_timeout",
    "net.ipv4.route.max_size",
    "net.ipv4.route.redirect_load",
    "net.ipv4.route.redirect_number",
    "net.ipv4.route.redirect_silence",
    "net.ipv4.tcp_allowed_congestion_control",
    "net.ipv4.tcp_available_ulp",
    "net.ipv4.tcp_low_latency",
    "net.ipv4.tcp_max_orphans",
    "net.ipv4.tcp_mem",
    "net.ipv4.udp_mem",
    "net.ipv6.calipso_cache_bucket_size",
    "net.ipv6.calipso_cache_enable",
    "net.ipv6.ip6frag_secret_interval",
    "net.ipv6.mld_max_msf",
    "net.ipv6.mld_qrv",
    "net.netfilter.nf_conntrack_buckets",
    "net.netfilter.nf_conntrack_expect_max",
    "net.netfilter.nf_conntrack_max",
    "net.netfilter.nf_log_all_netns",
    "net.nf_conntrack_max",
];

/// Whether `key` is the machine's rather than a network namespace's.
pub(super) fn is_global(key: &str) -> bool {
    GLOBAL.binary_search(&key).is_ok()
}

impl Validator {
    pub(super) fn sysctls(&mut self, place: &Place, node: &RawNode) -> BTreeMap<SysctlKey, String> {
        let mut sysctls = BTreeMap::new();
        for (raw_key, value) in &node.sysctls {
            let Some(key) = self.parse::<SysctlKey>(raw_key) else { continue };
            let text = &value.value.0;
            if text.is_empty() || text.len() > 256 || text.chars().any(|c| c.is_control() && c != '\t') {
                self.error(&value.referenced, format!("invalid value for sysctl `{key}`"));
                continue;
            }
            if is_global(key.as_str()) {
                let at = raw_key.referenced;
                if *place != Place::Host {
                    let message = format!(
                        "sysctl `{key}` is the machine's, not a network namespace's: {place} cannot set it (set it under `host`)"
                    );
                    self.error(&at, message);
                    continue;
                }
                self.warnings.push(format!(
                    "{}:{}: warning: sysctl `{key}` is the machine's, not the host namespace's: its value applies to every namespace",
                    at.line(),
                    at.column()
                ));
            }
            sysctls.insert(key, netns::sysctl::normalise(text));
        }
        sysctls
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_table_is_sorted_for_its_binary_search() {
        assert!(super::GLOBAL.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(super::is_global("net.core.netdev_max_backlog"));
        assert!(super::is_global("net.core.rmem_max"));
        assert!(!super::is_global("net.ipv4.ip_forward"));
        assert!(!super::is_global("net.core.somaxconn"));
    }
}
