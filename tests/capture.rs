//! Privileged tests of `netlab capture`, each in its own sandbox: what the pcap holds
//! (decoded here, independently of netlab's own summary lines) during real pings
//! across the labs of topologies/, how a capture ends, and what it refuses.

mod support;

use std::io::Read;
use std::net::Ipv4Addr;
use std::process::{Child, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::signal::Signal;
use support::{eventually, text, topology, Process, Sandbox};

/// Upper bound for a capture to announce itself, or end once told to.
const BOUND: f64 = 20.0;

/// Start `netlab capture FILE INTERFACE ARGS...` in the sandbox and wait until it says
/// its socket is bound.
fn start_capture(sandbox: &Sandbox, file: &str, interface: &str, args: &[&str]) -> Process {
    let mut all = vec!["capture", file, interface];
    all.extend_from_slice(args);
    let mut capture = sandbox.spawn("", env!("CARGO_BIN_EXE_netlab"), &all);
    let ready = eventually(BOUND, || capture.output().contains("netlab: capturing on") || !capture.running());
    assert!(ready && capture.running(), "the capture did not start: {}", capture.output());
    capture
}

/// Each frame of a pcap stream with its timestamp. Reading to the end without an
/// error proves the file whole.
fn frames(pcap: &[u8]) -> Vec<(Duration, Vec<u8>)> {
    let mut reader = pcap_file::pcap::PcapReader::new(pcap).expect("a pcap header");
    assert_eq!(reader.header().datalink, pcap_file::DataLink::ETHERNET);
    let mut frames = Vec::new();
    while let Some(packet) = reader.next_packet() {
        let packet = packet.expect("a whole pcap record");
        assert_eq!(packet.orig_len as usize, packet.data.len(), "frames are captured whole");
        frames.push((packet.timestamp, packet.data.into_owned()));
    }
    frames
}

/// An IPv4 packet as this test reads it.
#[derive(Debug)]
struct Ipv4<'a> {
    source: Ipv4Addr,
    destination: Ipv4Addr,
    protocol: u8,
    payload: &'a [u8],
}

fn ipv4(frame: &[u8]) -> Option<Ipv4<'_>> {
    if frame.len() < 34 || frame[12..14] != [0x08, 0x00] {
        return None;
    }
    let packet = &frame[14..];
    let header = usize::from(packet[0] & 0x0f) * 4;
    Some(Ipv4 {
        source: Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]),
        destination: Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]),
        protocol: packet[9],
        payload: packet.get(header..)?,
    })
}

/// The ICMP type of an IPv4 frame carrying ICMP (8 echo request, 0 echo reply).
fn icmp_type(packet: &Ipv4<'_>) -> Option<u8> {
    (packet.protocol == 1).then(|| packet.payload.first().copied()).flatten()
}

/// A frame's VXLAN content: the VNI and the inner Ethernet frame, when it is UDP to
/// port 4789 with a VXLAN header whose VNI is valid.
fn vxlan(frame: &[u8]) -> Option<(u32, &[u8])> {
    let packet = ipv4(frame)?;
    let udp = packet.payload;
    if packet.protocol != 17 || udp.len() < 16 || u16::from_be_bytes([udp[2], udp[3]]) != 4789 {
        return None;
    }
    let header = &udp[8..16];
    (header[0] & 0x08 != 0).then(|| (u32::from_be_bytes([0, header[4], header[5], header[6]]), &udp[16..]))
}

fn now() -> Duration {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap()
}

fn ping(sandbox: &Sandbox, from: &str, to: &str, count: &str) {
    sandbox.ok("ip", &["netns", "exec", from, "ping", "-n", "-q", "-c", count, "-W", "1", "-w", "10", to]);
}

