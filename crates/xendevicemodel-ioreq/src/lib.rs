//! # xendevicemodel-ioreq
//!
//! Safe IOREQ-server sessions for device models written in Rust, on Xen.
//!
//! A [`Session`] creates an IOREQ server for a guest, maps its ioreq pages
//! (privcmd's resource mapping, as `xenforeignmemory_map_resource` does),
//! binds one event channel per vCPU and one for buffered requests, claims
//! port, MMIO and PCI ranges and enables the server; [`Session::run`] then
//! hands every request the guest makes to a [`Device`], and answers it with
//! Xen's state transitions and memory ordering. Dropping the session
//! disables and destroys the server, unbinds the ports and unmaps the
//! pages; so do errors during setup, and `run` returns when the process
//! gets SIGINT, SIGTERM or SIGHUP.
//!
//! The device writes no `unsafe` code and never sees the shared page: it
//! gets typed [`Request`]s, or single [`Access`]es, and returns values. Every
//! request is checked before it is acted on ([`request::decode`]): a slot
//! that is not READY, a size other than 1, 2, 4 or 8, a count that is zero
//! or moves more than a page, address arithmetic that wraps, an unknown
//! type are refused with a log line, never used to touch memory. Only a
//! read's value, masked to its size, is written back, into the slot's data
//! field, then the state.
//!
//! ```no_run
//! use std::sync::Arc;
//! use xendevicemodel::DeviceModel;
//! use xendevicemodel_ioreq::{Access, Config, Ctx, Device, IoRange, Session, Space};
//!
//! /// A port that reads back the last byte written to it.
//! struct Latch(u8);
//!
//! impl Device for Latch {
//!     fn read(&mut self, _: &mut Ctx<'_>, _: Access) -> u64 {
//!         self.0 as u64
//!     }
//!     fn write(&mut self, _: &mut Ctx<'_>, _: Access, value: u64) {
//!         self.0 = value as u8;
//!     }
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dm = Arc::new(DeviceModel::open()?);
//! let config = Config { ranges: vec![IoRange::Port { start: 0x510, end: 0x510 }], ..Config::default() };
//! let mut session = Session::open(dm, 5, config)?;
//! let exit = session.run(&mut Latch(0))?; // until SIGINT/SIGTERM/SIGHUP
//! println!("stopped: {exit:?}"); // the server goes away with `session`
//! # Ok(()) }
//! ```
//!
//! ## Testing without a hypervisor
//! The OS side is behind the [`Backend`], [`Pages`] and [`Events`] traits.
//! [`sim::SimXen`] implements them with plain memory and queues: its
//! [`sim::SimVcpu`]s write requests and wait for answers from their own
//! threads, as Xen's vCPUs do, so a device (and this crate's state machine)
//! is tested with `cargo test`.
//!
//! ## PCI devices
//! [`pci::ConfigSpace`] emulates a function's config header: ids, BARs
//! (claimed for the server where the guest places them), INTx with the
//! status and disable bits.
//!
//! ## Layout
//! - `abi`: the shared pages, as structures of atomics, checked against Xen's
//!   layout (the safe crate's [`xendevicemodel::ioreq`], re-exported);
//! - `request`: decoding and checking of requests (pure, fuzzed);
//! - `device`: the [`Device`] trait, [`Server`], [`serve`];
//! - `session`: [`Session`]; `backend`: the traits below it;
//! - `xen`: the real [`Backend`], on the safe crate's OS layer
//!   ([`xendevicemodel::os`]: privcmd mappings, `/dev/xen/evtchn`) and
//!   vmm-sys-util (eventfd, epoll, signal handlers); `signals`: SIGINT,
//!   SIGTERM, SIGHUP for sessions that stop on them. This crate has no
//!   `unsafe` code at all (`forbid(unsafe_code)`);
//! - `sim`: the simulated hypervisor; `pci`: config space emulation.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub use xendevicemodel::ioreq as abi;
mod backend;
mod device;
mod error;
pub mod pci;
pub mod request;
mod session;
mod signals;
pub mod sim;
mod xen;

pub use backend::{Backend, Events, Interrupt, IoRange, Pages, Stopper, Wake};
pub use device::{serve, Access, Ctx, Device, Server, Space};
pub use error::{Error, Result};
pub use request::{Data, Dir, Refusal, Request, Sbdf, Size};
pub use session::{Config, Exit, Session, Stats};
pub use xen::Xen;
pub use xendevicemodel::{BufIoreq, DeviceModel, DomId, IoServId, Logger};
