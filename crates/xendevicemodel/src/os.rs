//! All access to the operating system and to Xen's companion libraries: the
//! only module of this crate with `unsafe` code.
//!
//! What it offers the rest of the crate is safe: an owned privcmd descriptor
//! ([`Privcmd`]) that issues `IOCTL_PRIVCMD_DM_OP` over buffer descriptors
//! ([`Buf`]) built from Rust borrows, the libxencall fallback ([`Xencall`]),
//! fork detection ([`generation`]), errno, and, for the C ABI crate
//! (feature `capi`), libxentoollog, libxentoolcore, `pthread_atfork`,
//! `membarrier(2)` and pthread keys.
//!
//! Everything reaches the kernel through libc's `open`/`ioctl`/`close`
//! symbols, so `LD_PRELOAD` test doubles and tracing tools see every request.
//! A port to another kernel (FreeBSD's privcmd has the same ioctls under other
//! numbers) changes this module and [`crate::arch`] only.
#![allow(non_camel_case_types)]

use crate::abi::{DmOp, DomId, Extent};
use crate::arch;
use crate::error::Errno;
use core::marker::PhantomData;
use core::sync::atomic::{AtomicPtr, AtomicU64, AtomicU8, Ordering::*};
use libc::{c_int, c_uint, c_void};

// ---------------------------------------------------------------- errno

/// The calling thread's `errno`.
pub(crate) fn last_errno() -> Errno {
    Errno::from_raw(nix::errno::Errno::last_raw())
}

/// Sets the calling thread's `errno`.
pub(crate) fn set_errno(e: Errno) {
    nix::errno::Errno::set_raw(e.raw())
}

#[inline(always)]
fn check(rc: c_int) -> Result<c_int, Errno> {
    if rc < 0 {
        Err(last_errno())
    } else {
        Ok(rc)
    }
}

// ---------------------------------------------------------------- privcmd

/// Linux `privcmd_dm_op_buf_t`: one buffer of a DM_OP request, borrowed for
/// `'a` from the memory the kernel reads and writes.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Buf<'a> {
    uptr: *mut c_void,
    size: usize,
    _borrow: PhantomData<&'a mut [u8]>,
}

impl<'a> Buf<'a> {
    /// Buffer 0: the request itself, which the hypervisor may update (out-values).
    #[inline(always)]
    pub(crate) fn request(op: &'a mut DmOp) -> Self {
        Buf { uptr: (op as *mut DmOp).cast(), size: core::mem::size_of::<DmOp>(), _borrow: PhantomData }
    }

    /// A byte buffer the hypervisor writes (a dirty bitmap).
    #[inline(always)]
    pub(crate) fn bytes(b: &'a mut [u8]) -> Self {
        Buf { uptr: b.as_mut_ptr().cast(), size: b.len(), _borrow: PhantomData }
    }

    /// Extents the hypervisor reads, and updates when it splits the work.
    #[inline(always)]
    pub(crate) fn extents(e: &'a mut [Extent]) -> Self {
        Buf { uptr: e.as_mut_ptr().cast(), size: core::mem::size_of_val(e), _borrow: PhantomData }
    }

    /// A C caller's buffer of `size` bytes (the pointer may be NULL, which
    /// the kernel checks: it answers `EFAULT` for memory it cannot pin).
    #[cfg(feature = "capi")]
    #[inline(always)]
    pub(crate) fn from_c(ptr: CPtr, size: usize) -> Self {
        Buf { uptr: ptr.0, size, _borrow: PhantomData }
    }

    /// The buffer with its first `skip` bytes left out (chunked requests).
    #[inline]
    pub(crate) fn tail(self, skip: usize, size: usize) -> Self {
        debug_assert!(self.uptr.is_null() || skip + size <= self.size);
        let uptr = if self.uptr.is_null() { self.uptr } else { self.uptr.wrapping_byte_add(skip) };
        Buf { uptr, size, _borrow: PhantomData }
    }
}

