//! Privileged tests of link shaping (`rate`, `burst`, `latency` on an interface): the
//! rate is measured as real TCP throughput between two namespaces of the lab; a
//! changed rate changes the qdisc in place; a qdisc changed by hand is drift that
//! status shows and apply repairs; dropping the fields gives the kernel's default
//! back; the `tc` commands of `--output sh` make what status reads as in sync. And
//! on this machine kind, which lacks netem, `delay` is refused at validation.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use support::{eventually, text, Process, Sandbox};

const LAB: &str = "name: shaping
nodes:
  RED:
    interfaces:
      eth0:
        addresses: [10.9.0.1/24]
        SHAPING
  BLUE:
    interfaces:
      eth0:
        addresses: [10.9.0.2/24]
links:
  - endpoints: [RED:eth0, BLUE:eth0]
";

/// The lab with these fields on RED:eth0 (none: an empty line).
fn lab(sandbox: &Sandbox, fields: &str) -> String {
    sandbox.file("lab.yaml", &LAB.replace("SHAPING", fields))
}

/// A network namespace of the sandbox, open to enter from a test thread: a process
/// sleeps in it (the namespace's file is in the sandbox's mount namespace, which the
/// test's threads do not see) and is killed with the handle.
struct NodeNet {
    _holder: Process,
    file: std::fs::File,
}

fn node_net(sandbox: &Sandbox, node: &str) -> NodeNet {
    let holder = sandbox.spawn(node, "sleep", &["600"]);
    let pid = holder.pid();
    // `ip netns exec` enters the namespace, then becomes `sleep`.
    assert!(eventually(5.0, || std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|comm| comm.trim() == "sleep")));
    let file = std::fs::File::open(format!("/proc/{pid}/ns/net")).expect("open the node's namespace");
    NodeNet { _holder: holder, file }
}

/// Send `bytes` over TCP from RED to BLUE's 10.9.0.2 and return the rate BLUE received
/// them at, in bits per second: from the first byte to the last, as an iperf would.
fn throughput(red: &NodeNet, blue: &NodeNet, bytes: usize) -> f64 {
    let enter = |net: &NodeNet| {
        nix::sched::setns(&net.file, nix::sched::CloneFlags::CLONE_NEWNET).expect("enter the node's namespace")
    };
    let address: SocketAddr = "10.9.0.2:5201".parse().unwrap();
    std::thread::scope(|scope| {
        let (ready, listening) = std::sync::mpsc::channel();
        let receiver = scope.spawn(move || {
            enter(blue);
            let listener = TcpListener::bind(address).expect("listen in BLUE");
            ready.send(()).unwrap();
            let (mut stream, _) = listener.accept().expect("accept in BLUE");
            stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
            let mut buffer = vec![0u8; 64 * 1024];
            // The clock starts at the first bytes: what follows them came at the link's pace.
            let first = stream.read(&mut buffer).expect("first bytes in BLUE");
            let started = Instant::now();
            let mut received = first;
            loop {
                match stream.read(&mut buffer).expect("read in BLUE") {
                    0 => break,
                    n => received += n,
                }
            }
            let elapsed = started.elapsed().as_secs_f64();
            assert_eq!(received, bytes, "BLUE received everything");
            (received - first) as f64 * 8.0 / elapsed
        });
        let sender = scope.spawn(move || {
            enter(red);
            listening.recv_timeout(Duration::from_secs(10)).expect("BLUE listens");
            let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(10)).expect("connect from RED");
            stream.set_write_timeout(Some(Duration::from_secs(30))).unwrap();
            stream.write_all(&vec![7u8; bytes]).expect("send from RED");
            stream.shutdown(std::net::Shutdown::Write).unwrap();
        });
        sender.join().expect("sender");
        receiver.join().expect("receiver")
    })
}

/// RED:eth0's root qdisc as `tc -j` shows it.
fn qdisc(sandbox: &Sandbox) -> serde_json::Value {
    let shown = sandbox.ok("tc", &["-n", "RED", "-j", "qdisc", "show", "dev", "eth0"]);
    let list: Vec<serde_json::Value> = serde_json::from_str(&shown).unwrap();
    list.into_iter().find(|q| q["root"] == true).expect("a root qdisc")
}

