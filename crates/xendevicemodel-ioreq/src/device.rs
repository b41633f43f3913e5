//! What a session hands requests to: the [`Handler`] trait (the
//! [`Bus`](crate::Bus) implements it; a handler of one's own sees absolute
//! addresses), the [`Server`] handle used to claim ranges, raise interrupts
//! and reach guest memory, and [`serve`], which turns one request into
//! single accesses (repetitions, guest-memory data) for handlers that only
//! implement `read` and `write`.

use crate::backend::{Backend, Interrupt, IoRange};
use crate::error::{Error, Result};
use crate::guest::{self, GuestChunk};
use crate::request::{element, Data, Dir, Request, Sbdf, Size};
use std::sync::Arc;
pub use xendevicemodel::Space;
use xendevicemodel::{DomId, Errno, IoServId, Logger};

/// One access of a given size at an absolute address: what
/// [`Handler::read`] and [`Handler::write`] see.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IoAccess {
    /// Where.
    pub space: Space,
    /// How many bytes.
    pub size: Size,
}

/// A handle on the session's IOREQ server, usable from any thread (clone
/// it): claims ranges, raises interrupts, copies guest memory.
#[derive(Clone)]
pub struct Server {
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) domid: DomId,
    pub(crate) id: IoServId,
    pub(crate) logger: Logger,
}

impl core::fmt::Debug for Server {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Server {{ domid: {}, id: {} }}", self.domid, self.id)
    }
}

impl Server {
    /// The guest's domain.
    pub fn domid(&self) -> DomId {
        self.domid
    }

    /// The server's id.
    pub fn id(&self) -> IoServId {
        self.id
    }

    /// Claims a range: the guest's accesses to it come to this server.
    pub fn claim(&self, range: IoRange) -> Result<()> {
        check_range(range)?;
        self.backend.claim(self.domid, self.id, range, true)
    }

    /// Releases a claimed range.
    pub fn release(&self, range: IoRange) -> Result<()> {
        check_range(range)?;
        self.backend.claim(self.domid, self.id, range, false)
    }

    /// Raises, lowers or sends an interrupt.
    pub fn interrupt(&self, irq: Interrupt) -> Result<()> {
        self.backend.interrupt(self.domid, irq)
    }

    /// Sets ISA IRQ line `irq` (0-15).
    pub fn set_isa_irq_level(&self, irq: u8, level: bool) -> Result<()> {
        self.interrupt(Interrupt::IsaLevel { irq, level })
    }

    /// Sets INTx pin `pin` (0 = A .. 3 = D) of PCI device `sbdf`.
    pub fn set_pci_intx_level(&self, sbdf: Sbdf, pin: u8, level: bool) -> Result<()> {
        self.interrupt(Interrupt::PciIntx { sbdf, pin, level })
    }

    /// Sends an MSI.
    pub fn inject_msi(&self, addr: u64, data: u32) -> Result<()> {
        self.interrupt(Interrupt::Msi { addr, data })
    }

    /// Sets line `irq` of the guest's interrupt controller (Arm).
    pub fn set_irq_level(&self, irq: u32, level: bool) -> Result<()> {
        self.interrupt(Interrupt::Line { irq, level })
    }

    /// Routes PCI link `link` (0-3) to ISA IRQ `irq` (0 disables it).
    pub fn set_pci_link_route(&self, link: u8, irq: u8) -> Result<()> {
        self.interrupt(Interrupt::LinkRoute { link, irq })
    }

    /// Copies guest memory at guest-physical address `gpa` into `buf`.
    /// Guest memory stays mapped between copies (the backend's cache of
    /// [`GuestChunk`]s) until the guest's mappings change
    /// ([`invalidate_guest`](Self::invalidate_guest)). Memory that is not
    /// there (a hole, a frame Xen would not map) fails the copy, never faults.
    pub fn read_guest(&self, gpa: u64, buf: &mut [u8]) -> Result<()> {
        guest::split(gpa, buf.len(), |n, off, done, len| self.guest_chunk(n)?.read(off, &mut buf[done..done + len]))
            .map_err(|e| doing(e, "read guest memory"))
    }

    /// Copies `buf` into guest memory at guest-physical address `gpa`.
    pub fn write_guest(&self, gpa: u64, buf: &[u8]) -> Result<()> {
        guest::split(gpa, buf.len(), |n, off, done, len| self.guest_chunk(n)?.write(off, &buf[done..done + len]))
            .map_err(|e| doing(e, "write guest memory"))
    }

    /// Chunk `n` of the guest's memory (64 KiB at `n * GuestChunk::BYTES`), mapped.
    pub fn guest_chunk(&self, n: u64) -> Result<GuestChunk> {
        self.backend.guest_chunk(self.domid, n)
    }

    /// Drops every cached guest mapping (the session does it when Xen sends
    /// `IOREQ_TYPE_INVALIDATE`, after a ballooning or a memory map change).
    pub fn invalidate_guest(&self) {
        self.backend.invalidate_guest(self.domid)
    }

    /// Where the session logs.
    pub fn logger(&self) -> &Logger {
        &self.logger
    }
}

/// A system call's error, said to be `what`'s.
fn doing(e: Error, what: &'static str) -> Error {
    match e {
        Error::Os { errno, .. } => Error::Os { what, errno },
        e => e,
    }
}

fn check_range(range: IoRange) -> Result<()> {
    if range.is_valid() {
        Ok(())
    } else {
        Err(Error::InvalidRange)
    }
}