/// A buffer pointer from a C caller, vouched for when it was wrapped.
#[cfg(feature = "capi")]
#[derive(Clone, Copy, Debug)]
pub struct CPtr(*mut c_void);

#[cfg(feature = "capi")]
impl CPtr {
    /// Wraps a C caller's buffer pointer for one call.
    ///
    /// # Safety
    /// Unless NULL, `ptr` must be valid for reads and writes of as many bytes
    /// as the operation it is passed to documents (Xen's C API contract), for
    /// the duration of that call.
    #[inline(always)]
    pub unsafe fn new<T>(ptr: *mut T) -> Self {
        CPtr(ptr.cast())
    }
}

/// Linux `privcmd_dm_op_t`: the argument of `IOCTL_PRIVCMD_DM_OP`.
///
/// `dom`, `num` and (on 64-bit) the padding are one word, written with one
/// store: the kernel's `copy_from_user` reads them with one load, which can
/// take its data straight from a single pending store but has to wait for
/// several smaller ones to reach the cache (about 1.5 ns per call).
#[repr(C)]
struct PrivcmdDmOp {
    head: arch::PrivcmdHead,
    ubufs: *const Buf<'static>,
}

impl PrivcmdDmOp {
    #[inline(always)]
    fn new(dom: DomId, bufs: &[Buf<'_>]) -> Self {
        // Little-endian (checked in arch): dom at offset 0, num at offset 2.
        let head = dom as arch::PrivcmdHead | ((bufs.len() as arch::PrivcmdHead) << 16);
        PrivcmdDmOp { head, ubufs: bufs.as_ptr().cast() }
    }
}

const fn ioc_none(nr: u32, size: usize) -> u32 {
    // _IOC(_IOC_NONE, 'P', nr, size): direction 0 in bits 30-31.
    ((size as u32) << 16) | ((b'P' as u32) << 8) | nr
}
/// `IOCTL_PRIVCMD_DM_OP`.
const IOCTL_PRIVCMD_DM_OP: u32 = ioc_none(5, core::mem::size_of::<PrivcmdDmOp>());
/// `IOCTL_PRIVCMD_RESTRICT`.
const IOCTL_PRIVCMD_RESTRICT: u32 = ioc_none(6, core::mem::size_of::<DomId>());

// The kernel's layouts and numbers, as arch.rs records them for this target.
const _: () = assert!(core::mem::size_of::<Buf>() == arch::PRIVCMD_DM_OP_BUF_SIZE);
const _: () = assert!(core::mem::size_of::<PrivcmdDmOp>() == arch::PRIVCMD_DM_OP_SIZE);
const _: () = assert!(core::mem::offset_of!(PrivcmdDmOp, ubufs) == arch::PRIVCMD_DM_OP_SIZE / 2);
const _: () = assert!(IOCTL_PRIVCMD_DM_OP == arch::IOCTL_PRIVCMD_DM_OP);
const _: () = assert!(IOCTL_PRIVCMD_RESTRICT == arch::IOCTL_PRIVCMD_RESTRICT);

/// An open `/dev/xen/privcmd` (closed on drop).
#[derive(Debug)]
pub(crate) struct Privcmd(c_int);

impl Privcmd {
    /// Opens `/dev/xen/privcmd` read-write and close-on-exec, as Xen's library does.
    pub(crate) fn open() -> Result<Self, Errno> {
        // SAFETY: constant NUL-terminated path.
        check(unsafe { libc::open(c"/dev/xen/privcmd".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) }).map(Privcmd)
    }

    /// No descriptor (the libxencall path): closing it does nothing.
    pub(crate) const fn none() -> Self {
        Privcmd(-1)
    }

    /// The descriptor number (-1 for none).
    #[cfg(feature = "capi")]
    pub(crate) fn raw(&self) -> c_int {
        self.0
    }

