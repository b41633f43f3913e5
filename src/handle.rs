//! The handle table: what a C `xendevicemodel_handle *` really is.
//!
//! C callers get a *key*, never a pointer to memory: an encoded slot index and
//! generation with a tag in the top byte that no user-space pointer has. A key
//! is checked on every call, so use after close, double close, and pointers
//! that never came from `xendevicemodel_open` are refused with `EBADF` instead
//! of touching freed memory or a recycled descriptor.
//!
//! Each slot has a state word that only open and close write: the key itself
//! while the handle is open, so a call checks tag, index, generation and
//! openness with one comparison. A call first announces itself, then checks
//! the state; `close` marks the state CLOSING, then waits for announced calls
//! to finish, so either a call sees CLOSING and backs out with `EBADF`, or
//! close sees the call and waits for it. The descriptor is closed only once no
//! call is using it. There is no lock on the call path.
//!
//! A call announces itself in its thread's hazard record (hazard.rs: a plain
//! store; close pays for the ordering with membarrier). Where that is not
//! possible it raises a count instead, sharded over cache lines so that
//! threads using one handle at once do not fight over one line.
//!
//! Slots live in chunks that are allocated on demand and never freed, so a
//! stale key always points at valid memory. Opening and closing take a small
//! spin lock (not the call path); a `pthread_atfork` handler holds it across
//! `fork()` so the child never inherits it locked.

use crate::dm::DeviceModel;
use crate::hazard::{self, Record};
use crate::spin::SpinLock;
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicU64, Ordering::*};
use nix::errno::Errno;

const CHUNK: usize = 64;
const MAX_CHUNKS: usize = 16384;
/// The table holds at most this many open handles (over a million).
pub const MAX_HANDLES: usize = CHUNK * MAX_CHUNKS;

/// Top byte of every key: a non-canonical x86_64 address (and above aarch64's
/// 48-bit user space), so no real pointer (heap, stack or a stale Xen handle)
/// can be mistaken for a key.
#[cfg(target_pointer_width = "64")]
const KEY_TAG: u64 = 0xd5 << 56;
/// Which bits of a key hold [`KEY_TAG`].
#[cfg(target_pointer_width = "64")]
const KEY_TAG_MASK: u64 = 0xff << 56;
/// A 64-bit key is `KEY_TAG | generation << KEY_INDEX_BITS | index`.
#[cfg(target_pointer_width = "64")]
const KEY_INDEX_SHIFT: u32 = 0;
/// On 32-bit targets every address may be a user pointer, so the tag is in
/// the two low bits instead: no pointer to anything aligned (a heap block, a
/// stale Xen handle) has them set. A 32-bit key is
/// `generation << (KEY_INDEX_BITS + 2) | index << 2 | KEY_TAG`, leaving 10
/// bits of generation.
#[cfg(target_pointer_width = "32")]
const KEY_TAG: u64 = 0b11;
/// Which bits of a key hold [`KEY_TAG`].
#[cfg(target_pointer_width = "32")]
const KEY_TAG_MASK: u64 = 0b11;
/// Where the slot index starts in a 32-bit key.
#[cfg(target_pointer_width = "32")]
const KEY_INDEX_SHIFT: u32 = 2;
const KEY_INDEX_BITS: u32 = 20;
/// Where the generation starts in a key.
const KEY_GEN_SHIFT: u32 = KEY_INDEX_SHIFT + KEY_INDEX_BITS;
/// Generations that fit in a key (they wrap around).
const KEY_GEN_MASK: u32 = if usize::BITS == 32 { (1 << (32 - KEY_GEN_SHIFT)) - 1 } else { u32::MAX };
const _: () = assert!(MAX_HANDLES == 1 << KEY_INDEX_BITS);

/// A slot's state word is its key while the handle is open, the key with this
/// bit flipped while it closes, and [`FREE`] with the next generation (never a
/// key) while it is free. So one comparison with the caller's key checks tag,
/// index, generation and openness at once.
const CLOSING: u64 = 1 << 63;
/// Set in the state word of a free slot, above the next generation: no key
/// has it (64-bit keys carry the tag in their top byte, 32-bit keys have 32
/// bits), so a stale key never matches a free slot.
const FREE: u64 = 1 << 32;

/// Reference-count shards per slot; a thread's shard comes from its stack.
const SHARDS: usize = 8;

/// Cache-line aligned, which also keeps the low bit of its address free (see `Pin`).
#[repr(align(64))]
struct Shard(AtomicU32);

#[repr(align(64))]
struct Slot {
    /// Key, closing key or next generation (see CLOSING): read on every
    /// call, written only by open and close.
    state: AtomicU64,
    dm: UnsafeCell<Option<DeviceModel>>,
    refs: [Shard; SHARDS],
}

