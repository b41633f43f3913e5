//! Xen's dm_op interface (`xen/hvm/dm_op.h`, Xen 4.17) as this crate sends it.
//!
//! A request is one 32-byte `struct xen_dm_op`: an operation number, padding,
//! and a 24-byte union of operation bodies. Each body here declares its
//! fields with their byte offsets in Xen's header once; [`dm_body!`] turns
//! that into an encoder and a decoder (plain safe byte copies, which compile
//! to the same stores a C compiler makes) and compile-time checks that the
//! fields fit, are aligned as in C, and do not overlap. Bytes no field names
//! (Xen's `pad` members, the unused tail of the union) are always zero, as in
//! Xen's library, which `memset`s the request.
//!
//! These structures are the same on every architecture Xen supports (see
//! [`crate::arch`]); the C harness compares every request byte with a
//! `struct xen_dm_op` built from Xen's own header.

use core::mem::size_of;

/// A Xen domain id (`domid_t`).
pub type DomId = u16;
/// An IOREQ server id (`ioservid_t`).
pub type IoServId = u16;

/// `DOMID_INVALID`: the domid privcmd is probed with for the DM_OP ioctl.
pub(crate) const DOMID_INVALID: DomId = 0x7ff4;

/// `XEN_DMOP_no_gfns`: get_ioreq_server_info should not map the ioreq pages.
pub(crate) const XEN_DMOP_NO_GFNS: u16 = 1;
/// `XEN_DMOP_IO_RANGE_PORT`.
pub(crate) const XEN_DMOP_IO_RANGE_PORT: u32 = 0;
/// `XEN_DMOP_IO_RANGE_MEMORY`.
pub(crate) const XEN_DMOP_IO_RANGE_MEMORY: u32 = 1;
/// `XEN_DMOP_IO_RANGE_PCI`.
pub(crate) const XEN_DMOP_IO_RANGE_PCI: u32 = 2;
/// `XEN_DMOP_IOREQ_MEM_ACCESS_WRITE`, the only access type Xen emulates.
pub const XEN_DMOP_IOREQ_MEM_ACCESS_WRITE: u32 = 1 << 1;
/// `HVMMEM_ioreq_server` (`xen/hvm/hvm_op.h`), the only type `map_mem_type` takes.
pub const HVMMEM_IOREQ_SERVER: u16 = 4;

/// `struct xen_dm_op_modified_memory_extent`: `nr` pages from `first_pfn`.
///
/// Laid out as in Xen's header (16 bytes), so a slice of extents is passed
/// to the hypervisor as it is, without a copy.
#[repr(C)]
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Extent {
    /// Number of contiguous pages.
    pub nr: u32,
    /// Must be zero (Xen refuses the extent otherwise).
    pad: u32,
    /// First page frame.
    pub first_pfn: u64,
}

impl Extent {
    /// `nr` pages from `first_pfn`.
    pub const fn new(first_pfn: u64, nr: u32) -> Self {
        Extent { nr, pad: 0, first_pfn }
    }
}
const _: () = assert!(size_of::<Extent>() == 16 && core::mem::offset_of!(Extent, first_pfn) == 8);

/// Bytes of `xen_dm_op.u`, the union of all operation bodies.
pub(crate) const BODY_BYTES: usize = 24;

/// `struct xen_dm_op`: the 32-byte request that is always buffer 0.
#[repr(C, align(8))]
#[derive(Clone, Copy, Debug)]
pub(crate) struct DmOp {
    op: u32,
    pad: u32,
    u: [u8; BODY_BYTES],
}
const _: () = assert!(size_of::<DmOp>() == 32);

impl DmOp {
    /// A request for `body`'s operation.
    #[inline(always)]
    pub(crate) fn new<B: Body>(body: B) -> Self {
        let mut u = [0; BODY_BYTES];
        body.encode(&mut u);
        DmOp { op: B::OP, pad: 0, u }
    }

    /// The body as the hypervisor left it (out-values).
    #[inline(always)]
    pub(crate) fn body<B: Body>(&self) -> B {
        B::decode(&self.u)
    }
}

/// An operation body: the `u` member of `struct xen_dm_op` for one `XEN_DMOP_*`.
pub(crate) trait Body: Copy {
    /// Its `XEN_DMOP_*` number.
    const OP: u32;
    /// Writes the fields at their offsets (the other bytes stay as they are: zero).
    fn encode(&self, u: &mut [u8; BODY_BYTES]);
    /// Reads the fields back.
    fn decode(u: &[u8; BODY_BYTES]) -> Self;
}

