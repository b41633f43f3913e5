//! The pages an IOREQ server shares with Xen (`public/hvm/ioreq.h`), as
//! structures of atomics: the hypervisor writes them while we read, so every
//! field is read and written through an atomic, and no plain Rust reference
//! to their contents ever exists. Layouts are checked at compile time against
//! Xen's (x86_64, aarch64 and armhf agree: fixed-width fields).

use core::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering::*};

/// Xen's page size: the unit of the ioreq resource frames.
pub const PAGE_SIZE: usize = 4096;

/// `STATE_IOREQ_NONE`: the slot is free.
pub const STATE_IOREQ_NONE: u8 = 0;
/// `STATE_IOREQ_READY`: Xen wrote a request and notified us.
pub const STATE_IOREQ_READY: u8 = 1;
/// `STATE_IOREQ_INPROCESS`: we are serving it.
pub const STATE_IOREQ_INPROCESS: u8 = 2;
/// `STATE_IORESP_READY`: our answer is in the slot.
pub const STATE_IORESP_READY: u8 = 3;

/// `IOREQ_TYPE_PIO`: a port access.
pub const IOREQ_TYPE_PIO: u8 = 0;
/// `IOREQ_TYPE_COPY`: an MMIO access.
pub const IOREQ_TYPE_COPY: u8 = 1;
/// `IOREQ_TYPE_PCI_CONFIG`: a PCI config space access (addr holds SBDF and register).
pub const IOREQ_TYPE_PCI_CONFIG: u8 = 2;
/// `IOREQ_TYPE_TIMEOFFSET`: the guest's RTC offset changed.
pub const IOREQ_TYPE_TIMEOFFSET: u8 = 7;
/// `IOREQ_TYPE_INVALIDATE`: drop cached guest mappings.
pub const IOREQ_TYPE_INVALIDATE: u8 = 8;

// The byte at offset 30 of `struct ioreq` holds four bitfields (GCC's
// layout, checked with Xen's header): state:4, data_is_ptr:1, dir:1, df:1.
const FLAG_STATE: u8 = 0x0f;
const FLAG_DATA_IS_PTR: u8 = 0x10;
const FLAG_DIR_READ: u8 = 0x20;
const FLAG_DF: u8 = 0x40;

/// One vCPU's slot of the synchronous ioreq page (`struct ioreq`, 32 bytes).
#[repr(C)]
#[derive(Debug, Default)]
pub struct IoreqSlot {
    addr: AtomicU64,
    data: AtomicU64,
    count: AtomicU32,
    size: AtomicU32,
    vp_eport: AtomicU32,
    _pad0: AtomicU16,
    /// state:4, data_is_ptr:1, dir:1, df:1, pad:1.
    flags: AtomicU8,
    type_: AtomicU8,
}

const _: () = assert!(core::mem::size_of::<IoreqSlot>() == 32);
const _: () = assert!(core::mem::offset_of!(IoreqSlot, data) == 8);
const _: () = assert!(core::mem::offset_of!(IoreqSlot, count) == 16);
const _: () = assert!(core::mem::offset_of!(IoreqSlot, size) == 20);
const _: () = assert!(core::mem::offset_of!(IoreqSlot, vp_eport) == 24);
const _: () = assert!(core::mem::offset_of!(IoreqSlot, flags) == 30);
const _: () = assert!(core::mem::offset_of!(IoreqSlot, type_) == 31);

/// A copy of one slot's fields, taken after its state was seen READY.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawIoreq {
    /// Port, guest-physical address, or SBDF and register (PCI config).
    pub addr: u64,
    /// Immediate data, or the guest-physical address of the data.
    pub data: u64,
    /// Repetitions (`rep` prefixes).
    pub count: u32,
    /// Bytes per access.
    pub size: u32,
    /// The hypervisor's event channel port for this vCPU.
    pub vp_eport: u32,
    /// `STATE_*`.
    pub state: u8,
    /// `data` is a guest-physical address.
    pub data_is_ptr: bool,
    /// A read (`IOREQ_READ`) rather than a write.
    pub dir_read: bool,
    /// Direction flag: repetitions go down in memory.
    pub df: bool,
    /// `IOREQ_TYPE_*`.
    pub type_: u8,
}