fn ifindex(sandbox: &Sandbox) -> u64 {
    let shown = sandbox.ok("ip", &["-n", "RED", "-j", "link", "show", "dev", "eth0"]);
    let list: Vec<serde_json::Value> = serde_json::from_str(&shown).unwrap();
    list[0]["ifindex"].as_u64().unwrap()
}

/// `netlab status`: its exit code and output.
fn status(sandbox: &Sandbox, file: &str) -> (i32, String) {
    let output = sandbox.netlab(&["status", file]);
    (output.status.code().unwrap_or(-1), text(&output.stdout))
}

const DECLARED: f64 = 10e6;
/// 1.5 MB: 1.2 s at 10mbit.
const BYTES: usize = 1_500_000;

#[test]
fn a_rate_limits_the_link_and_changes_in_place() {
    let sandbox = Sandbox::new();
    let file = lab(&sandbox, "");
    sandbox.netlab_ok(&["apply", &file]);
    let (red, blue) = (node_net(&sandbox, "RED"), node_net(&sandbox, "BLUE"));
    assert_eq!(qdisc(&sandbox)["kind"], "noqueue", "a veth's default");
    let unshaped = throughput(&red, &blue, BYTES);
    eprintln!("unshaped: {:.1} Mbit/s", unshaped / 1e6);
    assert!(unshaped > 10.0 * DECLARED, "without shaping the link is far faster: {unshaped}");
    let index = ifindex(&sandbox);

    // Shaped: a tbf of the declared rate, and the traffic follows it.
    let file = lab(&sandbox, "rate: 10mbit");
    let applied = sandbox.netlab_ok(&["apply", &file]);
    assert!(applied.contains("+ shaping on RED:eth0: tbf rate 10mbit burst 6600b latency 50ms"), "{applied}");
    let tbf = qdisc(&sandbox);
    assert_eq!((tbf["kind"].as_str(), tbf["options"]["rate"].as_u64()), (Some("tbf"), Some(1_250_000)), "{tbf}");
    assert_eq!(tbf["options"]["burst"].as_u64(), Some(6600));
    let shaped = throughput(&red, &blue, BYTES);
    eprintln!("shaped at 10mbit: {:.2} Mbit/s", shaped / 1e6);
    assert!(shaped < 1.5 * DECLARED, "shaped to 10mbit, measured {shaped} bit/s");
    assert_eq!(status(&sandbox, &file).0, 0);
    assert_eq!(ifindex(&sandbox), index, "the link was not made again");

    // Another rate: the same qdisc (its handle) and link, changed in place.
    let file = lab(&sandbox, "rate: 20mbit");
    let applied = sandbox.netlab_ok(&["apply", &file]);
    assert_eq!(applied.lines().next(), Some("~ shaping on RED:eth0: tbf rate 20mbit burst 11600b latency 50ms"));
    assert!(!applied.contains("veth"), "{applied}");
    let changed = qdisc(&sandbox);
    assert_eq!(changed["options"]["rate"].as_u64(), Some(2_500_000), "{changed}");
    assert_eq!(changed["handle"], tbf["handle"], "changed in place, not replaced");
    assert_eq!(ifindex(&sandbox), index);
    let (code, shown) = status(&sandbox, &file);
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("ok         shaping on RED:eth0: tbf rate 20mbit burst 11600b latency 50ms"), "{shown}");

    // Changed by hand: drift, shown by status, repaired by apply.
    sandbox.ok(
        "tc",
        &[
            "-n", "RED", "qdisc", "change", "dev", "eth0", "root", "tbf", "rate", "5mbit", "burst", "6600", "latency",
            "50ms",
        ],
    );
    let (code, shown) = status(&sandbox, &file);
    assert_eq!(code, 1, "{shown}");
    assert!(
        shown.contains("differs    shaping on RED:eth0: tbf rate 20mbit burst 11600b latency 50ms (is tbf rate 5mbit burst 6600b latency 50ms)"),
        "{shown}"
    );
    let applied = sandbox.netlab_ok(&["apply", &file]);
    assert!(applied.contains("~ shaping on RED:eth0"), "{applied}");
    assert_eq!(qdisc(&sandbox)["options"]["rate"].as_u64(), Some(2_500_000));
    assert_eq!(status(&sandbox, &file).0, 0);

    // A link of RED that netlab did not make, with a qdisc of its own: never touched.
    sandbox.ok("ip", &["-n", "RED", "link", "add", "mine0", "type", "veth", "peer", "name", "mine1"]);
    let foreign = [
        "-n", "RED", "qdisc", "add", "dev", "mine0", "root", "tbf", "rate", "1mbit", "burst", "4kb", "latency", "20ms",
    ];
    sandbox.ok("tc", &foreign);
    let foreign_qdisc = || sandbox.ok("tc", &["-n", "RED", "qdisc", "show", "dev", "mine0"]);
    let before = foreign_qdisc();
    assert!(before.contains("tbf") && before.contains("rate 1Mbit"), "{before}");

    // The fields dropped: back to the kernel's default, the link kept.
    let file = lab(&sandbox, "");
    let applied = sandbox.netlab_ok(&["apply", &file]);
    assert_eq!(applied.lines().next(), Some("- shaping on RED:eth0"), "{applied}");
    assert_eq!(qdisc(&sandbox)["kind"], "noqueue");
    assert_eq!(ifindex(&sandbox), index);
    assert_eq!(status(&sandbox, &file).0, 0);
    assert!(sandbox.netlab_ok(&["plan", &file]).contains("no changes"));
    assert_eq!(foreign_qdisc(), before, "a link netlab did not make keeps its qdisc");
    sandbox.netlab_ok(&["destroy", &file]);
}

