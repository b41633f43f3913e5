//! The handle table: what a C `xendevicemodel_handle *` really is.
//!
//! C callers get a *key*, never a pointer to memory: a slot index and a
//! generation under a tag that no pointer to anything aligned has. A key is
//! checked on every call, so use after close, double close, and pointers
//! that never came from `xendevicemodel_open` are refused with `EBADF`
//! instead of touching freed memory or a recycled descriptor.
//!
//! Each slot has a [`Gate`] (liveness.rs) whose state word is the key itself,
//! exactly as open returned it (a traced process's keys have the trace bit
//! flipped, and only that form is accepted), while the handle is open, so a
//! call checks tag, index, generation and openness with one comparison; the
//! key with `CLOSING` flipped while it closes; something no key equals while
//! it is free or retired.
//!
//! **No key is ever given out twice in a process's life.** Closing a handle
//! moves its slot to the next generation; a slot whose generations are used
//! up is retired for good (never reused: a stale copy of its last key can
//! name nothing) and the table takes a fresh slot instead. Once every slot is
//! open or retired, open fails: `EMFILE` while no slot is retired (too many
//! open handles), `ENOSPC` once some are (the process has used up its keys;
//! closing a handle whose slot has generations left makes room again). The
//! figures, per pointer width ([`layout`]):
//!
//! | | 64-bit (x86_64, arm64) | 32-bit (armhf) |
//! |---|---|---|
//! | slots (open handles at once) | 2^20 | 2^14 |
//! | generations per slot | 2^32 | 2^16 |
//! | keys per process | 2^52 | 2^30 |
//!
//! 2^30 keys are over a billion opens: 34 years at one open a second, three
//! hours of a loop doing nothing but open/close at 10 µs a pair. A retired
//! slot keeps its memory (a slot is under a kilobyte), so the 32-bit table
//! is at most 2^14 slots, ~10 MiB, when its last key is spent. `XENDEVICEMODEL_TEST_KEY_SPACE=G,S` (a test
//! hook, read at the first open) lowers the generations per slot to G and
//! the slots to S, so tests can spend a key space in milliseconds; it can
//! only lower them.
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
/// The table holds at most this many slots, open or retired.
pub const MAX_HANDLES: usize = 1 << KEY_INDEX_BITS;
const MAX_CHUNKS: usize = MAX_HANDLES / CHUNK;

/// How keys look, which depends on the pointer width (a key travels as a
/// `xendevicemodel_handle *`). On 64-bit targets the tag is the top byte: a
/// non-canonical x86_64 address and a kernel address on arm64, so no real
/// pointer (heap, stack, a stale handle of Xen's library) can be mistaken
/// for a key; below it, bits 52-55 are always 0, then the generation and the
/// index. On 32-bit targets every address may be a user pointer, so the tag
/// is in the two low bits instead: no pointer to anything aligned (a heap
/// block, a stale Xen handle) has them set; a byte pointer that does still
/// has to equal an open handle's key exactly.
#[cfg(target_pointer_width = "64")]
pub mod layout {
    /// The tag's bits and value.
    pub const TAG_MASK: u64 = 0xff << 56;
    /// The tag of keys of a process that does not trace.
    pub const TAG: u64 = 0xd5 << 56;
    /// Flipped in the tag of traced keys (0xd4).
    pub const TRACED: u64 = 1 << 56;
    /// Slot index bits; the index starts at bit 0.
    pub const INDEX_BITS: u32 = 20;
    /// Where the slot index starts.
    pub const INDEX_SHIFT: u32 = 0;
    /// Generation bits, above the index.
    pub const GEN_BITS: u32 = 32;
    /// Set in a free slot's state word (besides the next generation): none
    /// here, a state below 2^32 has no tag.
    pub const FREE: u64 = 0;
}
/// How keys look on 32-bit targets (see the 64-bit layout).
#[cfg(target_pointer_width = "32")]
pub mod layout {
    /// The tag's bits and value.
    pub const TAG_MASK: u64 = 0b11;
    /// The tag of keys of a process that does not trace.
    pub const TAG: u64 = 0b11;
    /// Flipped in the tag of traced keys (0b01).
    pub const TRACED: u64 = 0b10;
    /// Slot index bits, above the tag: 16384 handles, 16 times the default
    /// descriptor limit, and as many generation bits as possible.
    pub const INDEX_BITS: u32 = 14;
    /// Where the slot index starts.
    pub const INDEX_SHIFT: u32 = 2;
    /// Generation bits, above the index.
    pub const GEN_BITS: u32 = 32 - INDEX_SHIFT - INDEX_BITS;
    /// Above every 32-bit key: a free slot never matches one.
    pub const FREE: u64 = 1 << 32;
}
use layout::{FREE, GEN_BITS, INDEX_BITS as KEY_INDEX_BITS, INDEX_SHIFT, TAG as KEY_TAG, TAG_MASK, TRACED};

