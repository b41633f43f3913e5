//! A simulated hypervisor: a [`Backend`] whose ioreq pages are plain memory
//! and whose event channels are queues, with a hypervisor side that tests
//! (and device authors) drive from their own threads: each [`SimVcpu`]
//! writes requests into its slot, notifies, and waits for the answer as
//! Xen's vCPUs do. It records every operation the session makes (creation,
//! mapping, binding, claims, interrupts, teardown), routes accesses by the
//! ranges claimed, can fail any operation on request, and keeps a guest RAM
//! for requests whose data is in guest memory.
//!
//! ```
//! use std::sync::Arc;
//! use xendevicemodel_ioreq_sim::SimXen;
//! use xendevicemodel_ioreq::{IoAccess, Config, Ctx, Handler, IoRange, Session, Size};
//!
//! struct Answer;
//! impl Handler for Answer {
//!     fn read(&mut self, _: &mut Ctx<'_>, _: IoAccess) -> u64 { 42 }
//!     fn write(&mut self, _: &mut Ctx<'_>, _: IoAccess, _: u64) {}
//! }
//!
//! let xen = SimXen::new(1);
//! let cfg = Config { ranges: vec![IoRange::Port { start: 0x510, end: 0x511 }], ..Config::default() };
//! let mut session = Session::with_backend(xen.clone(), 1, cfg).unwrap();
//! let vcpu = xen.vcpu(0);
//! let guest = std::thread::spawn(move || vcpu.pio_read(0x510, Size::B1));
//! while !guest.is_finished() {
//!     session.run_once(&mut Answer, Some(std::time::Duration::from_millis(10))).unwrap();
//! }
//! assert_eq!(guest.join().unwrap(), Some(42));
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::*};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use xendevicemodel::os::Mapping;
use xendevicemodel::{BufIoreq, DomId, Errno, IoServId};
use xendevicemodel_ioreq::abi::*;
use xendevicemodel_ioreq::{
    Backend, Error, Events, Exit, GuestChunk, Handler, Interrupt, IoRange, Pages, Result, Sbdf, Session, Size, Stopper,
    Wake,
};

/// The hypervisor's port for vCPU `i` is `VCPU_REMOTE_BASE + i`.
pub const VCPU_REMOTE_BASE: u32 = 0x100;
/// The hypervisor's port for buffered requests.
pub const BUF_REMOTE: u32 = 0xff;
/// The simulated guest RAM's largest size (reserved, allocated as touched).
pub const GUEST_RAM_MAX: usize = 64 << 20;
/// How long the routed accesses of [`SimVcpu`] wait for an answer.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `dev` on `session` while `guest` runs in a thread of its own (the
/// guest's side: accesses through [`SimXen::vcpu`], as many vCPUs as it
/// likes); the session stops when `guest` returns or panics. Returns what
/// `guest` returned; a panic in `guest` goes on here once the session
/// stopped, and so does a session that failed or ended otherwise.
///
/// Attach a [`Bus`](xendevicemodel_ioreq::Bus) first (`bus.attach(session.server())`)
/// when the guest's first access must already be routed to it.
pub fn serve_while<H, T>(session: &mut Session, dev: &mut H, guest: impl FnOnce() -> T + Send + 'static) -> T
where
    H: Handler + ?Sized,
    T: Send + 'static,
{
    /// Stops the session when the guest's thread ends, however it ends.
    struct StopOnDrop(Stopper);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            self.0.stop();
        }
    }
    let stop = StopOnDrop(session.stopper());
    let guest = std::thread::spawn(move || {
        let _stop = stop;
        guest()
    });
    let exit = session.run(dev);
    let seen = guest.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    match exit {
        Ok(Exit::Stopped) => seen,
        other => panic!("the session ended otherwise than stopped by the guest's end: {other:?}"),
    }
}

/// How the two sides wait for each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitMode {
    /// Mutexes and condition variables: sleeping threads (the realistic
    /// cost of a wake-up, as with an event channel).
    Block,
    /// Busy polling: measures the session itself, without wake-up latency.
    Spin,
}

