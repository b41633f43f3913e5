//! The virtio-pci modern transport (virtio 1.2, 4.1) as a state machine: no
//! hypervisor, no PCI bus, only the registers a driver sees.
//!
//! [`VirtioPci`] answers three kinds of accesses, which the caller routes to
//! it: config-space reads and writes in its capability list
//! ([`VirtioPci::config_read`], [`VirtioPci::config_write`]; the standard
//! header, the BARs and any MSI-X capability are the caller's), and accesses
//! to the BAR holding its four regions ([`VirtioPci::bar_read`],
//! [`VirtioPci::bar_write`]), laid out as:
//!
//! | BAR offset | region | capability |
//! | --- | --- | --- |
//! | 0x0000 | common configuration (0x3c bytes used) | VIRTIO_PCI_CAP_COMMON_CFG |
//! | 0x1000 | ISR status (1 byte, read clears) | VIRTIO_PCI_CAP_ISR_CFG |
//! | 0x2000 | device configuration | VIRTIO_PCI_CAP_DEVICE_CFG |
//! | 0x3000 | notifications, queue `n` at `4 * n` | VIRTIO_PCI_CAP_NOTIFY_CFG |
//!
//! plus the VIRTIO_PCI_CAP_PCI_CFG window, through which the BAR can be
//! reached by config-space accesses alone.
//!
//! What it enforces: features are accepted only as a subset of the device's
//! that includes VIRTIO_F_VERSION_1 (else FEATURES_OK does not stick);
//! features and queues can be set only before FEATURES_OK / enabling; a
//! queue is enabled only if its size and rings are valid in guest memory;
//! DRIVER_OK only after FEATURES_OK; status bits are cleared only by a reset
//! (writing 0), which returns everything to its initial state; MSI-X vectors
//! beyond the caller's table read back as NO_VECTOR. Any violation, and any
//! error of the device, sets DEVICE_NEEDS_RESET with a configuration
//! interrupt. Accesses it does not decode read as zero and are counted in
//! [`Stats::ignored`].

use vm_memory::GuestMemory;

use crate::device::VirtioDevice;
use crate::ring::SplitQueue;

/// The virtio PCI vendor ID (Red Hat, Inc.).
pub const VENDOR_ID: u16 = 0x1af4;
/// PCI revision of a modern-only (non-transitional) device.
pub const REVISION: u8 = 1;
/// Subsystem device ID of a non-transitional device ("0x40 or higher").
pub const SUBSYSTEM_ID: u16 = 0x40;
/// MSI-X "no vector".
pub const NO_VECTOR: u16 = 0xffff;

/// The PCI device ID of a modern virtio device of `device_type`.
pub fn pci_device_id(device_type: u16) -> u16 {
    0x1040 + device_type
}

/// Size of the BAR holding the four regions.
pub const BAR_SIZE: u32 = 0x4000;
/// BAR offset of the common configuration.
pub const COMMON_OFFSET: u64 = 0x0000;
/// BAR offset of the ISR status byte.
pub const ISR_OFFSET: u64 = 0x1000;
/// BAR offset of the device configuration.
pub const DEVICE_OFFSET: u64 = 0x2000;
/// BAR offset of the notification region.
pub const NOTIFY_OFFSET: u64 = 0x3000;
/// Bytes between two queues' notification addresses.
pub const NOTIFY_MULTIPLIER: u32 = 4;
const REGION: u64 = 0x1000;
/// Bytes of config space the capability list takes.
pub const CAPS_LEN: u16 = 0x58;

// Capability types (virtio 1.2, 4.1.4).
const CAP_VENDOR: u8 = 0x09;
const CAP_COMMON: u8 = 1;
const CAP_NOTIFY: u8 = 2;
const CAP_ISR: u8 = 3;
const CAP_DEVICE: u8 = 4;
const CAP_PCI: u8 = 5;
// Offsets of each capability within the list, and of PCI_CFG's fields.
const AT_COMMON: u16 = 0x00;
const AT_NOTIFY: u16 = 0x10;
const AT_ISR: u16 = 0x24;
const AT_DEVICE: u16 = 0x34;
const AT_PCI: u16 = 0x44;
const PCI_BAR: u16 = AT_PCI + 4;
const PCI_OFFSET: u16 = AT_PCI + 8;
const PCI_LENGTH: u16 = AT_PCI + 12;
const PCI_DATA: u16 = AT_PCI + 16;

