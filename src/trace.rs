//! The call trace: with `XENDEVICEMODEL_TRACE=<file>` (or `stderr`) in the
//! environment of the first open, every call of every handle is written as
//! one line (format: docs/trace.md):
//!
//! ```text
//! 1764618000.123456 4711 4712 set_isa_irq_level dom=5 irq=4 level=1 handle=0xd500000000000000 rc=0 errno=0 ns=812
//! ```
//!
//! Fields are separated by single spaces: wall-clock time (seconds and
//! microseconds), pid, thread id, the function (the export's name without
//! `xendevicemodel_`), then `name=value` pairs: `dom`, the other arguments,
//! out-values after a successful call, the handle, `rc`, `errno` (0 or a
//! symbolic name) and the call's duration in nanoseconds. Each line is
//! written with one write(2) on a file opened append-only and close-on-exec,
//! so lines from threads and forked children (which keep tracing into the
//! same file, under their own pid) stay whole.
//!
//! A value that cannot be opened (a directory, an unwritable path) gives one
//! warning through the opening handle's logger; the library then works
//! untraced. When the variable is unset, a call pays one load and one branch.

use crate::sys;
use core::fmt::Write as _;
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering::*};
use std::io::Write as _;
use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};
use xendevicemodel::{Errno, Logger};

/// The environment variable that turns tracing on.
pub const VAR: &str = "XENDEVICEMODEL_TRACE";

static ON: AtomicBool = AtomicBool::new(false);
/// 0: not looked at yet, 1: being set up, 2: decided.
static STATE: AtomicU8 = AtomicU8::new(0);

enum Sink {
    Stderr,
    File(std::fs::File),
}
static SINK: OnceLock<Sink> = OnceLock::new();

/// Reads `XENDEVICEMODEL_TRACE`, once per process, at the first open;
/// `logger` is that open's, for the warning about a bad value.
pub fn init(logger: &Logger) {
    if !cfg!(feature = "trace") || STATE.load(Acquire) != 0 || STATE.compare_exchange(0, 1, AcqRel, Acquire).is_err() {
        return;
    }
    if let Some(value) = std::env::var_os(VAR) {
        match open_sink(&value) {
            Ok(sink) => {
                let _ = SINK.set(sink);
                ON.store(true, Release);
            }
            Err(e) => logger.warn(
                Errno::from_raw(e.raw_os_error().unwrap_or(libc::EINVAL)),
                format_args!("{VAR}={}: cannot trace there, tracing is off", value.to_string_lossy()),
            ),
        }
    }
    STATE.store(2, Release);
}

fn open_sink(value: &std::ffi::OsStr) -> std::io::Result<Sink> {
    if value == "stderr" {
        return Ok(Sink::Stderr);
    }
    if value.is_empty() {
        return Err(std::io::Error::from_raw_os_error(libc::ENOENT));
    }
    // std opens close-on-exec; append keeps concurrent writers' lines whole.
    let f = std::fs::OpenOptions::new().append(true).create(true).open(value)?;
    let kind = f.metadata()?.file_type();
    if !kind.is_file() && !std::os::unix::fs::FileTypeExt::is_char_device(&kind) {
        // A FIFO or socket could block every call that traces.
        return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
    }
    Ok(Sink::File(f))
}

/// Whether calls are traced (never, when built without the `trace` feature).
#[inline(always)]
pub fn enabled() -> bool {
    cfg!(feature = "trace") && ON.load(Relaxed)
}

/// What an export was called with, for the trace.
pub struct Call<'a> {
    /// The export's name without `xendevicemodel_`.
    pub name: &'static str,
    /// Its arguments (the handle excepted), by name.
    pub args: &'a [(&'static str, Arg)],
    /// Its out-pointers and buffers, read after a successful call.
    pub outs: &'a [(&'static str, Out)],
}

/// An argument's value as the trace shows it.
#[derive(Clone, Copy, Debug)]
pub enum Arg {
    /// An unsigned number, in decimal.
    U(u64),
    /// A signed number, in decimal.
    I(i64),
    /// An address or page frame, in hex.
    X(u64),
}

impl core::fmt::Display for Arg {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Arg::U(v) => write!(f, "{v}"),
            Arg::I(v) => write!(f, "{v}"),
            Arg::X(v) => write!(f, "{v:#x}"),
        }
    }
}

macro_rules! arg_from {
    ($($t:ty => $v:ident),*) => {$(
        impl From<$t> for Arg {
            #[inline(always)]
            fn from(x: $t) -> Arg { Arg::$v(x as _) }
        }
    )*};
}
arg_from!(u8 => U, u16 => U, u32 => U, i32 => I, u64 => X);

impl<T> From<*mut T> for Arg {
    #[inline(always)]
    fn from(p: *mut T) -> Arg {
        Arg::X(p as usize as u64)
    }
}

/// An out-pointer or buffer, read for the trace after a successful call.
#[derive(Clone, Copy)]
pub struct Out {
    ptr: *const (),
    read: fn(*const ()) -> Arg,
}

/// What an out-pointer's target looks like in the trace.
pub trait Traced {
    /// Its value, from a non-NULL pointer the call has written through.
    fn read(p: *const ()) -> Arg;
}

