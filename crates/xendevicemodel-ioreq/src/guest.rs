//! Guest memory that stays mapped: a cache of chunks of guest frames, each
//! mapped once and kept until the guest's memory map changes (Xen sends
//! `IOREQ_TYPE_INVALIDATE`) or the cache is full, rather than a mapping
//! per copy. Generic over what a chunk is, so that its bookkeeping is
//! tested without Xen.

use crate::error::{Error, Result};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use xendevicemodel::{DomId, Errno};

/// Frames per chunk: 64 KiB of guest memory per mapping.
pub(crate) const CHUNK_PAGES: usize = 16;
/// Bytes per chunk.
pub(crate) const CHUNK_BYTES: u64 = (CHUNK_PAGES * crate::abi::PAGE_SIZE) as u64;
/// Chunks kept at most (64 MiB of mappings); a full cache starts afresh.
pub(crate) const MAX_CHUNKS: usize = 1024;

/// Mapped chunks of guest memory, by domain and chunk number (gpa / 64 KiB).
pub(crate) struct Cache<M> {
    chunks: Mutex<HashMap<(DomId, u64), Arc<M>>>,
    /// Chunks mapped so far (for tests and statistics).
    mapped: AtomicU64,
}

impl<M> core::fmt::Debug for Cache<M> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Cache {{ cached: {}, mapped: {} }}", lock(&self.chunks).len(), self.mapped())
    }
}

impl<M> Default for Cache<M> {
    fn default() -> Self {
        Cache { chunks: Mutex::new(HashMap::new()), mapped: AtomicU64::new(0) }
    }
}

impl<M> Cache<M> {
    /// Calls `each(chunk, offset in it, offset in the copy, bytes)` for the
    /// pieces of `len` bytes at `gpa`, mapping chunks with `map(domid,
    /// chunk number)` where they are not cached yet. Stops at the first
    /// error; a range that wraps the address space is `EFAULT`.
    pub(crate) fn copy(
        &self,
        domid: DomId,
        gpa: u64,
        len: usize,
        map: impl Fn(DomId, u64) -> Result<M>,
        mut each: impl FnMut(&M, usize, usize, usize) -> Result<()>,
    ) -> Result<()> {
        if gpa.checked_add(len as u64).is_none() {
            return Err(Error::Os { what: "guest memory", errno: Errno::EFAULT });
        }
        let mut done = 0usize;
        while done < len {
            let at = gpa + done as u64;
            let (n, off) = (at / CHUNK_BYTES, (at % CHUNK_BYTES) as usize);
            let piece = (CHUNK_BYTES as usize - off).min(len - done);
            let chunk = self.chunk(domid, n, &map)?;
            each(&chunk, off, done, piece)?;
            done += piece;
        }
        Ok(())
    }

    fn chunk(&self, domid: DomId, n: u64, map: &impl Fn(DomId, u64) -> Result<M>) -> Result<Arc<M>> {
        if let Some(c) = lock(&self.chunks).get(&(domid, n)) {
            return Ok(c.clone());
        }
        // Mapped outside the lock: another thread may map the same chunk
        // meanwhile; then one of the two mappings is kept.
        let c = Arc::new(map(domid, n)?);
        self.mapped.fetch_add(1, Relaxed);
        let mut chunks = lock(&self.chunks);
        if chunks.len() >= MAX_CHUNKS {
            chunks.clear();
        }
        Ok(chunks.entry((domid, n)).or_insert(c).clone())
    }

    /// Drops every chunk (a copy in progress keeps the one it holds).
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
    fn fake(_: DomId, n: u64) -> Result<Vec<u8>> {
        if n == 7 {
            return Err(Error::Os { what: "map guest memory", errno: Errno::EFAULT });
        }
        Ok((0..CHUNK_BYTES).map(|i| (n + i) as u8).collect())
    }

    fn read(c: &Cache<Vec<u8>>, gpa: u64, len: usize, maps: &Cell<u32>) -> Result<Vec<u8>> {
        let mut out = vec![0; len];
        let map = |d, n| {
            maps.set(maps.get() + 1);
            fake(d, n)
        };
        c.copy(1, gpa, len, map, |m, off, done, n| {
            out[done..done + n].copy_from_slice(&m[off..off + n]);
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
}
