//! Guest memory as rust-vmm's vm-memory sees it (feature `vm-memory`):
//! [`GuestRam`] implements `vm_memory::GuestMemory`, so code written for
//! vm-memory (virtqueues, descriptor chains, `Bytes` reads and writes,
//! atomic loads and stores) runs on a Xen guest's memory unchanged. Each
//! [`GuestChunk`] is also a `GuestMemoryRegion`.
//!
//! A `GuestRam` hands out `VolatileSlice`s that borrow it, so the chunks
//! they point into must stay mapped as long as it lives: it pins (keeps a
//! clone of) every chunk it touched, in an arena that only grows, and the
//! server's cache may drop or replace its own entries meanwhile. Take one
//! per piece of work (a queue notification), not one for the device's
//! life: chunks pinned before an `IOREQ_TYPE_INVALIDATE` still show the
//! memory as it was mapped then.

use crate::device::Server;
use crate::guest::{self, GuestChunk};
use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::iter::FusedIterator;
use vm_memory::bitmap::BS;
use vm_memory::guest_memory::{Error as MemError, GuestMemorySliceIterator, Result as MemResult};
use vm_memory::{
    Address, GuestAddress, GuestMemory, GuestMemoryRegion, GuestMemoryRegionBytes, GuestRegionCollection, GuestUsize,
    MemoryRegionAddress, Permissions, VolatileSlice,
};

/// A guest's memory through a [`Server`], for vm-memory's traits (see the
/// module's documentation). `Send`, not `Sync`: one thread's view.
#[derive(Debug)]
pub struct GuestRam {
    server: Server,
    pins: Pins,
}

impl Server {
    /// The guest's memory as a `vm_memory::GuestMemory` (feature `vm-memory`).
    pub fn guest_ram(&self) -> GuestRam {
        GuestRam { server: self.clone(), pins: Pins::default() }
    }
}

impl GuestRam {
    /// Chunk `n`, pinned for this view's life.
    fn chunk(&self, n: u64) -> crate::Result<&GuestChunk> {
        self.pins.get(n, || self.server.backend.guest_chunk(self.server.domid, n))
    }

    /// How many chunks this view has pinned.
    pub fn pinned(&self) -> usize {
        self.pins.index.borrow().len()
    }
}

impl GuestMemory for GuestRam {
    type PhysicalMemory = GuestRegionCollection<GuestChunk>;
    type Bitmap = ();

    fn check_range(&self, addr: GuestAddress, count: usize, _access: Permissions) -> bool {
        // Foreign mappings are read-write: only whether the frames are there counts.
        guest::split(addr.raw_value(), count, |n, off, _, len| self.chunk(n)?.check(off, len)).is_ok()
    }

    fn get_slices(
        &self,
        addr: GuestAddress,
        count: usize,
        _access: Permissions,
    ) -> MemResult<impl GuestMemorySliceIterator<'_, BS<'_, ()>>> {
        if addr.checked_add(count as u64).is_none() {
            return Err(MemError::GuestAddressOverflow);
        }
        Ok(Slices { ram: self, at: addr.raw_value(), left: count })
    }
}

/// The pieces of one range, one per chunk, each pinned as it is reached.
struct Slices<'a> {
    ram: &'a GuestRam,
    at: u64,
    /// Bytes still to go; 0 after the end or an error.
    left: usize,
}

impl<'a> Iterator for Slices<'a> {
    type Item = MemResult<VolatileSlice<'a, ()>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let (n, off) = (self.at / guest::CHUNK_BYTES, (self.at % guest::CHUNK_BYTES) as usize);
        let len = (guest::CHUNK_BYTES as usize - off).min(self.left);
        match self.ram.chunk(n).and_then(|c| c.slice(off, len)) {
            Ok(s) => {
                self.at += len as u64;
                self.left -= len;
                Some(Ok(s))
            }
            Err(_) => {
                // No items after an error (vm-memory's contract).
                self.left = 0;
                Some(Err(MemError::InvalidGuestAddress(GuestAddress(self.at))))
            }
        }
    }
}

impl FusedIterator for Slices<'_> {}
impl<'a> GuestMemorySliceIterator<'a, ()> for Slices<'a> {}

impl GuestMemoryRegion for GuestChunk {
    type B = ();

    fn len(&self) -> GuestUsize {
        guest::CHUNK_BYTES
    }

    fn start_addr(&self) -> GuestAddress {
        GuestAddress(self.gpa())
    }

    fn bitmap(&self) -> BS<'_, ()> {}

    fn get_slice(&self, offset: MemoryRegionAddress, count: usize) -> MemResult<VolatileSlice<'_, BS<'_, ()>>> {
        let off = usize::try_from(offset.raw_value()).map_err(|_| MemError::InvalidBackendAddress)?;
        self.slice(off, count)
            .map_err(|_| MemError::InvalidGuestAddress(GuestAddress(self.gpa()).unchecked_add(offset.raw_value())))
    }
}

impl GuestMemoryRegionBytes for GuestChunk {}

/// Chunks per arena block.
const BLOCK: usize = 32;

/// An arena of pinned chunks that only grows, built from `OnceCell`s so
/// that a chunk handed out by `&self` stays where it is for `self`'s life
/// (no `unsafe`: a filled cell is never emptied, a block never moves).
#[derive(Debug)]
struct Block {
    slots: [OnceCell<GuestChunk>; BLOCK],
    next: OnceCell<Box<Block>>,
}

impl Default for Block {
    fn default() -> Self {
        Block { slots: std::array::from_fn(|_| OnceCell::new()), next: OnceCell::new() }
    }
}

#[derive(Debug, Default)]
struct Pins {
    first: Block,
    /// Chunk number -> slot (slots are filled in order).
    index: RefCell<HashMap<u64, usize>>,
}

impl Pins {
    /// Chunk `n`, from `fetch` the first time.
    fn get(&self, n: u64, fetch: impl FnOnce() -> crate::Result<GuestChunk>) -> crate::Result<&GuestChunk> {
        let found = self.index.borrow().get(&n).copied();
        if let Some(chunk) = found.and_then(|k| self.slot(k).get()) {
            return Ok(chunk);
        }
        let chunk = fetch()?;
        // Slots are filled in order: slot k is fresh.
        let k = self.index.borrow().len();
        let pinned = self.slot(k).get_or_init(|| chunk);
        self.index.borrow_mut().insert(n, k);
        Ok(pinned)
    }

    fn slot(&self, k: usize) -> &OnceCell<GuestChunk> {
        let mut b = &self.first;
        for _ in 0..k / BLOCK {
            b = b.next.get_or_init(Box::default);
        }
        &b.slots[k % BLOCK]
    }
}
