//! Per-thread hazard records: how a call keeps its handle alive without an
//! atomic read-modify-write.
//!
//! The simple rule, which the handle table keeps as its fallback (see
//! `handle.rs`), has every call increment and decrement a shared count: two
//! locked instructions, which cost more than all the rest of a call. Instead, each thread that makes calls owns
//! a record, cache lines that no other thread writes. A call *stores* its key
//! there, then reads the handle's state; on the way out it stores 0.
//!
//! A CPU may let that load overtake the store (the store waits in its store
//! buffer), so `close` pays for the ordering instead: after marking the handle
//! CLOSING it calls membarrier(2) (`MEMBARRIER_CMD_PRIVATE_EXPEDITED`), which
//! runs a full memory barrier on every thread of the process. After that,
//! either a call's key is visible in its record, and close waits until it is
//! gone, or the call's state load comes after the barrier and sees CLOSING.
//! This is the asymmetric-fence scheme of userspace RCU and hazard pointers.
//!
//! Close needs no membarrier when no other thread owns a record: a thread that
//! takes one later does so under the registry lock, which orders all its calls
//! after the CLOSING store.
//!
//! Records are the fast path only. A call uses the shared counts instead when
//! it is its thread's first (which hands the thread a record for the next
//! ones), when it is nested in another call of the same thread (a logger
//! callback that calls this library), when the process cannot use membarrier
//! (a kernel before 4.14, a seccomp policy), or when no record is left (4096
//! threads hold one). A thread gives its record back when it exits, through a
//! pthread key's destructor.
//!
//! If membarrier stops working after the process chose records (a seccomp
//! policy installed later), new threads use the counts from then on, and a
//! close that cannot issue the barrier waits 10 ms, far longer than a store
//! buffer takes to drain, before it looks at the records.

use crate::spin::SpinLock;
use crate::sys;
use core::cell::Cell;
use core::sync::atomic::{compiler_fence, AtomicBool, AtomicU8, AtomicUsize, Ordering::*};
use nix::errno::Errno;

/// One thread's record: 128 bytes, because Intel's spatial prefetcher pairs
/// 64-byte lines, so neighbouring records on one 128-byte block would still
/// make two threads' caches fight.
#[repr(align(128))]
pub struct Record {
    /// The key of the handle this thread's current call uses, or 0.
    active: AtomicUsize,
    /// Owned by a live thread.
    owned: AtomicBool,
}

/// Where a thread's record pointer points until the thread has a record of
/// its own: `active` is never 0 here, so the one test `enter` makes for a
/// nested call also catches a thread's first call.
static NONE: Record = Record { active: AtomicUsize::new(usize::MAX), owned: AtomicBool::new(true) };

/// Threads that can hold a record at once; further threads use the counts.
/// A static array: a thread's first call allocates nothing, and untouched
/// pages of it cost no memory.
const MAX_RECORDS: usize = 4096;

static TABLE: [Record; MAX_RECORDS] =
    [const { Record { active: AtomicUsize::new(0), owned: AtomicBool::new(false) } }; MAX_RECORDS];
/// How many records have ever been handed out (the rest were never touched).
static CREATED: AtomicUsize = AtomicUsize::new(0);

/// Registry bookkeeping, under the lock.
struct Registry {
    /// Records owned by live threads.
    owned: usize,
    /// The pthread key that returns records at thread exit (made by `init`).
    exit_key: Option<libc::pthread_key_t>,
}
static REGISTRY: SpinLock<Registry> = SpinLock::new(Registry { owned: 0, exit_key: None });

const UNDECIDED: u8 = 0;
/// membarrier works: calls use records.
const RECORDS: u8 = 1;
/// No membarrier: calls use the shared counts.
const COUNTS: u8 = 2;
static MODE: AtomicU8 = AtomicU8::new(UNDECIDED);

/// This thread's record pointer, in thread-local storage.
///
/// On x86_64 Linux it is one word of initial-exec TLS, read with a single
/// `%fs`-relative load; Rust's `thread_local!` would use the general-dynamic
/// model in a shared library, a call to `__tls_get_addr` on every dm_op. The
/// cost is a few bytes of glibc's static TLS surplus, as for any library with
/// initial-exec variables, which also serves libraries loaded by dlopen().
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod mine {
    use super::Record;
    core::arch::global_asm!(
        ".pushsection .tdata.xdm_hazard_record,\"awT\",@progbits",
        ".p2align 3",
        ".local xdm_hazard_record",
        ".type xdm_hazard_record, @object",
        ".size xdm_hazard_record, 8",
        "xdm_hazard_record:",
        ".quad {none}",
        ".popsection",
        none = sym super::NONE,
    );

    /// This thread's record, or `NONE`.
    #[inline(always)]
    pub fn get() -> *const Record {
        let v: *const Record;
        // SAFETY: reads this thread's own TLS word, which always exists.
        unsafe {
            core::arch::asm!(
                "mov {v}, qword ptr [rip + xdm_hazard_record@GOTTPOFF]",
                "mov {v}, qword ptr fs:[{v}]",
                v = out(reg) v,
                options(nostack, readonly, preserves_flags),
            );
        }
        v
    }

    /// Sets this thread's record.
    #[inline(always)]
    pub fn set(rec: *const Record) {
        // SAFETY: writes this thread's own TLS word, which always exists.
        unsafe {
            core::arch::asm!(
                "mov {t}, qword ptr [rip + xdm_hazard_record@GOTTPOFF]",
                "mov qword ptr fs:[{t}], {v}",
                t = out(reg) _,
                v = in(reg) rec,
                options(nostack, preserves_flags),
            );
        }
    }
}

