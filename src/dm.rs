//! The safe Rust API: [`DeviceModel`], one method per device-model operation.
//!
//! Every operation is encoded as a [`DmOp`] (plus, for three operations, a
//! second buffer) and goes through one submit path, `DeviceModel::submit`,
//! which picks privcmd's `IOCTL_PRIVCMD_DM_OP` or, on kernels without it, the
//! libxencall hypercall. Encodings, including Xen's observable quirks (u8
//! truncation of wide arguments, `!!enabled`, `XEN_DMOP_no_gfns`), match Xen's
//! libxendevicemodel byte for byte.

use crate::log::Logger;
use crate::sys::{self, ActiveHandle, Xencall};
use crate::xen::{self, op, *};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use libc::{c_int, c_ulong, c_void};
use nix::errno::Errno;
use std::sync::Once;

/// Result of a device-model operation: the errno Xen or the kernel gave.
pub type Result<T> = core::result::Result<T, Errno>;

/// Extents per `modified_memory` request: what fits in privcmd's default
/// per-buffer limit (4096 bytes / 16 bytes per extent).
pub const MAX_EXTENTS_PER_CALL: usize = PRIVCMD_BUF_MAX / core::mem::size_of::<xen_dm_op_modified_memory_extent>();

/// Process generation: bumped in the child by a `pthread_atfork` handler, so
/// a handle opened before `fork()` is recognisably inherited.
static FORK_EPOCH: AtomicU32 = AtomicU32::new(0);
/// An epoch `FORK_EPOCH` never takes (see `DeviceModel::direct`).
const NOT_DIRECT: u32 = u32::MAX;
static ATFORK: Once = Once::new();

/// Hooks run around `fork()`; the handle table adds its own lock handling.
pub(crate) mod fork_hooks {
    use super::*;
    pub(crate) extern "C" fn prepare() {
        crate::handle::fork_prepare();
    }
    pub(crate) extern "C" fn parent() {
        crate::handle::fork_parent();
    }
    pub(crate) extern "C" fn child() {
        let next = FORK_EPOCH.load(Ordering::Relaxed).wrapping_add(1);
        FORK_EPOCH.store(if next == NOT_DIRECT { 0 } else { next }, Ordering::Relaxed);
        crate::handle::fork_child();
    }
}

fn install_fork_hooks() {
    ATFORK.call_once(|| {
        // Registration fails only on memory exhaustion; then inherited handles
        // would behave as in Xen's library, which is the best we can do.
        let _ = sys::atfork(fork_hooks::prepare, fork_hooks::parent, fork_hooks::child);
    });
}

/// State that libxentoolcore points into: must not move while registered, so
/// it lives in a `Box`. `ah` is the first field so the callback can find the
/// rest from the pointer it is given.
#[repr(C)]
struct Core {
    ah: UnsafeCell<ActiveHandle>,
    /// The privcmd descriptor, or -1 on the libxencall path. Atomic because
    /// libxentoolcore may call `restrict_cb` from another thread while open
    /// is still setting it.
    fd: AtomicI32,
    epoch: u32,
    logger: Logger,
}

/// An open device-model interface, the Rust counterpart of
/// `xendevicemodel_handle`.
///
/// Safe to share between threads. After `fork()` a `DeviceModel` inherited by
/// the child refuses every operation with `EBADF` without touching privcmd
/// (the open file is shared with the parent, and so would be its restriction).
pub struct DeviceModel {
    /// `core.fd` once open is done, kept here too so that a call reads it
    /// next to the handle's state instead of behind a pointer.
    fd: c_int,
    /// The fork epoch in which calls go straight to privcmd: the epoch at open
    /// for a privcmd handle, [`NOT_DIRECT`] for a libxencall one. One compare
    /// with the current epoch admits a call to the fast path.
    direct: u32,
    core: Box<Core>,
    /// Set on kernels without the DM_OP ioctl: requests go through libxencall.
    xcall: Option<Xencall>,
    /// Cleared once deregistered and closed, so that happens exactly once.
    live: bool,
}

// SAFETY: the only interior mutability is `ah`, whose links libxentoolcore
// changes under its own lock; everything else is immutable after open.
unsafe impl Send for DeviceModel {}
unsafe impl Sync for DeviceModel {}

