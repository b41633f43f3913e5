//! Mappings through `/dev/xen/privcmd`, as libxenforeignmemory makes them:
//! an IOREQ server's pages (`IOCTL_PRIVCMD_MMAP_RESOURCE`) and guest memory
//! (`IOCTL_PRIVCMD_MMAPBATCH_V2`). Both are a shared `mmap` of privcmd that
//! the ioctl fills, unmapped on drop. What the hypervisor or the guest may
//! change concurrently is only ever reached through atomics or volatile
//! copies.

use super::{check, ioc_none, last_errno, owned_fd};
use crate::arch;
use crate::error::Errno;
use core::ptr::NonNull;
use libc::{c_int, c_void};
use std::os::fd::{AsRawFd, OwnedFd};

pub use crate::ioreq::PAGE_SIZE;
use crate::ioreq::{BufferedPage, IoreqPage};

/// Whether the system's page size is Xen's (arm64 kernels with 16 or 64 KiB
/// pages cannot map single Xen frames).
pub fn page_size_is_xens() -> bool {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) == PAGE_SIZE as libc::c_long }
}

/// Linux `privcmd_mmap_resource_t`.
#[repr(C)]
struct PrivcmdMmapResource {
    dom: u16,
    type_: u32,
    id: u32,
    idx: u32,
    num: u64,
    addr: u64,
}
const IOCTL_PRIVCMD_MMAP_RESOURCE: u32 = ioc_none(b'P', 7, core::mem::size_of::<PrivcmdMmapResource>());
const _: () = assert!(IOCTL_PRIVCMD_MMAP_RESOURCE == arch::IOCTL_PRIVCMD_MMAP_RESOURCE);

/// Linux `privcmd_mmapbatch_v2_t` (`arr` is `xen_pfn_t *`, whose frames are
/// 64-bit on every architecture Debian ships Xen for).
#[repr(C)]
struct PrivcmdMmapBatchV2 {
    num: u32,
    dom: u16,
    addr: u64,
    arr: *const u64,
    err: *mut c_int,
}
const IOCTL_PRIVCMD_MMAPBATCH_V2: u32 = ioc_none(b'P', 4, core::mem::size_of::<PrivcmdMmapBatchV2>());
const _: () = assert!(IOCTL_PRIVCMD_MMAPBATCH_V2 == arch::IOCTL_PRIVCMD_MMAPBATCH_V2);
const _: () =
    assert!(core::mem::size_of::<IoreqPage>() == PAGE_SIZE && core::mem::align_of::<IoreqPage>() == PAGE_SIZE);
const _: () =
    assert!(core::mem::size_of::<BufferedPage>() == PAGE_SIZE && core::mem::align_of::<BufferedPage>() == PAGE_SIZE);

/// `XENMEM_resource_ioreq_server`.
const XENMEM_RESOURCE_IOREQ_SERVER: u32 = 0;

/// `/dev/xen/privcmd`, opened for mappings (device-model operations go
/// through a [`DeviceModel`](crate::DeviceModel)'s own descriptor).
#[derive(Debug)]
pub struct Mapper(OwnedFd);

impl Mapper {
    /// Opens `/dev/xen/privcmd`.
    pub fn open() -> Result<Self, Errno> {
        owned_fd(c"/dev/xen/privcmd", libc::O_RDWR).map(Mapper)
    }

    /// Maps `num` frames from `idx` of IOREQ server `id`'s resource: frame
    /// 0 is the buffered page, frame 1 the synchronous one.
    pub fn map_ioreq_server(&self, dom: u16, id: u16, idx: u32, num: u32) -> Result<Mapping, Errno> {
        let map = Mapping::new(&self.0, num as usize)?;
        let mut arg = PrivcmdMmapResource {
            dom,
            type_: XENMEM_RESOURCE_IOREQ_SERVER,
            id: id as u32,
            idx,
            num: num as u64,
            addr: map.ptr.as_ptr() as usize as u64,
        };
        // SAFETY: the kernel reads `arg` and fills the mapping we own.
        match check(unsafe { libc::ioctl(self.0.as_raw_fd(), IOCTL_PRIVCMD_MMAP_RESOURCE as _, &mut arg) }) {
            Ok(_) => Ok(map),
            // As xenforeignmemory: a hypervisor without resource mapping.
            Err(e) if e == Errno::ENOSYS => Err(Errno::EOPNOTSUPP),
            Err(e) => Err(e),
        }
    }

