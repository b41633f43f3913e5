//! Everything process-wide, in one place: what the library sets up when it
//! is loaded and at the first open, what it does around fork(), how a
//! handle knows it was inherited, and why the library never unloads.
//!
//! - **Load** (a constructor): the library's one set of `pthread_atfork`
//!   handlers, and one registration with libxentoolcore, whose callback
//!   applies `xentoolcore_restrict_all()` to every open handle (an
//!   inherited one is dropped from this process instead of restricted: its
//!   open file is the parent's too). Registering once, rather than per
//!   handle as Xen's library does, means open and close never take
//!   libxentoolcore's lock: a child forked while another thread was inside
//!   `restrict_all` (which holds that lock, and libxentoolcore has no fork
//!   handler) can still open and close handles.
//! - **First open**: liveness.rs decides between per-thread records and
//!   shared counts (membarrier, a pthread key); a NULL logger's stderr logger
//!   is made at the first open that needs it.
//! - **fork()**: prepare takes the table lock, then the thread registry lock
//!   (so no open, release or thread registration is half done); the child
//!   starts a new process generation (every handle opened before reads as
//!   inherited: its calls are refused, nothing is sent), and clears what
//!   threads that do not exist there left behind. The generation is this
//!   module's [`GENERATION`], which every handle is opened with: a page the
//!   kernel also wipes in a child (`MADV_WIPEONFORK`, for children made
//!   without glibc's fork()), read with one load per call.
//! - **Unload**: never. The library is linked `-z nodelete` (build.rs), so
//!   `dlclose()` leaves it mapped: threads that made calls give their records
//!   back through a pthread key destructor when they exit (possibly after
//!   dlclose), libxentoolcore keeps our registration, the records' pointer is
//!   initial-exec TLS, and a handle a host leaked stays valid. Nothing of
//!   this can be undone at dlclose() without racing threads still running at
//!   exit, where the same destructors run. A dlopen() after dlclose() finds
//!   the same instance, with its table.

use crate::sys::{self, XtlLogger};
use crate::{liveness, table, trace};
use xendevicemodel::{DeviceModel, Errno, Generation, Logger};

/// The process generation of every handle (see "fork()" above): made new
/// in a child by [`fork_child`].
pub static GENERATION: Generation = Generation::new();

/// Runs when the library is loaded (by the program, or by dlopen()).
extern "C" fn on_load() {
    // Registration fails only when out of memory; then inherited handles
    // are still refused where the kernel wipes the generation page (it does
    // since Linux 4.14), and otherwise behave as in Xen's library (usable in
    // a child), the best left to do.
    let _ = sys::atfork(fork_prepare, fork_parent, fork_child);
    sys::register_restrict_all(restrict_all);
}

// The one unsafe act here: code that runs at load time, before main().
#[allow(unsafe_code)]
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
    GENERATION.forked();
    liveness::fork_child();
    table::fork_child();
}

/// libxentoolcore's callback: restricts every open handle to `domid`,
/// newest first, and stops at the first failure (as Xen's library's
/// per-handle callbacks do). Each handle is used as a call uses it, so a
/// close racing with this waits, and one from its logger fails (EDEADLK).
fn restrict_all(domid: u16) -> Result<(), Errno> {
    table::for_each_open(|dm| restrict_member(dm, domid))
}

/// What `xentoolcore_restrict_all(domid)` does to one handle: restricts its
/// privcmd file, or, for a handle inherited across fork(), replaces this
/// process's descriptor with /dev/null instead (the open file is the
/// parent's too). libxencall handles restrict themselves.
fn restrict_member(dm: &DeviceModel, domid: u16) -> Result<(), Errno> {
    let Some(fd) = dm.privcmd_fd() else { return Ok(()) };
    if dm.is_inherited() {
        let raw = std::os::fd::AsRawFd::as_raw_fd(&fd);
        dm.logger().debug(format_args!("restrict_all: dropping fd {raw} inherited across fork"));
        return sys::restrict_by_dup2_null(fd);
    }
    dm.restrict(domid).map_err(|e| {
        let e = e.errno();
        dm.logger().error(e, format_args!("restrict_all: cannot restrict to domain {domid}"));
        e
    })
}

/// The stderr logger at `XTL_PROGRESS` used for NULL loggers and invalid
/// handles, as Xen's library makes one per handle; one per process here.
/// `None` if libxentoollog could not allocate it (tried again next time).
/// Never waits (a signal handler may need it while the thread it
/// interrupted is making it): another thread, or the interrupted one, may
/// win the race; its logger is kept, ours leaks once (a few bytes).
fn shared_stderr() -> Option<XtlLogger> {
    static STDERR: sys::LoggerSlot = sys::LoggerSlot::new();
    if let Some(l) = STDERR.get() {
        return Some(l);
    }
    Some(STDERR.set_once(XtlLogger::new_stderr()?))
}

/// The logger for a handle opened with `logger` (NULL: stderr, as in Xen),
/// and the libxentoollog logger behind it, for libxencall. Allocates
/// nothing but the shared stderr logger, once.
pub fn logger_for(logger: Option<XtlLogger>) -> (Logger, Option<XtlLogger>) {
    match logger {
        Some(l) => (l.logger(false), Some(l)),
        None => match shared_stderr() {
            Some(l) => (l.logger(true), Some(l)),
            None => (Logger::stderr(), None),
        },
    }
}

/// The logger for messages about invalid handles, which have no caller
/// logger we could trust.
pub fn stderr_logger() -> Logger {
    logger_for(None).0
}