struct PageSet {
    ioreq: Box<IoreqPage>,
    buffered: Box<BufferedPage>,
}

#[derive(Default)]
struct ServerState {
    id: Option<IoServId>,
    enabled: bool,
    buffered: bool,
    claimed: Vec<IoRange>,
    pages: Option<Arc<PageSet>>,
}

/// A map from port to port, for the small port numbers the simulator
/// hands out (a vector: no hashing on the hot path).
#[derive(Default)]
struct PortTable(Vec<u32>);

impl PortTable {
    const NONE: u32 = u32::MAX;
    fn get(&self, p: u32) -> Option<u32> {
        self.0.get(p as usize).copied().filter(|&v| v != Self::NONE)
    }
    fn insert(&mut self, p: u32, v: u32) {
        if self.0.len() <= p as usize {
            self.0.resize(p as usize + 1, Self::NONE);
        }
        self.0[p as usize] = v;
    }
    fn remove(&mut self, p: u32) -> Option<u32> {
        let v = self.get(p)?;
        self.0[p as usize] = Self::NONE;
        Some(v)
    }
}

/// Per local port: masked (fired, not yet unmasked) and pending (fired while masked).
#[derive(Default, Clone, Copy)]
struct PortState {
    masked: bool,
    pending: bool,
}

#[derive(Default)]
struct EvState {
    next_local: u32,
    local_to_remote: PortTable,
    remote_to_local: PortTable,
    /// Indexed by local port; ports beyond it were never bound.
    ports: Vec<PortState>,
    queue: VecDeque<u32>,
    stop: bool,
    signal: Option<i32>,
    /// The session's thread sleeps in `wait` (Block mode).
    sleeping: bool,
}

impl EvState {
    fn port(&mut self, p: u32) -> Option<&mut PortState> {
        self.ports.get_mut(p as usize)
    }
}

struct Shared {
    nr_vcpus: u32,
    mode: WaitMode,
    domid: Mutex<Option<DomId>>,
    calls: Mutex<Vec<String>>,
    fail: Mutex<Vec<(String, Errno)>>,
    next_id: Mutex<IoServId>,
    server: Mutex<ServerState>,
    intx: Mutex<HashMap<(u8, u8), bool>>,
    ev: Mutex<EvState>,
    ev_cv: Condvar,
    queued: AtomicU32,
    /// One lock (true while the vCPU sleeps) and condition variable per vCPU, for its answers.
    wake: Vec<(Mutex<bool>, Condvar)>,
    notified: Vec<AtomicU64>,
    /// Guest RAM: GUEST_RAM_MAX reserved, `guest_len` of it present.
    ram: Arc<Mapping>,
    guest_len: Mutex<usize>,
    recording: AtomicBool,
}

/// The simulated hypervisor (share it with `Arc`; pass it to
/// [`Session::with_backend`](xendevicemodel_ioreq::Session::with_backend)).
pub struct SimXen {
    sh: Arc<Shared>,
}

