//! Where a handle reports what goes wrong.
//!
//! A [`Logger`] is stderr (the default), silence, a Rust [`Log`]
//! implementation, or a function with a word of context (which needs no
//! allocation: what a foreign logging library's handle fits in). Messages are
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
    Fn(usize, LogFn),
}

/// A logging function for [`Logger::from_fn`]: the context word it was
/// given, then what [`Log::log`] receives.
pub type LogFn = fn(usize, Level, Option<Errno>, &str);

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
            Sink::Fn(..) => "Logger::from_fn",
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

    /// Every message goes to `f(context, ...)`. Unlike [`custom`](Self::custom),
    /// this allocates nothing: a logger for a handle opened while memory is
    /// short, or one a word identifies (an index, a foreign library's
    /// logger handle).
    pub fn from_fn(context: usize, f: LogFn) -> Self {
        Logger(Sink::Fn(context, f))
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
            Sink::Fn(context, f) => {
                let _ = line.write_fmt(args);
                f(*context, level, err, line.as_str());
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
        // NUL bytes would cut a message short where it becomes a C string
        // (a from_fn logger may pass it to C); Xen's messages never have any.
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
    fn function_loggers_get_their_word_and_every_message() {
        static GOT: Mutex<Vec<(usize, Level, Option<Errno>, String)>> = Mutex::new(Vec::new());
        fn f(ctx: usize, level: Level, errno: Option<Errno>, msg: &str) {
            GOT.lock().unwrap().push((ctx, level, errno, msg.to_owned()));
        }
        let l = Logger::from_fn(0x5845, f);
        os::set_errno(Errno::ESRCH);
        l.warn(Errno::EPERM, format_args!("a\0b"));
        l.debug(format_args!("quiet"));
        assert_eq!(os::last_errno(), Errno::ESRCH, "logging changed errno");
        let got = GOT.lock().unwrap();
        assert_eq!(got[0], (0x5845, Level::Warn, Some(Errno::EPERM), "a b".to_owned()), "NUL bytes become spaces");
        assert_eq!(got[1], (0x5845, Level::Debug, None, "quiet".to_owned()), "debug messages reach functions too");
        assert_eq!(format!("{l:?}"), "Logger::from_fn");
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
