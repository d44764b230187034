//! netlab: declarative network namespace labs. The pure core (`model`, `plan`) turns a
//! file and what the kernel has into an ordered list of changes; the edges
//! (`observe`, `apply`, `check`) talk to the kernel.

pub mod model;
