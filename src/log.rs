//! Logging through libxentoollog, as Xen's library does.
//!
//! A caller's logger is used as given. A NULL logger means "stderr at
//! `XTL_PROGRESS`", like Xen; we create that logger once per process, on the
//! first message, instead of once per handle: it is only needed on error paths.

use crate::sys::{self, level, xentoollog_logger};
use core::fmt::{self, Write};
use nix::errno::Errno;
use std::sync::OnceLock;

/// The logger of one handle: the caller's, or the shared stderr logger.
#[derive(Clone, Copy, Debug)]
pub struct Logger(*mut xentoollog_logger);

// SAFETY: xentoollog loggers are used from any thread in Xen's libraries too;
// we never mutate through the pointer ourselves.
unsafe impl Send for Logger {}
unsafe impl Sync for Logger {}

struct SharedLogger(*mut xentoollog_logger);
// SAFETY: created once, never freed, used only through libxentoollog.
unsafe impl Send for SharedLogger {}
unsafe impl Sync for SharedLogger {}
static STDERR_LOGGER: OnceLock<SharedLogger> = OnceLock::new();

impl Logger {
    /// Wraps a caller's logger; NULL selects the stderr logger.
    pub fn new(raw: *mut xentoollog_logger) -> Self {
        Logger(raw)
    }

    /// The stderr logger used for NULL loggers and for invalid handles.
    pub fn stderr() -> Self {
        Logger(core::ptr::null_mut())
    }

    /// The pointer to hand to other Xen libraries (libxencall).
    pub fn raw(&self) -> *mut xentoollog_logger {
        if self.0.is_null() {
            STDERR_LOGGER.get_or_init(|| SharedLogger(sys::new_stderr_logger())).0
        } else {
            self.0
        }
    }

    /// Logs at `XTL_ERROR` with `err` appended, leaving errno as it was.
    pub fn error(&self, err: Errno, args: fmt::Arguments<'_>) {
        self.emit(level::ERROR, err as i32, args)
    }

    /// Logs at `XTL_DEBUG` (hidden by default loggers), leaving errno as it was.
    pub fn debug(&self, args: fmt::Arguments<'_>) {
        // A NULL logger filters debug messages anyway: skip creating it.
        if !self.0.is_null() {
            self.emit(level::DEBUG, -1, args)
        }
    }

    fn emit(&self, lvl: libc::c_int, errnoval: libc::c_int, args: fmt::Arguments<'_>) {
        let saved = Errno::last_raw();
        let mut line = Line { buf: [0; 256], len: 0 };
        let _ = line.write_fmt(args);
        let end = line.len.min(line.buf.len() - 1);
        line.buf[end] = 0;
        if let Ok(msg) = core::ffi::CStr::from_bytes_until_nul(&line.buf[..=end]) {
            // SAFETY: `raw` is the caller's live logger or our stderr logger.
            let log = || unsafe { sys::log(self.raw(), lvl, errnoval, msg) };
            if self.0.is_null() {
                sys::with_stderr_locked(log); // our logger: whole lines
            } else {
                log();
            }
        }
        Errno::set_raw(saved);
    }
}

/// A fixed buffer for one message: logging allocates nothing.
struct Line {
    buf: [u8; 256],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = self.buf.len() - 1 - self.len.min(self.buf.len() - 1);
        let take = s.len().min(room);
        // NUL bytes would cut the message short; Xen's messages never have any.
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}
