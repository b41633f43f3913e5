//! The virtio-blk device against a driver that builds requests as Linux's
//! virtio_blk does, and every malformed request: each gets its status (or,
//! with no byte for one, a reset request), and the disk never changes when a
//! write is refused.

use std::io;

use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use xendevicemodel_virtio::driver::{DriverQueue, F_INDIRECT, F_NEXT, F_WRITE};
use xendevicemodel_virtio::pci::{self, status, Interrupt, Outcome, VirtioPci};
use xendevicemodel_virtio::{SplitQueue, VirtioDevice};

use virtio_blk::{Block, FileStorage, Storage, ID_BYTES, QUEUE_SIZE, SECTOR};

const MEM: u64 = 0x800_0000; // 128 MiB (mapped lazily)
const SECTORS: u64 = 2048; // a 1 MiB disk
const OK: u8 = 0;
const IOERR: u8 = 1;
const UNSUPP: u8 = 2;
const T_IN: u32 = 0;
const T_OUT: u32 = 1;
const T_FLUSH: u32 = 4;
const T_GET_ID: u32 = 8;

/// A disk in memory that can be told to fail.
#[derive(Clone)]
struct MemDisk {
    data: Vec<u8>,
    fail: bool,
    flushes: usize,
}

impl Storage for MemDisk {
    fn len(&self) -> u64 {
        self.data.len() as u64
    }
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        if self.fail {
            return Err(io::Error::other("injected"));
        }
        buf.copy_from_slice(&self.data[offset as usize..offset as usize + buf.len()]);
        Ok(())
    }
    fn write_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        if self.fail {
            return Err(io::Error::other("injected"));
        }
        self.data[offset as usize..offset as usize + buf.len()].copy_from_slice(buf);
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.flushes += 1;
        if self.fail {
            return Err(io::Error::other("injected"));
        }
        Ok(())
    }
}

fn pattern(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2654435761) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

struct Rig {
    m: GuestMemoryMmap,
    q: SplitQueue,
    d: DriverQueue,
    blk: Block<MemDisk>,
    original: Vec<u8>,
}

/// Where request `head` keeps its buffers.
fn area(head: u16) -> u64 {
    0x100000 + head as u64 * 0x40000
}

impl Rig {
    fn new(features: u64, read_only: bool) -> Rig {
        let m = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEM as usize)]).unwrap();
        let d = DriverQueue::new(0x10000, QUEUE_SIZE);
        let mut q = SplitQueue::new(QUEUE_SIZE);
        q.desc_table = d.desc;
        q.avail_ring = d.avail;
        q.used_ring = d.used;
        q.enable(&m, features & pci::F_EVENT_IDX != 0).unwrap();
        let disk = MemDisk { data: pattern((SECTORS * SECTOR) as usize, 7), fail: false, flushes: 0 };
        let original = disk.data.clone();
        let mut blk = Block::new(disk, read_only, "virtio-blk-test-0001");
        blk.activate(features).unwrap();
        Rig { m, q, d, blk, original }
    }

    fn disk(&self) -> &[u8] {
        &self.blk.storage().data
    }

    fn unchanged(&self) -> bool {
        self.disk() == self.original.as_slice()
    }

    fn header(&self, head: u16, kind: u32, sector: u64) -> u64 {
        let at = area(head);
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&kind.to_le_bytes());
        h[8..16].copy_from_slice(&sector.to_le_bytes());
        self.m.write_slice(&h, GuestAddress(at)).unwrap();
        at
    }

    /// A request as Linux builds it: header, data (readable for OUT,
    /// writable for IN), status; returns (data address, status address).
    fn request(&mut self, head: u16, kind: u32, sector: u64, out: &[u8], in_len: u32) -> (u64, u64) {
        let h = self.header(head, kind, sector);
        let (data, st) = (h + 0x1000, h + 0x3ffff);
        self.m.write_slice(out, GuestAddress(data)).unwrap();
        self.m.write_obj(0xeeu8, GuestAddress(st)).unwrap();
        let mut bufs = vec![(h, 16, false)];
        if !out.is_empty() {
            bufs.push((data, out.len() as u32, false));
        }
        if in_len > 0 {
            bufs.push((data, in_len, true));
        }
        bufs.push((st, 1, true));
        self.d.write_chain(&self.m, head, &bufs);
        self.d.offer(&self.m, head);
        (data, st)
    }

    /// Processes the queue; returns whether the device asked for a reset.
    fn process(&mut self) -> bool {
        self.blk.process(0, &mut self.q, &self.m).is_err()
    }

    fn status(&self, at: u64) -> u8 {
        self.m.read_obj(GuestAddress(at)).unwrap()
    }

    fn read_mem(&self, at: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.m.read_slice(&mut v, GuestAddress(at)).unwrap();
        v
    }

    /// One request's answer: (used length, status).
    fn answer(&mut self, head: u16, st: u64) -> (u32, u8) {
        assert!(!self.process(), "no reset asked for");
        let (id, len) = self.d.take_used(&self.m).expect("the request came back");
        assert_eq!(id, head as u32);
        assert_eq!(self.d.take_used(&self.m), None);
        (len, self.status(st))
    }
}

