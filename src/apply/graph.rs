//! The order creation needs, as a dependency graph: a veth waits for its namespaces and
//! bridges, an address for its link. Ready changes are taken namespace by namespace,
//! so each namespace is finished (and its connection closed) before later ones start,
//! while namespace creation runs ahead on its own thread.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use crate::model::Place;
use crate::plan::{Change, Resource};

pub struct Graph {
    waiting: Vec<usize>,
    dependents: Vec<Vec<usize>>,
    home: Vec<Place>,
    ready: BinaryHeap<Reverse<(Place, usize)>>,
    unfinished: usize,
}

impl Graph {
    pub fn new(changes: &[Change]) -> Graph {
        let mut provider: HashMap<Resource, usize> = HashMap::new();
        for (i, change) in changes.iter().enumerate() {
            for key in change.provides() {
                provider.insert(key, i);
            }
        }
        let mut waiting = vec![0; changes.len()];
        let mut dependents = vec![Vec::new(); changes.len()];
        for (i, change) in changes.iter().enumerate() {
            for key in change.needs() {
                if let Some(&p) = provider.get(&key) {
                    if p != i {
                        waiting[i] += 1;
                        dependents[p].push(i);
                    }
                }
            }
        }
        let home: Vec<Place> = changes.iter().map(Change::home).collect();
        let ready = (0..changes.len()).filter(|&i| waiting[i] == 0).map(|i| Reverse((home[i].clone(), i))).collect();
        Graph { waiting, dependents, home, ready, unfinished: changes.len() }
    }

    /// The next ready change: the earliest namespace first, then plan order.
    pub fn next_ready(&mut self) -> Option<usize> {
        self.ready.pop().map(|Reverse((_, i))| i)
    }

    /// Take a ready change out of the queue to run it elsewhere (namespace creation).
    pub fn take(&mut self, wanted: impl Fn(usize) -> bool) -> Vec<usize> {
        let (taken, kept): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.ready).into_iter().partition(|Reverse((_, i))| wanted(*i));
        self.ready = kept.into_iter().collect();
        let mut taken: Vec<usize> = taken.into_iter().map(|Reverse((_, i))| i).collect();
        taken.sort_unstable();
        taken
    }

    /// Mark a change done; the changes it unblocks become ready.
    pub fn complete(&mut self, i: usize) {
        self.unfinished -= 1;
        for d in std::mem::take(&mut self.dependents[i]) {
            self.waiting[d] -= 1;
            if self.waiting[d] == 0 {
                self.ready.push(Reverse((self.home[d].clone(), d)));
            }
        }
    }

    pub fn unfinished(&self) -> usize {
        self.unfinished
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(file: &str) -> Vec<Change> {
        let lab = crate::model::parse("lab.yaml", file).unwrap();
        crate::plan::plan(&lab.namespaces, &Default::default(), &Default::default()).unwrap().changes
    }

    #[test]
    fn namespaces_are_finished_one_after_another() {
        let changes = plan(
            "name: s\nhost:\n  bridges: {br0: {}}\n  interfaces: {p0: {bridge: br0}, p1: {bridge: br0}}\n\
             nodes:\n  a: {interfaces: {eth0: {addresses: [10.0.0.1/24]}}}\n  b: {interfaces: {eth0: {addresses: [10.0.0.2/24]}}}\n\
             links:\n  - endpoints: [a:eth0, p0]\n  - endpoints: [b:eth0, p1]\n",
        );
        let mut graph = Graph::new(&changes);
        let namespaces = graph.take(|i| matches!(changes[i], Change::CreateNamespace { .. }));
        assert_eq!(namespaces.len(), 2);
        let mut order = Vec::new();
        for i in namespaces {
            graph.complete(i);
        }
        while let Some(i) = graph.next_ready() {
            order.push(changes[i].to_string());
            graph.complete(i);
        }
        assert_eq!(
            order,
            [
                "+ bridge br0",
                "+ veth p0 master br0 <-> a:eth0",
                "+ address 10.0.0.1/24 on a:eth0",
                "+ veth p1 master br0 <-> b:eth0",
                "+ address 10.0.0.2/24 on b:eth0",
            ]
        );
        assert_eq!(graph.unfinished(), 0);
    }

    #[test]
    fn nothing_runs_before_what_it_needs() {
        let changes = plan(
            "name: s\nnodes:\n  a: {interfaces: {e: {addresses: [10.0.0.1/24]}}}\n  b: {}\nlinks:\n  - endpoints: [a:e, b:e]\n",
        );
        let mut graph = Graph::new(&changes);
        // Only the namespaces are ready at first.
        let ready = graph.take(|_| true);
        assert!(ready.iter().all(|&i| matches!(changes[i], Change::CreateNamespace { .. })), "{ready:?}");
        graph.complete(ready[0]);
        assert_eq!(graph.next_ready(), None, "the veth needs both namespaces");
        graph.complete(ready[1]);
        let veth = graph.next_ready().unwrap();
        assert!(matches!(changes[veth], Change::CreateVeth { .. }));
        assert_eq!(graph.next_ready(), None, "the address needs the veth");
    }
}
