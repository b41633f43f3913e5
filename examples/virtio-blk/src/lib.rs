//! A virtio-blk device (virtio 1.2, 5.2) in safe Rust, backed by a file or a
//! block device, served by the `xendevicemodel-virtio` transport over any
//! guest memory that implements vm-memory's `GuestMemory`.
//!
//! Requests: IN (read), OUT (write), FLUSH (`fdatasync`) and GET_ID (the
//! serial). Everything else is answered VIRTIO_BLK_S_UNSUPP; a malformed
//! request VIRTIO_BLK_S_IOERR, checked in full before the backing store is
//! touched, so that a write that is refused writes nothing:
//!
//! - a chain the walk stopped early (a loop, an index past the table, a
//!   buffer outside guest memory, a bad indirect table, a readable buffer
//!   after a writable one, see `xendevicemodel_virtio::chain`): the status
//!   goes into the last writable byte before the error;
//! - a header shorter than 16 bytes; data not a multiple of 512 bytes; data
//!   in the wrong direction (a read with readable data, a write with
//!   writable data, a flush or GET_ID with either); a sector range past the
//!   end of the disk (overflow checked); a write to a read-only disk;
//! - an I/O error of the backing store.
//!
//! A chain without a single writable byte cannot be answered: it goes back
//! with length 0 and the device asks the driver for a reset
//! (DEVICE_NEEDS_RESET). Data moves through a bounce buffer of at most
//! 64 KiB, whatever the request's size. Every request the driver made
//! available is served when it notifies (several in flight), and returned
//! on the used ring with the number of bytes written into it.
//!
//! [`pci_function`] puts the device on the toolkit's bus as a virtio-pci
//! function (MSI-X, INTx fallback); the `virtio-blk-dm` binary
//! (src/main.rs) serves it to a Xen guest.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use std::time::{Duration, Instant};
use virtio_bindings::virtio_blk::*;
use vm_memory::{Bytes, GuestAddress, GuestMemory};
use xendevicemodel_ioreq::{Bus, Exit, Sbdf, Session};
use xendevicemodel_virtio::ioreq::PciTransport;
use xendevicemodel_virtio::pci::{F_EVENT_IDX, F_INDIRECT_DESC, F_VERSION_1};
use xendevicemodel_virtio::{Chain, DeviceError, SplitQueue, VirtioDevice};

/// Bytes per sector, whatever the disk's block size.
pub const SECTOR: u64 = 512;
/// The one request queue's size.
pub const QUEUE_SIZE: u16 = 256;
/// Bytes in a GET_ID answer.
pub const ID_BYTES: usize = VIRTIO_BLK_ID_BYTES as usize;
/// The PCI class code of the function: mass storage, SCSI (what QEMU's
/// virtio-blk-pci says; Linux's virtio_pci binds by vendor and device id).
pub const CLASS: u32 = 0x010000;
const HEADER: u64 = 16;
const BOUNCE: usize = 64 * 1024;

/// What the disk's contents live in.
pub trait Storage {
    /// Size in bytes.
    fn len(&self) -> u64;
    /// Whether it is empty (size 0).
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Reads `buf.len()` bytes at `offset` (within `len()`).
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()>;
    /// Writes `buf` at `offset` (within `len()`).
    fn write_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()>;
    /// Makes everything written so far durable.
    fn flush(&mut self) -> io::Result<()>;
}

/// A file or block device, its size taken when opened.
pub struct FileStorage {
    file: File,
    len: u64,
}

impl FileStorage {
    /// Uses `file`, whose size (a block device's too) is measured by seeking
    /// to its end.
    pub fn new(mut file: File) -> io::Result<Self> {
        use std::io::Seek;
        let len = file.seek(io::SeekFrom::End(0))?;
        Ok(FileStorage { file, len })
    }
}

impl Storage for FileStorage {
    fn len(&self) -> u64 {
        self.len
    }
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }
    fn write_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.file.write_all_at(buf, offset)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
}

/// Counters of what the device did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockStats {
    /// Reads served.
    pub reads: u64,
    /// Writes served.
    pub writes: u64,
    /// Flushes served.
    pub flushes: u64,
    /// GET_ID requests served.
    pub get_ids: u64,
    /// Bytes read from the backing store.
    pub bytes_read: u64,
    /// Bytes written to the backing store.
    pub bytes_written: u64,
    /// Requests answered VIRTIO_BLK_S_UNSUPP.
    pub unsupported: u64,
    /// Requests answered VIRTIO_BLK_S_IOERR: malformed or failed.
    pub errors: u64,
    /// Chains the walk stopped early (a subset of `errors`, or of
    /// `unanswerable`).
    pub malformed: u64,
    /// Chains with no writable byte for a status: returned with length 0.
    pub unanswerable: u64,
}

