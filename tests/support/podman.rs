//! podman with its CNI backend inside the sandbox (see tests/podman.rs).
//!
//! A `PodmanNode` is a "simulated node" for podman: a holder process (catatonit, the
//! init of a fresh pid namespace) that has joined one network namespace of the
//! sandbox (made by `netlab apply`) and keeps a private mount namespace with its own
//! tmpfs over /run, /var/lib and /var/tmp: podman's storage and run folders, the CNI
//! cache and plugin data (/var/lib/cni), the network configs and the subnet file
//! (/run/flannel) of that node are its own and vanish with it. Every command on the
//! node runs with `nsenter` into the holder's network, mount and pid namespaces, so
//! conmon, the containers and anything else podman starts live in the holder's pid
//! namespace: dropping the node (pass or fail) kills the holder by pid, and the kernel
//! kills every process of that namespace with it. Nothing reads or writes the
//! machine's own /etc/containers, /var/lib/containers, /etc/cni/net.d or network.
//!
//! Podman reads only the files named here: `CONTAINERS_CONF` (CNI backend, cgroups
//! disabled, lowered ulimits, plugin and config folders), `CONTAINERS_STORAGE_CONF`
//! (overlay on the node's tmpfs) and `CONTAINERS_REGISTRIES_CONF` (no registry). The
//! image is `podman import`ed from a tar of busybox-static; no registry is ever asked.

#![allow(dead_code)]

use super::{text, Sandbox};
use serde_json::{json, Value};
use std::io::BufRead;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

/// The image every node has (imported by `PodmanNode::new`): busybox-static only.
pub const IMAGE: &str = "localhost/netlab-busybox";

/// The node's own folder for podman's configuration and the CNI plugin folder.
const CONF_DIR: &str = "/run/netlab-podman";
/// The CNI network configs (`network_config_dir`).
pub const NET_DIR: &str = "/run/netlab-podman/net.d";
/// The reference plugins of Debian's containernetworking-plugins (bridge, host-local,
/// portmap...).
pub const REFERENCE_PLUGINS: &str = "/usr/lib/cni";

/// Inside the holder, already in the node's network namespace and in a fresh mount and
/// pid namespace (it is pid 1 there).
/// - sysfs again, for this network namespace; /sys/fs/cgroup then holds nothing, and
///   crun wants a cgroup file system there (it refuses the sysfs folder, and refuses
///   the machine's hybrid layout): an empty tmpfs reads as cgroup v1 without
///   controllers, and with `cgroups = "disabled"` nothing looks further.
/// - tmpfs over /run, /var/lib and /var/tmp: /var/lib/containers and /var/lib/cni need
///   not exist on the machine (and are never made there); nothing under the machine's
///   /var/lib is needed by podman, conmon, crun or the plugins.
/// - catatonit as pid 1 reaps what conmon leaves (its double fork): a zombie conmon
///   would still look alive to podman.
const HOLDER_SETUP: &str = "set -e
mount -t sysfs netlab-podman /sys
mount -t tmpfs netlab-podman /sys/fs/cgroup
mount -t tmpfs netlab-podman /run
mount -t tmpfs netlab-podman /var/lib
mount -t tmpfs netlab-podman /var/tmp
mkdir -p /run/netlab-podman/net.d /run/netlab-podman/cni-bin /run/netlab-podman/tmp
ip link set lo up
echo ready
exec catatonit -P";

fn containers_conf(cni_bin: &str) -> String {
    format!(
        r#"# netlab's podman tests: the only containers.conf podman reads (CONTAINERS_CONF).
[containers]
# No cgroup: the holder has none to give (and crun refuses the machine's hybrid layout).
cgroups = "disabled"
# podman's default (1048576) cannot be set here: "operation not permitted".
default_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]
# No journald in the sandbox.
log_driver = "k8s-file"

[network]
network_backend = "cni"
cni_plugin_dirs = ["{cni_bin}", "{REFERENCE_PLUGINS}"]
network_config_dir = "{NET_DIR}"

[engine]
runtime = "crun"
# An image that is not there is an error, not a pull (it would ask "localhost" for it,
# three times with a pause in between).
pull_policy = "never"
events_logger = "file"
events_logfile_path = "{CONF_DIR}/events.log"
tmp_dir = "/run/libpod"
"#
    )
}

