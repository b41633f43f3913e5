//! What a session needs from below, as traits: the hypervisor's operations
//! ([`Backend`]), the mapped ioreq pages ([`Pages`]) and an event channel
//! ([`Events`]). [`Xen`](crate::Xen) implements them with privcmd and
//! `/dev/xen/evtchn`; [`sim`](crate::sim) with plain memory and threads, so
//! that the request state machine is tested without a hypervisor.

use crate::abi::{BufferedPage, IoreqPage};
use crate::error::Result;
use crate::guest::GuestChunk;
use std::sync::Arc;
use std::time::Duration;
pub use xendevicemodel::IoRange;
use xendevicemodel::{BufIoreq, DomId, IoServId, Sbdf};

/// An interrupt to raise, lower or send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Interrupt {
    /// ISA IRQ line `irq` (0-15) to `level`.
    IsaLevel {
        /// The line.
        irq: u8,
        /// Asserted.
        level: bool,
    },
    /// INTx pin `pin` (0 = A .. 3 = D) of PCI function `sbdf` to `level`.
    PciIntx {
        /// The device (its function number is ignored: the pin belongs to the slot).
        sbdf: Sbdf,
        /// The pin.
        pin: u8,
        /// Asserted.
        level: bool,
    },
    /// A message-signalled interrupt.
    Msi {
        /// The address (0xfeexxxxx on x86).
        addr: u64,
        /// The data.
        data: u32,
    },
    /// Line `irq` of the guest's interrupt controller to `level` (Arm).
    Line {
        /// The line.
        irq: u32,
        /// Asserted.
        level: bool,
    },
    /// Routes PCI link `link` (0-3) to ISA IRQ `irq` (0 disables it).
    LinkRoute {
        /// The link.
        link: u8,
        /// The ISA IRQ.
        irq: u8,
    },
}

/// What woke [`Events::wait`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wake {
    /// This many ports fired; they are in the buffer given, and stay masked
    /// until [`Events::unmask`].
    Ports(usize),
    /// The timeout passed.
    Timeout,
    /// [`Stopper::stop`] was called.
    Stopped,
    /// The process received this signal (see [`Config::stop_on_signals`](crate::Config)).
    Signal(i32),
}

/// Wakes a session's loop from any thread: it returns [`Exit::Stopped`](crate::Exit).
#[derive(Clone)]
pub struct Stopper(pub(crate) Arc<dyn Fn() + Send + Sync>);

impl Stopper {
    /// Makes a stopper from the function that wakes the loop.
    pub fn new(f: impl Fn() + Send + Sync + 'static) -> Self {
        Stopper(Arc::new(f))
    }
    /// Asks the session to stop; its `run` returns once the request in
    /// hand (if any) is answered.
    pub fn stop(&self) {
        (self.0)()
    }
}

impl core::fmt::Debug for Stopper {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Stopper")
    }
}

/// The mapped ioreq pages of one server (unmapped when dropped).
pub trait Pages: Send {
    /// The synchronous page.
    fn ioreq(&self) -> &IoreqPage;
    /// The buffered page, if the server has one.
    fn buffered(&self) -> Option<&BufferedPage>;
}

/// An event channel device: local ports bound to a domain's ports (closed,
/// with every port unbound, when dropped).
pub trait Events: Send {
    /// Binds a local port to `remote_port` of `domid`; returns the local port.
    fn bind(&mut self, domid: DomId, remote_port: u32) -> Result<u32>;
    /// Unbinds a local port.
    fn unbind(&mut self, port: u32) -> Result<()>;
    /// Notifies the other end of a local port.
    fn notify(&self, port: u32) -> Result<()>;
    /// Lets a port that fired fire again.
    fn unmask(&mut self, port: u32) -> Result<()>;
    /// Waits until ports fire (written to `ports`), the timeout passes, the
    /// stopper is called or, if asked for, a signal arrives.
    fn wait(&mut self, ports: &mut [u32], timeout: Option<Duration>) -> Result<Wake>;
    /// What wakes [`wait`](Self::wait) with [`Wake::Stopped`] from another thread.
    fn stopper(&self) -> Stopper;
}

/// The hypervisor's operations a session uses. Object-safe: a session holds
/// an `Arc<dyn Backend>`.
pub trait Backend: Send + Sync {
    /// How many vCPUs the domain has.
    fn nr_vcpus(&self, domid: DomId) -> Result<u32>;
    /// Creates an IOREQ server.
    fn create_ioreq_server(&self, domid: DomId, buffered: BufIoreq) -> Result<IoServId>;
    /// Maps the server's pages (the buffered one too if `buffered`).
    fn map_ioreq_pages(&self, domid: DomId, id: IoServId, buffered: bool) -> Result<Box<dyn Pages>>;
    /// The hypervisor's event channel port for buffered requests.
    fn bufioreq_port(&self, domid: DomId, id: IoServId) -> Result<u32>;
    /// Enables or disables the server.
    fn set_ioreq_server_state(&self, domid: DomId, id: IoServId, enabled: bool) -> Result<()>;
    /// Destroys the server.
    fn destroy_ioreq_server(&self, domid: DomId, id: IoServId) -> Result<()>;
    /// Claims (or, with `claim` false, releases) a range for the server.
    fn claim(&self, domid: DomId, id: IoServId, range: IoRange, claim: bool) -> Result<()>;
    /// Raises, lowers or sends an interrupt.
    fn interrupt(&self, domid: DomId, irq: Interrupt) -> Result<()>;
    /// Opens an event channel device.
    fn open_events(&self, stop_on_signals: bool) -> Result<Box<dyn Events>>;
    /// Chunk `n` of the guest's memory (guest-physical addresses
    /// `n * GuestChunk::BYTES ..`), mapped, from a cache if the backend
    /// keeps one.
    fn guest_chunk(&self, domid: DomId, n: u64) -> Result<GuestChunk>;
    /// Drops cached guest mappings (the default has none).
    fn invalidate_guest(&self, _domid: DomId) {}
}

impl core::fmt::Display for Interrupt {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Interrupt::IsaLevel { irq, level } => write!(f, "isa irq={irq} level={}", level as u8),
            Interrupt::PciIntx { sbdf, pin, level } => write!(f, "pci-intx {sbdf} pin={pin} level={}", level as u8),
            Interrupt::Msi { addr, data } => write!(f, "msi addr={addr:#x} data={data:#x}"),
            Interrupt::Line { irq, level } => write!(f, "line irq={irq} level={}", level as u8),
            Interrupt::LinkRoute { link, irq } => write!(f, "link-route link={link} irq={irq}"),
        }
    }
}