// SAFETY: `dm` is written only by the thread that owns the slot (during open,
// before the key is published, or during close, after CLOSING is set and every
// call has left); calls are announced (hazard record or count), which excludes both.
unsafe impl Sync for Slot {}

type Chunk = [Slot; CHUNK];

static CHUNKS: [AtomicPtr<Chunk>; MAX_CHUNKS] = [const { AtomicPtr::new(core::ptr::null_mut()) }; MAX_CHUNKS];

/// Free-slot bookkeeping, touched only by open and close.
struct Alloc {
    free: Vec<u32>,
    next: u32,
}
static ALLOC: SpinLock<Alloc> = SpinLock::new(Alloc { free: Vec::new(), next: 0 });

/// `pthread_atfork` prepare: neither lock may be inherited held.
pub(crate) fn fork_prepare() {
    ALLOC.acquire();
    hazard::fork_prepare();
}
/// `pthread_atfork` parent.
pub(crate) fn fork_parent() {
    hazard::fork_parent();
    ALLOC.release();
}
/// `pthread_atfork` child: the threads that held counts do not exist here.
pub(crate) fn fork_child() {
    hazard::fork_child();
    // SAFETY: fork_prepare took the lock.
    let next = unsafe { &*ALLOC.get_locked() }.next as usize;
    for s in (0..next).filter_map(slot) {
        for shard in &s.refs {
            shard.0.store(0, Relaxed);
        }
    }
    ALLOC.release();
}

#[inline]
fn slot(index: usize) -> Option<&'static Slot> {
    let chunk = CHUNKS.get(index / CHUNK)?.load(Acquire);
    // SAFETY: chunks are never freed once published.
    (!chunk.is_null()).then(|| unsafe { &(*chunk)[index % CHUNK] })
}

fn encode(index: usize, gen: u32) -> usize {
    (KEY_TAG | (((gen & KEY_GEN_MASK) as u64) << KEY_GEN_SHIFT) | ((index as u64) << KEY_INDEX_SHIFT)) as usize
}

/// The slot a key names, if it is shaped like a key at all.
#[inline]
fn decode(key: usize) -> Option<usize> {
    if key as u64 & KEY_TAG_MASK != KEY_TAG {
        return None;
    }
    Some((key >> KEY_INDEX_SHIFT) & (MAX_HANDLES - 1))
}

fn gen_of(key: usize) -> u32 {
    ((key as u64 >> KEY_GEN_SHIFT) as u32) & KEY_GEN_MASK
}

/// This thread's shard: threads' stacks lie megabytes apart (glibc gives each
/// 8 MiB), so bits above 2^23 of a stack address tell threads apart for free.
/// Only speed depends on the choice; a `Pin` remembers the shard it used.
#[inline(always)]
fn my_shard(s: &Slot) -> &AtomicU32 {
    let marker = 0u8;
    let sp = core::ptr::addr_of!(marker) as usize;
    &s.refs[(sp >> 23) % SHARDS].0
}

