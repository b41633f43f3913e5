//! The handle table: what a C `xendevicemodel_handle *` really is.
//!
//! C callers get a *key*, never a pointer to memory: a slot index and a
//! generation under a tag in the top byte that no user-space pointer has. A
//! key is checked on every call, so use after close, double close, and
//! pointers that never came from `xendevicemodel_open` are refused with
//! `EBADF` instead of touching freed memory or a recycled descriptor.
//!
//! Each slot has a [`Gate`] (liveness.rs) whose state word is the key itself
//! while the handle is open, so a call checks tag, index, generation and
//! openness with one comparison; the key with `CLOSING` flipped while it
//! closes; the slot's next generation (below 2^32, never a key) while free.
//!
//! Slots live in chunks that are allocated on demand and never freed, so a
//! stale key always points at valid memory. Open, the last step of close, and
//! the walk of `xentoolcore_restrict_all` take the table lock; so does
//! process.rs around fork(), so a child never sees a half-opened or
//! half-released handle. No user code (logger callbacks) runs under it.

use crate::liveness::{self, Gate, Pin, CLOSING};
use crate::lock::SpinLock;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicPtr, Ordering::*};
use xendevicemodel::{DeviceModel, Errno};

const CHUNK: usize = 64;
const MAX_CHUNKS: usize = 16384;
/// The table holds at most this many open handles (over a million).
pub const MAX_HANDLES: usize = CHUNK * MAX_CHUNKS;

/// How keys look, which depends on the pointer width (a key travels as a
/// `xendevicemodel_handle *`). On 64-bit targets the tag is the top byte: a
/// non-canonical x86_64 address and a kernel address on arm64, so no real
/// pointer (heap, stack, a stale handle of Xen's library) can be mistaken
/// for a key. On 32-bit targets every address may be a user pointer, so the
/// tag is in the two low bits instead: no pointer to anything aligned (a
/// heap block, a stale Xen handle) has them set; a byte pointer that does
/// still has to equal an open handle's key exactly.
#[cfg(target_pointer_width = "64")]
mod layout {
    /// The tag's bits and value.
    pub const TAG_MASK: u64 = 0xff << 56;
    pub const TAG: u64 = 0xd5 << 56;
    /// Flipped in the tag of traced keys (0xd4).
    pub const TRACED: u64 = 1 << 56;
    /// Where the slot index starts; the generation follows it.
    pub const INDEX_SHIFT: u32 = 0;
    /// Generations wrap at this mask.
    pub const GEN_MASK: u32 = u32::MAX;
    /// Set in a free slot's state word (besides the next generation); none here.
    pub const FREE: u64 = 0;
}
#[cfg(target_pointer_width = "32")]
mod layout {
    pub const TAG_MASK: u64 = 0b11;
    pub const TAG: u64 = 0b11;
    pub const TRACED: u64 = 0b10;
    pub const INDEX_SHIFT: u32 = 2;
    /// 10 bits are left for the generation.
    pub const GEN_MASK: u32 = (1 << (32 - INDEX_SHIFT - super::KEY_INDEX_BITS)) - 1;
    /// Above every 32-bit key: a free slot never matches one.
    pub const FREE: u64 = 1 << 32;
}
use layout::{FREE, GEN_MASK, INDEX_SHIFT, TAG as KEY_TAG, TAG_MASK, TRACED};

/// Slot index bits of a key.
const KEY_INDEX_BITS: u32 = 20;
const GEN_SHIFT: u32 = INDEX_SHIFT + KEY_INDEX_BITS;
const _: () = assert!(MAX_HANDLES == 1 << KEY_INDEX_BITS);
const _: () = assert!(!is_key(KEY_TAG ^ CLOSING), "closing states must not look like keys");

/// Whether `v` is shaped like a key.
const fn is_key(v: u64) -> bool {
    v & TAG_MASK == KEY_TAG && (usize::BITS == 64 || v >> 32 == 0)
}

/// A key: what the C caller holds.
pub type Key = u64;