/// Device status bits (virtio 1.2, 2.1).
pub mod status {
    use virtio_bindings::virtio_config as c;
    /// The guest found the device.
    pub const ACKNOWLEDGE: u8 = c::VIRTIO_CONFIG_S_ACKNOWLEDGE as u8;
    /// The guest has a driver for it.
    pub const DRIVER: u8 = c::VIRTIO_CONFIG_S_DRIVER as u8;
    /// The driver is set up and ready.
    pub const DRIVER_OK: u8 = c::VIRTIO_CONFIG_S_DRIVER_OK as u8;
    /// Feature negotiation is complete.
    pub const FEATURES_OK: u8 = c::VIRTIO_CONFIG_S_FEATURES_OK as u8;
    /// The device hit an error it cannot recover from without a reset.
    pub const DEVICE_NEEDS_RESET: u8 = c::VIRTIO_CONFIG_S_NEEDS_RESET as u8;
    /// The driver gave up on the device.
    pub const FAILED: u8 = c::VIRTIO_CONFIG_S_FAILED as u8;
}

/// VIRTIO_F_VERSION_1.
pub const F_VERSION_1: u64 = 1 << virtio_bindings::virtio_config::VIRTIO_F_VERSION_1;
/// VIRTIO_RING_F_INDIRECT_DESC.
pub const F_INDIRECT_DESC: u64 = 1 << virtio_bindings::virtio_ring::VIRTIO_RING_F_INDIRECT_DESC;
/// VIRTIO_RING_F_EVENT_IDX.
pub const F_EVENT_IDX: u64 = 1 << virtio_bindings::virtio_ring::VIRTIO_RING_F_EVENT_IDX;

/// An interrupt the caller must deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interrupt {
    /// Send MSI-X vector `n` (masking and pending bits are the MSI-X
    /// capability's business).
    Vector(u16),
    /// Raise INTx (MSI-X is disabled): [`VirtioPci::intx_level`] is now
    /// high, and stays so until the driver reads the ISR.
    Intx,
}

/// What an access made the caller do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing.
    None,
    /// The driver notified this queue (it is enabled and the device is
    /// DRIVER_OK): call [`VirtioPci::process`].
    Notify(u16),
    /// Deliver this interrupt (a configuration change: DEVICE_NEEDS_RESET).
    Interrupt(Interrupt),
}

/// Counters, for tests and for measurements.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Notifications that reached a queue.
    pub notifies: u64,
    /// Interrupts asked for (queue and configuration).
    pub interrupts: u64,
    /// Accesses that decoded to nothing (a wrong width, a read-only field,
    /// a notification for a queue that is not enabled) and were dropped.
    pub ignored: u64,
    /// Times DEVICE_NEEDS_RESET was set.
    pub needs_reset: u64,
    /// Device resets by the driver.
    pub resets: u64,
}

struct QueueSlot {
    ring: SplitQueue,
    vector: u16,
}

/// The transport for one virtio device `D`.
pub struct VirtioPci<D: VirtioDevice> {
    device: D,
    bar: u8,
    caps_at: u16,
    next_cap: u8,
    msix_vectors: u16,
    msix_enabled: bool,
    status: u8,
    device_feature_select: u32,
    driver_feature_select: u32,
    driver_features: u64,
    config_generation: u8,
    config_vector: u16,
    queue_select: u16,
    queues: Vec<QueueSlot>,
    isr: u8,
    window: (u8, u32, u32),
    last_error: Option<String>,
    stats: Stats,
}

