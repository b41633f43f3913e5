//! Guest memory that stays mapped: the guest's memory in 64 KiB chunks
//! ([`GuestChunk`]), each mapped once by the backend and kept until the
//! guest's memory map changes (Xen sends `IOREQ_TYPE_INVALIDATE`) or the
//! cache is full, rather than a mapping per copy. [`Server::read_guest`]
//! and [`Server::write_guest`] copy through the chunks; with the feature
//! `vm-memory`, [`GuestRam`](crate::GuestRam) hands them to vm-memory's
//! traits.
//!
//! [`Server::read_guest`]: crate::Server::read_guest
//! [`Server::write_guest`]: crate::Server::write_guest

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use xendevicemodel::os::Mapping;
use xendevicemodel::{DomId, Errno};

/// Frames per chunk: 64 KiB of guest memory per mapping.
pub(crate) const CHUNK_PAGES: usize = 16;
/// Bytes per chunk.
pub(crate) const CHUNK_BYTES: u64 = (CHUNK_PAGES * crate::abi::PAGE_SIZE) as u64;
/// Chunks kept at most (64 MiB of mappings); a full cache starts afresh.
pub(crate) const MAX_CHUNKS: usize = 1024;

/// Chunk `n` of a guest's memory, mapped: guest-physical addresses
/// `n * GuestChunk::BYTES ..` up to the next chunk, at `offset` in a
/// mapping (a privcmd mapping of 16 guest frames on Xen, a window of the
/// simulated RAM in a simulator). Cloning is cheap; the memory stays
/// mapped while a clone lives. A frame the hypervisor would not map makes
/// every access touching it fail with its errno, never fault.
#[derive(Clone, Debug)]
pub struct GuestChunk {
    n: u64,
    map: Arc<Mapping>,
    offset: usize,
}

impl GuestChunk {
    /// Bytes per chunk (64 KiB).
    pub const BYTES: u64 = CHUNK_BYTES;

    /// Chunk `n` at `offset` in `map`; `EINVAL` unless `BYTES` fit there
    /// at a page boundary.
    pub fn new(n: u64, map: Arc<Mapping>, offset: usize) -> Result<Self> {
        let fits = offset % crate::abi::PAGE_SIZE == 0
            && offset.checked_add(CHUNK_BYTES as usize).is_some_and(|end| end <= map.len())
            && n.checked_mul(CHUNK_BYTES).is_some();
        if !fits {
            return Err(Error::Os { what: "guest memory chunk", errno: Errno::EINVAL });
        }
        Ok(GuestChunk { n, map, offset })
    }

    /// Its number (guest-physical address / [`BYTES`](Self::BYTES)).
    pub fn number(&self) -> u64 {
        self.n
    }

    /// The guest-physical address it starts at.
    pub fn gpa(&self) -> u64 {
        self.n * CHUNK_BYTES
    }

    /// Copies `buf.len()` bytes from `offset` in the chunk (volatile: the
    /// guest may write them meanwhile).
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> Result<()> {
        self.check(offset, buf.len())?;
        self.map.read(self.offset + offset, buf).map_err(|errno| Error::Os { what: "guest memory", errno })
    }

    /// Copies `buf` to `offset` in the chunk (volatile).
    pub fn write(&self, offset: usize, buf: &[u8]) -> Result<()> {
        self.check(offset, buf.len())?;
        self.map.write(self.offset + offset, buf).map_err(|errno| Error::Os { what: "guest memory", errno })
    }

    /// Whether `len` bytes at `offset` are inside the chunk and mapped:
    /// `EFAULT` if outside, the frame's errno if one could not be mapped.
    pub fn check(&self, offset: usize, len: usize) -> Result<()> {
        let end = offset.checked_add(len).filter(|&end| end <= CHUNK_BYTES as usize);
        let end = end.ok_or(Error::Os { what: "guest memory", errno: Errno::EFAULT })?;
        let page = crate::abi::PAGE_SIZE;
        let mut pages = (self.offset + offset) / page..(self.offset + end).div_ceil(page);
        match pages.find_map(|p| self.map.page_error(p)) {
            Some(errno) => Err(Error::Os { what: "guest memory", errno }),
            None => Ok(()),
        }
    }

    /// `len` bytes at `offset` as a `VolatileSlice` borrowing the chunk.
    #[cfg(feature = "vm-memory")]
    pub(crate) fn slice(&self, offset: usize, len: usize) -> Result<vm_memory::VolatileSlice<'_>> {
        self.check(offset, len)?;
        self.map.volatile_slice(self.offset + offset, len).map_err(|errno| Error::Os { what: "guest memory", errno })
    }
}

/// Splits `len` bytes at `gpa` into pieces within chunks, calling
/// `each(chunk number, offset in the chunk, offset in the range, bytes)`
/// in order; stops at the first error. A range that wraps the address
/// space is `EFAULT`.
pub(crate) fn split(gpa: u64, len: usize, mut each: impl FnMut(u64, usize, usize, usize) -> Result<()>) -> Result<()> {
    if gpa.checked_add(len as u64).is_none() {
        return Err(Error::Os { what: "guest memory", errno: Errno::EFAULT });
    }
    let mut done = 0usize;
    while done < len {
        let at = gpa + done as u64;
        let (n, off) = (at / CHUNK_BYTES, (at % CHUNK_BYTES) as usize);
        let piece = (CHUNK_BYTES as usize - off).min(len - done);
        each(n, off, done, piece)?;
        done += piece;
    }
    Ok(())
}