impl fmt::Debug for SimXen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SimXen {{ nr_vcpus: {} }}", self.sh.nr_vcpus)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not hide the state from the others.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl SimXen {
    /// A domain with `nr_vcpus` vCPUs whose two sides block on each other.
    pub fn new(nr_vcpus: u32) -> Arc<SimXen> {
        SimXen::with_mode(nr_vcpus, WaitMode::Block)
    }

    /// A domain with `nr_vcpus` vCPUs, waiting as `mode` says.
    pub fn with_mode(nr_vcpus: u32, mode: WaitMode) -> Arc<SimXen> {
        let n = nr_vcpus.min(SLOTS_PER_PAGE as u32) as usize;
        Arc::new(SimXen {
            sh: Arc::new(Shared {
                nr_vcpus,
                mode,
                domid: Mutex::new(None),
                calls: Mutex::new(Vec::new()),
                fail: Mutex::new(Vec::new()),
                next_id: Mutex::new(1),
                server: Mutex::new(ServerState::default()),
                intx: Mutex::new(HashMap::new()),
                ev: Mutex::new(EvState { next_local: 5, ..EvState::default() }),
                ev_cv: Condvar::new(),
                queued: AtomicU32::new(0),
                wake: (0..n).map(|_| (Mutex::new(false), Condvar::new())).collect(),
                notified: (0..n).map(|_| AtomicU64::new(0)).collect(),
                ram: Arc::new(Mapping::anonymous(GUEST_RAM_MAX / PAGE_SIZE).expect("reserve the simulated guest RAM")),
                guest_len: Mutex::new(GuestChunk::BYTES as usize),
                recording: AtomicBool::new(true),
            }),
        })
    }

    /// Every operation the session made so far, one line each.
    pub fn calls(&self) -> Vec<String> {
        lock(&self.sh.calls).clone()
    }

    /// The operations so far, forgetting them.
    pub fn take_calls(&self) -> Vec<String> {
        core::mem::take(&mut *lock(&self.sh.calls))
    }

    /// Stops (or resumes) recording operations (benchmarks).
    pub fn set_recording(&self, on: bool) {
        self.sh.recording.store(on, Relaxed);
    }

    /// The next operation called `op` (the first word of its line in
    /// [`calls`](Self::calls): `"bind"`, `"map_ioreq_pages"`, ...) fails with `errno`.
    pub fn fail_next(&self, op: &str, errno: Errno) {
        lock(&self.sh.fail).push((op.to_string(), errno));
    }

    /// Whether the server exists and is enabled.
    pub fn enabled(&self) -> bool {
        lock(&self.sh.server).enabled
    }

    /// Whether a server exists.
    pub fn server_exists(&self) -> bool {
        lock(&self.sh.server).id.is_some()
    }

    /// The ranges the server claims now.
    pub fn claimed(&self) -> Vec<IoRange> {
        lock(&self.sh.server).claimed.clone()
    }

    /// The level of INTx pin `pin` of PCI slot `device` (0-31).
    pub fn intx(&self, device: u8, pin: u8) -> bool {
        lock(&self.sh.intx).get(&(device, pin)).copied().unwrap_or(false)
    }

    /// vCPU `vcpu`'s side. Panics unless a server exists and `vcpu` is one of the domain's.
    pub fn vcpu(&self, vcpu: u32) -> SimVcpu {
        assert!(vcpu < self.sh.nr_vcpus, "vCPU {vcpu} of {}", self.sh.nr_vcpus);
        let pages = lock(&self.sh.server).pages.clone().expect("no ioreq server yet");
        SimVcpu { sh: self.sh.clone(), pages, vcpu }
    }

    /// How many times the session notified vCPU `vcpu`.
    pub fn notifications(&self, vcpu: u32) -> u64 {
        self.sh.notified[vcpu as usize].load(SeqCst)
    }

    /// Writes buffered requests at the write pointer, publishes them and
    /// notifies the buffered port, as Xen does for posted writes.
    pub fn buffered_write(&self, entries: &[RawBufIoreq]) {
        let pages = lock(&self.sh.server).pages.clone().expect("no ioreq server yet");
        let bp = &pages.buffered;
        let mut w = bp.write_pointer();
        for e in entries {
            bp.slot(w).store(e);
            w = w.wrapping_add(1);
        }
        bp.set_write_pointer(w);
        self.sh.fire(BUF_REMOTE);
    }

    /// The buffered page's read and write pointers.
    pub fn buffered_pointers(&self) -> (u32, u32) {
        let pages = lock(&self.sh.server).pages.clone().expect("no ioreq server yet");
        (pages.buffered.read_pointer(), pages.buffered.write_pointer())
    }

    /// Makes the session's event channel report local port `port` as fired,
    /// bound or not (a confused kernel, for tests).
    pub fn deliver_port(&self, port: u32) {
        lock(&self.sh.ev).queue.push_back(port);
        self.sh.queued.fetch_add(1, Release);
        self.sh.ev_cv.notify_all();
    }

    /// Simulates a signal: the session's wait returns [`Wake::Signal`].
    pub fn raise_signal(&self, sig: i32) {
        lock(&self.sh.ev).signal = Some(sig);
        self.sh.ev_cv.notify_all();
    }

    /// Guest RAM, from guest-physical address 0 (64 KiB unless grown).
    pub fn guest_memory(&self) -> Vec<u8> {
        let mut v = vec![0; *lock(&self.sh.guest_len)];
        self.sh.ram.read(0, &mut v).expect("anonymous memory has no failed page");
        v
    }

    /// Writes guest RAM at `gpa`, growing it (in 64 KiB chunks) to fit.
    /// Panics past [`GUEST_RAM_MAX`].
    pub fn write_guest_memory(&self, gpa: usize, bytes: &[u8]) {
        let end = gpa.checked_add(bytes.len()).filter(|&e| e <= GUEST_RAM_MAX);
        let end = end.unwrap_or_else(|| panic!("{} bytes at {gpa:#x}: past the simulated RAM", bytes.len()));
        let mut len = lock(&self.sh.guest_len);
        *len = (*len).max(end.next_multiple_of(GuestChunk::BYTES as usize));
        self.sh.ram.write(gpa, bytes).expect("anonymous memory has no failed page");
    }
}

