//! What only the C library needs from the system and from Xen's other C
//! libraries, as safe functions: libxentoollog loggers, libxentoolcore's
//! registration and its dup2-to-/dev/null helper, `pthread_atfork`,
//! `membarrier(2)`, pthread keys, `gettid()` and `RLIMIT_FSIZE`. Device-model
//! requests themselves go through the safe `xendevicemodel` crate; this is
//! the rest of the C library's contact with the system (besides the C
//! boundary, ffi.rs and boundary.rs, which take the caller's pointers).
#![allow(non_camel_case_types)]

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicPtr, Ordering::*};
use libc::{c_int, c_uint, c_void};
use xendevicemodel::{DomId, Errno, Level, Logger};

// ---------------------------------------------------------------- libxentoollog

/// Opaque `struct xentoollog_logger` (libxentoollog).
#[repr(C)]
pub struct xentoollog_logger {
    _opaque: [u8; 0],
}

/// A libxentoollog logger (`struct xentoollog_logger *`), never NULL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XtlLogger(*mut xentoollog_logger);

// SAFETY: xentoollog loggers are used from any thread in Xen's libraries too;
// this crate never writes through the pointer itself.
unsafe impl Send for XtlLogger {}
unsafe impl Sync for XtlLogger {}

/// `xentoollog_level` values used here.
mod xtl_level {
    /// `XTL_DEBUG`: hidden by Xen's default loggers.
    pub const DEBUG: libc::c_int = 1;
    /// `XTL_PROGRESS`: the threshold of the stderr logger for NULL loggers.
    pub const PROGRESS: libc::c_int = 4;
    /// `XTL_WARN`.
    pub const WARN: libc::c_int = 7;
    /// `XTL_ERROR`.
    pub const ERROR: libc::c_int = 8;
}

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

extern "C" {
    static mut stderr: *mut libc::FILE;
    fn flockfile(f: *mut libc::FILE);
    fn funlockfile(f: *mut libc::FILE);
}

/// A process-wide slot for one logger that is never freed (the shared
/// stderr logger): read and set without waiting, so that a signal handler
/// can use it while the thread it interrupted is setting it.
#[derive(Default)]
pub struct LoggerSlot(AtomicPtr<xentoollog_logger>);

impl LoggerSlot {
    /// An empty slot.
    pub const fn new() -> Self {
        LoggerSlot(AtomicPtr::new(core::ptr::null_mut()))
    }

    /// The logger in the slot, if one was set.
    pub fn get(&self) -> Option<XtlLogger> {
        // SAFETY: only set_once stores here, and only loggers that are never freed.
        unsafe { XtlLogger::from_raw(self.0.load(Acquire)) }
    }

    /// Puts `made` (a logger never freed, such as [`XtlLogger::new_stderr`]'s)
    /// in the slot unless another was there first, and returns the one the
    /// slot holds; a loser is leaked (a few bytes, once).
    pub fn set_once(&self, made: XtlLogger) -> XtlLogger {
        match self.0.compare_exchange(core::ptr::null_mut(), made.as_raw(), AcqRel, Acquire) {
            Ok(_) => made,
            // SAFETY: as in get: the winner is never freed either.
            Err(won) => unsafe { XtlLogger::from_raw(won) }.unwrap_or(made),
        }
    }
}

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

    /// A handle's [`Logger`] that sends every message here. With
    /// `on_stderr` (a logger made by [`new_stderr`](Self::new_stderr)),
    /// each message holds stderr's stdio lock, so that libxentoollog's
    /// pieces of one line are not interleaved with another thread's.
    /// Allocates nothing.
    pub fn logger(self, on_stderr: bool) -> Logger {
        let f = if on_stderr { log_locked } else { log_plain };
        Logger::from_fn(self.0 as usize, f)
    }

    /// Logs one message under the context "xendevicemodel"; `errno` is
    /// appended as Xen's loggers do.
    fn log(self, level: Level, errno: Option<Errno>, msg: &str) {
        let lvl = match level {
            Level::Debug => xtl_level::DEBUG,
            Level::Warn => xtl_level::WARN,
            Level::Error => xtl_level::ERROR,
        };
        // A C string of the message: the safe crate's loggers cut messages
        // at 255 bytes and never pass NUL bytes.
        let mut buf = [0u8; 257];
        let n = msg.len().min(buf.len() - 1);
        buf[..n].copy_from_slice(&msg.as_bytes()[..n]);
        let msg = core::ffi::CStr::from_bytes_until_nul(&buf).unwrap_or(c"");
        // SAFETY: a live logger (invariant) and NUL-terminated strings; the
        // message is passed as an argument, never as the format.
        unsafe {
            xtl_log(self.0, lvl, errno.map_or(-1, Errno::raw), c"xendevicemodel".as_ptr(), c"%s".as_ptr(), msg.as_ptr())
        }
    }
}

