//! The handle table: what a C `xendevicemodel_handle *` really is.
//!
//! C callers get a *key*, never a pointer to memory: an encoded slot index and
//! generation with a tag in the top byte that no user-space pointer has. A key
//! is checked on every call, so use after close, double close, and pointers
//! that never came from `xendevicemodel_open` are refused with `EBADF` instead
//! of touching freed memory or a recycled descriptor.
//!
//! Each slot has one atomic state word: generation, an OPEN and a CLOSING flag,
//! and the number of calls in flight. A call takes a reference with one atomic
//! add and drops it with one subtraction; there is no lock on the
//! call path, and any number of threads may use one handle at once.
//! `close` sets CLOSING (new calls fail with `EBADF`), waits for calls in
//! flight to finish, and only then closes the descriptor, so a racing call
//! either completes normally or fails cleanly.
//!
//! Slots live in chunks that are allocated on demand and never freed, so a
//! stale key always points at valid memory. Opening and closing take a small
//! spin lock (not the call path); a `pthread_atfork` handler holds it across
//! `fork()` so the child never inherits it locked.

use crate::dm::DeviceModel;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use nix::errno::Errno;

const CHUNK: usize = 256;
const MAX_CHUNKS: usize = 4096;
/// The table holds at most this many open handles (over a million).
pub const MAX_HANDLES: usize = CHUNK * MAX_CHUNKS;

const REFS_MASK: u64 = (1 << 24) - 1;
const OPEN: u64 = 1 << 24;
const CLOSING: u64 = 1 << 25;
const GEN_SHIFT: u32 = 32;

/// Top byte of every key: a non-canonical x86_64 address, so no real pointer
/// (heap, stack or a stale Xen handle) can be mistaken for a key.
const KEY_TAG: u64 = 0xd5 << 56;
const KEY_INDEX_BITS: u32 = 24;

struct Slot {
    state: AtomicU64,
    dm: UnsafeCell<Option<DeviceModel>>,
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
    while ALLOC.locked.compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed).is_err() {
        std::thread::yield_now();
    }
}
fn unlock() {
    ALLOC.locked.store(false, Ordering::Release);
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

fn slot(index: usize) -> Option<&'static Slot> {
    let chunk = CHUNKS.get(index / CHUNK)?.load(Ordering::Acquire);
    // SAFETY: chunks are never freed once published.
    (!chunk.is_null()).then(|| unsafe { &(*chunk)[index % CHUNK] })
}

fn encode(index: usize, gen: u32) -> usize {
    (KEY_TAG | ((gen as u64) << KEY_INDEX_BITS) | (index as u64 + 1)) as usize
}

fn decode(key: usize) -> Option<(usize, u32)> {
    let key = key as u64;
    if key & (0xff << 56) != KEY_TAG {
        return None;
    }
    let index = (key & ((1 << KEY_INDEX_BITS) - 1)).checked_sub(1)? as usize;
    let gen = ((key >> KEY_INDEX_BITS) & 0xffff_ffff) as u32;
    Some((index, gen))
}

fn gen_of(state: u64) -> u32 {
    (state >> GEN_SHIFT) as u32
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
        if c.load(Ordering::Relaxed).is_null() {
            let chunk: Box<Chunk> =
                Box::new(core::array::from_fn(|_| Slot { state: AtomicU64::new(0), dm: UnsafeCell::new(None) }));
            c.store(Box::into_raw(chunk), Ordering::Release);
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
    let gen = gen_of(s.state.load(Ordering::Relaxed));
    // SAFETY: the slot is free (not OPEN): nobody else touches `dm`.
    unsafe { *s.dm.get() = Some(dm) };
    // An add, not a store: stale-key lookups may hold transient counts.
    s.state.fetch_add(OPEN, Ordering::Release);
    Ok(encode(index, gen))
}

/// A reference to an open handle, held for the duration of one call.
pub struct Guard {
    slot: &'static Slot,
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
        self.slot.state.fetch_sub(1, Ordering::Release);
    }
}

/// Looks a key up for one call: `EBADF` unless it names an open handle.
///
/// One atomic add takes the reference; if the slot turns out not to be this
/// key's open handle, the add is undone (stale keys may thus bump a slot's
/// count for a moment, which `remove` simply waits out).
#[inline]
pub fn get(key: usize) -> Result<Guard, Errno> {
    let (index, gen) = decode(key).ok_or(Errno::EBADF)?;
    let s = slot(index).ok_or(Errno::EBADF)?;
    let old = s.state.fetch_add(1, Ordering::Acquire);
    if old & !REFS_MASK == ((gen as u64) << GEN_SHIFT) | OPEN && old & REFS_MASK != REFS_MASK {
        return Ok(Guard { slot: s });
    }
    s.state.fetch_sub(1, Ordering::Release);
    Err(Errno::EBADF)
}

/// Takes a handle out of the table: new calls fail with `EBADF` at once, and
/// the device model is returned once no call is using it any more.
pub fn remove(key: usize) -> Result<DeviceModel, Errno> {
    let (index, gen) = decode(key).ok_or(Errno::EBADF)?;
    let s = slot(index).ok_or(Errno::EBADF)?;
    let mut cur = s.state.load(Ordering::Relaxed);
    loop {
        if gen_of(cur) != gen || cur & (OPEN | CLOSING) != OPEN {
            return Err(Errno::EBADF);
        }
        match s.state.compare_exchange_weak(cur, cur | CLOSING, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => break,
            Err(now) => cur = now,
        }
    }
    // Calls in flight are single ioctls: wait for them to drain.
    while s.state.load(Ordering::Acquire) & REFS_MASK != 0 {
        std::thread::yield_now();
    }
    // SAFETY: CLOSING is ours and no reference remains: exclusive access.
    let dm = unsafe { (*s.dm.get()).take() }.expect("open slots hold a device model");
    // A new generation makes every copy of the old key stale. An atomic add
    // (wrapping past 2^32 generations) keeps any transient stale-key counts.
    s.state.fetch_add((1 << GEN_SHIFT) - (OPEN | CLOSING), Ordering::Release);
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
        assert_ne!(k, 0);
        let on_stack = 0u8;
        assert_eq!(decode(&on_stack as *const u8 as usize), None);
        assert_eq!(decode(0), None);
        assert_eq!(decode(KEY_TAG as usize), None); // index 0 is never issued
    }

    #[test]
    fn unknown_keys_are_ebadf() {
        assert_eq!(get(encode(MAX_HANDLES + 5, 0)).err(), Some(Errno::EBADF));
        assert_eq!(get(0xdead_beef).err(), Some(Errno::EBADF));
        assert_eq!(remove(0x1234).err(), Some(Errno::EBADF));
    }
}
