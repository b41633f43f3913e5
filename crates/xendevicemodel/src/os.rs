//! All access to the operating system and to Xen's companion libraries: the
//! only module of this crate with `unsafe` code.
//!
//! What it offers the rest of the crate is safe: an owned privcmd descriptor
//! ([`Privcmd`]) that issues `IOCTL_PRIVCMD_DM_OP` over buffer descriptors
//! ([`Buf`]) built from Rust borrows (or from a caller's [`UserPtr`]), the
//! libxencall fallback ([`Xencall`]), fork detection ([`Generation`]) and
//! errno.
//!
//! Everything reaches the kernel through libc's `open`/`ioctl`/`close`
//! symbols, so `LD_PRELOAD` test doubles and tracing tools see every request.
//! A port to another kernel (FreeBSD's privcmd has the same ioctls under other
//! numbers) changes this module and [`crate::arch`] only.
#![allow(non_camel_case_types)]

use crate::abi::{DmOp, DomId, Extent};
use crate::arch;
use crate::error::Errno;
use core::marker::PhantomData;
use core::sync::atomic::{AtomicPtr, AtomicU64, AtomicU8, Ordering::*};
use libc::{c_int, c_uint, c_void};

// ---------------------------------------------------------------- errno

/// The calling thread's `errno`.
pub(crate) fn last_errno() -> Errno {
    Errno::from_raw(nix::errno::Errno::last_raw())
}

/// Sets the calling thread's `errno`.
pub(crate) fn set_errno(e: Errno) {
    nix::errno::Errno::set_raw(e.raw())
}

#[inline(always)]
fn check(rc: c_int) -> Result<c_int, Errno> {
    if rc < 0 {
        Err(last_errno())
    } else {
        Ok(rc)
    }
}

// ---------------------------------------------------------------- privcmd

/// Linux `privcmd_dm_op_buf_t`: one buffer of a DM_OP request, borrowed for
/// `'a` from the memory the kernel reads and writes.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Buf<'a> {
    uptr: *mut c_void,
    size: usize,
    _borrow: PhantomData<&'a mut [u8]>,
}

impl<'a> Buf<'a> {
    /// Buffer 0: the request itself, which the hypervisor may update (out-values).
    #[inline(always)]
    pub(crate) fn request(op: &'a mut DmOp) -> Self {
        Buf { uptr: (op as *mut DmOp).cast(), size: core::mem::size_of::<DmOp>(), _borrow: PhantomData }
    }

    /// A byte buffer the hypervisor writes (a dirty bitmap).
    #[inline(always)]
    pub(crate) fn bytes(b: &'a mut [u8]) -> Self {
        Buf { uptr: b.as_mut_ptr().cast(), size: b.len(), _borrow: PhantomData }
    }

    /// Extents the hypervisor reads, and updates when it splits the work.
    #[inline(always)]
    pub(crate) fn extents(e: &'a mut [Extent]) -> Self {
        Buf { uptr: e.as_mut_ptr().cast(), size: core::mem::size_of_val(e), _borrow: PhantomData }
    }

    /// A caller's buffer of `size` bytes (the pointer may be NULL, which
    /// the kernel checks: it answers `EFAULT` for memory it cannot pin).
    #[inline(always)]
    pub(crate) fn from_user(ptr: UserPtr, size: usize) -> Self {
        Buf { uptr: ptr.0, size, _borrow: PhantomData }
    }

    /// The buffer with its first `skip` bytes left out (chunked requests).
    #[inline]
    pub(crate) fn tail(self, skip: usize, size: usize) -> Self {
        debug_assert!(self.uptr.is_null() || skip + size <= self.size);
        let uptr = if self.uptr.is_null() { self.uptr } else { self.uptr.wrapping_byte_add(skip) };
        Buf { uptr, size, _borrow: PhantomData }
    }
}

/// An address in the caller's memory that is passed to the kernel as it
/// is, for the `*_raw` operations that send exactly what a caller gives
/// (NULL included: the kernel checks the memory, and answers `EFAULT` for
/// memory it cannot pin). Vouched for when it was made.
#[derive(Clone, Copy, Debug)]
pub struct UserPtr(*mut c_void);