const FEATURES: u64 = pci::F_VERSION_1 | pci::F_INDIRECT_DESC;

#[test]
fn reads_writes_flushes_and_get_id() {
    let mut r = Rig::new(FEATURES, false);
    let (data, st) = r.request(0, T_IN, 3, &[], 8 * 512);
    assert_eq!(r.answer(0, st), (4096 + 1, OK));
    assert_eq!(r.read_mem(data, 4096), &r.original[3 * 512..3 * 512 + 4096]);
    let new = pattern(1024, 99);
    let (_, st) = r.request(1, T_OUT, 10, &new, 0);
    assert_eq!(r.answer(1, st), (1, OK));
    assert_eq!(&r.disk()[10 * 512..11 * 512 + 512], new.as_slice());
    assert_eq!(&r.disk()[..10 * 512], &r.original[..10 * 512], "only the two sectors changed");
    assert_eq!(&r.disk()[12 * 512..], &r.original[12 * 512..]);
    let (_, st) = r.request(2, T_FLUSH, 0, &[], 0);
    assert_eq!(r.answer(2, st), (1, OK));
    assert_eq!(r.blk.storage().flushes, 1);
    let (data, st) = r.request(3, T_GET_ID, 0, &[], ID_BYTES as u32);
    assert_eq!(r.answer(3, st), (21, OK));
    assert_eq!(r.read_mem(data, 20), b"virtio-blk-test-0001");
    let (data, st) = r.request(4, T_GET_ID, 0, &[], 8);
    assert_eq!(r.answer(4, st), (9, OK), "a shorter buffer gets what fits");
    assert_eq!(r.read_mem(data, 8), b"virtio-b");
    // The last sector, exactly.
    let (data, st) = r.request(5, T_IN, SECTORS - 1, &[], 512);
    assert_eq!(r.answer(5, st), (513, OK));
    assert_eq!(r.read_mem(data, 512), &r.original[(SECTORS as usize - 1) * 512..]);
    let s = r.blk.stats();
    assert_eq!((s.reads, s.writes, s.flushes, s.get_ids, s.bytes_read, s.bytes_written), (2, 1, 1, 2, 4608, 1024));
    assert_eq!((s.errors, s.unsupported, s.malformed, s.unanswerable), (0, 0, 0, 0));
}

#[test]
fn unknown_requests_are_unsupported() {
    let mut r = Rig::new(FEATURES, false);
    for (head, kind) in [(0u16, 2u32), (1, 11), (2, 13), (3, 14), (4, 0xdead_beef)] {
        let (_, st) = r.request(head, kind, 0, &[0u8; 512], 0);
        assert_eq!(r.answer(head, st), (1, UNSUPP), "type {kind}");
    }
    assert!(r.unchanged());
    assert_eq!(r.blk.stats().unsupported, 5);
}