    /// Maps the guest frames `gfns` of `dom`, in order, as one mapping. A
    /// frame the hypervisor refuses (not RAM, paged out) leaves its page
    /// unusable, which [`Mapping::page_error`] tells; the others work.
    pub fn map_foreign(&self, dom: u16, gfns: &[u64]) -> Result<Mapping, Errno> {
        let num = u32::try_from(gfns.len()).map_err(|_| Errno::E2BIG)?;
        if num == 0 {
            return Err(Errno::EINVAL);
        }
        let mut map = Mapping::new(&self.0, gfns.len())?;
        let mut err: Vec<c_int> = vec![0; gfns.len()];
        let arg = PrivcmdMmapBatchV2 {
            num,
            dom,
            addr: map.ptr.as_ptr() as usize as u64,
            arr: gfns.as_ptr(),
            err: err.as_mut_ptr(),
        };
        // SAFETY: the kernel reads `arg` and `gfns`, writes `err` (one int
        // per frame), and fills the mapping we own.
        match check(unsafe { libc::ioctl(self.0.as_raw_fd(), IOCTL_PRIVCMD_MMAPBATCH_V2 as _, &arg) }) {
            Ok(_) => {}
            // Some frames are paged out: `err` says which.
            Err(e) if e == Errno::ENOENT => {}
            Err(e) => return Err(e),
        }
        map.errors = err;
        Ok(map)
    }
}

/// Frames mapped through privcmd (unmapped on drop).
#[derive(Debug)]
pub struct Mapping {
    ptr: NonNull<u8>,
    pages: usize,
    /// Per page, the errno (negated, as privcmd reports it) of a guest frame
    /// that could not be mapped, or 0; empty for resource mappings.
    errors: Vec<c_int>,
}

// SAFETY: the mapping is plain memory that the other side changes
// concurrently; it is only reached through atomics (`as_atomic`) or volatile
// copies, which are sound from any thread.
unsafe impl Send for Mapping {}
unsafe impl Sync for Mapping {}

impl Mapping {
    /// A fresh shared mapping of privcmd, for an ioctl to fill.
    fn new(fd: &OwnedFd, pages: usize) -> Result<Self, Errno> {
        Mapping::mmap(pages, libc::MAP_SHARED, fd.as_raw_fd())
    }

    /// `pages` zeroed pages of the process's own memory, laid out as a
    /// guest mapping (with no failed page): a simulated guest's RAM. Only
    /// what is touched is allocated.
    pub fn anonymous(pages: usize) -> Result<Self, Errno> {
        if pages == 0 {
            return Err(Errno::EINVAL);
        }
        Mapping::mmap(pages, libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE, -1)
    }

    fn mmap(pages: usize, flags: c_int, fd: c_int) -> Result<Self, Errno> {
        let len = pages.checked_mul(PAGE_SIZE).ok_or(Errno::E2BIG)?;
        // SAFETY: a new mapping at an address the kernel chooses; nothing
        // else refers to it.
        let p = unsafe { libc::mmap(core::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, flags, fd, 0) };
        if p == libc::MAP_FAILED {
            return Err(last_errno());
        }
        Ok(Mapping { ptr: NonNull::new(p.cast()).ok_or(Errno::ENOMEM)?, pages, errors: Vec::new() })
    }

    /// Its size in bytes.
    pub fn len(&self) -> usize {
        self.pages * PAGE_SIZE
    }

