//! Coverage-guided fuzzing (libFuzzer) of what a guest can put in front of
//! the virtio-blk device: an arbitrary descriptor table (any addresses,
//! lengths, flags, next indexes, indirect tables), an arbitrary available
//! ring (index and heads) and arbitrary bytes where the buffers are (request
//! headers, data), with or without INDIRECT_DESC and EVENT_IDX, on a
//! writable or read-only disk.
//!
//! What must hold after every request, besides not panicking:
//! - guest memory changed only inside the served chains' writable buffers
//!   and the used ring (its flags, entries, index and avail_event);
//! - a chain that was answered has a status of OK, IOERR or UNSUPP in its
//!   last writable byte, and a used length of at least 1 and at most its
//!   writable length; a malformed chain is answered IOERR with length 1;
//!   an unanswerable one comes back with length 0;
//! - the disk changed only through a write answered OK, and only inside the
//!   sectors its header named; a refused write changed nothing;
//! - the used ring holds exactly the chains the device took, in order.
#![no_main]

use std::io;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use virtio_blk::{Block, Storage};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use xendevicemodel_virtio::pci::{F_EVENT_IDX, F_INDIRECT_DESC, F_VERSION_1};
use xendevicemodel_virtio::{SplitQueue, VirtioDevice};

const MEM: usize = 0x4_0000; // 256 KiB of guest memory
const DESC: u64 = 0x0;
const AVAIL: u64 = 0x1000;
const USED: u64 = 0x2000;
const BUFS: u64 = 0x3000;
const DISK: usize = 64 * 1024;

/// A disk in memory that records every write it gets (offset, length).
struct MemDisk {
    data: Vec<u8>,
    fail: bool,
    writes: Vec<(u64, usize)>,
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
        self.writes.push((offset, buf.len()));
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        if self.fail {
            Err(io::Error::other("injected"))
        } else {
            Ok(())
        }
    }
}

fn snapshot(m: &GuestMemoryMmap) -> Vec<u8> {
    let mut v = vec![0u8; MEM];
    m.read_slice(&mut v, GuestAddress(0)).unwrap();
    v
}