impl RawIoreq {
    /// Decodes the 32 bytes of a `struct ioreq` as Xen lays them out
    /// (little-endian): what the fuzz target and tests feed in.
    pub fn from_bytes(b: &[u8; 32]) -> Self {
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap());
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap());
        let flags = b[30];
        RawIoreq {
            addr: u64_at(0),
            data: u64_at(8),
            count: u32_at(16),
            size: u32_at(20),
            vp_eport: u32_at(24),
            state: flags & FLAG_STATE,
            data_is_ptr: flags & FLAG_DATA_IS_PTR != 0,
            dir_read: flags & FLAG_DIR_READ != 0,
            df: flags & FLAG_DF != 0,
            type_: b[31],
        }
    }

    fn flags(&self) -> u8 {
        (self.state & FLAG_STATE)
            | if self.data_is_ptr { FLAG_DATA_IS_PTR } else { 0 }
            | if self.dir_read { FLAG_DIR_READ } else { 0 }
            | if self.df { FLAG_DF } else { 0 }
    }
}

impl IoreqSlot {
    /// The state, read with acquire ordering: once it is READY, the other
    /// fields Xen wrote before it are visible.
    #[inline]
    pub fn state(&self) -> u8 {
        self.flags.load(Acquire) & FLAG_STATE
    }

    /// The hypervisor's event channel port for this vCPU.
    #[inline]
    pub fn vp_eport(&self) -> u32 {
        self.vp_eport.load(Acquire)
    }

    /// Reads every field. Call after [`state`](Self::state) returned READY
    /// (its acquire orders these loads after Xen's writes).
    #[inline]
    pub fn load(&self) -> RawIoreq {
        let flags = self.flags.load(Relaxed);
        RawIoreq {
            addr: self.addr.load(Relaxed),
            data: self.data.load(Relaxed),
            count: self.count.load(Relaxed),
            size: self.size.load(Relaxed),
            vp_eport: self.vp_eport.load(Relaxed),
            state: flags & FLAG_STATE,
            data_is_ptr: flags & FLAG_DATA_IS_PTR != 0,
            dir_read: flags & FLAG_DIR_READ != 0,
            df: flags & FLAG_DF != 0,
            type_: self.type_.load(Relaxed),
        }
    }

    /// Sets the state, keeping the other bits of its byte (the hypervisor
    /// does not write the slot while the device model owns it), with
    /// release ordering: everything written to the slot before (the response
    /// data) is visible to whoever sees the new state.
    #[inline]
    pub fn set_state(&self, state: u8) {
        let other = self.flags.load(Relaxed) & !FLAG_STATE;
        self.flags.store(other | (state & FLAG_STATE), Release);
    }

    /// Writes the response data (before [`set_state`](Self::set_state)
    /// publishes it).
    #[inline]
    pub fn set_data(&self, data: u64) {
        self.data.store(data, Relaxed);
    }

    /// The response data (what the hypervisor reads once the state is IORESP_READY).
    #[inline]
    pub fn data(&self) -> u64 {
        self.data.load(Relaxed)
    }

    /// Writes a whole request and then, with release ordering, its state:
    /// what the hypervisor does (the simulator and tests use it).
    pub fn store(&self, r: &RawIoreq) {
        self.addr.store(r.addr, Relaxed);
        self.data.store(r.data, Relaxed);
        self.count.store(r.count, Relaxed);
        self.size.store(r.size, Relaxed);
        self.vp_eport.store(r.vp_eport, Relaxed);
        self.type_.store(r.type_, Relaxed);
        self.flags.store(r.flags(), Release);
    }

    /// Sets the hypervisor's event channel port (the hypervisor's side).
    pub fn set_vp_eport(&self, port: u32) {
        self.vp_eport.store(port, Release);
    }

    /// The slot's 32 bytes as Xen lays them out (tests compare them).
    pub fn to_bytes(&self) -> [u8; 32] {
        let mut b = [0u8; 32];
        b[0..8].copy_from_slice(&self.addr.load(Acquire).to_le_bytes());
        b[8..16].copy_from_slice(&self.data.load(Acquire).to_le_bytes());
        b[16..20].copy_from_slice(&self.count.load(Acquire).to_le_bytes());
        b[20..24].copy_from_slice(&self.size.load(Acquire).to_le_bytes());
        b[24..28].copy_from_slice(&self.vp_eport.load(Acquire).to_le_bytes());
        b[28..30].copy_from_slice(&self._pad0.load(Acquire).to_le_bytes());
        b[30] = self.flags.load(Acquire);
        b[31] = self.type_.load(Acquire);
        b
    }

