//! Guest memory as vm-memory's `GuestMemory` ([`GuestRam`]), on the
//! simulator's RAM: byte copies, objects and atomics across chunk
//! boundaries land where the guest sees them, memory that is not there
//! fails (never faults), a view keeps the chunks it touched, and a virtio
//! split queue runs on it unchanged.

use std::sync::atomic::Ordering;
use vm_memory::guest_memory::Error as MemError;
use vm_memory::{Bytes, GuestAddress, GuestMemory, GuestMemoryRegion, MemoryRegionAddress, Permissions};
use xendevicemodel::Errno;
use xendevicemodel_ioreq::{Config, GuestChunk, Session};
use xendevicemodel_ioreq_sim::SimXen;
use xendevicemodel_virtio::driver::DriverQueue;
use xendevicemodel_virtio::{walk, SplitQueue};

const CHUNK: u64 = GuestChunk::BYTES;

fn session(xen: &std::sync::Arc<SimXen>) -> Session {
    Session::with_backend(xen.clone(), 3, Config::default()).unwrap()
}

#[test]
fn copies_objects_and_atomics_cross_chunks() {
    let xen = SimXen::new(1);
    xen.write_guest_memory(3 * CHUNK as usize - 1, &[0]); // RAM: four chunks
    let s = session(&xen);
    let ram = s.server().guest_ram();
    let bytes: Vec<u8> = (0..100u8).collect();
    // 100 bytes across the boundary of chunks 0 and 1, 40 before it.
    ram.write_slice(&bytes, GuestAddress(CHUNK - 40)).unwrap();
    assert_eq!(&xen.guest_memory()[CHUNK as usize - 40..CHUNK as usize + 60], &bytes[..]);
    let mut back = [0u8; 100];
    ram.read_slice(&mut back, GuestAddress(CHUNK - 40)).unwrap();
    assert_eq!(back[..], bytes[..]);
    // Slices: one per chunk touched, in order, of the right lengths.
    let lens: Vec<usize> =
        ram.get_slices(GuestAddress(CHUNK - 40), 100, Permissions::Read).unwrap().map(|s| s.unwrap().len()).collect();
    assert_eq!(lens, [40, 60]);
    // An object straddling chunks 1 and 2, and an atomic in chunk 2.
    ram.write_obj(0x1122_3344_5566_7788u64, GuestAddress(2 * CHUNK - 4)).unwrap();
    assert_eq!(
        xen.guest_memory()[2 * CHUNK as usize - 4..2 * CHUNK as usize + 4],
        0x1122_3344_5566_7788u64.to_le_bytes()
    );
    ram.store(0xabcd_u16, GuestAddress(2 * CHUNK + 8), Ordering::Release).unwrap();
    assert_eq!(ram.load::<u16>(GuestAddress(2 * CHUNK + 8), Ordering::Acquire).unwrap(), 0xabcd);
    // What the server's copies and the guest's own writes see is the same memory.
    let mut b = [0u8; 2];
    s.server().read_guest(2 * CHUNK + 8, &mut b).unwrap();
    assert_eq!(u16::from_le_bytes(b), 0xabcd);
    xen.write_guest_memory(5, &[9, 8, 7]);
    assert_eq!(ram.read_obj::<[u8; 3]>(GuestAddress(5)).unwrap(), [9, 8, 7]);
    assert_eq!(ram.pinned(), 3, "chunks 0, 1 and 2 pinned, each once");
}

#[test]
fn memory_that_is_not_there_fails() {
    let xen = SimXen::new(1);
    let s = session(&xen);
    let ram = s.server().guest_ram(); // RAM: one chunk
    assert!(ram.check_range(GuestAddress(0), CHUNK as usize, Permissions::ReadWrite));
    assert!(!ram.check_range(GuestAddress(CHUNK - 4), 8, Permissions::Read), "a range past the RAM");
    assert!(!ram.check_range(GuestAddress(u64::MAX - 2), 8, Permissions::Read), "a range that wraps");
    let mut it = ram.get_slices(GuestAddress(CHUNK - 4), 8, Permissions::Write).unwrap();
    assert_eq!(it.next().unwrap().unwrap().len(), 4);
    assert!(matches!(it.next(), Some(Err(MemError::InvalidGuestAddress(GuestAddress(a)))) if a == CHUNK));
    assert!(it.next().is_none() && it.next().is_none(), "items after an error");
    assert!(matches!(
        ram.get_slices(GuestAddress(u64::MAX - 2), 8, Permissions::Read),
        Err(MemError::GuestAddressOverflow)
    ));
    let before = xen.guest_memory();
    assert!(ram.write_slice(&[1; 8], GuestAddress(CHUNK - 4)).is_err());
    assert!(ram.load::<u32>(GuestAddress(CHUNK), Ordering::Acquire).is_err());
    assert_eq!(xen.guest_memory().len(), before.len());
    // A chunk the backend will not map: this access fails, the next one works.
    xen.fail_next("guest_chunk", Errno::ENOMEM);
    let fresh = s.server().guest_ram();
    assert!(fresh.read_obj::<u32>(GuestAddress(16)).is_err());
    assert_eq!(fresh.read_obj::<u32>(GuestAddress(16)).unwrap(), 0);
}