fuzz_target!(|input: &[u8]| {
    let Some((&[flags, size_log, pending], rest)) = input.split_first_chunk::<3>() else {
        return;
    };
    let size = 1u16 << (size_log % 9); // 1 ..= 256
    let features =
        F_VERSION_1 | if flags & 1 != 0 { F_INDIRECT_DESC } else { 0 } | if flags & 2 != 0 { F_EVENT_IDX } else { 0 };
    let read_only = flags & 4 != 0;
    // One mapping for every input, zeroed each time (an mmap per input
    // costs more than the device's work).
    static MEMORY: OnceLock<GuestMemoryMmap> = OnceLock::new();
    let m = MEMORY.get_or_init(|| GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEM)]).unwrap());
    m.write_slice(&vec![0u8; MEM], GuestAddress(0)).unwrap();
    // The table, then the available ring's heads, then the buffer area.
    let table_len = (size as usize * 16).min(rest.len());
    m.write_slice(&rest[..table_len], GuestAddress(DESC)).unwrap();
    let rest = &rest[table_len..];
    let heads_len = (2 * size as usize).min(rest.len());
    m.write_slice(&rest[..heads_len], GuestAddress(AVAIL + 4)).unwrap();
    let rest = &rest[heads_len..];
    let n = rest.len().min(MEM - BUFS as usize);
    m.write_slice(&rest[..n], GuestAddress(BUFS)).unwrap();
    // The available index: a few entries, or anything (flags bit 3).
    let idx =
        if flags & 8 != 0 { u16::from(pending) << 8 | u16::from(pending) } else { u16::from(pending) % (size + 1) };
    m.write_obj(idx, GuestAddress(AVAIL + 2)).unwrap();

    static DISK_IMAGE: OnceLock<Vec<u8>> = OnceLock::new();
    let disk = DISK_IMAGE.get_or_init(|| (0..DISK).map(|i| (i * 7 + i / 512) as u8).collect());
    let mut blk =
        Block::new(MemDisk { data: disk.clone(), fail: flags & 16 != 0, writes: Vec::new() }, read_only, "fuzz");
    blk.activate(features).unwrap();
    let mut q = SplitQueue::new(256);
    q.size = size;
    q.desc_table = DESC;
    q.avail_ring = AVAIL;
    q.used_ring = USED;
    q.enable(m, features & F_EVENT_IDX != 0).unwrap();

    let before = snapshot(m);
    let mut writable: Vec<(u64, u64)> = Vec::new();
    let mut served: Vec<(u16, u32)> = Vec::new();
    let indirect = features & F_INDIRECT_DESC != 0;
    let result = q.drain(m, indirect, |chain| {
        let mut header = [0u8; 16];
        let has_header = chain.read_at(m, 0, &mut header).is_ok();
        let writes_before = blk.storage().writes.len();
        let answer = blk.serve(m, chain);
        writable.extend(chain.segments.iter().filter(|s| s.writable).map(|s| (s.addr, s.addr + s.len as u64)));
        let len = answer.unwrap_or(0);
        served.push((chain.head, len));
        let status = chain.last_writable_byte().map(|at| m.read_obj::<u8>(GuestAddress(at)).unwrap());
        match answer {
            None => assert!(chain.last_writable_byte().is_none(), "a chain with a status byte went unanswered"),
            Some(len) => {
                let st = status.unwrap();
                assert!(st <= 2, "status {st}");
                assert!(
                    len >= 1 && len as u64 <= chain.writable_len(),
                    "used length {len} of {}",
                    chain.writable_len()
                );
                if chain.error.is_some() {
                    assert_eq!((st, len), (1, 1), "malformed chain {:?}", chain.error);
                }
            }
        }
        let writes = &blk.storage().writes[writes_before..];
        if !writes.is_empty() {
            assert_eq!(status, Some(0), "the disk was written, but the request was not answered OK");
            assert!(has_header && u32::from_le_bytes(header[0..4].try_into().unwrap()) == 1, "written by a non-write");
            assert!(!read_only);
            let start = u64::from_le_bytes(header[8..16].try_into().unwrap()) * 512;
            let end = start + chain.readable_len() - 16;
            for &(off, n) in writes {
                assert!(off >= start && off + n as u64 <= end, "a write at {off}+{n} outside {start}..{end}");
            }
        }
        len
    });
    // The used ring: every chain taken, in order, with its length.
    let used_idx: u16 = m.read_obj(GuestAddress(USED + 2)).unwrap();
    assert_eq!(used_idx as usize, served.len());
    if result.is_ok() {
        assert_eq!(q.next_avail(), idx, "a drain that succeeded took everything");
    }
    if served.len() <= size as usize {
        for (i, &(head, len)) in served.iter().enumerate() {
            let at = USED + 4 + 8 * i as u64;
            let id: u32 = m.read_obj(GuestAddress(at)).unwrap();
            let l: u32 = m.read_obj(GuestAddress(at + 4)).unwrap();
            // Unless a later chain's writable buffer covers the used ring.
            if !writable.iter().any(|&(s, e)| s < at + 8 && e > at) {
                assert_eq!((id, l), (head as u32, len), "used entry {i}");
            }
        }
    }
    // Guest memory: changed only in writable buffers and the used ring.
    let after = snapshot(m);
    let used_end = USED + 6 + 8 * size as u64;
    // Compared a chunk at a time: only differing chunks are looked at closely.
    for (c, (a, b)) in before.chunks(256).zip(after.chunks(256)).enumerate() {
        if a == b {
            continue;
        }
        for (j, (x, y)) in a.iter().zip(b.iter()).enumerate() {
            let i = (c * 256 + j) as u64;
            if x != y && !(USED..used_end).contains(&i) {
                assert!(
                    writable.iter().any(|&(s, e)| i >= s && i < e),
                    "guest byte {i:#x} changed outside every writable buffer"
                );
            }
        }
    }
});
