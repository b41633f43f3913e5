//! A small PCI device written with `xendevicemodel-ioreq`, in safe Rust: the
//! device of the real-guest check (`make guest-check`, tests/guest/toolkit.sh).
//!
//! Function 0000:00:SLOT.0, vendor 0x5845, device 0x1400 (a test id: 0x5845
//! is no vendor in the PCI ID database; the device id recalls issue 14),
//! class 0xff0000 (unassigned), INTA#. Two BARs decode the same registers:
//! BAR0, 4 KiB of memory, and BAR1, 32 I/O ports (a port read is the cheapest
//! request a guest can time). Registers, 32 bits each:
//!
//! | offset | name     | read                          | write                      |
//! |--------|----------|-------------------------------|----------------------------|
//! | 0x00   | A        | A                             | A                          |
//! | 0x04   | B        | B                             | B                          |
//! | 0x08   | SUM      | A + B (wrapping)              | ignored                    |
//! | 0x0c   | DOORBELL | interrupts raised so far      | raises INTx (any value)    |
//! | 0x10   | ACK      | 1 while an interrupt pends    | acknowledges: lowers INTx  |
//! | 0x14   | MAGIC    | 0x1400_5845                   | ignored                    |
//!
//! The interrupt follows PCI's rules through [`ConfigSpace`]: the Interrupt
//! Status bit (status bit 3) shows a pending interrupt, the INTx line is
//! asserted only while the command register's INTx Disable bit (bit 10) is
//! clear; `uio_pci_generic` relies on both. Where the guest places a BAR (and
//! enables decoding), [`ConfigSpace`] claims that range for the server, and
//! releases the old one when the BAR moves.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

use xendevicemodel_ioreq::pci::{BarKind, ConfigSpace};
use xendevicemodel_ioreq::{Access, Ctx, Device, IoRange, Sbdf, Server, Space};

/// The vendor id (a test id, see the crate docs).
pub const VENDOR: u16 = 0x5845;
/// The device id.
pub const DEVICE: u16 = 0x1400;
/// The class code: unassigned class (0xff), subclass 0, interface 0.
pub const CLASS: u32 = 0xff_0000;
/// What the MAGIC register reads.
pub const MAGIC: u32 = ((DEVICE as u32) << 16) | VENDOR as u32;
/// BAR0's size (memory).
pub const MMIO_SIZE: u32 = 4096;
/// BAR1's size (I/O ports).
pub const PORTS: u32 = 32;

/// Register offsets.
pub mod reg {
    /// Operand A.
    pub const A: u64 = 0x00;
    /// Operand B.
    pub const B: u64 = 0x04;
    /// A + B.
    pub const SUM: u64 = 0x08;
    /// Write: raise the interrupt; read: how many were raised.
    pub const DOORBELL: u64 = 0x0c;
    /// Write: acknowledge (lower) the interrupt; read: whether one pends.
    pub const ACK: u64 = 0x10;
    /// A constant, to tell the BARs decode.
    pub const MAGIC: u64 = 0x14;
}

/// How many accesses of each kind the device served.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Config space reads and writes.
    pub config: u64,
    /// Register accesses through BAR0.
    pub mmio: u64,
    /// Register accesses through BAR1.
    pub port: u64,
    /// Accesses that hit no register (outside both BARs, or while they do not decode).
    pub stray: u64,
}

/// The device: its config space and its registers.
#[derive(Debug)]
pub struct SumDevice {
    /// The config header (ids, BARs, INTx).
    pub cfg: ConfigSpace,
    a: u32,
    b: u32,
    raised: u32,
    /// What the device served so far.
    pub counts: Counts,
    /// Print BAR placements and interrupts on stderr.
    pub verbose: bool,
}

impl SumDevice {
    /// The device at 0000:00:`slot`.0.
    pub fn new(slot: u8) -> Self {
        let cfg = ConfigSpace::new(Sbdf::new(0, 0, slot, 0), VENDOR, DEVICE, CLASS, 1)
            .with_subsystem(VENDOR, DEVICE)
            .with_bar(0, BarKind::Memory32, MMIO_SIZE)
            .with_bar(1, BarKind::Io, PORTS)
            .with_interrupt_pin(1);
        SumDevice { cfg, a: 0, b: 0, raised: 0, counts: Counts::default(), verbose: false }
    }