    /// Overwrites the slot's 32 bytes, the flags byte last (release): the
    /// fuzz target and tests write arbitrary slots with it.
    pub fn store_bytes(&self, b: &[u8; 32]) {
        let r = RawIoreq::from_bytes(b);
        self.addr.store(r.addr, Relaxed);
        self.data.store(r.data, Relaxed);
        self.count.store(r.count, Relaxed);
        self.size.store(r.size, Relaxed);
        self.vp_eport.store(r.vp_eport, Relaxed);
        self._pad0.store(u16::from_le_bytes([b[28], b[29]]), Relaxed);
        self.type_.store(b[31], Relaxed);
        self.flags.store(b[30], Release);
    }
}

/// Slots in the synchronous ioreq page: one per vCPU.
pub const SLOTS_PER_PAGE: usize = PAGE_SIZE / core::mem::size_of::<IoreqSlot>();

/// The synchronous ioreq page (`shared_iopage_t`): slot `i` is vCPU `i`'s.
#[repr(C, align(4096))]
#[derive(Debug)]
pub struct IoreqPage {
    slots: [IoreqSlot; SLOTS_PER_PAGE],
}

const _: () = assert!(core::mem::size_of::<IoreqPage>() == PAGE_SIZE);

impl IoreqPage {
    /// A zeroed page on the heap (the simulator's).
    pub fn new_boxed() -> Box<Self> {
        Box::new(IoreqPage { slots: core::array::from_fn(|_| IoreqSlot::default()) })
    }

    /// vCPU `vcpu`'s slot, or `None` beyond the page.
    #[inline]
    pub fn slot(&self, vcpu: u32) -> Option<&IoreqSlot> {
        self.slots.get(vcpu as usize)
    }
}

/// Slots of the buffered ioreq page (`IOREQ_BUFFER_SLOT_NUM`).
pub const BUF_SLOTS: u32 = 511;

/// One entry of the buffered ioreq page (`buf_ioreq_t`, 8 bytes): the first
/// word holds type (bits 0-7), dir (bit 9), size (bits 10-11, log2 of the
/// bytes) and addr (bits 12-31, 20 bits); the second word is the data.
#[repr(C)]
#[derive(Debug, Default)]
pub struct BufSlot {
    word: AtomicU32,
    data: AtomicU32,
}

/// A decoded buffered entry.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RawBufIoreq {
    /// `IOREQ_TYPE_*`.
    pub type_: u8,
    /// A read (never sent buffered by Xen).
    pub dir_read: bool,
    /// log2 of the size in bytes (8 bytes take two entries).
    pub size_log2: u8,
    /// The address (20 bits).
    pub addr: u32,
    /// The data (the low half, for 8-byte entries).
    pub data: u32,
}

impl RawBufIoreq {
    fn word(&self) -> u32 {
        self.type_ as u32
            | ((self.dir_read as u32) << 9)
            | (((self.size_log2 as u32) & 3) << 10)
            | ((self.addr & 0xfffff) << 12)
    }

    fn from_words(word: u32, data: u32) -> Self {
        RawBufIoreq {
            type_: word as u8,
            dir_read: word & (1 << 9) != 0,
            size_log2: ((word >> 10) & 3) as u8,
            addr: word >> 12,
            data,
        }
    }
}

impl BufSlot {
    /// The entry's fields.
    #[inline]
    pub fn load(&self) -> RawBufIoreq {
        RawBufIoreq::from_words(self.word.load(Relaxed), self.data.load(Relaxed))
    }

    /// Writes an entry (the hypervisor's side).
    pub fn store(&self, e: &RawBufIoreq) {
        self.word.store(e.word(), Relaxed);
        self.data.store(e.data, Relaxed);
    }
}

/// The buffered ioreq page (`buffered_iopage_t`): a ring of [`BUF_SLOTS`]
/// write-only requests that need no answer, with free-running read and write
/// pointers.
#[repr(C, align(4096))]
#[derive(Debug)]
pub struct BufferedPage {
    read_pointer: AtomicU32,
    write_pointer: AtomicU32,
    slots: [BufSlot; BUF_SLOTS as usize],
}

const _: () = assert!(core::mem::size_of::<BufferedPage>() == PAGE_SIZE);
const _: () = assert!(core::mem::offset_of!(BufferedPage, slots) == 8);

