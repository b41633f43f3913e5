//! Model checks of the liveness protocol (src/liveness/protocol.rs) with
//! loom, which runs each test body under every interleaving of its threads
//! (within the preemption bound set in tests/model/run.sh) and every result
//! the C11 memory model allows for each atomic access.
//!
//! What cannot be modelled is replaced by what it guarantees:
//! - membarrier(2), which close runs between marking a handle CLOSING and
//!   scanning the records: the protocol file itself puts a SeqCst fence on
//!   the call side between the record store and the state load (what the
//!   barrier amounts to: every running thread executes a full fence during
//!   it), and the tests pass close a SeqCst fence as its barrier;
//! - fork(): the table lock that process.rs holds across fork() is a loom
//!   Mutex; the child's view is read under it, and the child handler is
//!   applied to that copy (only the forking thread exists in a child);
//! - the device model a handle holds is a flag that close clears (the "free")
//!   under the table lock, and that a call reads while pinned (the "use").

use liveness_model::protocol::{Gate, Record, CLOSING};
use loom::sync::atomic::{fence, AtomicBool, Ordering::SeqCst};
use loom::sync::{Arc, Mutex};
use loom::thread;

const KEY: u64 = 0xd500_0000_0000_0001;

/// Runs `f` under loom and reports how many executions (interleavings and
/// memory-model choices) it explored.
fn model(name: &str, f: impl Fn() + Sync + Send + 'static) {
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let f = std::sync::Arc::new(f);
    let before = RUNS.load(std::sync::atomic::Ordering::SeqCst);
    loom::model(move || {
        RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        f()
    });
    let runs = RUNS.load(std::sync::atomic::Ordering::SeqCst) - before;
    println!("model {name}: {runs} executions explored");
}
const FREE_NEXT: u64 = 2; // a free slot's state: its next generation

/// One handle: its gate, the thread records, and the model it holds.
struct Handle {
    gate: Gate,
    records: [Record; 2],
    model: AtomicBool,
    /// The table lock (held around close's release and around fork()).
    table: Mutex<()>,
}

fn handle() -> Arc<Handle> {
    Arc::new(Handle {
        gate: Gate::new(KEY),
        records: [Record::new(), Record::new()],
        model: AtomicBool::new(true),
        table: Mutex::new(()),
    })
}

/// A call through thread record `r` (or the shared counts): if admitted, the
/// model must still be there until the call ends. Returns whether it ran.
fn call(h: &Handle, r: Option<usize>) -> bool {
    match r {
        Some(i) => {
            let rec = &h.records[i];
            assert!(rec.enter(KEY as usize));
            let admitted = h.gate.admits(KEY);
            if admitted {
                assert!(h.model.load(SeqCst), "a call used a handle close had released");
            }
            rec.leave();
            admitted
        }
        None => {
            let shard = h.gate.count_enter(i_of_thread());
            let admitted = h.gate.admits(KEY);
            if admitted {
                assert!(h.model.load(SeqCst), "a counted call used a released handle");
            }
            Gate::count_leave(shard);
            admitted
        }
    }
}

fn i_of_thread() -> usize {
    0 // which shard does not matter for correctness; one shard is the hard case
}

/// Close: win the CAS, wait for calls, release under the table lock.
fn close(h: &Handle) -> bool {
    if !h.gate.begin_close(KEY) {
        return false;
    }
    h.gate.quiesce(KEY, &h.records, || fence(SeqCst));
    let _t = h.table.lock().unwrap();
    h.model.store(false, SeqCst);
    h.gate.set_state(FREE_NEXT);
    true
}

#[test]
fn a_call_never_uses_a_released_handle() {
    model("a_call_never_uses_a_released_handle", || {
        let h = handle();
        let h1 = h.clone();
        let caller = thread::spawn(move || call(&h1, Some(0)));
        assert!(close(&h));
        caller.join().unwrap();
        assert_eq!(h.gate.state(), FREE_NEXT);
        // Once closed, nothing is admitted.
        assert!(!call(&h, Some(1)));
    });
}

#[test]
fn a_counted_call_never_uses_a_released_handle() {
    model("a_counted_call_never_uses_a_released_handle", || {
        let h = handle();
        let h1 = h.clone();
        let caller = thread::spawn(move || call(&h1, None));
        assert!(close(&h));
        caller.join().unwrap();
    });
}

#[test]
fn two_calls_and_a_close() {
    model("two_calls_and_a_close", || {
        let h = handle();
        let (h1, h2) = (h.clone(), h.clone());
        let a = thread::spawn(move || call(&h1, Some(0)));
        let b = thread::spawn(move || call(&h2, None));
        assert!(close(&h));
        a.join().unwrap();
        b.join().unwrap();
    });
}

#[test]
fn exactly_one_of_two_closes_wins() {
    model("exactly_one_of_two_closes_wins", || {
        let h = handle();
        let h1 = h.clone();
        let other = thread::spawn(move || close(&h1));
        let mine = close(&h);
        let theirs = other.join().unwrap();
        assert!(mine ^ theirs, "closes that won: {}", mine as u8 + theirs as u8);
        assert!(!h.model.load(SeqCst));
    });
}

/// fork() while a close and a call run: the child's copy is read under the
/// table lock, as process.rs's prepare handler takes it. The child handler
/// (table.rs's fork_child) reopens a handle whose close was in progress; in
/// the child the handle must then be open with its model, or released.
#[test]
fn fork_sees_a_handle_open_or_released() {
    model("fork_sees_a_handle_open_or_released", || {
        let h = handle();
        let (h1, h2) = (h.clone(), h.clone());
        let closer = thread::spawn(move || close(&h1));
        let caller = thread::spawn(move || call(&h2, Some(0)));
        let child = {
            let _t = h.table.lock().unwrap();
            let state = h.gate.state();
            let model = h.model.load(SeqCst);
            // The child handler: a close in progress has no thread in the child.
            let state = if state == KEY ^ CLOSING { state ^ CLOSING } else { state };
            (state, model)
        };
        match child {
            (KEY, true) => {}       // open in the child: an inherited handle it can close
            (FREE_NEXT, false) => {} // released before the fork
            other => panic!("the child sees a half-closed handle: {other:x?}"),
        }
        assert!(closer.join().unwrap());
        caller.join().unwrap();
    });
}
