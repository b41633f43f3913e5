//! The handle table: what a C `xendevicemodel_handle *` really is.
//!
//! C callers get a *key*, never a pointer to memory: an encoded slot index and
//! generation with a tag in the top byte that no user-space pointer has. A key
//! is checked on every call, so use after close, double close, and pointers
//! that never came from `xendevicemodel_open` are refused with `EBADF` instead
//! of touching freed memory or a recycled descriptor.
//!
//! Each slot has a state word (generation, OPEN and CLOSING flags) that only
//! open and close write, and counts of the calls in flight, sharded over
//! cache lines so that threads using one handle at once do not fight over one
//! line. A call increments its shard, then checks the state (two sequentially
//! consistent steps; `close` does the mirror image: set CLOSING, then read the
//! shards), so either the call sees CLOSING and backs out with `EBADF`, or
//! `close` sees the call and waits for it. The descriptor is closed only once
//! no call is using it. There is no lock on the call path.
//!
//! Slots live in chunks that are allocated on demand and never freed, so a
//! stale key always points at valid memory. Opening and closing take a small
//! spin lock (not the call path); a `pthread_atfork` handler holds it across
//! `fork()` so the child never inherits it locked.

use crate::dm::DeviceModel;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering::*};
use nix::errno::Errno;

const CHUNK: usize = 64;
const MAX_CHUNKS: usize = 16384;
/// The table holds at most this many open handles (over a million).
pub const MAX_HANDLES: usize = CHUNK * MAX_CHUNKS;

const OPEN: u64 = 1;
const CLOSING: u64 = 2;
const GEN_SHIFT: u32 = 32;

/// Top byte of every key: a non-canonical x86_64 address, so no real pointer
/// (heap, stack or a stale Xen handle) can be mistaken for a key.
const KEY_TAG: u64 = 0xd5 << 56;
const KEY_INDEX_BITS: u32 = 24;

/// Reference-count shards per slot; a thread's shard comes from its stack.
const SHARDS: usize = 8;

#[repr(align(64))]
struct Shard(AtomicU32);

#[repr(align(64))]
struct Slot {
    /// Generation and flags: read on every call, written only by open/close.
    state: AtomicU64,
    dm: UnsafeCell<Option<DeviceModel>>,
    refs: [Shard; SHARDS],
}

// SAFETY: `dm` is written only by the thread that owns the slot (during open,
// before OPEN is published, or during close, after CLOSING is set and every
// reference is gone); readers hold a reference, which excludes both.
unsafe impl Sync for Slot {}

type Chunk = [Slot; CHUNK];

static CHUNKS: [AtomicPtr<Chunk>; MAX_CHUNKS] = [const { AtomicPtr::new(core::ptr::null_mut()) }; MAX_CHUNKS];

/// Free-slot bookkeeping, touched only by open and close.
struct Alloc {
    free: Vec<u32>,
    next: u32,
}
struct AllocLock {
    locked: AtomicBool,
    inner: UnsafeCell<Alloc>,
}
// SAFETY: `inner` is accessed only while `locked` is held.
unsafe impl Sync for AllocLock {}
static ALLOC: AllocLock =
    AllocLock { locked: AtomicBool::new(false), inner: UnsafeCell::new(Alloc { free: Vec::new(), next: 0 }) };

fn lock() {
    while ALLOC.locked.compare_exchange_weak(false, true, Acquire, Relaxed).is_err() {
        std::thread::yield_now();
    }
}
fn unlock() {
    ALLOC.locked.store(false, Release);
}
fn with_alloc<R>(f: impl FnOnce(&mut Alloc) -> R) -> R {
    lock();
    // SAFETY: the lock is held.
    let r = f(unsafe { &mut *ALLOC.inner.get() });
    unlock();
    r
}

pub(crate) fn fork_prepare() {
    lock();
}
pub(crate) fn fork_parent() {
    unlock();
}
pub(crate) fn fork_child() {
    unlock();
}

#[inline]
fn slot(index: usize) -> Option<&'static Slot> {
    let chunk = CHUNKS.get(index / CHUNK)?.load(Acquire);
    // SAFETY: chunks are never freed once published.
    (!chunk.is_null()).then(|| unsafe { &(*chunk)[index % CHUNK] })
}

fn encode(index: usize, gen: u32) -> usize {
    (KEY_TAG | ((gen as u64) << KEY_INDEX_BITS) | index as u64) as usize
}

#[inline]
fn decode(key: usize) -> Option<(usize, u32)> {
    let key = key as u64;
    if key & (0xff << 56) != KEY_TAG {
        return None;
    }
    Some(((key & ((1 << KEY_INDEX_BITS) - 1)) as usize, (key >> KEY_INDEX_BITS) as u32))
}

fn gen_of(state: u64) -> u32 {
    (state >> GEN_SHIFT) as u32
}

/// This thread's shard: threads' stacks lie megabytes apart (glibc gives each
/// 8 MiB), so bits above 2^23 of a stack address tell threads apart for free.
/// Only speed depends on the choice; a guard remembers the shard it used.
#[inline(always)]
fn my_shard(s: &Slot) -> &AtomicU32 {
    let marker = 0u8;
    let sp = core::ptr::addr_of!(marker) as usize;
    &s.refs[(sp >> 23) % SHARDS].0
}