/// Whether fields given as (offset, size) pairs, in declaration order, are
/// aligned to their size, fit in `total` bytes and do not overlap.
// Used only in `const _` assertions and tests, which Debian 13's rustc 1.85
// does not count as uses (1.95 does): without this, its dead_code lint fires.
#[allow(dead_code)]
const fn layout_ok(fields: &[(usize, usize)], total: usize) -> bool {
    let mut i = 0;
    while i < fields.len() {
        let (off, len) = fields[i];
        if off % len != 0 || off + len > total {
            return false;
        }
        let mut j = 0;
        while j < i {
            let (o2, l2) = fields[j];
            if off < o2 + l2 && o2 < off + len {
                return false;
            }
            j += 1;
        }
        i += 1;
    }
    total <= BODY_BYTES
}

/// Declares a dm_op body: `Name(c_name) = XEN_DMOP_number, size N { field: type @ offset, ... }`,
/// where `struct xen_dm_op_<c_name>` is its name in Xen's header.
macro_rules! dm_body {
    ($($(#[$m:meta])* $name:ident($c:ident) = $op:literal, size $size:literal { $($f:ident: $t:ident @ $off:literal),* $(,)? })*) => {
        /// Every body's C name (`struct xen_dm_op_<name>`) and size, as declared.
        #[cfg(test)]
        pub(crate) const C_SIZES: &[(&str, usize)] = &[$((stringify!($c), $size)),*];
        $(
        $(#[$m])*
        #[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
        pub(crate) struct $name { $(pub(crate) $f: $t),* }

        impl Body for $name {
            const OP: u32 = $op;
            #[inline(always)]
            #[allow(unused_variables)]
            fn encode(&self, u: &mut [u8; BODY_BYTES]) {
                $(u[$off..$off + size_of::<$t>()].copy_from_slice(&self.$f.to_ne_bytes());)*
            }
            #[inline(always)]
            #[allow(unused_variables)]
            fn decode(u: &[u8; BODY_BYTES]) -> Self {
                let mut b = Self::default();
                $(let mut w = [0u8; size_of::<$t>()];
                  w.copy_from_slice(&u[$off..$off + size_of::<$t>()]);
                  b.$f = <$t>::from_ne_bytes(w);)*
                b
            }
        }
        const _: () = assert!(layout_ok(&[$(($off, size_of::<$t>())),*], $size), stringify!($name));
    )*};
}

dm_body! {
    /// `struct xen_dm_op_create_ioreq_server`.
    CreateIoreqServer(create_ioreq_server) = 1, size 6 { handle_bufioreq: u8 @ 0, id: u16 @ 4 }
    /// `struct xen_dm_op_get_ioreq_server_info`.
    GetIoreqServerInfo(get_ioreq_server_info) = 2, size 24 { id: u16 @ 0, flags: u16 @ 2, bufioreq_port: u32 @ 4, ioreq_gfn: u64 @ 8, bufioreq_gfn: u64 @ 16 }
    /// `struct xen_dm_op_ioreq_server_range`, for mapping.
    MapIoRange(ioreq_server_range) = 3, size 24 { id: u16 @ 0, type_: u32 @ 4, start: u64 @ 8, end: u64 @ 16 }
    /// `struct xen_dm_op_ioreq_server_range`, for unmapping.
    UnmapIoRange(ioreq_server_range) = 4, size 24 { id: u16 @ 0, type_: u32 @ 4, start: u64 @ 8, end: u64 @ 16 }
    /// `struct xen_dm_op_set_ioreq_server_state`.
    SetIoreqServerState(set_ioreq_server_state) = 5, size 4 { id: u16 @ 0, enabled: u8 @ 2 }
    /// `struct xen_dm_op_destroy_ioreq_server`.
    DestroyIoreqServer(destroy_ioreq_server) = 6, size 4 { id: u16 @ 0 }
    /// `struct xen_dm_op_track_dirty_vram`.
    TrackDirtyVram(track_dirty_vram) = 7, size 16 { nr: u32 @ 0, first_pfn: u64 @ 8 }
    /// `struct xen_dm_op_set_pci_intx_level`.
    SetPciIntxLevel(set_pci_intx_level) = 8, size 6 { domain: u16 @ 0, bus: u8 @ 2, device: u8 @ 3, intx: u8 @ 4, level: u8 @ 5 }
    /// `struct xen_dm_op_set_isa_irq_level`.
    SetIsaIrqLevel(set_isa_irq_level) = 9, size 2 { isa_irq: u8 @ 0, level: u8 @ 1 }
    /// `struct xen_dm_op_set_pci_link_route`.
    SetPciLinkRoute(set_pci_link_route) = 10, size 2 { link: u8 @ 0, isa_irq: u8 @ 1 }
    /// `struct xen_dm_op_modified_memory` (the extents go in buffer 1).
    ModifiedMemory(modified_memory) = 11, size 8 { nr_extents: u32 @ 0 }
    /// `struct xen_dm_op_set_mem_type`.
    SetMemType(set_mem_type) = 12, size 16 { nr: u32 @ 0, mem_type: u16 @ 4, first_pfn: u64 @ 8 }
    /// `struct xen_dm_op_inject_event`.
    InjectEvent(inject_event) = 13, size 24 { vcpuid: u32 @ 0, vector: u8 @ 4, type_: u8 @ 5, insn_len: u8 @ 6, error_code: u32 @ 8, cr2: u64 @ 16 }
    /// `struct xen_dm_op_inject_msi`.
    InjectMsi(inject_msi) = 14, size 16 { data: u32 @ 0, addr: u64 @ 8 }
    /// `struct xen_dm_op_map_mem_type_to_ioreq_server`.
    MapMemTypeToIoreqServer(map_mem_type_to_ioreq_server) = 15, size 16 { id: u16 @ 0, type_: u16 @ 2, flags: u32 @ 4 }
    /// `struct xen_dm_op_remote_shutdown`.
    RemoteShutdown(remote_shutdown) = 16, size 4 { reason: u32 @ 0 }
    /// `struct xen_dm_op_relocate_memory`.
    RelocateMemory(relocate_memory) = 17, size 24 { size: u32 @ 0, src_gfn: u64 @ 8, dst_gfn: u64 @ 16 }
    /// `struct xen_dm_op_pin_memory_cacheattr`.
    PinMemoryCacheattr(pin_memory_cacheattr) = 18, size 24 { start: u64 @ 0, end: u64 @ 8, type_: u32 @ 16 }
    /// `struct xen_dm_op_set_irq_level`.
    SetIrqLevel(set_irq_level) = 19, size 8 { irq: u32 @ 0, level: u8 @ 4 }
    /// `struct xen_dm_op_nr_vcpus`.
    NrVcpus(nr_vcpus) = 20, size 4 { vcpus: u32 @ 0 }
}

/// Extents per `modified_memory` request: what fits in privcmd's default
/// per-buffer limit (4096 bytes / 16 bytes per extent).
pub const MAX_EXTENTS_PER_CALL: usize = PRIVCMD_BUF_MAX / size_of::<Extent>();
/// Linux's default `dm_op_buf_max_size`: larger buffers get `E2BIG`.
pub const PRIVCMD_BUF_MAX: usize = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(r: &DmOp) -> [u8; 32] {
        let mut b = [0; 32];
        b[..4].copy_from_slice(&r.op.to_ne_bytes());
        b[8..].copy_from_slice(&r.u);
        b
    }

    #[test]
    fn body_round_trips_and_the_rest_is_zero() {
        let r = DmOp::new(SetIsaIrqLevel { isa_irq: 4, level: 1 });
        let b = bytes(&r);
        assert_eq!(&b[0..4], &9u32.to_ne_bytes());
        assert_eq!((b[8], b[9]), (4, 1));
        assert!(b[4..8].iter().chain(&b[10..]).all(|&x| x == 0));
        assert_eq!(r.body::<SetIsaIrqLevel>(), SetIsaIrqLevel { isa_irq: 4, level: 1 });
    }

    #[test]
    fn fields_land_at_xens_offsets() {
        let r = DmOp::new(InjectEvent {
            vcpuid: 0x0403_0201,
            vector: 5,
            type_: 6,
            insn_len: 7,
            error_code: 0x0b0a_0908,
            cr2: 0x1817_1615_1413_1211,
        });
        let b = bytes(&r);
        assert_eq!(&b[8..12], &[1, 2, 3, 4]);
        assert_eq!(&b[12..15], &[5, 6, 7]);
        assert_eq!(b[15], 0, "pad0");
        assert_eq!(&b[16..20], &[8, 9, 10, 11]);
        assert_eq!(&b[20..24], &[0; 4], "pad1");
        assert_eq!(&b[24..32], &[0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18]);
    }

    #[test]
    fn layout_checks_catch_mistakes() {
        assert!(layout_ok(&[(0, 2), (4, 4), (8, 8)], 16));
        assert!(!layout_ok(&[(0, 2), (1, 1), (2, 4)], 8), "overlap");
        assert!(!layout_ok(&[(2, 4)], 8), "misaligned");
        assert!(!layout_ok(&[(0, 8)], 4), "too long for the declared size");
        assert!(!layout_ok(&[(0, 8)], 32), "larger than the union");
    }

    #[test]
    fn sbdf_matches_xens_macro() {}
}
