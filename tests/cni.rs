//! Exec-level contract tests of the `netlab-cni` plugin (CNI spec 1.1): the binary runs
//! as a runtime runs it (CNI_* environment, config on stdin), inside a sandbox whose
//! containers are `ip netns add` namespaces; the subnet file the node daemon would
//! write is written here. Every test asserts what the kernel and the plugin's state
//! hold afterwards, not only the exit code.
//!
//! Build the plugin first (cargo builds a package's binaries only for its own tests):
//! `cargo build --release -p netlab-cni && cargo test --release --test cni`.

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Stdio;

use serde_json::{json, Value};
use support::{cni_binary, eventually, text, Sandbox};

const SUBNET_ENV: &str =
    "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n";
const NETWORK: &str = "netlab";
const VERSIONS: [&str; 4] = ["0.3.1", "0.4.0", "1.0.0", "1.1.0"];

/// One sandbox, its subnet file (written or not) and the plugin's data folder.
struct Cni {
    sandbox: Sandbox,
    subnet_file: PathBuf,
    data_dir: PathBuf,
}

/// What one invocation printed and how it ended.
#[derive(Debug)]
struct Reply {
    success: bool,
    stdout: String,
    json: Value,
}

impl Reply {
    fn code(&self) -> i64 {
        assert!(!self.success, "expected a failure: {}", self.stdout);
        self.json["code"].as_i64().unwrap_or_else(|| panic!("no error code in {}", self.stdout))
    }

    fn msg(&self) -> &str {
        self.json["msg"].as_str().unwrap_or_default()
    }
}

impl Cni {
    fn new() -> Cni {
        let sandbox = Sandbox::new();
        let subnet_file = sandbox.dir.join("subnet.env");
        let data_dir = sandbox.dir.join("data");
        Cni { sandbox, subnet_file, data_dir }
    }

    fn with_subnet() -> Cni {
        let cni = Cni::new();
        cni.write_subnet();
        cni
    }

    fn write_subnet(&self) {
        std::fs::write(&self.subnet_file, SUBNET_ENV).unwrap();
    }

    fn conf(&self, version: &str) -> Value {
        json!({
            "cniVersion": version,
            "name": NETWORK,
            "type": "netlab-cni",
            "subnetFile": self.subnet_file,
            "dataDir": self.data_dir,
        })
    }

    /// A container: a named namespace of the sandbox; its path.
    fn container(&self, name: &str) -> String {
        self.sandbox.ok("ip", &["netns", "add", name]);
        format!("/run/netns/{name}")
    }

    fn exec(&self, program: &str, env: &[(&str, &str)], stdin: &[u8]) -> Reply {
        let mut command = self.sandbox.command(program);
        for name in ["CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH"] {
            command.env_remove(name);
        }
        command.envs(env.iter().copied()).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = command.spawn().expect("run the plugin in the sandbox");
        use std::io::Write;
        // The plugin may exit before reading (an environment error): a closed pipe is fine.
        let _ = child.stdin.take().unwrap().write_all(stdin);
        let output = child.wait_with_output().unwrap();
        let stdout = text(&output.stdout);
        let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
        Reply { success: output.status.success(), stdout: format!("{stdout}{}", text(&output.stderr)), json }
    }

    fn call(&self, command: &str, env: &[(&str, &str)], conf: &Value) -> Reply {
        let mut all = vec![("CNI_COMMAND", command), ("CNI_PATH", "/usr/lib/cni")];
        all.extend_from_slice(env);
        self.exec(&cni_binary(), &all, conf.to_string().as_bytes())
    }

    /// Run `command` for container `name`'s eth0 (in /run/netns/NAME).
    fn on(&self, command: &str, name: &str, conf: &Value) -> Reply {
        let netns = format!("/run/netns/{name}");
        self.call(command, &[("CNI_CONTAINERID", name), ("CNI_NETNS", &netns), ("CNI_IFNAME", "eth0")], conf)
    }

    fn add(&self, name: &str, conf: &Value) -> Value {
        let reply = self.on("ADD", name, conf);
        assert!(reply.success, "ADD {name}: {}", reply.stdout);
        reply.json
    }

