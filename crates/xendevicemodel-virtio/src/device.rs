//! What a virtio device implements to be served by a transport.

use vm_memory::GuestMemory;

use crate::chain::{walk, Chain};
use crate::ring::{QueueError, SplitQueue};

/// Why a device could not go on: the transport sets DEVICE_NEEDS_RESET and
/// tells the driver (a configuration interrupt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceError(pub String);

impl std::fmt::Display for DeviceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DeviceError {}

impl From<QueueError> for DeviceError {
    fn from(e: QueueError) -> Self {
        DeviceError(e.to_string())
    }
}

/// A virtio device: its identity, features, configuration space and queues.
/// The transport owns the queues and the negotiation; the device only
/// processes what the driver made available.
pub trait VirtioDevice {
    /// The virtio device type (virtio 1.2, 5: 2 for a block device).
    fn device_type(&self) -> u16;

    /// Every feature bit the device offers, VIRTIO_F_VERSION_1 (bit 32)
    /// included; the transport refuses a driver that does not accept it.
    fn features(&self) -> u64;

    /// The maximum size of each queue (powers of two); their number is the
    /// device's number of queues.
    fn queue_max_sizes(&self) -> Vec<u16>;

    /// Reads the device-specific configuration at `offset`; bytes past its
    /// end read as zero.
    fn read_config(&self, offset: u64, data: &mut [u8]);

    /// A driver's write into the configuration; ignored unless the device
    /// has writable fields.
    fn write_config(&mut self, offset: u64, data: &[u8]) {
        let _ = (offset, data);
    }

    /// The driver set DRIVER_OK with these negotiated features.
    fn activate(&mut self, features: u64) -> Result<(), DeviceError> {
        let _ = features;
        Ok(())
    }

    /// The driver reset the device (wrote 0 to the status).
    fn reset(&mut self) {}

    /// The driver notified queue `index`: take what it made available and
    /// put each chain back on the used ring. An error sets DEVICE_NEEDS_RESET.
    fn process<M: GuestMemory>(&mut self, index: u16, queue: &mut SplitQueue, mem: &M) -> Result<(), DeviceError>;
}

impl SplitQueue {
    /// Serves every available chain: walks it (see [`walk`]), hands it to
    /// `serve`, which returns how many bytes it wrote into the chain, and
    /// returns it on the used ring. Driver notifications are suppressed
    /// while the queue is drained and asked for again at the end (with a
    /// re-check, so that nothing made available meanwhile is missed).
    /// Returns how many chains were served.
    pub fn drain<M: GuestMemory>(
        &mut self,
        mem: &M,
        indirect: bool,
        mut serve: impl FnMut(&Chain) -> u32,
    ) -> Result<usize, QueueError> {
        let mut served = 0;
        loop {
            self.disable_notifications(mem)?;
            while let Some(head) = self.pop(mem)? {
                let chain = walk(mem, self.desc_table, self.size, head, indirect);
                let len = serve(&chain);
                self.push_used(mem, head, len)?;
                served += 1;
            }
            if !self.enable_notifications(mem)? {
                return Ok(served);
            }
        }
    }
}