/// The [`Logger::from_fn`] function of [`XtlLogger::logger`].
fn log_plain(ctx: usize, level: Level, errno: Option<Errno>, msg: &str) {
    XtlLogger(ctx as *mut xentoollog_logger).log(level, errno, msg)
}

/// [`log_plain`] holding stderr's stdio lock.
fn log_locked(ctx: usize, level: Level, errno: Option<Errno>, msg: &str) {
    // SAFETY: glibc's `stderr` is always a valid FILE; flockfile is recursive,
    // so the logger's own stdio calls inside proceed.
    unsafe { flockfile(stderr) };
    log_plain(ctx, level, errno, msg);
    // SAFETY: locked just above by this thread.
    unsafe { funlockfile(stderr) };
}

// ---------------------------------------------------------------- libxentoolcore

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
            nix::errno::Errno::set_raw(e.raw());
            -1
        }
    }
}

/// Registers `f` with libxentoolcore, once per process, so that
/// `xentoolcore_restrict_all(domid)` calls it. Later calls are ignored.
pub fn register_restrict_all(f: fn(DomId) -> Result<(), Errno>) {
    if RESTRICT_ALL.compare_exchange(core::ptr::null_mut(), f as *mut (), AcqRel, Acquire).is_ok() {
        // SAFETY: a static registration that is never deregistered (the
        // library stays loaded, see process.rs).
        unsafe { xentoolcore__register_active_handle(REGISTRATION.0.get()) };
    }
}

/// Replaces this process's descriptor `fd` with /dev/null, leaving the open
/// file (shared with a parent process) alone: libxentoolcore's helper.
pub fn restrict_by_dup2_null(fd: std::os::fd::BorrowedFd<'_>) -> Result<(), Errno> {
    use std::os::fd::AsRawFd;
    // SAFETY: only this process's descriptor table changes; `fd` stays a
    // valid descriptor (now of /dev/null) for its owner to close.
    match unsafe { xentoolcore__restrict_by_dup2_null(fd.as_raw_fd()) } {
        0 => Ok(()),
        _ => Err(Errno::from_raw(nix::errno::Errno::last_raw())),
    }
}

// ---------------------------------------------------------------- process primitives

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

fn check(rc: c_int) -> Result<(), Errno> {
    if rc < 0 {
        Err(Errno::from_raw(nix::errno::Errno::last_raw()))
    } else {
        Ok(())
    }
}

/// Declares that this process will use [`membarrier`] (Linux 4.14 and
/// later). Fails with `EINVAL` on older kernels, `ENOSYS` or `EPERM`
/// under a seccomp policy that forbids it.
pub fn membarrier_register() -> Result<(), Errno> {
    // SAFETY: a plain system call without pointer arguments.
    check(unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) } as c_int)
}

/// Makes every running thread of this process execute a full memory
/// barrier before returning (`EPERM` until [`membarrier_register`]
/// succeeded in this process, e.g. in a child after `fork()`).
pub fn membarrier() -> Result<(), Errno> {
    // SAFETY: a plain system call without pointer arguments.
    check(unsafe { libc::syscall(libc::SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0) } as c_int)
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
