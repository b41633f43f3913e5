//! Descriptor chains: well-formed ones in every layout, and every way a
//! driver can get one wrong, each stopping the walk with its own error and
//! keeping only the descriptors before it.

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use xendevicemodel_virtio::chain::{walk, ChainError, Segment};
use xendevicemodel_virtio::driver::{DriverQueue, F_INDIRECT, F_NEXT, F_WRITE};

const MEM: u64 = 0x10_0000; // 1 MiB of guest memory at 0
const TABLE: u64 = 0x1000;
const IND: u64 = 0x8000; // an indirect table

fn mem() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEM as usize)]).unwrap()
}

fn desc(m: &GuestMemoryMmap, index: u16, addr: u64, len: u32, flags: u16, next: u16) {
    DriverQueue::write_desc_at(m, TABLE, index, addr, len, flags, next);
}

fn seg(addr: u64, len: u32, writable: bool) -> Segment {
    Segment { addr, len, writable }
}

#[test]
fn a_well_formed_chain_is_walked_in_order() {
    let m = mem();
    desc(&m, 3, 0x10000, 16, F_NEXT, 7);
    desc(&m, 7, 0x20000, 4096, F_NEXT | F_WRITE, 0);
    desc(&m, 0, 0x30000, 1, F_WRITE, 5); // next ignored without F_NEXT
    let c = walk(&m, TABLE, 8, 3, false);
    assert_eq!(c.error, None);
    assert_eq!(c.head, 3);
    assert_eq!(c.segments, vec![seg(0x10000, 16, false), seg(0x20000, 4096, true), seg(0x30000, 1, true)]);
    assert_eq!((c.readable_len(), c.writable_len()), (16, 4097));
    assert_eq!(c.last_writable_byte(), Some(0x30000));
}

#[test]
fn a_chain_of_every_descriptor_of_the_table_is_fine() {
    let m = mem();
    for i in 0..8u16 {
        desc(&m, i, 0x10000 + i as u64 * 16, 16, if i < 7 { F_NEXT } else { 0 }, i + 1);
    }
    let c = walk(&m, TABLE, 8, 0, false);
    assert_eq!(c.error, None);
    assert_eq!(c.segments.len(), 8);
}

#[test]
fn a_loop_stops_at_the_first_descriptor_seen_twice() {
    let m = mem();
    desc(&m, 0, 0x10000, 16, F_NEXT, 1);
    desc(&m, 1, 0x20000, 512, F_NEXT | F_WRITE, 2);
    desc(&m, 2, 0x30000, 1, F_NEXT | F_WRITE, 0); // back to the head
    let c = walk(&m, TABLE, 8, 0, false);
    assert_eq!(c.error, Some(ChainError::Loop { index: 0 }));
    assert_eq!(c.segments.len(), 3, "the descriptors before the loop stay");
    assert_eq!(c.last_writable_byte(), Some(0x30000));
    // A descriptor pointing at itself.
    desc(&m, 4, 0x10000, 16, F_NEXT, 4);
    let c = walk(&m, TABLE, 8, 4, false);
    assert_eq!(c.error, Some(ChainError::Loop { index: 4 }));
    assert_eq!(c.segments, vec![seg(0x10000, 16, false)]);
}

#[test]
fn indexes_past_the_table_are_refused() {
    let m = mem();
    desc(&m, 0, 0x10000, 16, F_NEXT, 8);
    let c = walk(&m, TABLE, 8, 0, false);
    assert_eq!(c.error, Some(ChainError::NextOutOfRange { index: 8, table_len: 8 }));
    assert_eq!(c.segments.len(), 1);
    let c = walk(&m, TABLE, 8, 9, false);
    assert_eq!(c.error, Some(ChainError::NextOutOfRange { index: 9, table_len: 8 }));
    assert!(c.segments.is_empty());
    let c = walk(&m, TABLE, 8, u16::MAX, false);
    assert!(matches!(c.error, Some(ChainError::NextOutOfRange { .. })));
}

