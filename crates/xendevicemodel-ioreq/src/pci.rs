//! [`ConfigSpace`]: the config space of one emulated PCI function (a type 0
//! header), with what a guest's firmware and drivers rely on: the ids,
//! BAR sizing and placement, the command register's decode enables,
//! INTx with the Interrupt Status bit and the INTx Disable bit (which
//! `uio_pci_generic` masks interrupts with), and message-signalled
//! interrupts: an MSI capability (64-bit, optionally with per-vector
//! masking) and an MSI-X capability whose table and pending bits live in a
//! BAR. [`ConfigSpace::signal`] delivers a vector the way the guest set the
//! function up (MSI-X, MSI, or INTx), holds it pending while it is masked
//! and sends it once the guest unmasks it.
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
const STATUS_CAP_LIST: u8 = 1 << 4;
const CAP_POINTER: usize = 0x34;
/// Where the first capability goes (after the type 0 header).
const FIRST_CAP: usize = 0x40;
const CAP_ID_MSI: u8 = 0x05;
const CAP_ID_MSIX: u8 = 0x11;
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
    /// Where the next capability goes.
    next_cap: usize,
    msi: Option<Msi>,
    msix: Option<Msix>,
}

/// An MSI capability.
#[derive(Clone, Copy, Debug)]
struct Msi {
    /// Its offset in config space.
    at: usize,
    /// Vectors the function asks for (a power of two, 1-32).
    vectors: u32,
    /// Per-vector masking: the mask and pending registers exist.
    masking: bool,
    /// Vectors held back while masked (the pending register).
    pending: u32,
}

/// An MSI-X capability and its table and pending bits.
#[derive(Clone, Debug)]
struct Msix {
    at: usize,
    /// The BAR holding the table and the pending bits.
    bar: usize,
    table: u64,
    pba: u64,
    /// 16 bytes per vector: address low, high, data, vector control.
    entries: Vec<u8>,
    pending: Vec<bool>,
}

/// How [`ConfigSpace::signal`] delivered a vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Sent as an MSI-X message (the vector's table entry).
    Msix,
    /// Sent as an MSI message.
    Msi,
    /// Held pending: the vector (or the whole function) is masked; sent
    /// when the guest unmasks it.
    Pending,
    /// Neither MSI nor MSI-X is enabled: the INTx line was raised (the
    /// device lowers it with [`ConfigSpace::set_intx`]).
    Intx,
    /// The vector is beyond what the guest enabled: nothing was sent.
    Dropped,
}