#[test]
fn the_explained_tc_commands_make_what_status_takes_as_in_sync() {
    let sandbox = Sandbox::new();
    let file = sandbox.file(
        "lab.yaml",
        &LAB.replace("SHAPING", "rate: 1gbit\n        burst: 32kb\n        latency: 10ms")
            .replace("addresses: [10.9.0.2/24]", "addresses: [10.9.0.2/24]\n        rate: 1500kbit"),
    );
    let script = sandbox.netlab_ok(&["plan", &file, "--output", "sh"]);
    for command in [
        "tc -n RED qdisc replace dev eth0 root tbf rate 1gbit burst 32768 latency 10ms",
        "tc -n BLUE qdisc replace dev eth0 root tbf rate 1500kbit burst 2350 latency 50ms",
    ] {
        assert!(script.contains(command), "{script}");
    }
    let path = sandbox.file("lab.sh", &script);
    sandbox.ok("sh", &[&path]);
    let (code, shown) = status(&sandbox, &file);
    assert_eq!(code, 0, "{shown}");
    assert!(sandbox.netlab_ok(&["plan", &file]).contains("no changes"));
    sandbox.netlab_ok(&["destroy", &file]);
}

#[test]
fn shaping_errors_are_located_and_netem_is_refused_where_the_kernel_lacks_it() {
    let sandbox = Sandbox::new();
    let file = lab(&sandbox, "rate: 10mbits\n        jitter: 5ms");
    let output = sandbox.netlab(&["validate", &file]);
    assert_eq!(output.status.code(), Some(2));
    let errors = text(&output.stderr);
    assert!(errors.contains("lab.yaml:7:15: malformed rate `10mbits`"), "{errors}");
    assert!(
        errors.contains("lab.yaml:8:17: `jitter` varies a delay: it needs `delay` on the interface too"),
        "{errors}"
    );

    let file = lab(&sandbox, "delay: 20ms");
    let output = sandbox.netlab(&["validate", &file]);
    if netns::qdisc::netem_available() {
        assert!(output.status.success(), "{}", text(&output.stderr));
    } else {
        // This machine kind (kernel-notes.md): no sch_netem, built in or as a module.
        assert_eq!(output.status.code(), Some(2));
        let errors = text(&output.stderr);
        assert!(
            errors.contains(
                "lab.yaml:7:16: `delay` needs the kernel's netem qdisc (sch_netem), which this kernel does not have"
            ),
            "{errors}"
        );
        // Nothing was touched: apply refuses the file the same way.
        assert_eq!(sandbox.netlab(&["apply", &file]).status.code(), Some(2));
        assert!(sandbox.ok("ip", &["netns", "list"]).is_empty());
    }
}
