//! The classic pcap format (LINKTYPE_ETHERNET, microsecond timestamps), which
//! wireshark and tshark read from a pipe as it grows; written by the `pcap-file` crate.

use std::io::Write;
use std::sync::{Arc, Mutex};

use netns::packet::Received;
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, Endianness, PcapError};

use super::{Sink, SNAPLEN};

/// A pcap stream: the global header at once, then each frame as it comes, in one
/// write per record: each record is in the kernel's hands when `frame` returns, so the
/// file is whole whenever the capture ends, and a reader sees each frame live.
pub struct Pcap<W: Write> {
    encoder: PcapWriter<Staged>,
    staged: Staged,
    output: W,
}

impl<W: Write> Pcap<W> {
    pub fn new(output: W) -> std::io::Result<Pcap<W>> {
        let header = PcapHeader {
            snaplen: SNAPLEN as u32,
            datalink: DataLink::ETHERNET,
            endianness: Endianness::native(),
            ..PcapHeader::default()
        };
        let staged = Staged::default();
        let encoder = PcapWriter::with_header(staged.clone(), header).map_err(io_error)?;
        let mut pcap = Pcap { encoder, staged, output };
        pcap.write_staged()?;
        Ok(pcap)
    }

    fn write_staged(&mut self) -> std::io::Result<()> {
        let bytes = std::mem::take(&mut *self.staged.0.lock().expect("unpoisoned"));
        self.output.write_all(&bytes)?;
        self.output.flush()
    }
}

impl<W: Write> Sink for Pcap<W> {
    fn frame(&mut self, received: &Received, data: &[u8]) -> std::io::Result<()> {
        let length = u32::try_from(received.length).unwrap_or(u32::MAX);
        self.encoder.write_packet(&PcapPacket::new(received.timestamp, length, data)).map_err(io_error)?;
        self.write_staged()
    }
}

/// Where `PcapWriter` encodes a record (field by field, in five writes): shared with
/// `Pcap`, which sends the whole record on in one write. `PcapWriter` gives no access
/// to the writer under it, hence the sharing.
#[derive(Clone, Default)]
struct Staged(Arc<Mutex<Vec<u8>>>);

impl Write for Staged {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("unpoisoned").extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
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

    /// Counts the writes it gets.
    struct Writes(Vec<usize>);

    impl Write for Writes {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.push(bytes.len());
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn each_record_goes_out_in_one_write() {
        let mut pcap = Pcap::new(Writes(Vec::new())).unwrap();
        let received = Received { length: 60, captured: 60, timestamp: Duration::ZERO, direction: Direction::Out };
        pcap.frame(&received, &[0; 60]).unwrap();
        pcap.frame(&received, &[0; 60]).unwrap();
        assert_eq!(pcap.output.0, [24, 16 + 60, 16 + 60]);
    }
}
