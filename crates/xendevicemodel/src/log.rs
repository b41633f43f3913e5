//! Where a handle reports what goes wrong.
//!
//! A [`Logger`] is stderr (the default), silence, a Rust [`Log`]
//! implementation, or (for the C API) a libxentoollog logger. Messages are
//! formatted into a fixed buffer: logging never allocates, and never changes
//! `errno`.

use crate::error::Errno;
use crate::os;
use core::fmt::{self, Write};
use std::sync::Arc;

/// How serious a message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// A failed operation the caller handles itself (hidden by Xen's default loggers).
    Debug,
    /// Something is not as asked, and the library carries on without it.
    Warn,
    /// Something went wrong.
    Error,
}

/// A destination for a handle's messages.
pub trait Log: Send + Sync {
    /// Receives one message (one line, without a newline), with the errno
    /// it is about, if any.
    fn log(&self, level: Level, errno: Option<Errno>, message: &str);
}

#[derive(Clone)]
enum Sink {
    Stderr,
    Silent,
    Custom(Arc<dyn Log>),
    /// A libxentoollog logger; `true` if it writes to stderr, whose stdio
    /// lock is then held around each message so lines stay whole.
    #[cfg(feature = "capi")]
    Xtl(os::XtlLogger, bool),
}

/// Where one handle's messages go.
#[derive(Clone)]
pub struct Logger(Sink);

impl Default for Logger {
    fn default() -> Self {
        Logger::stderr()
    }
}

impl fmt::Debug for Logger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.0 {
            Sink::Stderr => "Logger::stderr",
            Sink::Silent => "Logger::silent",
            Sink::Custom(_) => "Logger::custom",
            #[cfg(feature = "capi")]
            Sink::Xtl(..) => "Logger::xtl",
        })
    }
}

impl Logger {
    /// Errors to stderr, one line each (`xendevicemodel: error: ...`);
    /// debug messages are dropped.
    pub fn stderr() -> Self {
        Logger(Sink::Stderr)
    }

    /// Nothing is reported.
    pub fn silent() -> Self {
        Logger(Sink::Silent)
    }

    /// Every message goes to `log`.
    pub fn custom(log: Arc<dyn Log>) -> Self {
        Logger(Sink::Custom(log))
    }

    /// A libxentoollog logger (the C API's loggers).
    #[cfg(feature = "capi")]
    pub fn xtl(logger: os::XtlLogger) -> Self {
        Logger(Sink::Xtl(logger, false))
    }

    /// A libxentoollog logger that writes to stderr (made by
    /// [`XtlLogger::new_stderr`](crate::capi::XtlLogger::new_stderr)): each
    /// message holds stderr's stdio lock, so that libxentoollog's pieces of
    /// one line are not interleaved with another thread's.
    #[cfg(feature = "capi")]
    pub fn xtl_stderr(logger: os::XtlLogger) -> Self {
        Logger(Sink::Xtl(logger, true))
    }

    /// The libxentoollog logger, if this is one (libxencall logs through it).
    pub(crate) fn as_xtl(&self) -> Option<&os::XtlLogger> {
        match &self.0 {
            #[cfg(feature = "capi")]
            Sink::Xtl(l, _) => Some(l),
            _ => None,
        }
    }

    /// Logs an error about `err`.
    pub fn error(&self, err: Errno, args: fmt::Arguments<'_>) {
        self.emit(Level::Error, Some(err), args)
    }

    /// Logs a warning about `err`.
    pub fn warn(&self, err: Errno, args: fmt::Arguments<'_>) {
        self.emit(Level::Warn, Some(err), args)
    }

    /// Logs a debug message.
    pub fn debug(&self, args: fmt::Arguments<'_>) {
        self.emit(Level::Debug, None, args)
    }

    fn emit(&self, level: Level, err: Option<Errno>, args: fmt::Arguments<'_>) {
        if matches!(self.0, Sink::Silent) || (level == Level::Debug && matches!(self.0, Sink::Stderr)) {
            return;
        }
        let saved = os::last_errno();
        let mut line = Line::new();
        match &self.0 {
            Sink::Stderr => {
                let what = if level == Level::Warn { "warning" } else { "error" };
                let _ = write!(line, "xendevicemodel: {what}: {args}");
                if let Some(e) = err {
                    let _ = write!(line, ": {e}");
                }
                os::write_stderr(line.with_newline());
            }
            Sink::Silent => {}
            Sink::Custom(log) => {
                let _ = line.write_fmt(args);
                log.log(level, err, line.as_str());
            }
            #[cfg(feature = "capi")]
            Sink::Xtl(l, stderr) => {
                let _ = line.write_fmt(args);
                let lvl = match level {
                    Level::Debug => os::xtl_level::DEBUG,
                    Level::Warn => os::xtl_level::WARN,
                    Level::Error => os::xtl_level::ERROR,
                };
                let msg = line.as_cstr();
                let log = || l.log(lvl, err.map_or(-1, Errno::raw), msg);
                if *stderr {
                    os::with_stderr_locked(log);
                } else {
                    log();
                }
            }
        }
        os::set_errno(saved);
    }
}

/// A fixed buffer for one message: logging allocates nothing. Longer
/// messages are cut at 255 bytes (at a character boundary).
struct Line {
    buf: [u8; 257],
    len: usize,
}

impl Line {
    const MAX: usize = 255;

    fn new() -> Self {
        Line { buf: [0; 257], len: 0 }
    }

    fn as_str(&self) -> &str {
        // Only whole characters are ever copied in.
        core::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }

    #[cfg(feature = "capi")]
    fn as_cstr(&mut self) -> &core::ffi::CStr {
        self.buf[self.len] = 0;
        core::ffi::CStr::from_bytes_until_nul(&self.buf[..=self.len]).unwrap_or(c"")
    }

    fn with_newline(&mut self) -> &[u8] {
        self.buf[self.len] = b'\n';
        &self.buf[..=self.len]
    }
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut take = s.len().min(Self::MAX - self.len);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        // NUL bytes would cut a C string short; Xen's messages never have any.
        for (d, &c) in self.buf[self.len..self.len + take].iter_mut().zip(s.as_bytes()) {
            *d = if c == 0 { b' ' } else { c };
        }
        self.len += take;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Capture(Mutex<Vec<(Level, Option<Errno>, String)>>);
    impl Log for Capture {
        fn log(&self, level: Level, errno: Option<Errno>, message: &str) {
            self.0.lock().unwrap().push((level, errno, message.to_owned()));
        }
    }

    #[test]
    fn custom_loggers_get_whole_messages_and_errno_is_kept() {
        let cap = Arc::new(Capture(Mutex::new(Vec::new())));
        let l = Logger::custom(cap.clone());
        os::set_errno(Errno::ESRCH);
        l.error(Errno::EPERM, format_args!("restrict to {}", 5));
        l.debug(format_args!("{}", "é".repeat(200)));
        assert_eq!(os::last_errno(), Errno::ESRCH, "logging changed errno");
        let got = cap.0.lock().unwrap();
        assert_eq!(got[0], (Level::Error, Some(Errno::EPERM), "restrict to 5".to_owned()));
        assert_eq!(got[1].2.len(), 254, "cut at a character boundary below 255 bytes");
        assert!(got[1].2.chars().all(|c| c == 'é'));
    }
}
