//! A shared store folder holds whatever its other users put there. Each test plants
//! something hostile or odd in the folder store of overlay-dynamic and checks that
//! netlab and running agents neither follow it, nor hang on it, nor read it without
//! bound, nor install what no overlay serves. Each test in its own sandbox.

mod support;

use nix::sys::signal::Signal;
use support::overlay::*;
use support::{agent_binary, eventually, Sandbox};

const FOLDER: &str = "/run/netlab/stores/overlay-dynamic";

const WANT1: [&str; 2] = ["fdb 02:42:c0:a8:00:03 dst 192.168.104.3", "neigh 11.11.11.3 lladdr 02:42:c0:a8:00:03"];

fn sh(sandbox: &Sandbox, script: &str) -> String {
    sandbox.ok("sh", &["-c", script])
}

/// Write a key by hand and wait until ov1's agent has installed `neighbour`: the
/// agent has handled every change made before it.
fn marker(sandbox: &Sandbox, n: u8) {
    sh(sandbox, &format!("echo 02:42:c0:a8:01:{n:02x} > {FOLDER}/arp/11.11.12.{n}"));
    sh(sandbox, &format!("echo 192.168.104.3 > {FOLDER}/fdb/02:42:c0:a8:01:{n:02x}"));
    let want = format!("neigh 11.11.12.{n} lladdr 02:42:c0:a8:01:{n:02x}");
    assert!(eventually(10.0, || entries(sandbox, "ov1").contains(&want)), "{:?}", entries(sandbox, "ov1"));
}

#[test]
fn fifo_and_dev_zero_keys_hang_nothing_and_bloat_nothing() {
    let sandbox = Sandbox::new();
    let file = own_agents(&sandbox, "overlay-dynamic.yaml");
    // A FIFO where netlab is about to publish ct2's address: apply replaces it and
    // does not hang on reading it.
    sh(&sandbox, &format!("mkdir -p {FOLDER}/arp {FOLDER}/fdb && mkfifo {FOLDER}/arp/11.11.11.3"));
    let applied =
        sandbox.command("timeout").args(["20", env!("CARGO_BIN_EXE_netlab"), "apply", &file]).output().unwrap();
    assert!(applied.status.success(), "apply: {}", support::text(&applied.stderr));
    assert_eq!(sh(&sandbox, &format!("cat {FOLDER}/arp/11.11.11.3")).trim(), "02:42:c0:a8:00:03");

    // Planted while agents run: a FIFO key, and a key that is a link to /dev/zero.
    sh(&sandbox, &format!("mkfifo {FOLDER}/arp/11.11.11.9 && ln -s /dev/zero {FOLDER}/arp/11.11.11.8"));
    let mut agent1 = agent(&sandbox, "host1", "ov1", DIR_STORE, &["--poll", "0.2"]);
    assert!(eventually(10.0, || entries(&sandbox, "ov1") == WANT1), "{}", agent1.output());
    // Many rescans later it still answers, and its memory stayed small.
    std::thread::sleep(std::time::Duration::from_secs(2));
    marker(&sandbox, 1);
    let rss = Sandbox::rss_kb(agent1.pid());
    assert!(rss > 0 && rss < 64 * 1024, "agent resident memory {rss} kB");
    let output = agent1.output();
    assert!(output.contains("arp/11.11.11.9: a FIFO; refused"), "{output}");
    assert!(output.contains("arp/11.11.11.8: a symbolic link; refused"), "{output}");
    // Each warned about once, not at every rescan.
    assert_eq!(output.matches("arp/11.11.11.9: a FIFO").count(), 1, "{output}");

    // `list` and destroy finish too.
    let list = sandbox.command("timeout").args(["10", &agent_binary(), "list", "--store", DIR_STORE]).output().unwrap();
    assert!(list.status.success(), "{}", support::text(&list.stderr));
    assert!(support::text(&list.stdout).contains("arp/11.11.11.3 02:42:c0:a8:00:03"));
    assert!(agent1.stops_within(Signal::SIGTERM, 5.0), "SIGTERM did not stop the agent");
    let destroyed =
        sandbox.command("timeout").args(["20", env!("CARGO_BIN_EXE_netlab"), "destroy", &file]).output().unwrap();
    assert!(destroyed.status.success(), "destroy: {}", support::text(&destroyed.stderr));
}

#[test]
fn symlinks_in_the_store_are_never_followed() {
    let sandbox = Sandbox::new();
    let file = own_agents(&sandbox, "overlay-dynamic.yaml");
    sandbox.netlab_ok(&["apply", &file]);
    let outside = sandbox.file("outside", "precious\n");
    // A key that is a link to a file outside the store: refused when read, replaced
    // (not written through) when published.
    sh(&sandbox, &format!("ln -sf {outside} {FOLDER}/arp/11.11.11.7"));
    let agent1 = agent(&sandbox, "host1", "ov1", DIR_STORE, &["--poll", "0.2"]);
    assert!(eventually(10.0, || entries(&sandbox, "ov1") == WANT1), "{}", agent1.output());
    assert!(eventually(5.0, || agent1.output().contains("arp/11.11.11.7: a symbolic link; refused")));
    let publish = [
        "publish",
        "--store",
        DIR_STORE,
        "--ip",
        "11.11.11.7",
        "--mac",
        "02:42:c0:a8:00:07",
        "--vtep",
        "192.168.104.3",
    ];
    sandbox.ok(&agent_binary(), &publish);
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "precious\n");
    assert_eq!(sh(&sandbox, &format!("cat {FOLDER}/arp/11.11.11.7")).trim(), "02:42:c0:a8:00:07");

    // arp/ swapped for a link to another folder: writes are refused, naming it, and
    // nothing lands in that folder.
    let elsewhere = sandbox.dir.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    // It holds a key an agent reading through the link would install.
    std::fs::write(elsewhere.join("11.11.11.30"), "02:42:c0:a8:00:30\n").unwrap();
    sh(&sandbox, &format!("rm -r {FOLDER}/arp && ln -s {} {FOLDER}/arp", elsewhere.display()));
    let refused = sandbox.run(&agent_binary(), &publish);
    assert_eq!(refused.status.code(), Some(1));
    let message = support::text(&refused.stderr);
    assert!(message.contains(&format!("{FOLDER}/arp: a symbolic link, not a folder; refused")), "{message}");
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 1, "nothing written there");
    // A new agent names it too, and keeps retrying rather than reading through it.
    let agent2 = agent(&sandbox, "host2", "ov2", DIR_STORE, &[]);
    assert!(eventually(5.0, || agent2.output().contains("arp: a symbolic link, not a folder")), "{}", agent2.output());
    assert!(!entries(&sandbox, "ov2").iter().any(|e| e.contains("11.11.11.30")), "{:?}", entries(&sandbox, "ov2"));
}

