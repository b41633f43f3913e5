//! The liveness protocol of the library (src/liveness/protocol.rs, the very
//! file the library compiles) under loom's model of the C11 memory model.
//! The tests are in tests/.

/// What protocol.rs is written against: loom's atomics here.
pub mod sync {
    pub use loom::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
    pub use loom::thread::yield_now;
}

#[path = "../../../src/liveness/protocol.rs"]
pub mod protocol;