impl<D: VirtioDevice> VirtioPci<D> {
    /// Serves `device` with its regions in BAR `bar`, its capability list at
    /// config offset `caps_at` (dword-aligned, at least 0x40) and its last
    /// capability pointing to `next_cap` (0: the end of the list; e.g. the
    /// caller's MSI-X capability). `msix_vectors` is the caller's MSI-X table
    /// size (0 without MSI-X).
    pub fn new(device: D, bar: u8, caps_at: u8, next_cap: u8, msix_vectors: u16) -> Self {
        assert!(bar < 6 && caps_at >= 0x40 && caps_at % 4 == 0, "bad BAR {bar} or capability offset {caps_at:#x}");
        assert!(caps_at as u16 + CAPS_LEN <= 0x100, "the capability list must fit the first 256 bytes");
        let queues = device
            .queue_max_sizes()
            .into_iter()
            .map(|max| QueueSlot { ring: SplitQueue::new(max), vector: NO_VECTOR })
            .collect();
        VirtioPci {
            device,
            bar,
            caps_at: caps_at as u16,
            next_cap,
            msix_vectors,
            msix_enabled: false,
            status: 0,
            device_feature_select: 0,
            driver_feature_select: 0,
            driver_features: 0,
            config_generation: 0,
            config_vector: NO_VECTOR,
            queue_select: 0,
            queues,
            isr: 0,
            window: (0, 0, 0),
            last_error: None,
            stats: Stats::default(),
        }
    }

    /// The device.
    pub fn device(&self) -> &D {
        &self.device
    }