    /// Issues `IOCTL_PRIVCMD_DM_OP` for `dom` with the buffers given; the
    /// hypervisor's out-values land in them.
    #[inline(always)]
    pub(crate) fn dm_op(&self, dom: DomId, bufs: &[Buf<'_>]) -> Result<(), Errno> {
        let uop = PrivcmdDmOp::new(dom, bufs);
        // SAFETY: `uop` and every buffer it describes are valid for the call
        // (borrowed, or the C caller's promise); the kernel checks the rest.
        check(unsafe { libc::ioctl(self.0, IOCTL_PRIVCMD_DM_OP as _, &uop as *const PrivcmdDmOp) }).map(drop)
    }

    /// Restricts this open file to `dom`: from now on it serves no other domain.
    pub(crate) fn restrict(&self, dom: DomId) -> Result<(), Errno> {
        // SAFETY: the kernel reads one domid from the pointer.
        check(unsafe { libc::ioctl(self.0, IOCTL_PRIVCMD_RESTRICT as _, &dom as *const DomId) }).map(drop)
    }

    /// Closes the descriptor, returning close(2)'s result.
    pub(crate) fn close(self) -> Result<(), Errno> {
        let fd = self.0;
        core::mem::forget(self);
        if fd < 0 {
            return Ok(());
        }
        // SAFETY: we own `fd` and close it once.
        check(unsafe { libc::close(fd) }).map(drop)
    }
}

impl Drop for Privcmd {
    fn drop(&mut self) {
        if self.0 >= 0 {
            // SAFETY: we own the descriptor; close(2)'s result is only reported by `close`.
            unsafe { libc::close(self.0) };
        }
    }
}

// ---------------------------------------------------------------- libxencall

/// Opaque `struct xentoollog_logger` (libxentoollog).
#[repr(C)]
pub struct xentoollog_logger {
    _opaque: [u8; 0],
}

#[repr(C)]
struct xencall_handle {
    _opaque: [u8; 0],
}

#[link(name = "xencall")]
extern "C" {
    fn xencall_open(logger: *mut xentoollog_logger, flags: c_uint) -> *mut xencall_handle;
    fn xencall_close(xcall: *mut xencall_handle) -> c_int;
    fn xencall3(xcall: *mut xencall_handle, op: c_uint, a1: u64, a2: u64, a3: u64) -> c_int;
    fn xencall_alloc_buffer(xcall: *mut xencall_handle, size: usize) -> *mut c_void;
    fn xencall_free_buffer(xcall: *mut xencall_handle, p: *mut c_void);
}

/// `__HYPERVISOR_dm_op`.
const HYPERVISOR_DM_OP: c_uint = 41;

/// Xen `xen_dm_op_buf_t`, the buffer descriptor of the dm_op hypercall.
#[repr(C)]
struct XenDmOpBuf {
    h: u64,
    size: u64,
}

/// Largest buffer the libxencall path copies. Xen's own largest dm_op buffer
/// is track_dirty_vram's bitmap for 1 GiB of guest memory (32 KiB); anything
/// larger is refused with `E2BIG`, as privcmd refuses buffers over its limit,
/// instead of allocating and copying whatever size the caller computed.
pub(crate) const XENCALL_BUF_MAX: usize = 64 * 1024;

/// A libxencall handle, for kernels without `IOCTL_PRIVCMD_DM_OP` (closed on drop).
#[derive(Debug)]
pub(crate) struct Xencall(*mut xencall_handle);

// SAFETY: libxencall handles may be used from any thread (its buffer cache is locked).
unsafe impl Send for Xencall {}
unsafe impl Sync for Xencall {}

impl Xencall {
    /// Opens libxencall, which logs its own failures through `logger` (NULL:
    /// a stderr logger of its own).
    pub(crate) fn open(logger: Option<&XtlLogger>) -> Result<Self, Errno> {
        let raw = logger.map_or(core::ptr::null_mut(), |l| l.0);
        // SAFETY: `raw` is NULL or a live logger (XtlLogger's invariant).
        let h = unsafe { xencall_open(raw, 0) };
        if h.is_null() {
            Err(last_errno())
        } else {
            Ok(Xencall(h))
        }
    }

