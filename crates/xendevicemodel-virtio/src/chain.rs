//! Descriptor chains, walked and checked (virtio 1.2, 2.7.5 and 2.7.7).
//!
//! [`walk`] follows a chain from its head through the descriptor table and at
//! most one indirect table, and stops at the first thing a driver must not
//! do: a next index past the table, a descriptor visited twice (a loop), more
//! descriptors than the queue size, a table or buffer outside guest memory,
//! an indirect descriptor that was not negotiated, that also has NEXT, that
//! sits inside an indirect table or whose table length is not a multiple of
//! 16, a device-readable buffer after a device-writable one, or more than
//! 2^32 bytes in all. The descriptors before the error stay usable (a device
//! may still find its status byte there); nothing after it is trusted.
//!
//! A [`Chain`] is then read and written as two byte streams, the readable and
//! the writable buffers in order, independent of how the driver split them
//! into descriptors (VIRTIO_F_ANY_LAYOUT is implied by VIRTIO_F_VERSION_1).

use vm_memory::{Bytes, GuestAddress, GuestMemory, Permissions};

use virtio_bindings::virtio_ring::{VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE};

const F_NEXT: u16 = VRING_DESC_F_NEXT as u16;
const F_WRITE: u16 = VRING_DESC_F_WRITE as u16;
const F_INDIRECT: u16 = VRING_DESC_F_INDIRECT as u16;
const DESC_SIZE: u64 = 16;

/// One buffer of a chain, inside guest memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Guest-physical address.
    pub addr: u64,
    /// Length in bytes (may be 0).
    pub len: u32,
    /// Device-writable (VIRTQ_DESC_F_WRITE).
    pub writable: bool,
}

/// What ended a chain early.
// Variant fields are named for what they hold (an index, an address, a length).
#[allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainError {
    /// A head or next index is not below the length of its table.
    NextOutOfRange { index: u32, table_len: u32 },
    /// A descriptor was reached a second time.
    Loop { index: u16 },
    /// More descriptors than the queue size.
    TooLong { limit: usize },
    /// The descriptor table (or an indirect table) is not in guest memory.
    TableUnreadable { addr: u64 },
    /// A buffer is not (wholly) in guest memory, or its end overflows.
    BufferOutsideMemory { addr: u64, len: u32 },
    /// VIRTIO_RING_F_INDIRECT_DESC was not negotiated.
    IndirectNotNegotiated,
    /// An indirect descriptor inside an indirect table.
    IndirectInIndirect,
    /// An indirect descriptor with NEXT set.
    IndirectWithNext,
    /// An indirect table of zero length, a length not a multiple of 16, or
    /// more entries than the queue size.
    IndirectBadSize { len: u32 },
    /// A device-readable descriptor after a device-writable one.
    ReadableAfterWritable,
    /// More than 2^32 - 1 bytes in all.
    TooManyBytes,
}

impl std::fmt::Display for ChainError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainError::NextOutOfRange { index, table_len } => {
                write!(f, "descriptor index {index} is not below its table's length {table_len}")
            }
            ChainError::Loop { index } => write!(f, "descriptor {index} is reached twice (a loop)"),
            ChainError::TooLong { limit } => write!(f, "more than {limit} descriptors"),
            ChainError::TableUnreadable { addr } => write!(f, "descriptor table at {addr:#x} is not in guest memory"),
            ChainError::BufferOutsideMemory { addr, len } => {
                write!(f, "buffer at {addr:#x}, {len} bytes, is not in guest memory")
            }
            ChainError::IndirectNotNegotiated => write!(f, "indirect descriptor without VIRTIO_RING_F_INDIRECT_DESC"),
            ChainError::IndirectInIndirect => write!(f, "indirect descriptor inside an indirect table"),
            ChainError::IndirectWithNext => write!(f, "indirect descriptor with NEXT set"),
            ChainError::IndirectBadSize { len } => write!(f, "indirect table of {len} bytes"),
            ChainError::ReadableAfterWritable => write!(f, "device-readable buffer after a device-writable one"),
            ChainError::TooManyBytes => write!(f, "more than 2^32 - 1 bytes"),
        }
    }
}

impl std::error::Error for ChainError {}

/// A walked chain: its head (what goes back on the used ring), the buffers up
/// to the first error, and that error, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// The head index taken from the available ring.
    pub head: u16,
    /// The buffers, in chain order; all in guest memory.
    pub segments: Vec<Segment>,
    /// What ended the chain early; `None` for a well-formed chain.
    pub error: Option<ChainError>,
}

/// Out-of-range accesses to a chain's byte streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamError;

impl std::fmt::Display for StreamError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "access beyond the chain's buffers, or guest memory failed")
    }
}

impl std::error::Error for StreamError {}

/// Follows the chain at `head` in the descriptor table at `desc_table` of a
/// queue of `queue_size` entries. `indirect` says whether
/// VIRTIO_RING_F_INDIRECT_DESC was negotiated.
pub fn walk<M: GuestMemory>(mem: &M, desc_table: u64, queue_size: u16, head: u16, indirect: bool) -> Chain {
    let mut chain = Chain { head, segments: Vec::new(), error: None };
    chain.error = walk_into(mem, desc_table, queue_size, head, indirect, &mut chain.segments).err();
    chain
}

