//! How a call keeps its handle alive, and how close waits for it: the only
//! module with the atomics that do this.
//!
//! The protocol (gates, records, counts, the barrier close pays) is in
//! [`protocol`], small enough for the model checker in `tests/model`. This
//! file gives it its environment in the library:
//! - each thread that makes calls owns a [`Record`] from a static table,
//!   found through one word of initial-exec TLS, and gives it back at exit
//!   through a pthread key's destructor;
//! - the barrier is `membarrier(2)`, issued only when another live thread
//!   owns a record (a thread that takes one later does so under the registry
//!   lock, which orders its calls after the CLOSING store);
//! - a call uses the shared counts instead when it is its thread's first
//!   (which hands the thread a record for the next ones), when it is nested
//!   in another call of the same thread (a logger callback that calls this
//!   library), when the process cannot use membarrier (a kernel before 4.14,
//!   a seccomp policy: decided at the first open), or when 4096 threads
//!   already own records;
//! - if membarrier stops working later (a seccomp policy installed since),
//!   new threads use the counts from then on, and a close that cannot issue
//!   the barrier waits 10 ms, far longer than a store buffer takes to drain,
//!   before it looks at the records;
//! - around fork(), the registry lock is held, and in the child every record
//!   but the forking thread's, and every count, is cleared: those calls'
//!   threads do not exist there ([`fork_child`], called by process.rs).

pub mod protocol;

/// The atomics the protocol is written against (loom's in the model).
mod sync {
    pub use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
    pub use std::thread::yield_now;
}

use crate::lock::SpinLock;
use crate::sys::{self, ThreadKey};
use core::cell::Cell;
use core::sync::atomic::{AtomicU8, AtomicUsize, Ordering::*};
pub use protocol::{Gate, Record, CLOSING};
use xendevicemodel::Errno;

/// Where a thread's record pointer points until the thread owns a record:
/// `active` is never 0 here, so the one test [`Record::enter`] makes for a
/// nested call also catches a thread's first call.
static NONE: Record = Record { active: AtomicUsize::new(usize::MAX), owned: sync::AtomicBool::new(true) };

/// Threads that can own a record at once; further threads use the counts.
/// A static array: a thread's first call allocates nothing, and untouched
/// pages of it cost no memory.
const MAX_RECORDS: usize = 4096;

static TABLE: [Record; MAX_RECORDS] = [const { Record::new() }; MAX_RECORDS];
/// How many records have ever been handed out (the rest were never touched).
static CREATED: AtomicUsize = AtomicUsize::new(0);

/// Record bookkeeping, under the registry lock.
struct Registry {
    /// Records owned by live threads.
    owned: usize,
    /// The pthread key that gives records back at thread exit (made by `init`).
    exit_key: Option<ThreadKey>,
}
static REGISTRY: SpinLock<Registry> = SpinLock::new(Registry { owned: 0, exit_key: None });

const UNDECIDED: u8 = 0;
/// membarrier works: calls use records.
const RECORDS: u8 = 1;
/// No membarrier (or no thread key): calls use the shared counts.
const COUNTS: u8 = 2;
static MODE: AtomicU8 = AtomicU8::new(UNDECIDED);

/// This thread's record pointer, in thread-local storage.
///
/// On x86_64 Linux one word of initial-exec TLS, read with a single
/// `%fs`-relative load; Rust's `thread_local!` uses the general-dynamic
/// model in a shared library, a call to `__tls_get_addr` on every dm_op. The
/// cost is a few bytes of glibc's static TLS surplus, as for any library with
/// initial-exec variables, which also serves libraries loaded by dlopen().
/// The library is never unloaded (build.rs: `-z nodelete`), so the word's
/// static TLS block is never given back while threads still hold it.
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
mod mine {
    use super::Record;
    core::arch::global_asm!(
        ".pushsection .tdata.xdm_record,\"awT\",@progbits",
        ".p2align 3",
        // Global but hidden: visible to every codegen unit, never exported.
        ".globl xdm_record",
        ".hidden xdm_record",
        ".type xdm_record, @object",
        ".size xdm_record, 8",
        "xdm_record:",
        ".quad {none}",
        ".popsection",
        none = sym super::NONE,
    );

