//! # xendevicemodel-rs: the C library
//!
//! A drop-in replacement for Xen's `libxendevicemodel.so.1`: the same 26 C
//! functions with Xen's symbol versions, the same bytes to
//! `/dev/xen/privcmd`, and defined behaviour where Xen's is undefined. The
//! device-model operations themselves are the safe `xendevicemodel` crate
//! (crates/xendevicemodel); this crate is what C needs around them.
//!
//! Modules, each owning one thing (arrows: "uses"):
//! - [`ffi`]: the 26 exports, one `entry!` line each (the header's source);
//! - [`boundary`]: how every export runs: panics caught, the handle looked
//!   up, out-pointers checked, the result turned into 0 / -1 + errno, the
//!   trace written (→ table, process, trace);
//! - [`process`]: everything process-wide: load-time setup (atfork,
//!   libxentoolcore), the first open, fork(), and why the library never
//!   unloads (→ table, liveness);
//! - [`table`]: handles as checked keys, open and close (→ liveness, lock);
//! - [`liveness`]: how a call keeps its handle alive and close waits for it
//!   (→ lock);
//! - [`trace`]: the call trace (`XENDEVICEMODEL_TRACE`);
//! - [`lock`]: the spin lock of the table and the thread registry.
//!
//! All access to the system and to Xen's other libraries is the safe
//! crate's `os` module, reached through its `capi` module.
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod boundary;
pub mod ffi;
pub mod liveness;
pub mod lock;
pub mod process;
pub mod table;
pub mod trace;
