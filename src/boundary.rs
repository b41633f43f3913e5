//! The C boundary: how every export runs. Each of the 26 functions in
//! ffi.rs is one [`entry!`] line, which comes here to:
//! - catch panics (a bug of ours becomes `-1`/`EIO` and a log line, never
//!   an unwind into C);
//! - look the handle up in the table, keeping it alive during the call
//!   (`EBADF` and a stderr line for anything that is not an open handle);
//! - check out-pointers (a required one that is NULL: `EINVAL`, logged
//!   through the handle's logger, nothing sent);
//! - map the result to Xen's convention: 0, or -1 with `errno`;
//! - write the call to the trace when `XENDEVICEMODEL_TRACE` is set.

use crate::sys::{xentoollog_logger, XtlLogger};
use crate::trace::{self, Call};
use crate::{process, table};
use core::panic::AssertUnwindSafe;
use libc::{c_int, c_uint};
use std::time::Instant;
use xendevicemodel::{DeviceModel, Errno, Error, InvalidArgument, Options, UserPtr, Xencall};

/// The body of every export (see ffi.rs):
/// - `entry!(open(logger, open_flags))`, `entry!(close(dmod))`;
/// - `entry!(name(dmod, arg, ...; kind out, ...) => |dm| expression)`: runs
///   `expression` (a `Result<(), Error>`) on the handle's device model, with
///   each out-pointer checked by `boundary::kind` (`required`, `optional` or
///   `buffer`) and rebound under its own name; `arg`s are what the trace
///   shows.
macro_rules! entry {
    (open($logger:ident, $flags:ident)) => {
        // SAFETY: the export's own contract (a NULL or live logger).
        unsafe { $crate::boundary::open($logger, $flags) }
    };
    (close($dmod:ident)) => {
        $crate::boundary::close($dmod)
    };
    ($name:ident($dmod:ident $(, $arg:ident)* $(; $($kind:ident $out:ident),+)?) => |$dm:ident| $body:expr) => {{
        const NAME: &str = stringify!($name);
        let fast = $crate::boundary::call($dmod, NAME, |$dm| {
            // SAFETY: the export's own contract (see its # Safety).
            $($(let $out = unsafe { $crate::boundary::$kind($dm, $out, NAME, stringify!($out)) }?;)+)?
            $body
        });
        match fast {
            Some(rc) => rc,
            // Keys that are not open handles, and handles of a tracing
            // process. The closures are made here, on this path only.
            None => $crate::boundary::call_slow(
                $dmod as u64,
                NAME,
                move |$dm| {
                    // SAFETY: the export's own contract (see its # Safety).
                    $($(let $out = unsafe { $crate::boundary::$kind($dm, $out, NAME, stringify!($out)) }?;)+)?
                    $body
                },
                move |start, rc, errno| {
                    let call = $crate::trace::Call {
                        name: NAME,
                        args: &[$((stringify!($arg), $crate::trace::Arg::from($arg))),*],
                        outs: &[$($((stringify!($out), $crate::trace::Out::$kind($out))),+)?],
                    };
                    $crate::trace::call(start, $dmod as usize, &call, rc, errno)
                },
            ),
        }
    }};
}
pub(crate) use entry;

/// Runs `f` with panics caught: a panic is a bug of ours, reported on stderr
/// and to the caller as `-1` with `EIO` (or NULL, for open).
#[inline(always)]
fn guard<R: Failed>(name: &str, f: impl FnOnce() -> R) -> R {
    match std::panic::catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => R::failed(panicked(name)),
    }
}

/// What an export returns on failure.
trait Failed {
    fn failed(e: Error) -> Self;
}

impl Failed for Option<c_int> {
    fn failed(e: Error) -> Self {
        Some(finish(Err(e)))
    }
}

impl<T> Failed for Result<T, Error> {
    fn failed(e: Error) -> Self {
        Err(e)
    }
}

#[cold]
#[inline(never)]
fn panicked(name: &str) -> Error {
    process::stderr_logger()
        .error(Errno::EIO, format_args!("{name}: internal error (a bug in xendevicemodel-rs); the call was abandoned"));
    Error::Os(Errno::EIO)
}