    /// This thread's record, or `NONE`.
    #[inline(always)]
    pub fn get() -> &'static Record {
        let v: *const Record;
        // SAFETY: reads this thread's own TLS word, which always exists.
        unsafe {
            core::arch::asm!(
                "mov {v}, qword ptr [rip + xdm_record@GOTTPOFF]",
                "mov {v}, qword ptr fs:[{v}]",
                v = out(reg) v,
                options(nostack, readonly, preserves_flags),
            );
        }
        // SAFETY: the word holds NONE or a record of TABLE, both static.
        unsafe { &*v }
    }

    /// Sets this thread's record.
    #[inline(always)]
    pub fn set(rec: &'static Record) {
        // SAFETY: writes this thread's own TLS word, which always exists.
        unsafe {
            core::arch::asm!(
                "mov {t}, qword ptr [rip + xdm_record@GOTTPOFF]",
                "mov qword ptr fs:[{t}], {v}",
                t = out(reg) _,
                v = in(reg) rec as *const Record,
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
    // None stands for NONE: rustc 1.85 (Debian 13's; 1.95 accepts it) refuses a
    // reference to a static with interior mutability in a const initialiser.
    thread_local! {
        static MINE: Cell<Option<&'static Record>> = const { Cell::new(None) };
    }
    /// This thread's record, or `NONE`.
    #[inline(always)]
    pub fn get() -> &'static Record {
        MINE.with(|m| m.get()).unwrap_or(&NONE)
    }
    /// Sets this thread's record.
    #[inline(always)]
    pub fn set(rec: &'static Record) {
        MINE.with(|m| m.set(Some(rec)))
    }
}

/// Gives a thread's record back when it exits: the destructor of a pthread
/// key whose value is the record (a Rust thread-local destructor would
/// allocate on a thread's first call).
unsafe extern "C" fn thread_exit(rec: *mut libc::c_void) {
    mine::set(&NONE);
    // SAFETY: the key's value is always a record of TABLE.
    let rec = unsafe { &*(rec as *const Record) };
    // A thread that exits inside a call (pthread_exit from a logger callback)
    // will never finish it: close must not wait for it.
    rec.leave();
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
        r.exit_key = ThreadKey::new(thread_exit).ok();
        let records = r.exit_key.is_some() && sys::membarrier_register().is_ok();
        MODE.store(if records { RECORDS } else { COUNTS }, Release);
    });
}

/// Every record handed out so far.
fn records() -> &'static [Record] {
    &TABLE[..CREATED.load(Acquire)]
}

/// A call's hold on a handle: the address of this thread's record holding
/// the key, or, with the low bit set, of the shared count it raised. One
/// word, so that the call path keeps one register for it. Dropping it ends
/// the call (also when unwinding).
pub struct Pin(usize);

impl Pin {
    /// Announces a call on `key`, whose handle's gate is `gate`, and admits it
    /// if the handle is open as `key`.
    #[inline(always)]
    pub fn enter(gate: &'static Gate, key: u64) -> Option<Pin> {
        let rec = mine::get();
        let pin = if rec.enter(key as usize) { Pin(rec as *const Record as usize) } else { Pin::count(gate, key) };
        if gate.admits(key) {
            Some(pin)
        } else {
            None // dropping `pin` ends the announcement
        }
    }

    /// The shared counts, when there is no record to use. `extern "C"`: it
    /// cannot unwind, so the call path keeps no unwinding state for it (see
    /// the safe crate's `submit_indirect`).
    #[cold]
    #[inline(never)]
    #[allow(improper_ctypes_definitions)] // a Rust-to-Rust call
    extern "C" fn count(gate: &'static Gate, key: u64) -> Pin {
        if core::ptr::eq(mine::get(), &NONE) {
            // For this thread's next calls. Should it panic (nothing in it
            // is expected to), the thread simply stays without a record.
            let _ = std::panic::catch_unwind(register);
        }
        let shard = gate.count_enter(my_shard());
        counted_enter(key as usize, shard);
        Pin(shard as *const protocol::Shard as usize | 1)
    }

    #[cold]
    #[inline(never)]
    fn uncount(&self) {
        counted_leave();
        // SAFETY: made from a gate's shard by `count`; gates are never freed.
        Gate::count_leave(unsafe { &*((self.0 & !1) as *const protocol::Shard) });
    }
}

impl Drop for Pin {
    #[inline(always)]
    fn drop(&mut self) {
        if self.0 & 1 == 0 {
            // SAFETY: made from a record by `enter`; records are static.
            unsafe { &*(self.0 as *const Record) }.leave();
        } else {
            self.uncount();
        }
    }
}

