//! Coverage-guided fuzzing of the virtio-pci transport: arbitrary sequences
//! of config-space and BAR accesses (any offset, width, value), MSI-X on or
//! off, and processing of whatever the driver notified, against a
//! virtio-blk device, with guest memory whose bytes also come from the input.
//!
//! What must hold after every access, besides not panicking:
//! - DRIVER_OK is never set without FEATURES_OK, and FEATURES_OK only with
//!   features the device offers, VERSION_1 among them;
//! - an enabled queue's size is a power of two within the maximum, and its
//!   rings validate against guest memory;
//! - INTx is asserted only when the ISR has a bit set and MSI-X is off;
//! - a notification is reported only for an enabled queue of a device that
//!   is DRIVER_OK without DEVICE_NEEDS_RESET;
//! - reads of unknown registers return 0, and writing 0 to the status
//!   returns every register the driver can read to its initial value.
#![no_main]

use std::io;

use libfuzzer_sys::fuzz_target;
use virtio_blk::{Block, Storage};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use xendevicemodel_virtio::pci::{self, status, Outcome, VirtioPci};
use xendevicemodel_virtio::VirtioDevice;

const MEM: usize = 0x2_0000;

struct Disk(Vec<u8>);

impl Storage for Disk {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        buf.copy_from_slice(&self.0[offset as usize..offset as usize + buf.len()]);
        Ok(())
    }
    fn write_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0[offset as usize..offset as usize + buf.len()].copy_from_slice(buf);
        Ok(())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Every register the driver can read in the common configuration, the
/// first queue's included (queue_select 0).
fn registers(t: &mut VirtioPci<Block<Disk>>) -> Vec<u64> {
    (0..0x40).step_by(2).map(|off| t.bar_read(off, 2)).collect()
}

fuzz_target!(|input: &[u8]| {
    let m = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), MEM)]).unwrap();
    let (ops, image) = input.split_at(input.len().min(4096));
    m.write_slice(&image[..image.len().min(MEM)], GuestAddress(0)).unwrap();
    let blk = Block::new(Disk(vec![0; 16 * 1024]), false, "fuzz");
    let offered = blk.features();
    let mut t = VirtioPci::new(blk, 1, 0x40, 0, 2);
    let initial = registers(&mut t);
    for op in ops.chunks_exact(8) {
        let kind = op[0] % 8;
        let size = [1u8, 2, 4, 8][(op[1] % 4) as usize];
        let off = u16::from_le_bytes([op[2], op[3]]) as u64;
        let value = u32::from_le_bytes([op[4], op[5], op[6], op[7]]) as u64;
        let mut notified = None;
        match kind {
            // Mostly the common configuration and the notification region.
            0 | 1 => {
                if let Outcome::Notify(q) = t.bar_write(&m, off % 0x40, size, value) {
                    notified = Some(q);
                }
            }
            2 => {
                if let Outcome::Notify(q) = t.bar_write(&m, pci::NOTIFY_OFFSET + off % 16, size, value) {
                    notified = Some(q);
                }
            }
            3 => {
                let _ = t.bar_read(off % pci::BAR_SIZE as u64, size);
            }
            4 => {
                if let Outcome::Notify(q) = t.bar_write(&m, off, size, value) {
                    notified = Some(q);
                }
            }
            5 => {
                let reg = 0x30 + off % 0x80;
                let got = t.config_read(reg as u16, size.min(4));
                assert_eq!(got.is_some(), t.owns_config(reg as u16) && (reg as u16) + size.min(4) as u16 <= 0x98);
                if let Some(Outcome::Notify(q)) = t.config_write(&m, reg as u16, size.min(4), value as u32) {
                    notified = Some(q);
                }
            }
            6 => t.set_msix_enabled(op[1] & 1 != 0),
            _ => {
                // Linux's happy path, so that the fuzzer gets past negotiation.
                t.bar_write(&m, 0x14, 1, 0);
                assert_eq!(registers(&mut t), initial, "a reset restores every register");
                t.bar_write(&m, 0x14, 1, 3);
                for sel in 0..2 {
                    t.bar_write(&m, 0x08, 4, sel);
                    t.bar_write(&m, 0x0c, 4, (offered >> (32 * sel)) & 0xffff_ffff);
                }
                t.bar_write(&m, 0x14, 1, 11);
            }
        }
        if let Some(q) = notified {
            let s = t.status();
            assert!(s & status::DRIVER_OK != 0 && s & status::DEVICE_NEEDS_RESET == 0, "a notification in {s:#x}");
            assert!(t.queue(q).is_some_and(|r| r.ready()), "a notification for queue {q}, not enabled");
            let _ = t.process(&m, q);
        }
        let s = t.status();
        if s & status::DRIVER_OK != 0 {
            assert_ne!(s & status::FEATURES_OK, 0, "DRIVER_OK without FEATURES_OK");
        }
        if s & status::FEATURES_OK != 0 {
            let f = t.driver_features();
            assert_eq!(f & !offered, 0, "accepted features the device does not offer");
            assert_ne!(f & pci::F_VERSION_1, 0, "FEATURES_OK without VERSION_1");
        }
        if let Some(q) = t.queue(0).filter(|q| q.ready()) {
            assert!(q.size.is_power_of_two() && q.size <= q.max_size());
            assert!(q.validate(&m).is_ok());
        }
        if t.intx_level() {
            // The ISR read below clears it; the level must follow.
            assert_ne!(t.bar_read(pci::ISR_OFFSET, 1), 0);
            assert!(!t.intx_level());
        }
        assert_eq!(t.bar_read(0x40, 4), 0, "past the common configuration");
    }
});