const GEN_SHIFT: u32 = INDEX_SHIFT + KEY_INDEX_BITS;
/// Generations wrap at this mask; the last one retires its slot.
const GEN_MASK: u32 = if GEN_BITS == 32 { u32::MAX } else { (1 << GEN_BITS) - 1 };
/// A retired slot's state word: no key, free or closing state equals it.
const RETIRED: u64 = 1 << 33;
const _: () = assert!(GEN_SHIFT + GEN_BITS <= 52 || usize::BITS == 32, "bits 52-55 must stay 0");
const _: () = assert!(usize::BITS == 64 || GEN_SHIFT + GEN_BITS == 32, "32-bit keys use every bit");
const _: () = assert!(!is_key(KEY_TAG ^ CLOSING), "closing states must not look like keys");
const _: () = assert!(!is_key(RETIRED) && !is_key(RETIRED ^ CLOSING) && !is_key(FREE | GEN_MASK as u64));

/// Whether `v` is shaped like a key, traced or not.
const fn is_key(v: u64) -> bool {
    let tag = v & TAG_MASK;
    (tag == KEY_TAG || tag == KEY_TAG ^ TRACED) && (usize::BITS == 64 || v >> 32 == 0)
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
    /// Free slots (with generations left). Its capacity always covers every
    /// slot ever made, so giving one back never allocates.
    free: Vec<u32>,
    /// Slots ever made.
    next: u32,
    /// The newest open handle's slot, or NIL.
    newest: u32,
    /// Slots whose generations are used up.
    retired: u32,
    /// Handles opened in this process's life, for the message when keys run out.
    opened: u64,
    /// The last generation a slot may have, and how many slots there may be
    /// (lowered only by the test hook, see [`Limits`]).
    limits: Option<Limits>,
}
static TABLE: SpinLock<Alloc> =
    SpinLock::new(Alloc { free: Vec::new(), next: 0, newest: NIL, retired: 0, opened: 0, limits: None });

/// How far keys go: the layout's, unless `XENDEVICEMODEL_TEST_KEY_SPACE`
/// lowers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The last generation a slot's key may have; its close retires the slot.
    pub last_gen: u32,
    /// Slots the table may make.
    pub slots: u32,
}

/// The test hook's variable: `G,S` lowers the generations per slot to G
/// (at least 1) and the slots to S (at least 1).
pub const TEST_KEY_SPACE: &str = "XENDEVICEMODEL_TEST_KEY_SPACE";

impl Limits {
    /// The layout's own limits.
    pub const FULL: Limits = Limits { last_gen: GEN_MASK, slots: MAX_HANDLES as u32 };

    /// The full limits, lowered by a value of [`TEST_KEY_SPACE`]; anything
    /// that is not two numbers separated by a comma is ignored.
    pub fn lowered_by(value: Option<&str>) -> Limits {
        let parsed = value.and_then(|v| {
            let (g, s) = v.split_once(',')?;
            Some((g.trim().parse::<u64>().ok()?, s.trim().parse::<u64>().ok()?))
        });
        let Some((gens, slots)) = parsed else { return Limits::FULL };
        let full = Limits::FULL;
        Limits {
            last_gen: (gens.clamp(1, full.last_gen as u64 + 1) - 1) as u32,
            slots: slots.clamp(1, full.slots as u64) as u32,
        }
    }

    /// Keys a process may be given in its life.
    pub fn keys(&self) -> u64 {
        (self.last_gen as u64 + 1) * self.slots as u64
    }
}

/// What open fails with once the key space is spent.
pub const ENOSPC: Errno = Errno::from_raw(libc::ENOSPC);

/// Why open found no slot: `EMFILE` (every slot open), `ENOSPC` (every slot
/// open or retired, some retired: the key space is spent), `ENOMEM` (no
/// memory for a new chunk of slots). Its `Display` is the log line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Full {
    /// What open fails with.
    pub errno: Errno,
    retired: u32,
    opened: u64,
    limits: Limits,
}