impl Shared {
    fn record(&self, line: String) {
        if self.recording.load(Relaxed) {
            lock(&self.calls).push(line);
        }
    }

    /// Fails `op` if asked to (recorded), else Ok.
    fn injected(&self, op: &str) -> core::result::Result<(), Errno> {
        let mut f = lock(&self.fail);
        if let Some(i) = f.iter().position(|(o, _)| o == op) {
            let (_, e) = f.remove(i);
            drop(f);
            self.record(format!("{op} -> {e:?}"));
            return Err(e);
        }
        Ok(())
    }

    fn dm_fail(&self, op: &str) -> Result<()> {
        self.injected(op).map_err(|e| Error::Dm(xendevicemodel::Error::Os(e)))
    }

    fn os_fail(&self, op: &'static str) -> Result<()> {
        self.injected(op).map_err(|errno| Error::Os { what: op, errno })
    }

    fn check_domid(&self, domid: DomId) -> Result<()> {
        let mut d = lock(&self.domid);
        match *d {
            None => {
                *d = Some(domid);
                Ok(())
            }
            Some(x) if x == domid => Ok(()),
            Some(_) => Err(Error::Dm(xendevicemodel::Error::Os(Errno::ESRCH))),
        }
    }

    fn check_id(&self, id: IoServId) -> Result<MutexGuard<'_, ServerState>> {
        let s = lock(&self.server);
        if s.id != Some(id) {
            return Err(Error::Dm(xendevicemodel::Error::Os(Errno::ENOENT)));
        }
        Ok(s)
    }

    /// The hypervisor notifies its end `remote`: the bound local port fires
    /// (or, while masked, is left pending), as Linux's evtchn device does.
    fn fire(&self, remote: u32) {
        let mut ev = lock(&self.ev);
        let Some(local) = ev.remote_to_local.get(remote) else { return };
        let Some(st) = ev.port(local) else { return };
        if st.masked {
            st.pending = true;
            return;
        }
        st.masked = true;
        ev.queue.push_back(local);
        self.queued.fetch_add(1, Release);
        let sleeping = ev.sleeping;
        drop(ev);
        if sleeping {
            self.ev_cv.notify_one();
        }
    }
}

struct SimPages {
    sh: Arc<Shared>,
    set: Arc<PageSet>,
    buffered: bool,
    id: IoServId,
}

impl Pages for SimPages {
    fn ioreq(&self) -> &IoreqPage {
        &self.set.ioreq
    }
    fn buffered(&self) -> Option<&BufferedPage> {
        self.buffered.then_some(&*self.set.buffered)
    }
}

impl Drop for SimPages {
    fn drop(&mut self) {
        self.sh.record(format!("unmap_ioreq_pages id={}", self.id));
    }
}

struct SimEvents {
    sh: Arc<Shared>,
    bound: Vec<u32>,
    signals: bool,
}

