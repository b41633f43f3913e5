//! [`DeviceModel`]: an open device-model interface, one method per dm_op.
//!
//! Every operation builds one request ([`DmOp`], plus a second buffer for
//! three operations) and goes through one submit path, which sends it with
//! privcmd's `IOCTL_PRIVCMD_DM_OP` or, on kernels without that ioctl, through
//! libxencall. Requests are byte for byte those of Xen's libxendevicemodel.

use crate::abi::{self, *};
use crate::error::{Errno, Error, InvalidArgument, Result};
use crate::log::Logger;
use crate::os::{Buf, Generation, Privcmd, UserPtr, Xencall};
use core::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// How the hypervisor buffers an IOREQ server's buffered ioreqs
/// (`HVM_IOREQSRV_BUFIOREQ_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum BufIoreq {
    /// No buffered ioreqs (the only choice on Arm).
    Off = 0,
    /// Buffered ioreqs with the legacy (non-atomic) read pointer.
    Legacy = 1,
    /// Buffered ioreqs with atomic read pointer updates.
    Atomic = 2,
}

/// Which address space a range claimed by an IOREQ server is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IoSpace {
    /// I/O ports.
    Port,
    /// Guest-physical memory (MMIO).
    Mmio,
}

/// What an emulator needs to serve an IOREQ server
/// ([`DeviceModel::get_ioreq_server_info`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoreqServerInfo {
    /// The synchronous ioreq page's gfn (0 unless gfns were asked for).
    pub ioreq_gfn: u64,
    /// The buffered ioreq page's gfn (0 unless gfns were asked for).
    pub bufioreq_gfn: u64,
    /// The event channel for buffered ioreqs.
    pub bufioreq_port: u32,
}

/// An event to inject into a vCPU ([`DeviceModel::inject_event`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Event {
    /// The vector.
    pub vector: u8,
    /// The type (`enum x86_event_type`).
    pub kind: u8,
    /// The error code, or `!0` for none.
    pub error_code: u32,
    /// The instruction length, for software events.
    pub insn_len: u8,
    /// Type-specific data: `%cr2` for a page fault, `pending_dbg` for `#DB`.
    pub extra: u64,
}

/// How to open a [`DeviceModel`].
#[derive(Clone, Debug)]
pub struct Options {
    /// Where the handle reports errors (default: stderr).
    pub logger: Logger,
    /// How the handle tells that it was inherited across `fork()` (default:
    /// [`Generation::process`]; a program with its own fork handlers may
    /// give its own, see [`Generation`]).
    pub generation: &'static Generation,
}

impl Default for Options {
    fn default() -> Self {
        Options { logger: Logger::default(), generation: Generation::process() }
    }
}

/// An open device-model interface: the Rust counterpart of
/// `xendevicemodel_handle`. Closed when dropped (or with [`DeviceModel::close`]).
///
/// Any number of threads may use one at once. After `fork()`, a
/// `DeviceModel` the child inherited refuses every operation with
/// [`Error::Inherited`] and sends nothing: its open file is shared with the
/// parent, and so would be a restriction. The child opens its own.
#[derive(Debug)]
pub struct DeviceModel {
    /// The privcmd descriptor; -1 on the libxencall path.
    privcmd: Privcmd,
    /// Where calls read the process generation (`Generation::word`).
    gen: &'static AtomicU64,
    /// What that word belongs to (for the getpid() fallback).
    source: &'static Generation,
    /// The generation in which calls go straight to privcmd: the one at open
    /// for a privcmd handle, [`NOT_DIRECT`] for a libxencall one. One compare
    /// with the current generation admits a call to the fast path.
    direct: u64,
    /// The process generation at open.
    generation: u64,
    /// Kernels without the DM_OP ioctl: requests go through libxencall.
    xcall: Option<Xencall>,
    logger: Logger,
}

/// A generation the process never has.
const NOT_DIRECT: u64 = u64::MAX;

/// What is left of an open that privcmd alone could not complete
/// ([`DeviceModel::open_privcmd`]): a kernel without the DM_OP ioctl or
/// without the privcmd device (libxencall is next), or a failure to report.
#[derive(Debug)]
pub struct Fallback(Opening);

