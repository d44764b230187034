//! `links:`: each link's two endpoints make a veth pair.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_saphyr::Location;

use super::{node_hint, Draft, PlaceDraft, Validator};
use crate::model::names::{IfName, Place, HOST};
use crate::model::raw::{Located, RawLink};
use crate::model::topology::{Endpoint, LinkKind, LinkSpec};

impl Validator {
    pub(super) fn endpoint(&mut self, text: &Located<String>, known: &BTreeSet<Place>) -> Option<Endpoint> {
        let (place_text, name_text) = match text.value.split_once(':') {
            Some((place, name)) => (place, name),
            None => (HOST, text.value.as_str()),
        };
        let place: Place = match place_text.parse() {
            Ok(place) if known.contains(&place) => place,
            _ => {
                self.error(
                    &text.referenced,
                    format!("unknown node `{place_text}` in endpoint `{}`{}", text.value, node_hint(place_text, known)),
                );
                return None;
            }
        };
        match name_text.parse::<IfName>() {
            Ok(name) => Some(Endpoint { place, name }),
            Err(message) => {
                self.error(&text.referenced, message);
                None
            }
        }
    }

    pub(super) fn links(
        &mut self,
        links: &[RawLink],
        known: &BTreeSet<Place>,
        drafts: &mut BTreeMap<Place, PlaceDraft>,
    ) {
        let mut used: HashMap<Endpoint, Location> = HashMap::new();
        for link in links {
            let raw_ends = &link.endpoints.value;
            if raw_ends.len() != 2 {
                self.error(
                    &link.endpoints.referenced,
                    format!("a link has exactly 2 endpoints, found {}", raw_ends.len()),
                );
                continue;
            }
            let ends: Vec<Option<Endpoint>> = raw_ends.iter().map(|e| self.endpoint(e, known)).collect();
            let [Some(a), Some(b)] = [ends[0].clone(), ends[1].clone()] else {
                // The link is reported; its valid end is not "unlinked" on top of that,
                // and a second link using it is told so.
                for (end, raw) in ends.iter().zip(raw_ends).filter_map(|(e, r)| Some((e.as_ref()?, r))) {
                    used.entry(end.clone()).or_insert(raw.referenced);
                    if let Some(draft) = drafts.get_mut(&end.place).and_then(|d| d.links.get_mut(&end.name)) {
                        draft.unlinked = false;
                        draft.spec.kind = LinkKind::Veth { peer: end.clone() };
                    }
                }
                continue;
            };
            let mut ok = true;
            for (end, raw) in [(&a, &raw_ends[0]), (&b, &raw_ends[1])] {
                if used.contains_key(end) || (a == b && std::ptr::eq(end, &b)) {
                    self.error(&raw.referenced, format!("endpoint `{end}` is used by more than one link"));
                    ok = false;
                    continue;
                }
                used.insert(end.clone(), raw.referenced);
                if end.name.is_loopback() {
                    self.error(&raw.referenced, format!("endpoint `{end}` names `lo`, not a veth end"));
                    ok = false;
                    continue;
                }
                let draft = drafts.get_mut(&end.place).expect("known place");
                match draft.links.get(&end.name) {
                    Some(existing) if !existing.unlinked => {
                        let message = match existing.spec.kind {
                            LinkKind::Bridge => format!("endpoint `{end}` names a bridge, not a veth end"),
                            LinkKind::Veth { .. } => format!("endpoint `{end}` is used by more than one link"),
                            _ => format!("endpoint `{end}` names `lo`, not a veth end"),
                        };
                        self.error(&raw.referenced, message);
                        ok = false;
                    }
                    _ => {}
                }
            }
            if !ok {
                // Reported; its other end is linked all the same (no "not an endpoint of
                // any link" on top).
                for end in [&a, &b] {
                    if let Some(draft) = drafts.get_mut(&end.place).and_then(|d| d.links.get_mut(&end.name)) {
                        draft.unlinked = false;
                    }
                }
                continue;
            }
            for (end, peer, raw) in [(&a, &b, &raw_ends[0]), (&b, &a, &raw_ends[1])] {
                let draft = drafts.get_mut(&end.place).expect("known place");
                let entry = draft.links.entry(end.name.clone()).or_insert_with(|| {
                    Box::new(Draft {
                        at: raw.referenced,
                        spec: LinkSpec::new(LinkKind::Bridge),
                        unlinked: true,
                        bridge_ref: None,
                    })
                });
                entry.unlinked = false;
                entry.spec.kind = LinkKind::Veth { peer: peer.clone() };
            }
        }
    }
}