/// A call on a handle: `f` runs on its device model. `None` for anything
/// that is not an open handle's untraced key: see [`call_slow`].
#[inline(always)]
pub fn call<H>(dmod: *mut H, name: &'static str, f: impl FnOnce(&DeviceModel) -> Result<(), Error>) -> Option<c_int> {
    guard(name, || table::with(dmod as u64, |dm| Some(finish(f(dm))), || None))
}

/// The rest of [`call`]: a traced handle's key (run `f`, timed, and write the
/// trace line with `traced`), or something that is no open handle (`EBADF`,
/// logged on stderr, and traced if the process traces).
#[cold]
#[inline(never)]
pub fn call_slow(
    key: u64,
    name: &'static str,
    f: impl FnOnce(&DeviceModel) -> Result<(), Error>,
    traced: impl FnOnce(Option<Instant>, c_int, c_int),
) -> c_int {
    let start = trace::enabled().then(Instant::now);
    let r = guard(name, || table::with_any(key, f, || Err(bad_handle(key, name))));
    let errno = r.err().map_or(0, |e| e.errno().raw());
    let rc = finish(r);
    if start.is_some() {
        traced(start, rc, errno);
    }
    rc
}

/// Xen's convention: 0, or -1 with errno.
#[inline(always)]
fn finish(r: Result<(), Error>) -> c_int {
    match r {
        Ok(()) => 0,
        Err(e) => {
            set_errno(e.errno().raw());
            -1
        }
    }
}

#[cold]
#[inline(never)]
fn set_errno(errno: c_int) {
    nix::errno::Errno::set_raw(errno);
}

/// No handle, so no caller logger we could trust: stderr.
#[cold]
#[inline(never)]
fn bad_handle(key: u64, what: &str) -> Error {
    process::stderr_logger()
        .error(Errno::EBADF, format_args!("{what}: {key:#x} is not an open handle (closed, or never opened)"));
    Error::Os(Errno::EBADF)
}

/// An out-pointer the call must write: `EINVAL` (logged) if NULL.
///
/// # Safety
/// Unless NULL, `p` must be valid for writes for `'a` (Xen's API contract).
#[inline(always)]
pub unsafe fn required<'a, T>(dm: &DeviceModel, p: *mut T, call: &str, name: &str) -> Result<&'a mut T, Error> {
    // SAFETY: the caller's promise.
    match unsafe { p.as_mut() } {
        Some(r) => Ok(r),
        None => Err(null_out(dm, call, name)),
    }
}

#[cold]
#[inline(never)]
fn null_out(dm: &DeviceModel, call: &str, name: &str) -> Error {
    dm.logger().error(Errno::EINVAL, format_args!("{call}: {name} must not be NULL"));
    Error::InvalidArgument(InvalidArgument::NullPointer)
}

/// An out-pointer the caller may leave NULL.
///
/// # Safety
/// Unless NULL, `p` must be valid for writes for `'a` (Xen's API contract).
#[inline(always)]
pub unsafe fn optional<'a, T>(_: &DeviceModel, p: *mut T, _: &str, _: &str) -> Result<Option<&'a mut T>, Error> {
    // SAFETY: the caller's promise.
    Ok(unsafe { p.as_mut() })
}

/// A buffer whose size the operation computes: passed on as it is (the
/// kernel checks NULL and unmapped memory, answering `EFAULT`).
///
/// # Safety
/// Unless NULL, `p` must be valid for the size the operation documents
/// (Xen's API contract).
#[inline(always)]
pub unsafe fn buffer<T>(_: &DeviceModel, p: *mut T, _: &str, _: &str) -> Result<UserPtr, Error> {
    // SAFETY: the caller's promise.
    Ok(unsafe { UserPtr::new(p) })
}