/// Elsewhere: Rust's own thread-local storage.
#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
mod mine {
    use super::{Record, NONE};
    use core::cell::Cell;
    thread_local! {
        static MINE: Cell<*const Record> = const { Cell::new(&NONE) };
    }
    /// This thread's record, or `NONE`.
    #[inline(always)]
    pub fn get() -> *const Record {
        MINE.with(|m| m.get())
    }
    /// Sets this thread's record.
    #[inline(always)]
    pub fn set(rec: *const Record) {
        MINE.with(|m| m.set(rec))
    }
}

/// Gives a thread's record back when it exits: the destructor of a pthread
/// key, whose value is the record (a Rust thread-local destructor would
/// allocate on a thread's first call).
unsafe extern "C" fn thread_exit(rec: *mut libc::c_void) {
    mine::set(&NONE);
    // SAFETY: the key's value is always a record from TABLE.
    let rec = &*(rec as *const Record);
    // A thread that exits inside a call (pthread_exit from a logger callback)
    // will never finish it: close must not wait for it.
    rec.active.store(0, Release);
    REGISTRY.with(|r| {
        rec.owned.store(false, Relaxed);
        r.owned -= 1;
    });
}

/// Chooses between records and counts, once, before the first handle exists
/// (a call can only follow an open, so every call sees the choice).
pub fn init() {
    if MODE.load(Acquire) != UNDECIDED {
        return;
    }
    REGISTRY.with(|r| {
        if MODE.load(Relaxed) != UNDECIDED {
            return;
        }
        r.exit_key = sys::thread_key(thread_exit).ok();
        let records = r.exit_key.is_some() && sys::membarrier_register().is_ok();
        MODE.store(if records { RECORDS } else { COUNTS }, Release);
    });
}

/// Every record handed out so far.
fn records() -> &'static [Record] {
    &TABLE[..CREATED.load(Acquire)]
}

/// Marks this call as using `key`; `None` means: use the shared counts this
/// time (a nested call, or the thread's first: see [`prepare`]).
///
/// The caller must then check the handle's state and, if the handle is not
/// usable or once the call is over, call [`leave`].
#[inline(always)]
pub fn enter(key: usize) -> Option<&'static Record> {
    // SAFETY: `NONE` or a record, and records are never freed.
    let rec = unsafe { &*mine::get() };
    if rec.active.load(Relaxed) != 0 {
        return None;
    }
    rec.active.store(key, Relaxed);
    // Keeps the compiler from moving the state check above the store; close's
    // membarrier stands in for the CPU barrier.
    compiler_fence(SeqCst);
    Some(rec)
}

/// Ends a call begun by [`enter`].
#[inline(always)]
pub fn leave(rec: &Record) {
    // Release: the call's reads of the handle happen before close sees 0.
    rec.active.store(0, Release);
}

/// Gives the thread a record if this is its first call, so that its next
/// calls can use it (called on the shared-count path, which this call takes).
#[cold]
pub fn prepare() {
    if core::ptr::eq(mine::get(), &NONE) {
        register();
    }
}

/// Gives this thread a record; `None` if it cannot have one (only threads of
/// a process that can use membarrier get one).
fn register() -> Option<&'static Record> {
    if MODE.load(Relaxed) != RECORDS {
        return None;
    }
    let rec = REGISTRY.with(|r| {
        let rec = match records().iter().find(|rec| !rec.owned.load(Relaxed)) {
            Some(rec) => rec,
            None => {
                let rec = TABLE.get(CREATED.load(Relaxed))?;
                CREATED.fetch_add(1, Release);
                rec
            }
        };
        // Without its exit hook the record would stay owned forever.
        // SAFETY: records are static.
        unsafe { sys::set_thread_value(r.exit_key?, rec as *const Record as *const libc::c_void) }.ok()?;
        rec.owned.store(true, Relaxed);
        r.owned += 1;
        Some(rec)
    })?;
    mine::set(rec);
    Some(rec)
}

/// Calls nested deeper than this are not remembered by [`counted_enter`].
const MAX_NESTED: usize = 8;

