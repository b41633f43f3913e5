//! Everything that reaches Linux: the only module of this crate with
//! `unsafe` code. It owns every descriptor and mapping it makes and offers
//! them as safe types:
//!
//! - [`ResourceMapping`]: an IOREQ server's pages, mapped the way
//!   `xenforeignmemory_map_resource` does (`mmap` of `/dev/xen/privcmd`, then
//!   `IOCTL_PRIVCMD_MMAP_RESOURCE` fills the range); unmapped on drop;
//! - [`ForeignPage`]: one page of guest memory (`IOCTL_PRIVCMD_MMAPBATCH_V2`),
//!   copied in and out with volatile accesses (the guest may change it);
//! - [`Evtchn`]: `/dev/xen/evtchn` (bind, unbind, notify, unmask, read);
//! - [`EventFd`] and the signal pipe, which wake a waiting session.
#![allow(non_camel_case_types)]

use crate::abi::{BufferedPage, IoreqPage, PAGE_SIZE};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicI32, Ordering::*};
use libc::{c_int, c_void};
use std::sync::OnceLock;
use xendevicemodel::Errno;

fn errno() -> Errno {
    Errno::from_raw(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO))
}

fn check(rc: c_int) -> Result<c_int, Errno> {
    if rc < 0 {
        Err(errno())
    } else {
        Ok(rc)
    }
}

const fn ioc_none(ty: u8, nr: u32, size: usize) -> u32 {
    // _IOC(_IOC_NONE, ty, nr, size): direction 0 in bits 30-31.
    ((size as u32) << 16) | ((ty as u32) << 8) | nr
}

/// An owned descriptor (closed on drop).
#[derive(Debug)]
pub(crate) struct Fd(c_int);

impl Fd {
    fn open(path: &core::ffi::CStr, flags: c_int) -> Result<Fd, Errno> {
        // SAFETY: a NUL-terminated path; the descriptor returned is ours.
        check(unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) }).map(Fd)
    }
}

impl Drop for Fd {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor and close it once.
        unsafe { libc::close(self.0) };
    }
}

/// The system's page size must be Xen's for the resource and foreign
/// mappings below (arm64 kernels with 16 or 64 KiB pages are refused).
pub(crate) fn page_size_ok() -> bool {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) == PAGE_SIZE as libc::c_long }
}

// ---------------------------------------------------------------- privcmd

/// Linux `privcmd_mmap_resource_t`.
#[repr(C)]
struct PrivcmdMmapResource {
    dom: u16,
    type_: u32,
    id: u32,
    idx: u32,
    num: u64,
    addr: u64,
}
const IOCTL_PRIVCMD_MMAP_RESOURCE: u32 = ioc_none(b'P', 7, core::mem::size_of::<PrivcmdMmapResource>());
const _: () = assert!(core::mem::size_of::<PrivcmdMmapResource>() == 32);
const _: () = assert!(IOCTL_PRIVCMD_MMAP_RESOURCE == 0x0020_5007);

/// Linux `privcmd_mmapbatch_v2_t` (`arr` is `xen_pfn_t *`: 64-bit on every
/// architecture Debian ships Xen for, `unsigned long` on x86_64).
#[repr(C)]
struct PrivcmdMmapBatchV2 {
    num: u32,
    dom: u16,
    addr: u64,
    arr: *const u64,
    err: *mut c_int,
}
const IOCTL_PRIVCMD_MMAPBATCH_V2: u32 = ioc_none(b'P', 4, core::mem::size_of::<PrivcmdMmapBatchV2>());
#[cfg(target_pointer_width = "64")]
const _: () = assert!(IOCTL_PRIVCMD_MMAPBATCH_V2 == 0x0020_5004);

/// `XENMEM_resource_ioreq_server`.
const XENMEM_RESOURCE_IOREQ_SERVER: u32 = 0;

/// `/dev/xen/privcmd`, for mappings (dm_ops go through the `DeviceModel`'s own).
#[derive(Debug)]
pub(crate) struct Privcmd(Fd);

