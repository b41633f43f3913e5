//! Everything process-wide, in one place: what the library sets up when it
//! is loaded and at the first open, what it does around fork(), and why it
//! never unloads.
//!
//! - **Load** (a constructor): `pthread_atfork` handlers, and one
//!   registration with libxentoolcore, whose callback applies
//!   `xentoolcore_restrict_all()` to every open handle. Registering once,
//!   rather than per handle as Xen's library does, means open and close never
//!   take libxentoolcore's lock: a child forked while another thread was
//!   inside `restrict_all` (which holds that lock, and libxentoolcore has no
//!   fork handler) can still open and close handles.
//! - **First open**: liveness.rs decides between per-thread records and
//!   shared counts (membarrier, a pthread key); a NULL logger's stderr logger
//!   is made at the first open that needs it.
//! - **fork()**: prepare takes the table lock, then the thread registry lock
//!   (so no open, release or thread registration is half done); the child
//!   clears what threads that do not exist there left behind. (The safe
//!   crate's `os` module owns its own process generation, by which a
//!   handle knows it was inherited, and resets it in a child itself.)
//! - **Unload**: never. The library is linked `-z nodelete` (build.rs), so
//!   `dlclose()` leaves it mapped: threads that made calls give their records
//!   back through a pthread key destructor when they exit (possibly after
//!   dlclose), libxentoolcore keeps our registration, the records' pointer is
//!   initial-exec TLS, and a handle a host leaked stays valid. Nothing of
//!   this can be undone at dlclose() without racing threads still running at
//!   exit, where the same destructors run. A dlopen() after dlclose() finds
//!   the same instance, with its table.

use crate::{liveness, table, trace};
use std::sync::OnceLock;
use xendevicemodel::capi::{self, XtlLogger};
use xendevicemodel::{Errno, Logger};

/// Runs when the library is loaded (by the program, or by dlopen()).
extern "C" fn on_load() {
    // Registration fails only when out of memory; then inherited handles
    // behave as in Xen's library (usable in a child), the best left to do.
    let _ = capi::atfork(fork_prepare, fork_parent, fork_child);
    capi::register_restrict_all(restrict_all);
}

#[used]
#[link_section = ".init_array"]
static ON_LOAD: extern "C" fn() = on_load;

/// What the first open sets up (cheap to call again); `logger` is the
/// opening handle's, for a warning about a bad `XENDEVICEMODEL_TRACE`.
pub fn first_open(logger: &Logger) {
    liveness::init();
    trace::init(logger);
}

extern "C" fn fork_prepare() {
    table::fork_prepare();
    liveness::fork_prepare();
}

extern "C" fn fork_parent() {
    liveness::fork_parent();
    table::fork_parent();
}

extern "C" fn fork_child() {
    liveness::fork_child();
    table::fork_child();
}

/// libxentoolcore's callback: restricts every open handle to `domid`,
/// newest first, and stops at the first failure (as Xen's library's
/// per-handle callbacks do). Each handle is used as a call uses it, so a
/// close racing with this waits, and one from its logger fails (EDEADLK).
fn restrict_all(domid: u16) -> Result<(), Errno> {
    table::for_each_open(|dm| dm.c_restrict_all_member(domid))
}

/// The stderr logger at `XTL_PROGRESS` used for NULL loggers and invalid
/// handles, as Xen's library makes one per handle; one per process here.
/// `None` if libxentoollog could not allocate it (tried again next time).
fn shared_stderr() -> Option<XtlLogger> {
    static STDERR: OnceLock<XtlLogger> = OnceLock::new();
    if let Some(l) = STDERR.get() {
        return Some(*l);
    }
    let made = XtlLogger::new_stderr()?;
    // Another thread may have won the race: its logger is kept, ours leaks
    // once (a few bytes, only in that race).
    Some(*STDERR.get_or_init(|| made))
}

/// The logger for a handle opened with `logger` (NULL: stderr, as in Xen).
pub fn logger_for(logger: Option<XtlLogger>) -> Logger {
    match (logger, shared_stderr) {
        (Some(l), _) => Logger::xtl(l),
        (None, get) => get().map_or_else(Logger::stderr, Logger::xtl_stderr),
    }
}

/// The logger for messages about invalid handles, which have no caller
/// logger we could trust.
pub fn stderr_logger() -> Logger {
    logger_for(None)
}
