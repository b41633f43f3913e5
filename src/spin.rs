//! A minimal spin lock for the table's open/close bookkeeping.
//!
//! Not `std::sync::Mutex`: the `pthread_atfork` handlers must take the lock in
//! one function and release it in another, around `fork()`, so that a child
//! never inherits it held by a thread that does not exist there. Critical
//! sections are a few instructions long and never on the call path.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering::*};

/// A lock around `T`, usable in a `static`.
pub struct SpinLock<T> {
    locked: AtomicBool,
    inner: UnsafeCell<T>,
}

// SAFETY: `inner` is only reached through `with`, which holds the lock.
unsafe impl<T: Send> Sync for SpinLock<T> {}

impl<T> SpinLock<T> {
    /// An unlocked lock around `value`.
    pub const fn new(value: T) -> Self {
        SpinLock { locked: AtomicBool::new(false), inner: UnsafeCell::new(value) }
    }

    /// Takes the lock without a guard: for `pthread_atfork`'s prepare handler.
    pub fn acquire(&self) {
        while self.locked.compare_exchange_weak(false, true, Acquire, Relaxed).is_err() {
            std::thread::yield_now();
        }
    }

    /// Releases a lock taken by [`SpinLock::acquire`].
    pub fn release(&self) {
        self.locked.store(false, Release);
    }

    /// Runs `f` on the protected value with the lock held.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        self.acquire();
        // SAFETY: the lock is held, so this is the only reference.
        let r = f(unsafe { &mut *self.inner.get() });
        self.release();
        r
    }

    /// The protected value, for the atfork child handler, which holds the
    /// lock taken by [`SpinLock::acquire`]; dereferencing is only sound then.
    pub fn get_locked(&self) -> *mut T {
        self.inner.get()
    }
}