    /// The device, mutable.
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }

    /// Queue `index`'s ring state.
    pub fn queue(&self, index: u16) -> Option<&SplitQueue> {
        self.queues.get(index as usize).map(|q| &q.ring)
    }

    /// The device status register.
    pub fn status(&self) -> u8 {
        self.status
    }

    /// The features the driver accepted (valid once FEATURES_OK is set).
    pub fn driver_features(&self) -> u64 {
        self.driver_features
    }

    /// Counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Why DEVICE_NEEDS_RESET was last set.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Whether the INTx line should be asserted (ISR has a bit set, MSI-X is
    /// off).
    pub fn intx_level(&self) -> bool {
        !self.msix_enabled && self.isr != 0
    }

    /// The caller's MSI-X capability was enabled or disabled by the driver.
    pub fn set_msix_enabled(&mut self, on: bool) {
        self.msix_enabled = on;
    }

    /// The BAR index holding the regions.
    pub fn bar(&self) -> u8 {
        self.bar
    }

    fn active(&self) -> bool {
        self.status & status::DRIVER_OK != 0 && self.status & status::DEVICE_NEEDS_RESET == 0
    }

    // ---- config space: the capability list ----

    fn caps_bytes(&self) -> [u8; CAPS_LEN as usize] {
        let mut b = [0u8; CAPS_LEN as usize];
        let at = self.caps_at as u8;
        let caps: [(u16, u8, u8, u64, u64, u8); 5] = [
            (AT_COMMON, 16, CAP_COMMON, COMMON_OFFSET, REGION, at + AT_NOTIFY as u8),
            (AT_NOTIFY, 20, CAP_NOTIFY, NOTIFY_OFFSET, REGION, at + AT_ISR as u8),
            (AT_ISR, 16, CAP_ISR, ISR_OFFSET, REGION, at + AT_DEVICE as u8),
            (AT_DEVICE, 16, CAP_DEVICE, DEVICE_OFFSET, REGION, at + AT_PCI as u8),
            (AT_PCI, 20, CAP_PCI, 0, 0, self.next_cap),
        ];
        for (off, len, kind, region, rlen, next) in caps {
            let o = off as usize;
            b[o] = CAP_VENDOR;
            b[o + 1] = next;
            b[o + 2] = len;
            b[o + 3] = kind;
            b[o + 4] = if kind == CAP_PCI { self.window.0 } else { self.bar };
            b[o + 8..o + 12].copy_from_slice(&(region as u32).to_le_bytes());
            b[o + 12..o + 16].copy_from_slice(&(rlen as u32).to_le_bytes());
        }
        let n = AT_NOTIFY as usize + 16;
        b[n..n + 4].copy_from_slice(&NOTIFY_MULTIPLIER.to_le_bytes());
        let p = PCI_OFFSET as usize;
        b[p..p + 4].copy_from_slice(&self.window.1.to_le_bytes());
        b[p + 4..p + 8].copy_from_slice(&self.window.2.to_le_bytes());
        b
    }

    /// Whether config register `reg` is in the capability list.
    pub fn owns_config(&self, reg: u16) -> bool {
        reg >= self.caps_at && reg < self.caps_at + CAPS_LEN
    }

    /// Reads `size` bytes (1, 2 or 4) at config register `reg`, if they are in
    /// the capability list. A read of the PCI_CFG window's data reads the BAR
    /// where the window points (and may have the BAR's side effects, such as
    /// the ISR's clear-on-read).
    pub fn config_read(&mut self, reg: u16, size: u8) -> Option<u32> {
        if !self.owns_config(reg) || !matches!(size, 1 | 2 | 4) || reg + size as u16 > self.caps_at + CAPS_LEN {
            return None;
        }
        let rel = reg - self.caps_at;
        if (PCI_DATA..PCI_DATA + 4).contains(&rel) {
            return Some(self.window_target(rel, size).map_or(0, |off| self.bar_read(off, size) as u32));
        }
        let b = self.caps_bytes();
        Some(le(&b[rel as usize..rel as usize + size as usize]) as u32)
    }

    /// Writes config register `reg` in the capability list. Only the
    /// PCI_CFG window's bar, offset, length and data are writable (the data
    /// writes the BAR where the window points). `None` if `reg` is not ours.
    pub fn config_write<M: GuestMemory>(&mut self, mem: &M, reg: u16, size: u8, value: u32) -> Option<Outcome> {
        if !self.owns_config(reg) || !matches!(size, 1 | 2 | 4) || reg + size as u16 > self.caps_at + CAPS_LEN {
            return None;
        }
        let rel = reg - self.caps_at;
        match (rel, size) {
            (PCI_BAR, 1) => self.window.0 = value as u8,
            (PCI_OFFSET, 4) => self.window.1 = value,
            (PCI_LENGTH, 4) => self.window.2 = value,
            (r, _) if (PCI_DATA..PCI_DATA + 4).contains(&r) => {
                return Some(
                    self.window_target(r, size)
                        .map_or(Outcome::None, |off| self.bar_write(mem, off, size, value as u64)),
                );
            }
            _ => self.stats.ignored += 1,
        }
        Some(Outcome::None)
    }

    /// The BAR offset a PCI_CFG data access reaches: the window (bar,
    /// offset, length) names a BAR access of 1, 2 or 4 bytes, and the config
    /// access must cover the data field from its start with that length.
    fn window_target(&mut self, rel: u16, size: u8) -> Option<u64> {
        let (bar, offset, length) = self.window;
        if rel != PCI_DATA || bar != self.bar || length != size as u32 || offset as u64 >= BAR_SIZE as u64 {
            self.stats.ignored += 1;
            return None;
        }
        Some(offset as u64)
    }

    // ---- the BAR ----

    /// Reads `size` bytes (1, 2, 4 or 8) at `offset` in the BAR.
    pub fn bar_read(&mut self, offset: u64, size: u8) -> u64 {
        if !matches!(size, 1 | 2 | 4 | 8) || offset.checked_add(size as u64).is_none_or(|e| e > BAR_SIZE as u64) {
            self.stats.ignored += 1;
            return 0;
        }
        let (region, off) = (offset / REGION * REGION, offset % REGION);
        match region {
            COMMON_OFFSET => self.common_read(off, size),
            ISR_OFFSET if off == 0 && size == 1 => {
                // Reading clears the ISR and lowers INTx (4.1.4.5).
                let v = self.isr;
                self.isr = 0;
                v as u64
            }
            DEVICE_OFFSET => {
                let mut buf = [0u8; 8];
                self.device.read_config(off, &mut buf[..size as usize]);
                le(&buf[..size as usize])
            }
            _ => {
                self.stats.ignored += 1;
                0
            }
        }
    }

    /// Writes `size` bytes (1, 2, 4 or 8) of `value` at `offset` in the BAR.
    pub fn bar_write<M: GuestMemory>(&mut self, mem: &M, offset: u64, size: u8, value: u64) -> Outcome {
        if !matches!(size, 1 | 2 | 4 | 8) || offset.checked_add(size as u64).is_none_or(|e| e > BAR_SIZE as u64) {
            self.stats.ignored += 1;
            return Outcome::None;
        }
        let (region, off) = (offset / REGION * REGION, offset % REGION);
        match region {
            COMMON_OFFSET => self.common_write(mem, off, size, value),
            DEVICE_OFFSET => {
                let bytes = value.to_le_bytes();
                self.device.write_config(off, &bytes[..size as usize]);
                Outcome::None
            }
            NOTIFY_OFFSET => self.notify(off, size),
            _ => {
                self.stats.ignored += 1;
                Outcome::None
            }
        }
    }

    fn notify(&mut self, off: u64, size: u8) -> Outcome {
        // The queue is the one whose notification address was written; the
        // value (its index, without VIRTIO_F_NOTIFICATION_DATA) adds nothing.
        let q = off / NOTIFY_MULTIPLIER as u64;
        if off % NOTIFY_MULTIPLIER as u64 != 0 || size > 4 || q >= self.queues.len() as u64 {
            self.stats.ignored += 1;
            return Outcome::None;
        }
        if !self.active() || !self.queues[q as usize].ring.ready() {
            self.stats.ignored += 1;
            return Outcome::None;
        }
        self.stats.notifies += 1;
        Outcome::Notify(q as u16)
    }

    // ---- common configuration (virtio 1.2, 4.1.4.3) ----

    fn selected(&self) -> Option<&QueueSlot> {
        self.queues.get(self.queue_select as usize)
    }

    fn common_bytes(&self) -> [u8; 0x40] {
        let mut b = [0u8; 0x40];
        let features = self.device.features();
        let dword = |sel: u32, v: u64| if sel < 2 { (v >> (32 * sel)) as u32 } else { 0 };
        let put = |b: &mut [u8; 0x40], at: usize, bytes: &[u8]| b[at..at + bytes.len()].copy_from_slice(bytes);
        put(&mut b, 0x00, &self.device_feature_select.to_le_bytes());
        put(&mut b, 0x04, &dword(self.device_feature_select, features).to_le_bytes());
        put(&mut b, 0x08, &self.driver_feature_select.to_le_bytes());
        put(&mut b, 0x0c, &dword(self.driver_feature_select, self.driver_features).to_le_bytes());
        put(&mut b, 0x10, &self.config_vector.to_le_bytes());
        put(&mut b, 0x12, &(self.queues.len() as u16).to_le_bytes());
        b[0x14] = self.status;
        b[0x15] = self.config_generation;
        put(&mut b, 0x16, &self.queue_select.to_le_bytes());
        if let Some(q) = self.selected() {
            put(&mut b, 0x18, &q.ring.size.to_le_bytes());
            put(&mut b, 0x1a, &q.vector.to_le_bytes());
            put(&mut b, 0x1c, &(q.ring.ready() as u16).to_le_bytes());
            put(&mut b, 0x1e, &self.queue_select.to_le_bytes()); // queue_notify_off
            put(&mut b, 0x20, &q.ring.desc_table.to_le_bytes());
            put(&mut b, 0x28, &q.ring.avail_ring.to_le_bytes());
            put(&mut b, 0x30, &q.ring.used_ring.to_le_bytes());
            put(&mut b, 0x38, &self.queue_select.to_le_bytes()); // queue_notify_data
        }
        // A queue that does not exist reads size 0 ("not available").
        b
    }

    fn common_read(&mut self, off: u64, size: u8) -> u64 {
        if off + size as u64 > 0x40 {
            self.stats.ignored += 1;
            return 0;
        }
        let b = self.common_bytes();
        le(&b[off as usize..off as usize + size as usize])
    }

    fn common_write<M: GuestMemory>(&mut self, mem: &M, off: u64, size: u8, v: u64) -> Outcome {
        let unlocked = self.status & status::FEATURES_OK == 0;
        match (off, size) {
            (0x00, 4) => self.device_feature_select = v as u32,
            (0x08, 4) => self.driver_feature_select = v as u32,
            (0x0c, 4) if unlocked && self.driver_feature_select < 2 => {
                let shift = 32 * self.driver_feature_select;
                self.driver_features =
                    (self.driver_features & !(0xffff_ffffu64 << shift)) | ((v & 0xffff_ffff) << shift);
            }
            (0x10, 2) => self.config_vector = self.vector_or_none(v as u16),
            (0x14, 1) => return self.set_status(v as u8),
            (0x16, 2) => self.queue_select = v as u16,
            (0x1a, 2) => {
                let vector = self.vector_or_none(v as u16);
                match self.queues.get_mut(self.queue_select as usize) {
                    Some(q) => q.vector = vector,
                    None => self.stats.ignored += 1,
                }
            }
            (0x1c, 2) => return self.queue_enable(mem, v as u16),
            (0x18, 2) | (0x20..=0x37, _) => return self.queue_config(off, size, v),
            _ => self.stats.ignored += 1,
        }
        Outcome::None
    }

    fn vector_or_none(&self, v: u16) -> u16 {
        if v < self.msix_vectors {
            v
        } else {
            NO_VECTOR
        }
    }

    /// Queue size and ring addresses: only for an existing queue that is not
    /// enabled, before DRIVER_OK; 64-bit fields as one 8-byte write or two
    /// 4-byte halves.
    fn queue_config(&mut self, off: u64, size: u8, v: u64) -> Outcome {
        let locked = self.status & status::DRIVER_OK != 0;
        let Some(q) = self.queues.get_mut(self.queue_select as usize).filter(|q| !q.ring.ready() && !locked) else {
            self.stats.ignored += 1;
            return Outcome::None;
        };
        let field = match off {
            0x20..=0x27 => &mut q.ring.desc_table,
            0x28..=0x2f => &mut q.ring.avail_ring,
            0x30..=0x37 => &mut q.ring.used_ring,
            _ => {
                q.ring.size = v as u16; // checked when the queue is enabled
                return Outcome::None;
            }
        };
        match (off % 8, size) {
            (0, 8) => *field = v,
            (0, 4) => *field = (*field & !0xffff_ffff) | (v & 0xffff_ffff),
            (4, 4) => *field = (*field & 0xffff_ffff) | (v << 32),
            _ => self.stats.ignored += 1,
        }
        Outcome::None
    }

    fn queue_enable<M: GuestMemory>(&mut self, mem: &M, v: u16) -> Outcome {
        let features_ok = self.status & status::FEATURES_OK != 0 && self.status & status::DRIVER_OK == 0;
        let event_idx = self.driver_features & F_EVENT_IDX != 0;
        let Some(q) = self.queues.get_mut(self.queue_select as usize).filter(|q| !q.ring.ready()) else {
            self.stats.ignored += 1;
            return Outcome::None;
        };
        // Writing 0 is not allowed (there is no VIRTIO_F_RING_RESET).
        if v != 1 {
            self.stats.ignored += 1;
            return Outcome::None;
        }
        if !features_ok {
            return self.needs_reset("queue enabled before FEATURES_OK or after DRIVER_OK".into());
        }
        match q.ring.enable(mem, event_idx) {
            Ok(()) => Outcome::None,
            Err(e) => {
                let msg = format!("queue {}: {e}", self.queue_select);
                self.needs_reset(msg)
            }
        }
    }

    fn set_status(&mut self, v: u8) -> Outcome {
        if v == 0 {
            self.reset();
            return Outcome::None;
        }
        let old = self.status;
        // DEVICE_NEEDS_RESET is the device's; bits are cleared only by a reset.
        let mut new = old | (v & !status::DEVICE_NEEDS_RESET);
        if new & status::FEATURES_OK != 0 && old & status::FEATURES_OK == 0 {
            let offered = self.device.features();
            if self.driver_features & !offered != 0 || self.driver_features & F_VERSION_1 == 0 {
                new &= !status::FEATURES_OK; // the driver reads it back and gives up
            }
        }
        if new & status::DRIVER_OK != 0 && old & status::DRIVER_OK == 0 {
            if new & status::FEATURES_OK == 0 {
                self.status = new & !status::DRIVER_OK;
                return self.needs_reset("DRIVER_OK before FEATURES_OK".into());
            }
            self.status = new;
            if let Err(e) = self.device.activate(self.driver_features) {
                return self.needs_reset(format!("activation: {e}"));
            }
            return Outcome::None;
        }
        self.status = new;
        Outcome::None
    }

    /// Back to the initial state (the driver wrote 0 to the status).
    fn reset(&mut self) {
        self.status = 0;
        self.device_feature_select = 0;
        self.driver_feature_select = 0;
        self.driver_features = 0;
        self.config_vector = NO_VECTOR;
        self.queue_select = 0;
        for q in &mut self.queues {
            q.ring.reset();
            q.vector = NO_VECTOR;
        }
        self.isr = 0;
        self.window = (0, 0, 0);
        self.last_error = None;
        self.stats.resets += 1;
        self.device.reset();
    }

    // ---- interrupts and processing ----

    fn interrupt(&mut self, vector: u16, isr_bit: u8) -> Option<Interrupt> {
        if self.msix_enabled {
            if vector == NO_VECTOR {
                return None;
            }
            self.stats.interrupts += 1;
            return Some(Interrupt::Vector(vector));
        }
        self.isr |= isr_bit;
        self.stats.interrupts += 1;
        Some(Interrupt::Intx)
    }

    /// Sets DEVICE_NEEDS_RESET and asks for a configuration interrupt.
    pub fn needs_reset(&mut self, why: String) -> Outcome {
        self.stats.needs_reset += 1;
        self.last_error = Some(why);
        self.status |= status::DEVICE_NEEDS_RESET;
        self.config_changed_interrupt()
    }

    /// The device's configuration changed (e.g. a resized disk): a new
    /// generation and a configuration interrupt.
    pub fn config_changed(&mut self) -> Outcome {
        self.config_generation = self.config_generation.wrapping_add(1);
        self.config_changed_interrupt()
    }

    fn config_changed_interrupt(&mut self) -> Outcome {
        match self.interrupt(self.config_vector, 2) {
            Some(i) => Outcome::Interrupt(i),
            None => Outcome::None,
        }
    }

    /// Serves a notification of queue `index` (after [`Outcome::Notify`]):
    /// the device processes the queue, then the driver gets an interrupt if
    /// it wants one. A device error sets DEVICE_NEEDS_RESET instead.
    pub fn process<M: GuestMemory>(&mut self, mem: &M, index: u16) -> Option<Interrupt> {
        if !self.active() {
            return None;
        }
        let q = self.queues.get_mut(index as usize).filter(|q| q.ring.ready())?;
        let result = self.device.process(index, &mut q.ring, mem);
        let want = result.is_ok() && q.ring.needs_interrupt(mem).unwrap_or(true);
        let vector = q.vector;
        match result {
            Err(e) => match self.needs_reset(format!("queue {index}: {e}")) {
                Outcome::Interrupt(i) => Some(i),
                _ => None,
            },
            Ok(()) if want => self.interrupt(vector, 1),
            Ok(()) => None,
        }
    }
}

fn le(b: &[u8]) -> u64 {
    b.iter().rev().fold(0, |v, &x| v << 8 | x as u64)
}