impl UserPtr {
    /// Wraps a buffer address for one call.
    ///
    /// # Safety
    /// Unless NULL, `ptr` must be valid for reads and writes of as many bytes
    /// as the operation it is passed to documents, for the duration of that
    /// call.
    #[inline(always)]
    pub unsafe fn new<T>(ptr: *mut T) -> Self {
        UserPtr(ptr.cast())
    }
}

/// Linux `privcmd_dm_op_t`: the argument of `IOCTL_PRIVCMD_DM_OP`.
///
/// `dom`, `num` and (on 64-bit) the padding are one word, written with one
/// store: the kernel's `copy_from_user` reads them with one load, which can
/// take its data straight from a single pending store but has to wait for
/// several smaller ones to reach the cache (about 1.5 ns per call).
#[repr(C)]
struct PrivcmdDmOp {
    head: arch::PrivcmdHead,
    ubufs: *const Buf<'static>,
}

impl PrivcmdDmOp {
    #[inline(always)]
    fn new(dom: DomId, bufs: &[Buf<'_>]) -> Self {
        // Little-endian (checked in arch): dom at offset 0, num at offset 2.
        let head = dom as arch::PrivcmdHead | ((bufs.len() as arch::PrivcmdHead) << 16);
        PrivcmdDmOp { head, ubufs: bufs.as_ptr().cast() }
    }
}

const fn ioc_none(nr: u32, size: usize) -> u32 {
    // _IOC(_IOC_NONE, 'P', nr, size): direction 0 in bits 30-31.
    ((size as u32) << 16) | ((b'P' as u32) << 8) | nr
}
/// `IOCTL_PRIVCMD_DM_OP`.
const IOCTL_PRIVCMD_DM_OP: u32 = ioc_none(5, core::mem::size_of::<PrivcmdDmOp>());
/// `IOCTL_PRIVCMD_RESTRICT`.
const IOCTL_PRIVCMD_RESTRICT: u32 = ioc_none(6, core::mem::size_of::<DomId>());

// The kernel's layouts and numbers, as arch.rs records them for this target.
const _: () = assert!(core::mem::size_of::<Buf>() == arch::PRIVCMD_DM_OP_BUF_SIZE);
const _: () = assert!(core::mem::size_of::<PrivcmdDmOp>() == arch::PRIVCMD_DM_OP_SIZE);
const _: () = assert!(core::mem::offset_of!(PrivcmdDmOp, ubufs) == arch::PRIVCMD_DM_OP_SIZE / 2);
const _: () = assert!(IOCTL_PRIVCMD_DM_OP == arch::IOCTL_PRIVCMD_DM_OP);
const _: () = assert!(IOCTL_PRIVCMD_RESTRICT == arch::IOCTL_PRIVCMD_RESTRICT);

/// An open `/dev/xen/privcmd` (closed on drop).
#[derive(Debug)]
pub(crate) struct Privcmd(c_int);

impl Privcmd {
    /// Opens `/dev/xen/privcmd` read-write and close-on-exec, as Xen's library does.
    pub(crate) fn open() -> Result<Self, Errno> {
        // SAFETY: constant NUL-terminated path.
        check(unsafe { libc::open(c"/dev/xen/privcmd".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) }).map(Privcmd)
    }

    /// No descriptor (the libxencall path): closing it does nothing.
    pub(crate) const fn none() -> Self {
        Privcmd(-1)
    }

    /// The descriptor, if there is one.
    pub(crate) fn fd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        // SAFETY: we own the descriptor, open for as long as `self` lives.
        (self.0 >= 0).then(|| unsafe { std::os::fd::BorrowedFd::borrow_raw(self.0) })
    }

