//! Coverage-guided fuzzing of the C ABI (libFuzzer), with Xen's own library as
//! a differential oracle.
//!
//! An input is a sequence of up to 64 operations: open, close, the 24 calls
//! with arbitrary arguments (huge and zero counts, extreme ranges, NULL
//! out-pointers and buffers, injected hypervisor errors), restrict, calls on
//! handles that are not open (closed in this input or in any earlier one,
//! never opened, an open handle's key with one bit flipped, arbitrary
//! values), and the handles' life around them: up to 8 open/close cycles
//! whose keys must all differ (and then stay dead), a fork() whose child
//! must find every inherited handle refused, and dlclose/dlopen cycles of the
//! library's shared object (`XDM_FUZZ_LIB`, when the harness gives it).
//! Everything runs under the privcmd test double (LD_PRELOAD), which records
//! every request.
//!
//! Where Xen's library is defined for an operation, the same operation runs
//! on a handle of Xen's library (loaded with dlopen) opened in step with ours,
//! and rc, errno, out-values and the bytes of every request must be
//! identical. Where it is not (a handle that is not open, a NULL required
//! out-pointer, the documented differences in docs/differences.md), ours alone runs and
//! must answer as documented: -1 with the documented errno and nothing sent.
//! Any difference or crash is a finding (the input is kept by libFuzzer).
#![no_main]

use libc::{c_int, c_uint, c_ulong, c_void};
use libfuzzer_sys::fuzz_target;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::OnceLock;
use xendevicemodel_rs::ffi as ours;

type H = *mut c_void;

/// `struct fp_record` of tests/fake/fakeprivcmd.h.
#[repr(C)]
struct FpRecord {
    kind: c_int,
    fd: c_int,
    domid: u16,
    nr_bufs: c_uint,
    size: [usize; 16],
    is_null: [c_int; 16],
    data: [[u8; 4096]; 2],
    rc: c_int,
    err: c_int,
}

/// A request as privcmd saw it, without the descriptor number.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    kind: c_int,
    domid: u16,
    sizes: Vec<usize>,
    nulls: Vec<c_int>,
    bytes: Vec<Vec<u8>>,
    rc: c_int,
    err: c_int,
}

/// The outcome of one operation.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    rc: i64,
    errno: c_int,
    outs: Vec<u64>,
    requests: Vec<Request>,
}

macro_rules! sym {
    ($lib:expr, $name:literal, $t:ty) => {{
        // SAFETY: the symbol has this C signature (Xen's header, or fakeprivcmd.h).
        let p = unsafe { libc::dlsym($lib, concat!($name, "\0").as_ptr().cast()) };
        assert!(!p.is_null(), "{} not found", $name);
        unsafe { core::mem::transmute::<*mut c_void, $t>(p) }
    }};
}

/// Xen's library (dlopen'ed) and the double's control functions.
struct Env {
    open: unsafe extern "C" fn(*mut c_void, c_uint) -> H,
    close: unsafe extern "C" fn(H) -> c_int,
    create: unsafe extern "C" fn(H, u16, c_int, *mut u16) -> c_int,
    info: unsafe extern "C" fn(H, u16, u16, *mut c_ulong, *mut c_ulong, *mut u32) -> c_int,
    map_io: unsafe extern "C" fn(H, u16, u16, c_int, u64, u64) -> c_int,
    unmap_io: unsafe extern "C" fn(H, u16, u16, c_int, u64, u64) -> c_int,
    map_mem: unsafe extern "C" fn(H, u16, u16, u16, u32) -> c_int,
    map_pci: unsafe extern "C" fn(H, u16, u16, u16, u8, u8, u8) -> c_int,
    unmap_pci: unsafe extern "C" fn(H, u16, u16, u16, u8, u8, u8) -> c_int,
    destroy: unsafe extern "C" fn(H, u16, u16) -> c_int,
    state: unsafe extern "C" fn(H, u16, u16, c_int) -> c_int,
    intx: unsafe extern "C" fn(H, u16, u16, u8, u8, u8, c_uint) -> c_int,
    isa: unsafe extern "C" fn(H, u16, u8, c_uint) -> c_int,
    irq: unsafe extern "C" fn(H, u16, c_uint, c_uint) -> c_int,
    link: unsafe extern "C" fn(H, u16, u8, u8) -> c_int,
    msi: unsafe extern "C" fn(H, u16, u64, u32) -> c_int,
    vram: unsafe extern "C" fn(H, u16, u64, u32, *mut c_ulong) -> c_int,
    modified: unsafe extern "C" fn(H, u16, u64, u32) -> c_int,
    bulk: unsafe extern "C" fn(H, u16, *mut xendevicemodel::Extent, u32) -> c_int,
    mem_type: unsafe extern "C" fn(H, u16, c_uint, u64, u32) -> c_int,
    event: unsafe extern "C" fn(H, u16, c_int, u8, u8, u32, u8, u64) -> c_int,
    shutdown: unsafe extern "C" fn(H, u16, c_uint) -> c_int,
    relocate: unsafe extern "C" fn(H, u16, u32, u64, u64) -> c_int,
    pin: unsafe extern "C" fn(H, u16, u64, u64, u32) -> c_int,
    vcpus: unsafe extern "C" fn(H, u16, *mut c_uint) -> c_int,
    restrict: unsafe extern "C" fn(H, u16) -> c_int,
    fp_count: unsafe extern "C" fn() -> c_ulong,
    fp_get: unsafe extern "C" fn(c_ulong) -> *const FpRecord,
    fp_reset: unsafe extern "C" fn(),
    fp_fail_next: unsafe extern "C" fn(c_int, c_int, c_int),
}

