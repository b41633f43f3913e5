//! Xen's and Linux's public ABI as this library uses it.
//!
//! Layouts follow `xen/hvm/dm_op.h` (Xen 4.17) and Linux's `xen/sys/privcmd.h`
//! for x86_64, aarch64 and 32-bit Arm (armhf). Every structure has its size and
//! field offsets checked at compile time, so a mistake here fails the build
//! instead of sending wrong bytes to the hypervisor. What differs between the
//! architectures: privcmd's structures hold pointers and `size_t` (8 bytes on
//! armhf instead of 16, so `IOCTL_PRIVCMD_DM_OP` encodes another size), and
//! `xen_pfn_t` is `unsigned long` on x86 but always 64-bit on Arm.
#![allow(non_camel_case_types)]
// Fields and XEN_DMOP_* numbers mirror Xen's public header one for one; their
// documentation is Xen's (xen/hvm/dm_op.h). Each type says which it mirrors.
#![allow(missing_docs)]

use core::mem::{offset_of, size_of};
use libc::c_void;

/// A Xen domain id (`domid_t`).
pub type domid_t = u16;
/// An IOREQ server id (`ioservid_t`).
pub type ioservid_t = u16;
/// A guest frame number (`xen_pfn_t`: `unsigned long` on x86_64, `uint64_t` on Arm,
/// also on 32-bit Arm where `unsigned long` has 32 bits).
#[cfg(target_arch = "x86_64")]
pub type xen_pfn_t = libc::c_ulong;
/// A guest frame number (`xen_pfn_t`: `unsigned long` on x86_64, `uint64_t` on Arm,
/// also on 32-bit Arm where `unsigned long` has 32 bits).
#[cfg(any(target_arch = "aarch64", target_arch = "arm"))]
pub type xen_pfn_t = u64;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64", target_arch = "arm")))]
compile_error!("unsupported architecture: add its Xen and privcmd layouts to src/xen.rs");
/// An event channel port (`evtchn_port_t`).
pub type evtchn_port_t = u32;
/// Xen's `hvmmem_type_t`, a C enum: passed as an `int`-sized value.
pub type hvmmem_type_t = libc::c_uint;

/// `DOMID_INVALID`: the domid used to probe privcmd for the DM_OP ioctl.
pub const DOMID_INVALID: domid_t = 0x7ff4;
/// `__HYPERVISOR_dm_op`, used by the libxencall fallback.
pub const HYPERVISOR_DM_OP: u32 = 41;

/// `XEN_DMOP_*` operation numbers.
pub mod op {
    pub const CREATE_IOREQ_SERVER: u32 = 1;
    pub const GET_IOREQ_SERVER_INFO: u32 = 2;
    pub const MAP_IO_RANGE_TO_IOREQ_SERVER: u32 = 3;
    pub const UNMAP_IO_RANGE_FROM_IOREQ_SERVER: u32 = 4;
    pub const SET_IOREQ_SERVER_STATE: u32 = 5;
    pub const DESTROY_IOREQ_SERVER: u32 = 6;
    pub const TRACK_DIRTY_VRAM: u32 = 7;
    pub const SET_PCI_INTX_LEVEL: u32 = 8;
    pub const SET_ISA_IRQ_LEVEL: u32 = 9;
    pub const SET_PCI_LINK_ROUTE: u32 = 10;
    pub const MODIFIED_MEMORY: u32 = 11;
    pub const SET_MEM_TYPE: u32 = 12;
    pub const INJECT_EVENT: u32 = 13;
    pub const INJECT_MSI: u32 = 14;
    pub const MAP_MEM_TYPE_TO_IOREQ_SERVER: u32 = 15;
    pub const REMOTE_SHUTDOWN: u32 = 16;
    pub const RELOCATE_MEMORY: u32 = 17;
    pub const PIN_MEMORY_CACHEATTR: u32 = 18;
    pub const SET_IRQ_LEVEL: u32 = 19;
    pub const NR_VCPUS: u32 = 20;
}

