//! [`ConfigSpace`]: the config space of one emulated PCI function (a type 0
//! header), with what a guest's firmware and drivers rely on: the ids,
//! BAR sizing and placement, the command register's decode enables,
//! INTx with the Interrupt Status bit and the INTx Disable bit (which
//! `uio_pci_generic` masks interrupts with).
//!
//! On a [`Bus`](crate::Bus), a device's [`regions`](ConfigSpace::regions)
//! are its config space ([`CONFIG`]) and each BAR (region = BAR number)
//! where the guest placed it while decoding is enabled: the bus claims a
//! BAR's range when the guest places it, and releases it when it moves or
//! decoding is turned off, as QEMU does for its devices.

use crate::backend::IoRange;
use crate::bus::RegionId;
use crate::device::Server;
use crate::error::Result;
use crate::request::{Sbdf, Size};
use xendevicemodel::Errno;

/// The region of a PCI function's config space (BARs are regions 0-5).
pub const CONFIG: RegionId = u32::MAX;

const COMMAND: usize = 0x04;
const CMD_IO: u16 = 1 << 0;
const CMD_MEMORY: u16 = 1 << 1;
const CMD_INTX_DISABLE: u16 = 1 << 10;
const STATUS: usize = 0x06;
const STATUS_INTERRUPT: u8 = 1 << 3;
const BAR0: usize = 0x10;
const INTERRUPT_LINE: usize = 0x3c;
const INTERRUPT_PIN: usize = 0x3d;

/// What a BAR decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarKind {
    /// 32-bit, non-prefetchable memory.
    Memory32,
    /// I/O ports.
    Io,
}

/// The config space of one PCI function.
#[derive(Clone, Debug)]
pub struct ConfigSpace {
    sbdf: Sbdf,
    regs: [u8; 256],
    wmask: [u8; 256],
    bars: [Option<(BarKind, u32)>; 6],
    /// The device asks for an interrupt.
    pending: bool,
    /// What the hypervisor was last told about the INTx line.
    line: bool,
}

impl ConfigSpace {
    /// A function with these ids and class code (`class << 16 | subclass << 8
    /// | prog_if`), no BARs, no interrupt pin.
    pub fn new(sbdf: Sbdf, vendor: u16, device: u16, class: u32, revision: u8) -> Self {
        let mut c = ConfigSpace { sbdf, regs: [0; 256], wmask: [0; 256], bars: [None; 6], pending: false, line: false };
        c.regs[0..2].copy_from_slice(&vendor.to_le_bytes());
        c.regs[2..4].copy_from_slice(&device.to_le_bytes());
        c.regs[8] = revision;
        c.regs[9..12].copy_from_slice(&class.to_le_bytes()[..3]);
        let cmd_mask = CMD_IO | CMD_MEMORY | (1 << 2) | CMD_INTX_DISABLE; // + bus master
        c.wmask[COMMAND..COMMAND + 2].copy_from_slice(&cmd_mask.to_le_bytes());
        c.wmask[0x0c] = 0xff; // cache line size
        c.wmask[0x0d] = 0xff; // latency timer
        c.wmask[INTERRUPT_LINE] = 0xff;
        c
    }

    /// Sets the subsystem ids.
    pub fn with_subsystem(mut self, vendor: u16, id: u16) -> Self {
        self.regs[0x2c..0x2e].copy_from_slice(&vendor.to_le_bytes());
        self.regs[0x2e..0x30].copy_from_slice(&id.to_le_bytes());
        self
    }

    /// Adds BAR `index` (0-5) of `size` bytes (a power of two, at least 16
    /// for memory and 4 for ports, at most 2 GiB).
    pub fn with_bar(mut self, index: usize, kind: BarKind, size: u32) -> Self {
        assert!(index < 6 && size.is_power_of_two() && size <= 1 << 31, "BAR {index} of {size:#x} bytes");
        let (low, mask) = match kind {
            BarKind::Memory32 => (0u32, !(size - 1) & !0xf),
            BarKind::Io => (1u32, !(size - 1) & !0x3),
        };
        assert!(mask != 0 && size >= if kind == BarKind::Io { 4 } else { 16 });
        let at = BAR0 + 4 * index;
        self.regs[at..at + 4].copy_from_slice(&low.to_le_bytes());
        self.wmask[at..at + 4].copy_from_slice(&mask.to_le_bytes());
        self.bars[index] = Some((kind, size));
        self
    }

    /// Gives the function INTx pin `pin` (1 = INTA# .. 4 = INTD#).
    pub fn with_interrupt_pin(mut self, pin: u8) -> Self {
        assert!((1..=4).contains(&pin));
        self.regs[INTERRUPT_PIN] = pin;
        self
    }

