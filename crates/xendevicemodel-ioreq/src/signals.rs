//! SIGINT, SIGTERM and SIGHUP for sessions that ask to stop on them
//! ([`Config::stop_on_signals`](crate::Config)): process-wide handlers,
//! installed at the first such session, that record the signal and wake
//! every session's wait through an eventfd that stays readable.
//!
//! vmm-sys-util registers the handlers (with `SA_SIGINFO` and without
//! `SA_RESTART`: a system call interrupted by one of these signals fails
//! with `EINTR`, which the session's wait treats as a wake-up).

use core::sync::atomic::{AtomicI32, Ordering::SeqCst};
use std::sync::OnceLock;
use vmm_sys_util::eventfd::{EventFd, EFD_CLOEXEC, EFD_NONBLOCK};
use xendevicemodel::Errno;

/// The last of the signals received (0: none).
static SIGNALLED: AtomicI32 = AtomicI32::new(0);
/// Written by the handler, never read: readable once a signal came.
static WAKE: OnceLock<EventFd> = OnceLock::new();

/// Async-signal-safe: an atomic store and write(2).
extern "C" fn on_signal(sig: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    SIGNALLED.store(sig, SeqCst);
    if let Some(e) = WAKE.get() {
        let _ = e.write(1);
    }
}

fn errno(e: std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

/// Installs the handlers (once per process); returns what becomes readable
/// when one of the signals arrives.
pub(crate) fn install() -> Result<&'static EventFd, Errno> {
    if WAKE.get().is_none() {
        let fd = EventFd::new(EFD_CLOEXEC | EFD_NONBLOCK).map_err(errno)?;
        // Another thread may have won the race: then its eventfd is used.
        let _ = WAKE.set(fd);
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            vmm_sys_util::signal::register_signal_handler(sig, on_signal).map_err(|e| Errno::from_raw(e.errno()))?;
        }
    }
    Ok(WAKE.get().expect("set above"))
}

/// The signal received, if any.
pub(crate) fn signalled() -> Option<i32> {
    match SIGNALLED.load(SeqCst) {
        0 => None,
        s => Some(s),
    }
}
