//! Work that must happen inside a namespace (opening a socket, reading /proc/sys/net)
//! runs on a dedicated thread that setns's into each namespace in turn. Runtime
//! threads never change namespace.

use crate::namespace::{enter, Netns};
use crate::{Error, Result};

/// Run `work` inside each namespace, one thread visiting them in order.
pub fn in_each<T: Send + 'static>(
    namespaces: Vec<Netns>,
    work: impl Fn(&Netns) -> Result<T> + Send + 'static,
) -> Result<Vec<Result<T>>> {
    std::thread::Builder::new()
        .name("netns-visit".into())
        .spawn(move || namespaces.iter().map(|ns| enter(ns).and_then(|()| work(ns))).collect())
        .map_err(|e| Error::io("spawn namespace thread", e))?
        .join()
        .map_err(|_| Error::other("visit namespaces", "thread panicked"))
}

/// Run `work` inside one namespace.
pub fn in_one<T: Send + 'static>(ns: Netns, work: impl FnOnce(&Netns) -> Result<T> + Send + 'static) -> Result<T> {
    let work = std::sync::Mutex::new(Some(work));
    in_each(vec![ns], move |ns| {
        let work = work.lock().expect("unpoisoned").take().expect("called once");
        work(ns)
    })?
    .pop()
    .expect("one result per namespace")
}