#[derive(Debug)]
enum Opening {
    /// No DM_OP ioctl (`why`) or no privcmd device: libxencall is next.
    NeedsXencall { logger: Logger, gen: &'static Generation, generation: u64, why: Option<Errno> },
    /// Opening privcmd failed.
    Failed { logger: Logger, err: Errno },
}

impl DeviceModel {
    /// Opens the interface with the default [`Options`] (errors to stderr).
    ///
    /// ```no_run
    /// # fn main() -> xendevicemodel::Result<()> {
    /// let dm = xendevicemodel::DeviceModel::open()?;
    /// println!("domain 1 has {} vCPUs", dm.nr_vcpus(1)?);
    /// # Ok(()) }
    /// ```
    pub fn open() -> Result<Self> {
        Self::open_with(Options::default())
    }

    /// Opens the interface: `/dev/xen/privcmd`, probed for the DM_OP ioctl.
    ///
    /// A probe answered `EPERM` means the ioctl exists but this file is
    /// restricted (a stub domain): privcmd is kept. A missing device or a
    /// kernel without the ioctl selects libxencall, as in Xen's library.
    pub fn open_with(options: Options) -> Result<Self> {
        Self::open_privcmd(options).or_else(Fallback::finish)
    }

    /// The first step of [`open_with`](Self::open_with), which calls no user
    /// code (it logs nothing), so that a caller may hold its own locks
    /// meanwhile: opens privcmd and probes it. What is left when that does
    /// not make a handle is the [`Fallback`]'s to finish.
    pub fn open_privcmd(options: Options) -> core::result::Result<Self, Fallback> {
        let Options { logger, generation: gen } = options;
        let generation = gen.at_open();
        match Privcmd::open() {
            Ok(privcmd) => match privcmd.dm_op(DOMID_INVALID, &[]) {
                Ok(()) | Err(Errno::EPERM) => Ok(DeviceModel {
                    privcmd,
                    gen: gen.word(),
                    source: gen,
                    direct: generation,
                    generation,
                    xcall: None,
                    logger,
                }),
                Err(e) => Err(Fallback(Opening::NeedsXencall { logger, gen, generation, why: Some(e) })),
            },
            // No privcmd device node: an old kernel; as in Xen, try libxencall.
            Err(Errno::ENOENT | Errno::ENXIO | Errno::ENODEV) => {
                Err(Fallback(Opening::NeedsXencall { logger, gen, generation, why: None }))
            }
            Err(err) => Err(Fallback(Opening::Failed { logger, err })),
        }
    }

    /// Whether requests go through libxencall rather than privcmd's DM_OP ioctl.
    pub fn uses_xencall(&self) -> bool {
        self.xcall.is_some()
    }

    /// True in a child process for a handle its parent opened.
    pub fn is_inherited(&self) -> bool {
        !self.source.same_process(self.generation)
    }

    /// Where this handle reports errors.
    pub fn logger(&self) -> &Logger {
        &self.logger
    }

    /// The privcmd descriptor (`None` on the libxencall path).
    pub fn privcmd_fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.privcmd.fd()
    }

    // ------------------------------------------------------------ submit path

