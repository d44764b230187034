//! The classic pcap format (LINKTYPE_ETHERNET, microsecond timestamps), which
//! wireshark and tshark read from a pipe as it grows; written by the `pcap-file` crate.

use std::io::Write;

use netns::packet::Received;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, Endianness, PcapError};

use super::{Sink, SNAPLEN};

/// A pcap stream: the global header at once, then each frame as it comes. The output
/// is not buffered here (give it a file or a pipe): each record is in the kernel's
/// hands when `frame` returns, so the file is whole whenever the capture ends and a
/// reader sees each frame live. (`PcapWriter` gives no way to flush a buffer under it.)
pub struct Pcap<W: Write> {
    writer: PcapWriter<W>,
}

impl<W: Write> Pcap<W> {
    pub fn new(output: W) -> std::io::Result<Pcap<W>> {
        let header = PcapHeader {
            snaplen: SNAPLEN as u32,
            datalink: DataLink::ETHERNET,
            endianness: Endianness::native(),
            ..PcapHeader::default()
        };
        Ok(Pcap { writer: PcapWriter::with_header(output, header).map_err(io_error)? })
    }
}

impl<W: Write> Sink for Pcap<W> {
    fn frame(&mut self, received: &Received, data: &[u8]) -> std::io::Result<()> {
        let length = u32::try_from(received.length).unwrap_or(u32::MAX);
        self.writer.write_packet(&PcapPacket::new(received.timestamp, length, data)).map_err(io_error)?;
        Ok(())
    }
}

fn io_error(error: PcapError) -> std::io::Error {
    match error {
        PcapError::IoError(e) => e,
        other => std::io::Error::other(other.to_string().to_lowercase()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netns::packet::Direction;
    use std::time::Duration;

    #[test]
    fn frames_read_back_with_their_time_and_length() {
        let mut bytes = Vec::new();
        {
            let mut pcap = Pcap::new(&mut bytes).unwrap();
            let received = Received {
                length: 1500,
                captured: 4,
                timestamp: Duration::new(1_700_000_000, 123_456_000),
                direction: Direction::In,
            };
            pcap.frame(&received, &[1, 2, 3, 4]).unwrap();
        }
        assert_eq!(bytes.len(), 24 + 16 + 4);
        let mut reader = pcap_file::pcap::PcapReader::new(&bytes[..]).unwrap();
        assert_eq!(reader.header().datalink, DataLink::ETHERNET);
        let packet = reader.next_packet().unwrap().unwrap();
        assert_eq!(
            (packet.timestamp, packet.orig_len, &packet.data[..]),
            (Duration::new(1_700_000_000, 123_456_000), 1500, &[1, 2, 3, 4][..])
        );
        assert!(reader.next_packet().is_none());
    }
}