#[test]
fn out_of_range_and_misshapen_requests_get_ioerr_and_change_nothing() {
    let mut r = Rig::new(FEATURES, false);
    let cases: Vec<(&str, u32, u64, Vec<u8>, u32)> = vec![
        ("a read past the end", T_IN, SECTORS - 1, vec![], 1024),
        ("a read far past the end", T_IN, SECTORS, vec![], 512),
        ("a sector whose byte offset overflows", T_IN, u64::MAX / 256, vec![], 512),
        ("a sector whose end overflows", T_OUT, u64::MAX / 512, vec![1; 512], 0),
        ("a write past the end", T_OUT, SECTORS - 1, vec![1; 1024], 0),
        ("a read of half a sector", T_IN, 0, vec![], 256),
        ("a write of half a sector", T_OUT, 0, vec![1; 700], 0),
        ("a read with data from the driver", T_IN, 0, vec![1; 512], 512),
        ("a write with data for the driver", T_OUT, 0, vec![1; 512], 512),
        ("a flush with data", T_FLUSH, 0, vec![1; 512], 0),
        ("a flush with a buffer", T_FLUSH, 0, vec![], 512),
        ("a GET_ID with data from the driver", T_GET_ID, 0, vec![1; 16], 20),
        ("a GET_ID without a buffer", T_GET_ID, 0, vec![], 0),
    ];
    for (head, (what, kind, sector, out, in_len)) in cases.into_iter().enumerate() {
        let head = head as u16;
        let (data, st) = r.request(head, kind, sector, &out, in_len);
        let before = r.read_mem(data, 512);
        assert_eq!(r.answer(head, st), (1, IOERR), "{what}");
        assert!(r.unchanged(), "{what}: the disk changed");
        if in_len > 0 && out.is_empty() {
            assert_eq!(r.read_mem(data, 512), before, "{what}: data reached the driver");
        }
    }
    assert_eq!(r.blk.storage().flushes, 0);
}

#[test]
fn short_headers_get_ioerr() {
    let mut r = Rig::new(FEATURES, false);
    // 8 header bytes, then the status.
    let h = r.header(0, T_OUT, 0);
    let st = h + 0x100;
    r.d.write_chain(&r.m, 0, &[(h, 8, false), (st, 1, true)]);
    r.d.offer(&r.m, 0);
    assert_eq!(r.answer(0, st), (1, IOERR));
    // Only a status byte.
    r.d.write_chain(&r.m, 1, &[(st, 1, true)]);
    r.d.offer(&r.m, 1);
    assert_eq!(r.answer(1, st), (1, IOERR));
    // A header split 5 + 11 is fine (any layout), as are data and status
    // sharing a buffer.
    let h = r.header(2, T_IN, 4);
    let data = h + 0x1000;
    r.d.write_chain(&r.m, 2, &[(h, 5, false), (h + 5, 11, false), (data, 512, true), (data + 512, 513, true)]);
    r.d.offer(&r.m, 2);
    assert_eq!(r.answer(2, data + 1024), (1025, OK));
    assert_eq!(r.read_mem(data, 1024), &r.original[4 * 512..6 * 512]);
    assert!(r.unchanged());
}

#[test]
fn malformed_chains_get_ioerr_where_a_status_byte_is_found() {
    let mut r = Rig::new(FEATURES, false);
    // A write whose status descriptor loops back to the header: the loop
    // is found, the status byte was seen before it.
    let h = r.header(0, T_OUT, 0);
    let (data, st) = (h + 0x1000, h + 0x3000);
    r.m.write_slice(&[0x55; 512], GuestAddress(data)).unwrap();
    r.d.write_desc(&r.m, 0, h, 16, F_NEXT, 1);
    r.d.write_desc(&r.m, 1, data, 512, F_NEXT, 2);
    r.d.write_desc(&r.m, 2, st, 1, F_WRITE | F_NEXT, 0);
    r.d.offer(&r.m, 0);
    assert_eq!(r.answer(0, st), (1, IOERR));
    // A readable buffer after the status.
    r.d.write_desc(&r.m, 2, st, 1, F_WRITE | F_NEXT, 3);
    r.d.write_desc(&r.m, 3, data, 512, 0, 0);
    r.d.offer(&r.m, 0);
    assert_eq!(r.answer(0, st), (1, IOERR));
    // A next index past the table, after the status.
    r.d.write_desc(&r.m, 2, st, 1, F_WRITE | F_NEXT, QUEUE_SIZE);
    r.d.offer(&r.m, 0);
    assert_eq!(r.answer(0, st), (1, IOERR));
    // A writable buffer past guest memory after the status.
    r.d.write_desc(&r.m, 2, st, 1, F_WRITE | F_NEXT, 3);
    r.d.write_desc(&r.m, 3, MEM - 10, 512, F_WRITE, 0);
    r.d.offer(&r.m, 0);
    assert_eq!(r.answer(0, st), (1, IOERR));
    assert!(r.unchanged(), "no malformed write reached the disk");
    assert_eq!(r.blk.stats().malformed, 4);
}