struct Slot {
    gate: Gate,
    dm: UnsafeCell<Option<DeviceModel>>,
    /// Open handles form a list, newest first, in the order
    /// `xentoolcore_restrict_all` visits them (as Xen's library's handles
    /// are registered with libxentoolcore). Under the table lock.
    newer: UnsafeCell<u32>,
    older: UnsafeCell<u32>,
}

// SAFETY: `dm` is written only under the table lock, by open (before the
// key is published) and by close (after CLOSING is set and every call has
// left); calls read it while pinned, which excludes both. The list links are
// only touched under the table lock.
unsafe impl Sync for Slot {}

const NIL: u32 = u32::MAX;

type Chunk = [Slot; CHUNK];

static CHUNKS: [AtomicPtr<Chunk>; MAX_CHUNKS] = [const { AtomicPtr::new(core::ptr::null_mut()) }; MAX_CHUNKS];

/// Bookkeeping under the table lock.
struct Alloc {
    /// Free slots. Its capacity always covers every slot ever made, so
    /// giving one back never allocates.
    free: Vec<u32>,
    next: u32,
    /// The newest open handle's slot, or NIL.
    newest: u32,
}
static TABLE: SpinLock<Alloc> = SpinLock::new(Alloc { free: Vec::new(), next: 0, newest: NIL });

#[inline]
fn slot(index: usize) -> Option<&'static Slot> {
    let chunk = CHUNKS.get(index / CHUNK)?.load(Acquire);
    // SAFETY: chunks are never freed once published.
    (!chunk.is_null()).then(|| unsafe { &(*chunk)[index % CHUNK] })
}

fn encode(index: usize, gen: u32) -> Key {
    KEY_TAG | (((gen & GEN_MASK) as u64) << GEN_SHIFT) | ((index as u64) << INDEX_SHIFT)
}

/// The slot a key names, if it is shaped like a key at all.
#[inline(always)]
fn decode(key: Key) -> Option<usize> {
    if key & TAG_MASK != KEY_TAG {
        return None;
    }
    Some(((key >> INDEX_SHIFT) & (MAX_HANDLES as u64 - 1)) as usize)
}

/// The key a tracing process gives the caller for `key`. Traced keys have
/// another tag, so they miss the call path's key check and take the slow
/// path, which traces them: calls of processes that do not trace pay nothing
/// for the trace.
pub fn traced(key: Key) -> Key {
    key ^ TRACED
}

/// The key behind a key given out by [`traced`], if `key` is one.
pub fn untraced(key: Key) -> Option<Key> {
    is_key(key ^ TRACED).then_some(key ^ TRACED)
}

fn gen_of(key: Key) -> u32 {
    ((key >> GEN_SHIFT) as u32) & GEN_MASK
}

/// The state word of a free slot whose next key has generation `gen`.
fn free_state(gen: u32) -> u64 {
    FREE | (gen & GEN_MASK) as u64
}

/// Whether a slot's state is that of a handle being closed.
fn is_closing(state: u64) -> bool {
    is_key(state ^ CLOSING)
}

/// Finds a free slot, growing the table by one chunk when needed:
/// `ENOMEM` when that allocation fails, `EMFILE` when the table is full.
fn alloc_slot(a: &mut Alloc) -> Result<usize, Errno> {
    if let Some(i) = a.free.pop() {
        return Ok(i as usize);
    }
    let i = a.next as usize;
    if i >= MAX_HANDLES {
        return Err(Errno::EMFILE);
    }
    let c = &CHUNKS[i / CHUNK];
    if c.load(Relaxed).is_null() {
        // The free list must be able to hold this chunk's slots without
        // allocating later (close cannot fail for want of memory).
        a.free.try_reserve(a.next as usize + CHUNK).map_err(|_| Errno::ENOMEM)?;
        c.store(new_chunk().ok_or(Errno::ENOMEM)?, Release);
    }
    a.next += 1;
    Ok(i)
}