macro_rules! traced {
    ($($t:ty => $v:ident),*) => {$(
        impl Traced for $t {
            fn read(p: *const ()) -> Arg {
                // SAFETY: only called for non-NULL out-pointers the call wrote.
                Arg::$v(unsafe { (p as *const $t).read_unaligned() } as _)
            }
        }
    )*};
}
traced!(u16 => U, u32 => U, u64 => X);

impl Out {
    /// An out-pointer the call must write (its value is shown).
    #[inline(always)]
    pub fn required<T: Traced>(p: *mut T) -> Out {
        Out { ptr: p as *const (), read: T::read }
    }

    /// An out-pointer the caller may leave NULL (its value is shown).
    #[inline(always)]
    pub fn optional<T: Traced>(p: *mut T) -> Out {
        Out { ptr: p as *const (), read: T::read }
    }

    /// A buffer (a dirty bitmap, extents): its address is shown.
    #[inline(always)]
    pub fn buffer<T>(p: *mut T) -> Out {
        Out { ptr: p as *const (), read: |p| Arg::X(p as usize as u64) }
    }
}

/// One line in a fixed buffer: tracing allocates nothing.
struct Line {
    buf: [u8; 1024],
    len: usize,
}

impl core::fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let take = s.len().min(self.buf.len() - 1 - self.len);
        self.buf[self.len..self.len + take].copy_from_slice(&s.as_bytes()[..take]);
        self.len += take;
        Ok(())
    }
}

fn head(name: &str) -> Line {
    let mut l = Line { buf: [0; 1024], len: 0 };
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let _ = write!(l, "{}.{:06} {} {} {name}", now.as_secs(), now.subsec_micros(), std::process::id(), sys::gettid());
    l
}

fn tail(mut l: Line, handle: usize, rc: i32, errno: i32, start: Option<Instant>) {
    let _ = write!(l, " handle={handle:#x} rc={rc} errno=");
    let _ = match errno {
        0 => write!(l, "0"),
        e => write!(l, "{}", Errno::from_raw(e).name()),
    };
    let ns = start.map_or(0, |s| s.elapsed().as_nanos());
    let _ = write!(l, " ns={ns}");
    l.buf[l.len] = b'\n';
    let line = &l.buf[..=l.len];
    // Nowhere to report a failed trace write; the call's outcome stands.
    let _ = match SINK.get() {
        Some(Sink::File(f)) => write_file(f, line),
        Some(Sink::Stderr) => std::io::stderr().write_all(line),
        None => Ok(()),
    };
}

/// Room left below the file size limit for lines that other processes
/// tracing into the same file (forked children) may be writing at once.
const FSIZE_MARGIN: u64 = 64 << 10;

/// Appends a line, unless it would take the file past the process's file
/// size limit: that write would kill the process (SIGXFSZ), so tracing stops
/// instead, with one line on stderr. The limit is looked at on every line:
/// a process may lower it after its first open (QEMU is started with it).
fn write_file(mut f: &std::fs::File, line: &[u8]) -> std::io::Result<()> {
    let Some(limit) = sys::file_size_limit() else {
        return f.write_all(line);
    };
    // One writer at a time in this process, so the size it checks holds. A
    // signal handler that interrupted this thread's own write skips its
    // line rather than wait for it.
    static LIMITED: crate::lock::SpinLock<()> = crate::lock::SpinLock::new(());
    if LIMITED.held_by_me() {
        return Ok(());
    }
    let _one = LIMITED.lock();
    let size = f.metadata()?.len();
    if size.saturating_add(line.len() as u64).saturating_add(FSIZE_MARGIN) > limit {
        if ON.swap(false, Relaxed) {
            let msg = format!(
                "xendevicemodel: {VAR}: the trace file has reached this process's file size limit \
                 (RLIMIT_FSIZE {limit} bytes, less {FSIZE_MARGIN} bytes for other writers); tracing stops\n"
            );
            let _ = std::io::stderr().write_all(msg.as_bytes());
        }
        return Ok(());
    }
    f.write_all(line)
}

/// Writes a call's line (`rc`/`errno` as returned to the caller).
#[cold]
#[inline(never)]
pub fn call(start: Option<Instant>, handle: usize, call: &Call<'_>, rc: i32, errno: i32) {
    let saved = nix::errno::Errno::last_raw();
    let mut l = head(call.name);
    // `dom` first, whatever the argument's position.
    for (name, v) in call.args.iter().filter(|(n, _)| *n == "domid") {
        let _ = write!(l, " dom={v}");
        let _ = name;
    }
    for (name, v) in call.args.iter().filter(|(n, _)| *n != "domid") {
        let _ = write!(l, " {name}={v}");
    }
    for (name, out) in call.outs {
        let v = if rc == 0 && !out.ptr.is_null() { (out.read)(out.ptr) } else { Arg::X(out.ptr as usize as u64) };
        let _ = write!(l, " {name}={v}");
    }
    tail(l, handle, rc, errno, start);
    nix::errno::Errno::set_raw(saved);
}

/// Writes an open's line.
#[cold]
#[inline(never)]
pub fn open(start: Option<Instant>, logger: *mut sys::xentoollog_logger, flags: u32, handle: usize) {
    let saved = nix::errno::Errno::last_raw();
    let mut l = head("open");
    let _ = write!(l, " logger={:#x} open_flags={flags}", logger as usize);
    let (rc, errno) = if handle == 0 { (-1, saved) } else { (0, 0) };
    tail(l, handle, rc, errno, start);
    nix::errno::Errno::set_raw(saved);
}