thread_local! {
    /// Keys of this thread's calls that pinned their handle with a count
    /// (outermost first), so that [`in_call`] sees them too. Touched only
    /// off the fast path; constant-initialised, so it never allocates.
    static COUNTED: Cell<([usize; MAX_NESTED], usize)> = const { Cell::new(([0; MAX_NESTED], 0)) };
}

/// Notes that this thread's call on `key` pinned its handle with a count.
pub fn counted_enter(key: usize) {
    let _ = COUNTED.try_with(|c| {
        let (mut keys, depth) = c.get();
        if let Some(k) = keys.get_mut(depth) {
            *k = key;
        }
        c.set((keys, depth + 1));
    });
}

/// Ends the innermost call noted by [`counted_enter`].
pub fn counted_leave() {
    let _ = COUNTED.try_with(|c| {
        let (keys, depth) = c.get();
        c.set((keys, depth.saturating_sub(1)));
    });
}

/// Whether this thread is inside a call on `key` (so closing it from there,
/// e.g. from the call's logger callback, would wait for itself).
pub fn in_call(key: usize) -> bool {
    // SAFETY: `NONE` or a record, and records are never freed.
    let recorded = unsafe { &*mine::get() }.active.load(Relaxed) == key;
    recorded
        || COUNTED
            .try_with(|c| {
                let (keys, depth) = c.get();
                keys[..depth.min(MAX_NESTED)].contains(&key)
            })
            .unwrap_or(false)
}

/// Waits until no call that passed its state check before `key`'s handle was
/// marked CLOSING is still using it.
pub fn wait_unused(key: usize) {
    let mine = mine::get();
    if CREATED.load(Acquire) > 0 {
        let others = REGISTRY.with(|r| r.owned - usize::from(!core::ptr::eq(mine, &NONE)));
        if others > 0 {
            barrier();
        }
    }
    // Scanned in every mode: a call may have entered before a switch to counts.
    for rec in records() {
        while rec.active.load(Acquire) == key {
            std::thread::yield_now();
        }
    }
}

/// A full barrier on every thread of the process.
#[cold]
fn barrier() {
    let ok = match sys::membarrier() {
        Ok(()) => true,
        // Not registered in this process: a child after fork().
        Err(Errno::EPERM) => sys::membarrier_register().and_then(|()| sys::membarrier()).is_ok(),
        Err(_) => false,
    };
    if !ok {
        // It worked when the process chose records, so a seccomp policy was
        // installed since. Threads without a record use the counts from now
        // on; calls that stored their key without a barrier are given far
        // longer than any store buffer takes to drain before close looks.
        MODE.store(COUNTS, Relaxed);
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

/// `pthread_atfork` prepare: no registration may be half done across fork().
pub(crate) fn fork_prepare() {
    REGISTRY.acquire();
}

/// `pthread_atfork` parent.
pub(crate) fn fork_parent() {
    REGISTRY.release();
}

/// `pthread_atfork` child: only the forking thread exists here, so every other
/// record is free and no other call is in progress.
pub(crate) fn fork_child() {
    let mine = mine::get();
    // SAFETY: fork_prepare took the lock.
    let r = unsafe { &mut *REGISTRY.get_locked() };
    r.owned = 0;
    for rec in records() {
        if core::ptr::eq(rec, mine) {
            r.owned += 1;
        } else {
            rec.owned.store(false, Relaxed);
            rec.active.store(0, Relaxed);
        }
    }
    REGISTRY.release();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_fill_a_prefetch_pair() {
        assert_eq!(core::mem::align_of::<Record>(), 128);
        assert_eq!(core::mem::size_of::<Record>(), 128);
    }

    #[test]
    fn a_thread_keeps_its_record_and_gives_it_back() {
        init();
        if MODE.load(Relaxed) != RECORDS {
            return; // no membarrier here: the C suite covers this mode
        }
        let before = REGISTRY.with(|r| r.owned);
        std::thread::spawn(move || {
            assert!(enter(0x55).is_none(), "a thread's first call has no record yet");
            prepare();
            assert_eq!(REGISTRY.with(|r| r.owned), before + 1);
            let rec = enter(0x55).expect("a record after prepare");
            assert_eq!(rec.active.load(Relaxed), 0x55);
            assert!(in_call(0x55) && !in_call(0x56));
            assert!(enter(0x66).is_none(), "a nested call must use the counts");
            leave(rec);
            let again = enter(0x77).expect("a thread keeps its record");
            assert!(core::ptr::eq(again, rec));
            leave(again);
        })
        .join()
        .unwrap();
        assert_eq!(REGISTRY.with(|r| r.owned), before, "an exited thread's record is free again");
    }

    #[test]
    fn counted_calls_are_seen_by_in_call() {
        counted_enter(0x1234);
        counted_enter(0x5678);
        assert!(in_call(0x1234) && in_call(0x5678));
        counted_leave();
        assert!(in_call(0x1234) && !in_call(0x5678));
        counted_leave();
        assert!(!in_call(0x1234));
    }
}