/// What a device sees with each request: the server, and which vCPU asked
/// (`None` for buffered requests).
#[derive(Debug)]
pub struct Ctx<'a> {
    /// The session's server.
    pub server: &'a Server,
    /// The vCPU whose request this is.
    pub vcpu: Option<u32>,
}

impl core::ops::Deref for Ctx<'_> {
    type Target = Server;
    fn deref(&self) -> &Server {
        self.server
    }
}

/// What a session hands every request to: a [`Bus`](crate::Bus) of
/// devices, or a handler of one's own that decodes absolute addresses.
///
/// Most handlers implement [`read`](Self::read) and [`write`](Self::write)
/// only: the default [`request`](Self::request) splits every request into
/// single accesses, and copies guest memory for `rep ins/outs/movs`. A
/// handler may override `request` to see requests whole.
///
/// Nothing a handler returns can harm the shared page: the session writes a
/// read's value, masked to the access size, into the slot's data field and
/// nothing else.
pub trait Handler {
    /// Claims what the handler decodes, before the session serves requests
    /// ([`Session::run`](crate::Session::run) calls it first; the bus
    /// claims its devices' ranges). The default claims nothing.
    fn attach(&mut self, _server: &Server) -> Result<()> {
        Ok(())
    }

    /// A read of `access.size` bytes; the value's upper bits are ignored.
    fn read(&mut self, ctx: &mut Ctx<'_>, access: IoAccess) -> u64;

    /// A write of `value` (already masked to `access.size`).
    fn write(&mut self, ctx: &mut Ctx<'_>, access: IoAccess, value: u64);

    /// One whole request; returns the value of a read with immediate data
    /// (ignored otherwise). The default calls [`serve`].
    fn request(&mut self, ctx: &mut Ctx<'_>, req: &Request) -> u64 {
        serve(self, ctx, req)
    }

    /// The guest's RTC offset changed.
    fn time_offset(&mut self, _ctx: &mut Ctx<'_>, _offset: u64) {}

    /// Guest memory mappings must be dropped (the session has already
    /// dropped the server's cache).
    fn invalidate(&mut self, _ctx: &mut Ctx<'_>) {}
}

/// Serves one request with single [`Handler::read`]/[`Handler::write`]
/// accesses, as QEMU does: a port access repeats on the same port, an MMIO
/// access walks addresses; with guest data, element `i` is copied to or
/// from guest memory (a failed copy is logged and ends the request early).
/// Returns the value of the last read (0 for writes).
pub fn serve<H: Handler + ?Sized>(dev: &mut H, ctx: &mut Ctx<'_>, req: &Request) -> u64 {
    // Where element `i` goes: ports and config registers stay put, MMIO walks.
    let (target, size, dir, count, df, data) = match *req {
        Request::Pio { port, size, dir, count, df, data } => (Space::Port(port), size, dir, count, df, data),
        Request::Mmio { addr, size, dir, count, df, data } => (Space::Mmio(addr), size, dir, count, df, data),
        Request::PciConfig { sbdf, reg, size, dir, data } => {
            (Space::PciConfig { sbdf, reg }, size, dir, 1, false, data)
        }
        Request::TimeOffset { offset } => {
            dev.time_offset(ctx, offset);
            return 0;
        }
        Request::Invalidate => {
            dev.invalidate(ctx);
            return 0;
        }
    };
    let space_of = |i: u32| match target {
        Space::Mmio(addr) => Space::Mmio(element(addr, i, size, df)),
        other => other,
    };
    let n = size.bytes() as usize;
    let mut last = 0;
    for i in 0..count {
        let access = IoAccess { space: space_of(i), size };
        match (dir, data) {
            (Dir::Read, Data::Value(_)) => last = dev.read(ctx, access) & size.mask(),
            (Dir::Write, Data::Value(v)) => dev.write(ctx, access, v),
            (Dir::Read, Data::Guest(gpa)) => {
                let v = dev.read(ctx, access) & size.mask();
                let at = element(gpa, i, size, df);
                if let Err(e) = ctx.server.write_guest(at, &v.to_le_bytes()[..n]) {
                    guest_failed(ctx, at, e);
                    break;
                }
            }
            (Dir::Write, Data::Guest(gpa)) => {
                let mut b = [0u8; 8];
                let at = element(gpa, i, size, df);
                if let Err(e) = ctx.server.read_guest(at, &mut b[..n]) {
                    guest_failed(ctx, at, e);
                    break;
                }
                dev.write(ctx, access, u64::from_le_bytes(b));
            }
        }
    }
    last
}

#[cold]
fn guest_failed(ctx: &Ctx<'_>, gpa: u64, e: Error) {
    let vcpu = ctx.vcpu.map_or(-1, |v| v as i64);
    ctx.server
        .logger
        .warn(e.errno(), format_args!("ioreq: vCPU {vcpu}: guest memory at {gpa:#x}: {e}; request cut short"));
}

/// Logs that a request was refused (not delivered to the device).
#[cold]
pub(crate) fn refused(logger: &Logger, vcpu: Option<u32>, what: core::fmt::Arguments<'_>) {
    match vcpu {
        Some(v) => logger.warn(Errno::EINVAL, format_args!("ioreq: vCPU {v}: request refused: {what}")),
        None => logger.warn(Errno::EINVAL, format_args!("ioreq: buffered request refused: {what}")),
    }
}
