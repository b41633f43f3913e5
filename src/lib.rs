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
//!   libxentoolcore), the first open, fork() and the process generation by
//!   which handles know they were inherited, restrict_all, and why the
//!   library never unloads (→ table, liveness, trace, sys);
//! - [`table`]: handles as checked keys, open and close (→ liveness, lock);
//! - [`liveness`]: how a call keeps its handle alive and close waits for it
//!   (→ lock);
//! - [`trace`]: the call trace (`XENDEVICEMODEL_TRACE`);
//! - [`lock`]: the spin lock of the table and the thread registry;
//! - [`sys`]: what only the C library needs from the system and from Xen's
//!   other C libraries (libxentoollog, libxentoolcore, `pthread_atfork`,
//!   `membarrier`, pthread keys, `gettid`, `RLIMIT_FSIZE`).
//!
//! Device-model requests reach the system through the safe crate's public
//! API (its `*_raw` methods keep Xen's C semantics).
#![warn(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod boundary;
pub mod ffi;
pub mod liveness;
pub mod lock;
pub mod process;
pub mod sys;
pub mod table;
pub mod trace;
