//! # xendevicemodel-rs
//!
//! A drop-in replacement for Xen's `libxendevicemodel.so.1`, written in Rust.
//!
//! Device models (QEMU, demu, varstored, virtio back-ends) drive an HVM guest's
//! emulation through Xen's dm_op interface: IOREQ servers, interrupt lines, MSI
//! injection, dirty tracking. This crate exports the same 26 C functions, with
//! Xen's symbol versions, and sends the same bytes to `/dev/xen/privcmd`.
//!
//! Layers, each in one module:
//! - [`xen`]: Xen's and Linux's public structures, layout-checked at compile time;
//! - [`sys`]: the only place that touches libc and Xen's companion libraries;
//! - [`dm`]: the safe API, [`DeviceModel`], one small encoding function per
//!   operation over a single submit path;
//! - [`handle`]: the table that turns C handles into checked keys (use after
//!   close, double close, fork and concurrent close are all defined), with
//!   `hazard` (how a call pins its handle without an atomic read-modify-write)
//!   and `spin` (the lock open and close share);
//! - [`ffi`]: the thin, uniform C ABI over the above;
//! - [`log`]: libxentoollog logging, as Xen does it.

#![warn(missing_docs)]

pub mod dm;
pub mod ffi;
pub mod handle;
mod hazard;
pub mod log;
mod spin;
pub mod sys;
pub mod xen;

pub use dm::DeviceModel;
pub use log::Logger;
