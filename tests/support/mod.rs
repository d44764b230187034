//! A sandbox per privileged test: a holder process in a fresh network and mount
//! namespace, with tmpfs over /run/netns, /run/netlab and /run/vxlan-agent and sysfs
//! mounted again.
//! Every command of the test runs inside it through nsenter; nothing reaches the
//! machine's own network. Dropping the sandbox (pass or fail) kills the holder, and
//! with it the namespaces the test made.

#![allow(dead_code)]

pub mod flannel;
pub mod overlay;
pub mod podman;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub struct Sandbox {
    holder: Child,
    pub dir: PathBuf,
}

const SETUP: &str = "set -e
mkdir -p /run/netns /run/netlab /run/vxlan-agent
mount -t tmpfs netlab-test /run/netns
mount -t tmpfs netlab-test /run/netlab
mount -t tmpfs netlab-test /run/vxlan-agent
mount -t sysfs netlab-test /sys
ip link set lo up
echo ready
exec sleep 600";

impl Sandbox {
    pub fn new() -> Sandbox {
        assert!(nix::unistd::geteuid().is_root(), "privileged tests need root: run them as root (see README)");
        let mut holder = Command::new("unshare")
            .args(["--net", "--mount", "--propagation", "private", "--", "sh", "-c", SETUP])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start sandbox holder (unshare from util-linux)");
        let mut ready = String::new();
        use std::io::BufRead;
        std::io::BufReader::new(holder.stdout.take().unwrap()).read_line(&mut ready).unwrap();
        assert_eq!(ready.trim(), "ready", "sandbox setup failed");
        let dir = std::env::temp_dir().join(format!("netlab-test-{}-{}", std::process::id(), holder.id()));
        std::fs::create_dir_all(&dir).unwrap();
        Sandbox { holder, dir }
    }

    /// Start a long-running program inside namespace `ns` of the sandbox (or its own
    /// namespace when `ns` is empty), its output going to a log file. Dropping the
    /// returned process kills it.
    pub fn spawn(&self, ns: &str, program: &str, args: &[&str]) -> Process {
        let name = Path::new(program).file_name().unwrap().to_string_lossy().into_owned();
        static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let number = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let log = self.dir.join(format!("{name}-{ns}-{number}.log"));
        let output = std::fs::File::create(&log).unwrap();
        let mut command = if ns.is_empty() {
            self.command(program)
        } else {
            let mut command = self.command("ip");
            command.args(["netns", "exec", ns, program]);
            command
        };
        // nsenter and `ip netns exec` exec the program: the child's pid is the program's.
        let child = command
            .args(args)
            .stdin(Stdio::null())
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .spawn()
            .expect("start program in sandbox");
        Process { child: Some(child), log }
    }

    /// Run `work` on a thread inside the sandbox's network namespace: the sockets it
    /// opens (to an etcd in the sandbox, say) live there.
    pub fn in_net<T: Send>(&self, work: impl FnOnce() -> T + Send) -> T {
        let path = format!("/proc/{}/ns/net", self.holder.id());
        std::thread::scope(|scope| {
            scope
                .spawn(move || {
                    let namespace = std::fs::File::open(&path).expect("open the sandbox's namespace");
                    nix::sched::setns(namespace, nix::sched::CloneFlags::CLONE_NEWNET).expect("enter the sandbox");
                    work()
                })
                .join()
                .expect("work in the sandbox")
        })
    }