/// `XEN_DMOP_no_gfns`: get_ioreq_server_info should not map the ioreq pages.
pub const XEN_DMOP_NO_GFNS: u16 = 1;
/// `XEN_DMOP_IO_RANGE_PORT`.
pub const XEN_DMOP_IO_RANGE_PORT: u32 = 0;
/// `XEN_DMOP_IO_RANGE_MEMORY`.
pub const XEN_DMOP_IO_RANGE_MEMORY: u32 = 1;
/// `XEN_DMOP_IO_RANGE_PCI`.
pub const XEN_DMOP_IO_RANGE_PCI: u32 = 2;
/// `XEN_DMOP_IOREQ_MEM_ACCESS_WRITE`, the only access type Xen emulates.
pub const XEN_DMOP_IOREQ_MEM_ACCESS_WRITE: u32 = 1 << 1;
/// `HVMMEM_ioreq_server` from `xen/hvm/hvm_op.h`.
pub const HVMMEM_IOREQ_SERVER: u16 = 4;

/// `XEN_DMOP_PCI_SBDF`: segment/bus/device/function packed as Xen expects.
pub const fn pci_sbdf(segment: u16, bus: u8, device: u8, function: u8) -> u64 {
    ((segment as u64) << 16) | ((bus as u64) << 8) | (((device as u64) & 0x1f) << 3) | ((function as u64) & 0x07)
}

/// `struct xen_dm_op_create_ioreq_server`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct CreateIoreqServer {
    pub handle_bufioreq: u8,
    pub pad: [u8; 3],
    pub id: ioservid_t,
}

/// `struct xen_dm_op_get_ioreq_server_info`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct GetIoreqServerInfo {
    pub id: ioservid_t,
    pub flags: u16,
    pub bufioreq_port: evtchn_port_t,
    pub ioreq_gfn: u64,
    pub bufioreq_gfn: u64,
}

/// `struct xen_dm_op_ioreq_server_range` (map/unmap of ports, MMIO, PCI).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct IoreqServerRange {
    pub id: ioservid_t,
    pub pad: u16,
    pub type_: u32,
    pub start: u64,
    pub end: u64,
}

/// `struct xen_dm_op_set_ioreq_server_state`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct SetIoreqServerState {
    pub id: ioservid_t,
    pub enabled: u8,
    pub pad: u8,
}

/// `struct xen_dm_op_destroy_ioreq_server`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct DestroyIoreqServer {
    pub id: ioservid_t,
    pub pad: u16,
}

/// `struct xen_dm_op_track_dirty_vram`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct TrackDirtyVram {
    pub nr: u32,
    pub pad: u32,
    pub first_pfn: u64,
}

/// `struct xen_dm_op_set_pci_intx_level`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct SetPciIntxLevel {
    pub domain: u16,
    pub bus: u8,
    pub device: u8,
    pub intx: u8,
    pub level: u8,
}

/// `struct xen_dm_op_set_isa_irq_level`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct SetIsaIrqLevel {
    pub isa_irq: u8,
    pub level: u8,
}

/// `struct xen_dm_op_set_pci_link_route`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct SetPciLinkRoute {
    pub link: u8,
    pub isa_irq: u8,
}

/// `struct xen_dm_op_modified_memory` (the header; extents go in buffer 2).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct ModifiedMemory {
    pub nr_extents: u32,
    pub opaque: u32,
}

/// `struct xen_dm_op_modified_memory_extent`, part of the C API
/// (`xendevicemodel_modified_memory_bulk` takes an array of them).
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct xen_dm_op_modified_memory_extent {
    /// Number of contiguous pages modified.
    pub nr: u32,
    /// Must be zero.
    pub pad: u32,
    /// First pfn modified.
    pub first_pfn: u64,
}

/// `struct xen_dm_op_set_mem_type`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct SetMemType {
    pub nr: u32,
    pub mem_type: u16,
    pub pad: u16,
    pub first_pfn: u64,
}

/// `struct xen_dm_op_inject_event`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct InjectEvent {
    pub vcpuid: u32,
    pub vector: u8,
    pub type_: u8,
    pub insn_len: u8,
    pub pad0: u8,
    pub error_code: u32,
    pub pad1: u32,
    pub cr2: u64,
}

/// `struct xen_dm_op_inject_msi`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct InjectMsi {
    pub data: u32,
    pub pad: u32,
    pub addr: u64,
}