#[test]
fn chains_with_no_status_byte_come_back_empty_and_ask_for_a_reset() {
    let mut r = Rig::new(FEATURES, false);
    let h = r.header(0, T_OUT, 0);
    let data = h + 0x1000;
    type Descs<'a> = &'a [(u64, u32, u16, u16)]; // address, length, flags, next
    let cases: [(&str, Descs); 5] = [
        ("data past guest memory", &[(h, 16, F_NEXT, 1), (MEM - 100, 512, F_NEXT, 2), (data, 1, F_WRITE, 0)]),
        (
            "data wrapping the address space",
            &[(h, 16, F_NEXT, 1), (u64::MAX - 100, 512, F_NEXT, 2), (data, 1, F_WRITE, 0)],
        ),
        ("a loop before any writable buffer", &[(h, 16, F_NEXT, 1), (data, 512, F_NEXT, 0)]),
        ("no writable buffer at all", &[(h, 16, F_NEXT, 1), (data, 512, 0, 0)]),
        ("a zero-length status", &[(h, 16, F_NEXT, 1), (data, 0, F_WRITE, 0)]),
    ];
    for (what, descs) in cases {
        for (i, &(addr, len, flags, next)) in descs.iter().enumerate() {
            r.d.write_desc(&r.m, i as u16, addr, len, flags, next);
        }
        r.d.offer(&r.m, 0);
        assert!(r.process(), "{what}: a reset is asked for");
        assert_eq!(r.d.take_used(&r.m), Some((0, 0)), "{what}");
        assert!(r.unchanged(), "{what}");
    }
    assert_eq!(r.blk.stats().unanswerable, 5);
}

#[test]
fn indirect_requests_need_the_feature() {
    let mut r = Rig::new(FEATURES, false);
    let h = r.header(0, T_IN, 8);
    let (table, data, st) = (h + 0x2000, h + 0x4000, h + 0x3f000);
    DriverQueue::write_desc_at(&r.m, table, 0, h, 16, F_NEXT, 1);
    DriverQueue::write_desc_at(&r.m, table, 1, data, 2048, F_NEXT | F_WRITE, 2);
    DriverQueue::write_desc_at(&r.m, table, 2, st, 1, F_WRITE, 0);
    r.d.write_desc(&r.m, 0, table, 48, F_INDIRECT, 0);
    r.d.offer(&r.m, 0);
    assert_eq!(r.answer(0, st), (2049, OK));
    assert_eq!(r.read_mem(data, 2048), &r.original[8 * 512..12 * 512]);
    // Without the feature the head itself is refused: nothing to answer on.
    let mut r2 = Rig::new(pci::F_VERSION_1, false);
    DriverQueue::write_desc_at(&r2.m, table, 0, h, 16, F_NEXT, 1);
    r2.header(0, T_IN, 8);
    DriverQueue::write_desc_at(&r2.m, table, 1, data, 2048, F_NEXT | F_WRITE, 2);
    DriverQueue::write_desc_at(&r2.m, table, 2, st, 1, F_WRITE, 0);
    r2.d.write_desc(&r2.m, 0, table, 48, F_INDIRECT, 0);
    r2.d.offer(&r2.m, 0);
    assert!(r2.process());
    assert_eq!(r2.d.take_used(&r2.m), Some((0, 0)));
}