/// This thread's shard: threads' stacks lie megabytes apart (glibc gives each
/// 8 MiB), so bits above 2^23 of a stack address tell threads apart for free.
/// Only speed depends on the choice; a `Pin` remembers the shard it used.
#[inline(always)]
fn my_shard() -> usize {
    let marker = 0u8;
    (core::ptr::addr_of!(marker) as usize) >> 23
}

/// Gives this thread a record; nothing if it cannot have one (only threads
/// of a process that can use membarrier get one).
fn register() {
    // Not from a signal handler that interrupted this thread's registration
    // (or another use of the registry): the call uses the counts instead.
    if MODE.load(Relaxed) != RECORDS || REGISTRY.held_by_me() {
        return;
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
        r.exit_key?.set(rec).ok()?;
        rec.owned.store(true, Relaxed);
        r.owned += 1;
        Some(rec)
    });
    if let Some(rec) = rec {
        mine::set(rec);
    }
}

/// Calls nested deeper than this are not remembered by [`counted_enter`].
const MAX_NESTED: usize = 8;

thread_local! {
    /// This thread's calls that pinned their handle with a count (outermost
    /// first): their keys, so that [`in_call`] sees them too, and their
    /// shards, so that a child forked inside them counts them again
    /// ([`recount_mine`]). Touched only off the fast path;
    /// constant-initialised and without a destructor, so it never allocates
    /// nor registers anything. A signal handler's calls nest inside the
    /// interrupted one's and are gone when it returns, so a handler between
    /// this thread's get and set changes nothing.
    static COUNTED: Cell<([(usize, usize); MAX_NESTED], usize)> = const { Cell::new(([(0, 0); MAX_NESTED], 0)) };
}

fn counted_enter(key: usize, shard: &protocol::Shard) {
    let _ = COUNTED.try_with(|c| {
        let (mut calls, depth) = c.get();
        if let Some(k) = calls.get_mut(depth) {
            *k = (key, shard as *const protocol::Shard as usize);
        }
        c.set((calls, depth + 1));
    });
}

fn counted_leave() {
    let _ = COUNTED.try_with(|c| {
        let (calls, depth) = c.get();
        c.set((calls, depth.saturating_sub(1)));
    });
}

/// In a child after fork(), once every count was cleared: counts this
/// thread's own counted calls again (a fork from a logger callback or a
/// signal handler, inside a call that goes on in the child). A fork in the
/// two instructions between a count's change and its note here leaves the
/// count one short, never one over (a count never goes below 0).
pub(crate) fn recount_mine() {
    let _ = COUNTED.try_with(|c| {
        let (calls, depth) = c.get();
        for &(_, shard) in &calls[..depth.min(MAX_NESTED)] {
            // SAFETY: a gate's shard, noted by `count`; gates are never freed.
            Gate::recount(unsafe { &*(shard as *const protocol::Shard) });
        }
    });
}

/// Whether this thread is inside a call on `key` (closing it from there,
/// e.g. from the call's logger callback, would wait for itself).
pub fn in_call(key: u64) -> bool {
    mine::get().holds(key as usize)
        || COUNTED
            .try_with(|c| {
                let (keys, depth) = c.get();
                keys[..depth.min(MAX_NESTED)].iter().any(|&(k, _)| k == key as usize)
            })
            .unwrap_or(false)
}