#[test]
fn hand_written_aliases_work_with_inotify_alone() {
    let sandbox = Sandbox::new();
    sandbox.netlab_ok(&["apply", &own_agents(&sandbox, "overlay-dynamic.yaml")]);
    // No rescans: only inotify tells the agent.
    let agent1 = agent(&sandbox, "host1", "ov1", DIR_STORE, &["--poll", "0"]);
    assert!(eventually(10.0, || entries(&sandbox, "ov1") == WANT1), "{}", agent1.output());
    // Upper case, as people type MACs, and the VMware branch's dashes.
    sh(&sandbox, &format!("echo 02:42:C0:A8:00:09 > {FOLDER}/arp/11.11.11.9"));
    sh(&sandbox, &format!("echo 192.168.104.3 > {FOLDER}/fdb/02-42-C0-A8-00-09"));
    let want = ["fdb 02:42:c0:a8:00:09 dst 192.168.104.3", "neigh 11.11.11.9 lladdr 02:42:c0:a8:00:09"];
    assert!(
        eventually(5.0, || want.iter().all(|w| entries(&sandbox, "ov1").contains(&w.to_string()))),
        "{:?}\n{}",
        entries(&sandbox, "ov1"),
        agent1.output()
    );
    // The canonical key appears; removing the alias then keeps the entry.
    sh(&sandbox, &format!("echo 192.168.104.3 > {FOLDER}/fdb/02:42:c0:a8:00:09"));
    sh(&sandbox, &format!("rm {FOLDER}/fdb/02-42-C0-A8-00-09"));
    marker(&sandbox, 2);
    assert!(entries(&sandbox, "ov1").contains(&want[0].to_string()), "{:?}", entries(&sandbox, "ov1"));
    // Removing the canonical key, with no alias left, removes it.
    sh(&sandbox, &format!("rm {FOLDER}/fdb/02:42:c0:a8:00:09"));
    assert!(eventually(5.0, || !entries(&sandbox, "ov1").contains(&want[0].to_string())));
}

#[test]
fn garbage_store_entries_are_never_installed() {
    let sandbox = Sandbox::new();
    sandbox.netlab_ok(&["apply", &own_agents(&sandbox, "overlay-dynamic.yaml")]);
    let agent1 = agent(&sandbox, "host1", "ov1", DIR_STORE, &[]);
    assert!(eventually(10.0, || entries(&sandbox, "ov1") == WANT1), "{}", agent1.output());
    let garbage = ["0.0.0.0", "127.0.0.1", "255.255.255.255", "224.0.0.1", "169.254.0.5", "ff02::1", "fe80::5", "::1"];
    for (i, ip) in garbage.iter().enumerate() {
        sh(&sandbox, &format!("echo 02:42:c0:a8:02:{i:02x} > {FOLDER}/arp/{ip}"));
        sh(&sandbox, &format!("echo 192.168.104.3 > {FOLDER}/fdb/02:42:c0:a8:02:{i:02x}"));
    }
    // MACs behind VTEPs no unicast entry can point at.
    sh(&sandbox, &format!("echo 127.0.0.1 > {FOLDER}/fdb/02:42:c0:a8:03:01"));
    sh(&sandbox, &format!("echo 0.0.0.0 > {FOLDER}/fdb/02:42:c0:a8:03:02"));
    // Values that are not values at all.
    sh(&sandbox, &format!("echo not-a-mac > {FOLDER}/arp/11.11.11.20"));
    sh(&sandbox, &format!("head -c 10000 /dev/zero > {FOLDER}/arp/11.11.11.21"));
    marker(&sandbox, 3);
    let installed = entries(&sandbox, "ov1");
    for ip in garbage {
        assert!(!installed.iter().any(|e| e.starts_with(&format!("neigh {ip} "))), "{ip} installed: {installed:?}");
    }
    assert!(!installed.iter().any(|e| e.contains("02:42:c0:a8:03:0")), "{installed:?}");
    assert!(!installed.iter().any(|e| e.contains("11.11.11.2")), "{installed:?}");
    // The FDB entries of garbage addresses' MACs are fine to have: the MACs are
    // unicast and their VTEP is real; the addresses are what an overlay never serves.
    let output = agent1.output();
    assert!(output.contains("arp/11.11.11.21: value of") && output.contains("over the limit of 4096"), "{output}");
}