    /// The dm_op hypercall through hypercall-safe memory: copies every
    /// buffer in, and on success copies them back (Xen's out-values).
    ///
    /// A NULL buffer with a size is `EFAULT`, as privcmd would answer, rather
    /// than a copy from NULL; a buffer over [`XENCALL_BUF_MAX`] is `E2BIG`.
    pub(crate) fn dm_op(&self, dom: DomId, bufs: &[Buf<'_>]) -> Result<(), Errno> {
        if bufs.iter().any(|b| b.uptr.is_null() && b.size > 0) {
            return Err(Errno::EFAULT);
        }
        if bufs.iter().any(|b| b.size > XENCALL_BUF_MAX) {
            return Err(Errno::E2BIG);
        }
        let descs = bufs.len() * core::mem::size_of::<XenDmOpBuf>();
        let total = descs + bufs.iter().map(|b| b.size).sum::<usize>();
        // SAFETY: one xencall buffer holds the descriptor array followed by a
        // copy of every buffer; all pointers stay inside it, and every source
        // buffer is valid for its size (checked non-NULL above when sized).
        unsafe {
            let mem = xencall_alloc_buffer(self.0, total).cast::<u8>();
            if mem.is_null() {
                return Err(last_errno());
            }
            let desc = mem.cast::<XenDmOpBuf>();
            let mut data = mem.add(descs);
            for (i, b) in bufs.iter().enumerate() {
                if b.size > 0 {
                    core::ptr::copy_nonoverlapping(b.uptr.cast::<u8>(), data, b.size);
                }
                desc.add(i).write(XenDmOpBuf { h: data as usize as u64, size: b.size as u64 });
                data = data.add(b.size);
            }
            let rc = xencall3(self.0, HYPERVISOR_DM_OP, dom as u64, bufs.len() as u64, desc as usize as u64);
            let res = check(rc).map(drop);
            if res.is_ok() {
                let mut data = mem.add(descs);
                for b in bufs {
                    if b.size > 0 {
                        core::ptr::copy_nonoverlapping(data, b.uptr.cast::<u8>(), b.size);
                    }
                    data = data.add(b.size);
                }
            }
            let saved = last_errno();
            xencall_free_buffer(self.0, mem.cast());
            set_errno(saved);
            res
        }
    }
}

impl Drop for Xencall {
    fn drop(&mut self) {
        // SAFETY: the handle came from xencall_open and is closed once.
        unsafe { xencall_close(self.0) };
    }
}

// ---------------------------------------------------------------- fork detection

/// Where the process generation lives: a page that is zero in a child after
/// fork(), so a handle can tell it was inherited with one load. Two things
/// zero it there: the kernel (`MADV_WIPEONFORK`, Linux 4.14, also for a
/// child made without glibc's fork()), and a `pthread_atfork` child handler
/// registered with the page (for kernels and emulators that accept the
/// advice but ignore it, as qemu-user does). Until a page exists this points
/// at a word that stays 0.
static GEN_PAGE: AtomicPtr<AtomicU64> = AtomicPtr::new(&NO_PAGE as *const AtomicU64 as *mut AtomicU64);
static NO_PAGE: AtomicU64 = AtomicU64::new(0);
/// The next generation to hand out; a child inherits it, so its generations
/// are new to every handle it inherited.
static NEXT_GEN: AtomicU64 = AtomicU64::new(1);
/// 0: not decided yet, 1: the page, 2: no page could be made, getpid().
static GEN_MODE: AtomicU8 = AtomicU8::new(0);

/// Where a handle reads the process generation on each call: a word equal
/// to the value [`open_generation`] returned at open in the process that
/// opened the handle, and different in every other process (0 means "ask
/// [`same_process`]"). Taken at open, after `open_generation`.
pub(crate) fn generation_word() -> &'static AtomicU64 {
    // SAFETY: GEN_PAGE always points at NO_PAGE or at a page that is never unmapped.
    unsafe { &*GEN_PAGE.load(Acquire) }
}

/// The generation to record in a handle being opened (never 0).
pub(crate) fn open_generation() -> u64 {
    if GEN_MODE.load(Acquire) == 0 {
        let ok = make_page();
        GEN_MODE.store(if ok { 1 } else { 2 }, Release);
    }
    if GEN_MODE.load(Acquire) == 2 {
        return u64::from(getpid());
    }
    // SAFETY: mode 1 means GEN_PAGE points at the page.
    let page = unsafe { &*GEN_PAGE.load(Acquire) };
    if page.load(Relaxed) == 0 {
        // First open here, or first open in a child (the page was wiped).
        let _ = page.compare_exchange(0, NEXT_GEN.fetch_add(1, Relaxed), Relaxed, Relaxed);
    }
    page.load(Relaxed)
}

/// Whether a handle opened with generation `opened` belongs to this process.
pub(crate) fn same_process(opened: u64) -> bool {
    match GEN_MODE.load(Acquire) {
        2 => opened == u64::from(getpid()),
        _ => generation_word().load(Relaxed) == opened,
    }
}

fn getpid() -> u32 {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::getpid() as u32 }
}

/// Maps the generation page and has it zeroed in children; false if that
/// cannot be done (no memory, or neither the kernel nor an atfork handler
/// would zero it).
fn make_page() -> bool {
    if !core::ptr::eq(GEN_PAGE.load(Acquire), &NO_PAGE) {
        return true;
    }
    // SAFETY: a fresh private anonymous page, never unmapped once published.
    unsafe {
        let len = 4096;
        let p = libc::mmap(
            core::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            return false;
        }
        let wiped = libc::madvise(p, len, libc::MADV_WIPEONFORK) == 0;
        let page = p.cast::<AtomicU64>();
        let none = &NO_PAGE as *const AtomicU64 as *mut AtomicU64;
        if GEN_PAGE.compare_exchange(none, page, AcqRel, Acquire).is_err() {
            libc::munmap(p, len); // another thread was first
            return true;
        }
        // Once per process (only the thread that published the page gets here).
        let hooked = atfork_child(zero_generation_in_child).is_ok();
        wiped || hooked
    }
}

/// `pthread_atfork` child handler: the generation page is zero in a child.
extern "C" fn zero_generation_in_child() {
    generation_word().store(0, Relaxed);
}

/// Registers a child handler with `pthread_atfork` (undone by glibc if the
/// object that registered it is unloaded).
fn atfork_child(child: extern "C" fn()) -> Result<(), Errno> {
    // SAFETY: the handler is a plain function of this object.
    match unsafe { libc::pthread_atfork(None, None, Some(child)) } {
        0 => Ok(()),
        e => Err(Errno::from_raw(e)),
    }
}

// ---------------------------------------------------------------- logging

/// Writes one whole line to stderr with a single write(2), so that lines
/// from threads do not interleave. Errors are ignored: there is nowhere
/// left to report them.
pub(crate) fn write_stderr(line: &[u8]) {
    // SAFETY: the slice is valid for its length.
    let _ = unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
}

/// A libxentoollog logger (`struct xentoollog_logger *`), never NULL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XtlLogger(*mut xentoollog_logger);

// SAFETY: xentoollog loggers are used from any thread in Xen's libraries too;
// this crate never writes through the pointer itself.
unsafe impl Send for XtlLogger {}
unsafe impl Sync for XtlLogger {}

/// `xentoollog_level` values used here.
#[cfg(feature = "capi")]
pub(crate) mod xtl_level {
    /// `XTL_DEBUG`: hidden by Xen's default loggers.
    pub const DEBUG: libc::c_int = 1;
    /// `XTL_PROGRESS`: the threshold of the stderr logger for NULL loggers.
    pub const PROGRESS: libc::c_int = 4;
    /// `XTL_WARN`.
    pub const WARN: libc::c_int = 7;
    /// `XTL_ERROR`.
    pub const ERROR: libc::c_int = 8;
}

#[cfg(feature = "capi")]
#[link(name = "xentoollog")]
extern "C" {
    fn xtl_log(
        logger: *mut xentoollog_logger,
        level: c_int,
        errnoval: c_int,
        context: *const libc::c_char,
        format: *const libc::c_char,
        ...
    );
    fn xtl_createlogger_stdiostream(f: *mut libc::FILE, min_level: c_int, flags: c_uint) -> *mut xentoollog_logger;
}

#[cfg(feature = "capi")]
extern "C" {
    static mut stderr: *mut libc::FILE;
    fn flockfile(f: *mut libc::FILE);
    fn funlockfile(f: *mut libc::FILE);
}

#[cfg(feature = "capi")]
impl XtlLogger {
    /// Wraps a caller's logger; `None` for NULL.
    ///
    /// # Safety
    /// Unless NULL, `raw` must point at a live xentoollog logger for as long
    /// as the `XtlLogger` (and every handle given it) is used.
    pub unsafe fn from_raw(raw: *mut xentoollog_logger) -> Option<Self> {
        (!raw.is_null()).then_some(XtlLogger(raw))
    }

