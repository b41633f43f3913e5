//! Register helpers: a device whose regions hold 32-bit registers at
//! 4-byte offsets implements [`Registers`], and [`read()`] and [`write()`] turn
//! any access (1, 2, 4 or 8 bytes, aligned or not, within one register or
//! across two) into reads and masked writes of whole registers, little-endian
//! as PCI devices are.

use crate::bus::{Access, RegionId};
use crate::device::Ctx;

/// A device's 32-bit registers.
pub trait Registers {
    /// The register at `offset` (a multiple of 4) of `region`.
    fn read_register(&mut self, ctx: &mut Ctx<'_>, region: RegionId, offset: u64) -> u32;

    /// A write of the bytes of `value` that `mask` selects (0xff per byte
    /// written) to the register at `offset` (a multiple of 4) of `region`:
    /// `register = register & !mask | value & mask` for plain registers.
    fn write_register(&mut self, ctx: &mut Ctx<'_>, region: RegionId, offset: u64, value: u32, mask: u32);
}

/// The registers an access touches: for each, its offset, the bit at which
/// its bytes start in the access's value, and the mask of its bytes the
/// access covers.
fn spans(a: Access) -> impl Iterator<Item = (u64, u32, u32)> {
    let bytes = a.size.bytes() as u64;
    let first = a.offset & !3;
    let last = a.offset.saturating_add(bytes - 1) & !3;
    (0..=(last - first) / 4).map(move |i| {
        let reg = first + 4 * i;
        // Bytes [a.offset, a.offset + bytes) intersected with [reg, reg + 4).
        let lo = a.offset.max(reg);
        let hi = a.offset.saturating_add(bytes).min(reg + 4);
        let n = (hi - lo) as u32;
        let mask = if n == 4 { u32::MAX } else { ((1u32 << (8 * n)) - 1) << (8 * (lo - reg)) };
        (reg, 8 * (lo - a.offset) as u32, mask)
    })
}

/// A read of any size at any offset, from whole register reads (each
/// register it touches is read once).
pub fn read<R: Registers + ?Sized>(dev: &mut R, ctx: &mut Ctx<'_>, a: Access) -> u64 {
    let mut value = 0u64;
    for (reg, at, mask) in spans(a) {
        let bits = dev.read_register(ctx, a.region, reg) & mask;
        // The register's selected bytes, moved to where they sit in the access.
        let low = mask.trailing_zeros();
        value |= ((bits >> low) as u64) << at;
    }
    value
}

/// A write of any size at any offset, as masked writes of the registers it
/// touches (no register is read: write-sensitive registers see only the
/// bytes written).
pub fn write<R: Registers + ?Sized>(dev: &mut R, ctx: &mut Ctx<'_>, a: Access, value: u64) {
    for (reg, at, mask) in spans(a) {
        let low = mask.trailing_zeros();
        let bits = (((value >> at) as u32) << low) & mask;
        dev.write_register(ctx, a.region, reg, bits, mask);
    }
}
