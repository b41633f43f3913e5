//! The device side of a split virtqueue (virtio 1.2, section 2.7): the
//! available ring it takes descriptor heads from, the used ring it returns
//! them on, and notification suppression in both directions (the ring flags,
//! or `VIRTIO_F_EVENT_IDX`'s `used_event` / `avail_event`).
//!
//! Everything the driver wrote is checked before use: the ring addresses and
//! size when the queue is enabled ([`SplitQueue::validate`]), the available
//! index (never more than the queue size ahead of what was taken) and every
//! head index (below the queue size). A violation is a [`QueueError`]: the
//! queue is broken and the transport asks the driver to reset the device.

use std::num::Wrapping;
use std::sync::atomic::{fence, Ordering};

use vm_memory::{Bytes, GuestAddress, GuestMemory, Permissions};

/// Largest queue size of a split virtqueue (virtio 1.2, 2.7).
pub const MAX_QUEUE_SIZE: u16 = 32768;

// Ring layout (virtio 1.2, 2.7.6 and 2.7.8).
const DESC_SIZE: u64 = 16;
const AVAIL_HEADER: u64 = 4; // flags, idx
const USED_HEADER: u64 = 4; // flags, idx
const USED_ELEM: u64 = 8; // id: le32, len: le32
const AVAIL_F_NO_INTERRUPT: u16 = virtio_bindings::virtio_ring::VRING_AVAIL_F_NO_INTERRUPT as u16;
const USED_F_NO_NOTIFY: u16 = virtio_bindings::virtio_ring::VRING_USED_F_NO_NOTIFY as u16;

/// Why a queue cannot be used, or stopped being usable.
// Variant fields are named for what they hold (an index, an address, a length).
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueError {
    /// The size is zero, above the device's maximum, or not a power of two.
    BadSize(u16),
    /// A ring address is not aligned as the ring requires (16, 2, 4).
    Misaligned(&'static str, u64),
    /// A ring does not lie within guest memory.
    OutsideMemory(&'static str, u64),
    /// The queue is not enabled.
    NotReady,
    /// The available index moved more than the queue size past the last
    /// head taken.
    AvailIndexJump { last: u16, idx: u16 },
    /// A head index in the available ring is not below the queue size.
    HeadOutOfRange { head: u16, size: u16 },
    /// Guest memory could not be accessed at this address.
    Memory(u64),
}

impl std::fmt::Display for QueueError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueueError::BadSize(s) => write!(f, "queue size {s} is zero, too large or not a power of two"),
            QueueError::Misaligned(what, a) => write!(f, "{what} at {a:#x} is misaligned"),
            QueueError::OutsideMemory(what, a) => write!(f, "{what} at {a:#x} is not in guest memory"),
            QueueError::NotReady => write!(f, "the queue is not enabled"),
            QueueError::AvailIndexJump { last, idx } => {
                write!(f, "available index {idx} is more than the queue size past {last}")
            }
            QueueError::HeadOutOfRange { head, size } => write!(f, "head {head} is not below the queue size {size}"),
            QueueError::Memory(a) => write!(f, "guest memory at {a:#x} is not accessible"),
        }
    }
}

impl std::error::Error for QueueError {}

/// One split virtqueue's configuration and the device's positions in it.
#[derive(Debug, Clone)]
pub struct SplitQueue {
    max_size: u16,
    /// The size the driver chose (the maximum until it writes another).
    pub size: u16,
    /// Guest-physical address of the descriptor table.
    pub desc_table: u64,
    /// Guest-physical address of the available ring ("driver area").
    pub avail_ring: u64,
    /// Guest-physical address of the used ring ("device area").
    pub used_ring: u64,
    ready: bool,
    event_idx: bool,
    next_avail: Wrapping<u16>,
    next_used: Wrapping<u16>,
    /// The used index when the driver was last interrupted.
    signalled_used: Wrapping<u16>,
}