impl ConfigSpace {
    /// A function with these ids and class code (`class << 16 | subclass << 8
    /// | prog_if`), no BARs, no interrupt pin.
    pub fn new(sbdf: Sbdf, vendor: u16, device: u16, class: u32, revision: u8) -> Self {
        let mut c = ConfigSpace {
            sbdf,
            regs: [0; 256],
            wmask: [0; 256],
            bars: [None; 6],
            pending: false,
            line: false,
            next_cap: FIRST_CAP,
            msi: None,
            msix: None,
        };
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

    /// Starts a capability of `len` bytes with id `id`, linked into the
    /// list; returns its offset.
    fn add_cap(&mut self, id: u8, len: usize) -> usize {
        let at = self.next_cap;
        assert!(at + len <= 256, "no room for capability {id:#x} in config space");
        self.regs[at] = id;
        // Linked at the end of the list (the pointer, or the last one's next).
        let mut link = CAP_POINTER;
        while self.regs[link] != 0 {
            link = self.regs[link] as usize + 1;
        }
        self.regs[link] = at as u8;
        self.regs[STATUS] |= STATUS_CAP_LIST;
        self.next_cap = (at + len + 3) & !3;
        at
    }

    /// Adds an MSI capability (64-bit addresses) for `vectors` vectors (a
    /// power of two up to 32), with per-vector masking if `masking`.
    pub fn with_msi(mut self, vectors: u32, masking: bool) -> Self {
        assert!(vectors.is_power_of_two() && vectors <= 32, "MSI vectors {vectors}");
        assert!(self.msi.is_none(), "one MSI capability");
        let at = self.add_cap(CAP_ID_MSI, if masking { 0x18 } else { 0x0e });
        // Message control: MMC (vectors asked for) and 64-bit; PVM.
        let control = ((vectors.trailing_zeros() as u16) << 1) | (1 << 7) | ((masking as u16) << 8);
        self.regs[at + 2..at + 4].copy_from_slice(&control.to_le_bytes());
        // Writable: enable and MME (the vectors granted); address, data, mask bits.
        self.wmask[at + 2] = 0x71;
        self.wmask[at + 4..at + 8].copy_from_slice(&0xffff_fffcu32.to_le_bytes());
        self.wmask[at + 8..at + 12].fill(0xff);
        self.wmask[at + 12..at + 14].fill(0xff);
        if masking {
            let bits = if vectors == 32 { u32::MAX } else { (1 << vectors) - 1 };
            self.wmask[at + 0x10..at + 0x14].copy_from_slice(&bits.to_le_bytes());
        }
        self.msi = Some(Msi { at, vectors, masking, pending: 0 });
        self
    }

    /// Adds an MSI-X capability for `vectors` vectors (1-2048) whose table
    /// is at `table` and pending bits at `pba` in BAR `bar` (offsets 8-byte
    /// aligned; the BAR must be large enough, and its accesses there are
    /// the capability's: see [`msix_read`](Self::msix_read)). Every vector
    /// starts masked, as the specification says.
    pub fn with_msix(mut self, vectors: u16, bar: usize, table: u32, pba: u32) -> Self {
        assert!((1..=2048).contains(&vectors) && bar < 6 && table % 8 == 0 && pba % 8 == 0, "MSI-X layout");
        let (_, size) = self.bars[bar].expect("the MSI-X BAR exists");
        let n = vectors as u64;
        assert!(
            table as u64 + 16 * n <= size as u64 && pba as u64 + n.div_ceil(64) * 8 <= size as u64,
            "MSI-X fits its BAR"
        );
        assert!(self.msix.is_none(), "one MSI-X capability");
        let at = self.add_cap(CAP_ID_MSIX, 12);
        self.regs[at + 2..at + 4].copy_from_slice(&(vectors - 1).to_le_bytes());
        self.wmask[at + 3] = 0xc0; // function mask, enable
        self.regs[at + 4..at + 8].copy_from_slice(&(table | bar as u32).to_le_bytes());
        self.regs[at + 8..at + 12].copy_from_slice(&(pba | bar as u32).to_le_bytes());
        let mut entries = vec![0u8; 16 * vectors as usize];
        for e in entries.chunks_mut(16) {
            e[12] = 1; // vector control: masked
        }
        let pending = vec![false; vectors as usize];
        self.msix = Some(Msix { at, bar, table: table as u64, pba: pba as u64, entries, pending });
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
        let (mut touched, mut msi) = (false, false);
        let caps = [self.msi.map(|m| (m.at, 0x18)), self.msix.as_ref().map(|m| (m.at, 12))];
        for (i, &v) in bytes.iter().take(size.bytes() as usize).enumerate() {
            let r = reg as usize + i;
            if r < 256 {
                self.regs[r] = (self.regs[r] & !self.wmask[r]) | (v & self.wmask[r]);
                touched |= (COMMAND..COMMAND + 2).contains(&r);
                msi |= caps.iter().flatten().any(|&(at, len)| (at..at + len).contains(&r));
            }
        }
        if !touched && !msi {
            return Ok(());
        }
        // Enabling MSI or MSI-X takes the function off INTx; unmasking
        // sends what was held pending.
        let l = self.update_line(server);
        let m = if msi { self.deliver_unmasked(server) } else { Ok(()) };
        l.and(m)
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
        let messages = self.msi_enabled() || self.msix_enabled();
        let want = self.pending && pin != 0 && self.command() & CMD_INTX_DISABLE == 0 && !messages;
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

impl ConfigSpace {
    fn u16_at(&self, at: usize) -> u16 {
        u16::from_le_bytes([self.regs[at], self.regs[at + 1]])
    }

    fn u32_at(&self, at: usize) -> u32 {
        u32::from_le_bytes(self.regs[at..at + 4].try_into().expect("4 bytes"))
    }

    /// Whether the guest enabled MSI.
    pub fn msi_enabled(&self) -> bool {
        self.msi.is_some_and(|m| self.regs[m.at + 2] & 1 != 0)
    }

    /// Whether the guest enabled MSI-X.
    pub fn msix_enabled(&self) -> bool {
        self.msix.as_ref().is_some_and(|m| self.regs[m.at + 3] & 0x80 != 0)
    }

    /// Sends interrupt `vector` as the guest set the function up: its MSI-X
    /// table entry when MSI-X is enabled, MSI message `data | vector` when
    /// MSI is (vectors beyond the granted count are dropped), the INTx line
    /// otherwise. A masked vector (or function, for MSI-X) is held pending
    /// (the pending bits show it) and sent when the guest unmasks it.
    pub fn signal(&mut self, server: &Server, vector: u16) -> Result<Delivery> {
        if self.msix_enabled() {
            let m = self.msix.as_mut().expect("enabled");
            let v = vector as usize;
            if v >= m.pending.len() {
                return Ok(Delivery::Dropped);
            }
            let function_masked = self.regs[m.at + 3] & 0x40 != 0;
            if function_masked || m.entries[16 * v + 12] & 1 != 0 {
                m.pending[v] = true;
                return Ok(Delivery::Pending);
            }
            self.send_msix(server, v)?;
            return Ok(Delivery::Msix);
        }
        if self.msi_enabled() {
            let m = self.msi.expect("enabled");
            let granted = 1u32 << ((self.regs[m.at + 2] >> 4) & 7).min(5);
            if vector as u32 >= granted.min(m.vectors) {
                return Ok(Delivery::Dropped);
            }
            if m.masking && self.u32_at(m.at + 0x10) & (1 << vector) != 0 {
                self.set_msi_pending(m.pending | (1 << vector));
                return Ok(Delivery::Pending);
            }
            self.send_msi(server, vector as u32)?;
            return Ok(Delivery::Msi);
        }
        self.set_intx(server, true)?;
        Ok(Delivery::Intx)
    }

    fn set_msi_pending(&mut self, bits: u32) {
        let m = self.msi.as_mut().expect("an MSI capability");
        m.pending = bits;
        let at = m.at + 0x14;
        if m.masking {
            self.regs[at..at + 4].copy_from_slice(&bits.to_le_bytes());
        }
    }

    fn send_msi(&self, server: &Server, vector: u32) -> Result<()> {
        let at = self.msi.expect("an MSI capability").at;
        let addr = self.u32_at(at + 4) as u64 | ((self.u32_at(at + 8) as u64) << 32);
        let granted = 1u32 << ((self.regs[at + 2] >> 4) & 7).min(5);
        // The low bits of the data carry the vector (as many as were granted).
        let data = self.u16_at(at + 12) as u32 & !(granted - 1) | vector;
        server.inject_msi(addr, data).inspect_err(|&e| log(server, e, format_args!("MSI {vector} of {}", self.sbdf)))
    }

    fn send_msix(&mut self, server: &Server, v: usize) -> Result<()> {
        let m = self.msix.as_mut().expect("an MSI-X capability");
        let e = &m.entries[16 * v..16 * v + 16];
        let word = |i: usize| u32::from_le_bytes(e[i..i + 4].try_into().expect("4 bytes"));
        let (addr, data) = (word(0) as u64 | ((word(4) as u64) << 32), word(8));
        m.pending[v] = false;
        server.inject_msi(addr, data).inspect_err(|&e| log(server, e, format_args!("MSI-X {v} of {}", self.sbdf)))
    }

    /// Sends every pending vector the guest has unmasked since.
    fn deliver_unmasked(&mut self, server: &Server) -> Result<()> {
        let mut first = Ok(());
        if self.msix_enabled() && self.regs[self.msix.as_ref().expect("enabled").at + 3] & 0x40 == 0 {
            let m = self.msix.as_ref().expect("enabled");
            let ready: Vec<usize> =
                (0..m.pending.len()).filter(|&v| m.pending[v] && m.entries[16 * v + 12] & 1 == 0).collect();
            for v in ready {
                first = first.and(self.send_msix(server, v));
            }
        }
        if let Some(m) = self.msi.filter(|m| m.masking && m.pending != 0) {
            if self.msi_enabled() {
                let unmasked = m.pending & !self.u32_at(m.at + 0x10);
                self.set_msi_pending(m.pending & !unmasked);
                for v in (0..32).filter(|v| unmasked & (1 << v) != 0) {
                    first = first.and(self.send_msi(server, v));
                }
            }
        }
        first
    }

    /// Where an access at `offset` of BAR `bar` falls in the MSI-X table
    /// (`Ok`) or the pending bits (`Err`), as a byte offset into either.
    fn msix_place(&self, bar: usize, offset: u64, size: Size) -> Option<core::result::Result<usize, usize>> {
        let m = self.msix.as_ref().filter(|m| m.bar == bar)?;
        let end = offset.checked_add(size.bytes() as u64)?;
        if offset >= m.table && end <= m.table + m.entries.len() as u64 {
            return Some(Ok((offset - m.table) as usize));
        }
        let pba_len = (m.pending.len() as u64).div_ceil(64) * 8;
        (offset >= m.pba && end <= m.pba + pba_len).then(|| Err((offset - m.pba) as usize))
    }

    /// A read of BAR `bar` at `offset`, if it is in the MSI-X table or
    /// pending bits (`None`: the device's own registers). A device with
    /// MSI-X calls this first from its BAR's read.
    pub fn msix_read(&self, bar: usize, offset: u64, size: Size) -> Option<u64> {
        let m = self.msix.as_ref()?;
        let place = self.msix_place(bar, offset, size)?;
        let byte = |i: usize| -> u8 {
            match place {
                Ok(t) => m.entries[t + i],
                Err(p) => (0..8).map(|k| (m.pending.get(8 * (p + i) + k).copied().unwrap_or(false) as u8) << k).sum(),
            }
        };
        Some((0..size.bytes() as usize).map(|i| (byte(i) as u64) << (8 * i)).sum())
    }

    /// A write of BAR `bar` at `offset`, if it is in the MSI-X table or the
    /// pending bits (which are read-only): `None` for the device's own
    /// registers. Unmasking an entry sends its pending vector.
    pub fn msix_write(
        &mut self,
        server: &Server,
        bar: usize,
        offset: u64,
        size: Size,
        value: u64,
    ) -> Option<Result<()>> {
        let place = self.msix_place(bar, offset, size)?;
        let Ok(t) = place else { return Some(Ok(())) };
        let m = self.msix.as_mut().expect("placed");
        for (i, b) in value.to_le_bytes().iter().take(size.bytes() as usize).enumerate() {
            // Vector control: only the mask bit is writable.
            m.entries[t + i] = match (t + i) % 16 {
                12 => b & 1,
                13.. => 0,
                _ => *b,
            };
        }
        Some(self.deliver_unmasked(server))
    }
}

fn log(server: &Server, e: crate::error::Error, what: core::fmt::Arguments<'_>) {
    let errno: Errno = e.errno();
    server.logger().error(errno, format_args!("ioreq: {what}: {e}"));
}