/// `xendevicemodel_open`.
///
/// # Safety
/// `logger` must be NULL or a live xentoollog logger that outlives the handle.
pub unsafe fn open<H>(logger: *mut xentoollog_logger, flags: c_uint) -> *mut H {
    let mut start = None;
    let r = guard("open", || {
        // SAFETY: the caller's promise.
        let (log, xtl) = process::logger_for(unsafe { XtlLogger::from_raw(logger) });
        // A signal handler that interrupted this thread inside open or
        // close cannot wait for it (it goes on once the handler returns).
        if table::reentered() {
            log.error(Errno::EDEADLK, format_args!("open: called from a signal handler that interrupted this thread inside open or close; not waiting for it"));
            return Err(Error::Os(Errno::EDEADLK));
        }
        // The first open reads XENDEVICEMODEL_TRACE: it may trace itself.
        process::first_open(&log);
        start = trace::enabled().then(Instant::now);
        // A tracing process's keys carry the trace bit: only they take the
        // path that traces.
        let traced = trace::enabled();
        let options = Options { logger: log, generation: &process::GENERATION };
        let inserted = match table::insert(traced, || DeviceModel::open_privcmd(options)) {
            Ok(r) => r,
            // No DM_OP ioctl, or privcmd failed: log, maybe libxencall, outside the lock.
            Err(rest) => {
                let raw = xtl.map_or(core::ptr::null_mut(), XtlLogger::as_raw);
                // SAFETY: NULL or a live logger: the caller's (its promise) or ours.
                let dm = rest.finish_with(|| unsafe { Xencall::open_with_logger(raw.cast()) })?;
                table::insert(traced, || Ok::<_, Error>(dm))?
            }
        };
        inserted.map_err(|(full, dm)| {
            dm.logger().error(full.errno, format_args!("{full}"));
            Error::Os(full.errno)
        })
    });
    let handle = match r {
        Ok(key) => key as *mut H,
        Err(e) => {
            set_errno(e.errno().raw());
            core::ptr::null_mut()
        }
    };
    if trace::enabled() {
        trace::open(start, logger, flags, handle as usize);
    }
    handle
}

/// `xendevicemodel_close`.
pub fn close<H>(dmod: *mut H) -> c_int {
    if dmod.is_null() {
        return 0; // as in Xen
    }
    let start = trace::enabled().then(Instant::now);
    let r = guard("close", || {
        // A privcmd handle is released under the table lock (a fork sees it
        // open or released); libxencall's close takes libxentoolcore's lock,
        // so it comes after.
        if table::reentered() {
            let e = Errno::EDEADLK;
            process::stderr_logger().error(e, format_args!("close: {dmod:p}: called from a signal handler that interrupted this thread inside open or close; not waiting for it (the handle stays open)"));
            return Err(Error::Os(e));
        }
        let released = table::remove(dmod as u64, |dm| if dm.uses_xencall() { Err(dm) } else { Ok(dm.close()) });
        match released {
            Ok(Ok(r)) => r,
            Ok(Err(dm)) => dm.close(),
            Err(e @ Errno::EDEADLK) => {
                process::stderr_logger()
                    .error(e, format_args!("close: {dmod:p} is in use by a call on this thread (its logger?)"));
                Err(Error::Os(e))
            }
            Err(e) => {
                process::stderr_logger()
                    .error(e, format_args!("close: {dmod:p} is not an open handle (double close?)"));
                Err(Error::Os(e))
            }
        }
    });
    let errno = r.err().map_or(0, |e| e.errno().raw());
    let rc = finish(r);
    if trace::enabled() {
        trace::call(start, dmod as usize, &Call { name: "close", args: &[], outs: &[] }, rc, errno);
    }
    rc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_minus_one_with_eio() {
        let quiet = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        nix::errno::Errno::set_raw(0);
        let rc = guard("test", || -> Option<c_int> { panic!("a bug") });
        let errno = nix::errno::Errno::last_raw();
        std::panic::set_hook(quiet);
        assert_eq!((rc, errno), (Some(-1), libc::EIO));
        let r = guard("test", || -> Result<(), Error> { panic!("a bug") });
        assert_eq!(r, Err(Error::Os(Errno::EIO)));
    }
}
