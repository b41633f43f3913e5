//! All access to the operating system and to Xen's companion libraries.
//!
//! Everything goes through libc's `open`/`ioctl`/`close` symbols (so
//! `LD_PRELOAD` test doubles and tracing tools see every request), and through
//! libxencall, libxentoollog and libxentoolcore exactly where Xen's own library
//! uses them. No other module declares foreign functions.
#![allow(non_camel_case_types)]

use crate::xen::{self, domid_t, PrivcmdDmOp, PrivcmdDmOpBuf, XenDmOpBuf};
use libc::{c_char, c_int, c_uint, c_void};
use nix::errno::Errno;

/// Opaque `struct xentoollog_logger` (libxentoollog).
#[repr(C)]
pub struct xentoollog_logger {
    _opaque: [u8; 0],
}

/// Opaque `xencall_handle` (libxencall).
#[repr(C)]
pub struct xencall_handle {
    _opaque: [u8; 0],
}

/// `Xentoolcore__Active_Handle` from Xen's `xentoolcore_internal.h` (not
/// installed by Debian): the restrict callback, then the two `XEN_LIST_ENTRY`
/// link pointers that libxentoolcore owns.
#[repr(C)]
pub struct ActiveHandle {
    /// Called by `xentoolcore_restrict_all(domid)`; non-zero aborts it.
    pub restrict_callback: unsafe extern "C" fn(*mut ActiveHandle, domid_t) -> c_int,
    /// List link, owned by libxentoolcore.
    pub le_next: *mut ActiveHandle,
    /// List link, owned by libxentoolcore.
    pub le_prev: *mut *mut ActiveHandle,
}

/// `xentoollog_level` values used here.
pub mod level {
    /// `XTL_DEBUG`: hidden by Xen's default loggers.
    pub const DEBUG: libc::c_int = 1;
    /// `XTL_PROGRESS`: the threshold of the stderr logger for NULL loggers.
    pub const PROGRESS: libc::c_int = 4;
    /// `XTL_ERROR`.
    pub const ERROR: libc::c_int = 8;
}

#[link(name = "xentoollog")]
extern "C" {
    fn xtl_log(
        logger: *mut xentoollog_logger,
        level: c_int,
        errnoval: c_int,
        context: *const c_char,
        format: *const c_char,
        ...
    );
    fn xtl_createlogger_stdiostream(f: *mut libc::FILE, min_level: c_int, flags: c_uint) -> *mut xentoollog_logger;
}

#[link(name = "xentoolcore")]
extern "C" {
    fn xentoolcore__register_active_handle(ah: *mut ActiveHandle);
    fn xentoolcore__deregister_active_handle(ah: *mut ActiveHandle);
    fn xentoolcore__restrict_by_dup2_null(fd: c_int) -> c_int;
}

#[link(name = "xencall")]
extern "C" {
    fn xencall_open(logger: *mut xentoollog_logger, flags: c_uint) -> *mut xencall_handle;
    fn xencall_close(xcall: *mut xencall_handle) -> c_int;
    fn xencall3(xcall: *mut xencall_handle, op: c_uint, a1: u64, a2: u64, a3: u64) -> c_int;
    fn xencall_alloc_buffer(xcall: *mut xencall_handle, size: usize) -> *mut c_void;
    fn xencall_free_buffer(xcall: *mut xencall_handle, p: *mut c_void);
}

extern "C" {
    static mut stderr: *mut libc::FILE;
    fn flockfile(f: *mut libc::FILE);
    fn funlockfile(f: *mut libc::FILE);
}

/// A stderr logger at `XTL_PROGRESS`, as Xen's library creates for a NULL logger.
///
/// Created with libxentoollog itself so that messages look exactly like Xen's.
pub fn new_stderr_logger() -> *mut xentoollog_logger {
    // SAFETY: reading glibc's `stderr` pointer; the logger does not take ownership.
    unsafe { xtl_createlogger_stdiostream(stderr, level::PROGRESS, 0) }
}

/// Logs one preformatted line through `logger` under the context
/// "xendevicemodel"; `errnoval` is appended as Xen's loggers do (-1 for none).
///
/// # Safety
/// `logger` must be NULL or a live xentoollog logger.
pub unsafe fn log(logger: *mut xentoollog_logger, lvl: c_int, errnoval: c_int, msg: &core::ffi::CStr) {
    if logger.is_null() {
        return;
    }
    // SAFETY: a valid logger (the caller's or ours) and NUL-terminated strings;
    // the message is passed as an argument, never as the format.
    unsafe { xtl_log(logger, lvl, errnoval, c"xendevicemodel".as_ptr(), c"%s".as_ptr(), msg.as_ptr()) }
}

