//! The OS layer: all access to the operating system and to Xen's
//! companion library libxencall, for this crate and for the ioreq toolkit
//! built on it (crates/xendevicemodel-ioreq). The only module of either
//! crate with `unsafe` code: the crate roots deny it and allow it here
//! alone, so the compiler enforces that.
//!
//! What it offers is safe:
//! - privcmd for device-model operations (`IOCTL_PRIVCMD_DM_OP` over buffer
//!   descriptors built from Rust borrows or a caller's [`UserPtr`],
//!   `IOCTL_PRIVCMD_RESTRICT`), used by [`DeviceModel`](crate::DeviceModel);
//! - the libxencall fallback for kernels without that ioctl ([`Xencall`]);
//! - fork detection ([`Generation`]);
//! - privcmd mappings ([`Mapper`], [`Mapping`]): an IOREQ server's pages
//!   (`IOCTL_PRIVCMD_MMAP_RESOURCE`) and guest memory
//!   (`IOCTL_PRIVCMD_MMAPBATCH_V2`);
//! - `/dev/xen/evtchn` ([`Evtchn`]);
//! - errno.
//!
//! Every ioctl number is computed from its structure's size here and
//! checked at compile time against the table in [`crate::arch`]. eventfd,
//! poll and signal handlers need no code of ours: the toolkit uses
//! vmm-sys-util and nix, whose APIs for them are safe.
//!
//! Everything reaches the kernel through libc's `open`/`ioctl`/`close`
//! symbols, so `LD_PRELOAD` test doubles and tracing tools see every request.
//! A port to another kernel (FreeBSD's privcmd has the same ioctls under other
//! numbers) changes this module and [`crate::arch`] only.
#![allow(non_camel_case_types)]

mod evtchn;
mod generation;
mod map;
mod privcmd;
mod xencall;

pub use evtchn::Evtchn;
pub use generation::Generation;
pub use map::{page_size_is_xens, Mapper, Mapping, PAGE_SIZE};
pub use privcmd::UserPtr;
pub(crate) use privcmd::{Buf, Privcmd};
pub use xencall::Xencall;

use crate::error::Errno;
use libc::c_int;
use std::os::fd::{FromRawFd, OwnedFd};

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

// ---------------------------------------------------------------- descriptors

/// `_IOC(_IOC_NONE, ty, nr, size)`: Linux's ioctl encoding (direction 0 in
/// bits 30-31), the same on every architecture here.
const fn ioc_none(ty: u8, nr: u32, size: usize) -> u32 {
    ((size as u32) << 16) | ((ty as u32) << 8) | nr
}

/// Opens `path` close-on-exec as an owned descriptor.
fn owned_fd(path: &core::ffi::CStr, flags: c_int) -> Result<OwnedFd, Errno> {
    // SAFETY: a NUL-terminated path; the descriptor returned is ours alone.
    check(unsafe { libc::open(path.as_ptr(), flags | libc::O_CLOEXEC) }).map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
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
    use super::privcmd::{PrivcmdDmOp, IOCTL_PRIVCMD_DM_OP, IOCTL_PRIVCMD_RESTRICT};
    use super::xencall::XenDmOpBuf;
    use super::*;
    use crate::abi::{DmOp, Extent};
    use crate::arch;
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
    /// Linux's headers: tests/arch/run.sh compares the two line for line.
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