impl BufferedPage {
    /// A zeroed page on the heap (the simulator's).
    pub fn new_boxed() -> Box<Self> {
        Box::new(BufferedPage {
            read_pointer: AtomicU32::new(0),
            write_pointer: AtomicU32::new(0),
            slots: core::array::from_fn(|_| BufSlot::default()),
        })
    }

    /// The read pointer (ours to advance).
    #[inline]
    pub fn read_pointer(&self) -> u32 {
        self.read_pointer.load(Acquire)
    }

    /// The write pointer (Xen's), with acquire ordering: the entries before
    /// it are visible.
    #[inline]
    pub fn write_pointer(&self) -> u32 {
        self.write_pointer.load(Acquire)
    }

    /// The entry at free-running index `i`.
    #[inline]
    pub fn slot(&self, i: u32) -> &BufSlot {
        &self.slots[(i % BUF_SLOTS) as usize]
    }

    /// Consumes `n` entries. An atomic add, which both of Xen's read-pointer
    /// modes accept (with `HVM_IOREQSRV_BUFIOREQ_ATOMIC`, Xen may rebase both
    /// pointers at the same time); release, so our reads of the entries
    /// happen before Xen may reuse them.
    #[inline]
    pub fn advance(&self, n: u32) {
        self.read_pointer.fetch_add(n, Release);
    }

    /// Sets the write pointer with release ordering (the hypervisor's side).
    pub fn set_write_pointer(&self, w: u32) {
        self.write_pointer.store(w, Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_bytes_round_trip() {
        let mut b = [0u8; 32];
        for (i, x) in b.iter_mut().enumerate() {
            *x = (i * 7 + 3) as u8;
        }
        let s = IoreqSlot::default();
        s.store_bytes(&b);
        assert_eq!(s.to_bytes(), b);
        let r = s.load();
        assert_eq!(r, RawIoreq::from_bytes(&b));
        assert_eq!(r.addr, u64::from_le_bytes(b[0..8].try_into().unwrap()));
        // Byte 30 = 0xd5: state 5, data_is_ptr 1, dir 0, df 1, and the pad bit.
        assert_eq!(b[30], 0xd5);
        assert_eq!((r.state, r.data_is_ptr, r.dir_read, r.df), (5, true, false, true));
        // Changing the state keeps the other bits of its byte, the pad bit too.
        s.set_state(STATE_IORESP_READY);
        let mut want = b;
        want[30] = 0xd3;
        assert_eq!(s.to_bytes(), want);
    }

    #[test]
    fn flag_bits_match_xen_bitfields() {
        // Measured with gcc on Xen's header: state 0x0f, data_is_ptr 0x10, dir 0x20, df 0x40.
        let r = RawIoreq { state: 1, data_is_ptr: true, dir_read: false, df: true, ..Default::default() };
        assert_eq!(r.flags(), 0x51);
        let mut b = [0u8; 32];
        b[30] = 0x70;
        let r = RawIoreq::from_bytes(&b);
        assert!(r.data_is_ptr && r.dir_read && r.df && r.state == 0);
    }

    #[test]
    fn buf_entry_layout() {
        // Measured with gcc on Xen's header: type 0xff, dir 0x200, size 0xc00, addr 0xfffff000.
        let e = RawBufIoreq { type_: 0xff, dir_read: true, size_log2: 3, addr: 0xfffff, data: 7 };
        assert_eq!(e.word(), 0xffff_feff);
        assert!(RawBufIoreq::from_words(0x0000_0200, 0).dir_read);
        assert_eq!(RawBufIoreq::from_words(0x0000_0c00, 0).size_log2, 3);
        assert_eq!(RawBufIoreq::from_words(0xfffff000, 0).addr, 0xfffff);
        let s = BufSlot::default();
        s.store(&e);
        assert_eq!(s.load(), e);
    }

    #[test]
    fn pages() {
        let p = IoreqPage::new_boxed();
        assert_eq!(SLOTS_PER_PAGE, 128);
        assert!(p.slot(127).is_some() && p.slot(128).is_none());
        let b = BufferedPage::new_boxed();
        b.set_write_pointer(3);
        b.advance(2);
        assert_eq!((b.read_pointer(), b.write_pointer()), (2, 3));
        assert!(core::ptr::eq(b.slot(511), b.slot(0)));
    }
}