    /// Issues `IOCTL_PRIVCMD_DM_OP` for `dom` with the buffers given; the
    /// hypervisor's out-values land in them.
    #[inline(always)]
    pub(crate) fn dm_op(&self, dom: DomId, bufs: &[Buf<'_>]) -> Result<(), Errno> {
        let uop = PrivcmdDmOp::new(dom, bufs);
        // SAFETY: `uop` and every buffer it describes are valid for the call
        // (borrowed, or the C caller's promise); the kernel checks the rest.
        check(unsafe { libc::ioctl(self.0, IOCTL_PRIVCMD_DM_OP as _, &uop as *const PrivcmdDmOp) }).map(drop)
    }

    /// Restricts this open file to `dom`: from now on it serves no other domain.
    pub(crate) fn restrict(&self, dom: DomId) -> Result<(), Errno> {
        // SAFETY: the kernel reads one domid from the pointer.
        check(unsafe { libc::ioctl(self.0, IOCTL_PRIVCMD_RESTRICT as _, &dom as *const DomId) }).map(drop)
    }

    /// Closes the descriptor, returning close(2)'s result.
    pub(crate) fn close(self) -> Result<(), Errno> {
        let fd = self.0;
        core::mem::forget(self);
        if fd < 0 {
            return Ok(());
        }
        // SAFETY: we own `fd` and close it once.
        check(unsafe { libc::close(fd) }).map(drop)
    }
}

impl Drop for Privcmd {
    fn drop(&mut self) {
        if self.0 >= 0 {
            // SAFETY: we own the descriptor; close(2)'s result is only reported by `close`.
            unsafe { libc::close(self.0) };
        }
    }
}

// ---------------------------------------------------------------- libxencall

#[repr(C)]
struct xencall_handle {
    _opaque: [u8; 0],
}

#[link(name = "xencall")]
extern "C" {
    fn xencall_open(logger: *mut c_void, flags: c_uint) -> *mut xencall_handle;
    fn xencall_close(xcall: *mut xencall_handle) -> c_int;
    fn xencall3(xcall: *mut xencall_handle, op: c_uint, a1: u64, a2: u64, a3: u64) -> c_int;
    fn xencall_alloc_buffer(xcall: *mut xencall_handle, size: usize) -> *mut c_void;
    fn xencall_free_buffer(xcall: *mut xencall_handle, p: *mut c_void);
}

/// `__HYPERVISOR_dm_op`.
const HYPERVISOR_DM_OP: c_uint = 41;

/// Xen `xen_dm_op_buf_t`, the buffer descriptor of the dm_op hypercall.
#[repr(C)]
struct XenDmOpBuf {
    h: u64,
    size: u64,
}

/// Largest buffer the libxencall path copies. Xen's own largest dm_op buffer
/// is track_dirty_vram's bitmap for 1 GiB of guest memory (32 KiB); anything
/// larger is refused with `E2BIG`, as privcmd refuses buffers over its limit,
/// instead of allocating and copying whatever size the caller computed.
pub(crate) const XENCALL_BUF_MAX: usize = 64 * 1024;

/// A libxencall handle, for kernels without `IOCTL_PRIVCMD_DM_OP` (closed on
/// drop): what [`Fallback::finish_with`](crate::Fallback::finish_with) takes.
#[derive(Debug)]
pub struct Xencall(*mut xencall_handle);

// SAFETY: libxencall handles may be used from any thread (its buffer cache is locked).
unsafe impl Send for Xencall {}
unsafe impl Sync for Xencall {}

impl Xencall {
    /// Opens libxencall, which logs its own failures to stderr.
    pub fn open() -> Result<Self, Errno> {
        // SAFETY: NULL asks libxencall for a stderr logger of its own.
        unsafe { Self::open_with_logger(core::ptr::null_mut()) }
    }

    /// Opens libxencall, which logs its own failures through `logger`, a
    /// libxentoollog `struct xentoollog_logger *` (NULL: a stderr logger of
    /// its own).
    ///
    /// # Safety
    /// Unless NULL, `logger` must point at a live xentoollog logger for as
    /// long as the handle is used.
    pub unsafe fn open_with_logger(logger: *mut c_void) -> Result<Self, Errno> {
        // SAFETY: the caller's promise.
        let h = unsafe { xencall_open(logger, 0) };
        if h.is_null() {
            Err(last_errno())
        } else {
            Ok(Xencall(h))
        }
    }