// SAFETY: plain function pointers.
unsafe impl Sync for Env {}
unsafe impl Send for Env {}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let path = std::env::var("XEN_LIBXENDEVICEMODEL")
            .unwrap_or_else(|_| "/usr/lib/x86_64-linux-gnu/libxendevicemodel.so.1".into());
        let cpath = std::ffi::CString::new(path.clone()).unwrap();
        // SAFETY: loading a library; RTLD_LOCAL keeps its symbols out of ours.
        let x = unsafe { libc::dlopen(cpath.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
        assert!(!x.is_null(), "cannot load Xen's library {path}");
        let d = libc::RTLD_DEFAULT;
        let e = Env {
            open: sym!(x, "xendevicemodel_open", _),
            close: sym!(x, "xendevicemodel_close", _),
            create: sym!(x, "xendevicemodel_create_ioreq_server", _),
            info: sym!(x, "xendevicemodel_get_ioreq_server_info", _),
            map_io: sym!(x, "xendevicemodel_map_io_range_to_ioreq_server", _),
            unmap_io: sym!(x, "xendevicemodel_unmap_io_range_from_ioreq_server", _),
            map_mem: sym!(x, "xendevicemodel_map_mem_type_to_ioreq_server", _),
            map_pci: sym!(x, "xendevicemodel_map_pcidev_to_ioreq_server", _),
            unmap_pci: sym!(x, "xendevicemodel_unmap_pcidev_from_ioreq_server", _),
            destroy: sym!(x, "xendevicemodel_destroy_ioreq_server", _),
            state: sym!(x, "xendevicemodel_set_ioreq_server_state", _),
            intx: sym!(x, "xendevicemodel_set_pci_intx_level", _),
            isa: sym!(x, "xendevicemodel_set_isa_irq_level", _),
            irq: sym!(x, "xendevicemodel_set_irq_level", _),
            link: sym!(x, "xendevicemodel_set_pci_link_route", _),
            msi: sym!(x, "xendevicemodel_inject_msi", _),
            vram: sym!(x, "xendevicemodel_track_dirty_vram", _),
            modified: sym!(x, "xendevicemodel_modified_memory", _),
            bulk: sym!(x, "xendevicemodel_modified_memory_bulk", _),
            mem_type: sym!(x, "xendevicemodel_set_mem_type", _),
            event: sym!(x, "xendevicemodel_inject_event", _),
            shutdown: sym!(x, "xendevicemodel_shutdown", _),
            relocate: sym!(x, "xendevicemodel_relocate_memory", _),
            pin: sym!(x, "xendevicemodel_pin_memory_cacheattr", _),
            vcpus: sym!(x, "xendevicemodel_nr_vcpus", _),
            restrict: sym!(x, "xendevicemodel_restrict", _),
            fp_count: sym!(d, "fp_count", _),
            fp_get: sym!(d, "fp_get", _),
            fp_reset: sym!(d, "fp_reset", _),
            fp_fail_next: sym!(d, "fp_fail_next", _),
        };
        // The oracle is only as good as the interception: Xen's library must
        // reach the double, not the kernel.
        unsafe {
            let h = (e.open)(core::ptr::null_mut(), 0);
            assert!(!h.is_null() && (e.fp_count)() > 0, "run under LD_PRELOAD=build/libfakeprivcmd.so");
            (e.close)(h);
        }
        e
    })
}