impl Privcmd {
    pub(crate) fn open() -> Result<Self, Errno> {
        Fd::open(c"/dev/xen/privcmd", libc::O_RDWR).map(Privcmd)
    }

    /// Maps `num` frames from `idx` of IOREQ server `id`'s resource:
    /// frame 0 is the buffered page, frame 1 the synchronous one.
    pub(crate) fn map_ioreq_server(&self, dom: u16, id: u16, idx: u32, num: u32) -> Result<ResourceMapping, Errno> {
        let len = num as usize * PAGE_SIZE;
        let map = Mmap::new(&self.0, len)?;
        let mut arg = PrivcmdMmapResource {
            dom,
            type_: XENMEM_RESOURCE_IOREQ_SERVER,
            id: id as u32,
            idx,
            num: num as u64,
            addr: map.ptr.as_ptr() as usize as u64,
        };
        // SAFETY: the kernel reads `arg` and fills the mapping we own.
        match check(unsafe { libc::ioctl(self.0 .0, IOCTL_PRIVCMD_MMAP_RESOURCE as _, &mut arg) }) {
            Ok(_) => Ok(ResourceMapping { map, frames: num }),
            // As xenforeignmemory: a hypervisor without resource mapping.
            Err(e) if e == Errno::ENOSYS => Err(Errno::EOPNOTSUPP),
            Err(e) => Err(e),
        }
    }

    /// Maps guest frame `gfn` of `dom`.
    pub(crate) fn map_foreign(&self, dom: u16, gfn: u64) -> Result<ForeignPage, Errno> {
        let map = Mmap::new(&self.0, PAGE_SIZE)?;
        let arr = [gfn];
        let mut err: c_int = 0;
        let arg = PrivcmdMmapBatchV2 {
            num: 1,
            dom,
            addr: map.ptr.as_ptr() as usize as u64,
            arr: arr.as_ptr(),
            err: &mut err,
        };
        // SAFETY: the kernel reads `arg` and `arr`, writes `err`, fills the mapping we own.
        check(unsafe { libc::ioctl(self.0 .0, IOCTL_PRIVCMD_MMAPBATCH_V2 as _, &arg) })?;
        if err != 0 {
            return Err(Errno::from_raw(-err));
        }
        Ok(ForeignPage(map))
    }
}

/// A shared mapping of privcmd (unmapped on drop).
#[derive(Debug)]
struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory; who may touch it is decided by the
// types that hold it (atomics only, or volatile copies).
unsafe impl Send for Mmap {}
unsafe impl Sync for Mmap {}

impl Mmap {
    fn new(fd: &Fd, len: usize) -> Result<Self, Errno> {
        // SAFETY: a fresh shared mapping of privcmd, which the ioctl fills.
        let p = unsafe {
            libc::mmap(core::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED, fd.0, 0)
        };
        if p == libc::MAP_FAILED {
            return Err(errno());
        }
        Ok(Mmap { ptr: NonNull::new(p.cast()).ok_or(Errno::ENOMEM)?, len })
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: we mapped exactly this range and nothing borrows it any more.
        unsafe { libc::munmap(self.ptr.as_ptr().cast::<c_void>(), self.len) };
    }
}

/// An IOREQ server's mapped frames.
#[derive(Debug)]
pub(crate) struct ResourceMapping {
    map: Mmap,
    frames: u32,
}

impl ResourceMapping {
    /// Frame `i` as the synchronous ioreq page.
    pub(crate) fn ioreq_page(&self, i: u32) -> &IoreqPage {
        assert!(i < self.frames);
        // SAFETY: a mapped, page-aligned frame of this size that lives as
        // long as `self`; IoreqPage is all atomics, so the hypervisor's
        // concurrent writes are no data race.
        unsafe { &*self.map.ptr.as_ptr().add(i as usize * PAGE_SIZE).cast::<IoreqPage>() }
    }

