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
//! clear; `uio_pci_generic` relies on both. The device is a [`Device`] on the
//! toolkit's [`Bus`](xendevicemodel_ioreq::Bus): where the guest places a BAR
//! (and enables decoding), the bus claims that range for the server, and
//! releases the old one when the BAR moves; accesses arrive as offsets into
//! a BAR, and [`regs`] turns narrow and unaligned ones into register reads
//! and masked writes.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use xendevicemodel_ioreq::pci::{BarKind, ConfigSpace, CONFIG};
use xendevicemodel_ioreq::regs::{self, Registers};
use xendevicemodel_ioreq::{Access, Ctx, Device, IoRange, RegionId, Sbdf};

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

    /// How many interrupts the guest raised through DOORBELL.
    pub fn raised(&self) -> u32 {
        self.raised
    }

    fn note(&self, what: core::fmt::Arguments<'_>) {
        if self.verbose {
            eprintln!("ioreq-pci-device: {what}");
        }
    }
}

impl Registers for SumDevice {
    fn read_register(&mut self, _: &mut Ctx<'_>, _bar: RegionId, offset: u64) -> u32 {
        match offset {
            reg::A => self.a,
            reg::B => self.b,
            reg::SUM => self.a.wrapping_add(self.b),
            reg::DOORBELL => self.raised,
            reg::ACK => self.cfg.intx_pending() as u32,
            reg::MAGIC => MAGIC,
            _ => 0,
        }
    }

    fn write_register(&mut self, ctx: &mut Ctx<'_>, _bar: RegionId, offset: u64, value: u32, mask: u32) {
        // ConfigSpace logs a failed INTx change; the guest sees the register as written.
        match offset {
            reg::A => self.a = self.a & !mask | value & mask,
            reg::B => self.b = self.b & !mask | value & mask,
            reg::DOORBELL => {
                self.raised = self.raised.wrapping_add(1);
                self.note(format_args!("interrupt {} raised", self.raised));
                let _ = self.cfg.set_intx(ctx, true);
            }
            reg::ACK => drop(self.cfg.set_intx(ctx, false)),
            _ => {} // read-only, or no register
        }
    }
}

impl Device for SumDevice {
    fn regions(&self) -> Vec<(RegionId, IoRange)> {
        self.cfg.regions()
    }

    fn read(&mut self, ctx: &mut Ctx<'_>, a: Access) -> u64 {
        match a.region {
            CONFIG => {
                self.counts.config += 1;
                self.cfg.read(a.offset as u16, a.size)
            }
            bar => {
                *if bar == 0 { &mut self.counts.mmio } else { &mut self.counts.port } += 1;
                regs::read(self, ctx, a)
            }
        }
    }

    fn write(&mut self, ctx: &mut Ctx<'_>, a: Access, value: u64) {
        if a.region != CONFIG {
            *if a.region == 0 { &mut self.counts.mmio } else { &mut self.counts.port } += 1;
            return regs::write(self, ctx, a, value);
        }
        self.counts.config += 1;
        let before = [self.cfg.bar_range(0), self.cfg.bar_range(1)];
        let _ = self.cfg.write(ctx, a.offset as u16, a.size, value); // failures are logged by ConfigSpace
        for (i, old) in before.into_iter().enumerate() {
            let new = self.cfg.bar_range(i);
            if new != old {
                self.note(format_args!("BAR{i}: released {old:?}, claimed {new:?}"));
            }
        }
    }
}
