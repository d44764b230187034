//! The root qdisc of a link: a token bucket (tbf) or an impairment (netem), set with
//! `tc qdisc replace ... root` semantics, removed, and read back.
//!
//! netlink-packet-route 0.34 decodes and encodes the options of ingress and fq_codel
//! only: tbf's and netem's are built and read here, byte for byte as the kernel's uapi
//! (linux/pkt_sched.h) lays them out, and sent as an opaque TCA_OPTIONS attribute.

use std::os::fd::OwnedFd;

use futures::StreamExt;
use rtnetlink::packet_core::{
    DefaultNla, NetlinkMessage, NetlinkPayload, Nla, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_REPLACE, NLM_F_REQUEST,
};
use rtnetlink::packet_route::tc::{TcAttribute, TcHandle, TcMessage, TcOption};
use rtnetlink::packet_route::RouteNetlinkMessage;

use crate::{Error, Netlink, Result};

const TCA_OPTIONS: u16 = 2;
const TCA_TBF_PARMS: u16 = 1;
const TCA_TBF_RATE64: u16 = 4;
const TCA_TBF_BURST: u16 = 6;
const TCA_NETEM_RATE: u16 = 6;
const TCA_NETEM_RATE64: u16 = 8;
const TCA_NETEM_LATENCY64: u16 = 10;
const TCA_NETEM_JITTER64: u16 = 11;
/// tc_ratespec.linklayer: with a link layer given, the kernel needs no rate table.
const TC_LINKLAYER_ETHERNET: u8 = 1;
/// The kernel's scheduler clock ticks are 64 ns (PSCHED_SHIFT 6).
const NANOS_PER_TICK: u64 = 64;
/// netem's queue when tc is not told otherwise: 1000 packets.
pub const NETEM_DEFAULT_LIMIT: u32 = 1000;

/// A token bucket, in the kernel's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tbf {
    pub rate_bytes: u64,
    /// The bucket's size in bytes.
    pub burst: u32,
    /// The queue's length in bytes.
    pub limit: u32,
}

/// An impairment, in the kernel's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Netem {
    pub delay_ns: u64,
    pub jitter_ns: u64,
    /// The share of packets lost, out of u32::MAX.
    pub loss: u32,
    /// Packets.
    pub limit: u32,
    pub rate_bytes: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qdisc {
    Tbf(Tbf),
    Netem(Netem),
}

impl Qdisc {
    pub fn kind(&self) -> &'static str {
        match self {
            Qdisc::Tbf(_) => "tbf",
            Qdisc::Netem(_) => "netem",
        }
    }
}

/// A root qdisc someone attached (the kernel's own defaults, handle 0, are left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RootQdisc {
    pub index: u32,
    pub kind: String,
    /// Its parameters, for the kinds netlab sets.
    pub qdisc: Option<Qdisc>,
}

/// What a rate's bucket of `burst` bytes is, in ticks (tc_calc_xmittime).
fn bucket_ticks(rate_bytes: u64, burst: u32) -> u32 {
    let nanos = u128::from(burst) * 1_000_000_000 / u128::from(rate_bytes.max(1));
    u32::try_from(nanos / u128::from(NANOS_PER_TICK)).unwrap_or(u32::MAX)
}

/// struct tc_ratespec: cell_log, linklayer, overhead, cell_align, mpu, rate.
fn ratespec(rate_bytes: u64) -> [u8; 12] {
    let mut spec = [0u8; 12];
    spec[1] = TC_LINKLAYER_ETHERNET;
    spec[8..12].copy_from_slice(&u32::try_from(rate_bytes).unwrap_or(u32::MAX).to_ne_bytes());
    spec
}