impl Events for SimEvents {
    fn bind(&mut self, domid: DomId, remote: u32) -> Result<u32> {
        self.sh.os_fail("bind")?;
        self.sh.check_domid(domid)?;
        let mut ev = lock(&self.sh.ev);
        if ev.remote_to_local.get(remote).is_some() || remote >= 1 << 16 {
            return Err(Error::Os { what: "bind", errno: Errno::EINVAL });
        }
        let local = ev.next_local;
        ev.next_local += 1;
        ev.local_to_remote.insert(local, remote);
        ev.remote_to_local.insert(remote, local);
        if ev.ports.len() <= local as usize {
            ev.ports.resize(local as usize + 1, PortState::default());
        }
        // As Xen's EVTCHNOP_bind_interdomain: the new port starts pending
        // (a notification sent before the bind must not be lost).
        ev.ports[local as usize] = PortState { masked: true, ..PortState::default() };
        ev.queue.push_back(local);
        self.sh.queued.fetch_add(1, Release);
        drop(ev);
        self.bound.push(local);
        self.sh.record(format!("bind remote={remote} -> {local}"));
        Ok(local)
    }

    fn unbind(&mut self, port: u32) -> Result<()> {
        let mut ev = lock(&self.sh.ev);
        let remote = ev.local_to_remote.remove(port).ok_or(Error::Os { what: "unbind", errno: Errno::EINVAL })?;
        ev.remote_to_local.remove(remote);
        if let Some(st) = ev.port(port) {
            *st = PortState::default();
        }
        ev.queue.retain(|&p| p != port);
        drop(ev);
        self.bound.retain(|&p| p != port);
        self.sh.record(format!("unbind {port}"));
        Ok(())
    }

    fn notify(&self, port: u32) -> Result<()> {
        let remote =
            lock(&self.sh.ev).local_to_remote.get(port).ok_or(Error::Os { what: "notify", errno: Errno::EINVAL })?;
        let v = remote.wrapping_sub(VCPU_REMOTE_BASE) as usize;
        if let (Some(n), Some((m, cv))) = (self.sh.notified.get(v), self.sh.wake.get(v)) {
            n.fetch_add(1, SeqCst);
            if self.sh.mode == WaitMode::Block {
                // Under the vCPU's lock, so that a vCPU about to sleep sees
                // the state we published or gets this wake-up.
                if *lock(m) {
                    cv.notify_one();
                }
            }
        }
        Ok(())
    }

    fn unmask(&mut self, port: u32) -> Result<()> {
        let mut ev = lock(&self.sh.ev);
        let Some(st) = ev.port(port) else { return Ok(()) };
        st.masked = false;
        if st.pending {
            st.pending = false;
            st.masked = true;
            ev.queue.push_back(port);
            self.sh.queued.fetch_add(1, Release);
        }
        Ok(())
    }

    fn wait(&mut self, ports: &mut [u32], timeout: Option<Duration>) -> Result<Wake> {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut spins = 0u32;
        loop {
            if self.sh.mode == WaitMode::Spin && self.sh.queued.load(Acquire) == 0 {
                // Poll without the lock; look at the rest now and then.
                spins += 1;
                if spins % 256 != 0 {
                    core::hint::spin_loop();
                    continue;
                }
                if spins % 4096 == 0 {
                    std::thread::yield_now();
                }
            }
            let mut ev = lock(&self.sh.ev);
            if core::mem::take(&mut ev.stop) {
                return Ok(Wake::Stopped);
            }
            if let Some(s) = ev.signal.take() {
                return Ok(Wake::Signal(s));
            }
            if self.signals {
                if let Some(s) = xendevicemodel_ioreq::stop_signal() {
                    return Ok(Wake::Signal(s));
                }
            }
            if !ev.queue.is_empty() {
                let mut n = 0;
                while n < ports.len() {
                    let Some(p) = ev.queue.pop_front() else { break };
                    ports[n] = p;
                    n += 1;
                }
                self.sh.queued.fetch_sub(n as u32, Release);
                return Ok(Wake::Ports(n));
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return Ok(Wake::Timeout);
            }
            if self.sh.mode == WaitMode::Block {
                // Real signals cannot wake a condition variable: look again every 20 ms.
                let slice = Duration::from_millis(20);
                let t = deadline.map_or(slice, |d| (d - now).min(slice));
                ev.sleeping = true;
                let mut ev = self.sh.ev_cv.wait_timeout(ev, t).unwrap_or_else(|e| e.into_inner()).0;
                ev.sleeping = false;
            }
        }
    }