const STORAGE_CONF: &str = r#"# netlab's podman tests: the node's storage, on its own tmpfs.
[storage]
driver = "overlay"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"
"#;

const REGISTRIES_CONF: &str = r#"# netlab's podman tests: no registry, ever.
unqualified-search-registries = []
"#;

/// A simulated node with podman: see the module's documentation.
pub struct PodmanNode<'a> {
    sandbox: &'a Sandbox,
    /// The network namespace it joined (its name under /run/netns in the sandbox).
    pub name: String,
    /// `unshare`, the holder's parent: when it dies, the kernel kills the holder.
    unshare: Option<Child>,
    /// The holder (pid 1 of the node's pid namespace), by its pid in ours.
    holder: u32,
}

impl<'a> PodmanNode<'a> {
    /// A node for network namespace `netns` of the sandbox (made by `netlab apply`),
    /// with podman configured and the busybox image (`IMAGE`) imported.
    pub fn new(sandbox: &'a Sandbox, netns: &str) -> PodmanNode<'a> {
        let mut command = sandbox.command("nsenter");
        command.args([&format!("--net=/run/netns/{netns}"), "--"]).args([
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--pid",
            "--fork",
            "--kill-child",
            "--mount-proc",
            "--",
            "sh",
            "-c",
            HOLDER_SETUP,
        ]);
        // nsenter (without --pid) and unshare exec: this child is unshare, which forks
        // the holder and kills it when it dies itself (--kill-child). Should the test
        // process die without dropping the node, unshare dies with the thread that
        // started it (PR_SET_PDEATHSIG), and the holder's whole pid namespace with it:
        // so a node must be made on the thread that uses it (the test's own).
        // SAFETY: between fork and exec the closure only makes one system call (prctl).
        unsafe {
            command.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL).map_err(std::io::Error::from)
            });
        }
        let mut unshare = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start the node's holder (nsenter and unshare from util-linux)");
        let mut ready = String::new();
        std::io::BufReader::new(unshare.stdout.take().unwrap()).read_line(&mut ready).unwrap();
        let pid = unshare.id();
        let mut node = PodmanNode { sandbox, name: netns.to_string(), unshare: Some(unshare), holder: 0 };
        assert_eq!(ready.trim(), "ready", "setting up podman node {netns} failed (does its namespace exist?)");
        let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children")).unwrap();
        node.holder = children.split_whitespace().next().and_then(|p| p.parse().ok()).expect("the holder's pid");

        // The folder of plugins: netlab-cni (a link, even before it is built) and the
        // reference plugins after it.
        let cni_bin = format!("{CONF_DIR}/cni-bin");
        let plugin = Path::new(env!("CARGO_BIN_EXE_netlab")).with_file_name("netlab-cni");
        std::os::unix::fs::symlink(&plugin, node.path(&format!("{cni_bin}/netlab-cni"))).unwrap();
        node.write_file(&format!("{CONF_DIR}/containers.conf"), &containers_conf(&cni_bin));
        node.write_file(&format!("{CONF_DIR}/storage.conf"), STORAGE_CONF);
        node.write_file(&format!("{CONF_DIR}/registries.conf"), REGISTRIES_CONF);

        let image = busybox_image(sandbox);
        node.podman_ok(&["import", "--quiet", image.to_str().unwrap(), IMAGE]);
        node
    }

    /// The holder's pid (pid 1 of the node's pid namespace), in the test's namespace.
    pub fn holder_pid(&self) -> u32 {
        self.holder
    }

    /// Every process of the node, by pid in the test's namespace: the holder and all
    /// its descendants (whatever podman leaves running, conmon and the containers'
    /// processes included, is reparented to the holder, the init of their namespace).
    pub fn processes(&self) -> Vec<u32> {
        let mut parents = Vec::new();
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
            // "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses.
            let ppid: Option<u32> =
                stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse().ok());
            if let Some(ppid) = ppid {
                parents.push((pid, ppid));
            }
        }
        let mut found = vec![self.holder];
        let mut next = 0;
        while next < found.len() {
            let parent = found[next];
            found.extend(parents.iter().filter(|(_, ppid)| *ppid == parent).map(|(pid, _)| *pid));
            next += 1;
        }
        found
    }

    /// Where `path` of the node's mount namespace is, seen from the test's.
    pub fn path(&self, path: &str) -> PathBuf {
        assert!(path.starts_with('/'), "an absolute path in the node: {path}");
        PathBuf::from(format!("/proc/{}/root{path}", self.holder))
    }

    /// Write a file in the node's mount namespace (its folders made as needed).
    pub fn write_file(&self, path: &str, contents: &str) {
        let path = self.path(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// A file of the node's mount namespace, if it exists.
    pub fn read_file(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.path(path)).ok()
    }

    /// Every file under `dir` of the node (recursively), with its contents, sorted by
    /// path; empty if the folder does not exist.
    pub fn files_under(&self, dir: &str) -> Vec<(String, String)> {
        fn walk(root: &Path, dir: &Path, found: &mut Vec<(String, String)>) {
            let Ok(entries) = std::fs::read_dir(dir) else { return };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(root, &path, found);
                } else {
                    let name = path.strip_prefix(root).unwrap().display().to_string();
                    found.push((name, std::fs::read_to_string(&path).unwrap_or_default()));
                }
            }
        }
        let root = self.path(dir);
        let mut found = Vec::new();
        walk(&root, &root, &mut found);
        found.sort();
        found
    }

    /// A network config for podman: `{"cniVersion": "1.0.0", "name": NAME, "plugins": [...]}`
    /// (podman 4.3 speaks CNI up to 1.0.0), in the node's config folder.
    pub fn cni_conflist(&self, name: &str, plugins: &[Value]) {
        let conflist = json!({"cniVersion": "1.0.0", "name": name, "plugins": plugins});
        self.write_file(&format!("{NET_DIR}/{name}.conflist"), &serde_json::to_string_pretty(&conflist).unwrap());
    }

    /// A command in the node: its network, mount and pid namespaces, with podman's
    /// environment. (nsenter forks for the pid namespace and passes the exit code on.)
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("nsenter");
        command
            .args(["--target", &self.holder.to_string(), "--net", "--mount", "--pid", "--", program])
            .env("CONTAINERS_CONF", format!("{CONF_DIR}/containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", format!("{CONF_DIR}/storage.conf"))
            .env("CONTAINERS_REGISTRIES_CONF", format!("{CONF_DIR}/registries.conf"))
            .env("TMPDIR", format!("{CONF_DIR}/tmp"))
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("CONTAINER_HOST")
            .stdin(Stdio::null());
        command
    }

    /// Run a program in the node.
    pub fn exec(&self, program: &str, args: &[&str]) -> Output {
        self.command(program).args(args).output().expect("run in the podman node")
    }

    /// Run a program in the node and require success; its stdout.
    pub fn exec_ok(&self, program: &str, args: &[&str]) -> String {
        let output = self.exec(program, args);
        assert!(
            output.status.success(),
            "{program} {args:?} on {} failed: {}{}",
            self.name,
            text(&output.stdout),
            text(&output.stderr)
        );
        text(&output.stdout)
    }

    pub fn podman(&self, args: &[&str]) -> Output {
        self.exec("podman", args)
    }

    /// podman, required to succeed; its stdout, trimmed.
    pub fn podman_ok(&self, args: &[&str]) -> String {
        self.exec_ok("podman", args).trim().to_string()
    }

    /// `podman run -d --name NAME --network NETWORK [extra...] IMAGE command...`: the
    /// container's id.
    pub fn run_detached(&self, name: &str, network: &str, extra: &[&str], command: &[&str]) -> String {
        let mut args = vec!["run", "-d", "--name", name, "--network", network];
        args.extend_from_slice(extra);
        args.push(IMAGE);
        args.extend_from_slice(command);
        self.podman_ok(&args)
    }

    /// A container's id.
    pub fn container_id(&self, container: &str) -> String {
        self.podman_ok(&["inspect", "--format", "{{.Id}}", container])
    }

    /// A container's IPv4 address on a network, as podman reports it.
    pub fn container_ip(&self, container: &str, network: &str) -> String {
        let format = format!("{{{{(index .NetworkSettings.Networks \"{network}\").IPAddress}}}}");
        let address = self.podman_ok(&["inspect", "--format", &format, container]);
        assert!(address.parse::<std::net::Ipv4Addr>().is_ok(), "{container} has no address on {network}: {address:?}");
        address
    }

    /// One ping (2 s to answer) from inside a container: whether it was answered.
    pub fn ping_from(&self, container: &str, address: &str) -> bool {
        self.podman(&["exec", container, "ping", "-c1", "-W2", address]).status.success()
    }

    /// The interfaces (`ip -o link`) of the node's network namespace.
    pub fn links(&self) -> String {
        self.exec_ok("ip", &["-o", "link", "show"])
    }
}