impl core::fmt::Display for Full {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let l = self.limits;
        match self.errno {
            ENOSPC => write!(
                f,
                "no handle key left: {} handles were opened in this process and {} of the table's {} slots have \
                 used their {} keys each; a key is never given out twice, so that a stale handle cannot name a new \
                 one (close a handle to reuse its slot, or restart the process)",
                self.opened,
                self.retired,
                l.slots,
                l.last_gen as u64 + 1
            ),
            Errno::EMFILE => write!(f, "too many open handles ({})", l.slots),
            _ => write!(f, "no memory for the handle table"),
        }
    }
}

#[inline]
fn slot(index: usize) -> Option<&'static Slot> {
    let chunk = CHUNKS.get(index / CHUNK)?.load(Acquire);
    // SAFETY: chunks are never freed once published.
    (!chunk.is_null()).then(|| unsafe { &(*chunk)[index % CHUNK] })
}

fn encode(index: usize, gen: u32) -> Key {
    KEY_TAG | (((gen & GEN_MASK) as u64) << GEN_SHIFT) | ((index as u64) << INDEX_SHIFT)
}

fn index_of(key: Key) -> usize {
    ((key >> INDEX_SHIFT) & (MAX_HANDLES as u64 - 1)) as usize
}

/// The slot an untraced key names: the call path's check. Traced keys have
/// another tag, so they miss it and take the slow path ([`with_any`]), which
/// traces them: calls of processes that do not trace pay nothing for the
/// trace.
#[inline(always)]
fn decode(key: Key) -> Option<usize> {
    (key & TAG_MASK == KEY_TAG).then(|| index_of(key))
}