fn walk_into<M: GuestMemory>(
    mem: &M,
    desc_table: u64,
    queue_size: u16,
    head: u16,
    indirect: bool,
    out: &mut Vec<Segment>,
) -> Result<(), ChainError> {
    let limit = queue_size as usize;
    let mut table = desc_table;
    let mut table_len = queue_size as u32;
    let mut visited = vec![0u64; (table_len as usize).div_ceil(64)];
    let mut in_indirect = false;
    let mut index = head as u32;
    let mut total: u64 = 0;
    let mut seen_writable = false;
    loop {
        if index >= table_len {
            return Err(ChainError::NextOutOfRange { index, table_len });
        }
        let (word, bit) = (index as usize / 64, index % 64);
        if visited[word] & (1 << bit) != 0 {
            return Err(ChainError::Loop { index: index as u16 });
        }
        visited[word] |= 1 << bit;
        let at = table + DESC_SIZE * index as u64;
        let mut raw = [0u8; 16];
        mem.read_slice(&mut raw, GuestAddress(at)).map_err(|_| ChainError::TableUnreadable { addr: at })?;
        let addr = u64::from_le_bytes(raw[0..8].try_into().unwrap());
        let len = u32::from_le_bytes(raw[8..12].try_into().unwrap());
        let flags = u16::from_le_bytes([raw[12], raw[13]]);
        let next = u16::from_le_bytes([raw[14], raw[15]]);
        if flags & F_INDIRECT != 0 {
            if !indirect {
                return Err(ChainError::IndirectNotNegotiated);
            }
            if in_indirect {
                return Err(ChainError::IndirectInIndirect);
            }
            if flags & F_NEXT != 0 {
                return Err(ChainError::IndirectWithNext);
            }
            // Longer than the queue is more than a chain may hold (2.7.5.3.1).
            if len == 0 || len as u64 % DESC_SIZE != 0 || len as u64 / DESC_SIZE > limit as u64 {
                return Err(ChainError::IndirectBadSize { len });
            }
            if !in_memory(mem, addr, len, Permissions::Read) {
                return Err(ChainError::TableUnreadable { addr });
            }
            // The write flag of an indirect descriptor means nothing (2.7.5.3.2).
            table = addr;
            table_len = len / DESC_SIZE as u32;
            visited = vec![0u64; (table_len as usize).div_ceil(64)];
            in_indirect = true;
            index = 0;
            continue;
        }
        let writable = flags & F_WRITE != 0;
        if !writable && seen_writable {
            return Err(ChainError::ReadableAfterWritable);
        }
        let perm = if writable { Permissions::Write } else { Permissions::Read };
        if !in_memory(mem, addr, len, perm) {
            return Err(ChainError::BufferOutsideMemory { addr, len });
        }
        total += len as u64;
        if total > u32::MAX as u64 {
            return Err(ChainError::TooManyBytes);
        }
        if out.len() == limit {
            return Err(ChainError::TooLong { limit });
        }
        out.push(Segment { addr, len, writable });
        seen_writable |= writable;
        if flags & F_NEXT == 0 {
            return Ok(());
        }
        index = next as u32;
    }
}

fn in_memory<M: GuestMemory>(mem: &M, addr: u64, len: u32, perm: Permissions) -> bool {
    len == 0 || (addr.checked_add(len as u64).is_some() && mem.check_range(GuestAddress(addr), len as usize, perm))
}

impl Chain {
    /// Total length of the device-readable buffers.
    pub fn readable_len(&self) -> u64 {
        self.segments.iter().filter(|s| !s.writable).map(|s| s.len as u64).sum()
    }

    /// Total length of the device-writable buffers.
    pub fn writable_len(&self) -> u64 {
        self.segments.iter().filter(|s| s.writable).map(|s| s.len as u64).sum()
    }

    /// Guest address of the last byte of the device-writable buffers (where a
    /// status byte goes), if they hold any byte.
    pub fn last_writable_byte(&self) -> Option<u64> {
        self.segments.iter().rev().find(|s| s.writable && s.len > 0).map(|s| s.addr + s.len as u64 - 1)
    }

    /// The pieces of guest memory that bytes `offset..offset + len` of the
    /// readable (or writable) stream occupy; `None` if the stream is shorter.
    fn pieces(&self, writable: bool, offset: u64, len: u64) -> Option<Vec<(u64, usize)>> {
        let mut out = Vec::new();
        let (mut skip, mut left) = (offset, len);
        for s in self.segments.iter().filter(|s| s.writable == writable) {
            if left == 0 {
                break;
            }
            let slen = s.len as u64;
            if skip >= slen {
                skip -= slen;
                continue;
            }
            let n = (slen - skip).min(left);
            out.push((s.addr + skip, n as usize));
            left -= n;
            skip = 0;
        }
        (left == 0).then_some(out)
    }

    /// Copies bytes `offset..offset + buf.len()` of the readable stream.
    pub fn read_at<M: GuestMemory>(&self, mem: &M, offset: u64, buf: &mut [u8]) -> Result<(), StreamError> {
        let mut done = 0;
        for (addr, n) in self.pieces(false, offset, buf.len() as u64).ok_or(StreamError)? {
            mem.read_slice(&mut buf[done..done + n], GuestAddress(addr)).map_err(|_| StreamError)?;
            done += n;
        }
        Ok(())
    }

    /// Writes `buf` at `offset` of the writable stream.
    pub fn write_at<M: GuestMemory>(&self, mem: &M, offset: u64, buf: &[u8]) -> Result<(), StreamError> {
        let mut done = 0;
        for (addr, n) in self.pieces(true, offset, buf.len() as u64).ok_or(StreamError)? {
            mem.write_slice(&buf[done..done + n], GuestAddress(addr)).map_err(|_| StreamError)?;
            done += n;
        }
        Ok(())
    }
}