/// Mapped chunks of guest memory, by domain and chunk number. Generic over
/// what a chunk is, so that its bookkeeping is tested without Xen.
pub(crate) struct Cache<M> {
    chunks: Mutex<HashMap<(DomId, u64), M>>,
    /// Chunks mapped so far (for tests and statistics).
    mapped: AtomicU64,
}

impl<M> core::fmt::Debug for Cache<M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Cache {{ cached: {}, mapped: {} }}", lock(&self.chunks).len(), self.mapped.load(Relaxed))
    }
}

impl<M> Default for Cache<M> {
    fn default() -> Self {
        Cache { chunks: Mutex::new(HashMap::new()), mapped: AtomicU64::new(0) }
    }
}

impl<M: Clone> Cache<M> {
    /// Chunk `n` of `domid`, mapped with `map` unless cached.
    pub(crate) fn get(&self, domid: DomId, n: u64, map: impl FnOnce() -> Result<M>) -> Result<M> {
        if let Some(c) = lock(&self.chunks).get(&(domid, n)) {
            return Ok(c.clone());
        }
        // Mapped outside the lock: another thread may map the same chunk
        // meanwhile; then one of the two mappings is kept.
        let c = map()?;
        self.mapped.fetch_add(1, Relaxed);
        let mut chunks = lock(&self.chunks);
        if chunks.len() >= MAX_CHUNKS {
            chunks.clear();
        }
        Ok(chunks.entry((domid, n)).or_insert(c).clone())
    }

    /// Drops every chunk (copies in progress keep the ones they hold).
    pub(crate) fn clear(&self) {
        lock(&self.chunks).clear();
    }

    /// How many chunks were mapped so far.
    pub(crate) fn mapped(&self) -> u64 {
        self.mapped.load(Relaxed)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A chunk of fake guest memory: byte i of chunk n is (n + i) as u8.
    fn fake(n: u64) -> Result<Arc<Vec<u8>>> {
        if n == 7 {
            return Err(Error::Os { what: "map guest memory", errno: Errno::EFAULT });
        }
        Ok(Arc::new((0..CHUNK_BYTES).map(|i| (n + i) as u8).collect()))
    }

    fn read(c: &Cache<Arc<Vec<u8>>>, gpa: u64, len: usize, maps: &Cell<u32>) -> Result<Vec<u8>> {
        let mut out = vec![0; len];
        split(gpa, len, |n, off, done, len| {
            let m = c.get(1, n, || {
                maps.set(maps.get() + 1);
                fake(n)
            })?;
            out[done..done + len].copy_from_slice(&m[off..off + len]);
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn chunks_are_mapped_once_and_copies_cross_them() {
        let c = Cache::default();
        let maps = Cell::new(0);
        // 100 bytes across the boundary of chunks 2 and 3.
        let at = 3 * CHUNK_BYTES - 40;
        let want: Vec<u8> =
            (0..100u64).map(|i| if i < 40 { (2 + CHUNK_BYTES - 40 + i) as u8 } else { (3 + i - 40) as u8 }).collect();
        assert_eq!(read(&c, at, 100, &maps).unwrap(), want);
        assert_eq!(maps.get(), 2);
        for _ in 0..1000 {
            assert_eq!(read(&c, at, 100, &maps).unwrap(), want);
        }
        assert_eq!((maps.get(), c.mapped()), (2, 2), "copies from cached chunks mapped again");
        c.clear();
        read(&c, at, 1, &maps).unwrap();
        assert_eq!(maps.get(), 3, "a cleared cache maps again");
    }

    #[test]
    fn failures_and_bounds() {
        let c = Cache::default();
        let maps = Cell::new(0);
        assert!(read(&c, 7 * CHUNK_BYTES + 5, 4, &maps).is_err(), "an unmappable chunk");
        assert!(read(&c, u64::MAX - 2, 8, &maps).is_err(), "a range that wraps");
        assert_eq!(read(&c, 0, 0, &maps).unwrap(), Vec::<u8>::new());
        for n in 0..(MAX_CHUNKS as u64 + 10) {
            read(&c, n * CHUNK_BYTES + (n == 7) as u64 * CHUNK_BYTES, 1, &maps).unwrap();
        }
        assert!(lock(&c.chunks).len() <= MAX_CHUNKS, "the cache grew past its bound");
    }

    #[test]
    fn a_chunk_checks_its_bounds() {
        let ram = Arc::new(Mapping::anonymous(2 * CHUNK_PAGES).unwrap());
        assert!(GuestChunk::new(0, ram.clone(), 4096 + 1).is_err(), "an offset off a page boundary");
        assert!(GuestChunk::new(0, ram.clone(), CHUNK_BYTES as usize + 4096).is_err(), "past the mapping");
        let c = GuestChunk::new(5, ram.clone(), CHUNK_BYTES as usize).unwrap();
        assert_eq!((c.number(), c.gpa()), (5, 5 * CHUNK_BYTES));
        c.write(CHUNK_BYTES as usize - 3, &[1, 2, 3]).unwrap();
        let mut b = [0; 3];
        c.read(CHUNK_BYTES as usize - 3, &mut b).unwrap();
        assert_eq!(b, [1, 2, 3]);
        let mut whole = [0; 3];
        ram.read(2 * CHUNK_BYTES as usize - 3, &mut whole).unwrap();
        assert_eq!(whole, [1, 2, 3], "the chunk is a window of the mapping at its offset");
        assert!(c.read(CHUNK_BYTES as usize - 2, &mut b).is_err(), "a read past the chunk");
        assert!(c.write(usize::MAX, &b).is_err(), "an offset that wraps");
        assert!(c.check(CHUNK_BYTES as usize, 0).is_ok() && c.check(CHUNK_BYTES as usize, 1).is_err());
    }
}