    fn stopper(&self) -> Stopper {
        let sh = self.sh.clone();
        Stopper::new(move || {
            lock(&sh.ev).stop = true;
            sh.ev_cv.notify_all();
        })
    }
}

impl Drop for SimEvents {
    fn drop(&mut self) {
        for p in self.bound.clone() {
            let _ = self.unbind(p);
        }
        self.sh.record("close events".to_string());
    }
}

impl Backend for SimXen {
    fn nr_vcpus(&self, domid: DomId) -> Result<u32> {
        self.sh.dm_fail("nr_vcpus")?;
        self.sh.check_domid(domid)?;
        Ok(self.sh.nr_vcpus)
    }

    fn create_ioreq_server(&self, domid: DomId, buffered: BufIoreq) -> Result<IoServId> {
        self.sh.dm_fail("create_ioreq_server")?;
        self.sh.check_domid(domid)?;
        let mut s = lock(&self.sh.server);
        if s.id.is_some() {
            // One server per simulated domain is all the tests need.
            return Err(Error::Dm(xendevicemodel::Error::Os(EEXIST)));
        }
        let id = {
            let mut n = lock(&self.sh.next_id);
            *n += 1;
            *n - 1
        };
        let set = PageSet { ioreq: IoreqPage::new_boxed(), buffered: BufferedPage::new_boxed() };
        for v in 0..self.sh.nr_vcpus.min(SLOTS_PER_PAGE as u32) {
            set.ioreq.slot(v).expect("within the page").set_vp_eport(VCPU_REMOTE_BASE + v);
        }
        *s = ServerState {
            id: Some(id),
            buffered: buffered != BufIoreq::Off,
            pages: Some(Arc::new(set)),
            ..Default::default()
        };
        drop(s);
        self.sh.record(format!("create_ioreq_server dom={domid} bufioreq={buffered:?} -> {id}"));
        Ok(id)
    }

    fn map_ioreq_pages(&self, _domid: DomId, id: IoServId, buffered: bool) -> Result<Box<dyn Pages>> {
        self.sh.os_fail("map_ioreq_pages")?;
        let s = self.sh.check_id(id)?;
        if buffered && !s.buffered {
            return Err(Error::Os { what: "map_ioreq_pages", errno: Errno::EINVAL });
        }
        let set = s.pages.clone().expect("a server has pages");
        drop(s);
        self.sh.record(format!("map_ioreq_pages id={id} buffered={buffered}"));
        Ok(Box::new(SimPages { sh: self.sh.clone(), set, buffered, id }))
    }

    fn bufioreq_port(&self, _domid: DomId, id: IoServId) -> Result<u32> {
        self.sh.dm_fail("bufioreq_port")?;
        drop(self.sh.check_id(id)?);
        self.sh.record(format!("bufioreq_port id={id} -> {BUF_REMOTE}"));
        Ok(BUF_REMOTE)
    }

    fn set_ioreq_server_state(&self, _domid: DomId, id: IoServId, enabled: bool) -> Result<()> {
        self.sh.dm_fail("set_ioreq_server_state")?;
        self.sh.check_id(id)?.enabled = enabled;
        self.sh.record(format!("set_ioreq_server_state id={id} enabled={enabled}"));
        Ok(())
    }

    fn destroy_ioreq_server(&self, _domid: DomId, id: IoServId) -> Result<()> {
        self.sh.dm_fail("destroy_ioreq_server")?;
        let mut s = self.sh.check_id(id)?;
        // The pages stay with whoever still maps them, as in Xen.
        *s = ServerState::default();
        drop(s);
        self.sh.record(format!("destroy_ioreq_server id={id}"));
        Ok(())
    }