/// `struct xen_dm_op_map_mem_type_to_ioreq_server`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct MapMemTypeToIoreqServer {
    pub id: ioservid_t,
    pub type_: u16,
    pub flags: u32,
    pub opaque: u64,
}

/// `struct xen_dm_op_remote_shutdown`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct RemoteShutdown {
    pub reason: u32,
}

/// `struct xen_dm_op_relocate_memory`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct RelocateMemory {
    pub size: u32,
    pub pad: u32,
    pub src_gfn: u64,
    pub dst_gfn: u64,
}

/// `struct xen_dm_op_pin_memory_cacheattr`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct PinMemoryCacheattr {
    pub start: u64,
    pub end: u64,
    pub type_: u32,
    pub pad: u32,
}

/// `struct xen_dm_op_set_irq_level`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct SetIrqLevel {
    pub irq: u32,
    pub level: u8,
    pub pad: [u8; 3],
}

/// `struct xen_dm_op_nr_vcpus`.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
pub struct NrVcpus {
    pub vcpus: u32,
}

/// Bytes of `xen_dm_op.u`, the union of all operation bodies.
const BODY_BYTES: usize = 24;

/// A structure that can be the body (`u` member) of a [`DmOp`].
///
/// # Safety
/// Implementors must be `#[repr(C)]` plain data with explicit padding fields
/// only (every byte initialised), valid for any bit pattern, at most
/// 24 bytes (the size of `xen_dm_op.u`) long and at most 8-byte aligned.
pub unsafe trait DmOpBody: Copy + Default {}

macro_rules! bodies {
    ($($t:ty),* $(,)?) => {$(
        unsafe impl DmOpBody for $t {}
        const _: () = assert!(size_of::<$t>() <= BODY_BYTES && core::mem::align_of::<$t>() <= 8);
    )*};
}
bodies!(
    CreateIoreqServer,
    GetIoreqServerInfo,
    IoreqServerRange,
    SetIoreqServerState,
    DestroyIoreqServer,
    TrackDirtyVram,
    SetPciIntxLevel,
    SetIsaIrqLevel,
    SetPciLinkRoute,
    ModifiedMemory,
    SetMemType,
    InjectEvent,
    InjectMsi,
    MapMemTypeToIoreqServer,
    RemoteShutdown,
    RelocateMemory,
    PinMemoryCacheattr,
    SetIrqLevel,
    NrVcpus,
);

/// `struct xen_dm_op`: the 32-byte request that is always buffer 0.
///
/// Built zeroed, so the `pad` fields and the unused tail of the union are zero
/// exactly as in Xen's library (which `memset`s the whole structure).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct DmOp {
    pub op: u32,
    pub pad: u32,
    u: [u64; BODY_BYTES / 8],
}

impl DmOp {
    /// A request for operation `op` (`XEN_DMOP_*`) with the given body.
    #[inline]
    pub fn new<B: DmOpBody>(op: u32, body: B) -> Self {
        let mut req = DmOp { op, pad: 0, u: [0; BODY_BYTES / 8] };
        // SAFETY: DmOpBody guarantees B fits in (and is no more aligned than) `u`.
        unsafe { core::ptr::write(req.u.as_mut_ptr().cast::<B>(), body) };
        req
    }

    /// The body as the hypervisor left it (for out-values).
    #[inline]
    pub fn body<B: DmOpBody>(&self) -> B {
        // SAFETY: as in `new`; B is valid for any bit pattern.
        unsafe { core::ptr::read(self.u.as_ptr().cast::<B>()) }
    }

    /// The raw bytes, as they are sent.
    pub fn as_bytes(&self) -> &[u8; 32] {
        // SAFETY: DmOp is 32 bytes of plain data without implicit padding.
        unsafe { &*(self as *const DmOp).cast::<[u8; 32]>() }
    }
}

/// Linux `privcmd_dm_op_buf_t`: one buffer of a DM_OP request.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PrivcmdDmOpBuf {
    pub uptr: *mut c_void,
    pub size: usize,
}