impl SplitQueue {
    /// A queue of at most `max_size` entries (a power of two up to 32768), not
    /// yet enabled.
    pub fn new(max_size: u16) -> Self {
        assert!(max_size.is_power_of_two() && max_size <= MAX_QUEUE_SIZE, "bad maximum queue size {max_size}");
        SplitQueue {
            max_size,
            size: max_size,
            desc_table: 0,
            avail_ring: 0,
            used_ring: 0,
            ready: false,
            event_idx: false,
            next_avail: Wrapping(0),
            next_used: Wrapping(0),
            signalled_used: Wrapping(0),
        }
    }

    /// The device's maximum size for this queue.
    pub fn max_size(&self) -> u16 {
        self.max_size
    }

    /// Whether the driver enabled the queue (and it passed validation).
    pub fn ready(&self) -> bool {
        self.ready
    }

    /// Back to the state after [`SplitQueue::new`] (a device reset).
    pub fn reset(&mut self) {
        *self = SplitQueue::new(self.max_size);
    }

    /// The index of the next available-ring entry the device will take.
    pub fn next_avail(&self) -> u16 {
        self.next_avail.0
    }

    /// The index the next used-ring entry will get.
    pub fn next_used(&self) -> u16 {
        self.next_used.0
    }

    /// Checks the size, alignments and that the three rings (with their
    /// event fields) lie in guest memory.
    pub fn validate<M: GuestMemory>(&self, mem: &M) -> Result<(), QueueError> {
        let n = self.size as u64;
        if self.size == 0 || self.size > self.max_size || !self.size.is_power_of_two() {
            return Err(QueueError::BadSize(self.size));
        }
        let rings = [
            ("descriptor table", self.desc_table, 16, DESC_SIZE * n, Permissions::Read),
            ("available ring", self.avail_ring, 2, AVAIL_HEADER + 2 * n + 2, Permissions::Read),
            ("used ring", self.used_ring, 4, USED_HEADER + USED_ELEM * n + 2, Permissions::Write),
        ];
        for (what, addr, align, len, perm) in rings {
            if addr % align != 0 {
                return Err(QueueError::Misaligned(what, addr));
            }
            if addr.checked_add(len).is_none() || !mem.check_range(GuestAddress(addr), len as usize, perm) {
                return Err(QueueError::OutsideMemory(what, addr));
            }
        }
        Ok(())
    }

    /// Enables the queue after [`SplitQueue::validate`]; `event_idx` says
    /// whether VIRTIO_F_EVENT_IDX was negotiated.
    pub fn enable<M: GuestMemory>(&mut self, mem: &M, event_idx: bool) -> Result<(), QueueError> {
        self.validate(mem)?;
        self.event_idx = event_idx;
        self.next_avail = Wrapping(0);
        self.next_used = Wrapping(0);
        self.signalled_used = Wrapping(0);
        self.ready = true;
        Ok(())
    }

    fn load_u16<M: GuestMemory>(mem: &M, addr: u64, order: Ordering) -> Result<u16, QueueError> {
        mem.load::<u16>(GuestAddress(addr), order).map(u16::from_le).map_err(|_| QueueError::Memory(addr))
    }

    fn store_u16<M: GuestMemory>(mem: &M, addr: u64, v: u16, order: Ordering) -> Result<(), QueueError> {
        mem.store(v.to_le(), GuestAddress(addr), order).map_err(|_| QueueError::Memory(addr))
    }

    /// The driver's available index (an acquire load: the ring entries and
    /// descriptors it covers are visible after it).
    pub fn avail_idx<M: GuestMemory>(&self, mem: &M) -> Result<u16, QueueError> {
        Self::load_u16(mem, self.avail_ring + 2, Ordering::Acquire)
    }