/// A chunk of free slots, or `None` when out of memory (no abort).
fn new_chunk() -> Option<*mut Chunk> {
    let layout = std::alloc::Layout::new::<Chunk>();
    // SAFETY: the layout is not zero-sized; every slot is written before the
    // chunk is published.
    unsafe {
        let p = std::alloc::alloc(layout).cast::<Slot>();
        if p.is_null() {
            return None;
        }
        for i in 0..CHUNK {
            p.add(i).write(Slot {
                gate: Gate::new(free_state(0)),
                dm: UnsafeCell::new(None),
                newer: UnsafeCell::new(NIL),
                older: UnsafeCell::new(NIL),
            });
        }
        Some(p.cast())
    }
}

/// Runs `open` under the table lock and stores the device model it makes:
/// its key (never 0), or `open`'s error. A fork() in another thread waits, so
/// a child sees the handle either not opened at all or open. `open` must not
/// call user code.
pub fn insert<E>(open: impl FnOnce() -> Result<DeviceModel, E>) -> Result<Result<Key, (Errno, DeviceModel)>, E> {
    let mut a = TABLE.lock();
    let dm = open()?;
    let index = match alloc_slot(&mut a) {
        Ok(i) => i,
        Err(e) => return Ok(Err((e, dm))),
    };
    let s = slot(index).expect("allocated slots exist");
    let key = encode(index, s.gate.state() as u32 & GEN_MASK);
    // SAFETY: under the table lock, and the slot is free: nobody else touches it.
    unsafe {
        *s.dm.get() = Some(dm);
        *s.newer.get() = NIL;
        *s.older.get() = a.newest;
        if let Some(old) = slot(a.newest as usize) {
            *old.newer.get() = index as u32;
        }
    }
    a.newest = index as u32;
    s.gate.set_state(key);
    Ok(Ok(key))
}

/// Runs `f` on the device model of the handle `key` names, keeping the
/// handle alive meanwhile; `closed` instead, unless `key` names an open handle.
#[inline(always)]
pub fn with<R>(key: Key, f: impl FnOnce(&DeviceModel) -> R, closed: impl FnOnce() -> R) -> R {
    let Some(s) = decode(key).and_then(slot) else { return closed() };
    let Some(_pin) = Pin::enter(&s.gate, key) else { return closed() };
    // SAFETY: admitted while open: close waits for `_pin` before taking the
    // model out, and open slots always hold one.
    let dm = unsafe { (*s.dm.get()).as_ref().unwrap_unchecked() };
    f(dm)
}

/// Takes a handle out of the table: new calls fail with `EBADF` at once, and
/// once no call uses it any more, `release` gets its device model, under the
/// table lock (so a fork() sees the handle either open or released); what it
/// returns is returned.
///
/// `EDEADLK` (and the handle stays open) if this thread is itself inside a
/// call on the handle, i.e. closing it from that call's logger callback.
pub fn remove<R>(key: Key, release: impl FnOnce(DeviceModel) -> R) -> Result<R, Errno> {
    let index = decode(key).ok_or(Errno::EBADF)?;
    let s = slot(index).ok_or(Errno::EBADF)?;
    if liveness::in_call(key) {
        return Err(Errno::EDEADLK);
    }
    if !s.gate.begin_close(key) {
        return Err(Errno::EBADF);
    }
    liveness::wait_unused(&s.gate, key);
    let mut a = TABLE.lock();
    // SAFETY: under the table lock, CLOSING is ours and no call remains.
    let dm = unsafe { (*s.dm.get()).take() }.expect("open slots hold a device model");
    // SAFETY: list links are only touched under the table lock.
    unsafe {
        let (newer, older) = (*s.newer.get(), *s.older.get());
        match slot(newer as usize) {
            Some(n) => *n.older.get() = older,
            None => a.newest = older,
        }
        if let Some(o) = slot(older as usize) {
            *o.newer.get() = newer;
        }
    }
    let r = release(dm);
    // A new generation makes every copy of the old key stale.
    s.gate.set_state(free_state(gen_of(key).wrapping_add(1)));
    a.free.push(index as u32); // within the reserved capacity: never allocates
    Ok(r)
}