/// Reads the fuzzer's bytes.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        *b
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte(), self.byte()])
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }
    fn u64(&mut self) -> u64 {
        (self.u32() as u64) | ((self.u32() as u64) << 32)
    }
    /// A domain id: mostly the interesting ones.
    fn domid(&mut self) -> u16 {
        match self.byte() % 8 {
            0 => 0,          // ourselves: EPERM
            1 => 0x7ff0,     // the double's unknown domain: ESRCH
            2 => 0x7ff4,     // DOMID_INVALID
            3 => self.u16(), // anything
            _ => 5,
        }
    }
    /// A 32-bit count: zero, small, around the limits, or anything.
    fn count(&mut self) -> u32 {
        match self.byte() % 8 {
            0 => 0,
            1 => 1,
            2 => 255 + (self.byte() % 3) as u32,
            3 => 32768 + (self.byte() % 3) as u32 - 1,
            4 => u32::MAX - (self.byte() % 9) as u32,
            5 => self.u32(),
            _ => self.byte() as u32,
        }
    }
    fn done(&self) -> bool {
        self.0.is_empty()
    }
}

const SLOTS: usize = 4;

static FORKS_ASKED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Keys of ours closed in this input or earlier ones (the latest 4096): a
/// key is never given out twice, so they must stay refused for the rest of
/// the process's life, and no new key may equal one.
struct OldStale {
    ring: Vec<usize>,
    set: std::collections::HashSet<usize>,
}
static OLD_STALE: std::sync::Mutex<Option<OldStale>> = std::sync::Mutex::new(None);
const OLD_STALE_MAX: usize = 4096;

fn with_old<R>(f: impl FnOnce(&mut OldStale) -> R) -> R {
    let mut g = OLD_STALE.lock().unwrap_or_else(|p| p.into_inner());
    f(g.get_or_insert_with(|| OldStale { ring: Vec::new(), set: Default::default() }))
}

fn remember_stale(key: H) {
    with_old(|o| {
        let k = key as usize;
        if o.ring.len() >= OLD_STALE_MAX {
            let i = k % OLD_STALE_MAX;
            o.set.remove(&o.ring[i]);
            o.ring[i] = k;
        } else {
            o.ring.push(k);
        }
        o.set.insert(k);
    })
}

fn old_stale(pick: usize) -> Option<H> {
    with_old(|o| (!o.ring.is_empty()).then(|| o.ring[pick % o.ring.len()] as H))
}

/// Our library's shared object, loaded with dlopen (a second instance beside
/// the one linked in, with a table of its own): open, close and one call.
struct So {
    open: unsafe extern "C" fn(*mut c_void, c_uint) -> H,
    close: unsafe extern "C" fn(H) -> c_int,
    isa: unsafe extern "C" fn(H, u16, u8, c_uint) -> c_int,
}