    /// The pointer, for other Xen libraries.
    pub fn as_raw(self) -> *mut xentoollog_logger {
        self.0
    }

    /// A new logger writing to stderr at `XTL_PROGRESS` and above, as Xen's
    /// library creates for a NULL logger (made with libxentoollog itself, so
    /// that messages look exactly like Xen's). `None` when out of memory.
    pub fn new_stderr() -> Option<Self> {
        // SAFETY: reading glibc's `stderr` pointer; the logger does not own it.
        let raw = unsafe { xtl_createlogger_stdiostream(stderr, xtl_level::PROGRESS, 0) };
        (!raw.is_null()).then_some(XtlLogger(raw))
    }

    /// Logs one preformatted message under the context "xendevicemodel";
    /// `errnoval` (-1 for none) is appended as Xen's loggers do.
    pub(crate) fn log(self, level: c_int, errnoval: c_int, msg: &core::ffi::CStr) {
        // SAFETY: a live logger (invariant) and NUL-terminated strings; the
        // message is passed as an argument, never as the format.
        unsafe { xtl_log(self.0, level, errnoval, c"xendevicemodel".as_ptr(), c"%s".as_ptr(), msg.as_ptr()) }
    }
}

/// Runs `f` holding stdio's lock on stderr, so that a message that
/// libxentoollog writes in several pieces is not interleaved with another
/// thread's.
#[cfg(feature = "capi")]
pub(crate) fn with_stderr_locked<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: glibc's `stderr` is always a valid FILE; flockfile is recursive,
    // so the logger's own stdio calls inside `f` proceed.
    unsafe { flockfile(stderr) };
    let r = f();
    // SAFETY: locked just above by this thread.
    unsafe { funlockfile(stderr) };
    r
}