/// Finds a free slot, growing the table by one chunk when needed.
fn alloc_slot() -> Result<usize, Errno> {
    ALLOC.with(|a| {
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
    hazard::init();
    let index = match alloc_slot() {
        Ok(i) => i,
        Err(e) => return Err((e, dm)),
    };
    let s = slot(index).expect("allocated slots exist");
    let key = encode(index, s.state.load(Relaxed) as u32);
    // SAFETY: the slot is free (not open): nobody else touches `dm`.
    unsafe { *s.dm.get() = Some(dm) };
    s.state.store(key as u64, Release);
    Ok(key)
}

impl Slot {
    /// The slot's device model.
    ///
    /// # Safety
    /// The caller holds a reference (a hazard record or a count) taken while
    /// the slot was OPEN: close waits for it before taking the model out.
    #[inline(always)]
    unsafe fn dm(&self) -> &DeviceModel {
        (*self.dm.get()).as_ref().unwrap_unchecked()
    }
}

/// How a call keeps its handle alive: the address of this thread's hazard
/// record holding the key (hazard.rs), or, with the low bit set, of the count
/// it raised. One word, so that the call path keeps one register for it.
#[derive(Clone, Copy)]
struct Pin(usize);

impl Pin {
    /// Announces a call on `key`, whose slot is `s`.
    #[inline(always)]
    fn take(s: &'static Slot, key: usize) -> Pin {
        match hazard::enter(key) {
            Some(rec) => Pin(rec as *const Record as usize),
            None => Pin::count(s, key),
        }
    }

    /// The shared counts, when there is no record to use.
    #[cold]
    #[inline(never)]
    fn count(s: &'static Slot, key: usize) -> Pin {
        hazard::prepare();
        hazard::counted_enter(key);
        let shard = my_shard(s);
        shard.fetch_add(1, SeqCst);
        Pin(shard as *const AtomicU32 as usize | 1)
    }

    /// Ends the call.
    #[inline(always)]
    fn release(self) {
        if self.0 & 1 == 0 {
            // SAFETY: made from a record by `take`; records are never freed.
            hazard::leave(unsafe { &*(self.0 as *const Record) });
        } else {
            self.uncount();
        }
    }

    /// Ends a call pinned by [`Pin::count`].
    #[cold]
    #[inline(never)]
    fn uncount(self) {
        // SAFETY: made from a shard by `count`; slots are never freed.
        unsafe { &*((self.0 & !1) as *const AtomicU32) }.fetch_sub(1, Release);
        hazard::counted_leave();
    }
}

/// Runs `f` on the device model of the handle `key` names, keeping the
/// handle alive meanwhile: `EBADF` unless `key` names an open handle.
#[inline(always)]
pub fn with<R>(key: usize, f: impl FnOnce(&DeviceModel) -> R) -> Result<R, Errno> {
    let s = decode(key).and_then(slot).ok_or(Errno::EBADF)?;
    // Announce the call, then check the handle. With a record, the order of
    // the two is close's business (hazard.rs). With a count, both steps are
    // sequentially consistent, as is close's mirror image (set CLOSING, then
    // read the counts), so either the call sees CLOSING or close sees it.
    let pin = Pin::take(s, key);
    if s.state.load(SeqCst) != key as u64 {
        pin.release();
        return Err(Errno::EBADF);
    }
    // SAFETY: pinned while the slot was open: close waits for us.
    let r = f(unsafe { s.dm() });
    pin.release();
    Ok(r)
}

/// Takes a handle out of the table: new calls fail with `EBADF` at once, and
/// the device model is returned once no call is using it any more.
///
/// `EDEADLK` (and the handle stays open) if this thread is itself inside a
/// call on the handle, i.e. closing it from that call's logger callback.
pub fn remove(key: usize) -> Result<DeviceModel, Errno> {
    let index = decode(key).ok_or(Errno::EBADF)?;
    let s = slot(index).ok_or(Errno::EBADF)?;
    if hazard::in_call(key) {
        return Err(Errno::EDEADLK);
    }
    let open = key as u64;
    s.state.compare_exchange(open, open ^ CLOSING, SeqCst, Relaxed).map_err(|_| Errno::EBADF)?;
    // Calls in flight are single ioctls: wait for them to drain.
    hazard::wait_unused(key);
    for shard in &s.refs {
        while shard.0.load(SeqCst) != 0 {
            std::thread::yield_now();
        }
    }
    // SAFETY: CLOSING is ours and no reference remains: exclusive access.
    let dm = unsafe { (*s.dm.get()).take() }.expect("open slots hold a device model");
    // A new generation makes every copy of the old key stale.
    s.state.store(FREE | (gen_of(key).wrapping_add(1) & KEY_GEN_MASK) as u64, Release);
    ALLOC.with(|a| a.free.push(index as u32));
    Ok(dm)
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
        let on_stack = 0u8;
        #[cfg(target_pointer_width = "64")]
        assert_eq!(decode(&on_stack as *const u8 as usize), None);
        // 32-bit keys are told from pointers by alignment: a byte's address
        // may look like a key, but then must still equal an open key exactly.
        #[cfg(target_pointer_width = "32")]
        assert_eq!(with(&on_stack as *const u8 as usize | 3, |_| ()).err(), Some(Errno::EBADF));
        let aligned = 0u32;
        assert_eq!(decode(&aligned as *const u32 as usize), None);
        assert_eq!(decode(Box::into_raw(Box::new(0u64)) as usize), None);
        assert_eq!(decode(0), None);
    }

    #[test]
    fn unknown_keys_are_ebadf() {
        assert_eq!(with(encode(MAX_HANDLES + 5, 0), |_| ()).err(), Some(Errno::EBADF));
        assert_eq!(with(encode(MAX_HANDLES - 1, 0), |_| ()).err(), Some(Errno::EBADF));
        assert_eq!(with(0xdead_beef, |_| ()).err(), Some(Errno::EBADF));
        assert_eq!(remove(0x1234).err(), Some(Errno::EBADF));
    }

    #[test]
    fn slots_are_cache_line_separated() {
        assert_eq!(core::mem::align_of::<Slot>(), 64);
        assert_eq!(core::mem::size_of::<Shard>(), 64);
    }
}