#[test]
fn a_view_keeps_the_chunks_it_touched() {
    let xen = SimXen::new(1);
    let s = session(&xen);
    let ram = s.server().guest_ram();
    ram.write_obj(7u32, GuestAddress(0x100)).unwrap();
    // Chunk 0 is pinned: this view asks the backend no more, even when it would fail...
    xen.fail_next("guest_chunk", Errno::ENOMEM);
    assert_eq!(ram.read_obj::<u32>(GuestAddress(0x100)).unwrap(), 7);
    // ...while a server copy, which asks, does fail once.
    let mut b = [0u8; 4];
    let e = s.server().read_guest(0x100, &mut b).unwrap_err();
    assert_eq!(e.errno(), Errno::ENOMEM);
    assert_eq!(e.to_string(), "read guest memory: Out of memory (ENOMEM)");
    s.server().invalidate_guest();
    assert_eq!(ram.read_obj::<u32>(GuestAddress(0x100)).unwrap(), 7, "a slice's memory after an invalidation");
}

#[test]
fn a_chunk_is_a_vm_memory_region() {
    let xen = SimXen::new(1);
    xen.write_guest_memory(CHUNK as usize + 0x10, &[5, 6]);
    let s = session(&xen);
    let c = s.server().guest_chunk(1).unwrap();
    assert_eq!((c.start_addr(), GuestMemoryRegion::len(&c)), (GuestAddress(CHUNK), CHUNK));
    assert_eq!(c.read_obj::<[u8; 2]>(MemoryRegionAddress(0x10)).unwrap(), [5, 6]);
    assert!(c.get_slice(MemoryRegionAddress(CHUNK - 1), 2).is_err(), "a slice past the chunk");
    assert!(s.server().guest_chunk(2).is_err(), "a chunk past the RAM");
}

/// The virtio crate's split queue and chain walk on a simulated guest's
/// memory: the driver offers a request (16 bytes out, 8 in), the device
/// pops it, reads it, answers in place, returns it on the used ring.
#[test]
fn a_virtqueue_runs_on_guest_ram() {
    let xen = SimXen::new(1);
    xen.write_guest_memory(4 * CHUNK as usize - 1, &[0]);
    let s = session(&xen);
    let ram = s.server().guest_ram();
    // Rings in chunk 1; buffers straddling chunks 2 and 3.
    let mut d = DriverQueue::new(CHUNK, 16);
    let (out, inb) = (3 * CHUNK - 10, 3 * CHUNK + 100);
    ram.write_slice(b"sixteen bytes!!!", GuestAddress(out)).unwrap();
    let head = d.write_chain(&ram, 0, &[(out, 16, false), (inb, 8, true)]);
    d.offer(&ram, head);

    let mut q = SplitQueue::new(16);
    q.size = 16;
    q.desc_table = d.desc;
    q.avail_ring = d.avail;
    q.used_ring = d.used;
    q.enable(&ram, false).unwrap();
    let got = q.pop(&ram).unwrap().expect("the offered head");
    let chain = walk(&ram, q.desc_table, q.size, got, false);
    assert_eq!(chain.error, None);
    let mut req = [0u8; 16];
    chain.read_at(&ram, 0, &mut req).unwrap();
    assert_eq!(&req, b"sixteen bytes!!!");
    chain.write_at(&ram, 0, b"answered").unwrap();
    q.push_used(&ram, got, 8).unwrap();

    assert_eq!(d.take_used(&ram), Some((head as u32, 8)));
    assert_eq!(&xen.guest_memory()[inb as usize..inb as usize + 8], b"answered");
}