    /// The resident memory of a process of the sandbox, in kB.
    pub fn rss_kb(pid: u32) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    }

    /// A command that runs inside the sandbox.
    pub fn command(&self, program: &str) -> Command {
        let mut command = Command::new("nsenter");
        command.args(["--target", &self.holder.id().to_string(), "--net", "--mount", "--", program]);
        command
    }

    pub fn run(&self, program: &str, args: &[&str]) -> Output {
        self.command(program).args(args).output().expect("run in sandbox")
    }

    /// Run and require success; returns stdout.
    pub fn ok(&self, program: &str, args: &[&str]) -> String {
        let output = self.run(program, args);
        assert!(output.status.success(), "{program} {args:?} failed: {}{}", text(&output.stdout), text(&output.stderr));
        text(&output.stdout)
    }

    pub fn netlab(&self, args: &[&str]) -> Output {
        self.run(env!("CARGO_BIN_EXE_netlab"), args)
    }

    pub fn netlab_ok(&self, args: &[&str]) -> String {
        self.ok(env!("CARGO_BIN_EXE_netlab"), args)
    }

    /// Write a file for this test and return its path.
    pub fn file(&self, name: &str, contents: &str) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path.display().to_string()
    }

    /// Everything a lab could leave behind, in a comparable form.
    pub fn snapshot(&self) -> Snapshot {
        let namespaces = self.ok("ls", &["-1", "/run/netns"]);
        let links = self.ok("ip", &["-o", "link", "show"]);
        let addresses = self.ok("ip", &["-o", "addr", "show"]);
        let routes = self.ok("ip", &["route", "show", "table", "all"]);
        let sysctls = self.ok("sysctl", &["-n", "net.ipv4.ip_forward", "net.ipv6.conf.default.addr_gen_mode"]);
        let records = self
            .ok("ls", &["-1", "/run/netlab"])
            .lines()
            // Lock files stay, as does the folder of the labs' overlay stores (shared
            // with whoever else uses those stores).
            .filter(|l| !l.ends_with(".lock") && *l != "stores")
            .collect::<Vec<_>>()
            .join("\n");
        Snapshot { namespaces, links: strip_stats(&links), addresses, routes, sysctls, records }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.kill_detached();
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Sandbox {
    /// Processes a test made that left its process tree: the supervisor `netlab apply`
    /// starts in a session of its own, and the agents it (or a `plan --output sh`
    /// script) runs. A test that fails before its destroy would leave them running on
    /// the machine; their pids are in the files they keep in the sandbox's /run.
    fn kill_detached(&self) {
        let root = PathBuf::from(format!("/proc/{}/root/run", self.holder.id()));
        let mut files = Vec::new();
        for dir in ["netlab", "vxlan-agent", "vxlan-agent/node"] {
            let Ok(entries) = std::fs::read_dir(root.join(dir)) else { continue };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    files.extend(std::fs::read_dir(&path).into_iter().flatten().flatten().map(|e| e.path()));
                } else {
                    files.push(path);
                }
            }
        }
        let mut pids: Vec<u32> = Vec::new();
        for file in files {
            let Ok(text) = std::fs::read_to_string(&file) else { continue };
            if file.extension().is_some_and(|e| e == "lock") {
                pids.extend(text.trim().parse::<u32>().ok());
            }
            for (at, _) in text.match_indices("\"pid\":") {
                let digits: String = text[at + 6..].trim_start().chars().take_while(char::is_ascii_digit).collect();
                pids.extend(digits.parse::<u32>().ok());
            }
        }
        // Supervisors first, so that none starts an agent again.
        let command = |pid: u32| std::fs::read(format!("/proc/{pid}/cmdline")).map(|c| text(&c)).unwrap_or_default();
        pids.sort_unstable();
        pids.dedup();
        pids.sort_by_key(|pid| !command(*pid).contains("supervise"));
        for pid in pids {
            let line = command(pid);
            if line.contains("supervise") || line.contains("vxlan-agent") {
                let _ =
                    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
            }
        }
    }
}

/// A program started by `Sandbox::spawn`: killed (SIGKILL) when dropped, pass or fail.
pub struct Process {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Process {
    /// Send a signal and wait for the process to end; its exit status.
    pub fn stop(&mut self, signal: nix::sys::signal::Signal) -> std::process::ExitStatus {
        self.signal(signal);
        self.child.take().expect("running").wait().unwrap()
    }

