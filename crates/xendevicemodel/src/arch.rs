//! Everything that differs between the architectures Debian ships Xen's
//! library for (amd64, arm64, armhf), in one place and checked at compile
//! time: the `os` module asserts that the kernel structures it builds have exactly
//! these sizes and ioctl numbers, and `abi.rs` that Xen's dm_op structures
//! (identical on all three: fixed-width fields, explicit padding, 64-bit
//! fields 8-byte aligned) have the sizes of Xen's public header.
//!
//! | | x86_64 | aarch64 | arm (armhf) |
//! |---|---|---|---|
//! | `privcmd_dm_op_buf_t` | 16 bytes | 16 bytes | 8 bytes |
//! | `privcmd_dm_op_t` | 16 bytes | 16 bytes | 8 bytes |
//! | `IOCTL_PRIVCMD_DM_OP` | `0x00105005` | `0x00105005` | `0x00085005` |
//! | `IOCTL_PRIVCMD_RESTRICT` | `0x00025006` | `0x00025006` | `0x00025006` |
//! | `IOCTL_PRIVCMD_MMAPBATCH_V2` | `0x00205004` | `0x00205004` | `0x00185004` |
//! | `IOCTL_PRIVCMD_MMAP_RESOURCE` | `0x00205007` | `0x00205007` | `0x00205007` |
//! | `IOCTL_EVTCHN_BIND_INTERDOMAIN`, `_UNBIND`, `_NOTIFY` | `0x00084501`, `0x00044503`, `0x00044504` | same | same |
//! | `xen_pfn_t` (C API) | `unsigned long` (64) | `uint64_t` | `uint64_t` |
//! | `unsigned long` (dirty bitmap words) | 64 | 64 | 32 |
//! | dm_ops Xen 4.17 serves | all but `set_irq_level` | IOREQ servers, `set_irq_level`, `nr_vcpus` (below) | as aarch64 |
//!
//! On Arm, Xen 4.17 implements only the IOREQ-server operations (create
//! without buffered ioreqs, get info without gfns, map/unmap ranges, set
//! state, destroy), `set_irq_level` and `nr_vcpus`, and only when built with
//! `CONFIG_IOREQ_SERVER` (Debian's is not: every dm_op answers `ENOSYS`).
//! The library sends every call on every architecture, as Xen's does.
#![allow(dead_code)]

#[cfg(not(target_endian = "little"))]
compile_error!("privcmd request heads are built little-endian (os.rs); add a big-endian variant");

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "arm")))]
compile_error!("unknown architecture: record its privcmd layouts in arch.rs");

/// The architecture's name as Debian spells it.
#[cfg(target_arch = "x86_64")]
pub const DEBIAN_ARCH: &str = "amd64";
/// The architecture's name as Debian spells it.
#[cfg(target_arch = "aarch64")]
pub const DEBIAN_ARCH: &str = "arm64";
/// The architecture's name as Debian spells it.
#[cfg(target_arch = "arm")]
pub const DEBIAN_ARCH: &str = "armhf";

/// Xen's `xen_pfn_t` as the C API passes it (`unsigned long` on x86, a
/// 64-bit integer on Arm).
#[cfg(target_arch = "x86_64")]
pub type XenPfn = libc::c_ulong;
/// Xen's `xen_pfn_t` as the C API passes it (`unsigned long` on x86, a
/// 64-bit integer on Arm).
#[cfg(any(target_arch = "aarch64", target_arch = "arm"))]
pub type XenPfn = u64;

/// `sizeof(privcmd_dm_op_buf_t)`: a pointer and a `size_t`.
pub const PRIVCMD_DM_OP_BUF_SIZE: usize = 2 * core::mem::size_of::<usize>();
/// `sizeof(privcmd_dm_op_t)`: domid and count (with padding on 64-bit), and a pointer.
pub const PRIVCMD_DM_OP_SIZE: usize = 2 * core::mem::size_of::<usize>();
/// The first word of `privcmd_dm_op_t`: `dom` (offset 0), `num` (offset 2)
/// and, on 64-bit, 4 bytes of padding.
#[cfg(target_pointer_width = "64")]
pub type PrivcmdHead = u64;
/// The first word of `privcmd_dm_op_t`: `dom` (offset 0), `num` (offset 2).
#[cfg(target_pointer_width = "32")]
pub type PrivcmdHead = u32;

/// `IOCTL_PRIVCMD_DM_OP`: `_IOC(_IOC_NONE, 'P', 5, sizeof(privcmd_dm_op_t))`.
#[cfg(target_pointer_width = "64")]
pub const IOCTL_PRIVCMD_DM_OP: u32 = 0x0010_5005;
/// `IOCTL_PRIVCMD_DM_OP`: `_IOC(_IOC_NONE, 'P', 5, sizeof(privcmd_dm_op_t))`.
#[cfg(target_pointer_width = "32")]
pub const IOCTL_PRIVCMD_DM_OP: u32 = 0x0008_5005;
/// `IOCTL_PRIVCMD_RESTRICT`: `_IOC(_IOC_NONE, 'P', 6, sizeof(domid_t))`.
pub const IOCTL_PRIVCMD_RESTRICT: u32 = 0x0002_5006;
/// `IOCTL_PRIVCMD_MMAPBATCH_V2`: `_IOC(_IOC_NONE, 'P', 4,
/// sizeof(privcmd_mmapbatch_v2_t))`, two user pointers at its end.
#[cfg(target_pointer_width = "64")]
pub const IOCTL_PRIVCMD_MMAPBATCH_V2: u32 = 0x0020_5004;
/// `IOCTL_PRIVCMD_MMAPBATCH_V2`: `_IOC(_IOC_NONE, 'P', 4,
/// sizeof(privcmd_mmapbatch_v2_t))`, two user pointers at its end.
#[cfg(target_pointer_width = "32")]
pub const IOCTL_PRIVCMD_MMAPBATCH_V2: u32 = 0x0018_5004;
/// `IOCTL_PRIVCMD_MMAP_RESOURCE`: `_IOC(_IOC_NONE, 'P', 7,
/// sizeof(privcmd_mmap_resource_t))`, 32 bytes everywhere (its 64-bit fields
/// are 8-byte aligned on armhf too).
pub const IOCTL_PRIVCMD_MMAP_RESOURCE: u32 = 0x0020_5007;
/// `IOCTL_EVTCHN_BIND_INTERDOMAIN`: `_IOC(_IOC_NONE, 'E', 1, 8)`.
pub const IOCTL_EVTCHN_BIND_INTERDOMAIN: u32 = 0x0008_4501;
/// `IOCTL_EVTCHN_UNBIND`: `_IOC(_IOC_NONE, 'E', 3, 4)`.
pub const IOCTL_EVTCHN_UNBIND: u32 = 0x0004_4503;
/// `IOCTL_EVTCHN_NOTIFY`: `_IOC(_IOC_NONE, 'E', 4, 4)`.
pub const IOCTL_EVTCHN_NOTIFY: u32 = 0x0004_4504;

/// Whether the hypervisor serves `XEN_DMOP_set_irq_level` here (x86 Xen
/// answers `EOPNOTSUPP`; it exists for Arm's interrupt controller).
pub const HAS_SET_IRQ_LEVEL: bool = cfg!(any(target_arch = "aarch64", target_arch = "arm"));

const _: () = assert!(core::mem::size_of::<PrivcmdHead>() == PRIVCMD_DM_OP_SIZE / 2);