/// One netlink attribute: length, type, value, padded to 4 bytes.
fn attribute(kind: u16, value: &[u8], out: &mut Vec<u8>) {
    let length = u16::try_from(4 + value.len()).expect("small attribute");
    out.extend_from_slice(&length.to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(value);
    out.resize(out.len().next_multiple_of(4), 0);
}

/// The attributes inside a payload, as (type, value).
fn attributes(mut payload: &[u8]) -> Vec<(u16, &[u8])> {
    let mut found = Vec::new();
    while payload.len() >= 4 {
        let length = usize::from(u16::from_ne_bytes([payload[0], payload[1]]));
        let kind = u16::from_ne_bytes([payload[2], payload[3]]) & 0x3fff;
        if length < 4 || length > payload.len() {
            break;
        }
        found.push((kind, &payload[4..length]));
        payload = &payload[length.next_multiple_of(4).min(payload.len())..];
    }
    found
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn u64_of(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_ne_bytes(bytes.get(..8)?.try_into().ok()?))
}

/// TCA_OPTIONS of a tbf: its parameters, the burst in bytes, and the 64-bit rate
/// above 4 GB/s, as `tc qdisc ... tbf rate R burst B limit L` sends them.
pub fn tbf_options(tbf: &Tbf) -> Vec<u8> {
    let mut parms = Vec::with_capacity(36);
    parms.extend_from_slice(&ratespec(tbf.rate_bytes));
    parms.extend_from_slice(&[0u8; 12]); // no peak rate
    parms.extend_from_slice(&tbf.limit.to_ne_bytes());
    parms.extend_from_slice(&bucket_ticks(tbf.rate_bytes, tbf.burst).to_ne_bytes());
    parms.extend_from_slice(&0u32.to_ne_bytes()); // mtu: only with a peak rate
    let mut options = Vec::new();
    attribute(TCA_TBF_PARMS, &parms, &mut options);
    attribute(TCA_TBF_BURST, &tbf.burst.to_ne_bytes(), &mut options);
    if tbf.rate_bytes > u64::from(u32::MAX) {
        attribute(TCA_TBF_RATE64, &tbf.rate_bytes.to_ne_bytes(), &mut options);
    }
    options
}

/// TCA_OPTIONS of a netem: struct tc_netem_qopt, then attributes (not nested in an
/// attribute of their own: netem's layout differs from other qdiscs').
pub fn netem_options(netem: &Netem) -> Vec<u8> {
    let ticks = |nanos: u64| u32::try_from(nanos / NANOS_PER_TICK).unwrap_or(u32::MAX);
    let mut options = Vec::new();
    for field in [ticks(netem.delay_ns), netem.limit, netem.loss, 0, 0, ticks(netem.jitter_ns)] {
        options.extend_from_slice(&field.to_ne_bytes());
    }
    attribute(TCA_NETEM_LATENCY64, &netem.delay_ns.to_ne_bytes(), &mut options);
    attribute(TCA_NETEM_JITTER64, &netem.jitter_ns.to_ne_bytes(), &mut options);
    if let Some(rate) = netem.rate_bytes {
        let mut spec = Vec::with_capacity(16);
        spec.extend_from_slice(&u32::try_from(rate).unwrap_or(u32::MAX).to_ne_bytes());
        spec.extend_from_slice(&[0u8; 12]); // packet overhead, cell size, cell overhead
        attribute(TCA_NETEM_RATE, &spec, &mut options);
        if rate > u64::from(u32::MAX) {
            attribute(TCA_NETEM_RATE64, &rate.to_ne_bytes(), &mut options);
        }
    }
    options
}

/// A tbf's parameters from its TCA_OPTIONS as the kernel dumps them (the burst comes
/// back as a time: converted to bytes at the rate, as `tc` shows it).
pub fn parse_tbf(options: &[u8]) -> Option<Tbf> {
    let mut parms = None;
    let mut rate64 = None;
    for (kind, value) in attributes(options) {
        match kind {
            TCA_TBF_PARMS => parms = Some(value),
            TCA_TBF_RATE64 => rate64 = u64_of(value),
            _ => {}
        }
    }
    let parms = parms?;
    let rate_bytes = rate64.unwrap_or(u64::from(u32_at(parms, 8)?));
    let limit = u32_at(parms, 24)?;
    let ticks = u32_at(parms, 28)?;
    let burst = u128::from(ticks) * u128::from(NANOS_PER_TICK) * u128::from(rate_bytes) / 1_000_000_000;
    Some(Tbf { rate_bytes, burst: u32::try_from(burst).unwrap_or(u32::MAX), limit })
}

/// A netem's parameters from its TCA_OPTIONS as the kernel dumps them.
pub fn parse_netem(options: &[u8]) -> Option<Netem> {
    let ticks = |at| u32_at(options, at).map(|t| u64::from(t) * NANOS_PER_TICK);
    let mut netem = Netem {
        delay_ns: ticks(0)?,
        limit: u32_at(options, 4)?,
        loss: u32_at(options, 8)?,
        jitter_ns: ticks(20)?,
        rate_bytes: None,
    };
    for (kind, value) in attributes(options.get(24..)?) {
        match kind {
            TCA_NETEM_LATENCY64 => netem.delay_ns = u64_of(value)?,
            TCA_NETEM_JITTER64 => netem.jitter_ns = u64_of(value)?,
            TCA_NETEM_RATE => netem.rate_bytes = u32_at(value, 0).filter(|r| *r > 0).map(u64::from),
            _ => {}
        }
    }
    // The 64-bit rate wins over the capped one; looked at last, whatever the order.
    for (kind, value) in attributes(options.get(24..)?) {
        if kind == TCA_NETEM_RATE64 {
            netem.rate_bytes = u64_of(value);
        }
    }
    Some(netem)
}

/// The root qdisc of a reply of RTM_GETQDISC, if someone attached one (handle not 0).
pub fn parse_root(message: &TcMessage) -> Option<RootQdisc> {
    if message.header.parent != TcHandle::ROOT || u32::from(message.header.handle) == 0 {
        return None;
    }
    let mut kind = None;
    let mut options: Option<Vec<u8>> = None;
    for attribute in &message.attributes {
        match attribute {
            TcAttribute::Kind(k) => kind = Some(k.clone()),
            TcAttribute::Options(list) => {
                if let Some(TcOption::Other(nla)) = list.first() {
                    let mut value = vec![0u8; nla.value_len()];
                    nla.emit_value(&mut value);
                    options = Some(value);
                }
            }
            _ => {}
        }
    }
    let kind = kind?;
    let qdisc = match (kind.as_str(), options.as_deref()) {
        ("tbf", Some(options)) => parse_tbf(options).map(Qdisc::Tbf),
        ("netem", Some(options)) => parse_netem(options).map(Qdisc::Netem),
        _ => None,
    };
    Some(RootQdisc { index: u32::try_from(message.header.index).ok()?, kind, qdisc })
}

/// Every attached root qdisc of the socket's namespace.
pub fn root_qdiscs(socket: &OwnedFd) -> Result<Vec<RootQdisc>> {
    let mut found = Vec::new();
    let request = RouteNetlinkMessage::GetQueueDiscipline(TcMessage::default());
    crate::blocking::exchange(socket, request, NLM_F_REQUEST | NLM_F_DUMP, "list qdiscs", |reply| {
        if let RouteNetlinkMessage::NewQueueDiscipline(message) = reply {
            found.extend(parse_root(&message));
        }
    })?;
    Ok(found)
}

/// The request `tc qdisc replace dev DEV root KIND ...` sends.
pub fn replace_message(index: u32, qdisc: &Qdisc) -> TcMessage {
    let mut message = TcMessage::with_index(index as i32);
    message.header.parent = TcHandle::ROOT;
    message.attributes.push(TcAttribute::Kind(qdisc.kind().to_string()));
    let options = match qdisc {
        Qdisc::Tbf(tbf) => tbf_options(tbf),
        Qdisc::Netem(netem) => netem_options(netem),
    };
    message.attributes.push(TcAttribute::Other(DefaultNla::new(TCA_OPTIONS, options)));
    message
}

impl Netlink {
    /// `tc qdisc replace dev DEVICE root ...`: made, or changed in place when the root
    /// qdisc is already of this kind (the link stays as it is).
    pub async fn replace_root_qdisc(&self, index: u32, device: &str, qdisc: &Qdisc) -> Result<()> {
        let step = format!("set {} qdisc on {}", qdisc.kind(), self.qualified(device));
        let message = RouteNetlinkMessage::NewQueueDiscipline(replace_message(index, qdisc));
        self.acknowledged(message, NLM_F_CREATE | NLM_F_REPLACE, &step).await
    }

    /// `tc qdisc del dev DEVICE root`: back to the kernel's default.
    pub async fn delete_root_qdisc(&self, index: u32, device: &str) -> Result<()> {
        let step = format!("delete root qdisc of {}", self.qualified(device));
        let mut message = TcMessage::with_index(index as i32);
        message.header.parent = TcHandle::ROOT;
        self.acknowledged(RouteNetlinkMessage::DelQueueDiscipline(message), 0, &step).await
    }

    /// Send a request built here (rtnetlink's qdisc requests take no options) and wait
    /// for the kernel's answer.
    async fn acknowledged(&self, message: RouteNetlinkMessage, flags: u16, step: &str) -> Result<()> {
        let mut request = NetlinkMessage::from(message);
        request.header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        let mut replies = self.handle().clone().request(request).map_err(|e| Error::netlink(step, e))?;
        while let Some(reply) = replies.next().await {
            if let NetlinkPayload::Error(error) = reply.payload {
                if let Some(code) = error.code {
                    return Err(Error::errno(step, code.get()));
                }
            }
        }
        Ok(())
    }
}

/// Whether this kernel can make a netem qdisc: loaded (/sys/module/sch_netem), built
/// in (modules.builtin), or a module the kernel loads on demand (modules.dep). Read
/// only: nothing is loaded to find out.
pub fn netem_available() -> bool {
    if std::path::Path::new("/sys/module/sch_netem").exists() {
        return true;
    }
    let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") else { return false };
    let dir = std::path::Path::new("/lib/modules").join(release.trim());
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    lists_netem(&read("modules.builtin")) || lists_netem(&read("modules.dep"))
}

/// Whether a modules.builtin or modules.dep names sch_netem (compressed or not).
pub fn lists_netem(list: &str) -> bool {
    list.lines().any(|line| {
        let path = line.split(':').next().unwrap_or_default();
        let file = path.rsplit('/').next().unwrap_or_default();
        file == "sch_netem.ko" || file.starts_with("sch_netem.ko.")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tbf_round_trip() {
        let tbf = Tbf { rate_bytes: 1_250_000, burst: 6600, limit: 69_100 };
        let options = tbf_options(&tbf);
        // PARMS (4 + 36), BURST (4 + 4).
        assert_eq!(options.len(), 48);
        let back = parse_tbf(&options).unwrap();
        assert_eq!((back.rate_bytes, back.limit), (1_250_000, 69_100));
        // The burst goes through ticks of 64 ns: at most a tick's bytes off.
        assert!(back.burst.abs_diff(6600) <= 1, "{back:?}");
        let fast = Tbf { rate_bytes: 5_000_000_000, burst: 1 << 20, limit: 1 << 24 };
        assert_eq!(parse_tbf(&tbf_options(&fast)).unwrap().rate_bytes, 5_000_000_000);
    }

    #[test]
    fn netem_round_trip() {
        let netem = Netem {
            delay_ns: 20_000_000,
            jitter_ns: 5_000_000,
            loss: u32::MAX / 100,
            limit: 1000,
            rate_bytes: Some(125_000),
        };
        assert_eq!(parse_netem(&netem_options(&netem)), Some(netem));
    }

    #[test]
    fn finds_netem_in_module_lists() {
        assert!(lists_netem("kernel/net/sched/sch_tbf.ko\nkernel/net/sched/sch_netem.ko\n"));
        assert!(lists_netem("kernel/net/sched/sch_netem.ko.xz: kernel/lib/x.ko\n"));
        assert!(!lists_netem("kernel/net/sched/sch_tbf.ko:\nkernel/net/sched/sch_netemx.ko:\n"));
    }
}