fn dlopen_ours() -> Option<(*mut c_void, So)> {
    let path = std::env::var("XDM_FUZZ_LIB").ok()?;
    let cpath = std::ffi::CString::new(path).ok()?;
    // SAFETY: loading our own library; RTLD_LOCAL keeps its symbols apart.
    let lib = unsafe { libc::dlopen(cpath.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    assert!(!lib.is_null(), "XDM_FUZZ_LIB cannot be loaded");
    let so = So {
        open: sym!(lib, "xendevicemodel_open", _),
        close: sym!(lib, "xendevicemodel_close", _),
        isa: sym!(lib, "xendevicemodel_set_isa_irq_level", _),
    };
    Some((lib, so))
}

struct Run<'e> {
    e: &'e Env,
    /// Handles opened in step: Xen's and ours.
    xen: [H; SLOTS],
    ours: [H; SLOTS],
    /// Keys of ours that were closed (stale handles to try).
    stale: Vec<H>,
    /// The domain each slot's handle is restricted to.
    restricted: [Option<u16>; SLOTS],
    /// Whether this input has forked already.
    forked: bool,
}

fn errno() -> c_int {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

impl Run<'_> {
    /// The requests privcmd received since `from`.
    fn requests(&self, from: c_ulong) -> Vec<Request> {
        let mut v = Vec::new();
        // SAFETY: the double's records, read back right after the call.
        unsafe {
            for i in from..(self.e.fp_count)() {
                let r = (self.e.fp_get)(i);
                assert!(!r.is_null(), "more requests than the double's ring holds");
                let r = &*r;
                let n = (r.nr_bufs as usize).min(16);
                v.push(Request {
                    kind: r.kind,
                    domid: r.domid,
                    sizes: r.size[..n].to_vec(),
                    nulls: r.is_null[..n].to_vec(),
                    bytes: (0..n.min(2))
                        .map(|b| if r.is_null[b] != 0 { Vec::new() } else { r.data[b][..r.size[b].min(4096)].to_vec() })
                        .collect(),
                    rc: r.rc,
                    err: r.err,
                });
            }
        }
        v
    }

    /// Runs `call` with the double reset and `inject` armed; its outcome.
    fn observe(&self, inject: Option<(c_int, c_int)>, call: impl FnOnce() -> (i64, Vec<u64>)) -> Outcome {
        // SAFETY: the double's control functions.
        unsafe {
            (self.e.fp_reset)();
            if let Some((op, err)) = inject {
                (self.e.fp_fail_next)(op, err, 1);
            }
        }
        let from = unsafe { (self.e.fp_count)() };
        // SAFETY: errno is this thread's.
        unsafe { *libc::__errno_location() = 0 };
        let (rc, outs) = call();
        let errno = if rc == 0 || rc == 1 { 0 } else { errno() };
        Outcome { rc, errno, outs, requests: self.requests(from) }
    }

    /// Both libraries, same operation: identical outcomes.
    fn both(&self, what: &str, inject: Option<(c_int, c_int)>, x: impl FnOnce() -> (i64, Vec<u64>), o: impl FnOnce() -> (i64, Vec<u64>)) -> Outcome {
        let xo = self.observe(inject, x);
        let oo = self.observe(inject, o);
        assert_eq!(xo, oo, "{what}: Xen's library (left) and ours (right) differ");
        oo
    }

    /// Ours alone, on something Xen's library is not defined for: -1,
    /// `want` errno, and nothing sent.
    fn ours_refuses(&self, what: &str, want: c_int, o: impl FnOnce() -> (i64, Vec<u64>)) {
        let oo = self.observe(None, o);
        assert_eq!((oo.rc, oo.errno), (-1, want), "{what}: ours did not refuse with errno {want}");
        assert!(oo.requests.is_empty(), "{what}: ours sent {:?}", oo.requests);
    }
}

fn rc(r: c_int) -> i64 {
    r as i64
}

/// One call of the 24, decoded from the input, on slot `s` (both libraries)
/// or, with `bogus`, on a handle value of ours that is not open.
fn call(run: &mut Run<'_>, inp: &mut Input<'_>, s: usize, bogus: Option<H>) {
    let e = run.e;
    let (xh, oh) = (run.xen[s], bogus.unwrap_or(run.ours[s]));
    let kind = inp.byte() % 24;
    let dom = inp.domid();
    // Sometimes the hypervisor fails the next dm_op with an errno.
    let inject = match inp.byte() % 16 {
        0 => Some((-1, [libc::EINVAL, libc::ENOENT, libc::EOPNOTSUPP, libc::EBUSY][inp.byte() as usize % 4])),
        _ => None,
    };
    // `both!` for calls where Xen's library is defined; on a bogus handle only
    // ours runs and must refuse with EBADF.
    macro_rules! both {
        ($what:expr, |$h:ident| $call:expr) => {{
            if bogus.is_some() {
                run.ours_refuses($what, libc::EBADF, || { let $h = oh; $call });
            } else {
                let _ = run.both($what, inject, || { let $h = xh; $call }, || { let $h = oh; $call });
            }
        }};
    }
    // SAFETY (all calls below): every pointer passed is NULL or valid for
    // the size the function documents.
    unsafe {
        match kind {
            0 => {
                let bufioreq = inp.byte() as c_int - 64;
                if inp.byte() % 8 == 0 {
                    // A NULL id: Xen's library sends the request, then crashes.
                    let h = oh;
                    run.ours_refuses("create_ioreq_server(id NULL)", if bogus.is_some() { libc::EBADF } else { libc::EINVAL },
                        || (rc(ours::xendevicemodel_create_ioreq_server(h.cast(), dom, bufioreq, core::ptr::null_mut())), vec![]));
                } else {
                    both!("create_ioreq_server", |h| {
                        let mut id = 0xffffu16;
                        let r = if h == xh { (e.create)(h, dom, bufioreq, &mut id) } else { ours::xendevicemodel_create_ioreq_server(h.cast(), dom, bufioreq, &mut id) };
                        (rc(r), vec![id as u64])
                    })
                }
            }
            1 => {
                let id = inp.u16();
                let which = inp.byte();
                both!("get_ioreq_server_info", |h| {
                    let (mut g, mut b, mut p) = (0xaau64 as c_ulong, 0xbbu64 as c_ulong, 0xccu32);
                    let gp = if which & 1 != 0 { &mut g as *mut _ } else { core::ptr::null_mut() };
                    let bp = if which & 2 != 0 { &mut b as *mut _ } else { core::ptr::null_mut() };
                    let pp = if which & 4 != 0 { &mut p as *mut _ } else { core::ptr::null_mut() };
                    let r = if h == xh { (e.info)(h, dom, id, gp, bp, pp) } else { ours::xendevicemodel_get_ioreq_server_info(h.cast(), dom, id, gp, bp, pp) };
                    (rc(r), vec![g as u64, b as u64, p as u64])
                })
            }
            2 | 3 => {
                let (id, mmio, start, end) = (inp.u16(), inp.byte() as c_int % 3, inp.u64(), inp.u64());
                if kind == 2 {
                    both!("map_io_range", |h| (rc(if h == xh { (e.map_io)(h, dom, id, mmio, start, end) } else { ours::xendevicemodel_map_io_range_to_ioreq_server(h.cast(), dom, id, mmio, start, end) }), vec![]))
                } else {
                    both!("unmap_io_range", |h| (rc(if h == xh { (e.unmap_io)(h, dom, id, mmio, start, end) } else { ours::xendevicemodel_unmap_io_range_from_ioreq_server(h.cast(), dom, id, mmio, start, end) }), vec![]))
                }
            }
            4 => {
                let (id, t, f) = (inp.u16(), if inp.byte() % 2 == 0 { 4 } else { inp.u16() }, if inp.byte() % 2 == 0 { inp.byte() as u32 & 3 } else { inp.u32() });
                both!("map_mem_type", |h| (rc(if h == xh { (e.map_mem)(h, dom, id, t, f) } else { ours::xendevicemodel_map_mem_type_to_ioreq_server(h.cast(), dom, id, t, f) }), vec![]))
            }
            5 | 6 => {
                let (id, seg, bus, dev, func) = (inp.u16(), inp.u16(), inp.byte(), inp.byte() % 40, inp.byte() % 10);
                if kind == 5 {
                    both!("map_pcidev", |h| (rc(if h == xh { (e.map_pci)(h, dom, id, seg, bus, dev, func) } else { ours::xendevicemodel_map_pcidev_to_ioreq_server(h.cast(), dom, id, seg, bus, dev, func) }), vec![]))
                } else {
                    both!("unmap_pcidev", |h| (rc(if h == xh { (e.unmap_pci)(h, dom, id, seg, bus, dev, func) } else { ours::xendevicemodel_unmap_pcidev_from_ioreq_server(h.cast(), dom, id, seg, bus, dev, func) }), vec![]))
                }
            }
            7 => {
                let id = inp.u16();
                both!("destroy", |h| (rc(if h == xh { (e.destroy)(h, dom, id) } else { ours::xendevicemodel_destroy_ioreq_server(h.cast(), dom, id) }), vec![]))
            }
            8 => {
                let (id, en) = (inp.u16(), inp.u32() as c_int);
                both!("set_state", |h| (rc(if h == xh { (e.state)(h, dom, id, en) } else { ours::xendevicemodel_set_ioreq_server_state(h.cast(), dom, id, en) }), vec![]))
            }
            9 => {
                let (seg, bus, dev, intx, lvl) = (inp.u16(), inp.byte(), inp.byte(), inp.byte(), inp.count());
                both!("set_pci_intx_level", |h| (rc(if h == xh { (e.intx)(h, dom, seg, bus, dev, intx, lvl) } else { ours::xendevicemodel_set_pci_intx_level(h.cast(), dom, seg, bus, dev, intx, lvl) }), vec![]))
            }
            10 => {
                let (irq, lvl) = (inp.byte(), inp.count());
                both!("set_isa_irq_level", |h| (rc(if h == xh { (e.isa)(h, dom, irq, lvl) } else { ours::xendevicemodel_set_isa_irq_level(h.cast(), dom, irq, lvl) }), vec![]))
            }
            11 => {
                let (irq, lvl) = (inp.u32(), inp.count());
                both!("set_irq_level", |h| (rc(if h == xh { (e.irq)(h, dom, irq, lvl) } else { ours::xendevicemodel_set_irq_level(h.cast(), dom, irq, lvl) }), vec![]))
            }
            12 => {
                let (link, irq) = (inp.byte(), inp.byte());
                both!("set_pci_link_route", |h| (rc(if h == xh { (e.link)(h, dom, link, irq) } else { ours::xendevicemodel_set_pci_link_route(h.cast(), dom, link, irq) }), vec![]))
            }
            13 => {
                let (addr, data) = (inp.u64(), inp.u32());
                both!("inject_msi", |h| (rc(if h == xh { (e.msi)(h, dom, addr, data) } else { ours::xendevicemodel_inject_msi(h.cast(), dom, addr, data) }), vec![]))
            }
            14 => {
                let (pfn, nr) = (inp.u64(), inp.count());
                let null = inp.byte() % 4 == 0 || nr > 32768 * 2;
                if nr > 0xffff_fff8 {
                    // Xen's library computes a 0-byte bitmap (overflow): ours only.
                    let h = oh;
                    let o = run.observe(None, || (rc(ours::xendevicemodel_track_dirty_vram(h.cast(), dom, pfn, nr, core::ptr::null_mut())), vec![]));
                    assert_eq!(o.rc, -1, "track_dirty_vram nr {nr:#x}");
                    // privcmd checks a restricted file's domain before sizes.
                    let want = match (bogus, run.restricted[s]) {
                        (Some(_), _) => libc::EBADF,
                        (None, Some(r)) if r != dom => libc::EPERM,
                        _ => libc::E2BIG,
                    };
                    assert_eq!(o.errno, want, "track_dirty_vram nr {nr:#x}: ours must refuse (E2BIG from privcmd)");
                } else {
                    let words = (nr as usize).div_ceil(64).max(1);
                    both!("track_dirty_vram", |h| {
                        let mut bitmap = vec![0x5a5a5a5a as c_ulong; if null { 0 } else { words }];
                        let p = if null { core::ptr::null_mut() } else { bitmap.as_mut_ptr() };
                        let r = if h == xh { (e.vram)(h, dom, pfn, nr, p) } else { ours::xendevicemodel_track_dirty_vram(h.cast(), dom, pfn, nr, p) };
                        (rc(r), bitmap.iter().map(|&w| w as u64).collect())
                    })
                }
            }
            15 => {
                let (pfn, nr) = (inp.u64(), inp.count());
                both!("modified_memory", |h| (rc(if h == xh { (e.modified)(h, dom, pfn, nr) } else { ours::xendevicemodel_modified_memory(h.cast(), dom, pfn, nr) }), vec![]))
            }
            16 => {
                let n = inp.count() % 600;
                let null = inp.byte() % 8 == 0;
                let seed = inp.u64();
                let make = || {
                    (0..n)
                        .map(|i| {
                            let v = seed.wrapping_mul(6364136223846793005).wrapping_add(i as u64);
                            xendevicemodel::Extent::new(v >> 12, (v & 0xff) as u32)
                        })
                        .collect::<Vec<_>>()
                };
                if n as usize > xendevicemodel::MAX_EXTENTS_PER_CALL && bogus.is_none() {
                    // Ours sends chunks of 256 where Xen's library gets E2BIG: ours only.
                    let h = oh;
                    let mut ext = make();
                    let p = if null { core::ptr::null_mut() } else { ext.as_mut_ptr() };
                    let o = run.observe(inject, || (rc(ours::xendevicemodel_modified_memory_bulk(h.cast(), dom, p.cast(), n)), vec![]));
                    let chunks = (n as usize).div_ceil(256);
                    if o.rc == 0 {
                        assert_eq!(o.requests.len(), chunks, "modified_memory_bulk({n}): one request per 256 extents");
                        for (i, r) in o.requests.iter().enumerate() {
                            let want = if i + 1 < chunks { 4096 } else { (n as usize - 256 * i) * 16 };
                            assert_eq!(r.sizes, vec![32, want], "modified_memory_bulk({n}) chunk {i}");
                        }
                    } else {
                        assert!(!o.requests.is_empty() && o.requests.last().unwrap().rc != 0, "a failure comes from a request");
                    }
                } else {
                    both!("modified_memory_bulk", |h| {
                        let mut ext = make();
                        let p = if null { core::ptr::null_mut() } else { ext.as_mut_ptr() };
                        let r = if h == xh { (e.bulk)(h, dom, p, n) } else { ours::xendevicemodel_modified_memory_bulk(h.cast(), dom, p.cast(), n) };
                        (rc(r), vec![])
                    })
                }
            }
            17 => {
                let (t, pfn, nr) = (inp.u32(), inp.u64(), inp.count());
                both!("set_mem_type", |h| (rc(if h == xh { (e.mem_type)(h, dom, t, pfn, nr) } else { ours::xendevicemodel_set_mem_type(h.cast(), dom, t, pfn, nr) }), vec![]))
            }
            18 => {
                let (vcpu, vec_, ty, err, len, extra) = (inp.u32() as c_int, inp.byte(), inp.byte(), inp.u32(), inp.byte(), inp.u64());
                both!("inject_event", |h| (rc(if h == xh { (e.event)(h, dom, vcpu, vec_, ty, err, len, extra) } else { ours::xendevicemodel_inject_event(h.cast(), dom, vcpu, vec_, ty, err, len, extra) }), vec![]))
            }
            19 => {
                let reason = inp.u32();
                both!("shutdown", |h| (rc(if h == xh { (e.shutdown)(h, dom, reason) } else { ours::xendevicemodel_shutdown(h.cast(), dom, reason) }), vec![]))
            }
            20 => {
                let (size, src, dst) = (inp.count(), inp.u64(), inp.u64());
                both!("relocate_memory", |h| (rc(if h == xh { (e.relocate)(h, dom, size, src, dst) } else { ours::xendevicemodel_relocate_memory(h.cast(), dom, size, src, dst) }), vec![]))
            }
            21 => {
                let (start, end, t) = (inp.u64(), inp.u64(), inp.u32());
                both!("pin_memory_cacheattr", |h| (rc(if h == xh { (e.pin)(h, dom, start, end, t) } else { ours::xendevicemodel_pin_memory_cacheattr(h.cast(), dom, start, end, t) }), vec![]))
            }
            22 => {
                if inp.byte() % 8 == 0 {
                    // A NULL count pointer: Xen's library crashes.
                    let h = oh;
                    run.ours_refuses("nr_vcpus(NULL)", if bogus.is_some() { libc::EBADF } else { libc::EINVAL },
                        || (rc(ours::xendevicemodel_nr_vcpus(h.cast(), dom, core::ptr::null_mut())), vec![]));
                } else {
                    both!("nr_vcpus", |h| {
                        let mut v = 0x77u32;
                        let r = if h == xh { (e.vcpus)(h, dom, &mut v) } else { ours::xendevicemodel_nr_vcpus(h.cast(), dom, &mut v) };
                        (rc(r), vec![v as u64])
                    })
                }
            }
            _ => {
                if bogus.is_some() {
                    run.ours_refuses("restrict", libc::EBADF, || (rc(ours::xendevicemodel_restrict(oh.cast(), dom)), vec![]));
                } else {
                    let o = run.both("restrict", inject, || (rc((e.restrict)(xh, dom)), vec![]), || (rc(ours::xendevicemodel_restrict(oh.cast(), dom)), vec![]));
                    if o.rc == 0 {
                        run.restricted[s] = Some(dom);
                    }
                }
            }
        }
    }
}

/// The handles' life beyond single calls: reuse cycles, fork, dlopen.
fn life(run: &mut Run<'_>, inp: &mut Input<'_>) {
    // SAFETY (all below): NULL loggers, flags 0, handles of ours or keys
    // that are checked, never dereferenced.
    unsafe {
        match inp.byte() % 4 {
            // Open/close cycles: every key new, and then refused.
            0 | 1 => {
                let n = inp.byte() as usize % 8 + 1;
                let mut keys = Vec::with_capacity(n);
                for _ in 0..n {
                    let h: H = ours::xendevicemodel_open(core::ptr::null_mut(), 0).cast();
                    assert!(!h.is_null(), "open in a reuse cycle failed (errno {})", errno());
                    assert_eq!(ours::xendevicemodel_close(h.cast()), 0, "close in a reuse cycle");
                    keys.push(h);
                }
                // New keys differ from each other and from the keys given out before.
                let mut seen: std::collections::HashSet<usize> =
                    run.stale.iter().chain(run.ours.iter()).map(|&k| k as usize).collect();
                for &k in &keys {
                    assert!(seen.insert(k as usize), "key {k:p} was given out twice");
                    assert!(!with_old(|o| o.set.contains(&(k as usize))), "key {k:p} was given out twice");
                }
                for &k in &keys {
                    run.ours_refuses("a call on a key closed in a reuse cycle", libc::EBADF, || {
                        (rc(ours::xendevicemodel_set_isa_irq_level(k.cast(), 5, 1, 1)), vec![])
                    });
                    remember_stale(k);
                }
                run.stale.extend(keys);
            }
            // fork(): in the child every inherited handle is refused and sends
            // nothing, its close releases the child's copy, a new one works.
            // A fork costs over a millisecond (the fuzzer's maps), and its
            // child's coverage is lost: one per input, and only every 32nd
            // time one is asked for (the first time always, so that an input
            // replayed alone forks).
            2 if !run.forked && FORKS_ASKED.fetch_add(1, Relaxed) % 32 == 0 => {
                run.forked = true;
                let inherited = run.ours;
                let e = run.e;
                let pid = libc::fork();
                assert!(pid >= 0, "fork failed");
                if pid == 0 {
                    libc::alarm(30); // a hang in the child becomes a failure
                    (e.fp_reset)(); // no injected error left armed by an earlier call
                    let mut bad = 0;
                    for h in inherited.into_iter().filter(|h| !h.is_null()) {
                        let before = (e.fp_count)();
                        bad += (ours::xendevicemodel_set_isa_irq_level(h.cast(), 5, 1, 1) != -1 || errno() != libc::EBADF) as i32;
                        bad += ((e.fp_count)() != before) as i32;
                        bad += (ours::xendevicemodel_close(h.cast()) != 0) as i32;
                    }
                    let own = ours::xendevicemodel_open(core::ptr::null_mut(), 0);
                    bad += own.is_null() as i32;
                    bad += (ours::xendevicemodel_set_isa_irq_level(own, 5, 1, 1) != 0) as i32;
                    bad += (ours::xendevicemodel_close(own) != 0) as i32;
                    libc::_exit(bad.min(100));
                }
                let mut status = 0;
                // libFuzzer's timer (SIGALRM, each second) interrupts waits.
                while libc::waitpid(pid, &mut status, 0) == -1 {
                    assert_eq!(errno(), libc::EINTR, "waitpid for the forked child");
                }
                assert!(
                    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                    "a forked child's checks failed (status {status:#x})"
                );
            }
            // dlclose/dlopen of the shared object: it stays loaded (-z
            // nodelete), so a handle opened before dlclose still works after
            // the next dlopen, until it is closed.
            3 => {
                let Some((lib, so)) = dlopen_ours() else { return };
                (run.e.fp_reset)(); // no injected error left armed by an earlier call
                let h = (so.open)(core::ptr::null_mut(), 0);
                assert!(!h.is_null(), "open through the shared object");
                assert_eq!(libc::dlclose(lib), 0);
                let (lib, so) = dlopen_ours().expect("loaded before");
                assert_eq!((so.isa)(h, 5, 1, 1), 0, "a handle opened before dlclose/dlopen");
                assert_eq!((so.close)(h), 0);
                let (r, err) = ((so.isa)(h, 5, 1, 1), errno());
                assert_eq!((r, err), (-1, libc::EBADF), "a handle closed after dlclose/dlopen");
                assert_eq!(libc::dlclose(lib), 0);
            }
            _ => {}
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let e = env();
    let mut run = Run { e, xen: [core::ptr::null_mut(); SLOTS], ours: [core::ptr::null_mut(); SLOTS], stale: Vec::new(), restricted: [None; SLOTS], forked: false };
    let mut inp = Input(data);
    let mut ops = 0;
    while !inp.done() && ops < 64 {
        ops += 1;
        let s = inp.byte() as usize % SLOTS;
        match inp.byte() % 16 {
            // open, in step
            0 | 1 if run.ours[s].is_null() => {
                let (mut xh, mut oh): (H, H) = (core::ptr::null_mut(), core::ptr::null_mut());
                // SAFETY: NULL logger, flags 0.
                let _ = run.both("open", None, || { xh = unsafe { (e.open)(core::ptr::null_mut(), 0) }; ((!xh.is_null()) as i64, vec![]) },
                    || { oh = unsafe { ours::xendevicemodel_open(core::ptr::null_mut(), 0) }.cast(); ((!oh.is_null()) as i64, vec![]) });
                run.xen[s] = xh;
                run.ours[s] = oh;
            }
            // close, in step
            2 if !run.ours[s].is_null() => {
                let (xh, oh) = (run.xen[s], run.ours[s]);
                // SAFETY: both open.
                let _ = run.both("close", None, || (rc(unsafe { (e.close)(xh) }), vec![]), || (rc(unsafe { ours::xendevicemodel_close(oh.cast()) }), vec![]));
                run.stale.push(oh);
                remember_stale(oh);
                run.restricted[s] = None;
                run.xen[s] = core::ptr::null_mut();
                run.ours[s] = core::ptr::null_mut();
            }
            // a call on a handle of ours that is not open
            3 => {
                let bogus: H = match inp.byte() % 8 {
                    0 if !run.stale.is_empty() => run.stale[inp.byte() as usize % run.stale.len()],
                    1 => core::ptr::null_mut(),
                    2 => (&ops as *const i32).cast_mut().cast(), // a stack address
                    3 | 4 => {
                        let k = old_stale(inp.u16() as usize).unwrap_or(core::ptr::null_mut());
                        assert!(!run.ours.contains(&k) || k.is_null(), "key {k:p}, closed earlier, names an open handle");
                        k
                    }
                    // An open handle's key with one bit flipped.
                    5 | 6 if !run.ours[s].is_null() => {
                        (run.ours[s] as usize ^ (1usize << (inp.byte() as u32 % usize::BITS))) as H
                    }
                    _ => inp.u64() as usize as H,
                };
                if !run.ours.contains(&bogus) {
                    call(&mut run, &mut inp, s, Some(bogus));
                    // A double close of a stale handle, or a close of anything else.
                    let o = run.observe(None, || (rc(unsafe { ours::xendevicemodel_close(bogus.cast()) }), vec![]));
                    let want = if bogus.is_null() { (0, 0) } else { (-1, libc::EBADF) };
                    assert_eq!((o.rc, o.errno), want, "close({bogus:p}) of a handle that is not open");
                }
            }
            15 => life(&mut run, &mut inp),
            _ if !run.ours[s].is_null() => call(&mut run, &mut inp, s, None),
            _ => {}
        }
    }
    // Close what is left, in step.
    for s in 0..SLOTS {
        if !run.ours[s].is_null() {
            // SAFETY: both open.
            let (xr, or) = unsafe { ((e.close)(run.xen[s]), ours::xendevicemodel_close(run.ours[s].cast())) };
            assert_eq!(xr, or, "close at the end");
        }
    }
});