    /// Frame `i` as the buffered ioreq page.
    pub(crate) fn buffered_page(&self, i: u32) -> &BufferedPage {
        assert!(i < self.frames);
        // SAFETY: as for ioreq_page.
        unsafe { &*self.map.ptr.as_ptr().add(i as usize * PAGE_SIZE).cast::<BufferedPage>() }
    }
}

/// One mapped page of guest memory.
#[derive(Debug)]
pub(crate) struct ForeignPage(Mmap);

impl ForeignPage {
    /// Copies `buf.len()` bytes from `offset` (which must fit in the page).
    pub(crate) fn read(&self, offset: usize, buf: &mut [u8]) {
        assert!(offset + buf.len() <= PAGE_SIZE);
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: within the mapping (checked above); volatile because the guest may write it.
            *b = unsafe { self.0.ptr.as_ptr().add(offset + i).read_volatile() };
        }
    }

    /// Copies `buf` to `offset` (which must fit in the page).
    pub(crate) fn write(&self, offset: usize, buf: &[u8]) {
        assert!(offset + buf.len() <= PAGE_SIZE);
        for (i, b) in buf.iter().enumerate() {
            // SAFETY: as for read.
            unsafe { self.0.ptr.as_ptr().add(offset + i).write_volatile(*b) };
        }
    }
}

// ---------------------------------------------------------------- evtchn

const IOCTL_EVTCHN_BIND_INTERDOMAIN: u32 = ioc_none(b'E', 1, 8);
const IOCTL_EVTCHN_UNBIND: u32 = ioc_none(b'E', 3, 4);
const IOCTL_EVTCHN_NOTIFY: u32 = ioc_none(b'E', 4, 4);
const _: () = assert!(IOCTL_EVTCHN_BIND_INTERDOMAIN == 0x0008_4501);
const _: () = assert!(IOCTL_EVTCHN_NOTIFY == 0x0004_4504);

/// `/dev/xen/evtchn`, non-blocking.
#[derive(Debug)]
pub(crate) struct Evtchn(Fd);

impl Evtchn {
    pub(crate) fn open() -> Result<Self, Errno> {
        Fd::open(c"/dev/xen/evtchn", libc::O_RDWR | libc::O_NONBLOCK).map(Evtchn)
    }

    /// Binds a local port to `remote_port` of `domid`; returns the local port.
    pub(crate) fn bind_interdomain(&self, domid: u16, remote_port: u32) -> Result<u32, Errno> {
        let arg: [u32; 2] = [domid as u32, remote_port];
        // SAFETY: the kernel reads two unsigned ints.
        check(unsafe { libc::ioctl(self.0 .0, IOCTL_EVTCHN_BIND_INTERDOMAIN as _, arg.as_ptr()) }).map(|p| p as u32)
    }

    pub(crate) fn unbind(&self, port: u32) -> Result<(), Errno> {
        // SAFETY: the kernel reads one unsigned int.
        check(unsafe { libc::ioctl(self.0 .0, IOCTL_EVTCHN_UNBIND as _, &port) }).map(drop)
    }

    pub(crate) fn notify(&self, port: u32) -> Result<(), Errno> {
        // SAFETY: the kernel reads one unsigned int.
        check(unsafe { libc::ioctl(self.0 .0, IOCTL_EVTCHN_NOTIFY as _, &port) }).map(drop)
    }

    /// Unmasks a port that fired: the device takes port numbers written to it.
    pub(crate) fn unmask(&self, port: u32) -> Result<(), Errno> {
        // SAFETY: writes 4 bytes from a local.
        let n = unsafe { libc::write(self.0 .0, (&port as *const u32).cast(), 4) };
        if n == 4 {
            Ok(())
        } else if n < 0 {
            Err(errno())
        } else {
            Err(Errno::EIO)
        }
    }