    /// The dm_op hypercall through hypercall-safe memory: copies every
    /// buffer in, and on success copies them back (Xen's out-values).
    ///
    /// A NULL buffer with a size is `EFAULT`, as privcmd would answer, rather
    /// than a copy from NULL; a buffer over [`XENCALL_BUF_MAX`] is `E2BIG`.
    pub(crate) fn dm_op(&self, dom: DomId, bufs: &[Buf<'_>]) -> Result<(), Errno> {
        if bufs.iter().any(|b| b.uptr.is_null() && b.size > 0) {
            return Err(Errno::EFAULT);
        }
        if bufs.iter().any(|b| b.size > XENCALL_BUF_MAX) {
            return Err(Errno::E2BIG);
        }
        let descs = bufs.len() * core::mem::size_of::<XenDmOpBuf>();
        let total = descs + bufs.iter().map(|b| b.size).sum::<usize>();
        // SAFETY: one xencall buffer holds the descriptor array followed by a
        // copy of every buffer; all pointers stay inside it, and every source
        // buffer is valid for its size (checked non-NULL above when sized).
        unsafe {
            let mem = xencall_alloc_buffer(self.0, total).cast::<u8>();
            if mem.is_null() {
                return Err(last_errno());
            }
            let desc = mem.cast::<XenDmOpBuf>();
            let mut data = mem.add(descs);
            for (i, b) in bufs.iter().enumerate() {
                if b.size > 0 {
                    core::ptr::copy_nonoverlapping(b.uptr.cast::<u8>(), data, b.size);
                }
                desc.add(i).write(XenDmOpBuf { h: data as usize as u64, size: b.size as u64 });
                data = data.add(b.size);
            }
            let rc = xencall3(self.0, HYPERVISOR_DM_OP, dom as u64, bufs.len() as u64, desc as usize as u64);
            let res = check(rc).map(drop);
            if res.is_ok() {
                let mut data = mem.add(descs);
                for b in bufs {
                    if b.size > 0 {
                        core::ptr::copy_nonoverlapping(data, b.uptr.cast::<u8>(), b.size);
                    }
                    data = data.add(b.size);
                }
            }
            let saved = last_errno();
            xencall_free_buffer(self.0, mem.cast());
            set_errno(saved);
            res
        }
    }
}

impl Drop for Xencall {
    fn drop(&mut self) {
        // SAFETY: the handle came from xencall_open and is closed once.
        unsafe { xencall_close(self.0) };
    }
}

// ---------------------------------------------------------------- fork detection

/// A process generation: how handles tell, with one load per call, that
/// they were inherited across `fork()`. It lives in a page that is zero in
/// a child: the kernel wipes it (`MADV_WIPEONFORK`, Linux 4.14, also for a
/// child made without glibc's fork()), and so does [`Generation::forked`],
/// for kernels and emulators that accept the advice but ignore it (as
/// qemu-user does). Where no such page can be made, handles compare
/// `getpid()` instead.
///
/// Who calls `forked` in a child is the process's fork owner: for
/// [`Generation::process`], the one [`Options`](crate::Options) uses unless
/// told otherwise, a `pthread_atfork` child handler it registers itself; a
/// program (or library) with its own fork handlers makes its own static
/// `Generation::new()` and calls `forked` from them.
#[derive(Debug)]
pub struct Generation {
    /// The page's first word, or `NO_PAGE` until the page exists.
    page: AtomicPtr<AtomicU64>,
    /// The next generation to hand out; a child inherits it, so its
    /// generations are new to every handle it inherited.
    next: AtomicU64,
    /// 0: not decided yet, 1: the page, 2: no page could be made, getpid().
    mode: AtomicU8,
}

/// Where a generation points until its page exists: a word that stays 0.
static NO_PAGE: AtomicU64 = AtomicU64::new(0);

/// The generation of [`Generation::process`].
static PROCESS: Generation = Generation::new();

impl Generation {
    /// A generation whose owner calls [`forked`](Self::forked) in every
    /// child (from its `pthread_atfork` child handler). Use it from a
    /// `static`: handles keep a reference to it.
    #[allow(clippy::new_without_default)] // only meaningful in a static, made with `new`
    pub const fn new() -> Self {
        Generation {
            page: AtomicPtr::new(&NO_PAGE as *const AtomicU64 as *mut AtomicU64),
            next: AtomicU64::new(1),
            mode: AtomicU8::new(0),
        }
    }

