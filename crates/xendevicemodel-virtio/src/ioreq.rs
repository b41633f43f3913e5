//! A virtio device served to a Xen guest over virtio-pci (feature `ioreq`):
//! [`PciTransport`] is a device for the `xendevicemodel-ioreq` toolkit's
//! [`Bus`](xendevicemodel_ioreq::Bus), made of the toolkit's PCI config
//! space (ids, BARs, INTx, MSI-X) and this crate's [`VirtioPci`] state
//! machine.
//!
//! Layout of the function:
//!
//! | where | what |
//! | --- | --- |
//! | BAR 0 (16 KiB, 32-bit memory) | the virtio regions: common, ISR, device, notify ([`crate::pci`]) |
//! | BAR 1 (4 KiB, 32-bit memory) | the MSI-X table (at 0) and pending bits (at 0x800) |
//! | config 0x40 | the MSI-X capability (the toolkit's), one vector per queue plus one for configuration changes |
//! | config 0x4c .. 0xa4 | the virtio capabilities, linked after MSI-X |
//! | interrupt pin | INTA#, used while MSI-X is off (Linux's fallback, and drivers without MSI-X) |
//!
//! Each access is handled on the request of the vCPU that made it: a
//! notification processes the queue there and then (every chain the driver
//! made available), so the vCPU resumes with its requests answered and the
//! interrupt sent. Guest memory is reached through the toolkit's
//! [`GuestRam`](xendevicemodel_ioreq::GuestRam), one view per access (the
//! chunks stay mapped in the server's cache between them).
//!
//! The interrupt follows what the guest set up: with MSI-X enabled, the
//! queue's (or configuration's) vector through the MSI-X table, held
//! pending while masked; otherwise the INTx line, high while the ISR has a
//! bit set (reading the ISR lowers it).

use xendevicemodel_ioreq::pci::{BarKind, ConfigSpace, Delivery, CONFIG};
use xendevicemodel_ioreq::{Access, Ctx, Device, IoRange, RegionId, Sbdf, Server, Size};

use crate::device::VirtioDevice;
use crate::pci::{self, Interrupt, Outcome, VirtioPci};

/// The BAR holding the virtio regions.
pub const VIRTIO_BAR: usize = 0;
/// The BAR holding the MSI-X table and pending bits.
pub const MSIX_BAR: usize = 1;
/// Size of the MSI-X BAR.
pub const MSIX_BAR_SIZE: u32 = 0x1000;
/// Offset of the MSI-X table in its BAR.
pub const MSIX_TABLE: u32 = 0;
/// Offset of the MSI-X pending bits in its BAR.
pub const MSIX_PBA: u32 = 0x800;
/// Bytes of the MSI-X capability.
const MSIX_CAP_LEN: u16 = 12;
const CAP_POINTER: u16 = 0x34;
const CAP_ID_MSIX: u64 = 0x11;

/// What the transport did with interrupts, for tests and measurements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InterruptStats {
    /// MSI-X messages sent.
    pub msix: u64,
    /// Vectors held pending because the guest masked them.
    pub pending: u64,
    /// Vectors the guest's setup did not allow (beyond its table).
    pub dropped: u64,
    /// Times the INTx line was raised.
    pub intx_raised: u64,
    /// Interrupts the hypervisor refused (logged by the toolkit).
    pub failed: u64,
}

/// A virtio device `D` as a PCI function on the toolkit's bus (see the
/// module's documentation).
pub struct PciTransport<D: VirtioDevice> {
    cfg: ConfigSpace,
    virtio: VirtioPci<D>,
    /// The MSI-X capability's offset, whose next pointer leads to the
    /// virtio capabilities.
    msix_cap: u16,
    caps_at: u16,
    stats: InterruptStats,
}

impl<D: VirtioDevice> core::fmt::Debug for PciTransport<D> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PciTransport")
            .field("sbdf", &self.cfg.sbdf())
            .field("status", &self.virtio.status())
            .field("stats", &self.virtio.stats())
            .field("interrupts", &self.stats)
            .finish()
    }
}

