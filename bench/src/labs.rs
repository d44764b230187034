//! The benchmark's labs, written three ways: a netlab file, an iproute2 script of one
//! process per command (the tutorial's way), and the fastest iproute2 batches.

/// Address of the i-th node: 10.0.0.2 and up, in 10.0.0.0/16.
fn address(i: usize) -> String {
    format!("10.0.{}.{}", (i + 2) / 256, (i + 2) % 256)
}

/// Host bridges the star needs: a bridge takes at most 1023 ports.
fn bridge_of(i: usize) -> usize {
    i / 1000
}

/// `star`: N namespaces, each joined by a veth to a bridge in the host.
pub fn star_yaml(n: usize) -> String {
    let mut yaml = String::from("name: star\nhost:\n  bridges:\n");
    for b in 0..=bridge_of(n.saturating_sub(1)) {
        yaml.push_str(&format!("    br{b}: {{}}\n"));
    }
    yaml.push_str("  interfaces:\n");
    for i in 0..n {
        yaml.push_str(&format!("    p{i}: {{bridge: br{}}}\n", bridge_of(i)));
    }
    yaml.push_str("nodes:\n");
    for i in 0..n {
        yaml.push_str(&format!("  n{i}:\n    interfaces:\n      eth0: {{addresses: [{}/16]}}\n", address(i)));
    }
    yaml.push_str("links:\n");
    for i in 0..n {
        yaml.push_str(&format!("  - endpoints: [n{i}:eth0, p{i}]\n"));
    }
    yaml
}

fn argv(words: &str) -> Vec<String> {
    words.split_whitespace().map(String::from).collect()
}

/// One `ip` process per command, as the tutorial does it: (build, teardown).
pub fn star_per_command(n: usize) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let mut build = Vec::new();
    for b in 0..=bridge_of(n.saturating_sub(1)) {
        build.push(argv(&format!("ip link add br{b} type bridge")));
        build.push(argv(&format!("ip link set br{b} up")));
    }
    for i in 0..n {
        build.push(argv(&format!("ip netns add n{i}")));
        build.push(argv(&format!("ip link add p{i} type veth peer name eth0 netns n{i}")));
        build.push(argv(&format!("ip link set p{i} master br{}", bridge_of(i))));
        build.push(argv(&format!("ip link set p{i} up")));
        build.push(argv(&format!("ip -n n{i} addr add {}/16 dev eth0", address(i))));
        build.push(argv(&format!("ip -n n{i} link set eth0 up")));
        build.push(argv(&format!("ip -n n{i} link set lo up")));
    }
    let mut teardown: Vec<Vec<String>> = (0..n).map(|i| argv(&format!("ip netns del n{i}"))).collect();
    for b in 0..=bridge_of(n.saturating_sub(1)) {
        teardown.push(argv(&format!("ip link del br{b}")));
    }
    (build, teardown)
}

/// The fastest iproute2 script: one `ip -batch` for the host, one `ip -n NS -batch`
/// per namespace (a batch line cannot name another namespace): (host batch, one batch
/// per namespace, teardown batch).
pub fn star_batches(n: usize) -> (String, Vec<(String, String)>, String) {
    let mut host = String::new();
    let mut teardown = String::new();
    for b in 0..=bridge_of(n.saturating_sub(1)) {
        host.push_str(&format!("link add br{b} up type bridge\n"));
    }
    for i in 0..n {
        host.push_str(&format!("netns add n{i}\n"));
        host.push_str(&format!("link add p{i} master br{} up type veth peer name eth0 netns n{i}\n", bridge_of(i)));
        teardown.push_str(&format!("netns del n{i}\n"));
    }
    for b in 0..=bridge_of(n.saturating_sub(1)) {
        teardown.push_str(&format!("link del br{b}\n"));
    }
    let namespaces = (0..n)
        .map(|i| (format!("n{i}"), format!("addr add {}/16 dev eth0\nlink set eth0 up\nlink set lo up\n", address(i))))
        .collect();
    (host, namespaces, teardown)
}

/// `linear`: mininet's linear,N: N bridges in a chain in the host, a node on each.
pub fn linear_yaml(n: usize) -> String {
    let mut yaml = String::from("name: linear\nhost:\n  bridges:\n");
    for s in 1..=n {
        yaml.push_str(&format!("    s{s}: {{}}\n"));
    }
    yaml.push_str("  interfaces:\n");
    for s in 1..=n {
        yaml.push_str(&format!("    s{s}-eth1: {{bridge: s{s}}}\n"));
        if s > 1 {
            yaml.push_str(&format!("    s{s}-eth2: {{bridge: s{s}}}\n"));
        }
        if s < n {
            yaml.push_str(&format!("    s{s}-eth3: {{bridge: s{s}}}\n"));
        }
    }
    yaml.push_str("nodes:\n");
    for h in 1..=n {
        yaml.push_str(&format!(
            "  h{h}:\n    interfaces:\n      h{h}-eth0: {{addresses: [10.0.{}.{}/8]}}\n",
            h / 256,
            h % 256
        ));
    }
    yaml.push_str("links:\n");
    for s in 1..=n {
        yaml.push_str(&format!("  - endpoints: [h{s}:h{s}-eth0, s{s}-eth1]\n"));
        if s < n {
            yaml.push_str(&format!("  - endpoints: [s{s}-eth3, s{}-eth2]\n", s + 1));
        }
    }
    yaml
}