// ---------------------------------------------------------------- process primitives (capi)

#[cfg(feature = "capi")]
pub use process::*;

#[cfg(feature = "capi")]
mod process {
    use super::*;
    use core::cell::UnsafeCell;

    /// `Xentoolcore__Active_Handle` from Xen's `xentoolcore_internal.h` (not
    /// installed by Debian): the restrict callback, then the two list links
    /// that libxentoolcore owns.
    #[repr(C)]
    struct ActiveHandle {
        restrict_callback: unsafe extern "C" fn(*mut ActiveHandle, DomId) -> c_int,
        le_next: *mut ActiveHandle,
        le_prev: *mut *mut ActiveHandle,
    }

    #[link(name = "xentoolcore")]
    extern "C" {
        fn xentoolcore__register_active_handle(ah: *mut ActiveHandle);
        fn xentoolcore__restrict_by_dup2_null(fd: c_int) -> c_int;
    }

    struct Registration(UnsafeCell<ActiveHandle>);
    // SAFETY: the links are only written by libxentoolcore, under its own lock.
    unsafe impl Sync for Registration {}

    static REGISTRATION: Registration = Registration(UnsafeCell::new(ActiveHandle {
        restrict_callback: trampoline,
        le_next: core::ptr::null_mut(),
        le_prev: core::ptr::null_mut(),
    }));
    static RESTRICT_ALL: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