    /// The one submit path: every operation ends here.
    #[inline(always)]
    pub(crate) fn submit(&self, domid: DomId, bufs: &[Buf<'_>]) -> Result<()> {
        if self.gen.load(Relaxed) == self.direct {
            return match self.privcmd.dm_op(domid, bufs) {
                Ok(()) => Ok(()),
                Err(e) => Err(self.failed(domid, e)),
            };
        }
        self.submit_indirect(domid, bufs)
    }

    /// The rest of the submit path: libxencall handles, handles inherited
    /// across fork() (refused), and processes whose kernel cannot wipe the
    /// generation page on fork (checked with getpid()).
    ///
    /// `extern "C"`, like [`DeviceModel::failed`]: a function that cannot
    /// unwind, so that the call path, which calls it, keeps no state for
    /// unwinding (6 instructions per call, measured); a panic inside is
    /// caught here instead and becomes `EIO`.
    #[cold]
    #[inline(never)]
    #[allow(improper_ctypes_definitions)] // a Rust-to-Rust call
    extern "C" fn submit_indirect(&self, domid: DomId, bufs: &[Buf<'_>]) -> Result<()> {
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.usable()?;
            let r = match &self.xcall {
                None => self.privcmd.dm_op(domid, bufs),
                Some(x) => x.dm_op(domid, bufs),
            };
            r.map_err(|e| self.failed(domid, e))
        }));
        r.unwrap_or(Err(Error::Os(Errno::EIO)))
    }

    /// Refuses inherited handles (logged) before anything is sent.
    pub(crate) fn usable(&self) -> Result<()> {
        if self.is_inherited() {
            self.logger
                .error(Errno::EBADF, format_args!("handle was opened before fork(); the child must open its own"));
            return Err(Error::Inherited);
        }
        Ok(())
    }

    /// Not an error of ours: the caller decides. Visible at debug level.
    /// `extern "C"` so that the call path keeps no unwinding state (see
    /// [`DeviceModel::submit_indirect`]); a panicking logger is ignored.
    #[cold]
    #[inline(never)]
    #[allow(improper_ctypes_definitions)] // a Rust-to-Rust call
    extern "C" fn failed(&self, domid: DomId, e: Errno) -> Error {
        let log = || self.logger.debug(format_args!("dm_op to domain {domid} failed: {e}"));
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(log));
        Error::Os(e)
    }

    /// Sends `req` alone; returns it as the hypervisor left it.
    #[inline(always)]
    fn call(&self, domid: DomId, mut req: DmOp) -> Result<DmOp> {
        self.submit(domid, &[Buf::request(&mut req)])?;
        Ok(req)
    }

    /// Sends `req` followed by a second buffer.
    #[inline(always)]
    pub(crate) fn call2(&self, domid: DomId, mut req: DmOp, second: Buf<'_>) -> Result<DmOp> {
        self.submit(domid, &[Buf::request(&mut req), second])?;
        Ok(req)
    }

    // ------------------------------------------------------------ operations

    /// Creates an IOREQ server for `domid` and returns its id.
    #[inline]
    pub fn create_ioreq_server(&self, domid: DomId, bufioreq: BufIoreq) -> Result<IoServId> {
        self.create_ioreq_server_raw(domid, bufioreq as u8)
    }

    /// [`create_ioreq_server`](Self::create_ioreq_server) with any 8-bit
    /// `handle_bufioreq` value (`HVM_IOREQSRV_BUFIOREQ_*`): the hypervisor
    /// checks it.
    #[inline]
    pub fn create_ioreq_server_raw(&self, domid: DomId, handle_bufioreq: u8) -> Result<IoServId> {
        let r = self.call(domid, DmOp::new(CreateIoreqServer { handle_bufioreq, id: 0 }))?;
        Ok(r.body::<CreateIoreqServer>().id)
    }

    /// What an emulator needs to serve IOREQ server `id`. With `want_gfns`
    /// false, Xen is told not to map the ioreq pages (`XEN_DMOP_no_gfns`,
    /// which also works where ioreq pages are only reachable as resources)
    /// and the gfns are 0.
    #[inline]
    pub fn get_ioreq_server_info(&self, domid: DomId, id: IoServId, want_gfns: bool) -> Result<IoreqServerInfo> {
        let flags = if want_gfns { 0 } else { XEN_DMOP_NO_GFNS };
        let body = GetIoreqServerInfo { id, flags, ..Default::default() };
        let r = self.call(domid, DmOp::new(body))?.body::<GetIoreqServerInfo>();
        Ok(IoreqServerInfo { ioreq_gfn: r.ioreq_gfn, bufioreq_gfn: r.bufioreq_gfn, bufioreq_port: r.bufioreq_port })
    }

    /// Claims the inclusive range `start..=end` of ports or MMIO for server `id`.
    #[inline]
    pub fn map_io_range(&self, domid: DomId, id: IoServId, space: IoSpace, start: u64, end: u64) -> Result<()> {
        let type_ = space_type(space);
        self.call(domid, DmOp::new(MapIoRange { id, type_, start, end })).map(drop)
    }

    /// Releases a range claimed with [`map_io_range`](Self::map_io_range).
    #[inline]
    pub fn unmap_io_range(&self, domid: DomId, id: IoServId, space: IoSpace, start: u64, end: u64) -> Result<()> {
        let type_ = space_type(space);
        self.call(domid, DmOp::new(UnmapIoRange { id, type_, start, end })).map(drop)
    }

    /// Claims the config space of PCI function `segment:bus:device.function`
    /// for server `id` (device 0..=31, function 0..=7, else
    /// [`Error::InvalidArgument`] before anything is sent).
    #[inline]
    pub fn map_pcidev(
        &self,
        domid: DomId,
        id: IoServId,
        segment: u16,
        bus: u8,
        device: u8,
        function: u8,
    ) -> Result<()> {
        let sbdf = checked_sbdf(segment, bus, device, function)?;
        let body = MapIoRange { id, type_: XEN_DMOP_IO_RANGE_PCI, start: sbdf, end: sbdf };
        self.call(domid, DmOp::new(body)).map(drop)
    }

    /// Releases a PCI function claimed with [`map_pcidev`](Self::map_pcidev).
    #[inline]
    pub fn unmap_pcidev(
        &self,
        domid: DomId,
        id: IoServId,
        segment: u16,
        bus: u8,
        device: u8,
        function: u8,
    ) -> Result<()> {
        let sbdf = checked_sbdf(segment, bus, device, function)?;
        let body = UnmapIoRange { id, type_: XEN_DMOP_IO_RANGE_PCI, start: sbdf, end: sbdf };
        self.call(domid, DmOp::new(body)).map(drop)
    }

    /// Claims (`flags` = [`XEN_DMOP_IOREQ_MEM_ACCESS_WRITE`]) or releases (0)
    /// the guest pages of type [`HVMMEM_IOREQ_SERVER`] for server `id`; any
    /// other type or flag is [`Error::InvalidArgument`].
    #[inline]
    pub fn map_mem_type(&self, domid: DomId, id: IoServId, mem_type: u16, flags: u32) -> Result<()> {
        if mem_type != HVMMEM_IOREQ_SERVER {
            return Err(Error::InvalidArgument(InvalidArgument::MemType));
        }
        if flags & !XEN_DMOP_IOREQ_MEM_ACCESS_WRITE != 0 {
            return Err(Error::InvalidArgument(InvalidArgument::MemTypeFlags));
        }
        let body = MapMemTypeToIoreqServer { id, type_: mem_type, flags };
        self.call(domid, DmOp::new(body)).map(drop)
    }

    /// Destroys IOREQ server `id`.
    #[inline]
    pub fn destroy_ioreq_server(&self, domid: DomId, id: IoServId) -> Result<()> {
        self.call(domid, DmOp::new(DestroyIoreqServer { id })).map(drop)
    }

    /// Enables or disables IOREQ server `id`. A server receives no requests
    /// until it is enabled.
    #[inline]
    pub fn set_ioreq_server_state(&self, domid: DomId, id: IoServId, enabled: bool) -> Result<()> {
        self.call(domid, DmOp::new(SetIoreqServerState { id, enabled: enabled as u8 })).map(drop)
    }

    /// Asserts or deasserts INTx pin `intx` (0 = A .. 3 = D) of an emulated PCI device.
    #[inline]
    pub fn set_pci_intx_level(
        &self,
        domid: DomId,
        segment: u16,
        bus: u8,
        device: u8,
        intx: u8,
        asserted: bool,
    ) -> Result<()> {
        self.set_pci_intx_level_raw(domid, segment, bus, device, intx, asserted as u8)
    }

    /// [`set_pci_intx_level`](Self::set_pci_intx_level) with any 8-bit
    /// `level`: the hypervisor checks it (`EINVAL` above 1).
    #[inline]
    pub fn set_pci_intx_level_raw(
        &self,
        domid: DomId,
        segment: u16,
        bus: u8,
        device: u8,
        intx: u8,
        level: u8,
    ) -> Result<()> {
        let body = SetPciIntxLevel { domain: segment, bus, device, intx, level };
        self.call(domid, DmOp::new(body)).map(drop)
    }

    /// Asserts or deasserts ISA IRQ line `irq` (0..=15).
    #[inline]
    pub fn set_isa_irq_level(&self, domid: DomId, irq: u8, asserted: bool) -> Result<()> {
        self.set_isa_irq_level_raw(domid, irq, asserted as u8)
    }

    /// [`set_isa_irq_level`](Self::set_isa_irq_level) with any 8-bit `level`.
    #[inline]
    pub fn set_isa_irq_level_raw(&self, domid: DomId, irq: u8, level: u8) -> Result<()> {
        self.call(domid, DmOp::new(SetIsaIrqLevel { isa_irq: irq, level })).map(drop)
    }

    /// Asserts or deasserts interrupt line `irq` of the guest's interrupt
    /// controller (Arm; x86 Xen answers `EOPNOTSUPP`).
    #[inline]
    pub fn set_irq_level(&self, domid: DomId, irq: u32, asserted: bool) -> Result<()> {
        self.set_irq_level_raw(domid, irq, asserted as u8)
    }

    /// [`set_irq_level`](Self::set_irq_level) with any 8-bit `level`.
    #[inline]
    pub fn set_irq_level_raw(&self, domid: DomId, irq: u32, level: u8) -> Result<()> {
        self.call(domid, DmOp::new(SetIrqLevel { irq, level })).map(drop)
    }

    /// Routes PCI INTx link `link` (0 = A .. 3 = D) to ISA IRQ `irq` (0 disables it).
    #[inline]
    pub fn set_pci_link_route(&self, domid: DomId, link: u8, irq: u8) -> Result<()> {
        self.call(domid, DmOp::new(SetPciLinkRoute { link, isa_irq: irq })).map(drop)
    }

    /// Injects an MSI (`addr` 0xfeexxxxx, `data`).
    #[inline]
    pub fn inject_msi(&self, domid: DomId, addr: u64, data: u32) -> Result<()> {
        self.call(domid, DmOp::new(InjectMsi { data, addr })).map(drop)
    }

    /// Atomically fetches the dirty bitmap of the VRAM window tracked since
    /// the last call into `bitmap`, then tracks `nr` pages from `first_pfn`
    /// until the next call. `bitmap` must hold at least `ceil(nr / 8)` bytes
    /// (else [`Error::InvalidArgument`]); exactly that many are sent.
    ///
    /// Never split (the window is one atomic operation), so `nr` is limited
    /// by privcmd's buffer size: 32768 pages by default, `E2BIG` above.
    #[inline]
    pub fn track_dirty_vram(&self, domid: DomId, first_pfn: u64, nr: u32, bitmap: &mut [u8]) -> Result<()> {
        let bytes = bitmap_bytes(nr);
        let bitmap = bitmap.get_mut(..bytes).ok_or(Error::InvalidArgument(InvalidArgument::BitmapTooShort))?;
        self.dirty_vram(domid, first_pfn, nr, Buf::bytes(bitmap))
    }

    /// [`track_dirty_vram`](Self::track_dirty_vram) into `ceil(nr / 8)`
    /// bytes at `bitmap`, sent as they are (computed in the native word, so
    /// no overflow to 0 as in Xen's C library; NULL is the kernel's or the
    /// hypervisor's to refuse, with `EFAULT`).
    #[inline]
    pub fn track_dirty_vram_raw(&self, domid: DomId, first_pfn: u64, nr: u32, bitmap: UserPtr) -> Result<()> {
        self.dirty_vram(domid, first_pfn, nr, Buf::from_user(bitmap, bitmap_bytes(nr)))
    }

    #[inline]
    fn dirty_vram(&self, domid: DomId, first_pfn: u64, nr: u32, bitmap: Buf<'_>) -> Result<()> {
        self.call2(domid, DmOp::new(TrackDirtyVram { nr, first_pfn }), bitmap).map(drop)
    }

    /// Tells the hypervisor that `nr` pages from `first_pfn` were modified
    /// (for dirty tracking during live migration).
    #[inline]
    pub fn modified_memory(&self, domid: DomId, first_pfn: u64, nr: u32) -> Result<()> {
        let mut extent = [Extent::new(first_pfn, nr)];
        self.modified_extents(domid, Buf::extents(&mut extent), 1)
    }

    /// Tells the hypervisor that the pages of every extent were modified.
    ///
    /// Up to [`MAX_EXTENTS_PER_CALL`] extents go in one request, exactly as
    /// in Xen; longer slices (which privcmd would refuse with `E2BIG`) are
    /// sent in chunks of that size, and the first failing chunk's error is
    /// returned (earlier chunks stay applied). The hypervisor may update the
    /// extents while it works through them.
    #[inline]
    pub fn modified_memory_bulk(&self, domid: DomId, extents: &mut [Extent]) -> Result<()> {
        let nr = u32::try_from(extents.len()).map_err(|_| Error::InvalidArgument(InvalidArgument::TooManyExtents))?;
        self.modified_extents(domid, Buf::extents(extents), nr)
    }

    /// [`modified_memory_bulk`](Self::modified_memory_bulk) of `nr` extents
    /// at `extents` (`nr` * 16 bytes), sent as they are (NULL is the
    /// kernel's or the hypervisor's to refuse; with `nr` 0 exactly Xen's
    /// request).
    #[inline]
    pub fn modified_memory_raw(&self, domid: DomId, extents: UserPtr, nr: u32) -> Result<()> {
        self.modified_extents(domid, Buf::from_user(extents, nr as usize * core::mem::size_of::<Extent>()), nr)
    }

    /// `nr` extents in `extents` (its size is `nr` * 16 bytes).
    #[inline(always)]
    fn modified_extents(&self, domid: DomId, extents: Buf<'_>, nr: u32) -> Result<()> {
        if nr as usize > MAX_EXTENTS_PER_CALL {
            return self.modified_chunked(domid, extents, nr);
        }
        // The common case, and exactly Xen's request.
        self.call2(domid, DmOp::new(ModifiedMemory { nr_extents: nr }), extents).map(drop)
    }

    /// [`DeviceModel::modified_memory_bulk`] beyond one request's worth.
    #[cold]
    #[inline(never)]
    fn modified_chunked(&self, domid: DomId, extents: Buf<'_>, nr: u32) -> Result<()> {
        const EXTENT: usize = core::mem::size_of::<Extent>();
        let mut done = 0usize;
        while done < nr as usize {
            let n = (nr as usize - done).min(MAX_EXTENTS_PER_CALL);
            let chunk = extents.tail(done * EXTENT, n * EXTENT);
            self.call2(domid, DmOp::new(ModifiedMemory { nr_extents: n as u32 }), chunk)?;
            done += n;
        }
        Ok(())
    }

    /// Sets the type (`hvmmem_type_t`) of `nr` pages from `first_pfn`.
    #[inline]
    pub fn set_mem_type(&self, domid: DomId, mem_type: u16, first_pfn: u64, nr: u32) -> Result<()> {
        self.call(domid, DmOp::new(SetMemType { nr, mem_type, first_pfn })).map(drop)
    }

    /// Injects `event` into vCPU `vcpu`, to take effect when it next resumes.
    #[inline]
    pub fn inject_event(&self, domid: DomId, vcpu: u32, event: Event) -> Result<()> {
        let body = InjectEvent {
            vcpuid: vcpu,
            vector: event.vector,
            type_: event.kind,
            insn_len: event.insn_len,
            error_code: event.error_code,
            cr2: event.extra,
        };
        self.call(domid, DmOp::new(body)).map(drop)
    }

    /// Shuts the domain down with `reason` (a `SHUTDOWN_*` code).
    #[inline]
    pub fn shutdown(&self, domid: DomId, reason: u32) -> Result<()> {
        self.call(domid, DmOp::new(RemoteShutdown { reason })).map(drop)
    }

    /// Moves `size` GFNs from `src_gfn` to `dst_gfn`.
    #[inline]
    pub fn relocate_memory(&self, domid: DomId, size: u32, src_gfn: u64, dst_gfn: u64) -> Result<()> {
        self.call(domid, DmOp::new(RelocateMemory { size, src_gfn, dst_gfn })).map(drop)
    }

    /// Pins the cache attribute `cache_type` (`XEN_DMOP_MEM_CACHEATTR_*`) on
    /// the RAM gfns `start..=end`.
    #[inline]
    pub fn pin_memory_cacheattr(&self, domid: DomId, start: u64, end: u64, cache_type: u32) -> Result<()> {
        self.call(domid, DmOp::new(PinMemoryCacheattr { start, end, type_: cache_type })).map(drop)
    }

    /// The number of vCPUs of the domain.
    #[inline]
    pub fn nr_vcpus(&self, domid: DomId) -> Result<u32> {
        Ok(self.call(domid, DmOp::new(NrVcpus::default()))?.body::<NrVcpus>().vcpus)
    }

    /// Restricts this handle to `domid`: later operations for any other
    /// domain fail with `EPERM`, and restricting again to another domain
    /// fails with `EINVAL`. [`Error::Unsupported`] on the libxencall path.
    pub fn restrict(&self, domid: DomId) -> Result<()> {
        self.usable()?;
        match self.xcall {
            None => self.privcmd.restrict(domid).map_err(Error::Os),
            Some(_) => Err(Error::Unsupported),
        }
    }

    /// Closes the handle, returning close(2)'s result as Xen's library does.
    /// In a child process, closing an inherited handle releases only the
    /// child's descriptor and always succeeds.
    pub fn close(mut self) -> Result<()> {
        let inherited = self.is_inherited();
        self.xcall = None; // closes libxencall, if used
        let privcmd = core::mem::replace(&mut self.privcmd, Privcmd::none());
        let r = privcmd.close();
        match r {
            Err(e) if !inherited => Err(Error::Os(e)),
            _ => Ok(()),
        }
    }
}

