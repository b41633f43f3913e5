//! Fork detection: [`Generation`].

use crate::error::Errno;
use core::sync::atomic::{AtomicPtr, AtomicU64, AtomicU8, Ordering::*};

/// A process generation: how handles tell, with one load per call, that
/// they were inherited across `fork()`. It lives in a page that is zero in
/// a child: the kernel wipes it (`MADV_WIPEONFORK`, Linux 4.14, also for a
/// child made without glibc's fork()), and so does [`Generation::forked`],
/// for kernels and emulators that accept the advice but ignore it (as
/// qemu-user does). Where no such page can be made, handles compare
/// `getpid()` instead.
///
/// Who calls `forked` in a child is the process's fork owner: for
/// [`Generation::process`], the one [`Options`](crate::Options) uses unless
/// told otherwise, a `pthread_atfork` child handler it registers itself; a
/// program (or library) with its own fork handlers makes its own static
/// `Generation::new()` and calls `forked` from them.
#[derive(Debug)]
pub struct Generation {
    /// The page's first word, or `NO_PAGE` until the page exists.
    page: AtomicPtr<AtomicU64>,
    /// The next generation to hand out; a child inherits it, so its
    /// generations are new to every handle it inherited.
    next: AtomicU64,
    /// 0: not decided yet, 1: the page, 2: no page could be made, getpid().
    mode: AtomicU8,
}

/// Where a generation points until its page exists: a word that stays 0.
static NO_PAGE: AtomicU64 = AtomicU64::new(0);

/// The generation of [`Generation::process`].
static PROCESS: Generation = Generation::new();

impl Generation {
    /// A generation whose owner calls [`forked`](Self::forked) in every
    /// child (from its `pthread_atfork` child handler). Use it from a
    /// `static`: handles keep a reference to it.
    #[allow(clippy::new_without_default)] // only meaningful in a static, made with `new`
    pub const fn new() -> Self {
        Generation {
            page: AtomicPtr::new(&NO_PAGE as *const AtomicU64 as *mut AtomicU64),
            next: AtomicU64::new(1),
            mode: AtomicU8::new(0),
        }
    }

    /// The process's default generation, which registers its own
    /// `pthread_atfork` child handler when its page is made.
    pub fn process() -> &'static Generation {
        &PROCESS
    }

    /// Marks this process as a new one: what a fork child handler calls.
    /// Every handle opened before reads as inherited from now on.
    pub fn forked(&self) {
        self.word().store(0, Relaxed);
    }

    /// Where a handle reads the generation on each call: a word equal to
    /// the value [`at_open`](Self::at_open) returned in the process that
    /// opened the handle, and different in every other process (0 means
    /// "ask [`same_process`](Self::same_process)"). Taken after `at_open`.
    pub(crate) fn word(&self) -> &'static AtomicU64 {
        // SAFETY: `page` always points at NO_PAGE or at a page that is never unmapped.
        unsafe { &*self.page.load(Acquire) }
    }

    /// The generation to record in a handle being opened (never 0).
    pub(crate) fn at_open(&'static self) -> u64 {
        if self.mode.load(Acquire) == 0 {
            let ok = self.make_page();
            self.mode.store(if ok { 1 } else { 2 }, Release);
        }
        if self.mode.load(Acquire) == 2 {
            return u64::from(getpid());
        }
        let page = self.word();
        if page.load(Relaxed) == 0 {
            // First open here, or first open in a child (the page was wiped).
            let _ = page.compare_exchange(0, self.next.fetch_add(1, Relaxed), Relaxed, Relaxed);
        }
        page.load(Relaxed)
    }

    /// Whether a handle opened with generation `opened` belongs to this process.
    pub(crate) fn same_process(&self, opened: u64) -> bool {
        match self.mode.load(Acquire) {
            2 => opened == u64::from(getpid()),
            _ => self.word().load(Relaxed) == opened,
        }
    }

    /// Maps the page and has it zeroed in children; false if that cannot be
    /// done (no memory, or neither the kernel nor a fork handler would zero
    /// it).
    fn make_page(&'static self) -> bool {
        if !core::ptr::eq(self.page.load(Acquire), &NO_PAGE) {
            return true;
        }
        // SAFETY: a fresh private anonymous page, never unmapped once published.
        unsafe {
            let len = 4096;
            let p = libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if p == libc::MAP_FAILED {
                return false;
            }
            let wiped = libc::madvise(p, len, libc::MADV_WIPEONFORK) == 0;
            let page = p.cast::<AtomicU64>();
            let none = &NO_PAGE as *const AtomicU64 as *mut AtomicU64;
            if self.page.compare_exchange(none, page, AcqRel, Acquire).is_err() {
                libc::munmap(p, len); // another thread was first
                return true;
            }
            // Once per generation (only the thread that published the page
            // gets here); other generations' owners zero theirs themselves.
            let hooked = !core::ptr::eq(self, &PROCESS) || atfork_child(zero_process_generation).is_ok();
            wiped || hooked
        }
    }
}

fn getpid() -> u32 {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::getpid() as u32 }
}

/// `pthread_atfork` child handler of [`Generation::process`].
extern "C" fn zero_process_generation() {
    PROCESS.forked();
}

/// Registers a child handler with `pthread_atfork` (undone by glibc if the
/// object that registered it is unloaded).
fn atfork_child(child: extern "C" fn()) -> Result<(), Errno> {
    // SAFETY: the handler is a plain function of this object.
    match unsafe { libc::pthread_atfork(None, None, Some(child)) } {
        0 => Ok(()),
        e => Err(Errno::from_raw(e)),
    }
}