/// Runs `f` holding stdio's lock on stderr, so that a message that
/// libxentoollog writes in several pieces is not interleaved with another
/// thread's.
pub fn with_stderr_locked<R>(f: impl FnOnce() -> R) -> R {
    // SAFETY: glibc's `stderr` is always a valid FILE; flockfile is recursive,
    // so the logger's own stdio calls inside `f` proceed.
    unsafe { flockfile(stderr) };
    let r = f();
    // SAFETY: locked just above by this thread.
    unsafe { funlockfile(stderr) };
    r
}

/// Registers `ah` with libxentoolcore so `xentoolcore_restrict_all` reaches it.
///
/// # Safety
/// `ah` must stay at the same address until [`deregister`] is called.
pub unsafe fn register(ah: *mut ActiveHandle) {
    xentoolcore__register_active_handle(ah)
}

/// Removes `ah` from libxentoolcore's list.
///
/// # Safety
/// `ah` must have been passed to [`register`].
pub unsafe fn deregister(ah: *mut ActiveHandle) {
    xentoolcore__deregister_active_handle(ah)
}

/// Replaces `fd` with /dev/null in this process only (libxentoolcore's helper).
pub fn neuter_fd(fd: c_int) -> Result<(), Errno> {
    // SAFETY: plain syscall wrapper; only this process's descriptor table changes.
    match unsafe { xentoolcore__restrict_by_dup2_null(fd) } {
        0 => Ok(()),
        _ => Err(Errno::last()),
    }
}

fn check(rc: c_int) -> Result<c_int, Errno> {
    if rc < 0 {
        Err(Errno::last())
    } else {
        Ok(rc)
    }
}

/// Opens `/dev/xen/privcmd` read-write and close-on-exec, as Xen's library does.
pub fn open_privcmd() -> Result<c_int, Errno> {
    // SAFETY: constant NUL-terminated path.
    check(unsafe { libc::open(c"/dev/xen/privcmd".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) })
}

/// Closes a descriptor, returning close(2)'s result.
pub fn close(fd: c_int) -> Result<(), Errno> {
    // SAFETY: the caller owns `fd`.
    check(unsafe { libc::close(fd) }).map(drop)
}

/// Issues `IOCTL_PRIVCMD_DM_OP` with the buffer descriptors given.
///
/// The descriptors live on the caller's stack: no allocation per request.
#[inline]
pub fn dm_op(fd: c_int, domid: domid_t, bufs: &[PrivcmdDmOpBuf]) -> Result<(), Errno> {
    let uop = PrivcmdDmOp::new(domid, bufs.len() as u16, bufs.as_ptr());
    // SAFETY: `uop` and the buffers it points to are valid for the call; the
    // kernel writes out-values only into those buffers.
    check(unsafe { libc::ioctl(fd, xen::IOCTL_PRIVCMD_DM_OP, &uop as *const PrivcmdDmOp) }).map(drop)
}

/// Issues `IOCTL_PRIVCMD_RESTRICT`: from now on this open file only serves `domid`.
pub fn restrict(fd: c_int, domid: domid_t) -> Result<(), Errno> {
    // SAFETY: the kernel reads one domid_t from the pointer.
    check(unsafe { libc::ioctl(fd, xen::IOCTL_PRIVCMD_RESTRICT, &domid as *const domid_t) }).map(drop)
}

/// Largest buffer the libxencall path copies. Xen's own largest dm_op buffer
/// is track_dirty_vram's bitmap for 1 GiB of guest memory (32 KiB); anything
/// larger is refused with `E2BIG`, as privcmd refuses buffers over its limit,
/// instead of allocating and copying whatever size the caller computed.
pub const XENCALL_BUF_MAX: usize = 64 * 1024;

/// A libxencall handle, used only on kernels without `IOCTL_PRIVCMD_DM_OP`.
pub struct Xencall(*mut xencall_handle);

// SAFETY: libxencall handles may be used from any thread (its buffer cache is locked).
unsafe impl Send for Xencall {}
unsafe impl Sync for Xencall {}

impl Xencall {
    /// Opens libxencall, which logs its own failures through `logger`.
    ///
    /// # Safety
    /// `logger` must be NULL or a live xentoollog logger.
    pub unsafe fn open(logger: *mut xentoollog_logger) -> Result<Self, Errno> {
        let h = xencall_open(logger, 0);
        if h.is_null() {
            Err(Errno::last())
        } else {
            Ok(Xencall(h))
        }
    }

