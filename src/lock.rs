//! The spin lock behind the handle table's and the thread records' small
//! bookkeeping sections (never the call path).
//!
//! Not `std::sync::Mutex`: the `pthread_atfork` handlers (process.rs) take a
//! lock in one function and release it in another, around `fork()`, so that
//! a child never inherits it held by a thread that does not exist there.
//! Critical sections are short and call no user code.
//!
//! The lock knows its owner thread, for signal handlers: a handler that
//! interrupted the owner cannot wait for the lock (the owner only goes on
//! once the handler returns). [`SpinLock::held_by_me`] lets the library fail
//! instead of waiting, and the fork handlers keep the lock as the
//! interrupted owner holds it ([`SpinLock::fork_acquire`]).

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering::*};

/// A lock around `T`, usable in a `static`.
pub struct SpinLock<T> {
    /// The owner's `pthread_self()`, or 0 when free.
    owner: AtomicUsize,
    /// Forks from signal handlers that found the lock held by their own
    /// thread (see [`SpinLock::fork_acquire`]); only the owner touches it.
    kept: AtomicU32,
    inner: UnsafeCell<T>,
}

/// This thread, as the lock records its owner: never 0, and the same in a
/// child forked by this thread (glibc copies the thread's descriptor).
#[inline]
fn me() -> usize {
    // SAFETY: pthread_self has no preconditions and cannot fail.
    unsafe { libc::pthread_self() as usize }
}

// SAFETY: `inner` is only reached with the lock held.
unsafe impl<T: Send> Sync for SpinLock<T> {}

/// Access to the value while the lock is held; released on drop (also when
/// unwinding from a panic).
pub struct Guard<'a, T>(&'a SpinLock<T>);

impl<T> SpinLock<T> {
    /// An unlocked lock around `value`.
    pub const fn new(value: T) -> Self {
        SpinLock { owner: AtomicUsize::new(0), kept: AtomicU32::new(0), inner: UnsafeCell::new(value) }
    }

    /// Takes the lock.
    pub fn lock(&self) -> Guard<'_, T> {
        self.acquire();
        Guard(self)
    }

    /// Runs `f` on the protected value with the lock held.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        f(&mut self.lock())
    }

    /// Takes the lock without a guard.
    pub fn acquire(&self) {
        let me = me();
        while self.owner.compare_exchange_weak(0, me, Acquire, Relaxed).is_err() {
            std::thread::yield_now();
        }
    }

    /// Releases a lock taken by [`SpinLock::acquire`].
    ///
    /// # Safety
    /// The caller took the lock with `acquire` and holds no `Guard` for it.
    pub unsafe fn release(&self) {
        self.owner.store(0, Release);
    }

    /// Whether this thread holds the lock: then it is a signal handler that
    /// interrupted the holder (the library never takes a lock it holds), and
    /// taking the lock would wait forever. Exact for this thread: only it
    /// stores its own identity.
    #[inline]
    pub fn held_by_me(&self) -> bool {
        self.owner.load(Relaxed) == me()
    }

    /// `pthread_atfork` prepare: takes the lock, unless this thread holds it
    /// already (a fork from a signal handler that interrupted the holder):
    /// then the interrupted function keeps it, in the parent and in the
    /// child alike, and releases it when it goes on.
    pub fn fork_acquire(&self) {
        if self.held_by_me() {
            self.kept.fetch_add(1, Relaxed);
        } else {
            self.acquire();
        }
    }

    /// `pthread_atfork` parent and child: undoes [`SpinLock::fork_acquire`].
    ///
    /// # Safety
    /// The caller called `fork_acquire` and holds no `Guard` for the lock.
    pub unsafe fn fork_release(&self) {
        if self.kept.load(Relaxed) > 0 && self.held_by_me() {
            self.kept.fetch_sub(1, Relaxed);
        } else {
            // SAFETY: fork_acquire took it.
            unsafe { self.release() };
        }
    }

    /// The value while the lock is held by [`SpinLock::acquire`] or
    /// [`SpinLock::fork_acquire`] (the atfork child handler).
    ///
    /// # Safety
    /// The caller holds the lock and no other reference to the value is in
    /// use (after a fork from a signal handler, the interrupted function's
    /// is frozen until the handler returns).
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn locked_value(&self) -> &mut T {
        // SAFETY: the lock is held, per the caller's promise.
        unsafe { &mut *self.inner.get() }
    }
}

impl<T> core::ops::Deref for Guard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the guard holds the lock.
        unsafe { &*self.0.inner.get() }
    }
}

impl<T> core::ops::DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: the guard holds the lock.
        unsafe { &mut *self.0.inner.get() }
    }
}

impl<T> Drop for Guard<'_, T> {
    fn drop(&mut self) {
        self.0.owner.store(0, Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_knows_its_owner_and_a_fork_keeps_what_it_holds() {
        let l = SpinLock::new(5);
        assert!(!l.held_by_me());
        let g = l.lock();
        assert!(l.held_by_me());
        std::thread::scope(|s| {
            s.spawn(|| assert!(!l.held_by_me(), "another thread is not the owner"));
        });
        // A fork from a handler that interrupted the holder: kept, not released.
        l.fork_acquire();
        // SAFETY: fork_acquire was called; the guard is not used meanwhile.
        unsafe { l.fork_release() };
        assert!(l.held_by_me(), "the interrupted holder still holds it");
        drop(g);
        assert!(!l.held_by_me());
        // An ordinary fork takes and releases it.
        l.fork_acquire();
        assert!(l.held_by_me());
        // SAFETY: as above.
        unsafe { l.fork_release() };
        assert!(!l.held_by_me());
    }
}