/// Linux `privcmd_dm_op_t`: the argument of `IOCTL_PRIVCMD_DM_OP`.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct PrivcmdDmOp {
    pub dom: domid_t,
    pub num: u16,
    /// The C struct's implicit padding before the 8-byte pointer, zeroed.
    #[cfg(target_pointer_width = "64")]
    pub pad: u32,
    pub ubufs: *const PrivcmdDmOpBuf,
}

/// The first word of a [`PrivcmdDmOp`]: `dom`, `num` and (64-bit) the padding.
#[cfg(target_pointer_width = "64")]
type Head = u64;
#[cfg(target_pointer_width = "32")]
type Head = u32;

impl PrivcmdDmOp {
    /// A request for `num` buffers at `ubufs`.
    ///
    /// `dom`, `num` and the padding are written as one 8-byte store: the
    /// kernel's `copy_from_user` reads them with one 8-byte load, which can
    /// take its data straight from a single pending store, but has to wait
    /// for several smaller ones to reach the cache (about 1.5 ns per call).
    #[inline(always)]
    pub fn new(dom: domid_t, num: u16, ubufs: *const PrivcmdDmOpBuf) -> Self {
        #[repr(C)]
        struct Words(Head, *const PrivcmdDmOpBuf);
        let mut head = [0u8; size_of::<Head>()];
        head[..2].copy_from_slice(&dom.to_ne_bytes());
        head[2..4].copy_from_slice(&num.to_ne_bytes());
        // SAFETY: same size and alignment; the first word holds `dom` and
        // `num` at their offsets (see `layout!` below) and zero padding.
        unsafe { core::mem::transmute(Words(Head::from_ne_bytes(head), ubufs)) }
    }
}

/// Xen `xen_dm_op_buf_t`, the buffer descriptor of the dm_op hypercall
/// (used by the libxencall fallback).
///
/// `h` is a guest handle: a pointer on x86_64, a union of a pointer and a
/// `uint64_t` on Arm, so on 32-bit Arm the pointer must be zero-extended to
/// 64 bits (the hypervisor reads all of them). Held as `u64` everywhere.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct XenDmOpBuf {
    pub h: u64,
    pub size: u64,
}

impl XenDmOpBuf {
    /// A descriptor for `size` bytes at `p`.
    #[inline]
    pub fn new(p: *mut c_void, size: u64) -> Self {
        XenDmOpBuf { h: p as usize as u64, size }
    }
}

const fn ioc_none(nr: u32, size: usize) -> libc::c_ulong {
    // _IOC(_IOC_NONE, 'P', nr, size): direction 0 in bits 30-31.
    (((size as u32) << 16) | ((b'P' as u32) << 8) | nr) as libc::c_ulong
}
/// `IOCTL_PRIVCMD_DM_OP`.
pub const IOCTL_PRIVCMD_DM_OP: libc::c_ulong = ioc_none(5, size_of::<PrivcmdDmOp>());
/// `IOCTL_PRIVCMD_RESTRICT`.
pub const IOCTL_PRIVCMD_RESTRICT: libc::c_ulong = ioc_none(6, size_of::<domid_t>());

/// Linux's default `dm_op_buf_max_size`: larger buffers get E2BIG.
pub const PRIVCMD_BUF_MAX: usize = 4096;