    /// The dm_op hypercall through hypercall-safe buffers: copies the request
    /// in, and on success copies every buffer back (Xen's out-values).
    ///
    /// A NULL buffer with a size is `EFAULT`, as privcmd would answer, rather
    /// than a copy from NULL (where Xen's library crashes); a buffer over
    /// [`XENCALL_BUF_MAX`] is `E2BIG`.
    pub fn dm_op(&self, domid: domid_t, bufs: &[PrivcmdDmOpBuf]) -> Result<(), Errno> {
        if bufs.iter().any(|b| b.uptr.is_null() && b.size > 0) {
            Errno::EFAULT.set();
            return Err(Errno::EFAULT);
        }
        if bufs.iter().any(|b| b.size > XENCALL_BUF_MAX) {
            Errno::E2BIG.set();
            return Err(Errno::E2BIG);
        }
        let descs = bufs.len() * core::mem::size_of::<XenDmOpBuf>();
        let total = descs + bufs.iter().map(|b| b.size).sum::<usize>();
        // SAFETY: one xencall buffer holds the descriptor array followed by a
        // copy of every buffer; all pointers stay inside it.
        unsafe {
            let mem = xencall_alloc_buffer(self.0, total).cast::<u8>();
            if mem.is_null() {
                return Err(Errno::last());
            }
            let desc = mem.cast::<XenDmOpBuf>();
            let mut data = mem.add(descs);
            for (i, b) in bufs.iter().enumerate() {
                if b.size > 0 {
                    core::ptr::copy_nonoverlapping(b.uptr.cast::<u8>(), data, b.size);
                }
                desc.add(i).write(XenDmOpBuf::new(data.cast(), b.size as u64));
                data = data.add(b.size);
            }
            let rc = xencall3(self.0, xen::HYPERVISOR_DM_OP, domid as u64, bufs.len() as u64, desc as u64);
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
            let saved = Errno::last();
            xencall_free_buffer(self.0, mem.cast());
            Errno::set(saved);
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

/// Registers fork handlers with `pthread_atfork`.
pub fn atfork(prepare: extern "C" fn(), parent: extern "C" fn(), child: extern "C" fn()) -> Result<(), Errno> {
    // SAFETY: the handlers are plain functions that live for the whole process.
    match unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) } {
        0 => Ok(()),
        e => Err(Errno::from_raw(e)),
    }
}

/// `MEMBARRIER_CMD_PRIVATE_EXPEDITED` (linux/membarrier.h).
const MEMBARRIER_CMD_PRIVATE_EXPEDITED: c_int = 1 << 3;
/// `MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED`.
const MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED: c_int = 1 << 4;

/// Declares that this process will use [`membarrier`] (Linux 4.14 and later).
/// Fails with `EINVAL` on older kernels, `ENOSYS` or `EPERM` under a seccomp
/// policy that forbids it.
pub fn membarrier_register() -> Result<(), Errno> {
    // SAFETY: a plain system call without pointer arguments.
    check(unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) } as c_int)
        .map(drop)
}

/// Makes every running thread of this process execute a full memory barrier
/// before returning (`EPERM` until [`membarrier_register`] succeeded in this
/// process, e.g. in a child after `fork()`).
pub fn membarrier() -> Result<(), Errno> {
    // SAFETY: a plain system call without pointer arguments.
    check(unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) } as c_int).map(drop)
}

/// Creates a pthread key whose `destructor` runs at thread exit with the
/// thread's (non-NULL) value.
pub fn thread_key(destructor: unsafe extern "C" fn(*mut c_void)) -> Result<libc::pthread_key_t, Errno> {
    let mut key: libc::pthread_key_t = 0;
    // SAFETY: `key` is a valid out-pointer; the destructor lives for the process.
    match unsafe { libc::pthread_key_create(&mut key, Some(destructor)) } {
        0 => Ok(key),
        e => Err(Errno::from_raw(e)),
    }
}

/// Sets this thread's value of `key`.
///
/// # Safety
/// `value` must stay valid for the key's destructor, which receives it.
pub unsafe fn set_thread_value(key: libc::pthread_key_t, value: *const c_void) -> Result<(), Errno> {
    match libc::pthread_setspecific(key, value) {
        0 => Ok(()),
        e => Err(Errno::from_raw(e)),
    }
}