/// The libxentoolcore callback behind `xentoolcore_restrict_all()`.
unsafe extern "C" fn restrict_cb(ah: *mut ActiveHandle, domid: domid_t) -> c_int {
    // SAFETY: `ah` is the first field of a registered, live `Core` (it is
    // deregistered, under libxentoolcore's lock, before being freed).
    let core = &*(ah as *const Core);
    let fd = core.fd.load(Ordering::Acquire);
    if fd < 0 {
        return 0; // libxencall registers and restricts its own handle
    }
    if core.epoch != FORK_EPOCH.load(Ordering::Relaxed) {
        // Inherited from the parent: privcmd restrictions belong to the open
        // file, which the parent shares. Drop this process's access instead.
        core.logger.debug(format_args!("restrict_all: dropping fd {fd} inherited across fork"));
        return match sys::neuter_fd(fd) {
            Ok(()) => 0,
            Err(_) => -1,
        };
    }
    match sys::restrict(fd, domid) {
        Ok(()) => 0,
        Err(e) => {
            core.logger.error(e, format_args!("restrict_all: cannot restrict to domain {domid}"));
            e.set();
            -1
        }
    }
}

impl DeviceModel {
    /// Opens the interface: registers with libxentoolcore, opens
    /// `/dev/xen/privcmd`, and probes it for `IOCTL_PRIVCMD_DM_OP`.
    ///
    /// A probe answered `EPERM` means the ioctl exists but this file is
    /// restricted (a stub domain): privcmd is kept. A missing device or a
    /// kernel without the ioctl selects the libxencall fallback.
    pub fn open(logger: Logger) -> Result<Self> {
        install_fork_hooks();
        let core = Box::new(Core {
            ah: UnsafeCell::new(ActiveHandle {
                restrict_callback: restrict_cb,
                le_next: core::ptr::null_mut(),
                le_prev: core::ptr::null_mut(),
            }),
            fd: AtomicI32::new(-1),
            epoch: FORK_EPOCH.load(Ordering::Relaxed),
            logger,
        });
        // Xen's rule: register before the descriptor exists, so that a
        // concurrent restrict_all cannot miss it.
        // SAFETY: the Box keeps `ah` at a fixed address until Drop deregisters it.
        unsafe { sys::register(core.ah.get()) };
        let mut dm = DeviceModel { fd: -1, direct: NOT_DIRECT, core, xcall: None, live: true };
        match sys::open_privcmd() {
            Ok(fd) => match sys::dm_op(fd, DOMID_INVALID, &[]) {
                Ok(()) | Err(Errno::EPERM) => {
                    dm.core.fd.store(fd, Ordering::Release);
                    dm.fd = fd;
                    dm.direct = dm.core.epoch;
                }
                Err(e) => {
                    dm.core.logger.debug(format_args!("privcmd has no DM_OP ioctl ({e}); using libxencall"));
                    let _ = sys::close(fd);
                    // SAFETY: the logger is the caller's live one, or ours.
                    dm.xcall = Some(unsafe { Xencall::open(dm.core.logger.raw()) }?);
                }
            },
            // No privcmd device node: an old kernel, as in Xen try libxencall.
            Err(Errno::ENOENT | Errno::ENXIO | Errno::ENODEV) => {
                // SAFETY: as above.
                dm.xcall = Some(unsafe { Xencall::open(dm.core.logger.raw()) }?);
            }
            Err(e) => {
                dm.core.logger.error(e, format_args!("Could not obtain handle on privileged command interface"));
                return Err(e);
            }
        }
        Ok(dm)
    }

    /// Whether requests go through libxencall rather than privcmd's DM_OP ioctl.
    pub fn uses_xencall(&self) -> bool {
        self.xcall.is_some()
    }

    /// The privcmd descriptor, if requests go through privcmd.
    pub fn fd(&self) -> Option<c_int> {
        Some(self.fd).filter(|&fd| fd >= 0)
    }

    /// True in a child process for a handle opened before `fork()`.
    pub fn is_inherited(&self) -> bool {
        self.core.epoch != FORK_EPOCH.load(Ordering::Relaxed)
    }

    /// The logger this handle reports through.
    pub fn logger(&self) -> &Logger {
        &self.core.logger
    }

    /// Refuses inherited handles before anything reaches privcmd.
    #[inline(always)]
    fn usable(&self) -> Result<()> {
        if self.is_inherited() {
            return Err(self.refuse_inherited());
        }
        Ok(())
    }

    #[cold]
    #[inline(never)]
    fn refuse_inherited(&self) -> Errno {
        self.core
            .logger
            .error(Errno::EBADF, format_args!("handle was opened before fork(); the child must open its own"));
        Errno::EBADF
    }

