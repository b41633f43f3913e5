//! The spin lock behind the handle table's and the thread records' small
//! bookkeeping sections (never the call path).
//!
//! Not `std::sync::Mutex`: the `pthread_atfork` handlers (process.rs) take a
//! lock in one function and release it in another, around `fork()`, so that
//! a child never inherits it held by a thread that does not exist there.
//! Critical sections are short and call no user code.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering::*};

/// A lock around `T`, usable in a `static`.
pub struct SpinLock<T> {
    locked: AtomicBool,
    inner: UnsafeCell<T>,
}

// SAFETY: `inner` is only reached with the lock held.
unsafe impl<T: Send> Sync for SpinLock<T> {}

/// Access to the value while the lock is held; released on drop (also when
/// unwinding from a panic).
pub struct Guard<'a, T>(&'a SpinLock<T>);

impl<T> SpinLock<T> {
    /// An unlocked lock around `value`.
    pub const fn new(value: T) -> Self {
        SpinLock { locked: AtomicBool::new(false), inner: UnsafeCell::new(value) }
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

    /// Takes the lock without a guard: for `pthread_atfork`'s prepare handler.
    pub fn acquire(&self) {
        while self.locked.compare_exchange_weak(false, true, Acquire, Relaxed).is_err() {
            std::thread::yield_now();
        }
    }

    /// Releases a lock taken by [`SpinLock::acquire`] (the atfork handlers).
    ///
    /// # Safety
    /// The caller took the lock with `acquire` and holds no `Guard` for it.
    pub unsafe fn release(&self) {
        self.locked.store(false, Release);
    }

    /// The value while the lock is held by [`SpinLock::acquire`] (the atfork
    /// child handler).
    ///
    /// # Safety
    /// The caller holds the lock (taken with `acquire`) and no other
    /// reference to the value exists.
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
        self.0.locked.store(false, Release);
    }
}