    fn del(&self, name: &str, conf: &Value) {
        let reply = self.on("DEL", name, conf);
        assert!(reply.success, "DEL {name}: {}", reply.stdout);
        assert_eq!(reply.stdout.trim(), "", "DEL prints nothing");
    }

    /// The allocated addresses (the allocator's files).
    fn allocations(&self) -> BTreeSet<String> {
        match std::fs::read_dir(self.data_dir.join(NETWORK).join("addresses")) {
            Ok(entries) => entries.map(|e| e.unwrap().file_name().into_string().unwrap()).collect(),
            Err(_) => BTreeSet::new(),
        }
    }

    /// The names of cni0's ports.
    fn ports(&self) -> BTreeSet<String> {
        let listed = self.sandbox.run("ip", &["-o", "link", "show", "master", "cni0"]);
        text(&listed.stdout)
            .lines()
            .filter_map(|l| Some(l.split(": ").nth(1)?.split('@').next()?.to_string()))
            .collect()
    }

    fn in_container(&self, name: &str, args: &[&str]) -> String {
        self.sandbox.ok("ip", &[&["netns", "exec", name][..], args].concat())
    }

    fn ping(&self, from: &str, to: &str) -> bool {
        self.sandbox.run("ip", &["netns", "exec", from, "ping", "-c1", "-W2", to]).status.success()
    }
}

/// The container's address in an ADD result (without the length).
fn address(result: &Value) -> String {
    let ips = result["ips"].as_array().expect("ips");
    ips.last().unwrap()["address"].as_str().unwrap().split('/').next().unwrap().to_string()
}

#[test]
fn version_lists_every_supported_version() {
    let cni = Cni::new();
    // VERSION reads no config: garbage on stdin does not matter.
    let reply = cni.exec(&cni_binary(), &[("CNI_COMMAND", "VERSION")], b"{garbage");
    assert!(reply.success, "{}", reply.stdout);
    assert_eq!(reply.json, json!({"cniVersion": "1.1.0", "supportedVersions": ["0.3.1", "0.4.0", "1.0.0", "1.1.0"]}));
}

#[test]
fn add_answers_in_every_version_and_wires_the_container() {
    let cni = Cni::with_subnet();
    let mut seen = BTreeSet::new();
    for (i, version) in VERSIONS.iter().enumerate() {
        let name = format!("c{i}");
        let netns = cni.container(&name);
        let result = cni.add(&name, &cni.conf(version));
        assert_eq!(result["cniVersion"], *version);
        let interfaces = result["interfaces"].as_array().unwrap();
        assert_eq!(interfaces.len(), 3, "{result}");
        assert_eq!(interfaces[0]["name"], "cni0");
        assert!(interfaces[1]["name"].as_str().unwrap().starts_with("veth"));
        assert_eq!(interfaces[2]["name"], "eth0");
        assert_eq!(interfaces[2]["sandbox"], netns.as_str());
        assert!(interfaces[..2].iter().all(|i| i.get("sandbox").is_none()), "host interfaces have no sandbox");
        for interface in interfaces {
            let mac = interface["mac"].as_str().unwrap();
            assert_eq!((mac.len(), mac.matches(':').count()), (17, 5), "{mac}");
            assert_eq!(interface.get("mtu").is_some(), *version == "1.1.0", "{version}: {interface}");
        }
        let ip = &result["ips"][0];
        assert_eq!(ip["gateway"], "10.244.1.1");
        assert_eq!(ip["interface"], 2);
        assert_eq!(ip.get("version").is_some(), version.starts_with("0."), "{version}: {ip}");
        if version.starts_with("0.") {
            assert_eq!(ip["version"], "4");
        }
        assert_eq!(
            result["routes"],
            json!([{"dst": "10.244.0.0/16", "gw": "10.244.1.1"}, {"dst": "0.0.0.0/0", "gw": "10.244.1.1"}])
        );
        let address = address(&result);
        assert!(address.starts_with("10.244.1.") && !["10.244.1.0", "10.244.1.1"].contains(&address.as_str()));
        assert!(seen.insert(address.clone()), "{address} handed out twice");

        // The kernel holds what the result says.
        let link = cni.in_container(&name, &["ip", "-o", "link", "show", "eth0"]);
        assert!(link.contains("mtu 1450") && link.contains("state UP"), "{link}");
        assert!(link.contains(interfaces[2]["mac"].as_str().unwrap()), "{link}");
        let addresses = cni.in_container(&name, &["ip", "-o", "-4", "addr", "show", "eth0"]);
        assert!(addresses.contains(&format!("inet {address}/24")), "{addresses}");
        let routes = cni.in_container(&name, &["ip", "route"]);
        assert!(routes.contains("default via 10.244.1.1 dev eth0"), "{routes}");
        assert!(routes.contains("10.244.0.0/16 via 10.244.1.1 dev eth0"), "{routes}");
        assert!(cni.ports().contains(interfaces[1]["name"].as_str().unwrap()), "{:?}", cni.ports());
        assert!(cni.ping(&name, "10.244.1.1"), "{name} cannot reach the gateway");
    }
    let bridge = cni.sandbox.ok("ip", &["-o", "-4", "addr", "show", "cni0"]);
    assert!(bridge.contains("inet 10.244.1.1/24"), "{bridge}");
    assert_eq!(cni.sandbox.ok("sysctl", &["-n", "net.ipv4.ip_forward"]).trim(), "1");
    assert_eq!(cni.allocations(), seen);
    for (i, version) in VERSIONS.iter().enumerate() {
        cni.del(&format!("c{i}"), &cni.conf(version));
    }
    assert!(cni.allocations().is_empty(), "{:?}", cni.allocations());
    assert!(cni.ports().is_empty(), "{:?}", cni.ports());
}