    /// The one submit path: every operation ends here.
    #[inline(always)]
    fn submit(&self, domid: domid_t, bufs: &[PrivcmdDmOpBuf]) -> Result<()> {
        if self.direct != FORK_EPOCH.load(Ordering::Relaxed) {
            return self.submit_indirect(domid, bufs);
        }
        sys::dm_op(self.fd, domid, bufs).inspect_err(|&e| self.failed(domid, e))
    }

    /// The rest of the submit path: libxencall handles, and handles
    /// inherited across fork(), which are refused.
    #[cold]
    #[inline(never)]
    fn submit_indirect(&self, domid: domid_t, bufs: &[PrivcmdDmOpBuf]) -> Result<()> {
        self.usable()?;
        let r = match &self.xcall {
            None => sys::dm_op(self.fd, domid, bufs),
            Some(x) => x.dm_op(domid, bufs),
        };
        r.inspect_err(|&e| self.failed(domid, e))
    }

    /// Not an error of ours: the caller decides. Visible at debug level.
    #[cold]
    #[inline(never)]
    fn failed(&self, domid: domid_t, e: Errno) {
        self.core.logger.debug(format_args!("dm_op to domain {domid} failed: {e}"));
        e.set();
    }

    /// Sends `req` alone; returns it as the hypervisor left it.
    #[inline]
    fn call(&self, domid: domid_t, mut req: DmOp) -> Result<DmOp> {
        let bufs = [buf(&mut req as *mut DmOp as *mut c_void, core::mem::size_of::<DmOp>())];
        self.submit(domid, &bufs)?;
        Ok(req)
    }

    /// Sends `req` followed by a second buffer.
    #[inline]
    fn call2(&self, domid: domid_t, mut req: DmOp, ptr: *mut c_void, size: usize) -> Result<DmOp> {
        let bufs = [buf(&mut req as *mut DmOp as *mut c_void, core::mem::size_of::<DmOp>()), buf(ptr, size)];
        self.submit(domid, &bufs)?;
        Ok(req)
    }

    /// Creates an IOREQ server; `handle_bufioreq` is one of `HVM_IOREQSRV_BUFIOREQ_*`.
    #[inline]
    pub fn create_ioreq_server(&self, domid: domid_t, handle_bufioreq: u8) -> Result<ioservid_t> {
        let body = CreateIoreqServer { handle_bufioreq, ..Default::default() };
        let r = self.call(domid, DmOp::new(op::CREATE_IOREQ_SERVER, body))?;
        Ok(r.body::<CreateIoreqServer>().id)
    }

    /// Returns the server's `(ioreq_gfn, bufioreq_gfn, bufioreq_port)`.
    ///
    /// With `want_gfns` false, Xen is told not to map the ioreq pages
    /// (`XEN_DMOP_no_gfns`) and the gfns returned are zero.
    #[inline]
    pub fn get_ioreq_server_info(&self, domid: domid_t, id: ioservid_t, want_gfns: bool) -> Result<(u64, u64, u32)> {
        let flags = if want_gfns { 0 } else { XEN_DMOP_NO_GFNS };
        let body = GetIoreqServerInfo { id, flags, ..Default::default() };
        let r = self.call(domid, DmOp::new(op::GET_IOREQ_SERVER_INFO, body))?.body::<GetIoreqServerInfo>();
        Ok((r.ioreq_gfn, r.bufioreq_gfn, r.bufioreq_port))
    }

    #[inline]
    fn io_range(&self, domid: domid_t, opno: u32, id: ioservid_t, type_: u32, start: u64, end: u64) -> Result<()> {
        let body = IoreqServerRange { id, type_, start, end, ..Default::default() };
        self.call(domid, DmOp::new(opno, body)).map(drop)
    }

    /// Claims the inclusive range `start..=end` of MMIO (`is_mmio`) or ports.
    #[inline]
    pub fn map_io_range(&self, domid: domid_t, id: ioservid_t, is_mmio: bool, start: u64, end: u64) -> Result<()> {
        self.io_range(domid, op::MAP_IO_RANGE_TO_IOREQ_SERVER, id, range_type(is_mmio), start, end)
    }