/// The virtio-blk device.
pub struct Block<S: Storage> {
    storage: S,
    read_only: bool,
    id: [u8; ID_BYTES],
    features: u64,
    bounce: Vec<u8>,
    stats: BlockStats,
}

enum Answer {
    Ok(u64),
    IoErr(u64),
    Unsupp,
}

impl<S: Storage> Block<S> {
    /// A disk of `storage`'s size rounded down to whole sectors;
    /// `serial` (at most 20 bytes are used) answers GET_ID.
    pub fn new(storage: S, read_only: bool, serial: &str) -> Self {
        let mut id = [0u8; ID_BYTES];
        let n = serial.len().min(ID_BYTES);
        id[..n].copy_from_slice(&serial.as_bytes()[..n]);
        Block { storage, read_only, id, features: 0, bounce: vec![0; BOUNCE], stats: BlockStats::default() }
    }

    /// The disk's size in sectors.
    pub fn capacity(&self) -> u64 {
        self.storage.len() / SECTOR
    }

    /// Counters.
    pub fn stats(&self) -> BlockStats {
        self.stats
    }

    /// The backing store.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    fn config(&self) -> [u8; 36] {
        let mut c = [0u8; 36];
        c[0..8].copy_from_slice(&self.capacity().to_le_bytes());
        c[12..16].copy_from_slice(&(QUEUE_SIZE as u32 - 2).to_le_bytes()); // seg_max
        c[20..24].copy_from_slice(&(SECTOR as u32).to_le_bytes()); // blk_size
        c[34..36].copy_from_slice(&1u16.to_le_bytes()); // num_queues
        c
    }

    /// Serves one chain; returns the bytes written into it (status included),
    /// or `None` if it has no byte for a status.
    pub fn serve<M: GuestMemory>(&mut self, mem: &M, chain: &Chain) -> Option<u32> {
        if chain.error.is_some() {
            self.stats.malformed += 1;
        }
        let Some(status_at) = chain.last_writable_byte() else {
            self.stats.unanswerable += 1;
            return None;
        };
        let answer = if chain.error.is_some() { Answer::IoErr(0) } else { self.execute(mem, chain) };
        let (status, written) = match answer {
            Answer::Ok(n) => (VIRTIO_BLK_S_OK, n),
            Answer::IoErr(n) => {
                self.stats.errors += 1;
                (VIRTIO_BLK_S_IOERR, n)
            }
            Answer::Unsupp => {
                self.stats.unsupported += 1;
                (VIRTIO_BLK_S_UNSUPP, 0)
            }
        };
        // In guest memory: the walk checked every buffer.
        mem.write_obj(status as u8, GuestAddress(status_at)).ok()?;
        Some(written as u32 + 1)
    }

    fn execute<M: GuestMemory>(&mut self, mem: &M, chain: &Chain) -> Answer {
        let (readable, writable) = (chain.readable_len(), chain.writable_len());
        let mut header = [0u8; HEADER as usize];
        if readable < HEADER || chain.read_at(mem, 0, &mut header).is_err() {
            return Answer::IoErr(0);
        }
        let kind = u32::from_le_bytes(header[0..4].try_into().unwrap());
        let sector = u64::from_le_bytes(header[8..16].try_into().unwrap());
        let data_out = readable - HEADER; // from the driver
        let data_in = writable - 1; // to the driver, before the status byte
        match kind {
            VIRTIO_BLK_T_IN => {
                if data_out != 0 || data_in % SECTOR != 0 || !self.in_range(sector, data_in) {
                    return Answer::IoErr(0);
                }
                self.read(mem, chain, sector * SECTOR, data_in)
            }
            VIRTIO_BLK_T_OUT => {
                if data_in != 0 || data_out % SECTOR != 0 || !self.in_range(sector, data_out) || self.read_only {
                    return Answer::IoErr(0);
                }
                self.write(mem, chain, sector * SECTOR, data_out)
            }
            VIRTIO_BLK_T_FLUSH => {
                if data_in != 0 || data_out != 0 {
                    return Answer::IoErr(0);
                }
                self.stats.flushes += 1;
                match self.storage.flush() {
                    Ok(()) => Answer::Ok(0),
                    Err(_) => Answer::IoErr(0),
                }
            }
            VIRTIO_BLK_T_GET_ID => {
                if data_out != 0 || data_in == 0 {
                    return Answer::IoErr(0);
                }
                let n = (data_in as usize).min(ID_BYTES);
                if chain.write_at(mem, 0, &self.id[..n]).is_err() {
                    return Answer::IoErr(0);
                }
                self.stats.get_ids += 1;
                Answer::Ok(n as u64)
            }
            _ => Answer::Unsupp,
        }
    }

    fn in_range(&self, sector: u64, len: u64) -> bool {
        sector
            .checked_mul(SECTOR)
            .and_then(|start| start.checked_add(len))
            .is_some_and(|end| end <= self.capacity() * SECTOR)
    }

    fn read<M: GuestMemory>(&mut self, mem: &M, chain: &Chain, offset: u64, len: u64) -> Answer {
        let mut done = 0;
        while done < len {
            let n = (len - done).min(BOUNCE as u64) as usize;
            if self.storage.read_at(&mut self.bounce[..n], offset + done).is_err()
                || chain.write_at(mem, done, &self.bounce[..n]).is_err()
            {
                return Answer::IoErr(done);
            }
            done += n as u64;
            self.stats.bytes_read += n as u64;
        }
        self.stats.reads += 1;
        Answer::Ok(len)
    }

    fn write<M: GuestMemory>(&mut self, mem: &M, chain: &Chain, offset: u64, len: u64) -> Answer {
        let mut done = 0;
        while done < len {
            let n = (len - done).min(BOUNCE as u64) as usize;
            if chain.read_at(mem, HEADER + done, &mut self.bounce[..n]).is_err()
                || self.storage.write_at(&self.bounce[..n], offset + done).is_err()
            {
                return Answer::IoErr(0);
            }
            done += n as u64;
            self.stats.bytes_written += n as u64;
        }
        self.stats.writes += 1;
        Answer::Ok(0)
    }
}