    /// The range to claim so that the function's config space comes here.
    pub fn claim(&self) -> IoRange {
        IoRange::Pci(self.cfg.sbdf())
    }

    /// How many interrupts the guest raised through DOORBELL.
    pub fn raised(&self) -> u32 {
        self.raised
    }

    /// The 32-bit register at `off` (a multiple of 4).
    fn register(&self, off: u64) -> u32 {
        match off {
            reg::A => self.a,
            reg::B => self.b,
            reg::SUM => self.a.wrapping_add(self.b),
            reg::DOORBELL => self.raised,
            reg::ACK => self.cfg.intx_pending() as u32,
            reg::MAGIC => MAGIC,
            _ => 0,
        }
    }

    fn set_register(&mut self, server: &Server, off: u64, value: u32) {
        let r = match off {
            reg::A => {
                self.a = value;
                Ok(())
            }
            reg::B => {
                self.b = value;
                Ok(())
            }
            reg::DOORBELL => {
                self.raised = self.raised.wrapping_add(1);
                self.note(format_args!("interrupt {} raised", self.raised));
                self.cfg.set_intx(server, true)
            }
            reg::ACK => self.cfg.set_intx(server, false),
            _ => Ok(()),
        };
        // ConfigSpace logged the failure already; the guest sees the register as written.
        let _ = r;
    }

    /// The register offset an access reaches, if it reaches one.
    fn offset(&mut self, space: Space) -> Option<u64> {
        let (bar, off) = self.cfg.bar_offset(space)?;
        match bar {
            0 => self.counts.mmio += 1,
            _ => self.counts.port += 1,
        }
        Some(off)
    }

    fn note(&self, what: core::fmt::Arguments<'_>) {
        if self.verbose {
            eprintln!("ioreq-pci-device: {what}");
        }
    }
}

/// Bytes `shift..shift + size` of a register, for accesses narrower than 32 bits.
fn part(value: u32, off: u64, size: u32) -> u64 {
    let shift = 8 * (off % 4);
    let mask = if size >= 4 { u32::MAX } else { (1u32 << (8 * size)) - 1 };
    ((value >> shift) & mask) as u64
}

impl Device for SumDevice {
    fn read(&mut self, _ctx: &mut Ctx<'_>, a: Access) -> u64 {
        if let Space::PciConfig { reg, .. } = a.space {
            self.counts.config += 1;
            return self.cfg.read(reg, a.size);
        }
        match self.offset(a.space) {
            Some(off) => part(self.register(off & !3), off, a.size.bytes()),
            None => {
                self.counts.stray += 1;
                u64::MAX // nothing there
            }
        }
    }

    fn write(&mut self, ctx: &mut Ctx<'_>, a: Access, value: u64) {
        if let Space::PciConfig { reg, .. } = a.space {
            self.counts.config += 1;
            let before = [self.cfg.bar_range(0), self.cfg.bar_range(1)];
            let _ = self.cfg.write(ctx, reg, a.size, value); // failures are logged by ConfigSpace
            for (i, old) in before.into_iter().enumerate() {
                let new = self.cfg.bar_range(i);
                if new != old {
                    self.note(format_args!("BAR{i}: released {old:?}, claimed {new:?}"));
                }
            }
            return;
        }
        let Some(off) = self.offset(a.space) else {
            self.counts.stray += 1;
            return;
        };
        // A narrower write replaces its bytes of the register.
        let size = a.size.bytes().min(4);
        let shift = 8 * (off % 4);
        let mask = if size == 4 { u32::MAX } else { ((1u32 << (8 * size)) - 1) << shift };
        let at = off & !3;
        let merged = (self.register(at) & !mask) | (((value as u32) << shift) & mask);
        self.set_register(ctx.server, at, merged);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_a_register() {
        assert_eq!(part(0x1400_5845, 0, 4), 0x1400_5845);
        assert_eq!(part(0x1400_5845, 2, 2), 0x1400);
        assert_eq!(part(0x1400_5845, 1, 1), 0x58);
        assert_eq!(MAGIC, 0x1400_5845);
    }
}
