//! libxencall, for kernels without `IOCTL_PRIVCMD_DM_OP`: the dm_op
//! hypercall through libxencall's hypercall-safe buffers.

use super::privcmd::Buf;
use super::{check, last_errno, set_errno};
use crate::abi::DomId;
use crate::error::Errno;
use libc::{c_int, c_uint, c_void};

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
pub(super) struct XenDmOpBuf {
    pub(super) h: u64,
    pub(super) size: u64,
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