    /// The process's default generation, which registers its own
    /// `pthread_atfork` child handler when its page is made.
    pub fn process() -> &'static Generation {
        &PROCESS
    }

    /// Marks this process as a new one: what a fork child handler calls.
    /// Every handle opened before reads as inherited from now on.
    pub fn forked(&self) {
        self.word().store(0, Relaxed);
    }

    /// Where a handle reads the generation on each call: a word equal to
    /// the value [`at_open`](Self::at_open) returned in the process that
    /// opened the handle, and different in every other process (0 means
    /// "ask [`same_process`](Self::same_process)"). Taken after `at_open`.
    pub(crate) fn word(&self) -> &'static AtomicU64 {
        // SAFETY: `page` always points at NO_PAGE or at a page that is never unmapped.
        unsafe { &*self.page.load(Acquire) }
    }

    /// The generation to record in a handle being opened (never 0).
    pub(crate) fn at_open(&'static self) -> u64 {
        if self.mode.load(Acquire) == 0 {
            let ok = self.make_page();
            self.mode.store(if ok { 1 } else { 2 }, Release);
        }
        if self.mode.load(Acquire) == 2 {
            return u64::from(getpid());
        }
        let page = self.word();
        if page.load(Relaxed) == 0 {
            // First open here, or first open in a child (the page was wiped).
            let _ = page.compare_exchange(0, self.next.fetch_add(1, Relaxed), Relaxed, Relaxed);
        }
        page.load(Relaxed)
    }

    /// Whether a handle opened with generation `opened` belongs to this process.
    pub(crate) fn same_process(&self, opened: u64) -> bool {
        match self.mode.load(Acquire) {
            2 => opened == u64::from(getpid()),
            _ => self.word().load(Relaxed) == opened,
        }
    }

    /// Maps the page and has it zeroed in children; false if that cannot be
    /// done (no memory, or neither the kernel nor a fork handler would zero
    /// it).
    fn make_page(&'static self) -> bool {
        if !core::ptr::eq(self.page.load(Acquire), &NO_PAGE) {
            return true;
        }
        // SAFETY: a fresh private anonymous page, never unmapped once published.
        unsafe {
            let len = 4096;
            let p = libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if p == libc::MAP_FAILED {
                return false;
            }
            let wiped = libc::madvise(p, len, libc::MADV_WIPEONFORK) == 0;
            let page = p.cast::<AtomicU64>();
            let none = &NO_PAGE as *const AtomicU64 as *mut AtomicU64;
            if self.page.compare_exchange(none, page, AcqRel, Acquire).is_err() {
                libc::munmap(p, len); // another thread was first
                return true;
            }
            // Once per generation (only the thread that published the page
            // gets here); other generations' owners zero theirs themselves.
            let hooked = !core::ptr::eq(self, &PROCESS) || atfork_child(zero_process_generation).is_ok();
            wiped || hooked
        }
    }
}

fn getpid() -> u32 {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::getpid() as u32 }
}

/// `pthread_atfork` child handler of [`Generation::process`].
extern "C" fn zero_process_generation() {
    PROCESS.forked();
}

/// Registers a child handler with `pthread_atfork` (undone by glibc if the
/// object that registered it is unloaded).
fn atfork_child(child: extern "C" fn()) -> Result<(), Errno> {
    // SAFETY: the handler is a plain function of this object.
    match unsafe { libc::pthread_atfork(None, None, Some(child)) } {
        0 => Ok(()),
        e => Err(Errno::from_raw(e)),
    }
}

// ---------------------------------------------------------------- logging

