//! `extends:`: a lab file is its base plus its own differences. The rules, simple on
//! purpose (the README states them): mappings merge key by key, recursively, and for a
//! single value the extending file wins; lists are appended after the base's, except
//! `checks`, which a file that lists any lists all of (a part's checks are what it
//! proves); an entry that repeats an inherited one, and a VXLAN device declared again,
//! are errors at the extending file's value. Pure: both files are already parsed.

use indexmap::IndexMap;

use super::diagnostic::Diagnostic;
use super::raw::{Located, RawInterface, RawLink, RawNat, RawNode, RawRoute, RawTopology};

/// `base` with `over` applied; errors point into `over`'s file.
pub fn merge(base: RawTopology, over: RawTopology) -> Result<RawTopology, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let merged = RawTopology {
        extends: None,
        name: over.name.or(base.name),
        nodes: merge_named(base.nodes, over.nodes, &mut errors, |base, over, errors| {
            Merged::Both(Some(merge_node(base.unwrap_or_default(), over.unwrap_or_default(), errors)))
        }),
        host: match (base.host, over.host) {
            (Some(base), Some(over)) => Some(merge_node(base, over, &mut errors)),
            (base, over) => over.or(base),
        },
        links: append(base.links, over.links, &mut errors, same_link, |link| {
            (link.endpoints.referenced, format!("link {} is already declared in the base file", link_text(link)))
        }),
        checks: if over.checks.is_empty() { base.checks } else { over.checks },
    };
    if errors.is_empty() {
        Ok(merged)
    } else {
        errors.sort_by_key(|d| (d.line, d.column));
        Err(errors)
    }
}

fn merge_node(base: RawNode, over: RawNode, errors: &mut Vec<Diagnostic>) -> RawNode {
    RawNode {
        interfaces: merge_named(base.interfaces, over.interfaces, errors, merge_interface),
        bridges: merge_named(base.bridges, over.bridges, errors, merge_interface),
        routes: append(base.routes, over.routes, errors, same_route, |route| {
            (route.to.referenced, format!("route to {} is already declared in the base file", route.to.value))
        }),
        sysctls: merge_named(base.sysctls, over.sysctls, errors, |_, over, _| Merged::Both(over)),
        nat: match (base.nat, over.nat) {
            (Some(base), Some(over)) => Some(RawNat {
                masquerade: joined(base.masquerade, over.masquerade),
                publish: joined(base.publish, over.publish),
            }),
            (base, over) => over.or(base),
        },
        // A VXLAN device has required fields, so one cannot be changed field by field.
        vxlans: merge_named(base.vxlans, over.vxlans, errors, |base, _, _| Merged::Conflict(base)),
        neighbours: joined(base.neighbours, over.neighbours),
        fdb: joined(base.fdb, over.fdb),
        // The file that extends may give the node daemon other options.
        node: over.node.or(base.node),
    }
}

fn merge_interface(
    base: Option<RawInterface>,
    over: Option<RawInterface>,
    errors: &mut Vec<Diagnostic>,
) -> Merged<Option<RawInterface>> {
    let (base, over) = (base.unwrap_or_default(), over.unwrap_or_default());
    Merged::Both(Some(RawInterface {
        addresses: append(
            base.addresses,
            over.addresses,
            errors,
            |a, b| a.value == b.value,
            |address| (address.referenced, format!("address {} is already declared in the base file", address.value)),
        ),
        mtu: over.mtu.or(base.mtu),
        mac: over.mac.or(base.mac),
        up: over.up.or(base.up),
        bridge: over.bridge.or(base.bridge),
        ipv6_autoconf: over.ipv6_autoconf.or(base.ipv6_autoconf),
        rate: over.rate.or(base.rate),
        burst: over.burst.or(base.burst),
        latency: over.latency.or(base.latency),
        delay: over.delay.or(base.delay),
        jitter: over.jitter.or(base.jitter),
        loss: over.loss.or(base.loss),
    }))
}

/// What merging two values of one key gave.
enum Merged<T> {
    Both(T),
    /// They cannot merge: the base's value, kept; an error at the extending file's key.
    Conflict(T),
}

/// Key by key, in the base's order then the new keys in `over`'s; a key in both is
/// merged by `both`. Keys compare by text (a `Located` also compares
/// its location).
fn merge_named<T>(
    base: IndexMap<Located<String>, T>,
    over: IndexMap<Located<String>, T>,
    errors: &mut Vec<Diagnostic>,
    both: impl Fn(T, T, &mut Vec<Diagnostic>) -> Merged<T>,
) -> IndexMap<Located<String>, T> {
    let mut over: IndexMap<String, Option<(Located<String>, T)>> =
        over.into_iter().map(|(key, value)| (key.value.clone(), Some((key, value)))).collect();
    let mut merged = IndexMap::with_capacity(base.len() + over.len());
    for (key, value) in base {
        match over.get_mut(&key.value).and_then(Option::take) {
            Some((over_key, over_value)) => {
                let value = match both(value, over_value, errors) {
                    Merged::Both(value) => value,
                    Merged::Conflict(base) => {
                        let message = format!("`{}` is already declared in the base file", over_key.value);
                        errors.push(Diagnostic::at(&over_key.referenced, message));
                        base
                    }
                };
                merged.insert(key, value);
            }
            None => {
                merged.insert(key, value);
            }
        }
    }
    merged.extend(over.into_values().flatten());
    merged
}

/// The base's entries, then `over`'s; an entry of `over` that repeats one of the base
/// is an error where `describe` says.
fn append<T>(
    base: Vec<T>,
    over: Vec<T>,
    errors: &mut Vec<Diagnostic>,
    same: impl Fn(&T, &T) -> bool,
    describe: impl Fn(&T) -> (serde_saphyr::Location, String),
) -> Vec<T> {
    for entry in &over {
        if base.iter().any(|inherited| same(inherited, entry)) {
            let (at, message) = describe(entry);
            errors.push(Diagnostic::at(&at, message));
        }
    }
    joined(base, over)
}

fn same_link(a: &RawLink, b: &RawLink) -> bool {
    let mut a: Vec<&str> = a.endpoints.value.iter().map(|e| e.value.as_str()).collect();
    let mut b: Vec<&str> = b.endpoints.value.iter().map(|e| e.value.as_str()).collect();
    a.sort_unstable();
    b.sort_unstable();
    a == b
}

fn link_text(link: &RawLink) -> String {
    let endpoints: Vec<&str> = link.endpoints.value.iter().map(|e| e.value.as_str()).collect();
    format!("[{}]", endpoints.join(", "))
}

fn same_route(a: &RawRoute, b: &RawRoute) -> bool {
    let text = |v: &Option<Located<String>>| v.as_ref().map(|v| v.value.clone());
    a.to.value == b.to.value && text(&a.via) == text(&b.via) && text(&a.dev) == text(&b.dev)
}

fn joined<T>(mut base: Vec<T>, over: Vec<T>) -> Vec<T> {
    base.extend(over);
    base
}
