//! The Vagrantfile: `vagrant validate` (offline, provider blocks ignored: neither
//! VirtualBox nor libvirtd runs here) for every demo and store, and bad choices
//! refused with the variable named. Needs Debian's vagrant (`.ci/run` installs it).

use std::path::Path;
use std::process::{Command, Output};

fn validate(env: &[(&str, &str)]) -> Output {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    // Vagrant's own state goes to a folder of the test, not to ~/.vagrant.d or the repo.
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let home = std::env::temp_dir().join(format!("netlab-vagrant-{}-{call}", std::process::id()));
    std::fs::create_dir_all(&home).unwrap();
    let output = Command::new("vagrant")
        .args(["validate", "--ignore-provider"])
        .current_dir(repo)
        .env("VAGRANT_HOME", &home)
        .env("VAGRANT_DOTFILE_PATH", home.join("dotfile"))
        .env("VAGRANT_CHECKPOINT_DISABLE", "1")
        .envs(env.iter().copied())
        .output()
        .expect("run vagrant (Debian package vagrant; .ci/run installs it)");
    let _ = std::fs::remove_dir_all(&home);
    output
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn every_demo_and_store_validates() {
    let mut choices = Vec::new();
    for demo in ["static", "dynamic", "flannel"] {
        for store in ["dir", "etcd"] {
            choices.push([("NETLAB_DEMO", demo), ("NETLAB_STORE", store), ("NETLAB_LIBVIRT_SYNC", "nfs")]);
        }
    }
    for sync in ["9p", "virtiofs"] {
        choices.push([("NETLAB_DEMO", "dynamic"), ("NETLAB_STORE", "dir"), ("NETLAB_LIBVIRT_SYNC", sync)]);
    }
    for env in choices {
        let output = validate(&env);
        assert!(output.status.success(), "{env:?}: {}", text(&output));
        assert!(text(&output).contains("Vagrantfile validated successfully"), "{}", text(&output));
    }
}

#[test]
fn bad_choices_are_refused_by_name() {
    for (variable, value) in [("NETLAB_DEMO", "part8"), ("NETLAB_STORE", "consul"), ("NETLAB_LIBVIRT_SYNC", "rsync")] {
        let output = validate(&[(variable, value)]);
        assert!(!output.status.success(), "{variable}={value} accepted");
        assert!(text(&output).contains(&format!("{variable}={value}: expected one of")), "{}", text(&output));
    }
}