#[test]
fn many_requests_in_flight_are_all_served_in_one_pass() {
    let mut r = Rig::new(FEATURES, false);
    let mut expect = r.original.clone();
    let mut reqs = Vec::new();
    // Each request takes descriptors 4i..4i+2.
    for i in 0..64u16 {
        let sector = (i as u64 * 31) % (SECTORS - 8);
        if i % 2 == 0 {
            let data = pattern(8 * 512, i as u32);
            expect[sector as usize * 512..sector as usize * 512 + 4096].copy_from_slice(&data);
            let (_, st) = r.request(4 * i, T_OUT, sector, &data, 0);
            reqs.push((4 * i, st, None));
        } else {
            let (data, st) = r.request(4 * i, T_IN, sector, &[], 4096);
            reqs.push((4 * i, st, Some((data, sector))));
        }
    }
    assert!(!r.process());
    // Reads see the writes offered before them (requests run in order).
    let mut disk = r.original.clone();
    for (head, st, read) in reqs {
        let (id, len) = r.d.take_used(&r.m).unwrap();
        assert_eq!(id, head as u32);
        assert_eq!(r.status(st), OK);
        match read {
            None => {
                assert_eq!(len, 1);
                let sector = (head as usize / 4 * 31) % (SECTORS as usize - 8);
                let data = pattern(4096, head as u32 / 4);
                disk[sector * 512..sector * 512 + 4096].copy_from_slice(&data);
            }
            Some((data, sector)) => {
                assert_eq!(len, 4097);
                assert_eq!(r.read_mem(data, 4096), &disk[sector as usize * 512..sector as usize * 512 + 4096]);
            }
        }
    }
    assert_eq!(r.d.take_used(&r.m), None);
    assert_eq!(r.disk(), expect.as_slice());
}

#[test]
fn big_requests_go_through_the_bounce_buffer_in_pieces() {
    let mut r = Rig::new(FEATURES, false);
    // 1 MiB - 512 written in three odd-sized pieces, then read back in two.
    let len = 1024 * 1024 - 512;
    let data = pattern(len, 5);
    let h = r.header(0, T_OUT, 1);
    let buf = h + 0x1000;
    r.m.write_slice(&data, GuestAddress(buf)).unwrap();
    let st = 0x3000000;
    r.d.write_chain(
        &r.m,
        0,
        &[
            (h, 16, false),
            (buf, 1000, false),
            (buf + 1000, 300_000, false),
            (buf + 301_000, len as u32 - 301_000, false),
            (st, 1, true),
        ],
    );
    r.d.offer(&r.m, 0);
    assert_eq!(r.answer(0, st), (1, OK));
    assert_eq!(&r.disk()[512..512 + len], data.as_slice());
    let h = r.header(5, T_IN, 1);
    let back = 0x2000000;
    r.d.write_chain(&r.m, 5, &[(h, 16, false), (back, 77_777, true), (back + 77_777, len as u32 - 77_777 + 1, true)]);
    r.d.offer(&r.m, 5);
    assert_eq!(r.answer(5, back + len as u64), (len as u32 + 1, OK));
    assert_eq!(r.read_mem(back, len), data);
}

#[test]
fn backing_store_errors_and_read_only_disks_get_ioerr() {
    let mut r = Rig::new(FEATURES, false);
    r.blk = {
        let mut disk = r.blk.storage().clone();
        disk.fail = true;
        let mut b = Block::new(disk, false, "x");
        b.activate(FEATURES).unwrap();
        b
    };
    for (head, kind, out, in_len) in
        [(0u16, T_IN, vec![], 512u32), (1, T_OUT, vec![1; 512], 0), (2, T_FLUSH, vec![], 0)]
    {
        let (_, st) = r.request(head, kind, 0, &out, in_len);
        assert_eq!(r.answer(head, st), (1, IOERR), "type {kind}");
    }
    let mut r = Rig::new(FEATURES, true);
    assert_ne!(r.blk.features() & 1 << 5, 0, "VIRTIO_BLK_F_RO offered");
    let (_, st) = r.request(0, T_OUT, 0, &[1; 512], 0);
    assert_eq!(r.answer(0, st), (1, IOERR));
    assert!(r.unchanged());
    let (_, st) = r.request(1, T_IN, 0, &[], 512);
    assert_eq!(r.answer(1, st), (513, OK), "reads still work");
}