/// Writes one whole line to stderr with a single write(2), so that lines
/// from threads do not interleave. Errors are ignored: there is nowhere
/// left to report them.
pub(crate) fn write_stderr(line: &[u8]) {
    // SAFETY: the slice is valid for its length.
    let _ = unsafe { libc::write(2, line.as_ptr().cast(), line.len()) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    /// A generation's owner makes a new process with `forked`: handles
    /// opened before are inherited from then on, and the next open gets a
    /// new generation.
    #[test]
    fn generations_change_when_the_owner_says_so() {
        static OWNED: Generation = Generation::new();
        let g = OWNED.at_open();
        assert_ne!(g, 0);
        assert!(OWNED.same_process(g) && OWNED.at_open() == g);
        OWNED.forked();
        assert!(!OWNED.same_process(g), "a handle of before forked() still reads as this process's");
        let g2 = OWNED.at_open();
        assert!(g2 != g && g2 != 0 && OWNED.same_process(g2));
    }

    /// The process's default generation tells a real child from its parent
    /// by itself (the kernel's wipe, or its own atfork handler).
    #[test]
    fn the_default_generation_sees_a_fork() {
        let gen = Generation::process();
        let g = gen.at_open();
        // SAFETY: the child only reads atomics and calls _exit.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            let code = if gen.same_process(g) { 1 } else { 0 };
            // SAFETY: ends the child at once, running nothing of the parent's.
            unsafe { libc::_exit(code) };
        }
        assert!(pid > 0, "fork failed");
        let mut status = 0;
        // SAFETY: waits for the child made above.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "the child took its parent's handle for its own"
        );
        assert!(gen.same_process(g), "the parent's generation changed");
    }

    /// The kernel and hypervisor ABI this build was compiled with, printed
    /// as tests/arch/layout.c prints what the C compiler sees in Xen's and
    /// Linux's headers: tests/arch/suites.sh compares the two line for line.
    #[test]
    fn c_view_of_the_kernel_abi() {
        let mut lines = vec![
            format!("sizeof void * = {}", size_of::<*const u8>()),
            format!("sizeof unsigned long = {}", size_of::<libc::c_ulong>()),
            format!("sizeof size_t = {}", size_of::<usize>()),
            format!("sizeof xen_pfn_t = {}", size_of::<arch::XenPfn>()),
            format!("sizeof privcmd_dm_op_buf_t = {}", size_of::<Buf>()),
            format!("offsetof privcmd_dm_op_buf_t.uptr = {}", offset_of!(Buf, uptr)),
            format!("offsetof privcmd_dm_op_buf_t.size = {}", offset_of!(Buf, size)),
            format!("sizeof privcmd_dm_op_t = {}", size_of::<PrivcmdDmOp>()),
            // dom and num are the head word's first two halves (little-endian).
            format!("offsetof privcmd_dm_op_t.dom = {}", offset_of!(PrivcmdDmOp, head)),
            format!("offsetof privcmd_dm_op_t.num = {}", offset_of!(PrivcmdDmOp, head) + 2),
            format!("offsetof privcmd_dm_op_t.ubufs = {}", offset_of!(PrivcmdDmOp, ubufs)),
            format!("IOCTL_PRIVCMD_DM_OP = {:#x}", IOCTL_PRIVCMD_DM_OP),
            format!("IOCTL_PRIVCMD_RESTRICT = {:#x}", IOCTL_PRIVCMD_RESTRICT),
            format!("sizeof struct xen_dm_op_buf = {}", size_of::<XenDmOpBuf>()),
            format!("offsetof struct xen_dm_op_buf.h = {}", offset_of!(XenDmOpBuf, h)),
            format!("offsetof struct xen_dm_op_buf.size = {}", offset_of!(XenDmOpBuf, size)),
            format!("sizeof struct xen_dm_op = {}", size_of::<DmOp>()),
            format!("sizeof struct xen_dm_op_modified_memory_extent = {}", size_of::<Extent>()),
            format!("offsetof struct xen_dm_op_modified_memory_extent.first_pfn = {}", offset_of!(Extent, first_pfn)),
        ];
        for (name, size) in crate::abi::C_SIZES {
            lines.push(format!("sizeof struct xen_dm_op_{name} = {size}"));
        }
        lines.sort();
        lines.dedup();
        for l in &lines {
            println!("{l}");
        }
        assert!(lines.len() > 30);
    }
}
