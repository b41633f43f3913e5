//! The split virtqueue's device side: validation, taking heads, returning
//! them, and notification suppression both ways, against a driver that
//! writes the rings as a guest does.

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use xendevicemodel_virtio::driver::DriverQueue;
use xendevicemodel_virtio::ring::{QueueError, SplitQueue};

const MEM: u64 = 0x10_0000;

fn mem() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEM as usize)]).unwrap()
}

fn setup(m: &GuestMemoryMmap, size: u16, event_idx: bool) -> (SplitQueue, DriverQueue) {
    let d = DriverQueue::new(0x10000, size);
    let mut q = SplitQueue::new(256);
    q.size = size;
    q.desc_table = d.desc;
    q.avail_ring = d.avail;
    q.used_ring = d.used;
    q.enable(m, event_idx).unwrap();
    (q, d)
}

#[test]
fn validation_refuses_bad_sizes_alignments_and_rings_outside_memory() {
    let m = mem();
    let good = |q: &mut SplitQueue| {
        q.size = 16;
        q.desc_table = 0x10000;
        q.avail_ring = 0x11000;
        q.used_ring = 0x12000;
    };
    let mut q = SplitQueue::new(256);
    good(&mut q);
    assert_eq!(q.validate(&m), Ok(()));
    for size in [0, 3, 100, 512] {
        q.size = size;
        assert_eq!(q.validate(&m), Err(QueueError::BadSize(size)));
    }
    good(&mut q);
    q.desc_table = 0x10008;
    assert_eq!(q.validate(&m), Err(QueueError::Misaligned("descriptor table", 0x10008)));
    good(&mut q);
    q.avail_ring = 0x11001;
    assert_eq!(q.validate(&m), Err(QueueError::Misaligned("available ring", 0x11001)));
    good(&mut q);
    q.used_ring = 0x12002;
    assert_eq!(q.validate(&m), Err(QueueError::Misaligned("used ring", 0x12002)));
    // The used ring (134 bytes with avail_event) two bytes past the end.
    good(&mut q);
    q.used_ring = MEM - 132;
    assert_eq!(q.validate(&m), Err(QueueError::OutsideMemory("used ring", q.used_ring)));
    q.used_ring -= 4;
    assert_eq!(q.validate(&m), Ok(()));
    good(&mut q);
    q.desc_table = !15;
    assert_eq!(q.validate(&m), Err(QueueError::OutsideMemory("descriptor table", q.desc_table)));
    good(&mut q);
    q.avail_ring = MEM;
    assert_eq!(q.validate(&m), Err(QueueError::OutsideMemory("available ring", MEM)));
    // A queue that failed validation is not enabled.
    assert!(q.enable(&m, false).is_err());
    assert!(!q.ready());
    assert_eq!(q.pop(&m), Err(QueueError::NotReady));
}

#[test]
fn heads_come_in_order_and_go_back_with_their_lengths() {
    let m = mem();
    let (mut q, mut d) = setup(&m, 8, false);
    assert_eq!(q.pop(&m), Ok(None));
    for head in [5, 2, 7] {
        d.offer(&m, head);
    }
    assert_eq!(q.pop(&m), Ok(Some(5)));
    assert_eq!(q.pop(&m), Ok(Some(2)));
    q.push_used(&m, 2, 100).unwrap(); // out of order is allowed
    assert_eq!(q.pop(&m), Ok(Some(7)));
    assert_eq!(q.pop(&m), Ok(None));
    q.push_used(&m, 5, 1).unwrap();
    q.push_used(&m, 7, 4097).unwrap();
    assert_eq!(d.take_used(&m), Some((2, 100)));
    assert_eq!(d.take_used(&m), Some((5, 1)));
    assert_eq!(d.take_used(&m), Some((7, 4097)));
    assert_eq!(d.take_used(&m), None);
    assert_eq!(q.push_used(&m, 8, 0), Err(QueueError::HeadOutOfRange { head: 8, size: 8 }));
    assert_eq!(d.used_idx(&m), 3, "a refused entry is not published");
}

#[test]
fn the_indexes_wrap_at_65536() {
    let m = mem();
    let (mut q, mut d) = setup(&m, 4, false);
    for i in 0..70_000u32 {
        d.offer(&m, (i % 4) as u16);
        assert_eq!(q.pop(&m), Ok(Some((i % 4) as u16)));
        q.push_used(&m, (i % 4) as u16, i).unwrap();
        assert_eq!(d.take_used(&m), Some((i % 4, i)));
    }
    assert_eq!(q.next_avail(), (70_000u32 % 65536) as u16);
}

#[test]
fn a_driver_running_ahead_or_offering_bad_heads_breaks_the_queue() {
    let m = mem();
    let (mut q, mut d) = setup(&m, 8, false);
    d.avail_idx = 9; // nine entries in a ring of eight
    d.publish(&m);
    assert_eq!(q.pop(&m), Err(QueueError::AvailIndexJump { last: 0, idx: 9 }));
    d.avail_idx = 8; // a full ring is fine
    d.publish(&m);
    assert_eq!(q.pop(&m), Ok(Some(0)));
    let (mut q, mut d) = setup(&m, 8, false);
    d.offer(&m, 8);
    assert_eq!(q.pop(&m), Err(QueueError::HeadOutOfRange { head: 8, size: 8 }));
    assert_eq!(q.next_avail(), 0, "the bad entry is not consumed");
}