    /// The function's address (claim it with [`IoRange::Pci`]).
    pub fn sbdf(&self) -> Sbdf {
        self.sbdf
    }

    /// What the function decodes now: its config space ([`CONFIG`]) and
    /// every BAR the guest placed while decoding is on (region = BAR number).
    pub fn regions(&self) -> Vec<(RegionId, IoRange)> {
        let bars = (0..6).filter_map(|i| Some((i as RegionId, self.bar_range(i)?)));
        core::iter::once((CONFIG, IoRange::Pci(self.sbdf))).chain(bars).collect()
    }

    /// Reads `size` bytes at `reg` (0 beyond the header).
    pub fn read(&self, reg: u16, size: Size) -> u64 {
        let mut b = [0u8; 8];
        for (i, x) in b.iter_mut().take(size.bytes() as usize).enumerate() {
            *x = self.regs.get(reg as usize + i).copied().unwrap_or(0);
        }
        u64::from_le_bytes(b)
    }

    /// Writes `size` bytes at `reg` (read-only bits stay), then updates the
    /// INTx line as the new command register says (an error is logged and
    /// returned). Where the BARs decode follows from the registers
    /// ([`regions`](Self::regions)); the bus claims what moved.
    pub fn write(&mut self, server: &Server, reg: u16, size: Size, value: u64) -> Result<()> {
        let bytes = value.to_le_bytes();
        let mut touched = false;
        for (i, &v) in bytes.iter().take(size.bytes() as usize).enumerate() {
            let r = reg as usize + i;
            if r < 256 {
                self.regs[r] = (self.regs[r] & !self.wmask[r]) | (v & self.wmask[r]);
                touched |= (COMMAND..COMMAND + 2).contains(&r);
            }
        }
        if !touched {
            return Ok(());
        }
        self.update_line(server)
    }

    fn command(&self) -> u16 {
        u16::from_le_bytes([self.regs[COMMAND], self.regs[COMMAND + 1]])
    }

    /// Where BAR `index` decodes now, as the guest programmed it, if it does.
    pub fn bar_range(&self, index: usize) -> Option<IoRange> {
        let (kind, size) = (*self.bars.get(index)?)?;
        let at = BAR0 + 4 * index;
        let raw = u32::from_le_bytes(self.regs[at..at + 4].try_into().expect("4 bytes"));
        let cmd = self.command();
        match kind {
            BarKind::Memory32 => {
                let start = (raw & !0xf) as u64;
                let end = start + size as u64 - 1;
                // Zero, or the sizing pattern (reaching 4 GiB - 1): not placed.
                (cmd & CMD_MEMORY != 0 && start != 0 && end < 0xffff_ffff).then_some(IoRange::Mmio { start, end })
            }
            BarKind::Io => {
                let start = (raw & !0x3) as u64;
                let end = start + size as u64 - 1;
                (cmd & CMD_IO != 0 && start != 0 && end < 0xffff)
                    .then_some(IoRange::Port { start: start as u16, end: end as u16 })
            }
        }
    }

    /// Raises (`true`) or lowers the function's interrupt request. The INTx
    /// line follows it unless the guest set INTx Disable; the status
    /// register's Interrupt Status bit shows it either way.
    pub fn set_intx(&mut self, server: &Server, pending: bool) -> Result<()> {
        self.pending = pending;
        self.update_line(server)
    }

    /// Whether the function asks for an interrupt.
    pub fn intx_pending(&self) -> bool {
        self.pending
    }

    fn update_line(&mut self, server: &Server) -> Result<()> {
        if self.pending {
            self.regs[STATUS] |= STATUS_INTERRUPT;
        } else {
            self.regs[STATUS] &= !STATUS_INTERRUPT;
        }
        let pin = self.regs[INTERRUPT_PIN];
        let want = self.pending && pin != 0 && self.command() & CMD_INTX_DISABLE == 0;
        if want == self.line {
            return Ok(());
        }
        match server.set_pci_intx_level(self.sbdf, pin - 1, want) {
            Ok(()) => {
                self.line = want;
                Ok(())
            }
            Err(e) => {
                log(server, e, format_args!("setting INTx of {} to {}", self.sbdf, want as u8));
                Err(e)
            }
        }
    }
}

fn log(server: &Server, e: crate::error::Error, what: core::fmt::Arguments<'_>) {
    let errno: Errno = e.errno();
    server.logger().error(errno, format_args!("ioreq: {what}: {e}"));
}