#[test]
fn buffers_must_lie_in_guest_memory() {
    let m = mem();
    // Its last byte one past the end.
    desc(&m, 0, MEM - 15, 16, 0, 0);
    assert_eq!(walk(&m, TABLE, 8, 0, false).error, Some(ChainError::BufferOutsideMemory { addr: MEM - 15, len: 16 }));
    // Exactly up to the end is fine.
    desc(&m, 0, MEM - 16, 16, 0, 0);
    assert_eq!(walk(&m, TABLE, 8, 0, false).error, None);
    // Wholly beyond, and an address whose end overflows.
    for addr in [MEM, 0x4000_0000, u64::MAX - 7] {
        desc(&m, 0, 0x10000, 16, F_NEXT, 1);
        desc(&m, 1, addr, 16, F_WRITE, 0);
        let c = walk(&m, TABLE, 8, 0, false);
        assert_eq!(c.error, Some(ChainError::BufferOutsideMemory { addr, len: 16 }), "{addr:#x}");
        assert_eq!(c.segments, vec![seg(0x10000, 16, false)]);
    }
    // A zero-length buffer anywhere touches nothing.
    desc(&m, 0, u64::MAX, 0, 0, 0);
    assert_eq!(walk(&m, TABLE, 8, 0, false).segments, vec![seg(u64::MAX, 0, false)]);
}

#[test]
fn a_table_outside_guest_memory_is_refused() {
    let m = mem();
    let c = walk(&m, MEM - 32, 8, 3, false);
    assert_eq!(c.error, Some(ChainError::TableUnreadable { addr: MEM - 32 + 48 }));
    let c = walk(&m, u64::MAX - 15, 8, 0, false);
    assert!(matches!(c.error, Some(ChainError::TableUnreadable { .. })));
}

#[test]
fn readable_after_writable_is_refused() {
    let m = mem();
    desc(&m, 0, 0x10000, 16, F_NEXT | F_WRITE, 1);
    desc(&m, 1, 0x20000, 16, 0, 0);
    let c = walk(&m, TABLE, 8, 0, false);
    assert_eq!(c.error, Some(ChainError::ReadableAfterWritable));
    assert_eq!(c.segments, vec![seg(0x10000, 16, true)]);
}

#[test]
fn more_than_four_gib_in_one_chain_is_refused() {
    // 2 GiB of guest memory (reserved, never touched); two 2 GiB buffers.
    let m = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), 0x8000_0000)]).unwrap();
    DriverQueue::write_desc_at(&m, TABLE, 0, 0, 0x8000_0000, F_NEXT, 1);
    DriverQueue::write_desc_at(&m, TABLE, 1, 0, 0x7fff_ffff, F_NEXT, 2);
    DriverQueue::write_desc_at(&m, TABLE, 2, 0, 1, 0, 0);
    let c = walk(&m, TABLE, 8, 0, false);
    assert_eq!(c.error, Some(ChainError::TooManyBytes));
    assert_eq!(c.segments.len(), 2, "exactly 2^32 - 1 bytes is still allowed");
}

fn ind(m: &GuestMemoryMmap, index: u16, addr: u64, len: u32, flags: u16, next: u16) {
    DriverQueue::write_desc_at(m, IND, index, addr, len, flags, next);
}

#[test]
fn indirect_tables_are_followed_when_negotiated() {
    let m = mem();
    desc(&m, 2, 0x10000, 16, F_NEXT, 5); // a direct descriptor first is allowed
    desc(&m, 5, IND, 3 * 16, F_INDIRECT | F_WRITE, 0); // F_WRITE on it means nothing
    ind(&m, 0, 0x20000, 512, F_NEXT, 2);
    ind(&m, 2, 0x30000, 512, F_NEXT | F_WRITE, 1);
    ind(&m, 1, 0x40000, 1, F_WRITE, 0);
    let c = walk(&m, TABLE, 8, 2, true);
    assert_eq!(c.error, None);
    assert_eq!(
        c.segments,
        vec![seg(0x10000, 16, false), seg(0x20000, 512, false), seg(0x30000, 512, true), seg(0x40000, 1, true)]
    );
    // Not negotiated: refused at the indirect descriptor.
    let c = walk(&m, TABLE, 8, 2, false);
    assert_eq!(c.error, Some(ChainError::IndirectNotNegotiated));
    assert_eq!(c.segments.len(), 1);
}

