//! The liveness protocol itself: how a call announces that it uses a handle,
//! and how close waits until no call does. Nothing here knows about threads'
//! storage, the handle table or the system: this file is compiled into the
//! library (with `core`'s atomics) and into the model checker in
//! `tests/model` (with loom's, built with `--cfg loom`), so that what is
//! checked is exactly what runs.
//!
//! A handle's [`Gate`] holds its state word: the handle's key while it is
//! open, the key with [`CLOSING`] flipped while it closes, something else
//! when it is free. A call first announces itself, then checks that the
//! state is still its key:
//! - in its thread's [`Record`], with a plain store (the fast path);
//! - or in one of the gate's shared counts (a thread's first or nested call,
//!   or a process without membarrier), with an atomic increment.
//!
//! Close flips the state to CLOSING, then waits while any record holds the
//! key or any count is non-zero. Both orders are sequentially consistent for
//! the counts. For the records the call side has only a compiler fence: the
//! CPU may let the state load overtake the record store. Close pays for that
//! ordering with a *barrier* it runs between the two steps, which on Linux is
//! `membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED)`: a full memory barrier on
//! every running thread of the process. Then either the call's store is
//! visible to close's scan, or the call's load comes after the barrier and
//! sees CLOSING. The model checker cannot run membarrier; it checks the
//! protocol with what membarrier guarantees: a sequentially consistent fence
//! on the call side between the store and the load (see [`call_side_fence`]).
//! loom also approximates sequentially consistent loads and stores as
//! acquire/release; where the counts path relies on C11's total order of
//! sequentially consistent accesses, the model adds the fences that order
//! implies (see [`counted_side_fence`]).

use super::sync::{yield_now, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::*};

/// Flips an open handle's state to closing (see [`Gate::begin_close`]).
pub const CLOSING: u64 = 1 << 63;

/// Shared counts per gate; a thread picks one from its stack address.
pub const SHARDS: usize = 8;

/// One thread's announcement: the key of the handle its current call uses,
/// or 0. 128 bytes, because Intel's spatial prefetcher pairs 64-byte lines,
/// so neighbouring records on one 128-byte block would still make two
/// threads' caches fight.
#[repr(align(128))]
pub struct Record {
    /// The key of the handle this thread's current call uses, or 0.
    pub(super) active: AtomicUsize,
    /// Owned by a live thread (record bookkeeping, not part of the protocol).
    pub(super) owned: AtomicBool,
}

impl Record {
    /// A free record.
    #[cfg(not(loom))]
    pub const fn new() -> Self {
        Record { active: AtomicUsize::new(0), owned: AtomicBool::new(false) }
    }

    /// A free record.
    #[cfg(loom)]
    pub fn new() -> Self {
        Record { active: AtomicUsize::new(0), owned: AtomicBool::new(false) }
    }

    /// Announces a call on `key`; false if this record is already in use
    /// (a call nested in another: it must use the counts).
    #[inline(always)]
    pub fn enter(&self, key: usize) -> bool {
        if self.active.load(Relaxed) != 0 {
            return false;
        }
        self.active.store(key, Relaxed);
        call_side_fence();
        true
    }

    /// Ends the call: its reads of the handle happen before close sees 0.
    #[inline(always)]
    pub fn leave(&self) {
        self.active.store(0, Release);
    }

    /// Whether this record announces a call on `key`.
    #[inline]
    pub fn holds(&self, key: usize) -> bool {
        self.active.load(Acquire) == key
    }
}

impl Default for Record {
    fn default() -> Self {
        Self::new()
    }
}

/// Between a record store and the state load. In the library: only the
/// compiler is kept from reordering; close's membarrier stands in for the
/// CPU fence. In the model: the fence membarrier amounts to.
#[inline(always)]
fn call_side_fence() {
    #[cfg(not(loom))]
    core::sync::atomic::compiler_fence(SeqCst);
    #[cfg(loom)]
    super::sync::fence(SeqCst);
}

/// Between a count's increment and the state load. In the library: nothing,
/// since a sequentially consistent read-modify-write and a sequentially
/// consistent load are ordered by C11's single total order (and on x86 the
/// locked increment is a full barrier). loom approximates sequentially
/// consistent accesses as acquire/release, which would let the model reorder
/// the two; the fence gives back what C11 guarantees.
#[inline(always)]
fn counted_side_fence() {
    #[cfg(loom)]
    super::sync::fence(SeqCst);
}

/// One shared count, on its own cache line.
#[repr(align(64))]
pub struct Shard(pub(super) AtomicU32);

/// A handle's state word and shared counts.
#[repr(align(64))]
pub struct Gate {
    state: AtomicU64,
    counts: [Shard; SHARDS],
}

impl Gate {
    /// A gate in state `state`.
    pub fn new(state: u64) -> Self {
        Gate { state: AtomicU64::new(state), counts: core::array::from_fn(|_| Shard(AtomicU32::new(0))) }
    }

    /// Whether the handle is open as `key`, after the call announced itself.
    #[inline(always)]
    pub fn admits(&self, key: u64) -> bool {
        self.state.load(SeqCst) == key
    }

    /// The state word as it is.
    #[inline]
    pub fn state(&self) -> u64 {
        self.state.load(Acquire)
    }

    /// Sets the state: opens the handle as `key`, or frees it. Only the
    /// table does this, under its lock, when no call can use the handle.
    #[inline]
    pub fn set_state(&self, state: u64) {
        self.state.store(state, Release);
    }

    /// Announces a call in shard `shard` (the counts path).
    #[inline]
    pub fn count_enter(&self, shard: usize) -> &Shard {
        let s = &self.counts[shard % SHARDS];
        s.0.fetch_add(1, SeqCst);
        counted_side_fence();
        s
    }

    /// Ends a call announced with [`Gate::count_enter`]. Never below 0: in a
    /// child after fork(), the forking thread's own calls may end after the
    /// counts were cleared (see [`Gate::clear_counts`]).
    #[inline]
    pub fn count_leave(shard: &Shard) {
        let _ = shard.0.fetch_update(Release, Relaxed, |n| Some(n.saturating_sub(1)));
    }

    /// In a child after fork(), after [`Gate::clear_counts`]: counts again a
    /// call of the forking thread that goes on in the child.
    pub fn recount(shard: &Shard) {
        shard.0.fetch_add(1, Relaxed);
    }

    /// Starts closing the handle open as `key`: from now on no new call is
    /// admitted. False if it is not open as `key` (closed, closing, or
    /// another generation): exactly one of concurrent closes wins.
    pub fn begin_close(&self, key: u64) -> bool {
        let won = self.state.compare_exchange(key, key ^ CLOSING, SeqCst, Relaxed).is_ok();
        counted_side_fence(); // the close side's half of the same C11 guarantee
        won
    }

    /// After [`Gate::begin_close`]: runs `barrier`, then waits until no
    /// record in `records` announces a call on `key` and every count is 0.
    /// Calls in flight are single system calls, so the wait is short.
    pub fn quiesce(&self, key: u64, records: &[Record], barrier: impl FnOnce()) {
        barrier();
        for rec in records {
            while rec.holds(key as usize) {
                yield_now();
            }
        }
        for shard in &self.counts {
            while shard.0.load(SeqCst) != 0 {
                yield_now();
            }
        }
    }

    /// In a child after fork(): the threads that held counts do not exist.
    pub fn clear_counts(&self) {
        for shard in &self.counts {
            shard.0.store(0, Relaxed);
        }
    }
}