#[test]
fn the_underlay_of_an_overlay_ping_carries_vxlan_with_vni_42() {
    let sandbox = Sandbox::new();
    let file = topology("overlay-static.yaml");
    sandbox.netlab_ok(&["apply", &file]);
    let pcap = sandbox.dir.join("underlay.pcap").display().to_string();
    let started = now();
    let mut capture = start_capture(&sandbox, &file, "host1:eth0", &["-w", &pcap]);
    ping(&sandbox, "ct1", "11.11.11.3", "2");
    // Ctrl-C ends it cleanly, the file whole.
    assert!(capture.stop(Signal::SIGINT).success(), "{}", capture.output());
    let ended = now();
    assert!(capture.output().contains("captured"), "{}", capture.output());

    let frames = frames(&std::fs::read(&pcap).unwrap());
    let mut requests = 0;
    let mut replies = 0;
    for (timestamp, frame) in &frames {
        assert!(started <= *timestamp && *timestamp <= ended, "a kernel timestamp of this capture: {timestamp:?}");
        let Some((vni, inner)) = vxlan(frame) else { continue };
        assert_eq!(vni, 42, "the lab's VNI");
        let outer = ipv4(frame).unwrap();
        let inner = ipv4(inner).expect("IPv4 inside the overlay");
        match icmp_type(&inner) {
            Some(8) => {
                requests += 1;
                assert_eq!(
                    (outer.source, outer.destination),
                    (Ipv4Addr::new(192, 168, 104, 2), Ipv4Addr::new(192, 168, 104, 3))
                );
                assert_eq!(
                    (inner.source, inner.destination),
                    (Ipv4Addr::new(11, 11, 11, 2), Ipv4Addr::new(11, 11, 11, 3))
                );
            }
            Some(0) => {
                replies += 1;
                assert_eq!(
                    (inner.source, inner.destination),
                    (Ipv4Addr::new(11, 11, 11, 3), Ipv4Addr::new(11, 11, 11, 2))
                );
            }
            _ => {}
        }
    }
    // ping succeeded with -c 2: two echo replies came back, each after its request.
    assert!(requests >= 2 && replies >= 2, "requests {requests}, replies {replies} in {} frames", frames.len());

    // An interface the namespace does not have.
    let missing = sandbox.netlab(&["capture", &file, "host1:eth9", "-w", "/dev/null"]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing.stderr).contains("no interface host1:eth9 (the namespace has eth0, lo)"),
        "{}",
        text(&missing.stderr)
    );
    let unknown = sandbox.netlab(&["capture", &file, "host3:eth0", "-w", "/dev/null"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(text(&unknown.stderr).contains("lab overlay-static has no node `host3`"), "{}", text(&unknown.stderr));
}

#[test]
fn the_outside_link_of_the_nat_lab_shows_the_masqueraded_source() {
    let sandbox = Sandbox::new();
    let file = topology("nat.yaml");
    sandbox.netlab_ok(&["apply", &file]);
    let pcap = sandbox.dir.join("outside.pcap").display().to_string();
    let mut capture = start_capture(&sandbox, &file, "host:vext", &["-w", &pcap]);
    ping(&sandbox, "RED", "203.0.113.1", "2");
    // SIGTERM ends it cleanly too.
    assert!(capture.stop(Signal::SIGTERM).success(), "{}", capture.output());

    let frames = frames(&std::fs::read(&pcap).unwrap());
    let internet = Ipv4Addr::new(203, 0, 113, 1);
    let router = Ipv4Addr::new(198, 51, 100, 1);
    let packets: Vec<Ipv4<'_>> = frames.iter().filter_map(|(_, frame)| ipv4(frame)).collect();
    let requests: Vec<&Ipv4<'_>> = packets.iter().filter(|p| icmp_type(p) == Some(8)).collect();
    let replies: Vec<&Ipv4<'_>> = packets.iter().filter(|p| icmp_type(p) == Some(0)).collect();
    assert!(requests.len() >= 2 && replies.len() >= 2, "{packets:?}");
    for request in requests {
        assert_eq!((request.source, request.destination), (router, internet), "masqueraded, not RED's 11.11.11.2");
    }
    for reply in replies {
        assert_eq!((reply.source, reply.destination), (internet, router));
    }
    assert!(!packets.iter().any(|p| p.source == Ipv4Addr::new(11, 11, 11, 2)), "RED's own address never goes outside");
}

/// A capture writing to a pipe of this test; killed when dropped, pass or fail.
struct Piped(Child);

impl Drop for Piped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_piped(sandbox: &Sandbox, args: &[&str]) -> (Piped, std::path::PathBuf) {
    let log = sandbox.dir.join("capture-stderr.log");
    let stderr = std::fs::File::create(&log).unwrap();
    let child = sandbox
        .command(env!("CARGO_BIN_EXE_netlab"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let said = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(eventually(BOUND, || said().contains("netlab: capturing on")), "the capture did not start: {}", said());
    (Piped(child), log)
}

#[test]
fn count_stops_at_exactly_n_frames_of_pcap_on_stdout() {
    let sandbox = Sandbox::new();
    let file = topology("veth-pair.yaml");
    sandbox.netlab_ok(&["apply", &file]);
    // stdout is a pipe: pcap goes there without -w. The timeout only bounds a failure.
    let (mut capture, log) = start_piped(&sandbox, &["capture", &file, "RED:veth0", "-c", "3", "--timeout", "60"]);
    // Five echo requests and their replies: ten frames on RED:veth0, more than three.
    ping(&sandbox, "RED", "11.11.11.3", "5");
    let mut pcap = Vec::new();
    capture.0.stdout.take().unwrap().read_to_end(&mut pcap).unwrap();
    assert!(capture.0.wait().unwrap().success(), "{}", std::fs::read_to_string(&log).unwrap());
    assert_eq!(frames(&pcap).len(), 3);
    assert!(std::fs::read_to_string(&log).unwrap().contains("3 frames captured"));
}

#[test]
fn a_closed_pipe_ends_the_capture_quietly() {
    let sandbox = Sandbox::new();
    let file = topology("veth-pair.yaml");
    sandbox.netlab_ok(&["apply", &file]);
    let (mut capture, log) = start_piped(&sandbox, &["capture", &file, "RED:veth0", "-w", "-"]);
    let mut header = [0u8; 24];
    let mut stdout = capture.0.stdout.take().unwrap();
    stdout.read_exact(&mut header).unwrap();
    assert_eq!(header[..4], 0xa1b2_c3d4u32.to_ne_bytes(), "the pcap magic number");
    // The reader goes away with no frame in flight: the capture notices by itself.
    drop(stdout);
    assert!(eventually(BOUND, || capture.0.try_wait().unwrap().is_some()), "the capture went on");
    assert_eq!(capture.0.wait().unwrap().code(), Some(141));
    let said = std::fs::read_to_string(&log).unwrap();
    assert_eq!(said.lines().count(), 1, "nothing but the start line: {said}");
}

#[test]
fn namespaces_the_lab_does_not_own_are_refused() {
    let sandbox = Sandbox::new();
    let file = topology("overlay-static.yaml");
    let absent = sandbox.netlab(&["capture", &file, "host1:eth0", "-w", "/dev/null"]);
    assert_eq!(absent.status.code(), Some(1));
    assert!(
        text(&absent.stderr).contains("no namespace host1: lab overlay-static is not applied here"),
        "{}",
        text(&absent.stderr)
    );
    // A namespace of a node's name that netlab did not make.
    sandbox.ok("ip", &["netns", "add", "host1"]);
    let foreign = sandbox.netlab(&["capture", &file, "host1:lo", "-w", "/dev/null"]);
    assert_eq!(foreign.status.code(), Some(3), "{}", text(&foreign.stderr));
    assert!(
        text(&foreign.stderr)
            .contains("capture on host1:lo: namespace host1 was not created by netlab (lab overlay-static): refusing"),
        "{}",
        text(&foreign.stderr)
    );
}

#[test]
fn on_a_terminal_each_frame_is_a_line() {
    use std::os::fd::{FromRawFd, OwnedFd};
    let sandbox = Sandbox::new();
    let file = topology("veth-pair.yaml");
    sandbox.netlab_ok(&["apply", &file]);
    let (mut controller, mut terminal) = (-1, -1);
    // SAFETY: openpty fills two descriptors, owned right below.
    let opened = unsafe {
        libc::openpty(&mut controller, &mut terminal, std::ptr::null_mut(), std::ptr::null(), std::ptr::null())
    };
    assert_eq!(opened, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors are fresh from openpty and owned nowhere else.
    let (controller, terminal) = unsafe { (OwnedFd::from_raw_fd(controller), OwnedFd::from_raw_fd(terminal)) };
    let log = sandbox.dir.join("capture-stderr.log");
    let child = sandbox
        .command(env!("CARGO_BIN_EXE_netlab"))
        .args(["capture", &file, "RED:veth0", "-c", "4", "--timeout", "60"])
        .stdin(Stdio::null())
        .stdout(Stdio::from(terminal))
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut capture = Piped(child);
    let said = || std::fs::read_to_string(&log).unwrap_or_default();
    assert!(eventually(BOUND, || said().contains("netlab: capturing on")), "the capture did not start: {}", said());
    ping(&sandbox, "RED", "11.11.11.3", "1");
    assert!(capture.0.wait().unwrap().success(), "{}", said());
    // The terminal's side is closed now: read what was written until EIO.
    let mut lines = Vec::new();
    let _ = std::fs::File::from(controller).read_to_end(&mut lines);
    let lines = text(&lines);
    let lines: Vec<&str> = lines.lines().collect();
    // The first exchange of a fresh pair: RED asks for BLUE's address, then pings.
    assert_eq!(lines.len(), 4, "{lines:?}");
    let line = |end: &str| lines.iter().find(|l| l.ends_with(end)).unwrap_or_else(|| panic!("no `{end}` in {lines:?}"));
    assert!(line("arp who-has 11.11.11.3 tell 11.11.11.2").contains(" out 42 bytes "));
    assert!(line("11.11.11.2 > 11.11.11.3 icmp echo request").contains(" out 98 bytes "));
    assert!(line("11.11.11.3 > 11.11.11.2 icmp echo reply").contains(" in  98 bytes "));
}

#[test]
fn a_timeout_ends_the_capture_with_a_whole_file() {
    let sandbox = Sandbox::new();
    let file = topology("veth-pair.yaml");
    sandbox.netlab_ok(&["apply", &file]);
    let pcap = sandbox.dir.join("idle.pcap").display().to_string();
    let mut capture = start_capture(&sandbox, &file, "BLUE:veth1", &["-w", &pcap, "--timeout", "0.2"]);
    assert!(eventually(BOUND, || !capture.running()), "the capture went on past its timeout");
    assert!(capture.output().contains("0 frames captured"), "{}", capture.output());
    assert!(frames(&std::fs::read(&pcap).unwrap()).is_empty());
}