    /// Releases a range claimed with [`map_io_range`](Self::map_io_range).
    #[inline]
    pub fn unmap_io_range(&self, domid: domid_t, id: ioservid_t, is_mmio: bool, start: u64, end: u64) -> Result<()> {
        self.io_range(domid, op::UNMAP_IO_RANGE_FROM_IOREQ_SERVER, id, range_type(is_mmio), start, end)
    }

    /// Claims the config space of one PCI function (`EINVAL` for device > 0x1f
    /// or function > 7, before anything is sent).
    #[inline]
    pub fn map_pcidev(&self, domid: domid_t, id: ioservid_t, seg: u16, bus: u8, dev: u8, func: u8) -> Result<()> {
        let sbdf = checked_sbdf(seg, bus, dev, func)?;
        self.io_range(domid, op::MAP_IO_RANGE_TO_IOREQ_SERVER, id, XEN_DMOP_IO_RANGE_PCI, sbdf, sbdf)
    }

    /// Releases a PCI function claimed with [`map_pcidev`](Self::map_pcidev).
    #[inline]
    pub fn unmap_pcidev(&self, domid: domid_t, id: ioservid_t, seg: u16, bus: u8, dev: u8, func: u8) -> Result<()> {
        let sbdf = checked_sbdf(seg, bus, dev, func)?;
        self.io_range(domid, op::UNMAP_IO_RANGE_FROM_IOREQ_SERVER, id, XEN_DMOP_IO_RANGE_PCI, sbdf, sbdf)
    }

    /// Claims (flags = `XEN_DMOP_IOREQ_MEM_ACCESS_WRITE`) or releases (0) pages
    /// of type `HVMMEM_ioreq_server`; any other type or flag is `EINVAL`.
    #[inline]
    pub fn map_mem_type(&self, domid: domid_t, id: ioservid_t, type_: u16, flags: u32) -> Result<()> {
        if type_ != HVMMEM_IOREQ_SERVER || flags & !XEN_DMOP_IOREQ_MEM_ACCESS_WRITE != 0 {
            return Err(Errno::EINVAL);
        }
        let body = MapMemTypeToIoreqServer { id, type_, flags, opaque: 0 };
        self.call(domid, DmOp::new(op::MAP_MEM_TYPE_TO_IOREQ_SERVER, body)).map(drop)
    }

    /// Destroys an IOREQ server.
    #[inline]
    pub fn destroy_ioreq_server(&self, domid: domid_t, id: ioservid_t) -> Result<()> {
        let body = DestroyIoreqServer { id, pad: 0 };
        self.call(domid, DmOp::new(op::DESTROY_IOREQ_SERVER, body)).map(drop)
    }

    /// Enables or disables an IOREQ server.
    #[inline]
    pub fn set_ioreq_server_state(&self, domid: domid_t, id: ioservid_t, enabled: bool) -> Result<()> {
        let body = SetIoreqServerState { id, enabled: enabled as u8, pad: 0 };
        self.call(domid, DmOp::new(op::SET_IOREQ_SERVER_STATE, body)).map(drop)
    }

    /// Sets the level of a PCI INTx pin; `level` is truncated to 8 bits as in Xen.
    #[inline]
    pub fn set_pci_intx_level(&self, domid: domid_t, seg: u16, bus: u8, dev: u8, intx: u8, level: u32) -> Result<()> {
        let body = SetPciIntxLevel { domain: seg, bus, device: dev, intx, level: level as u8 };
        self.call(domid, DmOp::new(op::SET_PCI_INTX_LEVEL, body)).map(drop)
    }

    /// Sets the level of an ISA IRQ line; `level` is truncated to 8 bits as in Xen.
    #[inline]
    pub fn set_isa_irq_level(&self, domid: domid_t, irq: u8, level: u32) -> Result<()> {
        let body = SetIsaIrqLevel { isa_irq: irq, level: level as u8 };
        self.call(domid, DmOp::new(op::SET_ISA_IRQ_LEVEL, body)).map(drop)
    }

    /// Sets the level of a (non-x86) interrupt line; `level` truncated to 8 bits.
    #[inline]
    pub fn set_irq_level(&self, domid: domid_t, irq: u32, level: u32) -> Result<()> {
        let body = SetIrqLevel { irq, level: level as u8, pad: [0; 3] };
        self.call(domid, DmOp::new(op::SET_IRQ_LEVEL, body)).map(drop)
    }

