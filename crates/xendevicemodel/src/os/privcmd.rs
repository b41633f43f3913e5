//! `/dev/xen/privcmd` for device-model operations: `IOCTL_PRIVCMD_DM_OP`
//! over buffer descriptors built from Rust borrows (or a caller's
//! [`UserPtr`]), and `IOCTL_PRIVCMD_RESTRICT`.

use super::{check, ioc_none};
use crate::abi::{DmOp, DomId, Extent};
use crate::arch;
use crate::error::Errno;
use core::marker::PhantomData;
use libc::{c_int, c_void};

/// Linux `privcmd_dm_op_buf_t`: one buffer of a DM_OP request, borrowed for
/// `'a` from the memory the kernel reads and writes.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct Buf<'a> {
    pub(super) uptr: *mut c_void,
    pub(super) size: usize,
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
pub(super) struct PrivcmdDmOp {
    pub(super) head: arch::PrivcmdHead,
    pub(super) ubufs: *const Buf<'static>,
}

impl PrivcmdDmOp {
    #[inline(always)]
    fn new(dom: DomId, bufs: &[Buf<'_>]) -> Self {
        // Little-endian (checked in arch): dom at offset 0, num at offset 2.
        let head = dom as arch::PrivcmdHead | ((bufs.len() as arch::PrivcmdHead) << 16);
        PrivcmdDmOp { head, ubufs: bufs.as_ptr().cast() }
    }
}

/// `IOCTL_PRIVCMD_DM_OP`.
pub(super) const IOCTL_PRIVCMD_DM_OP: u32 = ioc_none(b'P', 5, core::mem::size_of::<PrivcmdDmOp>());
/// `IOCTL_PRIVCMD_RESTRICT`.
pub(super) const IOCTL_PRIVCMD_RESTRICT: u32 = ioc_none(b'P', 6, core::mem::size_of::<DomId>());

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