/// Finds a free slot, growing the table by one chunk when needed.
fn alloc_slot() -> Result<usize, Errno> {
    with_alloc(|a| {
        if let Some(i) = a.free.pop() {
            return Ok(i as usize);
        }
        let i = a.next as usize;
        if i >= MAX_HANDLES {
            return Err(Errno::EMFILE);
        }
        let c = &CHUNKS[i / CHUNK];
        if c.load(Relaxed).is_null() {
            let chunk: Box<Chunk> = Box::new(core::array::from_fn(|_| Slot {
                state: AtomicU64::new(0),
                dm: UnsafeCell::new(None),
                refs: core::array::from_fn(|_| Shard(AtomicU32::new(0))),
            }));
            c.store(Box::into_raw(chunk), Release);
        }
        a.next += 1;
        Ok(i)
    })
}

/// Stores an open device model in the table and returns its key (never 0).
pub fn insert(dm: DeviceModel) -> Result<usize, (Errno, DeviceModel)> {
    let index = match alloc_slot() {
        Ok(i) => i,
        Err(e) => return Err((e, dm)),
    };
    let s = slot(index).expect("allocated slots exist");
    let gen = gen_of(s.state.load(Relaxed));
    // SAFETY: the slot is free (not OPEN): nobody else touches `dm`.
    unsafe { *s.dm.get() = Some(dm) };
    s.state.store(((gen as u64) << GEN_SHIFT) | OPEN, Release);
    Ok(encode(index, gen))
}

/// A reference to an open handle, held for the duration of one call.
pub struct Guard {
    slot: &'static Slot,
    shard: &'static AtomicU32,
}

impl core::ops::Deref for Guard {
    type Target = DeviceModel;
    #[inline]
    fn deref(&self) -> &DeviceModel {
        // SAFETY: while a reference is held the slot stays OPEN, and an OPEN
        // slot always holds its device model (close waits for us to take it).
        unsafe { (*self.slot.dm.get()).as_ref().unwrap_unchecked() }
    }
}

impl Drop for Guard {
    #[inline]
    fn drop(&mut self) {
        self.shard.fetch_sub(1, Release);
    }
}

/// Looks a key up for one call: `EBADF` unless it names an open handle.
#[inline]
pub fn get(key: usize) -> Result<Guard, Errno> {
    let (index, gen) = decode(key).ok_or(Errno::EBADF)?;
    let s = slot(index).ok_or(Errno::EBADF)?;
    let shard = my_shard(s);
    // Announce the call, then check the handle (see the module comment).
    shard.fetch_add(1, SeqCst);
    if s.state.load(SeqCst) == ((gen as u64) << GEN_SHIFT) | OPEN {
        return Ok(Guard { slot: s, shard });
    }
    shard.fetch_sub(1, Release);
    Err(Errno::EBADF)
}

/// Takes a handle out of the table: new calls fail with `EBADF` at once, and
/// the device model is returned once no call is using it any more.
pub fn remove(key: usize) -> Result<DeviceModel, Errno> {
    let (index, gen) = decode(key).ok_or(Errno::EBADF)?;
    let s = slot(index).ok_or(Errno::EBADF)?;
    let open = ((gen as u64) << GEN_SHIFT) | OPEN;
    s.state.compare_exchange(open, open | CLOSING, SeqCst, Relaxed).map_err(|_| Errno::EBADF)?;
    // Calls in flight are single ioctls: wait for them to drain.
    for shard in &s.refs {
        while shard.0.load(SeqCst) != 0 {
            std::thread::yield_now();
        }
    }
    // SAFETY: CLOSING is ours and no reference remains: exclusive access.
    let dm = unsafe { (*s.dm.get()).take() }.expect("open slots hold a device model");
    // A new generation makes every copy of the old key stale.
    s.state.store((gen.wrapping_add(1) as u64) << GEN_SHIFT, Release);
    with_alloc(|a| a.free.push(index as u32));
    Ok(dm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_reject_pointers() {
        let k = encode(5, 7);
        assert_eq!(decode(k), Some((5, 7)));
        assert_ne!(encode(0, 0), 0);
        let on_stack = 0u8;
        assert_eq!(decode(&on_stack as *const u8 as usize), None);
        assert_eq!(decode(Box::into_raw(Box::new(0u64)) as usize), None);
        assert_eq!(decode(0), None);
    }

    #[test]
    fn unknown_keys_are_ebadf() {
        assert_eq!(get(encode(MAX_HANDLES + 5, 0)).err(), Some(Errno::EBADF));
        assert_eq!(get(encode(MAX_HANDLES - 1, 0)).err(), Some(Errno::EBADF));
        assert_eq!(get(0xdead_beef).err(), Some(Errno::EBADF));
        assert_eq!(remove(0x1234).err(), Some(Errno::EBADF));
    }

    #[test]
    fn slots_are_cache_line_separated() {
        assert_eq!(core::mem::align_of::<Slot>(), 64);
        assert_eq!(core::mem::size_of::<Shard>(), 64);
    }
}
