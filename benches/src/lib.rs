//! The whole-process comparison harness behind `viewos-compare`: runs the same workloads
//! natively, under viewos and under PRoot, and renders the medians as markdown tables.
//!
//! Code map: [`opts`] parses the command line, [`tools`] builds the command line for each
//! monitor, [`workloads`] defines what is measured, [`run`] spawns one timed process,
//! [`memory`] samples a monitor's resident set, [`tmpfs`] defines the file workloads run on the kernel's tmpfs and on viewos's own, [`fakeroot`] defines the packaging steps run
//! under Debian's fakeroot, `proot -0` and `viewos -0`, [`cow`] the work in a copy-on-write view
//! made by kernel overlayfs, fuse-overlayfs and `viewos --cow`, [`report`] is the pure part (medians,
//! formatting, tables). Nothing here asserts on timings: numbers are reported, not judged.

pub mod cow;
pub mod fakeroot;
pub mod memory;
pub mod opts;
pub mod report;
pub mod run;
pub mod tmpfs;
pub mod tools;
pub mod workloads;
