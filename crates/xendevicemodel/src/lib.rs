//! # xendevicemodel
//!
//! A safe Rust API for Xen's device-model interface: the `dm_op` hypercalls
//! a device model (QEMU, demu, a virtio back-end, a Rust emulator) uses to
//! serve an HVM or Arm guest's I/O. Create an IOREQ server, claim port, MMIO
//! and PCI ranges, enable it, raise ISA IRQs, PCI INTx lines and Arm
//! interrupt lines, inject MSIs, track dirty memory.
//!
//! It talks to Linux's `/dev/xen/privcmd` directly (libxencall only on
//! kernels without privcmd's DM_OP ioctl), sends the same bytes as Xen's C
//! library `libxendevicemodel`, allocates nothing per operation, and reports
//! typed [`Error`]s. It is the core of `xendevicemodel-rs`, a drop-in
//! replacement for that C library.
//!
//! ```no_run
//! use xendevicemodel::{BufIoreq, DeviceModel, IoSpace, Sbdf};
//!
//! # fn main() -> xendevicemodel::Result<()> {
//! let domid = 5;
//! let dm = DeviceModel::open()?;
//! let id = dm.create_ioreq_server(domid, BufIoreq::Off)?;
//! dm.map_io_range(domid, id, IoSpace::Port, 0x3f8, 0x3ff)?; // a UART
//! dm.map_pcidev(domid, id, Sbdf::new(0, 0, 3, 0))?; // 0000:00:03.0
//! dm.set_ioreq_server_state(domid, id, true)?;
//! // ... serve the ioreq pages (see Xen's public/hvm/ioreq.h) ...
//! dm.set_isa_irq_level(domid, 4, true)?;
//! dm.set_isa_irq_level(domid, 4, false)?;
//! dm.destroy_ioreq_server(domid, id)?;
//! # Ok(()) }
//! ```
//!
//! ## Threads and fork
//! A [`DeviceModel`] is `Send + Sync`: share it between threads with a
//! reference or an `Arc`. A child process after `fork()` cannot use a
//! handle its parent opened ([`Error::Inherited`], nothing is sent: the
//! open file, and any restriction of it, is shared with the parent); it
//! opens its own.
//!
//! ## Errors
//! Every operation returns [`Result`]. [`Error::errno`] gives the errno Xen's
//! C API reports for it; [`Error::Os`] carries what the kernel or the
//! hypervisor answered (`ESRCH`: no such domain, `EPERM`: not permitted or
//! restricted to another domain, ...).
//!
//! A program with fork handlers of its own (the C library built on this
//! crate) can own the fork story itself: see [`Generation`].
//!
//! ## Exactly Xen's requests
//! The `*_raw` methods send values the typed ones would narrow or refuse
//! (any 8-bit level, any buffered-ioreq mode) and caller memory the kernel
//! checks ([`UserPtr`]), so that a caller can reproduce any request of Xen's
//! C library byte for byte; [`DeviceModel::open_privcmd`] opens without
//! calling user code, for callers that hold locks meanwhile.
//!
//! ## Layout
//! - `abi`: Xen's dm_op structures, encoded safely at Xen's offsets;
//! - `arch`: what differs between x86_64, arm64 and armhf, checked at compile time;
//! - [`os`]: the OS layer, for this crate and the ioreq toolkit, and the only
//!   module with `unsafe` code (the compiler enforces it): privcmd,
//!   libxencall, fork detection, privcmd mappings, `/dev/xen/evtchn`;
//! - `dm`: [`DeviceModel`]; `log`: [`Logger`]; `error`: [`Error`];
//! - `space`: [`IoSpace`], [`IoRange`], [`Space`], [`Sbdf`], the vocabulary shared with the toolkit;
//! - [`ioreq`]: the pages an IOREQ server shares with Xen, as structures of
//!   atomics (what the toolkit serves requests from).
#![deny(missing_docs)]
#![deny(unsafe_code)]
#![deny(unsafe_op_in_unsafe_fn)]

mod abi;
pub mod arch;
mod dm;
mod error;
pub mod ioreq;
mod log;
#[allow(unsafe_code)] // the OS layer: the one module with unsafe code
pub mod os;
mod space;

pub use abi::{
    DomId, Extent, IoServId, HVMMEM_IOREQ_SERVER, MAX_EXTENTS_PER_CALL, PRIVCMD_BUF_MAX,
    XEN_DMOP_IOREQ_MEM_ACCESS_WRITE,
};
pub use dm::{BufIoreq, DeviceModel, Event, Fallback, IoreqServerInfo, Options};
pub use error::{Errno, Error, InvalidArgument, Result};
pub use log::{Level, Log, LogFn, Logger};
pub use os::{Generation, UserPtr, Xencall};
pub use space::{IoRange, IoSpace, Sbdf, Space};

/// The crate README's example, compiled by `cargo test` (a doctest), so
/// that the README keeps up with the API.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctest;