    fn claim(&self, _domid: DomId, id: IoServId, range: IoRange, claim: bool) -> Result<()> {
        let op = if claim { "claim" } else { "release" };
        self.sh.dm_fail(op)?;
        let mut s = self.sh.check_id(id)?;
        if claim {
            if s.claimed.contains(&range) {
                return Err(Error::Dm(xendevicemodel::Error::Os(EEXIST)));
            }
            s.claimed.push(range);
        } else {
            let i = s.claimed.iter().position(|r| *r == range);
            let i = i.ok_or(Error::Dm(xendevicemodel::Error::Os(Errno::ENOENT)))?;
            s.claimed.remove(i);
        }
        drop(s);
        self.sh.record(format!("{op} id={id} {range}"));
        Ok(())
    }

    fn interrupt(&self, domid: DomId, irq: Interrupt) -> Result<()> {
        self.sh.dm_fail("interrupt")?;
        self.sh.check_domid(domid)?;
        if let Interrupt::PciIntx { sbdf, pin, level } = irq {
            lock(&self.sh.intx).insert((sbdf.device(), pin), level);
        }
        self.sh.record(format!("interrupt {irq}"));
        Ok(())
    }

    fn open_events(&self, stop_on_signals: bool) -> Result<Box<dyn Events>> {
        self.sh.os_fail("open_events")?;
        if stop_on_signals {
            xendevicemodel_ioreq::install_stop_signals()?;
        }
        self.sh.record(format!("open_events signals={stop_on_signals}"));
        Ok(Box::new(SimEvents { sh: self.sh.clone(), bound: Vec::new(), signals: stop_on_signals }))
    }

    fn guest_chunk(&self, _domid: DomId, n: u64) -> Result<GuestChunk> {
        self.sh.os_fail("guest_chunk")?;
        let len = *lock(&self.sh.guest_len) as u64;
        match n.checked_add(1).and_then(|e| e.checked_mul(GuestChunk::BYTES)) {
            Some(end) if end <= len => GuestChunk::new(n, self.sh.ram.clone(), (n * GuestChunk::BYTES) as usize),
            _ => Err(Error::Os { what: "guest memory", errno: Errno::EFAULT }),
        }
    }
}

const EEXIST: Errno = Errno::from_raw(libc::EEXIST);

/// A port request (as Xen would write it; `data` is the value of a write).
pub fn pio(port: u16, size: Size, read: bool, data: u64) -> RawIoreq {
    RawIoreq {
        addr: port as u64,
        data,
        count: 1,
        size: size.bytes(),
        dir_read: read,
        type_: IOREQ_TYPE_PIO,
        ..Default::default()
    }
}

/// An MMIO request.
pub fn mmio(addr: u64, size: Size, read: bool, data: u64) -> RawIoreq {
    RawIoreq { addr, data, count: 1, size: size.bytes(), dir_read: read, type_: IOREQ_TYPE_COPY, ..Default::default() }
}

/// A PCI config request.
pub fn pci_config(sbdf: Sbdf, reg: u16, size: Size, read: bool, data: u64) -> RawIoreq {
    RawIoreq {
        addr: ((sbdf.raw() as u64) << 32) | reg as u64,
        data,
        count: 1,
        size: size.bytes(),
        dir_read: read,
        type_: IOREQ_TYPE_PCI_CONFIG,
        ..Default::default()
    }
}

/// One simulated vCPU: writes requests into its slot, notifies the
/// session, waits for the answer, as Xen does for a vCPU that exits to the
/// device model.
pub struct SimVcpu {
    sh: Arc<Shared>,
    pages: Arc<PageSet>,
    vcpu: u32,
}

impl fmt::Debug for SimVcpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SimVcpu({})", self.vcpu)
    }
}

impl SimVcpu {
    /// Its slot of the ioreq page.
    pub fn slot(&self) -> &IoreqSlot {
        self.pages.ioreq.slot(self.vcpu).expect("checked at creation")
    }

    /// Writes `req` into the slot in state READY (with this vCPU's port) and notifies.
    pub fn submit(&self, req: &RawIoreq) {
        let r = RawIoreq { state: STATE_IOREQ_READY, vp_eport: VCPU_REMOTE_BASE + self.vcpu, ..*req };
        self.slot().store(&r);
        self.notify();
    }