/// After `gate.begin_close(key)`: waits until no call admitted before it
/// is still using the handle.
pub fn wait_unused(gate: &Gate, key: u64) {
    gate.quiesce(key, records(), || {
        if CREATED.load(Acquire) > 0 {
            let mine_owned = !core::ptr::eq(mine::get(), &NONE);
            let others = REGISTRY.with(|r| r.owned - usize::from(mine_owned));
            if others > 0 {
                barrier();
            }
        }
    });
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

/// `pthread_atfork` prepare: no registration may be half done across fork()
/// (one interrupted by the signal handler that forks keeps the lock: see
/// `SpinLock::fork_acquire`).
pub(crate) fn fork_prepare() {
    REGISTRY.fork_acquire();
}

/// `pthread_atfork` parent.
pub(crate) fn fork_parent() {
    // SAFETY: fork_prepare called fork_acquire.
    unsafe { REGISTRY.fork_release() };
}

/// Whether this thread holds the registry lock: a signal handler that
/// interrupted it (see `table::reentered`).
pub(crate) fn registry_held_by_me() -> bool {
    REGISTRY.held_by_me()
}

/// `pthread_atfork` child: only the forking thread exists here, so every
/// other record is free and no other call is in progress.
pub(crate) fn fork_child() {
    let mine = mine::get();
    // SAFETY: fork_prepare took the lock; nothing else runs in the child yet.
    let r = unsafe { REGISTRY.locked_value() };
    r.owned = 0;
    for rec in records() {
        if core::ptr::eq(rec, mine) {
            r.owned += 1;
        } else {
            rec.owned.store(false, Relaxed);
            rec.leave();
        }
    }
    // SAFETY: fork_prepare called fork_acquire.
    unsafe { REGISTRY.fork_release() };
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records are process-wide: tests that hand them out run one at a time.
    static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

    #[test]
    fn records_fill_a_prefetch_pair() {
        assert_eq!(core::mem::align_of::<Record>(), 128);
        assert_eq!(core::mem::size_of::<Record>(), 128);
        assert_eq!(core::mem::align_of::<Gate>(), 64);
    }

    #[test]
    fn a_thread_keeps_its_record_and_gives_it_back() {
        let _serial = SERIAL.lock().unwrap();
        init();
        if MODE.load(Relaxed) != RECORDS {
            return; // no membarrier here: the C suite covers this mode
        }
        let gate: &'static Gate = Box::leak(Box::new(Gate::new(0x55)));
        let rec = std::thread::spawn(move || {
            let first = Pin::enter(gate, 0x55).expect("open");
            assert_eq!(first.0 & 1, 1, "a thread's first call uses the counts");
            drop(first);
            let rec = mine::get();
            assert!(!core::ptr::eq(rec, &NONE) && rec.owned.load(Relaxed), "the first call gave the thread a record");
            let pin = Pin::enter(gate, 0x55).expect("open");
            assert_eq!(pin.0 & 1, 0, "a record after the first call");
            assert!(in_call(0x55) && !in_call(0x56));
            let nested = Pin::enter(gate, 0x55).expect("open");
            assert_eq!(nested.0 & 1, 1, "a nested call uses the counts");
            assert!(in_call(0x55));
            drop(nested);
            drop(pin);
            assert!(!in_call(0x55));
            assert!(Pin::enter(gate, 0x66).is_none(), "a gate admits only its key");
            assert!(!in_call(0x66), "a refused call leaves no announcement");
            rec
        })
        .join()
        .unwrap();
        assert!(!rec.owned.load(Relaxed), "an exited thread's record is free again");
    }

    #[test]
    fn a_call_that_panics_still_ends() {
        let _serial = SERIAL.lock().unwrap();
        init();
        let gate: &'static Gate = Box::leak(Box::new(Gate::new(0x99)));
        let quiet = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        for _ in 0..3 {
            // The first through the counts, then through this thread's record.
            let r = std::panic::catch_unwind(|| {
                let _pin = Pin::enter(gate, 0x99).expect("open");
                panic!("a bug inside the call");
            });
            assert!(r.is_err());
            assert!(!in_call(0x99), "the unwound call still announces itself");
        }
        std::panic::set_hook(quiet);
        assert!(gate.begin_close(0x99));
        wait_unused(gate, 0x99); // would wait forever for a call that never ended
    }

    #[test]
    fn close_waits_for_a_call_and_refuses_new_ones() {
        let _serial = SERIAL.lock().unwrap();
        init();
        let gate: &'static Gate = Box::leak(Box::new(Gate::new(0x77)));
        let pin = Pin::enter(gate, 0x77).expect("open");
        assert!(gate.begin_close(0x77));
        assert!(!gate.begin_close(0x77), "only one close wins");
        assert!(Pin::enter(gate, 0x77).is_none(), "no call is admitted while closing");
        let started = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = started.clone();
        let waiter = std::thread::spawn(move || {
            s.store(true, SeqCst);
            wait_unused(gate, 0x77)
        });
        // The waiter is running; it cannot return while `pin` lives (however
        // long it is given: 20 ms after it started, here).
        while !started.load(SeqCst) {
            std::thread::yield_now();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        assert!(!waiter.is_finished(), "close returned while a call was in flight");
        drop(pin);
        waiter.join().unwrap();
    }
}
