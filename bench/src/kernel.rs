//! The benchmark's sandbox, and counting what a lab left in the kernel so that every
//! way of building it can be checked to build the same thing.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use netns::Netns;
use serde::Serialize;

/// Leave the machine's network before doing anything: fresh network and mount
/// namespaces for this process (called first thing, while it has one thread), mounts
/// kept private, tmpfs over /run/netns, /run/netlab and /run/vxlan-agent, sysfs mounted again.
pub fn enter_sandbox() -> Result<()> {
    // SAFETY: plain system calls on our own process, before any other thread exists.
    if unsafe { libc::unshare(libc::CLONE_NEWNET | libc::CLONE_NEWNS) } != 0 {
        bail!("unshare network and mount namespaces: {}", std::io::Error::last_os_error());
    }
    let root = std::ffi::CString::new("/").expect("no NUL");
    // SAFETY: as above; a null source, type and data are allowed for a propagation change.
    let rc = unsafe {
        libc::mount(
            std::ptr::null(),
            root.as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        bail!("make mounts private: {}", std::io::Error::last_os_error());
    }
    for dir in ["/run/netns", "/run/netlab", "/run/vxlan-agent"] {
        std::fs::create_dir_all(dir)?;
        mount("tmpfs", dir, "tmpfs")?;
    }
    mount("sysfs", "/sys", "sysfs")?;
    let status = std::process::Command::new("ip").args(["link", "set", "lo", "up"]).status().context("run ip")?;
    if !status.success() {
        bail!("ip link set lo up failed");
    }
    Ok(())
}

fn mount(source: &str, target: &str, fstype: &str) -> Result<()> {
    let c = |s: &str| std::ffi::CString::new(s).expect("no NUL");
    let (source, target_c, fstype) = (c(source), c(target), c(fstype));
    // SAFETY: valid NUL-terminated strings; no data argument.
    let rc = unsafe { libc::mount(source.as_ptr(), target_c.as_ptr(), fstype.as_ptr(), 0, std::ptr::null()) };
    if rc != 0 {
        bail!("mount {target}: {}", std::io::Error::last_os_error());
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct KernelState {
    pub namespaces: usize,
    pub links: usize,
    pub ipv4_addresses: usize,
}

/// Namespaces under /run/netns, and links and IPv4 addresses in them and in the host.
/// (IPv6 link-local addresses are left out: the iproute2 scripts do not switch them
/// off, netlab does.)
///
/// Counted on plain sockets from one thread, so that this process stays small: a child
/// started with vfork reports the parent's peak memory as its own (the kernel folds
/// the shared memory's high-water mark into the child's at exec), which would spoil
/// netlab's peak RSS figure.
pub fn count() -> Result<KernelState> {
    let names = netns::namespace::list()?;
    let mut places = vec![Netns::Host];
    places.extend(names.iter().cloned().map(Netns::Named));
    let counts = netns::thread::in_each(places, |_| {
        let socket = netns::Netlink::open_socket_here()?;
        let links = netns::blocking::links(&socket)?.len();
        let ipv4 = netns::blocking::addresses(&socket)?.iter().filter(|a| a.network.is_ipv4()).count();
        Ok((links, ipv4))
    })?;
    let mut state = KernelState { namespaces: names.len(), links: 0, ipv4_addresses: 0 };
    for counted in counts {
        let (links, ipv4) = counted?;
        state.links += links;
        state.ipv4_addresses += ipv4;
    }
    Ok(state)
}

/// This process's own peak memory, printed beside netlab's (see `count`).
pub fn own_peak_rss_mb() -> f64 {
    // SAFETY: getrusage fills a plain struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    usage.ru_maxrss as f64 / 1024.0
}

/// Wait until the kernel is back to `empty` (links of deleted namespaces go
/// asynchronously); the time it took.
pub fn settle(empty: KernelState) -> Result<f64> {
    let started = Instant::now();
    loop {
        let now = count()?;
        if now == empty {
            return Ok(started.elapsed().as_secs_f64());
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("the kernel did not return to its empty state: {now:?}, expected {empty:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