    /// Notifies the session without touching the slot.
    pub fn notify(&self) {
        self.sh.fire(VCPU_REMOTE_BASE + self.vcpu);
    }

    /// Waits for IORESP_READY, takes the data, frees the slot (state NONE).
    /// `None` if no answer came within `timeout`.
    pub fn wait_response(&self, timeout: Duration) -> Option<u64> {
        let slot = self.slot();
        let deadline = Instant::now() + timeout;
        match self.sh.mode {
            WaitMode::Spin => {
                let mut spins = 0u32;
                while slot.state() != STATE_IORESP_READY {
                    spins = spins.wrapping_add(1);
                    core::hint::spin_loop();
                    if spins % 4096 == 0 {
                        if Instant::now() >= deadline {
                            return None;
                        }
                        std::thread::yield_now();
                    }
                }
            }
            WaitMode::Block => {
                let (m, cv) = &self.sh.wake[self.vcpu as usize];
                let mut g = lock(m);
                while slot.state() != STATE_IORESP_READY {
                    let now = Instant::now();
                    if now >= deadline {
                        *g = false;
                        return None;
                    }
                    *g = true;
                    g = cv.wait_timeout(g, deadline - now).unwrap_or_else(|e| e.into_inner()).0;
                }
                *g = false;
            }
        }
        let data = slot.data();
        slot.set_state(STATE_IOREQ_NONE);
        Some(data)
    }

    /// Submits `req` and waits for the answer ([`ANSWER_TIMEOUT`]).
    pub fn request(&self, req: &RawIoreq) -> Option<u64> {
        self.submit(req);
        self.wait_response(ANSWER_TIMEOUT)
    }

    /// Whether Xen would send an access to `range`-kind address `addr` to the server.
    fn routed(&self, hit: impl Fn(&IoRange) -> bool) -> bool {
        let s = lock(&self.sh.server);
        s.enabled && s.claimed.iter().any(hit)
    }

    /// A port read as the guest sees it: `None` unless the server claims the
    /// port (Xen would send it elsewhere) or if no answer came.
    pub fn pio_read(&self, port: u16, size: Size) -> Option<u64> {
        self.routed(|r| matches!(*r, IoRange::Port { start, end } if start <= port && port <= end))
            .then(|| self.request(&pio(port, size, true, 0)))?
    }

    /// A port write; `None` unless claimed and answered.
    pub fn pio_write(&self, port: u16, size: Size, value: u64) -> Option<()> {
        self.routed(|r| matches!(*r, IoRange::Port { start, end } if start <= port && port <= end))
            .then(|| self.request(&pio(port, size, false, value)).map(drop))?
    }

    /// An MMIO read; `None` unless claimed and answered.
    pub fn mmio_read(&self, addr: u64, size: Size) -> Option<u64> {
        self.routed(|r| matches!(*r, IoRange::Mmio { start, end } if start <= addr && addr <= end))
            .then(|| self.request(&mmio(addr, size, true, 0)))?
    }

    /// An MMIO write; `None` unless claimed and answered.
    pub fn mmio_write(&self, addr: u64, size: Size, value: u64) -> Option<()> {
        self.routed(|r| matches!(*r, IoRange::Mmio { start, end } if start <= addr && addr <= end))
            .then(|| self.request(&mmio(addr, size, false, value)).map(drop))?
    }

    /// A config read of a claimed PCI function; `None` unless claimed and answered.
    pub fn pci_config_read(&self, sbdf: Sbdf, reg: u16, size: Size) -> Option<u64> {
        self.routed(|r| *r == IoRange::Pci(sbdf)).then(|| self.request(&pci_config(sbdf, reg, size, true, 0)))?
    }

    /// A config write of a claimed PCI function; `None` unless claimed and answered.
    pub fn pci_config_write(&self, sbdf: Sbdf, reg: u16, size: Size, value: u64) -> Option<()> {
        self.routed(|r| *r == IoRange::Pci(sbdf))
            .then(|| self.request(&pci_config(sbdf, reg, size, false, value)).map(drop))?
    }
}
