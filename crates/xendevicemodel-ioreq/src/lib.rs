//! # xendevicemodel-ioreq
//!
//! Safe IOREQ-server sessions for device models written in Rust, on Xen.
//!
//! A [`Session`] creates an IOREQ server for a guest, maps its ioreq pages
//! (privcmd's resource mapping, as `xenforeignmemory_map_resource` does),
//! binds one event channel per vCPU and one for buffered requests and
//! enables the server; [`Session::run`] then hands every request the guest
//! makes to a [`Handler`], and answers it with Xen's state transitions and
//! memory ordering. Dropping the session disables and destroys the server,
//! unbinds the ports and unmaps the pages; so do errors during setup.
//!
//! The handler is usually a [`Bus`] of [`Device`]s. A device names the
//! regions it decodes (a PCI function's config space and BARs, fixed ports)
//! and receives each access as an [`Access`]: its region, the offset into
//! it, the size. The bus claims the regions for the server, and claims and
//! releases again when a device's regions change (a BAR the guest moved).
//! [`regs`] turns accesses of any size and alignment into reads and masked
//! writes of 32-bit registers.
//!
//! The device writes no `unsafe` code and never sees the shared page: every
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
//! use xendevicemodel_ioreq::{Access, Bus, Config, Ctx, Device, IoRange, RegionId, Session};
//!
//! /// A port that reads back the last byte written to it.
//! struct Latch(u8);
//!
//! impl Device for Latch {
//!     fn regions(&self) -> Vec<(RegionId, IoRange)> {
//!         vec![(0, IoRange::Port { start: 0x510, end: 0x510 })]
//!     }
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
//! let mut bus = Bus::new();
//! bus.add(Latch(0));
//! let config = Config { stop_on_signals: true, ..Config::default() };
//! let mut session = Session::open(dm, 5, config)?;
//! let exit = session.run(&mut bus)?; // until SIGINT/SIGTERM/SIGHUP
//! println!("stopped: {exit:?}"); // the server goes away with `session`
//! # Ok(()) }
//! ```
//!
//! ## Guest memory
//! [`Server::read_guest`] and [`Server::write_guest`] copy guest memory at a
//! guest-physical address. On Xen the guest's frames stay mapped between
//! copies (64 KiB chunks, mapped once, dropped when Xen sends
//! `IOREQ_TYPE_INVALIDATE` or the cache is full), so virtio queues can be
//! walked without a mapping per copy. A frame Xen will not map (a hole)
//! fails the copy with its errno; it never faults.
//!
//! With the feature `vm-memory`, `Server::guest_ram` gives the guest's
//! memory as rust-vmm's `vm_memory::GuestMemory` (`GuestRam`), so code
//! written for vm-memory (the `xendevicemodel-virtio` queues, `Bytes`
//! reads, writes, atomic loads and stores) runs on it unchanged; each
//! [`GuestChunk`] is a `GuestMemoryRegion`.
//!
//! ## Testing without a hypervisor
//! The OS side is behind the [`Backend`], [`Pages`] and [`Events`] traits.
//! The `xendevicemodel-ioreq-sim` crate implements them with plain memory
//! and queues: its vCPUs write requests and wait for answers from their own
//! threads, as Xen's vCPUs do, so a device (and this crate's state machine)
//! is tested with `cargo test`.
//!
//! ## PCI devices
//! [`pci::ConfigSpace`] emulates a function's config header: ids, BARs
//! (its [`regions`](pci::ConfigSpace::regions) follow where the guest places
//! them), INTx with the status and disable bits.
//!
//! ## Signals
//! No signal handler is installed unless a session asks
//! ([`Config::stop_on_signals`]): then SIGINT, SIGTERM and SIGHUP end
//! [`Session::run`] with [`Exit::Signal`].
//!
//! ## Layout
//! - `abi`: the shared pages, as structures of atomics, checked against Xen's
//!   layout (the safe crate's [`xendevicemodel::ioreq`], re-exported);
//! - `request`: decoding and checking of requests (pure, fuzzed);
//! - `device`: the [`Handler`] trait, [`Server`], [`serve`]; `bus`: [`Bus`],
//!   [`Device`]; [`regs`]: register helpers; [`pci`]: config space emulation;
//! - `session`: [`Session`]; `backend`: the traits below it;
//! - `xen`: the real [`Backend`], on the safe crate's OS layer
//!   ([`xendevicemodel::os`]: privcmd mappings, `/dev/xen/evtchn`) and
//!   vmm-sys-util (eventfd, epoll, signal handlers); `signals`: SIGINT,
//!   SIGTERM, SIGHUP for sessions that stop on them. This crate has no
//!   `unsafe` code at all (`forbid(unsafe_code)`: the compiler enforces it).
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub use xendevicemodel::ioreq as abi;
mod backend;
mod bus;
mod device;
mod error;
mod guest;
pub mod pci;
#[cfg(feature = "vm-memory")]
mod ram;
pub mod regs;
pub mod request;
mod session;
mod signals;
mod xen;

pub use backend::{Backend, Events, Interrupt, IoRange, Pages, Stopper, Wake};
pub use bus::{Access, Bus, Device, DeviceId, RegionId};
pub use device::{serve, Ctx, Handler, IoAccess, Server, Space};
pub use error::{Error, Result};
pub use guest::GuestChunk;
#[cfg(feature = "vm-memory")]
pub use ram::GuestRam;
pub use request::{Data, Dir, Refusal, Request, Sbdf, Size};
pub use session::{Config, Exit, Session, Stats};
pub use xen::Xen;
pub use xendevicemodel::{BufIoreq, DeviceModel, DomId, IoServId, Logger};

/// The crate README's example, compiled by `cargo test` (a doctest), so
/// that the README keeps up with the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctest;

/// Installs the SIGINT, SIGTERM and SIGHUP handlers that sessions with
/// [`Config::stop_on_signals`] use (once per process; what a [`Backend`]
/// of one's own calls for such a session).
pub fn install_stop_signals() -> Result<()> {
    signals::install().map(drop).map_err(|errno| Error::Os { what: "signal handlers", errno })
}

/// The last of SIGINT, SIGTERM and SIGHUP received since the handlers were
/// installed, if any.
pub fn stop_signal() -> Option<i32> {
    signals::signalled()
}