impl Fallback {
    /// The second step of [`DeviceModel::open_with`]: logs what the first
    /// found, and opens libxencall if needed (which logs its own failures to
    /// stderr).
    pub fn finish(self) -> Result<DeviceModel> {
        self.finish_with(Xencall::open)
    }

    /// [`finish`](Self::finish), with libxencall opened by `open_xencall`
    /// if it is needed (to give libxencall a logger of the caller's).
    pub fn finish_with(
        self,
        open_xencall: impl FnOnce() -> core::result::Result<Xencall, Errno>,
    ) -> Result<DeviceModel> {
        match self.0 {
            Opening::NeedsXencall { logger, gen, generation, why } => {
                if let Some(e) = why {
                    logger.debug(format_args!("privcmd has no DM_OP ioctl ({e}); using libxencall"));
                }
                let xcall = open_xencall()?;
                Ok(DeviceModel {
                    privcmd: Privcmd::none(),
                    gen: gen.word(),
                    source: gen,
                    direct: NOT_DIRECT,
                    generation,
                    xcall: Some(xcall),
                    logger,
                })
            }
            Opening::Failed { logger, err } => {
                logger.error(err, format_args!("Could not obtain handle on privileged command interface"));
                Err(Error::Os(err))
            }
        }
    }
}

/// Bytes of a dirty bitmap for `nr` pages, computed without overflow.
#[inline(always)]
pub(crate) fn bitmap_bytes(nr: u32) -> usize {
    (nr as usize).div_ceil(8)
}

fn space_type(space: IoSpace) -> u32 {
    match space {
        IoSpace::Port => XEN_DMOP_IO_RANGE_PORT,
        IoSpace::Mmio => XEN_DMOP_IO_RANGE_MEMORY,
    }
}

fn checked_sbdf(segment: u16, bus: u8, device: u8, function: u8) -> Result<u64> {
    if device > 0x1f {
        return Err(Error::InvalidArgument(InvalidArgument::PciDevice));
    }
    if function > 7 {
        return Err(Error::InvalidArgument(InvalidArgument::PciFunction));
    }
    Ok(abi::pci_sbdf(segment, bus, device, function))
}