#[test]
fn every_error_code() {
    let cni = Cni::new();
    cni.container("c1");
    let conf = cni.conf("1.0.0");
    let attach = |netns: &'static str| [("CNI_CONTAINERID", "c1"), ("CNI_NETNS", netns), ("CNI_IFNAME", "eth0")];

    // 11: ADD before the node holds a lease; the message names the file, nothing is made.
    let reply = cni.on("ADD", "c1", &conf);
    assert_eq!(reply.code(), 11, "{}", reply.stdout);
    assert!(reply.msg().contains(&cni.subnet_file.display().to_string()), "{}", reply.msg());
    assert_eq!(reply.json["cniVersion"], "1.0.0");
    assert!(reply.json["details"].is_string());
    assert!(cni.sandbox.run("ip", &["link", "show", "cni0"]).stdout.is_empty(), "no bridge made");
    // 50: STATUS says the same.
    let reply = cni.call("STATUS", &[], &cni.conf("1.1.0"));
    assert_eq!(reply.code(), 50, "{}", reply.stdout);
    assert!(reply.msg().contains("subnet.env"), "{}", reply.msg());

    cni.write_subnet();
    // 4: environment.
    let reply = cni.call("ADD", &[("CNI_NETNS", "/run/netns/c1"), ("CNI_IFNAME", "eth0")], &conf);
    assert_eq!(reply.code(), 4);
    assert!(reply.msg().contains("CNI_CONTAINERID"), "{}", reply.msg());
    for bad in ["../../etc/passwd", "a/b", "..", &"x".repeat(300)] {
        let reply =
            cni.call("ADD", &[("CNI_CONTAINERID", bad), ("CNI_NETNS", "/run/netns/c1"), ("CNI_IFNAME", "eth0")], &conf);
        assert_eq!(reply.code(), 4, "{bad}: {}", reply.stdout);
        let reply = cni.call("DEL", &[("CNI_CONTAINERID", bad), ("CNI_IFNAME", "eth0")], &conf);
        assert_eq!(reply.code(), 4, "{bad}: {}", reply.stdout);
    }
    let reply =
        cni.call("ADD", &[("CNI_CONTAINERID", "c1"), ("CNI_NETNS", "/run/netns/c1"), ("CNI_IFNAME", "a/b")], &conf);
    assert_eq!(reply.code(), 4, "{}", reply.stdout);
    let reply = cni.exec(&cni_binary(), &[("CNI_COMMAND", "EXPLODE")], b"{}");
    assert_eq!(reply.code(), 4);
    let reply = cni.exec(&cni_binary(), &[], b"{}");
    assert_eq!(reply.code(), 4);
    let not_a_namespace = cni.sandbox.file("plain", "");
    let reply =
        cni.call("ADD", &[("CNI_CONTAINERID", "c1"), ("CNI_NETNS", &not_a_namespace), ("CNI_IFNAME", "eth0")], &conf);
    assert_eq!(reply.code(), 4, "{}", reply.stdout);
    assert!(reply.msg().contains("not a network namespace"), "{}", reply.msg());
    let reply = cni.call("ADD", &attach("/proc/self/ns/net"), &conf);
    assert_eq!(reply.code(), 4, "{}", reply.stdout);
    assert!(reply.msg().contains("own namespace"), "{}", reply.msg());
    let reply = cni.call("ADD", &attach("/run/netns/missing"), &conf);
    assert_eq!(reply.code(), 4, "{}", reply.stdout);

    // 6: undecodable config.
    let reply = cni.exec(&cni_binary(), &[&[("CNI_COMMAND", "ADD")][..], &attach("/run/netns/c1")].concat(), b"{nope");
    assert_eq!(reply.code(), 6, "{}", reply.stdout);
    let mut wrong_type = conf.clone();
    wrong_type["mtu"] = json!("big");
    assert_eq!(cni.on("ADD", "c1", &wrong_type).code(), 6);

    // 7: invalid config.
    for (key, value) in [
        ("name", json!("../x")),
        ("bridge", json!("a-very-long-bridge")),
        ("mtu", json!(10)),
        ("dataDir", json!("rel")),
    ] {
        let mut bad = conf.clone();
        bad[key] = value;
        let reply = cni.on("ADD", "c1", &bad);
        assert_eq!(reply.code(), 7, "{key}: {}", reply.stdout);
    }
    let mut nameless = conf.clone();
    nameless.as_object_mut().unwrap().remove("name");
    assert_eq!(cni.on("ADD", "c1", &nameless).code(), 7);

    // 1: versions, and commands a version does not have.
    for version in ["0.1.0", "0.2.0", "2.0.0"] {
        let reply = cni.on("ADD", "c1", &cni.conf(version));
        assert_eq!(reply.code(), 1, "{version}: {}", reply.stdout);
    }
    assert_eq!(cni.on("CHECK", "c1", &cni.conf("0.3.1")).code(), 1);
    assert_eq!(cni.call("STATUS", &[], &cni.conf("1.0.0")).code(), 1);
    assert_eq!(cni.call("GC", &[], &cni.conf("0.4.0")).code(), 1);

    // None of it allocated or made anything.
    assert!(cni.allocations().is_empty(), "{:?}", cni.allocations());
    assert!(cni.sandbox.run("ip", &["link", "show", "cni0"]).stdout.is_empty(), "no bridge made");
    let recorded = std::fs::read_dir(cni.data_dir.join(NETWORK).join("attachments")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(recorded, 0);
}

#[test]
fn status_before_and_after_the_subnet_file() {
    let cni = Cni::new();
    let conf = cni.conf("1.1.0");
    let before = cni.call("STATUS", &[], &conf);
    assert_eq!(before.code(), 50, "{}", before.stdout);
    assert!(before.msg().contains(&cni.subnet_file.display().to_string()), "{}", before.msg());
    cni.write_subnet();
    let after = cni.call("STATUS", &[], &conf);
    assert!(after.success, "{}", after.stdout);
    assert_eq!(after.stdout.trim(), "");
    // A subnet file that cannot serve (a /32 leaves no address) is not ready either.
    std::fs::write(&cni.subnet_file, SUBNET_ENV.replace("10.244.1.1/24", "10.244.1.1/32")).unwrap();
    assert_eq!(cni.call("STATUS", &[], &conf).code(), 50);
}

#[test]
fn del_is_idempotent() {
    let cni = Cni::with_subnet();
    let conf = cni.conf("1.0.0");
    // Never added: nothing to do, success.
    cni.del("ghost", &conf);

    // Twice, with prevResult.
    cni.container("c1");
    let result = cni.add("c1", &conf);
    let mut with_prev = conf.clone();
    with_prev["prevResult"] = result.clone();
    cni.del("c1", &with_prev);
    cni.del("c1", &with_prev);
    assert!(cni.allocations().is_empty());
    assert!(cni.in_container("c1", &["ip", "-o", "link"]).lines().count() == 1, "only lo left in c1");

    // The namespace gone before DEL: the allocation is released all the same.
    cni.container("c2");
    cni.add("c2", &conf);
    cni.sandbox.ok("ip", &["netns", "del", "c2"]);
    cni.del("c2", &conf);
    assert!(cni.allocations().is_empty());

    // Neither CNI_NETNS nor prevResult.
    cni.container("c3");
    cni.add("c3", &conf);
    let reply = cni.call("DEL", &[("CNI_CONTAINERID", "c3"), ("CNI_IFNAME", "eth0")], &conf);
    assert!(reply.success, "{}", reply.stdout);
    assert!(cni.allocations().is_empty());
    assert!(cni.ports().is_empty(), "{:?}", cni.ports());
    assert!(!cni.in_container("c3", &["ip", "-o", "link"]).contains("eth0"));
    // Without the subnet file too (the record knows what ADD did).
    cni.add("c3", &conf);
    std::fs::remove_file(&cni.subnet_file).unwrap();
    cni.del("c3", &conf);
    assert!(cni.allocations().is_empty() && cni.ports().is_empty());
}

#[test]
fn a_second_add_keeps_its_address_and_leaks_nothing() {
    let cni = Cni::with_subnet();
    let conf = cni.conf("1.1.0");
    cni.container("c1");
    let first = cni.add("c1", &conf);
    let second = cni.add("c1", &conf);
    assert_eq!(address(&first), address(&second));
    assert_eq!(cni.allocations().len(), 1);
    assert_eq!(cni.ports().len(), 1);
    assert!(cni.ping("c1", "10.244.1.1"));
    cni.del("c1", &conf);
    assert!(cni.allocations().is_empty() && cni.ports().is_empty());
}

#[test]
fn gc_releases_what_is_not_listed() {
    let cni = Cni::with_subnet();
    let conf = cni.conf("1.1.0");
    let mut results = std::collections::BTreeMap::new();
    for name in ["a", "b", "c"] {
        cni.container(name);
        results.insert(name, cni.add(name, &conf));
    }
    assert_eq!(cni.allocations().len(), 3);
    let valid = |names: &[&str]| names.iter().map(|n| json!({"containerID": n, "ifname": "eth0"})).collect::<Vec<_>>();

    // Spec 1.1's key: only `a` stays.
    let mut gc = conf.clone();
    gc["cni.dev/valid-attachments"] = json!(valid(&["a", "b"]));
    let reply = cni.call("GC", &[], &gc);
    assert!(reply.success && reply.stdout.trim().is_empty(), "{}", reply.stdout);
    assert_eq!(cni.allocations().len(), 2);
    assert!(!cni.in_container("c", &["ip", "-o", "link"]).contains("eth0"), "c's veth deleted");
    assert!(cni.in_container("a", &["ip", "-o", "link"]).contains("eth0"));

    // The older key.
    let mut gc = conf.clone();
    gc["cni.dev/attachments"] = json!(valid(&["a"]));
    assert!(cni.call("GC", &[], &gc).success);
    assert_eq!(cni.allocations().len(), 1);
    assert_eq!(cni.ports().len(), 1);
    assert!(cni.ping("a", "10.244.1.1"), "a untouched");
    let mut check = conf.clone();
    check["prevResult"] = results["a"].clone();
    assert!(cni.on("CHECK", "a", &check).success);

    // No list: nothing is valid.
    assert!(cni.call("GC", &[], &conf).success);
    assert!(cni.allocations().is_empty(), "{:?}", cni.allocations());
    assert!(cni.ports().is_empty(), "{:?}", cni.ports());
    assert!(std::fs::read_dir(cni.data_dir.join(NETWORK).join("attachments")).unwrap().next().is_none());
}

#[test]
fn twenty_parallel_adds_get_twenty_addresses() {
    let cni = Cni::with_subnet();
    let conf = cni.conf("1.1.0");
    let names: Vec<String> = (1..=20).map(|i| format!("p{i}")).collect();
    for name in &names {
        cni.container(name);
    }
    let (cni, conf) = (&cni, &conf);
    let results: Vec<Value> = std::thread::scope(|scope| {
        let running: Vec<_> = names.iter().map(|name| scope.spawn(move || cni.add(name, conf))).collect();
        running.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let addresses: BTreeSet<String> = results.iter().map(address).collect();
    assert_eq!(addresses.len(), 20, "duplicates among {:?}", results.iter().map(address).collect::<Vec<_>>());
    assert_eq!(cni.allocations(), addresses);
    assert_eq!(cni.ports().len(), 20);
    let unreachable: Vec<&String> = names.iter().filter(|name| !cni.ping(name, "10.244.1.1")).collect();
    assert!(unreachable.is_empty(), "cannot reach the gateway: {unreachable:?}");
    std::thread::scope(|scope| {
        for name in &names {
            scope.spawn(move || cni.del(name, conf));
        }
    });
    assert!(cni.allocations().is_empty() && cni.ports().is_empty());
}

#[test]
fn check_finds_an_address_deleted_by_hand() {
    let cni = Cni::with_subnet();
    let conf = cni.conf("1.0.0");
    cni.container("c1");
    let result = cni.add("c1", &conf);
    let mut check = conf.clone();
    check["prevResult"] = result.clone();
    let reply = cni.on("CHECK", "c1", &check);
    assert!(reply.success && reply.stdout.trim().is_empty(), "{}", reply.stdout);
    // CHECK needs prevResult.
    assert_eq!(cni.on("CHECK", "c1", &conf).code(), 7);

    let address = format!("{}/24", address(&result));
    cni.in_container("c1", &["ip", "addr", "del", &address, "dev", "eth0"]);
    let reply = cni.on("CHECK", "c1", &check);
    assert_eq!(reply.code(), 102, "{}", reply.stdout);
    assert!(reply.msg().contains(&format!("lacks its address {address}")), "{}", reply.msg());
    // The routes went with the address: named as well.
    assert!(reply.msg().contains("route to 0.0.0.0/0"), "{}", reply.msg());

    // A container never added fails CHECK too.
    cni.container("c2");
    let mut other = check.clone();
    other["prevResult"] = result;
    let reply = cni.on("CHECK", "c2", &other);
    assert_eq!(reply.code(), 102, "{}", reply.stdout);
    cni.del("c1", &conf);
}

#[test]
fn namespaces_bound_outside_run_netns() {
    let cni = Cni::with_subnet();
    let conf = cni.conf("1.1.0");
    // A namespace bind-mounted on a file of the test's folder (in the sandbox's mounts).
    let bound = cni.sandbox.file("bound-ns", "");
    cni.sandbox.ok("unshare", &[&format!("--net={bound}"), "true"]);
    // And one only a process holds: /proc/PID/ns/net.
    let holder = cni.sandbox.spawn("", "unshare", &["--net", "sleep", "600"]);
    let by_pid = format!("/proc/{}/ns/net", holder.pid());
    // Once it runs sleep, unshare has made the namespace.
    let comm = format!("/proc/{}/comm", holder.pid());
    assert!(eventually(5.0, || std::fs::read_to_string(&comm).is_ok_and(|c| c.trim() == "sleep")));
    for (id, netns) in [("bound", bound.as_str()), ("by-pid", by_pid.as_str())] {
        let env = [("CNI_CONTAINERID", id), ("CNI_NETNS", netns), ("CNI_IFNAME", "net1")];
        let reply = cni.call("ADD", &env, &conf);
        assert!(reply.success, "{netns}: {}", reply.stdout);
        assert_eq!(reply.json["interfaces"][2]["sandbox"], netns);
        let inside = cni.sandbox.ok("nsenter", &[&format!("--net={netns}"), "ip", "-o", "-4", "addr", "show", "net1"]);
        assert!(inside.contains(&format!("inet {}/24", address(&reply.json))), "{inside}");
        let ping = cni.sandbox.run("nsenter", &[&format!("--net={netns}"), "ping", "-c1", "-W2", "10.244.1.1"]);
        assert!(ping.status.success(), "{netns} cannot reach the gateway");
        let mut check = conf.clone();
        check["prevResult"] = reply.json.clone();
        let reply = cni.call("CHECK", &env, &check);
        assert!(reply.success, "{}", reply.stdout);
        let reply = cni.call("DEL", &env, &conf);
        assert!(reply.success, "{}", reply.stdout);
    }
    assert!(cni.allocations().is_empty() && cni.ports().is_empty());
}

#[test]
fn two_containers_ping_each_other_through_cni0() {
    let cni = Cni::with_subnet();
    let conf = cni.conf("1.0.0");
    cni.container("red");
    cni.container("blue");
    let red = address(&cni.add("red", &conf));
    let blue = address(&cni.add("blue", &conf));
    assert!(cni.ping("red", &blue), "red -> {blue}");
    assert!(cni.ping("blue", &red), "blue -> {red}");
    cni.del("red", &conf);
    cni.del("blue", &conf);
}

#[test]
fn ip_masq_puts_its_rule_in_its_own_table() {
    let cni = Cni::with_subnet();
    let mut conf = cni.conf("1.1.0");
    conf["ipMasq"] = json!(true);
    cni.container("c1");
    cni.container("c2");
    let result = cni.add("c1", &conf);
    cni.add("c2", &conf);
    let table = cni.sandbox.ok("nft", &["list", "table", "ip", "netlab-cni"]);
    assert!(table.contains("ip saddr 10.244.1.0/24 ip daddr != 10.244.0.0/16"), "{table}");
    assert_eq!(table.matches("masquerade").count(), 1, "one rule after two ADDs: {table}");
    let mut check = conf.clone();
    check["prevResult"] = result;
    assert!(cni.on("CHECK", "c1", &check).success);
    cni.sandbox.ok("nft", &["delete", "table", "ip", "netlab-cni"]);
    let reply = cni.on("CHECK", "c1", &check);
    assert_eq!(reply.code(), 102, "{}", reply.stdout);
    assert!(reply.msg().contains("masquerade"), "{}", reply.msg());
    cni.del("c1", &conf);
    cni.del("c2", &conf);
}

#[test]
fn portmap_chains_after_netlab_cni() {
    let cni = Cni::with_subnet();
    let conf = cni.conf("1.0.0");
    cni.container("web");
    let result = cni.add("web", &conf);
    let listener = cni.sandbox.spawn("web", "busybox", &["nc", "-l", "-p", "80"]);
    let portmap = json!({
        "cniVersion": "1.0.0",
        "name": NETWORK,
        "type": "portmap",
        "capabilities": {"portMappings": true},
        "runtimeConfig": {"portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]},
        "prevResult": result,
    });
    let env = [
        ("CNI_CONTAINERID", "web"),
        ("CNI_NETNS", "/run/netns/web"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_PATH", "/usr/lib/cni"),
    ];
    let run_portmap = |command: &str| {
        cni.exec(
            "/usr/lib/cni/portmap",
            &[&[("CNI_COMMAND", command)][..], &env].concat(),
            portmap.to_string().as_bytes(),
        )
    };
    let added = run_portmap("ADD");
    assert!(added.success, "portmap ADD: {}", added.stdout);
    // portmap passes our result through.
    assert_eq!(added.json["ips"], result["ips"], "{}", added.stdout);

    // A connection to the host's port reaches the container's listener.
    let reached = eventually(10.0, || {
        cni.sandbox.run("sh", &["-c", "echo hello-through-portmap | busybox nc -w 1 10.244.1.1 8080"]);
        listener.output().contains("hello-through-portmap")
    });
    assert!(reached, "listener saw: {:?}", listener.output());

    let mut del = portmap.clone();
    del["prevResult"] = added.json.clone();
    let removed =
        cni.exec("/usr/lib/cni/portmap", &[&[("CNI_COMMAND", "DEL")][..], &env].concat(), del.to_string().as_bytes());
    assert!(removed.success, "portmap DEL: {}", removed.stdout);
    let mut ours = conf.clone();
    ours["prevResult"] = added.json;
    cni.del("web", &ours);
    assert!(cni.allocations().is_empty() && cni.ports().is_empty());
    let nat = cni.sandbox.ok("iptables-save", &["-t", "nat"]);
    assert!(!nat.contains("dport 8080"), "portmap left its rule: {nat}");
}

#[test]
fn check_and_del_follow_the_record_after_the_subnet_file_changed() {
    let cni = Cni::with_subnet();
    let conf = cni.conf("1.1.0");
    cni.container("old");
    let result = cni.add("old", &conf);
    let old = address(&result);
    // The node got another lease (and MTU): the file changes under the running container.
    std::fs::write(&cni.subnet_file, SUBNET_ENV.replace("10.244.1.1/24", "10.244.7.1/24").replace("1450", "1400"))
        .unwrap();
    let mut check = conf.clone();
    check["prevResult"] = result;
    let reply = cni.on("CHECK", "old", &check);
    assert!(reply.success, "{}", reply.stdout);
    // New containers get the new subnet.
    cni.container("new");
    let new = cni.add("new", &conf);
    assert!(address(&new).starts_with("10.244.7."), "{new}");
    assert_eq!(new["interfaces"][2]["mtu"], 1400);
    assert!(cni.in_container("new", &["ip", "-o", "link", "show", "eth0"]).contains("mtu 1400"));
    // DEL of the old one releases the old address.
    assert!(cni.allocations().contains(&old));
    cni.del("old", &conf);
    assert!(!cni.allocations().contains(&old), "{:?}", cni.allocations());
    assert_eq!(cni.allocations().len(), 1);
    cni.del("new", &conf);
    assert!(cni.allocations().is_empty() && cni.ports().is_empty());
}

#[test]
fn an_interface_name_taken_in_the_container_is_refused_and_undone() {
    let cni = Cni::with_subnet();
    let conf = cni.conf("1.0.0");
    cni.container("c1");
    cni.in_container("c1", &["ip", "link", "add", "eth0", "type", "bridge"]);
    let reply = cni.on("ADD", "c1", &conf);
    assert_eq!(reply.code(), 100, "{}", reply.stdout);
    assert!(reply.msg().contains("exists already"), "{}", reply.msg());
    assert!(cni.allocations().is_empty(), "{:?}", cni.allocations());
    assert!(cni.ports().is_empty(), "{:?}", cni.ports());
    // The runtime follows a failed ADD with a DEL: the container's own eth0 stays.
    cni.del("c1", &conf);
    assert!(cni.in_container("c1", &["ip", "-o", "link", "show", "eth0"]).contains("eth0"));
}

#[test]
fn bridge_mtu_and_is_gateway_from_the_config() {
    let cni = Cni::with_subnet();
    let mut conf = cni.conf("1.1.0");
    conf["bridge"] = json!("br-lab");
    conf["mtu"] = json!(1300);
    conf["isGateway"] = json!(false);
    cni.container("c1");
    let result = cni.add("c1", &conf);
    assert_eq!(result["interfaces"][0]["name"], "br-lab");
    assert_eq!(result["interfaces"][2]["mtu"], 1300);
    assert_eq!(result["routes"], json!([{"dst": "10.244.0.0/16", "gw": "10.244.1.1"}]));
    assert!(cni.in_container("c1", &["ip", "-o", "link", "show", "eth0"]).contains("mtu 1300"));
    let routes = cni.in_container("c1", &["ip", "route"]);
    assert!(!routes.contains("default") && routes.contains("10.244.0.0/16 via 10.244.1.1"), "{routes}");
    let ports = cni.sandbox.ok("ip", &["-o", "link", "show", "master", "br-lab"]);
    assert!(ports.contains(result["interfaces"][1]["name"].as_str().unwrap()), "{ports}");
    assert!(cni.ping("c1", "10.244.1.1"));
    let mut check = conf.clone();
    check["prevResult"] = result;
    assert!(cni.on("CHECK", "c1", &check).success);
    cni.del("c1", &conf);
    assert!(cni.allocations().is_empty());
}
