//! One line per captured frame, for a person at a terminal: when, how long, and what
//! it carries (IPv4 addresses and protocol; ARP; the VNI and inner frame of VXLAN).
//! Pure: bytes in, text out. Frames too short for a header say so instead.

use std::fmt::Write;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use netns::packet::Direction;

/// The UDP port IANA assigned to VXLAN; labs may declare others.
pub const VXLAN_PORT: u16 = 4789;
/// The Linux kernel's default VXLAN port, which flannel (and the node daemon) use.
pub const LINUX_VXLAN_PORT: u16 = 8472;

/// `04:59:30.123456 out 98 bytes 11.11.11.2 > 11.11.11.3 icmp echo request`: the time
/// of day in UTC, the direction, the length on the wire and the decoded headers.
pub fn line(timestamp: Duration, direction: Direction, length: usize, frame: &[u8], vxlan_ports: &[u16]) -> String {
    let seconds = timestamp.as_secs() % 86_400;
    let (hours, minutes, secs) = (seconds / 3600, seconds / 60 % 60, seconds % 60);
    let micros = timestamp.subsec_micros();
    let direction = match direction {
        Direction::In => "in ",
        Direction::Out => "out",
    };
    format!(
        "{hours:02}:{minutes:02}:{secs:02}.{micros:06} {direction} {length} bytes {}",
        ethernet(frame, vxlan_ports, 0)
    )
}

/// Deep enough for VXLAN in VXLAN; a frame nested deeper is not decoded further.
const MAX_DEPTH: usize = 2;

fn ethernet(frame: &[u8], vxlan_ports: &[u16], depth: usize) -> String {
    let Some(ethertype) = be16(frame, 12) else { return "truncated ethernet header".into() };
    let payload = &frame[14..];
    match ethertype {
        0x0800 => ipv4(payload, vxlan_ports, depth),
        0x0806 => arp(payload),
        0x86dd => ipv6(payload),
        other => format!("ethertype 0x{other:04x}"),
    }
}

fn ipv4(packet: &[u8], vxlan_ports: &[u16], depth: usize) -> String {
    let header_length = usize::from(packet.first().map_or(0, |b| b & 0x0f)) * 4;
    if packet.len() < 20 || header_length < 20 || packet.len() < header_length {
        return "truncated ipv4 header".into();
    }
    let source = Ipv4Addr::new(packet[12], packet[13], packet[14], packet[15]);
    let destination = Ipv4Addr::new(packet[16], packet[17], packet[18], packet[19]);
    let mut text = format!("{source} > {destination} ");
    let payload = &packet[header_length..];
    // Only the first fragment carries the transport header.
    let fragment_offset = be16(packet, 6).unwrap_or(0) & 0x1fff;
    if fragment_offset != 0 {
        text.push_str("fragment");
        return text;
    }
    match packet[9] {
        1 => text.push_str(&icmp(payload)),
        6 => text.push_str(&ports("tcp", payload)),
        17 => {
            text.push_str(&ports("udp", payload));
            let destination_port = be16(payload, 2);
            let known = |port: u16| port == VXLAN_PORT || port == LINUX_VXLAN_PORT || vxlan_ports.contains(&port);
            if destination_port.is_some_and(known) {
                text.push(' ');
                text.push_str(&vxlan(&payload[8.min(payload.len())..], vxlan_ports, depth));
            }
        }
        other => {
            let _ = write!(text, "proto {other}");
        }
    }
    text
}

fn icmp(message: &[u8]) -> String {
    match message.first() {
        Some(0) => "icmp echo reply".into(),
        Some(3) => "icmp unreachable".into(),
        Some(8) => "icmp echo request".into(),
        Some(11) => "icmp time exceeded".into(),
        Some(other) => format!("icmp type {other}"),
        None => "icmp".into(),
    }
}

fn ports(protocol: &str, segment: &[u8]) -> String {
    match (be16(segment, 0), be16(segment, 2)) {
        (Some(source), Some(destination)) => format!("{protocol} {source} > {destination}"),
        _ => protocol.to_string(),
    }
}

/// The 8-byte VXLAN header: flags (0x08: the VNI is valid), the VNI in bytes 4..7,
/// then the inner Ethernet frame.
fn vxlan(datagram: &[u8], vxlan_ports: &[u16], depth: usize) -> String {
    let Some(vni) = vni(datagram) else { return "vxlan (truncated header)".into() };
    if depth >= MAX_DEPTH {
        return format!("vxlan vni {vni}");
    }
    format!("vxlan vni {vni}: {}", ethernet(&datagram[8..], vxlan_ports, depth + 1))
}

/// The VNI of a VXLAN header, when the header is whole and says the VNI is valid.
pub fn vni(header: &[u8]) -> Option<u32> {
    if header.len() < 8 || header[0] & 0x08 == 0 {
        return None;
    }
    Some(u32::from_be_bytes([0, header[4], header[5], header[6]]))
}

fn arp(packet: &[u8]) -> String {
    // Ethernet/IPv4 ARP only: 28 bytes.
    if packet.len() < 28 || be16(packet, 0) != Some(1) || be16(packet, 2) != Some(0x0800) {
        return "arp".into();
    }
    let sender = Ipv4Addr::new(packet[14], packet[15], packet[16], packet[17]);
    let target = Ipv4Addr::new(packet[24], packet[25], packet[26], packet[27]);
    match be16(packet, 6) {
        Some(1) => format!("arp who-has {target} tell {sender}"),
        Some(2) => {
            let mac = packet[8..14].iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":");
            format!("arp reply {sender} is-at {mac}")
        }
        _ => "arp".into(),
    }
}