    /// Reads the ports that fired (0 when none).
    pub(crate) fn read(&self, ports: &mut [u32]) -> Result<usize, Errno> {
        // SAFETY: reads at most the buffer's size into it.
        let n = unsafe { libc::read(self.0 .0, ports.as_mut_ptr().cast(), core::mem::size_of_val(ports)) };
        if n >= 0 {
            return Ok(n as usize / 4);
        }
        match errno() {
            e if e.raw() == libc::EAGAIN => Ok(0),
            e => Err(e),
        }
    }

    pub(crate) fn raw(&self) -> c_int {
        self.0 .0
    }
}

/// An eventfd: what a [`Stopper`](crate::Stopper) writes to.
#[derive(Debug)]
pub(crate) struct EventFd(Fd);

impl EventFd {
    pub(crate) fn new() -> Result<Self, Errno> {
        // SAFETY: no pointers; the descriptor returned is ours.
        check(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) }).map(|fd| EventFd(Fd(fd)))
    }

    pub(crate) fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a local; a full counter only means it is already signalled.
        unsafe { libc::write(self.0 .0, (&one as *const u64).cast(), 8) };
    }

    /// Reads and clears the counter; true if it was signalled.
    pub(crate) fn take(&self) -> bool {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a local.
        unsafe { libc::read(self.0 .0, (&mut v as *mut u64).cast(), 8) == 8 }
    }

    pub(crate) fn raw(&self) -> c_int {
        self.0 .0
    }
}

// ---------------------------------------------------------------- signals

/// The last of SIGINT, SIGTERM, SIGHUP received (0: none).
static SIGNALLED: AtomicI32 = AtomicI32::new(0);
/// The pipe the handler writes to: [read end, write end].
static SIGNAL_PIPE: OnceLock<[c_int; 2]> = OnceLock::new();

extern "C" fn on_signal(sig: c_int) {
    SIGNALLED.store(sig, SeqCst);
    if let Some(p) = SIGNAL_PIPE.get() {
        let b = sig as u8;
        // SAFETY: write(2) is async-signal-safe; the byte is never read, so
        // the pipe stays readable and wakes every session.
        unsafe { libc::write(p[1], (&b as *const u8).cast(), 1) };
    }
}

/// Installs handlers for SIGINT, SIGTERM and SIGHUP (once per process)
/// that make every session's wait return; returns the descriptor to poll.
pub(crate) fn signal_pipe() -> Result<c_int, Errno> {
    if let Some(p) = SIGNAL_PIPE.get() {
        return Ok(p[0]);
    }
    let mut fds = [0 as c_int; 2];
    // SAFETY: pipe2 writes two descriptors into the array.
    check(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) })?;
    if SIGNAL_PIPE.set(fds).is_err() {
        // Another thread won the race: ours is not needed.
        // SAFETY: the two descriptors were just made here.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
        return Ok(SIGNAL_PIPE.get().map_or(-1, |p| p[0]));
    }
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: a zeroed sigaction with our handler, which only stores an
        // atomic and calls write(2).
        unsafe {
            let mut sa: libc::sigaction = core::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(c_int) as usize;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, core::ptr::null_mut());
        }
    }
    Ok(fds[0])
}

/// The signal received, if any.
pub(crate) fn signalled() -> Option<i32> {
    match SIGNALLED.load(SeqCst) {
        0 => None,
        s => Some(s),
    }
}

/// Waits until one of `fds` is readable or `timeout_ms` passes (-1: no
/// limit); returns which were readable. EINTR counts as nothing readable.
pub(crate) fn poll_readable<const N: usize>(fds: [c_int; N], timeout_ms: c_int) -> Result<[bool; N], Errno> {
    let mut p = fds.map(|fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 });
    // SAFETY: an array of N pollfds.
    let rc = unsafe { libc::poll(p.as_mut_ptr(), N as libc::nfds_t, timeout_ms) };
    if rc < 0 {
        return match errno() {
            e if e.raw() == libc::EINTR => Ok([false; N]),
            e => Err(e),
        };
    }
    Ok(p.map(|x| x.fd >= 0 && x.revents != 0))
}
