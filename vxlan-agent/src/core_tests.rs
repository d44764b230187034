//! The agent's decisions, driven without a kernel: what goes in is what the loop
//! would feed, what comes out is compared with what it should do.

use std::net::IpAddr;

use netlab_store::endpoints::Mac;
use netlab_store::{Change, KeyPath, Value};

use super::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}
fn mac(s: &str) -> Mac {
    s.parse().unwrap()
}

fn put(path: &str, value: &str) -> Change {
    let path = KeyPath::new(path).unwrap();
    let value = Value::new(&path, value).unwrap();
    Change::Put(path, value)
}

/// ct1 lives on this host (192.168.104.2), ct2 on host2.
fn snapshot() -> Vec<Change> {
    vec![
        Change::Reset,
        put("arp/11.11.11.2", "02:42:c0:a8:00:02"),
        put("fdb/02:42:c0:a8:00:02", "192.168.104.2"),
        put("arp/11.11.11.3", "02:42:c0:a8:00:03"),
        put("fdb/02:42:c0:a8:00:03", "192.168.104.3"),
        Change::Synced,
    ]
}

const DEVICE: Device = Device { index: 7, local: Some(IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 104, 2))) };

fn vxlan(installed: Installed) -> Result<Observation, String> {
    Ok(Observation {
        device: DeviceState::Vxlan(DEVICE),
        entries: Some(Observed { installed, foreign: BTreeSet::new() }),
    })
}

fn ct2() -> Vec<Action> {
    vec![
        Action::SetNeighbour(ip("11.11.11.3"), mac("02:42:c0:a8:00:03")),
        Action::SetFdb(mac("02:42:c0:a8:00:03"), ip("192.168.104.3")),
    ]
}

/// A core that has read the store and the device and installed ct2's entries.
fn converged(mode: Mode) -> Core {
    let mut core = Core::new(mode, "vxlan1", &[]);
    assert_eq!(core.start(), Some(Effect::Observe("start")));
    assert_eq!(core.observed("start", vxlan(Installed::default())), None, "nothing before the store is read");
    assert_eq!(core.on_store(snapshot()), Some(Effect::Observe("store snapshot")));
    if mode == Mode::Proactive {
        let effect = core.observed("store snapshot", vxlan(Installed::default()));
        assert_eq!(effect, Some(Effect::Apply { index: 7, actions: ct2() }));
        assert_eq!(core.applied(&ct2(), Ok(vec![Ok(()), Ok(())])), None);
        assert_eq!(core.counters.installed, 2);
    } else {
        assert_eq!(core.observed("store snapshot", vxlan(Installed::default())), None);
    }
    core
}

#[test]
fn proactive_installs_remote_endpoints_once_store_and_device_are_read() {
    let core = converged(Mode::Proactive);
    assert_eq!(core.installed().neighbours.len(), 1);
    assert_eq!(core.local, [ip("192.168.104.2")].into(), "the device's local address is this host's VTEP");
}

#[test]
fn a_store_change_touches_only_its_slots() {
    let mut core = converged(Mode::Proactive);
    let effect = core.on_store(vec![put("arp/11.11.11.3", "02:42:c0:a8:00:09")]);
    let change = vec![Action::SetNeighbour(ip("11.11.11.3"), mac("02:42:c0:a8:00:09"))];
    assert_eq!(effect, Some(Effect::Apply { index: 7, actions: change }));
    // Garbage in the store is never installed.
    assert_eq!(core.on_store(vec![put("arp/127.0.0.1", "02:42:c0:a8:00:09")]), None);
    assert_eq!(core.on_store(vec![put("arp/ff02::1", "02:42:c0:a8:00:09")]), None);
}

#[test]
fn an_overrun_or_a_tick_rereads_the_kernel_and_repairs() {
    let mut core = converged(Mode::Proactive);
    assert_eq!(core.on_overrun(), Some(Effect::Observe("netlink overrun")));
    assert_eq!(core.counters.overruns, 1);
    // Someone deleted the neighbour entry meanwhile: the full reconcile puts it back.
    let mut installed = Installed::default();
    installed.fdb.insert(mac("02:42:c0:a8:00:03"), ip("192.168.104.3"));
    let effect = core.observed("netlink overrun", vxlan(installed));
    assert_eq!(effect, Some(Effect::Apply { index: 7, actions: vec![ct2()[0]] }));
    assert_eq!(core.on_tick(), Some(Effect::Observe("periodic")));
}