// Layout checks against xen/hvm/dm_op.h and xen/sys/privcmd.h: the dm_op
// structures are the same on x86_64, aarch64 and armhf (uint64_t is 8-byte
// aligned on all three, also under the Arm EABI); privcmd's differ by pointer
// width (tests/arch/layout.c prints what each C compiler sees).
macro_rules! layout {
    ($t:ty, $size:expr $(, $f:ident @ $off:expr)*) => {
        const _: () = assert!(size_of::<$t>() == $size);
        $(const _: () = assert!(offset_of!($t, $f) == $off);)*
    };
}
layout!(DmOp, 32, op @ 0, pad @ 4, u @ 8);
layout!(CreateIoreqServer, 6, handle_bufioreq @ 0, pad @ 1, id @ 4);
layout!(GetIoreqServerInfo, 24, id @ 0, flags @ 2, bufioreq_port @ 4, ioreq_gfn @ 8, bufioreq_gfn @ 16);
layout!(IoreqServerRange, 24, id @ 0, pad @ 2, type_ @ 4, start @ 8, end @ 16);
layout!(SetIoreqServerState, 4, id @ 0, enabled @ 2, pad @ 3);
layout!(DestroyIoreqServer, 4, id @ 0, pad @ 2);
layout!(TrackDirtyVram, 16, nr @ 0, pad @ 4, first_pfn @ 8);
layout!(SetPciIntxLevel, 6, domain @ 0, bus @ 2, device @ 3, intx @ 4, level @ 5);
layout!(SetIsaIrqLevel, 2, isa_irq @ 0, level @ 1);
layout!(SetPciLinkRoute, 2, link @ 0, isa_irq @ 1);
layout!(ModifiedMemory, 8, nr_extents @ 0, opaque @ 4);
layout!(xen_dm_op_modified_memory_extent, 16, nr @ 0, pad @ 4, first_pfn @ 8);
layout!(SetMemType, 16, nr @ 0, mem_type @ 4, pad @ 6, first_pfn @ 8);
layout!(InjectEvent, 24, vcpuid @ 0, vector @ 4, type_ @ 5, insn_len @ 6, pad0 @ 7, error_code @ 8, pad1 @ 12, cr2 @ 16);
layout!(InjectMsi, 16, data @ 0, pad @ 4, addr @ 8);
layout!(MapMemTypeToIoreqServer, 16, id @ 0, type_ @ 2, flags @ 4, opaque @ 8);
layout!(RemoteShutdown, 4, reason @ 0);
layout!(RelocateMemory, 24, size @ 0, pad @ 4, src_gfn @ 8, dst_gfn @ 16);
layout!(PinMemoryCacheattr, 24, start @ 0, end @ 8, type_ @ 16, pad @ 20);
layout!(SetIrqLevel, 8, irq @ 0, level @ 4, pad @ 5);
layout!(NrVcpus, 4, vcpus @ 0);
layout!(XenDmOpBuf, 16, h @ 0, size @ 8);
const _: () = assert!(size_of::<xen_pfn_t>() == 8);
const _: () = assert!(IOCTL_PRIVCMD_RESTRICT == 0x0002_5006);
#[cfg(target_pointer_width = "64")]
mod privcmd_layout {
    use super::*;
    layout!(PrivcmdDmOpBuf, 16, uptr @ 0, size @ 8);
    layout!(PrivcmdDmOp, 16, dom @ 0, num @ 2, pad @ 4, ubufs @ 8);
    const _: () = assert!(IOCTL_PRIVCMD_DM_OP == 0x0010_5005);
}
#[cfg(target_pointer_width = "32")]
mod privcmd_layout {
    use super::*;
    layout!(PrivcmdDmOpBuf, 8, uptr @ 0, size @ 4);
    layout!(PrivcmdDmOp, 8, dom @ 0, num @ 2, ubufs @ 4);
    const _: () = assert!(IOCTL_PRIVCMD_DM_OP == 0x0008_5005);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_round_trips_and_tail_is_zero() {
        let r = DmOp::new(op::SET_ISA_IRQ_LEVEL, SetIsaIrqLevel { isa_irq: 4, level: 1 });
        let b = r.as_bytes();
        assert_eq!(&b[0..4], &9u32.to_ne_bytes());
        assert_eq!(b[8], 4);
        assert_eq!(b[9], 1);
        assert!(b[4..8].iter().chain(&b[10..]).all(|&x| x == 0));
        assert_eq!(r.body::<SetIsaIrqLevel>().isa_irq, 4);
    }

    #[test]
    fn sbdf_matches_xen_macro() {
        assert_eq!(pci_sbdf(0x1234, 0xab, 0x1f, 7), 0x1234_abff);
        assert_eq!(pci_sbdf(0, 0, 3, 0), 0x18);
    }

    #[test]
    fn privcmd_request_fields() {
        let bufs = [PrivcmdDmOpBuf { uptr: core::ptr::null_mut(), size: 0 }; 2];
        let u = PrivcmdDmOp::new(0x7ff3, 2, bufs.as_ptr());
        assert_eq!((u.dom, u.num), (0x7ff3, 2));
        #[cfg(target_pointer_width = "64")]
        assert_eq!(u.pad, 0);
        assert_eq!(u.ubufs, bufs.as_ptr());
    }
}