#[test]
fn interrupts_follow_the_avail_flag_without_event_idx() {
    let m = mem();
    let (mut q, mut d) = setup(&m, 8, false);
    assert_eq!(q.needs_interrupt(&m), Ok(false), "nothing was used");
    d.offer(&m, 0);
    q.pop(&m).unwrap();
    q.push_used(&m, 0, 1).unwrap();
    assert_eq!(q.needs_interrupt(&m), Ok(true));
    assert_eq!(q.needs_interrupt(&m), Ok(false), "already signalled");
    d.set_avail_flags(&m, 1); // VRING_AVAIL_F_NO_INTERRUPT
    d.offer(&m, 1);
    q.pop(&m).unwrap();
    q.push_used(&m, 1, 1).unwrap();
    assert_eq!(q.needs_interrupt(&m), Ok(false));
    // NO_NOTIFY on the used ring while the device drains.
    q.disable_notifications(&m).unwrap();
    assert_eq!(d.used_flags(&m), 1);
    assert_eq!(q.enable_notifications(&m), Ok(false));
    assert_eq!(d.used_flags(&m), 0);
    d.offer(&m, 2);
    assert_eq!(q.enable_notifications(&m), Ok(true), "an entry arrived: process it");
}

#[test]
fn interrupts_follow_used_event_with_event_idx() {
    let m = mem();
    let (mut q, mut d) = setup(&m, 8, true);
    // The driver wants an interrupt when the used index passes 2 (i.e.
    // after the third entry).
    d.set_used_event(&m, 2);
    for head in 0..3u16 {
        d.offer(&m, head);
        q.pop(&m).unwrap();
        q.push_used(&m, head, 1).unwrap();
        assert_eq!(q.needs_interrupt(&m), Ok(head == 2), "after entry {head}");
    }
    // Several entries at once crossing the event: one interrupt.
    d.set_used_event(&m, 4);
    for head in 3..7u16 {
        d.offer(&m, head);
        q.pop(&m).unwrap();
        q.push_used(&m, head, 1).unwrap();
    }
    assert_eq!(q.needs_interrupt(&m), Ok(true));
    // An event index behind what was signalled (7): no interrupt, also
    // when it is just one behind.
    for (event, head) in [(3, 7), (6, 0)] {
        d.set_used_event(&m, event);
        d.offer(&m, head);
        q.pop(&m).unwrap();
        q.push_used(&m, head, 1).unwrap();
        assert_eq!(q.needs_interrupt(&m), Ok(false), "used_event {event}");
    }
    // avail_event tells the driver where to notify next; flags stay 0.
    assert_eq!(q.enable_notifications(&m), Ok(false));
    assert_eq!(d.avail_event(&m), 9);
    q.disable_notifications(&m).unwrap();
    assert_eq!(d.used_flags(&m), 0, "EVENT_IDX does not use NO_NOTIFY");
}

#[test]
fn drain_serves_every_chain_in_flight() {
    let m = mem();
    let (mut q, mut d) = setup(&m, 16, false);
    // Ten one-descriptor chains; each is answered with its buffer length.
    for i in 0..10u16 {
        d.write_chain(&m, i, &[(0x40000 + i as u64 * 0x100, 1 + i as u32, true)]);
        d.offer(&m, i);
    }
    let mut seen = Vec::new();
    let n = q
        .drain(&m, false, |c| {
            assert_eq!(c.error, None);
            seen.push(c.head);
            c.writable_len() as u32
        })
        .unwrap();
    assert_eq!(n, 10);
    assert_eq!(seen, (0..10).collect::<Vec<_>>());
    for i in 0..10u32 {
        assert_eq!(d.take_used(&m), Some((i, 1 + i)));
    }
    assert_eq!(d.used_flags(&m), 0, "notifications are enabled again after draining");
    // A malformed chain is still returned (the device decides what to write).
    d.write_desc(&m, 3, 0x40000, 16, 1, 3); // a self-loop
    d.offer(&m, 3);
    let n = q.drain(&m, false, |c| if c.error.is_some() { 0 } else { 99 }).unwrap();
    assert_eq!(n, 1);
    assert_eq!(d.take_used(&m), Some((3, 0)));
    // A broken ring stops the drain with its error.
    d.avail_idx = d.avail_idx.wrapping_add(17);
    d.publish(&m);
    assert!(matches!(q.drain(&m, false, |_| 0), Err(QueueError::AvailIndexJump { .. })));
}

#[test]
fn reset_forgets_everything() {
    let m = mem();
    let (mut q, mut d) = setup(&m, 8, true);
    d.offer(&m, 1);
    q.pop(&m).unwrap();
    q.reset();
    assert!(!q.ready());
    assert_eq!((q.size, q.desc_table, q.avail_ring, q.used_ring, q.next_avail()), (256, 0, 0, 0, 0));
    let _ = m.read_obj::<u8>(GuestAddress(0)).unwrap();
}
