//! The command line against a folder store (no privileges needed): publish, list and
//! withdraw write and read the tutorial's layout; bad input is refused with a message.
//!
//! These tests also make `cargo test --workspace` build the `vxlan-agent` binary, which
//! netlab's own agent tests run inside their simulated hosts.

use std::path::PathBuf;
use std::process::{Command, Output};

struct Folder(PathBuf);

impl Folder {
    fn new(test: &str) -> Folder {
        let path = std::env::temp_dir().join(format!("vxlan-agent-cli-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        Folder(path)
    }

    fn store(&self) -> String {
        format!("dir:{}", self.0.display())
    }

    fn read(&self, key: &str) -> Option<String> {
        std::fs::read_to_string(self.0.join(key)).ok()
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn agent(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vxlan-agent")).args(args).env("RUST_LOG", "warn").output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn endpoint<'a>(verb: &'a str, store: &'a str, ip: &'a str, mac: &'a str, vtep: &'a str) -> Vec<&'a str> {
    vec![verb, "--store", store, "--ip", ip, "--mac", mac, "--vtep", vtep]
}

#[test]
fn publish_list_withdraw_round_trip() {
    let folder = Folder::new("round-trip");
    let store = folder.store();

    let published = agent(&endpoint("publish", &store, "10.0.0.2", "02:00:00:00:00:02", "192.168.0.20"));
    assert!(published.status.success(), "{}", stderr(&published));
    assert_eq!(folder.read("arp/10.0.0.2").as_deref(), Some("02:00:00:00:00:02\n"));
    assert_eq!(folder.read("fdb/02:00:00:00:00:02").as_deref(), Some("192.168.0.20\n"));
    // Written through a temporary file and a rename: nothing else is left behind.
    let leftovers: Vec<_> = ["arp", "fdb"]
        .iter()
        .flat_map(|kind| std::fs::read_dir(folder.0.join(kind)).unwrap())
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A key written by hand, as the tutorial does, is listed beside the published ones.
    std::fs::write(folder.0.join("arp/10.0.0.3"), "02:00:00:00:00:03\n").unwrap();
    let listed = agent(&["list", "--store", &store]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert_eq!(
        stdout(&listed),
        "arp/10.0.0.2 02:00:00:00:00:02\narp/10.0.0.3 02:00:00:00:00:03\nfdb/02:00:00:00:00:02 192.168.0.20\n"
    );

    let withdrawn = agent(&endpoint("withdraw", &store, "10.0.0.2", "02:00:00:00:00:02", "192.168.0.20"));
    assert!(withdrawn.status.success(), "{}", stderr(&withdrawn));
    assert_eq!(folder.read("arp/10.0.0.2"), None);
    assert_eq!(folder.read("fdb/02:00:00:00:00:02"), None);
    assert!(folder.read("arp/10.0.0.3").is_some(), "withdraw removed a key it did not write");
}

#[test]
fn withdraw_keeps_a_key_someone_else_changed() {
    let folder = Folder::new("changed");
    let store = folder.store();
    let published = agent(&endpoint("publish", &store, "10.0.0.2", "02:00:00:00:00:02", "192.168.0.20"));
    assert!(published.status.success(), "{}", stderr(&published));
    // The endpoint moved to another host meanwhile: its fdb key is no longer ours to remove.
    std::fs::write(folder.0.join("fdb/02:00:00:00:00:02"), "192.168.0.30\n").unwrap();

    let withdrawn = agent(&endpoint("withdraw", &store, "10.0.0.2", "02:00:00:00:00:02", "192.168.0.20"));
    assert!(withdrawn.status.success(), "{}", stderr(&withdrawn));
    assert_eq!(folder.read("arp/10.0.0.2"), None);
    assert_eq!(folder.read("fdb/02:00:00:00:00:02").as_deref(), Some("192.168.0.30\n"));
}

#[test]
fn bad_input_is_refused_with_a_message() {
    let folder = Folder::new("bad-input");
    let store = folder.store();
    let cases: [(Vec<&str>, &str); 4] = [
        (endpoint("publish", &store, "10.0.0.2", "02:00:00:00:00", "192.168.0.20"), "02:00:00:00:00"),
        (endpoint("publish", &store, "10.0.0.999", "02:00:00:00:00:02", "192.168.0.20"), "10.0.0.999"),
        (endpoint("publish", "dir:", "10.0.0.2", "02:00:00:00:00:02", "192.168.0.20"), "needs a path"),
        (vec!["list", "--store", "ftp://somewhere"], "ftp://somewhere"),
    ];
    for (args, mentioned) in cases {
        let output = agent(&args);
        let message = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {message}");
        assert!(message.contains(mentioned), "{args:?}: {message}");
        assert!(!message.contains("panicked"), "{args:?}: {message}");
    }
    assert_eq!(std::fs::read_dir(&folder.0).unwrap().count(), 0, "refused input wrote to the store");
}

#[test]
fn a_store_file_that_is_not_a_value_is_reported() {
    let folder = Folder::new("bad-value");
    std::fs::create_dir_all(folder.0.join("arp")).unwrap();
    std::fs::write(folder.0.join("arp/10.0.0.2"), "not a mac\n").unwrap();
    std::fs::write(folder.0.join("arp/10.0.0.5"), "02:00:00:00:00:05\n").unwrap();
    let listed = agent(&["list", "--store", &folder.store()]);
    // A bad file is skipped with a warning naming it; the rest is listed.
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert!(stderr(&listed).contains("arp/10.0.0.2: invalid MAC address `not a mac`"), "{}", stderr(&listed));
    assert_eq!(stdout(&listed), "arp/10.0.0.5 02:00:00:00:00:05\n");
}

#[test]
fn status_without_agents_says_so() {
    let folder = Folder::new("status");
    let output = agent(&["status", "--status-dir", folder.0.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout(&output).starts_with("no agents have reported in"), "{}", stdout(&output));
    let json = agent(&["status", "--json", "--status-dir", folder.0.to_str().unwrap()]);
    assert_eq!(stdout(&json).trim(), "[]");
}

#[test]
fn network_set_and_show_in_flannels_layout() {
    let folder = Folder::new("network");
    let store = folder.store();
    let set = agent(&["network", "set", "--store", &store, "--network", "10.244.0.0/16"]);
    assert!(set.status.success(), "{}", stderr(&set));
    let config: serde_json::Value = serde_json::from_str(&folder.read("config").unwrap()).unwrap();
    assert_eq!(config["Network"], "10.244.0.0/16");
    assert_eq!(config["SubnetLen"], 24);
    assert_eq!(config["Backend"], serde_json::json!({"Type": "vxlan", "VNI": 1, "Port": 8472}));
    // A lease as flannel writes it, and one that is not a lease.
    std::fs::create_dir_all(folder.0.join("subnets")).unwrap();
    let lease =
        r#"{"PublicIP":"192.168.104.2","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0e:00:00:00:00:02"}}"#;
    std::fs::write(folder.0.join("subnets/10.244.5.0-24"), lease).unwrap();
    std::fs::write(folder.0.join("subnets/10.244.6.0-24"), "{}").unwrap();
    let show = agent(&["network", "show", "--store", &store]);
    assert!(show.status.success(), "{}", stderr(&show));
    assert_eq!(
        stdout(&show),
        "network 10.244.0.0/16 subnets /24 from 10.244.1.0 to 10.244.255.0 vni 1 port 8472\n\
         lease 10.244.5.0/24 public-ip 192.168.104.2 vni 1 vtep-mac 0e:00:00:00:00:02\n"
    );
    assert!(stderr(&show).contains("subnets/10.244.6.0-24"), "{}", stderr(&show));
}

#[test]
fn network_settings_that_cannot_work_are_refused() {
    let folder = Folder::new("network-bad");
    let store = folder.store();
    for (args, mentioned) in [
        (vec!["--network", "10.244.0.0/16", "--subnet-len", "16"], "SubnetLen 16"),
        (vec!["--network", "10.244.0.0/16", "--vni", "16777216"], "VNI 16777216"),
        (vec!["--network", "10.244.0.0/16", "--port", "0"], "port 0"),
        (vec!["--network", "10.244.0.1/16"], "host bits set"),
    ] {
        let output = agent(&[&["network", "set", "--store", &store][..], &args].concat());
        assert_eq!(output.status.code(), Some(2), "{args:?}: {}", stderr(&output));
        assert!(stderr(&output).contains(mentioned), "{args:?}: {}", stderr(&output));
    }
    assert_eq!(folder.read("config"), None, "refused settings wrote to the store");
}

#[test]
fn output_json_is_taken_by_every_printing_command_and_failures_follow_it() {
    let folder = Folder::new("json");
    let store = folder.store();
    let published = agent(&endpoint("publish", &store, "10.0.0.2", "02:00:00:00:00:02", "192.168.104.2"));
    assert!(published.status.success(), "{}", stderr(&published));
    let list = agent(&["list", "--store", &store, "-o", "json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&list)).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"arp": {"10.0.0.2": "02:00:00:00:00:02"}, "fdb": {"02:00:00:00:00:02": "192.168.104.2"}})
    );
    let status = agent(&["status", "-o", "json", "--status-dir", folder.0.to_str().unwrap()]);
    assert_eq!(stdout(&status).trim(), "[]");
    assert!(agent(&["network", "set", "--store", &store, "--network", "10.244.0.0/16"]).status.success());
    let show = agent(&["network", "show", "--store", &store, "--output", "json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&show)).unwrap();
    assert_eq!(json["config"]["network"], "10.244.0.0/16");
    assert_eq!(json["leases"], serde_json::json!([]));
    // A bad store URL: exit 2, and the error as JSON where the output would be.
    let bad = agent(&["list", "--store", "etcd://[::1:2379", "-o", "json"]);
    assert_eq!(bad.status.code(), Some(2));
    let json: serde_json::Value = serde_json::from_str(&stdout(&bad)).unwrap();
    assert_eq!(json["error"]["kind"], "invalid");
    assert_eq!(json["error"]["exit_code"], 2);
    assert!(!stderr(&bad).is_empty());
}

#[test]
fn completions_and_man_pages_come_from_the_command_line_definition() {
    let bash = agent(&["completions", "bash"]);
    assert!(bash.status.success());
    for word in ["run", "publish", "withdraw", "network", "--store", "--mode"] {
        assert!(stdout(&bash).contains(word), "bash completion lacks {word}");
    }
    let folder = Folder::new("man");
    let man = agent(&["man", "--dir", folder.0.to_str().unwrap()]);
    assert!(man.status.success(), "{}", stderr(&man));
    let run = std::fs::read_to_string(folder.0.join("vxlan-agent-run.1")).unwrap();
    assert!(run.starts_with(".ie") && run.contains(".TH vxlan-agent-run 1"), "{run}");
    assert!(run.contains("\\-\\-device"), "{run}");
}

#[test]
fn status_shows_every_node_daemon_of_the_folder() {
    let folder = Folder::new("nodes");
    std::fs::create_dir_all(folder.0.join("node")).unwrap();
    for (file, ip, subnet) in
        [("status.json", "192.168.104.2", "10.244.1.0/24"), ("node2.json", "192.168.104.3", "10.244.2.0/24")]
    {
        let status = vxlan_agent::node::report::NodeStatus {
            pid: 1,
            public_ip: ip.into(),
            subnet: Some(subnet.into()),
            ..Default::default()
        };
        std::fs::write(folder.0.join("node").join(file), serde_json::to_vec(&status).unwrap()).unwrap();
    }
    // Not a status file, and a link: both left alone.
    std::fs::write(folder.0.join("node/node3.env"), "FLANNEL_SUBNET=10.244.3.1/24\n").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", folder.0.join("node/evil.json")).unwrap();
    let output = agent(&["status", "--status-dir", folder.0.to_str().unwrap()]);
    assert!(output.status.success(), "{}", stderr(&output));
    let lines: Vec<String> = stdout(&output).lines().filter(|l| l.starts_with("node ")).map(String::from).collect();
    assert_eq!(lines.len(), 2, "{}", stdout(&output));
    assert!(lines[0].starts_with("node 192.168.104.3 pid 1") && lines[0].contains("subnet 10.244.2.0/24"), "{lines:?}");
    assert!(lines[1].starts_with("node 192.168.104.2 pid 1") && lines[1].contains("subnet 10.244.1.0/24"), "{lines:?}");
}