    /// Takes the next descriptor head the driver made available, if any.
    pub fn pop<M: GuestMemory>(&mut self, mem: &M) -> Result<Option<u16>, QueueError> {
        if !self.ready {
            return Err(QueueError::NotReady);
        }
        let idx = Wrapping(self.avail_idx(mem)?);
        let pending = (idx - self.next_avail).0;
        if pending == 0 {
            return Ok(None);
        }
        if pending > self.size {
            return Err(QueueError::AvailIndexJump { last: self.next_avail.0, idx: idx.0 });
        }
        let slot = (self.next_avail.0 % self.size) as u64;
        let head = Self::load_u16(mem, self.avail_ring + AVAIL_HEADER + 2 * slot, Ordering::Relaxed)?;
        if head >= self.size {
            return Err(QueueError::HeadOutOfRange { head, size: self.size });
        }
        self.next_avail += Wrapping(1);
        Ok(Some(head))
    }

    /// Returns a chain to the driver: `len` is how many bytes the device
    /// wrote into its device-writable buffers. The used index is stored
    /// after the entry, with release ordering.
    pub fn push_used<M: GuestMemory>(&mut self, mem: &M, head: u16, len: u32) -> Result<(), QueueError> {
        if !self.ready {
            return Err(QueueError::NotReady);
        }
        if head >= self.size {
            return Err(QueueError::HeadOutOfRange { head, size: self.size });
        }
        let slot = (self.next_used.0 % self.size) as u64;
        let at = self.used_ring + USED_HEADER + USED_ELEM * slot;
        let mut elem = [0u8; 8];
        elem[..4].copy_from_slice(&(head as u32).to_le_bytes());
        elem[4..].copy_from_slice(&len.to_le_bytes());
        mem.write_slice(&elem, GuestAddress(at)).map_err(|_| QueueError::Memory(at))?;
        self.next_used += Wrapping(1);
        Self::store_u16(mem, self.used_ring + 2, self.next_used.0, Ordering::Release)
    }

    /// Whether the driver wants an interrupt for the entries pushed since the
    /// last interrupt (`used_event` with EVENT_IDX, else the available ring's
    /// NO_INTERRUPT flag). Call after pushing; a `true` is remembered as
    /// signalled.
    pub fn needs_interrupt<M: GuestMemory>(&mut self, mem: &M) -> Result<bool, QueueError> {
        // The used index store must be visible before the driver's flag or
        // event index is read, or both sides may decide not to act.
        fence(Ordering::SeqCst);
        let new = self.next_used;
        let old = self.signalled_used;
        if new == old {
            return Ok(false);
        }
        let want = if self.event_idx {
            let event = Wrapping(Self::load_u16(
                mem,
                self.avail_ring + AVAIL_HEADER + 2 * self.size as u64,
                Ordering::Relaxed,
            )?);
            // vring_need_event: the event index lies in (old, new].
            (new - event - Wrapping(1)).0 < (new - old).0
        } else {
            Self::load_u16(mem, self.avail_ring, Ordering::Relaxed)? & AVAIL_F_NO_INTERRUPT == 0
        };
        if want {
            self.signalled_used = new;
        }
        Ok(want)
    }

    /// Asks the driver to notify again (clears NO_NOTIFY, or sets
    /// `avail_event` to the next entry), then says whether entries arrived
    /// meanwhile: if so the caller must process them, since the driver may
    /// have decided not to notify before it saw the change.
    pub fn enable_notifications<M: GuestMemory>(&mut self, mem: &M) -> Result<bool, QueueError> {
        if self.event_idx {
            let at = self.used_ring + USED_HEADER + USED_ELEM * self.size as u64;
            Self::store_u16(mem, at, self.next_avail.0, Ordering::Relaxed)?;
        } else {
            Self::store_u16(mem, self.used_ring, 0, Ordering::Relaxed)?;
        }
        fence(Ordering::SeqCst);
        Ok(self.avail_idx(mem)? != self.next_avail.0)
    }

    /// Tells the driver that notifications are not needed while the device
    /// is processing (NO_NOTIFY; with EVENT_IDX, `avail_event` simply stays
    /// behind).
    pub fn disable_notifications<M: GuestMemory>(&mut self, mem: &M) -> Result<(), QueueError> {
        if !self.event_idx {
            Self::store_u16(mem, self.used_ring, USED_F_NO_NOTIFY, Ordering::Relaxed)?;
        }
        Ok(())
    }
}