#[test]
fn a_namespace_made_again_is_filled_again() {
    let mut core = converged(Mode::Proactive);
    assert_eq!(core.on_namespace_changed(), Some(Effect::Observe("namespace made again")));
    assert!(core.installed().neighbours.is_empty());
    assert_eq!(core.device(), None);
    // The new namespace has no device yet: nothing to do, and status says why.
    let missing = Ok(Observation { device: DeviceState::Missing, entries: None });
    assert_eq!(core.observed("namespace made again", missing), None);
    assert!(core.device_problem().unwrap().contains("not found"));
    // The device appears: a resync, which installs everything again.
    let appeared = vec![Event::Link { index: 9, name: "vxlan1".into() }];
    assert_eq!(core.on_kernel(appeared), Some(Effect::Observe("device appeared")));
    assert_eq!(
        core.observed("device appeared", vxlan(Installed::default())),
        Some(Effect::Apply { index: 7, actions: ct2() })
    );
    assert_eq!(core.device_problem(), None);
}

#[test]
fn a_device_of_another_kind_is_not_served() {
    let mut core = Core::new(Mode::Proactive, "vxlan1", &[]);
    core.on_store(snapshot());
    let veth = Ok(Observation { device: DeviceState::NotVxlan(Some("veth".into())), entries: None });
    assert_eq!(core.observed("start", veth), None);
    assert!(core.device_problem().unwrap().contains("is a veth device, not a VXLAN device"));
}

#[test]
fn miss_mode_answers_misses_and_ignores_what_it_does_not_serve() {
    let mut core = converged(Mode::Miss);
    let events = vec![
        Event::L3Miss { index: 7, ip: ip("11.11.11.3") },
        Event::L3Miss { index: 7, ip: ip("11.11.11.3") },
        Event::L3Miss { index: 7, ip: ip("fe80::1") },
        // Another device's miss is not ours.
        Event::L3Miss { index: 8, ip: ip("11.11.11.3") },
    ];
    let effect = core.on_kernel(events);
    assert_eq!(effect, Some(Effect::Apply { index: 7, actions: vec![ct2()[0]] }));
    assert_eq!((core.counters.l3_misses, core.counters.ignored_misses, core.answered()), (2, 1, 2));
    let effect = core.on_kernel(vec![Event::L2Miss { index: 7, mac: mac("02:42:c0:a8:00:03") }]);
    assert_eq!(effect, Some(Effect::Apply { index: 7, actions: vec![ct2()[1]] }));
}

#[test]
fn a_vanished_device_under_a_change_is_looked_up_again() {
    let mut core = converged(Mode::Proactive);
    let change = vec![Action::RemoveNeighbour(ip("11.11.11.3"))];
    assert_eq!(core.applied(&change, Ok(vec![Err(libc::ENODEV)])), Some(Effect::Observe("device changed")));
    assert_eq!(core.counters.failed, 1);
    assert_eq!(core.applied(&change, Err("send: no buffer space".into())), Some(Effect::Observe("device changed")));
}

#[test]
fn store_failures_keep_the_entries() {
    let mut core = converged(Mode::Proactive);
    let failed = Change::Failed(netlab_store::Error::WatchEnded { what: "/x".into(), why: "stream ended".into() });
    assert_eq!(core.on_store(vec![failed]), None);
    assert_eq!(core.counters.store_errors, 1);
    assert_eq!(core.installed().neighbours.len(), 1);
}

#[test]
fn a_snapshot_cut_short_by_a_failure_keeps_the_old_table() {
    let mut core = converged(Mode::Proactive);
    let failed = Change::Failed(netlab_store::Error::WatchEnded { what: "/x".into(), why: "stream ended".into() });
    // A new listing starts, loses one key on the way, then fails before it completes.
    let effect = core.on_store(vec![Change::Reset, put("arp/11.11.11.2", "02:42:c0:a8:00:02"), failed]);
    assert_eq!(effect, None, "nothing removed on a partial listing");
    assert_eq!(core.store_keys(), 4);
    assert_eq!(core.installed().neighbours.len(), 1);
}

#[test]
fn misses_for_unknown_addresses_are_not_remembered() {
    let mut core = converged(Mode::Miss);
    let effect = core.on_kernel(vec![Event::L3Miss { index: 7, ip: ip("11.11.11.99") }]);
    assert_eq!((effect, core.counters.unknown_misses, core.answered()), (None, 1, 0));
    // The address appears in the store later: in miss mode nothing is installed until
    // the kernel asks again (it does, every second).
    assert_eq!(core.on_store(vec![put("arp/11.11.11.99", "02:42:c0:a8:00:63")]), None);
    let effect = core.on_kernel(vec![Event::L3Miss { index: 7, ip: ip("11.11.11.99") }]);
    let install = vec![Action::SetNeighbour(ip("11.11.11.99"), mac("02:42:c0:a8:00:63"))];
    assert_eq!(effect, Some(Effect::Apply { index: 7, actions: install }));
}