/// The slot any key names, traced or not.
fn decode_any(key: Key) -> Option<usize> {
    is_key(key).then(|| index_of(key))
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

/// Finds a free slot, growing the table by one chunk when needed (see
/// [`Full`] for the errors).
fn alloc_slot(a: &mut Alloc) -> Result<usize, Full> {
    let limits = *a.limits.get_or_insert_with(|| Limits::lowered_by(std::env::var(TEST_KEY_SPACE).ok().as_deref()));
    let full = |errno| Full { errno, retired: a.retired, opened: a.opened, limits };
    if let Some(i) = a.free.pop() {
        return Ok(i as usize);
    }
    let i = a.next as usize;
    if i >= limits.slots as usize {
        return Err(full(if a.retired > 0 { ENOSPC } else { Errno::EMFILE }));
    }
    let c = &CHUNKS[i / CHUNK];
    if c.load(Relaxed).is_null() {
        // The free list must be able to hold this chunk's slots without
        // allocating later (close cannot fail for want of memory).
        a.free.try_reserve(a.next as usize + CHUNK).map_err(|_| full(Errno::ENOMEM))?;
        c.store(new_chunk().ok_or(full(Errno::ENOMEM))?, Release);
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
/// its key (never 0; with the trace bit flipped if `traced`), or `open`'s
/// error. A fork() in another thread waits, so a child sees the handle either
/// not opened at all or open. `open` must not call user code.
pub fn insert<E>(
    traced: bool,
    open: impl FnOnce() -> Result<DeviceModel, E>,
) -> Result<Result<Key, (Full, DeviceModel)>, E> {
    let mut a = TABLE.lock();
    let dm = open()?;
    let index = match alloc_slot(&mut a) {
        Ok(i) => i,
        Err(e) => return Ok(Err((e, dm))),
    };
    let s = slot(index).expect("allocated slots exist");
    let key = encode(index, s.gate.state() as u32 & GEN_MASK) ^ if traced { TRACED } else { 0 };
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
    a.opened += 1;
    s.gate.set_state(key);
    Ok(Ok(key))
}

/// Runs `f` on the device model of the handle `key` names, keeping the
/// handle alive meanwhile; `closed` instead, unless `key` is an open
/// handle's untraced key. The call path.
#[inline(always)]
pub fn with<R>(key: Key, f: impl FnOnce(&DeviceModel) -> R, closed: impl FnOnce() -> R) -> R {
    let Some(s) = decode(key).and_then(slot) else { return closed() };
    pinned(s, key, f, closed)
}

/// [`with`] for any key, traced or not: the slow path's.
pub fn with_any<R>(key: Key, f: impl FnOnce(&DeviceModel) -> R, closed: impl FnOnce() -> R) -> R {
    let Some(s) = decode_any(key).and_then(slot) else { return closed() };
    pinned(s, key, f, closed)
}

/// `f` on `s`'s device model if `s` is open as exactly `key`.
#[inline(always)]
fn pinned<R>(s: &'static Slot, key: Key, f: impl FnOnce(&DeviceModel) -> R, closed: impl FnOnce() -> R) -> R {
    let Some(_pin) = Pin::enter(&s.gate, key) else { return closed() };
    // SAFETY: admitted while open: close waits for `_pin` before taking the
    // model out, and open slots always hold one.
    let dm = unsafe { (*s.dm.get()).as_ref().unwrap_unchecked() };
    f(dm)
}

/// Whether `key` is shaped like a key of a tracing process's handle.
pub fn is_traced(key: Key) -> bool {
    is_key(key) && key & TAG_MASK != KEY_TAG
}

/// Takes the handle open as exactly `key` (traced or not) out of the table:
/// new calls fail with `EBADF` at once, and once no call uses it any more,
/// `release` gets its device model, under the table lock (so a fork() sees
/// the handle either open or released); what it returns is returned. The
/// slot moves to its next generation, or is retired if it has none left.
///
/// `EDEADLK` (and the handle stays open) if this thread is itself inside a
/// call on the handle, i.e. closing it from that call's logger callback.
pub fn remove<R>(key: Key, release: impl FnOnce(DeviceModel) -> R) -> Result<R, Errno> {
    let index = decode_any(key).ok_or(Errno::EBADF)?;
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
    // A new generation makes every copy of the old key stale; a slot without
    // one is never used again, so its last key stays stale forever.
    let last_gen = a.limits.map_or(GEN_MASK, |l| l.last_gen);
    if gen_of(key) >= last_gen {
        s.gate.set_state(RETIRED);
        a.retired += 1;
    } else {
        s.gate.set_state(free_state(gen_of(key) + 1));
        a.free.push(index as u32); // within the reserved capacity: never allocates
    }
    Ok(r)
}

/// Runs `f` on every open handle, newest first (the order in which Xen's
/// library's handles are registered with libxentoolcore), stopping at the
/// first error. Each handle is used as a call uses it (pinned), so a close
/// racing with this waits, and `f` may call user code (a logger), which may
/// even close the handle (`EDEADLK`) or open others. Allocates nothing: a
/// fork() in the middle leaves the child nothing to free.
///
/// `EDEADLK` at once from a signal handler that interrupted this thread
/// while it held the table lock (see [`reentered`]).
pub fn for_each_open(mut f: impl FnMut(&DeviceModel) -> Result<(), Errno>) -> Result<(), Errno> {
    if TABLE.held_by_me() {
        return Err(Errno::EDEADLK);
    }
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
///
/// From a signal handler that interrupted this thread while it held the
/// lock (inside open, close or the restrict_all walk), the fork proceeds
/// without it: the interrupted function keeps it, in both processes, until
/// it goes on once the handler returns.
pub(crate) fn fork_prepare() {
    TABLE.fork_acquire();
}

/// `pthread_atfork` parent.
pub(crate) fn fork_parent() {
    // SAFETY: fork_prepare called fork_acquire.
    unsafe { TABLE.fork_release() };
}

/// Whether this thread is a signal handler that interrupted the library
/// while it held the table lock or the thread registry's: then open and
/// close cannot wait for them (the interrupted function goes on only once
/// the handler returns), and fail with `EDEADLK` instead.
pub fn reentered() -> bool {
    TABLE.held_by_me() || liveness::registry_held_by_me()
}

/// `pthread_atfork` child: a close that was waiting for calls in the parent
/// has no thread here to finish it, and the calls it waited for have none
/// either. Such handles are open again in the child, as inherited handles
/// (calls refused, close releases the child's copy). The counts of calls
/// in flight are those of threads that do not exist here, except the
/// forking thread's own (a fork from its logger callback or from a signal
/// handler: those calls go on in the child), which are counted again.
pub(crate) fn fork_child() {
    // SAFETY: fork_prepare holds the lock (or the interrupted function
    // does, frozen while the handler runs), and only this thread runs.
    let next = unsafe { TABLE.locked_value() }.next as usize;
    for s in (0..next).filter_map(slot) {
        s.gate.clear_counts();
        let state = s.gate.state();
        if is_closing(state) {
            s.gate.set_state(state ^ CLOSING);
        }
    }
    liveness::recount_mine();
    // SAFETY: fork_prepare called fork_acquire.
    unsafe { TABLE.fork_release() };
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
        assert_eq!(decode_any(&aligned as *const u32 as usize as u64), None);
        assert_eq!(decode_any(Box::into_raw(Box::new(0u64)) as usize as u64), None);
        assert_eq!(decode_any(0), None);
        #[cfg(target_pointer_width = "64")]
        {
            let byte = 0u8;
            assert_eq!(decode_any(&byte as *const u8 as usize as u64), None);
        }
        for gen in [0, 1, 7, GEN_MASK - 1, GEN_MASK] {
            let k = encode(MAX_HANDLES - 1, gen);
            for state in [free_state(gen), RETIRED] {
                assert!(is_key(k) && !is_key(state) && !is_closing(state), "{k:#x} {state:#x}");
            }
            assert_eq!(gen_of(k), gen);
            assert_eq!(gen_of(k ^ TRACED), gen);
            assert_eq!(decode(k), Some(MAX_HANDLES - 1));
            assert!(k as usize as u64 == k, "keys fit a pointer");
        }
        assert!(is_closing(k ^ CLOSING) && is_closing(k ^ TRACED ^ CLOSING) && !is_closing(k) && !is_closing(8));
        assert_eq!(decode(k ^ TRACED), None, "traced keys miss the call path's check");
        assert_eq!(decode_any(k ^ TRACED), Some(5));
        assert!(is_traced(k ^ TRACED) && !is_traced(k) && !is_traced(0));
    }

    #[test]
    fn the_key_space_per_pointer_width() {
        let full = Limits::FULL;
        if usize::BITS == 64 {
            assert_eq!((full.last_gen, full.slots, full.keys()), (u32::MAX, 1 << 20, 1 << 52));
        } else {
            assert_eq!((full.last_gen, full.slots, full.keys()), (u16::MAX as u32, 1 << 14, 1 << 30));
        }
        // Every key bit is tag, index or generation (or, on 64-bit, 0).
        let all = encode(MAX_HANDLES - 1, GEN_MASK) | TAG_MASK;
        let used = if usize::BITS == 64 { ((1u64 << 52) - 1) | TAG_MASK } else { u32::MAX as u64 };
        assert_eq!(all, used);
    }

    #[test]
    fn the_test_hook_only_lowers_the_limits() {
        let full = Limits::FULL;
        assert_eq!(Limits::lowered_by(None), full);
        for junk in ["", "3", "a,b", "3;4", "-1,5", "3,4,5"] {
            assert_eq!(Limits::lowered_by(Some(junk)), full, "{junk:?}");
        }
        assert_eq!(Limits::lowered_by(Some("4,64")), Limits { last_gen: 3, slots: 64 });
        assert_eq!(Limits::lowered_by(Some(" 1 , 2 ")), Limits { last_gen: 0, slots: 2 });
        assert_eq!(Limits::lowered_by(Some("0,0")), Limits { last_gen: 0, slots: 1 });
        assert_eq!(Limits::lowered_by(Some("99999999999,99999999999")), full);
        assert_eq!(Limits::lowered_by(Some("4,64")).keys(), 256);
    }

    #[test]
    fn running_out_is_explained() {
        let limits = Limits { last_gen: 3, slots: 64 };
        let spent = Full { errno: ENOSPC, retired: 60, opened: 252, limits }.to_string();
        assert!(spent.contains("252 handles were opened") && spent.contains("60 of the table's 64 slots"), "{spent}");
        assert!(spent.contains("used their 4 keys each"), "{spent}");
        let many = Full { errno: Errno::EMFILE, retired: 0, opened: 64, limits }.to_string();
        assert_eq!(many, "too many open handles (64)");
    }

    #[test]
    fn unknown_keys_are_ebadf() {
        for key in [encode(MAX_HANDLES + 5, 0), encode(MAX_HANDLES - 1, 0), 0xdead_beef, encode(0, 0) ^ TRACED] {
            assert!(!with(key, |_| true, || false), "{key:#x} was taken for an open handle");
            assert!(!with_any(key, |_| true, || false), "{key:#x} was taken for an open handle");
        }
        assert_eq!(remove(0x1234, |_| ()).err(), Some(Errno::EBADF));
    }
}