    /// Send a signal (SIGSTOP, SIGCONT...) and go on.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let child = self.child.as_ref().expect("running");
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id() as i32), signal).unwrap();
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Send a signal and wait at most `seconds` for the process to end: whether it did.
    pub fn stops_within(&mut self, signal: nix::sys::signal::Signal, seconds: f64) -> bool {
        self.signal(signal);
        let child = self.child.as_mut().expect("running");
        eventually(seconds, || child.try_wait().unwrap().is_some())
    }

    pub fn running(&mut self) -> bool {
        self.child.as_mut().is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Wait up to `seconds` for `condition`, checking every 20 ms; whether it came true.
pub fn eventually(seconds: f64, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs_f64(seconds);
    loop {
        if condition() {
            return true;
        }
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub namespaces: String,
    pub links: String,
    pub addresses: String,
    pub routes: String,
    pub sysctls: String,
    pub records: String,
}

/// Link lines without what changes by itself (the operational state).
fn strip_stats(links: &str) -> String {
    links
        .lines()
        .map(|l| {
            let words: Vec<&str> = l.split("\\").next().unwrap_or(l).split_whitespace().collect();
            let mut kept = Vec::new();
            let mut skip = false;
            for word in words {
                if skip {
                    skip = false;
                } else if word == "state" {
                    skip = true;
                } else {
                    kept.push(word);
                }
            }
            kept.join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// nftables and iptables as `nft list ruleset` and `iptables-save` show them.
pub fn firewall(sandbox: &Sandbox) -> (String, String) {
    let nft = sandbox.ok("nft", &["list", "ruleset"]);
    (nft, iptables_rules(&sandbox.ok("iptables-save", &[])))
}

/// iptables-save output without comments and chain counters (traffic moves those).
pub fn iptables_rules(saved: &str) -> String {
    saved
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| match (l.starts_with(':'), l.rfind(" [")) {
            (true, Some(cut)) => &l[..cut],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn topology(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies").join(name).display().to_string()
}

/// The vxlan-agent binary, built beside netlab's by `cargo test --workspace`: cargo builds a
/// package's binaries for its integration tests, and vxlan-agent/tests/cli.rs is one.
pub fn agent_binary() -> String {
    let path = Path::new(env!("CARGO_BIN_EXE_netlab")).with_file_name("vxlan-agent");
    assert!(path.exists(), "{} is missing: run the tests with `cargo test --workspace`", path.display());
    path.display().to_string()
}

/// The `netlab-cni` plugin binary, built beside netlab by `cargo test --workspace`.
pub fn cni_binary() -> String {
    let path = Path::new(env!("CARGO_BIN_EXE_netlab")).with_file_name("netlab-cni");
    assert!(path.exists(), "{} is missing: run the tests with `cargo test --workspace`", path.display());
    path.display().to_string()
}

/// A CA, a server certificate for etcd (valid for 127.0.0.1 and 192.168.104.1) and a
/// client certificate, made with openssl for one test (EC P-256, valid one day).
pub struct Certificates {
    pub ca: String,
    pub server_cert: String,
    pub server_key: String,
    pub client_cert: String,
    pub client_key: String,
}

impl Certificates {
    pub fn make(dir: &Path) -> Certificates {
        std::fs::create_dir_all(dir).unwrap();
        let path = |name: &str| dir.join(name).display().to_string();
        let openssl = |args: &[&str]| {
            let output = Command::new("openssl").args(args).output().expect("openssl (apt install openssl)");
            assert!(output.status.success(), "openssl {args:?}: {}", text(&output.stderr));
        };
        let key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        let (ca, ca_key) = (path("ca.pem"), path("ca.key"));
        openssl(
            &[
                &["req", "-x509"][..],
                &key,
                &["-keyout", &ca_key, "-out", &ca, "-subj", "/CN=netlab test CA", "-days", "1"],
            ]
            .concat(),
        );
        let sign = |name: &str, extensions: &str| -> (String, String) {
            let (cert, key_file, request, ext) = (
                path(&format!("{name}.pem")),
                path(&format!("{name}.key")),
                path(&format!("{name}.csr")),
                path(&format!("{name}.ext")),
            );
            std::fs::write(&ext, extensions).unwrap();
            openssl(
                &[&["req"][..], &key, &["-keyout", &key_file, "-out", &request, "-subj", &format!("/CN={name}")]]
                    .concat(),
            );
            openssl(&[
                "x509",
                "-req",
                "-in",
                &request,
                "-CA",
                &ca,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-out",
                &cert,
                "-days",
                "1",
                "-extfile",
                &ext,
            ]);
            (cert, key_file)
        };
        let (server_cert, server_key) =
            sign("etcd", "subjectAltName=IP:127.0.0.1,IP:192.168.104.1\nextendedKeyUsage=serverAuth\n");
        let (client_cert, client_key) = sign("client", "extendedKeyUsage=clientAuth\n");
        Certificates { ca, server_cert, server_key, client_cert, client_key }
    }
}