    /// Routes PCI INTx link `link` to ISA IRQ `irq` (0 disables it).
    #[inline]
    pub fn set_pci_link_route(&self, domid: domid_t, link: u8, irq: u8) -> Result<()> {
        let body = SetPciLinkRoute { link, isa_irq: irq };
        self.call(domid, DmOp::new(op::SET_PCI_LINK_ROUTE, body)).map(drop)
    }

    /// Injects an MSI.
    #[inline]
    pub fn inject_msi(&self, domid: domid_t, addr: u64, data: u32) -> Result<()> {
        let body = InjectMsi { data, pad: 0, addr };
        self.call(domid, DmOp::new(op::INJECT_MSI, body)).map(drop)
    }

    /// Returns and resets the dirty bitmap of `nr` pages from `first_pfn`,
    /// written to `bitmap` (`ceil(nr / 8)` bytes, computed without overflow).
    ///
    /// Not split: the tracking window is one atomic hypervisor operation, so
    /// `nr` is limited by privcmd's buffer size (32768 pages by default).
    ///
    /// # Safety
    /// `bitmap` must be valid for writes of `ceil(nr / 8)` bytes (or NULL when
    /// `nr` is 0, which the hypervisor rejects with `EFAULT`).
    #[inline]
    pub unsafe fn track_dirty_vram(&self, domid: domid_t, first_pfn: u64, nr: u32, bitmap: *mut c_ulong) -> Result<()> {
        let body = TrackDirtyVram { nr, pad: 0, first_pfn };
        let bytes = (nr as usize).div_ceil(8);
        self.call2(domid, DmOp::new(op::TRACK_DIRTY_VRAM, body), bitmap.cast(), bytes).map(drop)
    }

    /// Marks `nr` pages from `first_pfn` modified (a one-extent bulk call, as in Xen).
    #[inline]
    pub fn modified_memory(&self, domid: domid_t, first_pfn: u64, nr: u32) -> Result<()> {
        let extent = xen_dm_op_modified_memory_extent { nr, pad: 0, first_pfn };
        // SAFETY: one valid extent on the stack.
        unsafe { self.modified_memory_bulk(domid, &extent, 1) }
    }

    /// Marks the given extents modified.
    ///
    /// Up to [`MAX_EXTENTS_PER_CALL`] extents go in one request, exactly as in
    /// Xen. Longer arrays (which privcmd would refuse with `E2BIG`) are sent in
    /// chunks of that size; the first failing chunk's error is returned.
    ///
    /// # Safety
    /// `extents` must be valid for reads of `nr` extents (it may be NULL when
    /// `nr` is 0; the request then carries a zero-sized NULL buffer, as in Xen).
    #[inline(always)]
    pub unsafe fn modified_memory_bulk(
        &self,
        domid: domid_t,
        extents: *const xen_dm_op_modified_memory_extent,
        nr: u32,
    ) -> Result<()> {
        if nr as usize > MAX_EXTENTS_PER_CALL {
            return self.modified_memory_chunked(domid, extents, nr);
        }
        // The common case, and exactly Xen's request.
        let body = ModifiedMemory { nr_extents: nr, opaque: 0 };
        let size = nr as usize * core::mem::size_of::<xen_dm_op_modified_memory_extent>();
        self.call2(domid, DmOp::new(op::MODIFIED_MEMORY, body), extents as *mut c_void, size).map(drop)
    }

    /// [`DeviceModel::modified_memory_bulk`] beyond one request's worth.
    #[cold]
    #[inline(never)]
    unsafe fn modified_memory_chunked(
        &self,
        domid: domid_t,
        extents: *const xen_dm_op_modified_memory_extent,
        nr: u32,
    ) -> Result<()> {
        let mut done = 0usize;
        while done < nr as usize {
            let n = (nr as usize - done).min(MAX_EXTENTS_PER_CALL);
            let body = ModifiedMemory { nr_extents: n as u32, opaque: 0 };
            let ptr = if extents.is_null() { extents } else { extents.add(done) };
            let size = n * core::mem::size_of::<xen_dm_op_modified_memory_extent>();
            // The kernel only reads this buffer (Xen does not write extents back).
            self.call2(domid, DmOp::new(op::MODIFIED_MEMORY, body), ptr as *mut c_void, size)?;
            done += n;
        }
        Ok(())
    }

    /// Sets the `hvmmem_type_t` of `nr` pages (the type is sent as 16 bits, as in Xen).
    #[inline]
    pub fn set_mem_type(&self, domid: domid_t, mem_type: hvmmem_type_t, first_pfn: u64, nr: u32) -> Result<()> {
        let body = SetMemType { nr, mem_type: mem_type as u16, pad: 0, first_pfn };
        self.call(domid, DmOp::new(op::SET_MEM_TYPE, body)).map(drop)
    }