impl Drop for PodmanNode<'_> {
    fn drop(&mut self) {
        // The holder first, by pid: the kernel then kills every process of its pid
        // namespace (conmon, containers, a podman that hangs). Then its parent.
        if self.holder != 0 {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.holder as i32), nix::sys::signal::SIGKILL);
        }
        if let Some(mut unshare) = self.unshare.take() {
            let _ = unshare.kill();
            let _ = unshare.wait();
        }
    }
}

/// The tar of a root holding only busybox-static (/bin/busybox) and a link per applet
/// (sh, ping, nc, ip, sleep, httpd, wget...), made once per sandbox in its folder.
pub fn busybox_image(sandbox: &Sandbox) -> PathBuf {
    let tar = sandbox.dir.join("busybox-root.tar");
    if tar.exists() {
        return tar;
    }
    let busybox = Path::new("/bin/busybox");
    assert!(busybox.exists(), "/bin/busybox is missing: apt install busybox-static");
    let root = sandbox.dir.join("busybox-root");
    for dir in ["bin", "etc", "proc", "sys", "dev", "tmp", "root", "run", "var/tmp"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
    let list = Command::new(busybox).arg("--list").output().expect("busybox --list");
    for applet in text(&list.stdout).lines().filter(|a| !a.is_empty() && *a != "busybox") {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    assert!(root.join("bin/ping").exists() && root.join("bin/httpd").exists(), "busybox lacks ping or httpd");
    let partial = sandbox.dir.join("busybox-root.tar.partial");
    let output = Command::new("tar")
        .args(["--numeric-owner", "--owner=0", "--group=0", "-C"])
        .arg(&root)
        .arg("-cf")
        .arg(&partial)
        .arg(".")
        .output()
        .expect("tar");
    assert!(output.status.success(), "tar: {}", text(&output.stderr));
    std::fs::rename(&partial, &tar).unwrap();
    tar
}

/// The reference `bridge` plugin with `host-local` addresses from `subnet` (gateway:
/// its first address), as the first plugin of a conflist.
pub fn reference_bridge(bridge: &str, subnet: &str) -> Value {
    json!({
        "type": "bridge",
        "bridge": bridge,
        "isGateway": true,
        "ipMasq": false,
        "ipam": {
            "type": "host-local",
            "ranges": [[{"subnet": subnet}]],
            "routes": [{"dst": "0.0.0.0/0"}],
        },
    })
}

/// The reference `portmap` plugin, chained after the main one (podman hands it the
/// `-p` mappings because it declares the capability).
pub fn portmap() -> Value {
    json!({"type": "portmap", "capabilities": {"portMappings": true}})
}

/// netlab-cni with `extra` config keys (subnetFile, bridge, isGateway, ipMasq, mtu,
/// dataDir) merged in.
pub fn netlab_cni(extra: Value) -> Value {
    let mut plugin = json!({"type": "netlab-cni"});
    if let Value::Object(keys) = extra {
        plugin.as_object_mut().unwrap().extend(keys);
    }
    plugin
}

/// flannel's subnet file, as the node daemon writes it.
pub fn subnet_env(network: &str, subnet: &str, mtu: u32, ip_masq: bool) -> String {
    format!("FLANNEL_NETWORK={network}\nFLANNEL_SUBNET={subnet}\nFLANNEL_MTU={mtu}\nFLANNEL_IPMASQ={ip_masq}\n")
}