    /// Why page `i` of a guest mapping could not be mapped, if it could not
    /// (reading or writing it would fault).
    pub fn page_error(&self, i: usize) -> Option<Errno> {
        self.errors.get(i).copied().filter(|&e| e != 0).map(|e| Errno::from_raw(-e))
    }

    /// Always false: a mapping has at least one page.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Page `i` as an IOREQ server's synchronous page (all atomics: the
    /// hypervisor's concurrent writes are no data race). Panics unless page
    /// `i` exists.
    pub fn ioreq_page(&self, i: usize) -> &IoreqPage {
        // SAFETY: IoreqPage is one page of atomics, valid for any bits.
        unsafe { &*self.page_ptr(i).cast::<IoreqPage>() }
    }

    /// Page `i` as an IOREQ server's buffered page (as [`ioreq_page`](Self::ioreq_page)).
    pub fn buffered_page(&self, i: usize) -> &BufferedPage {
        // SAFETY: BufferedPage is one page of atomics, valid for any bits.
        unsafe { &*self.page_ptr(i).cast::<BufferedPage>() }
    }

    /// Where page `i` starts (mapped, page-aligned, living as long as `self`).
    fn page_ptr(&self, i: usize) -> *const u8 {
        assert!(i < self.pages, "page {i} of a {}-page mapping", self.pages);
        self.ptr.as_ptr().wrapping_add(i * PAGE_SIZE)
    }

    /// Copies `buf.len()` bytes from `offset` (volatile: the guest may
    /// write them meanwhile). Panics unless the range is inside; the errno
    /// of a page that could not be mapped, touching nothing, if the range
    /// covers one.
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), Errno> {
        self.usable(offset, buf.len())?;
        let base = self.ptr.as_ptr();
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: within the mapping, on mapped pages (checked above).
            *b = unsafe { base.add(offset + i).read_volatile() };
        }
        Ok(())
    }

    /// Copies `buf` to `offset` (volatile), as [`read`](Self::read) does.
    pub fn write(&self, offset: usize, buf: &[u8]) -> Result<(), Errno> {
        self.usable(offset, buf.len())?;
        let base = self.ptr.as_ptr();
        for (i, b) in buf.iter().enumerate() {
            // SAFETY: within the mapping, on mapped pages (checked above).
            unsafe { base.add(offset + i).write_volatile(*b) };
        }
        Ok(())
    }

    /// `len` bytes from `offset` as vm-memory's `VolatileSlice` (feature
    /// `vm-memory`), borrowing the mapping; as [`read`](Self::read) for a
    /// range outside or on a page that could not be mapped.
    #[cfg(feature = "vm-memory")]
    pub fn volatile_slice(&self, offset: usize, len: usize) -> Result<vm_memory::VolatileSlice<'_>, Errno> {
        self.usable(offset, len)?;
        // SAFETY: within the mapping, on mapped pages (checked above), and
        // mapped as long as the borrow of `self` lasts; every other access
        // of ours is volatile (read/write) and the guest's are the
        // hardware's, as VolatileSlice asks.
        Ok(unsafe { vm_memory::VolatileSlice::new(self.ptr.as_ptr().add(offset), len) })
    }

    /// Checks that `len` bytes from `offset` are inside and on mapped pages.
    fn usable(&self, offset: usize, len: usize) -> Result<(), Errno> {
        let end = offset.checked_add(len).filter(|&e| e <= self.len());
        let end = end.unwrap_or_else(|| panic!("{len} bytes at {offset:#x} outside a {:#x}-byte mapping", self.len()));
        if len == 0 {
            return Ok(());
        }
        match (offset / PAGE_SIZE..=(end - 1) / PAGE_SIZE).find_map(|p| self.page_error(p)) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: we mapped exactly this range; borrows of it (pages) ended
        // with `&self`'s lifetime.
        unsafe { libc::munmap(self.ptr.as_ptr().cast::<c_void>(), self.len()) };
    }
}