impl<S: Storage> VirtioDevice for Block<S> {
    fn device_type(&self) -> u16 {
        virtio_bindings::virtio_ids::VIRTIO_ID_BLOCK as u16
    }

    fn features(&self) -> u64 {
        let ro = if self.read_only { 1 << VIRTIO_BLK_F_RO } else { 0 };
        F_VERSION_1
            | F_INDIRECT_DESC
            | F_EVENT_IDX
            | (1 << VIRTIO_BLK_F_SEG_MAX)
            | (1 << VIRTIO_BLK_F_BLK_SIZE)
            | (1 << VIRTIO_BLK_F_FLUSH)
            | ro
    }

    fn queue_max_sizes(&self) -> Vec<u16> {
        vec![QUEUE_SIZE]
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        let c = self.config();
        for (i, b) in data.iter_mut().enumerate() {
            *b = offset.checked_add(i as u64).and_then(|at| c.get(at as usize)).copied().unwrap_or(0);
        }
    }

    fn activate(&mut self, features: u64) -> Result<(), DeviceError> {
        self.features = features;
        Ok(())
    }

    fn reset(&mut self) {
        self.features = 0;
    }

    fn process<M: GuestMemory>(&mut self, _: u16, queue: &mut SplitQueue, mem: &M) -> Result<(), DeviceError> {
        let indirect = self.features & F_INDIRECT_DESC != 0;
        let before = self.stats.unanswerable;
        queue.drain(mem, indirect, |chain| self.serve(mem, chain).unwrap_or(0))?;
        if self.stats.unanswerable != before {
            return Err(DeviceError("a request without a writable byte for its status".into()));
        }
        Ok(())
    }
}

/// `block` as virtio-pci function `sbdf`, a device for the toolkit's bus.
pub fn pci_function<S: Storage + Send + 'static>(sbdf: Sbdf, block: Block<S>) -> PciTransport<Block<S>> {
    PciTransport::new(sbdf, block, CLASS)
}

/// Why [`serve`] returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// SIGTERM, SIGINT or SIGHUP (a session with `stop_on_signals`).
    Signal(i32),
    /// The session's stopper.
    Stopped,
    /// The domain is gone (what `gone` said).
    Gone(String),
}

/// Serves `bus` until a signal or the session's stopper ends it, or the
/// domain is gone: `gone` is asked every `every` (and when serving fails:
/// a failure because the domain went away ends cleanly, any other is
/// returned).
pub fn serve(
    session: &mut Session,
    bus: &mut Bus,
    every: Duration,
    mut gone: impl FnMut() -> Option<String>,
) -> Result<End, xendevicemodel_ioreq::Error> {
    let mut asked = Instant::now();
    loop {
        match session.run_once(bus, Some(every)) {
            Ok(Some(Exit::Signal(s))) => return Ok(End::Signal(s)),
            Ok(Some(Exit::Stopped)) => return Ok(End::Stopped),
            Ok(None) => {}
            Err(e) => return gone().map(End::Gone).ok_or(e),
        }
        if asked.elapsed() >= every {
            asked = Instant::now();
            if let Some(why) = gone() {
                return Ok(End::Gone(why));
            }
        }
    }
}
