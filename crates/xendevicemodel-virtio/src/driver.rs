//! The driver's side of a split virtqueue, as a guest's virtio driver keeps
//! it: for tests, fuzzing and simulators, which play the guest against a
//! device. It writes descriptors, offers heads on the available ring and
//! collects what the device returned on the used ring; it checks nothing the
//! device does (that is the tests' job).

use std::sync::atomic::Ordering;

use vm_memory::{Bytes, GuestAddress, GuestMemory};

use virtio_bindings::virtio_ring::{VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE};

/// VIRTQ_DESC_F_NEXT.
pub const F_NEXT: u16 = VRING_DESC_F_NEXT as u16;
/// VIRTQ_DESC_F_WRITE.
pub const F_WRITE: u16 = VRING_DESC_F_WRITE as u16;
/// VIRTQ_DESC_F_INDIRECT.
pub const F_INDIRECT: u16 = VRING_DESC_F_INDIRECT as u16;

/// A queue's three rings in guest memory, and the driver's indexes.
#[derive(Debug, Clone)]
pub struct DriverQueue {
    /// Entries.
    pub size: u16,
    /// Descriptor table address.
    pub desc: u64,
    /// Available ring address.
    pub avail: u64,
    /// Used ring address.
    pub used: u64,
    /// The driver's next available index.
    pub avail_idx: u16,
    /// How many used entries the driver has collected.
    pub last_used: u16,
}

impl DriverQueue {
    /// Lays the rings out from `base` (4 KiB-aligned in practice): the table,
    /// then the available ring, then the used ring on the next 4 KiB boundary.
    /// The caller zeroes that memory first (fresh memory is).
    pub fn new(base: u64, size: u16) -> Self {
        let desc = base;
        let avail = desc + 16 * size as u64;
        let used = (avail + 6 + 2 * size as u64 + 0xfff) & !0xfff;
        DriverQueue { size, desc, avail, used, avail_idx: 0, last_used: 0 }
    }

    /// The end of the used ring: the first address after the queue.
    pub fn end(&self) -> u64 {
        self.used + 6 + 8 * self.size as u64
    }

    /// Writes descriptor `index` of the table at `table` (the queue's own
    /// table, or an indirect one).
    pub fn write_desc_at<M: GuestMemory>(mem: &M, table: u64, index: u16, addr: u64, len: u32, flags: u16, next: u16) {
        let mut raw = [0u8; 16];
        raw[0..8].copy_from_slice(&addr.to_le_bytes());
        raw[8..12].copy_from_slice(&len.to_le_bytes());
        raw[12..14].copy_from_slice(&flags.to_le_bytes());
        raw[14..16].copy_from_slice(&next.to_le_bytes());
        mem.write_slice(&raw, GuestAddress(table + 16 * index as u64)).expect("descriptor table in guest memory");
    }

    /// Writes descriptor `index` of the queue's table.
    pub fn write_desc<M: GuestMemory>(&self, mem: &M, index: u16, addr: u64, len: u32, flags: u16, next: u16) {
        Self::write_desc_at(mem, self.desc, index, addr, len, flags, next)
    }

    /// Writes `bufs` (address, length, device-writable) as one chain of
    /// descriptors `first`, `first + 1`, ... (wrapping at the size) and returns
    /// its head.
    pub fn write_chain<M: GuestMemory>(&self, mem: &M, first: u16, bufs: &[(u64, u32, bool)]) -> u16 {
        for (i, &(addr, len, w)) in bufs.iter().enumerate() {
            let index = (first as usize + i) as u16 % self.size;
            let last = i + 1 == bufs.len();
            let flags = if w { F_WRITE } else { 0 } | if last { 0 } else { F_NEXT };
            self.write_desc(mem, index, addr, len, flags, (index + 1) % self.size);
        }
        first
    }

    /// Puts `head` on the available ring and publishes the new index (a
    /// release store, as a driver's memory barrier does).
    pub fn offer<M: GuestMemory>(&mut self, mem: &M, head: u16) {
        let slot = (self.avail_idx % self.size) as u64;
        mem.write_obj(head.to_le(), GuestAddress(self.avail + 4 + 2 * slot)).expect("available ring");
        self.avail_idx = self.avail_idx.wrapping_add(1);
        self.publish(mem);
    }

    /// Stores the available index as it is now (tests also set it to
    /// anything they like through `avail_idx`).
    pub fn publish<M: GuestMemory>(&self, mem: &M) {
        mem.store(self.avail_idx.to_le(), GuestAddress(self.avail + 2), Ordering::Release).expect("available ring");
    }

    /// The used index the device published.
    pub fn used_idx<M: GuestMemory>(&self, mem: &M) -> u16 {
        u16::from_le(mem.load(GuestAddress(self.used + 2), Ordering::Acquire).expect("used ring"))
    }

    /// The next entry the device returned, (head, bytes written), if any.
    pub fn take_used<M: GuestMemory>(&mut self, mem: &M) -> Option<(u32, u32)> {
        if self.used_idx(mem) == self.last_used {
            return None;
        }
        let at = self.used + 4 + 8 * (self.last_used % self.size) as u64;
        let id: u32 = mem.read_obj(GuestAddress(at)).expect("used ring");
        let len: u32 = mem.read_obj(GuestAddress(at + 4)).expect("used ring");
        self.last_used = self.last_used.wrapping_add(1);
        Some((u32::from_le(id), u32::from_le(len)))
    }

    /// The available ring's flags (bit 0: VRING_AVAIL_F_NO_INTERRUPT).
    pub fn set_avail_flags<M: GuestMemory>(&self, mem: &M, flags: u16) {
        mem.write_obj(flags.to_le(), GuestAddress(self.avail)).expect("available ring");
    }

    /// The used ring's flags (bit 0: VRING_USED_F_NO_NOTIFY, set by the
    /// device).
    pub fn used_flags<M: GuestMemory>(&self, mem: &M) -> u16 {
        u16::from_le(mem.read_obj(GuestAddress(self.used)).expect("used ring"))
    }

    /// `used_event` (EVENT_IDX): interrupt me when the used index passes it.
    pub fn set_used_event<M: GuestMemory>(&self, mem: &M, v: u16) {
        mem.write_obj(v.to_le(), GuestAddress(self.avail + 4 + 2 * self.size as u64)).expect("available ring");
    }

    /// `avail_event` (EVENT_IDX), set by the device: notify me when the
    /// available index passes it.
    pub fn avail_event<M: GuestMemory>(&self, mem: &M) -> u16 {
        u16::from_le(mem.read_obj(GuestAddress(self.used + 4 + 8 * self.size as u64)).expect("used ring"))
    }
}