    unsafe extern "C" fn trampoline(_: *mut ActiveHandle, domid: DomId) -> c_int {
        let f = RESTRICT_ALL.load(Acquire);
        if f.is_null() {
            return 0;
        }
        // SAFETY: only `register_restrict_all` stores here, always such a fn.
        let f: fn(DomId) -> Result<(), Errno> = unsafe { core::mem::transmute(f) };
        match f(domid) {
            Ok(()) => 0,
            Err(e) => {
                set_errno(e);
                -1
            }
        }
    }

    /// Registers `f` with libxentoolcore, once per process, so that
    /// `xentoolcore_restrict_all(domid)` calls it. Later calls are ignored.
    pub fn register_restrict_all(f: fn(DomId) -> Result<(), Errno>) {
        if RESTRICT_ALL.compare_exchange(core::ptr::null_mut(), f as *mut (), AcqRel, Acquire).is_ok() {
            // SAFETY: a static registration that is never deregistered (the
            // library stays loaded, see the crate that uses this).
            unsafe { xentoolcore__register_active_handle(REGISTRATION.0.get()) };
        }
    }

    impl Privcmd {
        /// Replaces this process's descriptor with /dev/null, leaving the open
        /// file (shared with a parent process) alone: libxentoolcore's helper.
        pub(crate) fn neuter(&self) -> Result<(), Errno> {
            // SAFETY: only this process's descriptor table changes.
            match unsafe { xentoolcore__restrict_by_dup2_null(self.0) } {
                0 => Ok(()),
                _ => Err(last_errno()),
            }
        }
    }