#[test]
fn a_file_disk_through_the_pci_transport() {
    let path = std::env::temp_dir().join(format!("virtio-blk-test-{}.img", std::process::id()));
    let image = pattern(SECTORS as usize * 512, 3);
    std::fs::write(&path, &image).unwrap();
    let file = std::fs::OpenOptions::new().read(true).write(true).open(&path).unwrap();
    let blk = Block::new(FileStorage::new(file).unwrap(), false, "file-disk");
    let m = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), MEM as usize)]).unwrap();
    let mut t = VirtioPci::new(blk, 0, 0x40, 0, 0);
    // The probe: reset, ACKNOWLEDGE | DRIVER, features, FEATURES_OK.
    t.bar_write(&m, 0x14, 1, 0);
    t.bar_write(&m, 0x14, 1, 3);
    let offered = {
        t.bar_write(&m, 0x00, 4, 0);
        let lo = t.bar_read(0x04, 4);
        t.bar_write(&m, 0x00, 4, 1);
        lo | t.bar_read(0x04, 4) << 32
    };
    let accept = offered & (pci::F_VERSION_1 | pci::F_EVENT_IDX | pci::F_INDIRECT_DESC | 1 << 9);
    for sel in 0..2 {
        t.bar_write(&m, 0x08, 4, sel);
        t.bar_write(&m, 0x0c, 4, (accept >> (32 * sel)) & 0xffff_ffff);
    }
    t.bar_write(&m, 0x14, 1, 11);
    assert_eq!(t.status(), 11);
    assert_eq!(t.bar_read(pci::DEVICE_OFFSET, 8), SECTORS, "capacity");
    assert_eq!(t.bar_read(pci::DEVICE_OFFSET + 12, 4), QUEUE_SIZE as u64 - 2, "seg_max");
    assert_eq!(t.bar_read(pci::DEVICE_OFFSET + 20, 4), 512, "blk_size");
    let mut d = DriverQueue::new(0x10000, QUEUE_SIZE);
    t.bar_write(&m, 0x16, 2, 0);
    assert_eq!(t.bar_read(0x18, 2), QUEUE_SIZE as u64);
    t.bar_write(&m, 0x20, 8, d.desc);
    t.bar_write(&m, 0x28, 8, d.avail);
    t.bar_write(&m, 0x30, 8, d.used);
    t.bar_write(&m, 0x1c, 2, 1);
    t.bar_write(&m, 0x14, 1, 15);
    assert_eq!(t.status(), 15);
    assert_eq!(t.device().device_type(), 2);
    // Write 4 sectors at 100, flush, read them back; interrupts by used_event.
    let data = pattern(2048, 11);
    let (h, buf, st) = (0x100000u64, 0x101000u64, 0x1ff000u64);
    let mut hdr = [0u8; 16];
    hdr[0] = 1;
    hdr[8] = 100;
    m.write_slice(&hdr, GuestAddress(h)).unwrap();
    m.write_slice(&data, GuestAddress(buf)).unwrap();
    d.write_chain(&m, 0, &[(h, 16, false), (buf, 2048, false), (st, 1, true)]);
    let (h2, st2) = (0x110000u64, 0x1fe000u64);
    let mut f = [0u8; 16];
    f[0] = 4;
    m.write_slice(&f, GuestAddress(h2)).unwrap();
    d.write_chain(&m, 3, &[(h2, 16, false), (st2, 1, true)]);
    d.set_used_event(&m, 1); // interrupt once both are back
    d.offer(&m, 0);
    d.offer(&m, 3);
    assert_eq!(t.bar_write(&m, pci::NOTIFY_OFFSET, 2, 0), Outcome::Notify(0));
    assert_eq!(t.process(&m, 0), Some(Interrupt::Intx));
    assert_eq!((d.take_used(&m), d.take_used(&m)), (Some((0, 1)), Some((3, 1))));
    assert_eq!(m.read_obj::<u8>(GuestAddress(st)).unwrap(), 0);
    assert_eq!(m.read_obj::<u8>(GuestAddress(st2)).unwrap(), 0);
    let on_disk = std::fs::read(&path).unwrap();
    assert_eq!(&on_disk[100 * 512..104 * 512], data.as_slice());
    assert_eq!(&on_disk[..100 * 512], &image[..100 * 512]);
    assert_eq!(&on_disk[104 * 512..], &image[104 * 512..]);
    assert_eq!(t.device().stats().flushes, 1);
    assert_eq!(t.status() & status::DEVICE_NEEDS_RESET, 0);
    std::fs::remove_file(&path).unwrap();
}
