//! A sandbox per privileged test: a holder process in a fresh network and mount
//! namespace, with tmpfs over /run/netns and /run/netlab and sysfs mounted again.
//! Every command of the test runs inside it through nsenter; nothing reaches the
//! machine's own network. Dropping the sandbox (pass or fail) kills the holder, and
//! with it the namespaces the test made.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub struct Sandbox {
    holder: Child,
    pub dir: PathBuf,
}

const SETUP: &str = "set -e
mkdir -p /run/netns /run/netlab
mount -t tmpfs netlab-test /run/netns
mount -t tmpfs netlab-test /run/netlab
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
            .filter(|l| !l.ends_with(".lock"))
            .collect::<Vec<_>>()
            .join("\n");
        Snapshot { namespaces, links: strip_stats(&links), addresses, routes, sysctls, records }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
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

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

pub fn topology(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies").join(name).display().to_string()
}