    /// Registers fork handlers with `pthread_atfork` (undone by glibc if the
    /// object that registered them is unloaded).
    pub fn atfork(prepare: extern "C" fn(), parent: extern "C" fn(), child: extern "C" fn()) -> Result<(), Errno> {
        // SAFETY: the handlers are plain functions of this object.
        match unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) } {
            0 => Ok(()),
            e => Err(Errno::from_raw(e)),
        }
    }

    /// `MEMBARRIER_CMD_PRIVATE_EXPEDITED` (linux/membarrier.h).
    const MEMBARRIER_CMD_PRIVATE_EXPEDITED: c_int = 1 << 3;
    /// `MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED`.
    const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: c_int = 1 << 4;

    /// Declares that this process will use [`membarrier`] (Linux 4.14 and
    /// later). Fails with `EINVAL` on older kernels, `ENOSYS` or `EPERM`
    /// under a seccomp policy that forbids it.
    pub fn membarrier_register() -> Result<(), Errno> {
        // SAFETY: a plain system call without pointer arguments.
        check(unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) } as c_int)
            .map(drop)
    }

    /// Makes every running thread of this process execute a full memory
    /// barrier before returning (`EPERM` until [`membarrier_register`]
    /// succeeded in this process, e.g. in a child after `fork()`).
    pub fn membarrier() -> Result<(), Errno> {
        // SAFETY: a plain system call without pointer arguments.
        check(unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) } as c_int).map(drop)
    }

    /// A pthread key whose destructor runs at thread exit with the thread's
    /// (non-NULL) value.
    #[derive(Clone, Copy, Debug)]
    pub struct ThreadKey(libc::pthread_key_t);

    impl ThreadKey {
        /// Creates a key (`EAGAIN` when the process has none left).
        pub fn new(destructor: unsafe extern "C" fn(*mut c_void)) -> Result<Self, Errno> {
            let mut key: libc::pthread_key_t = 0;
            // SAFETY: `key` is a valid out-pointer; the destructor is a function of this object.
            match unsafe { libc::pthread_key_create(&mut key, Some(destructor)) } {
                0 => Ok(ThreadKey(key)),
                e => Err(Errno::from_raw(e)),
            }
        }

        /// Sets this thread's value, which the destructor receives.
        pub fn set(self, value: &'static impl Sync) -> Result<(), Errno> {
            // SAFETY: a static value outlives every thread.
            match unsafe { libc::pthread_setspecific(self.0, value as *const _ as *const c_void) } {
                0 => Ok(()),
                e => Err(Errno::from_raw(e)),
            }
        }
    }

    /// The process's file size limit (`RLIMIT_FSIZE`, soft), or `None` when
    /// unlimited: a write past it kills the process (SIGXFSZ), which the
    /// trace must never cause (libxl gives a deprivileged QEMU 256 KiB).
    pub fn file_size_limit() -> Option<u64> {
        let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: `r` is a valid rlimit for the kernel to fill in.
        let rc = unsafe { libc::getrlimit(libc::RLIMIT_FSIZE, &mut r) };
        // rlim_t is 32 bits wide on armhf.
        #[allow(clippy::useless_conversion)]
        let cur = u64::from(r.rlim_cur);
        (rc == 0 && r.rlim_cur != libc::RLIM_INFINITY).then_some(cur)
    }

    /// The calling thread's kernel thread id (`gettid()`), for the trace.
    pub fn gettid() -> u32 {
        // SAFETY: a system call without arguments; it cannot fail.
        unsafe { libc::syscall(libc::SYS_gettid) as u32 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    /// The kernel and hypervisor ABI this build was compiled with, printed
    /// as tests/arch/layout.c prints what the C compiler sees in Xen's and
    /// Linux's headers: tests/arch/suites.sh compares the two line for line.
    #[test]
    fn c_view_of_the_kernel_abi() {
        let mut lines = vec![
            format!("sizeof void * = {}", size_of::<*const u8>()),
            format!("sizeof unsigned long = {}", size_of::<libc::c_ulong>()),
            format!("sizeof size_t = {}", size_of::<usize>()),
            format!("sizeof xen_pfn_t = {}", size_of::<arch::XenPfn>()),
            format!("sizeof privcmd_dm_op_buf_t = {}", size_of::<Buf>()),
            format!("offsetof privcmd_dm_op_buf_t.uptr = {}", offset_of!(Buf, uptr)),
            format!("offsetof privcmd_dm_op_buf_t.size = {}", offset_of!(Buf, size)),
            format!("sizeof privcmd_dm_op_t = {}", size_of::<PrivcmdDmOp>()),
            // dom and num are the head word's first two halves (little-endian).
            format!("offsetof privcmd_dm_op_t.dom = {}", offset_of!(PrivcmdDmOp, head)),
            format!("offsetof privcmd_dm_op_t.num = {}", offset_of!(PrivcmdDmOp, head) + 2),
            format!("offsetof privcmd_dm_op_t.ubufs = {}", offset_of!(PrivcmdDmOp, ubufs)),
            format!("IOCTL_PRIVCMD_DM_OP = {:#x}", IOCTL_PRIVCMD_DM_OP),
            format!("IOCTL_PRIVCMD_RESTRICT = {:#x}", IOCTL_PRIVCMD_RESTRICT),
            format!("sizeof struct xen_dm_op_buf = {}", size_of::<XenDmOpBuf>()),
            format!("offsetof struct xen_dm_op_buf.h = {}", offset_of!(XenDmOpBuf, h)),
            format!("offsetof struct xen_dm_op_buf.size = {}", offset_of!(XenDmOpBuf, size)),
            format!("sizeof struct xen_dm_op = {}", size_of::<DmOp>()),
            format!("sizeof struct xen_dm_op_modified_memory_extent = {}", size_of::<Extent>()),
            format!("offsetof struct xen_dm_op_modified_memory_extent.first_pfn = {}", offset_of!(Extent, first_pfn)),
        ];
        for (name, size) in crate::abi::C_SIZES {
            lines.push(format!("sizeof struct xen_dm_op_{name} = {size}"));
        }
        lines.sort();
        lines.dedup();
        for l in &lines {
            println!("{l}");
        }
        assert!(lines.len() > 30);
    }
}
