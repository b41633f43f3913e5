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
//!
//! `unsafe` code is denied in this crate but for the modules that need it,
//! each allowed below with its reason: the C boundary (ffi, boundary, trace:
//! C callers' pointers), the system (sys), and the handle table's lock-free
//! machinery (table, liveness, lock: shared cells, thread-local storage).
//! process.rs allows it for one item, the load-time constructor.
#![deny(missing_docs)]
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

#[allow(unsafe_code)] // the C boundary: out-pointers, buffers, loggers from C
pub mod boundary;
#[allow(unsafe_code)] // the C boundary: the 26 `#[no_mangle]` exports
pub mod ffi;
#[allow(unsafe_code)] // handle pins in static records, TLS in inline assembly
pub mod liveness;
#[allow(unsafe_code)] // a spin lock around an UnsafeCell, released by atfork handlers
pub mod lock;
pub mod process;
#[allow(unsafe_code)] // the C library's system calls and Xen's C libraries
pub mod sys;
#[allow(unsafe_code)] // slots in chunks shared by key, written under the lock
pub mod table;
#[allow(unsafe_code)] // the C boundary: reads C callers' out-values for the trace
pub mod trace;

/// The documents' Rust examples (docs/rust.md: the safe crate's device model
/// and the toolkit's `examples/pci-sum.rs`), compiled by `cargo test` as
/// doctests so that the documents keep up with the crates' APIs. Every
/// document is included, so an example added to any of them is compiled too
/// (other code blocks are labelled `text` or `sh`).
#[cfg(doctest)]
mod documents {
    #[doc = include_str!("../README.md")]
    struct Readme;
    #[doc = include_str!("../docs/architecture.md")]
    struct Architecture;
    #[doc = include_str!("../docs/architectures.md")]
    struct Architectures;
    #[doc = include_str!("../docs/debian-13.md")]
    struct Debian13;
    #[doc = include_str!("../docs/differences.md")]
    struct Differences;
    #[doc = include_str!("../docs/packaging.md")]
    struct Packaging;
    #[doc = include_str!("../docs/performance.md")]
    struct Performance;
    #[doc = include_str!("../docs/real-guests.md")]
    struct RealGuests;
    #[doc = include_str!("../docs/reliability.md")]
    struct Reliability;
    #[doc = include_str!("../docs/rust.md")]
    struct Rust;
    #[doc = include_str!("../docs/testing.md")]
    struct Testing;
    #[doc = include_str!("../docs/trace.md")]
    struct Trace;
    #[doc = include_str!("../docs/using.md")]
    struct Using;
}