impl<D: VirtioDevice> PciTransport<D> {
    /// Serves `device` as PCI function `sbdf` with class code `class`
    /// (`class << 16 | subclass << 8 | prog_if`, e.g. 0x018000 for "other
    /// mass storage"). Its MSI-X table has one vector per queue and one
    /// for configuration changes.
    pub fn new(sbdf: Sbdf, device: D, class: u32) -> Self {
        let queues = device.queue_max_sizes().len();
        assert!(queues < 128, "{queues} queues: the MSI-X table has room for 127");
        let vectors = queues as u16 + 1;
        let cfg =
            ConfigSpace::new(sbdf, pci::VENDOR_ID, pci::pci_device_id(device.device_type()), class, pci::REVISION)
                .with_subsystem(pci::VENDOR_ID, pci::SUBSYSTEM_ID)
                .with_bar(VIRTIO_BAR, BarKind::Memory32, pci::BAR_SIZE)
                .with_bar(MSIX_BAR, BarKind::Memory32, MSIX_BAR_SIZE)
                .with_interrupt_pin(1)
                .with_msix(vectors, MSIX_BAR, MSIX_TABLE, MSIX_PBA);
        // MSI-X is the config space's only capability: the virtio ones follow it.
        let msix_cap = cfg.read(CAP_POINTER, Size::B1) as u16;
        assert!(msix_cap >= 0x40 && cfg.read(msix_cap, Size::B1) == CAP_ID_MSIX, "the MSI-X capability first");
        assert_eq!(cfg.read(msix_cap + 1, Size::B1), 0, "MSI-X the only capability of the config space");
        let caps_at = (msix_cap + MSIX_CAP_LEN + 3) & !3;
        let virtio = VirtioPci::new(device, VIRTIO_BAR as u8, caps_at as u8, 0, vectors);
        PciTransport { cfg, virtio, msix_cap, caps_at, stats: InterruptStats::default() }
    }

    /// The transport's state machine (status, negotiated features, queues).
    pub fn virtio(&self) -> &VirtioPci<D> {
        &self.virtio
    }

    /// The transport's state machine, mutable (e.g. to reach the device).
    pub fn virtio_mut(&mut self) -> &mut VirtioPci<D> {
        &mut self.virtio
    }

    /// The PCI config space (BAR placement, MSI-X state).
    pub fn config(&self) -> &ConfigSpace {
        &self.cfg
    }

    /// The virtio device.
    pub fn device(&self) -> &D {
        self.virtio.device()
    }

    /// What happened to the interrupts so far.
    pub fn interrupt_stats(&self) -> InterruptStats {
        self.stats
    }

    /// Where the virtio capabilities start in config space.
    pub fn caps_at(&self) -> u16 {
        self.caps_at
    }

    /// The device's configuration changed (e.g. a resized disk): tells the
    /// driver (a configuration interrupt).
    pub fn config_changed(&mut self, server: &Server) {
        let o = self.virtio.config_changed();
        self.outcome(server, o);
    }

    fn config_read(&mut self, reg: u16, size: Size) -> u64 {
        let n = size.bytes() as u16;
        let (start, end) = (self.caps_at, self.caps_at + pci::CAPS_LEN);
        let ours = |r: u16| (start..end).contains(&r);
        if ours(reg) && ours(reg + n - 1) {
            return self.virtio.config_read(reg, n as u8).map_or(0, u64::from);
        }
        // The header and MSI-X are the config space's; one access across
        // both (not aligned to its size) is put together byte by byte.
        let mut v = 0u64;
        for i in 0..n {
            let r = reg + i;
            let byte = if ours(r) {
                self.virtio.config_read(r, 1).unwrap_or(0) as u64
            } else if r == self.msix_cap + 1 {
                self.caps_at as u64 // MSI-X's next: the virtio list
            } else {
                self.cfg.read(r, Size::B1)
            };
            v |= byte << (8 * i);
        }
        v
    }

