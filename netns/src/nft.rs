//! Read-only questions to nftables over its netlink family (NETLINK_NETFILTER), for
//! callers that must not pay an exec of `nft` on a hot path: whether a chain exists.
//! Changes still go through `nft` (one JSON batch), which callers run themselves.

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};

use crate::{Error, Result};

/// The nftables family of IPv4 tables (`table ip NAME`).
pub const FAMILY_IP: u8 = libc::NFPROTO_IPV4 as u8;

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_GETCHAIN: u16 = 4;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NLMSG_ERROR: u16 = 2;
const HEADER: usize = 16;

/// Whether chain `chain` of table `table` (of `family`) exists in the calling thread's
/// namespace. A missing table is a missing chain.
pub fn chain_exists(family: u8, table: &str, chain: &str) -> Result<bool> {
    let step = || format!("look up nftables chain {table} {chain}");
    let socket = Socket::new(NETLINK_NETFILTER).map_err(|e| Error::io(step(), e))?;
    socket.connect(&SocketAddr::new(0, 0)).map_err(|e| Error::io(step(), e))?;
    socket.send(&get_chain_request(family, table, chain), 0).map_err(|e| Error::io(step(), e))?;
    let mut found = false;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let received = socket.recv(&mut &mut buffer[..], 0).map_err(|e| Error::io(step(), e))?;
        let mut rest = &buffer[..received];
        while rest.len() >= HEADER {
            let length = u32::from_ne_bytes(rest[0..4].try_into().expect("4 bytes")) as usize;
            let kind = u16::from_ne_bytes(rest[4..6].try_into().expect("2 bytes"));
            if length < HEADER || length > rest.len() {
                return Err(Error::other(step(), "truncated netlink reply"));
            }
            if kind == (NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWCHAIN) {
                found = true;
            } else if kind == NLMSG_ERROR {
                let code = rest.get(HEADER..HEADER + 4).map(|b| i32::from_ne_bytes(b.try_into().expect("4 bytes")));
                return match code {
                    Some(0) => Ok(found),
                    Some(code) if -code == libc::ENOENT => Ok(false),
                    Some(code) => Err(Error::errno(step(), code)),
                    None => Err(Error::other(step(), "truncated netlink error")),
                };
            }
            rest = &rest[length.next_multiple_of(4).min(rest.len())..];
        }
    }
}

/// NFT_MSG_GETCHAIN for one chain, acknowledged.
fn get_chain_request(family: u8, table: &str, chain: &str) -> Vec<u8> {
    let mut message = vec![0u8; HEADER];
    // struct nfgenmsg: family, version (NFNETLINK_V0), resource id (big endian).
    message.extend_from_slice(&[family, 0, 0, 0]);
    for (kind, text) in [(NFTA_CHAIN_TABLE, table), (NFTA_CHAIN_NAME, chain)] {
        let length = 4 + text.len() + 1;
        message.extend_from_slice(&(length as u16).to_ne_bytes());
        message.extend_from_slice(&kind.to_ne_bytes());
        message.extend_from_slice(text.as_bytes());
        message.push(0);
        message.resize(message.len().next_multiple_of(4), 0);
    }
    let total = message.len() as u32;
    let flags = (libc::NLM_F_REQUEST | libc::NLM_F_ACK) as u16;
    message[0..4].copy_from_slice(&total.to_ne_bytes());
    message[4..6].copy_from_slice(&(NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETCHAIN).to_ne_bytes());
    message[6..8].copy_from_slice(&flags.to_ne_bytes());
    message[8..12].copy_from_slice(&1u32.to_ne_bytes());
    message
}

#[cfg(test)]
mod tests {
    #[test]
    fn request_is_aligned_and_sized() {
        let message = super::get_chain_request(super::FAMILY_IP, "netlab-cni", "x");
        assert_eq!(message.len() % 4, 0);
        assert_eq!(u32::from_ne_bytes(message[0..4].try_into().unwrap()) as usize, message.len());
        // header, nfgenmsg, "netlab-cni\0" padded to 12 + 4, "x\0" padded to 4 + 4.
        assert_eq!(message.len(), 16 + 4 + 16 + 8);
    }
}