fn ipv6(packet: &[u8]) -> String {
    if packet.len() < 40 {
        return "truncated ipv6 header".into();
    }
    let address = |at: usize| Ipv6Addr::from(<[u8; 16]>::try_from(&packet[at..at + 16]).expect("16 bytes"));
    let next = match packet[6] {
        6 => "tcp".to_string(),
        17 => "udp".to_string(),
        58 => "icmp6".to_string(),
        other => format!("next header {other}"),
    };
    format!("{} > {} {next}", address(8), address(24))
}

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*bytes.get(at)?, *bytes.get(at + 1)?]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ethernet_frame(ethertype: u16, payload: &[u8]) -> Vec<u8> {
        let mut frame = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
        frame.extend_from_slice(&ethertype.to_be_bytes());
        frame.extend_from_slice(payload);
        frame
    }

    fn ipv4_packet(protocol: u8, source: [u8; 4], destination: [u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut packet = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, protocol, 0, 0];
        packet.extend_from_slice(&source);
        packet.extend_from_slice(&destination);
        packet.extend_from_slice(payload);
        packet
    }

    fn ping(source: [u8; 4], destination: [u8; 4]) -> Vec<u8> {
        ethernet_frame(0x0800, &ipv4_packet(1, source, destination, &[8, 0, 0, 0, 0, 1, 0, 1]))
    }

    #[test]
    fn an_icmp_echo_shows_addresses_and_type() {
        let frame = ping([11, 11, 11, 2], [11, 11, 11, 3]);
        let text = line(Duration::new(3600 * 25 + 61, 5_000), Direction::Out, 98, &frame, &[]);
        assert_eq!(text, "01:01:01.000005 out 98 bytes 11.11.11.2 > 11.11.11.3 icmp echo request");
    }

    #[test]
    fn vxlan_shows_the_vni_and_the_inner_frame() {
        let mut udp = vec![0xb8, 0x2c, 0x12, 0xb5, 0, 0, 0, 0];
        udp.extend_from_slice(&[0x08, 0, 0, 0, 0, 0, 42, 0]);
        udp.extend_from_slice(&ping([11, 11, 11, 2], [11, 11, 11, 3]));
        let frame = ethernet_frame(0x0800, &ipv4_packet(17, [192, 168, 104, 2], [192, 168, 104, 3], &udp));
        let text = line(Duration::ZERO, Direction::In, frame.len(), &frame, &[]);
        assert!(
            text.ends_with(
                "192.168.104.2 > 192.168.104.3 udp 47148 > 4789 vxlan vni 42: 11.11.11.2 > 11.11.11.3 icmp echo request"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_lab_port_is_decoded_as_vxlan_too() {
        // To port 4790 (0x12b6): VXLAN only when a device of the lab uses it.
        let mut udp = vec![0, 1, 0x12, 0xb6, 0, 0, 0, 0, 0x08, 0, 0, 0, 0, 0, 7, 0];
        udp.extend_from_slice(&ping([10, 0, 0, 1], [10, 0, 0, 2]));
        let frame = ethernet_frame(0x0800, &ipv4_packet(17, [1, 1, 1, 1], [2, 2, 2, 2], &udp));
        assert!(line(Duration::ZERO, Direction::In, 1, &frame, &[4790]).contains("vxlan vni 7: 10.0.0.1"));
        assert!(!line(Duration::ZERO, Direction::In, 1, &frame, &[]).contains("vxlan"));
        // To 8472 (0x2118), the kernel's default and flannel's: always.
        udp[2..4].copy_from_slice(&[0x21, 0x18]);
        let frame = ethernet_frame(0x0800, &ipv4_packet(17, [1, 1, 1, 1], [2, 2, 2, 2], &udp));
        assert!(line(Duration::ZERO, Direction::In, 1, &frame, &[]).contains("vxlan vni 7: 10.0.0.1"));
    }

    #[test]
    fn arp_requests_and_replies_read_as_tcpdump_says_them() {
        let mut arp = vec![0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 11, 11, 11, 2, 0, 0, 0, 0, 0, 0, 11, 11, 11, 3];
        let request = ethernet_frame(0x0806, &arp);
        assert!(
            line(Duration::ZERO, Direction::Out, 42, &request, &[]).ends_with("arp who-has 11.11.11.3 tell 11.11.11.2")
        );
        arp[7] = 2;
        let reply = ethernet_frame(0x0806, &arp);
        assert!(line(Duration::ZERO, Direction::In, 42, &reply, &[])
            .ends_with("arp reply 11.11.11.2 is-at 02:00:00:00:00:01"));
    }

    #[test]
    fn short_or_unknown_frames_never_panic() {
        for frame in [&[][..], &[0; 13], &ethernet_frame(0x0800, &[0x45, 0]), &ethernet_frame(0x86dd, &[0; 10])] {
            let text = line(Duration::ZERO, Direction::In, frame.len(), frame, &[]);
            assert!(text.contains("truncated"), "{text}");
        }
        let lldp = ethernet_frame(0x88cc, &[]);
        assert!(line(Duration::ZERO, Direction::In, 14, &lldp, &[]).ends_with("ethertype 0x88cc"));
        let mut udp = vec![0, 1, 0x12, 0xb5, 0, 0, 0, 0, 0x08];
        udp.truncate(9);
        let frame = ethernet_frame(0x0800, &ipv4_packet(17, [1, 1, 1, 1], [2, 2, 2, 2], &udp));
        assert!(line(Duration::ZERO, Direction::In, 1, &frame, &[]).ends_with("vxlan (truncated header)"));
    }
}