    fn config_write(&mut self, ctx: &mut Ctx<'_>, reg: u16, size: Size, value: u64) {
        let n = size.bytes() as u16;
        let ours = |t: &Self, r: u16| t.virtio.owns_config(r);
        if ours(self, reg) && ours(self, reg + n - 1) {
            let ram = ctx.server.guest_ram();
            let o = self.virtio.config_write(&ram, reg, n as u8, value as u32).unwrap_or(Outcome::None);
            self.outcome(ctx, o);
        } else if !ours(self, reg) && !ours(self, reg + n - 1) {
            let _ = self.cfg.write(ctx, reg, size, value); // logged by the toolkit
        } else {
            let ram = ctx.server.guest_ram();
            for i in 0..n {
                let (r, b) = (reg + i, (value >> (8 * i)) & 0xff);
                if ours(self, r) {
                    let o = self.virtio.config_write(&ram, r, 1, b as u32).unwrap_or(Outcome::None);
                    self.outcome(ctx, o);
                } else {
                    let _ = self.cfg.write(ctx, r, Size::B1, b);
                }
            }
        }
        // The guest may have turned MSI-X on or off: the transport's
        // interrupts follow (INTx stops while MSI-X is on).
        self.virtio.set_msix_enabled(self.cfg.msix_enabled());
        self.sync_intx(ctx);
    }

    /// Does what an access asked for.
    fn outcome(&mut self, server: &Server, o: Outcome) {
        match o {
            Outcome::None => {}
            Outcome::Interrupt(i) => self.deliver(server, i),
            Outcome::Notify(q) => {
                let ram = server.guest_ram();
                if let Some(i) = self.virtio.process(&ram, q) {
                    self.deliver(server, i);
                }
            }
        }
    }

    fn deliver(&mut self, server: &Server, i: Interrupt) {
        match i {
            Interrupt::Vector(v) => match self.cfg.signal(server, v) {
                Ok(Delivery::Msix | Delivery::Msi) => self.stats.msix += 1,
                Ok(Delivery::Pending) => self.stats.pending += 1,
                Ok(Delivery::Dropped) => self.stats.dropped += 1,
                // MSI-X went off since the transport was told: the line.
                Ok(Delivery::Intx) => self.stats.intx_raised += 1,
                Err(_) => self.stats.failed += 1,
            },
            Interrupt::Intx => self.sync_intx(server),
        }
    }

    /// The INTx line follows the ISR (while MSI-X is off).
    fn sync_intx(&mut self, server: &Server) {
        let want = self.virtio.intx_level();
        if want != self.cfg.intx_pending() {
            self.stats.intx_raised += want as u64;
            if self.cfg.set_intx(server, want).is_err() {
                self.stats.failed += 1;
            }
        }
    }
}

impl<D: VirtioDevice + Send + 'static> Device for PciTransport<D> {
    fn regions(&self) -> Vec<(RegionId, IoRange)> {
        self.cfg.regions()
    }

    fn read(&mut self, ctx: &mut Ctx<'_>, a: Access) -> u64 {
        let n = a.size.bytes() as u8;
        match a.region {
            CONFIG => self.config_read(a.offset as u16, a.size),
            r if r as usize == MSIX_BAR => self.cfg.msix_read(MSIX_BAR, a.offset, a.size).unwrap_or(0),
            r if r as usize == VIRTIO_BAR => {
                let v = self.virtio.bar_read(a.offset, n);
                self.sync_intx(ctx); // an ISR read lowers the line
                v
            }
            _ => 0,
        }
    }

    fn write(&mut self, ctx: &mut Ctx<'_>, a: Access, value: u64) {
        let n = a.size.bytes() as u8;
        match a.region {
            CONFIG => self.config_write(ctx, a.offset as u16, a.size, value),
            r if r as usize == MSIX_BAR => {
                if let Some(Err(_)) = self.cfg.msix_write(ctx, MSIX_BAR, a.offset, a.size, value) {
                    self.stats.failed += 1; // logged by the toolkit
                }
            }
            r if r as usize == VIRTIO_BAR => {
                let ram = ctx.server.guest_ram();
                let o = self.virtio.bar_write(&ram, a.offset, n, value);
                drop(ram);
                self.outcome(ctx, o);
                self.sync_intx(ctx); // a reset lowers the line
            }
            _ => {}
        }
    }
}