/// Runs `f` on every open handle, newest first (the order in which Xen's
/// library's handles are registered with libxentoolcore), stopping at the
/// first error. Each handle is used as a call uses it (pinned), so a close
/// racing with this waits, and `f` may call user code (a logger), which may
/// even close the handle (`EDEADLK`) or open others. Allocates nothing: a
/// fork() in the middle leaves the child nothing to free.
pub fn for_each_open<E>(mut f: impl FnMut(&DeviceModel) -> Result<(), E>) -> Result<(), E> {
    let mut a = TABLE.lock();
    let mut next = a.newest;
    while let Some(s) = slot(next as usize) {
        let key = s.gate.state();
        // SAFETY: under the table lock: the slot is linked, so open or closing.
        let older = unsafe { *s.older.get() };
        // A handle being closed is skipped (its calls are refused too).
        let Some(pin) = Pin::enter(&s.gate, key) else {
            next = older;
            continue;
        };
        drop(a);
        // SAFETY: pinned while open, as in `with`.
        let r = f(unsafe { (*s.dm.get()).as_ref().unwrap_unchecked() });
        a = TABLE.lock();
        // Still linked while pinned (close unlinks only after every pin is
        // gone, under this lock): its `older` is current.
        // SAFETY: under the table lock.
        next = unsafe { *s.older.get() };
        drop(pin);
        r?;
    }
    Ok(())
}

/// `pthread_atfork` prepare: the table lock is held across fork().
pub(crate) fn fork_prepare() {
    TABLE.acquire();
}

/// `pthread_atfork` parent.
pub(crate) fn fork_parent() {
    // SAFETY: taken by fork_prepare.
    unsafe { TABLE.release() };
}

/// `pthread_atfork` child: a close that was waiting for calls in the parent
/// has no thread here to finish it, and the calls it waited for have none
/// either. Such handles are open again in the child, as inherited handles
/// (calls refused, close releases the child's copy).
pub(crate) fn fork_child() {
    // SAFETY: fork_prepare took the lock and only this thread runs.
    let next = unsafe { TABLE.locked_value() }.next as usize;
    for s in (0..next).filter_map(slot) {
        s.gate.clear_counts();
        let state = s.gate.state();
        if is_closing(state) {
            s.gate.set_state(state ^ CLOSING);
        }
    }
    // SAFETY: taken by fork_prepare.
    unsafe { TABLE.release() };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_reject_pointers() {
        let k = encode(5, 7);
        assert_eq!(decode(k), Some(5));
        assert_eq!(gen_of(k), 7);
        assert_ne!(encode(0, 0), 0);
        let aligned = 0u32;
        assert_eq!(decode(&aligned as *const u32 as usize as u64), None);
        assert_eq!(decode(Box::into_raw(Box::new(0u64)) as usize as u64), None);
        assert_eq!(decode(0), None);
        #[cfg(target_pointer_width = "64")]
        {
            let byte = 0u8;
            assert_eq!(decode(&byte as *const u8 as usize as u64), None);
        }
        for gen in [0, 1, 7, u32::MAX] {
            let k = encode(MAX_HANDLES - 1, gen);
            assert!(is_key(k) && !is_key(free_state(gen)) && !is_closing(free_state(gen)), "{k:#x}");
            assert_eq!(gen_of(k), gen & GEN_MASK);
            assert!(k as usize as u64 == k, "keys fit a pointer");
        }
        assert!(is_closing(k ^ CLOSING) && !is_closing(k) && !is_closing(8));
        assert_eq!(decode(traced(k)), None, "traced keys miss the call path's check");
        assert_eq!(untraced(traced(k)), Some(k));
        assert_eq!(untraced(k), None);
    }

    #[test]
    fn unknown_keys_are_ebadf() {
        for key in [encode(MAX_HANDLES + 5, 0), encode(MAX_HANDLES - 1, 0), 0xdead_beef] {
            assert!(!with(key, |_| true, || false), "{key:#x} was taken for an open handle");
        }
        assert_eq!(remove(0x1234, |_| ()).err(), Some(Errno::EBADF));
    }
}
