//! # xendevicemodel-virtio
//!
//! virtio for device models written in Rust: the pieces a virtio device on
//! Xen (or anywhere else) needs besides the device itself, none of them tied
//! to a hypervisor, so that they can be tested, fuzzed and reused alone.
//!
//! - [`ring::SplitQueue`]: the device side of a split virtqueue over guest
//!   memory: the available and used rings, and notification suppression
//!   (ring flags or VIRTIO_F_EVENT_IDX), with the memory ordering the
//!   specification asks for.
//! - [`chain::walk`]: a descriptor chain followed and checked (loops, indexes
//!   past the table, buffers outside guest memory, indirect tables, wrong
//!   directions, lengths), read and written as two byte streams.
//! - [`pci::VirtioPci`]: the virtio-pci modern transport (capability list,
//!   common configuration, notifications, ISR, device configuration in a
//!   BAR, feature negotiation, queue setup, reset) as a state machine that
//!   answers register accesses and says which queue to process and which
//!   interrupt to send.
//! - [`device::VirtioDevice`]: what a device implements (type, features,
//!   configuration, queue sizes, processing).
//! - [`driver`]: the driver's side of a queue, for tests and simulators.
//! - `ioreq::PciTransport` (feature `ioreq`): all of the above as a PCI
//!   function on the `xendevicemodel-ioreq` toolkit's bus, with MSI-X (and
//!   INTx while MSI-X is off), BARs claimed where the guest puts them, and
//!   queues served from the guest's memory.
//!
//! Guest memory is anything that implements vm-memory's `GuestMemory` (every
//! `GuestMemoryBackend` does): a foreign mapping of a Xen guest in a device
//! model, `GuestMemoryMmap` in tests. Nothing here needs `unsafe`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod chain;
pub mod device;
pub mod driver;
#[cfg(feature = "ioreq")]
pub mod ioreq;
pub mod pci;
pub mod ring;

pub use chain::{walk, Chain, ChainError, Segment};
pub use device::{DeviceError, VirtioDevice};
pub use pci::{Interrupt, Outcome, VirtioPci};
pub use ring::{QueueError, SplitQueue};