    /// Injects an event into a vCPU (the vcpu id is sent as 32 bits).
    #[allow(clippy::too_many_arguments)]
    pub fn inject_event(
        &self,
        domid: domid_t,
        vcpu: i32,
        vector: u8,
        type_: u8,
        error_code: u32,
        insn_len: u8,
        extra: u64,
    ) -> Result<()> {
        let body =
            InjectEvent { vcpuid: vcpu as u32, vector, type_, insn_len, pad0: 0, error_code, pad1: 0, cr2: extra };
        self.call(domid, DmOp::new(op::INJECT_EVENT, body)).map(drop)
    }

    /// Shuts the domain down with `reason` (a `SHUTDOWN_*` code).
    #[inline]
    pub fn shutdown(&self, domid: domid_t, reason: u32) -> Result<()> {
        self.call(domid, DmOp::new(op::REMOTE_SHUTDOWN, RemoteShutdown { reason })).map(drop)
    }

    /// Moves `size` GFNs from `src_gfn` to `dst_gfn`.
    #[inline]
    pub fn relocate_memory(&self, domid: domid_t, size: u32, src_gfn: u64, dst_gfn: u64) -> Result<()> {
        let body = RelocateMemory { size, pad: 0, src_gfn, dst_gfn };
        self.call(domid, DmOp::new(op::RELOCATE_MEMORY, body)).map(drop)
    }

    /// Pins the cache attribute `type_` (`XEN_DMOP_MEM_CACHEATTR_*`) on `start..=end`.
    #[inline]
    pub fn pin_memory_cacheattr(&self, domid: domid_t, start: u64, end: u64, type_: u32) -> Result<()> {
        let body = PinMemoryCacheattr { start, end, type_, pad: 0 };
        self.call(domid, DmOp::new(op::PIN_MEMORY_CACHEATTR, body)).map(drop)
    }

    /// The number of vCPUs of the domain.
    #[inline]
    pub fn nr_vcpus(&self, domid: domid_t) -> Result<u32> {
        Ok(self.call(domid, DmOp::new(op::NR_VCPUS, NrVcpus::default()))?.body::<NrVcpus>().vcpus)
    }

    /// Restricts this handle's privcmd file to `domid` (`EOPNOTSUPP` on the
    /// libxencall path, as in Xen).
    #[inline]
    pub fn restrict(&self, domid: domid_t) -> Result<()> {
        self.usable()?;
        match self.xcall {
            None => sys::restrict(self.fd, domid).inspect_err(|e| e.set()),
            Some(_) => Err(Errno::EOPNOTSUPP),
        }
    }

    /// Closes the handle, returning close(2)'s result like Xen's library.
    ///
    /// In a child process, closing an inherited handle releases only the
    /// child's descriptor and always succeeds.
    pub fn close(mut self) -> Result<()> {
        let inherited = self.is_inherited();
        let r = self.release();
        if inherited {
            Ok(())
        } else {
            r
        }
    }

    fn release(&mut self) -> Result<()> {
        self.live = false;
        // Xen's rule: deregister before the descriptor is closed, so that
        // restrict_all never sees a recycled descriptor number.
        // SAFETY: registered in `open`; `ah` is still at the same address.
        unsafe { sys::deregister(self.core.ah.get()) };
        self.xcall = None; // closes libxencall, if used
        match self.fd {
            fd if fd >= 0 => sys::close(fd),
            _ => Ok(()),
        }
    }
}

impl Drop for DeviceModel {
    fn drop(&mut self) {
        if self.live {
            let _ = self.release();
        }
    }
}

#[inline]
fn buf(uptr: *mut c_void, size: usize) -> PrivcmdDmOpBuf {
    PrivcmdDmOpBuf { uptr, size }
}

fn range_type(is_mmio: bool) -> u32 {
    if is_mmio {
        XEN_DMOP_IO_RANGE_MEMORY
    } else {
        XEN_DMOP_IO_RANGE_PORT
    }
}

fn checked_sbdf(seg: u16, bus: u8, dev: u8, func: u8) -> Result<u64> {
    if dev > 0x1f || func > 7 {
        return Err(Errno::EINVAL);
    }
    Ok(xen::pci_sbdf(seg, bus, dev, func))
}