#[test]
fn bad_indirect_descriptors_are_refused() {
    let m = mem();
    let cases: [(u64, u32, u16, ChainError); 5] = [
        (IND, 32, F_INDIRECT | F_NEXT, ChainError::IndirectWithNext),
        (IND, 0, F_INDIRECT, ChainError::IndirectBadSize { len: 0 }),
        (IND, 24, F_INDIRECT, ChainError::IndirectBadSize { len: 24 }),
        (IND, 9 * 16, F_INDIRECT, ChainError::IndirectBadSize { len: 9 * 16 }), // more than the queue size
        (MEM - 16, 32, F_INDIRECT, ChainError::TableUnreadable { addr: MEM - 16 }),
    ];
    for (addr, len, flags, want) in cases {
        desc(&m, 0, addr, len, flags, 1);
        let c = walk(&m, TABLE, 8, 0, true);
        assert_eq!(c.error, Some(want));
        assert!(c.segments.is_empty());
    }
    // An indirect descriptor inside the indirect table.
    desc(&m, 0, IND, 32, F_INDIRECT, 0);
    ind(&m, 0, 0x20000, 16, F_NEXT, 1);
    ind(&m, 1, IND, 32, F_INDIRECT, 0);
    let c = walk(&m, TABLE, 8, 0, true);
    assert_eq!(c.error, Some(ChainError::IndirectInIndirect));
    assert_eq!(c.segments, vec![seg(0x20000, 16, false)]);
    // A next index past the indirect table's own length.
    ind(&m, 1, 0x30000, 1, F_WRITE | F_NEXT, 2);
    let c = walk(&m, TABLE, 8, 0, true);
    assert_eq!(c.error, Some(ChainError::NextOutOfRange { index: 2, table_len: 2 }));
    // A loop inside the indirect table.
    ind(&m, 1, 0x30000, 1, F_WRITE | F_NEXT, 1);
    let c = walk(&m, TABLE, 8, 0, true);
    assert_eq!(c.error, Some(ChainError::Loop { index: 1 }));
    assert_eq!(c.segments.len(), 2);
}

#[test]
fn a_chain_longer_than_the_queue_is_refused() {
    let m = mem();
    // Two direct descriptors, then an indirect table of 4: six buffers in a
    // queue of 4.
    desc(&m, 0, 0x10000, 16, F_NEXT, 1);
    desc(&m, 1, 0x10000, 16, F_NEXT, 2);
    desc(&m, 2, IND, 4 * 16, F_INDIRECT, 0);
    for i in 0..4 {
        ind(&m, i, 0x20000, 16, if i < 3 { F_NEXT } else { 0 }, i + 1);
    }
    let c = walk(&m, TABLE, 4, 0, true);
    assert_eq!(c.error, Some(ChainError::TooLong { limit: 4 }));
    assert_eq!(c.segments.len(), 4);
}

#[test]
fn the_byte_streams_span_descriptors() {
    let m = mem();
    // Readable: 3 + 5 bytes; writable: 2 + 0 + 4 bytes.
    m.write_slice(&[1, 2, 3], GuestAddress(0x10000)).unwrap();
    m.write_slice(&[4, 5, 6, 7, 8], GuestAddress(0x20000)).unwrap();
    desc(&m, 0, 0x10000, 3, F_NEXT, 1);
    desc(&m, 1, 0x20000, 5, F_NEXT, 2);
    desc(&m, 2, 0x30000, 2, F_NEXT | F_WRITE, 3);
    desc(&m, 3, 0x38000, 0, F_NEXT | F_WRITE, 4);
    desc(&m, 4, 0x40000, 4, F_WRITE, 0);
    let c = walk(&m, TABLE, 8, 0, false);
    assert_eq!(c.error, None);
    let mut buf = [0u8; 6];
    c.read_at(&m, 1, &mut buf).unwrap();
    assert_eq!(buf, [2, 3, 4, 5, 6, 7]);
    let mut all = [0u8; 8];
    c.read_at(&m, 0, &mut all).unwrap();
    assert_eq!(all, [1, 2, 3, 4, 5, 6, 7, 8]);
    assert!(c.read_at(&m, 4, &mut [0u8; 5]).is_err(), "one byte past the readable stream");
    c.write_at(&m, 1, &[9, 10, 11]).unwrap();
    let mut w = [0u8; 2];
    m.read_slice(&mut w, GuestAddress(0x30000)).unwrap();
    assert_eq!(w, [0, 9]);
    let mut w = [0u8; 4];
    m.read_slice(&mut w, GuestAddress(0x40000)).unwrap();
    assert_eq!(w, [10, 11, 0, 0]);
    assert!(c.write_at(&m, 5, &[1, 2]).is_err(), "one byte past the writable stream");
    assert_eq!(m.read_obj::<u8>(GuestAddress(0x40003)).unwrap(), 0, "a refused write writes nothing");
    assert_eq!(c.last_writable_byte(), Some(0x40003), "the zero-length descriptor has no last byte");
}
