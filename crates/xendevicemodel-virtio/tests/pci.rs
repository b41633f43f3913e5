//! The virtio-pci modern transport driven as Linux's virtio_pci drives it
//! (capability walk, reset, ACKNOWLEDGE, DRIVER, feature negotiation,
//! FEATURES_OK read back, queue setup, DRIVER_OK, notifications, ISR), and
//! every step a driver can get wrong.

use vm_memory::{Bytes, GuestAddress, GuestMemory, GuestMemoryMmap};
use xendevicemodel_virtio::driver::DriverQueue;
use xendevicemodel_virtio::pci::{self, status, Interrupt, Outcome, VirtioPci, NO_VECTOR};
use xendevicemodel_virtio::{DeviceError, SplitQueue, VirtioDevice};

const MEM: u64 = 0x20_0000;
const CAPS: u8 = 0x40;
const MSIX_CAP: u8 = 0x98; // where the caller's MSI-X capability would be
const DEVICE_BIT: u64 = 1 << 3;
const FEATURES: u64 = pci::F_VERSION_1 | pci::F_INDIRECT_DESC | pci::F_EVENT_IDX | DEVICE_BIT;

/// Copies each chain's readable bytes into its writable ones.
#[derive(Default)]
struct Echo {
    features: Option<u64>,
    resets: usize,
    served: usize,
    fail: bool,
}

impl VirtioDevice for Echo {
    fn device_type(&self) -> u16 {
        0x7f
    }
    fn features(&self) -> u64 {
        FEATURES
    }
    fn queue_max_sizes(&self) -> Vec<u16> {
        vec![8, 16]
    }
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        for (i, b) in data.iter_mut().enumerate() {
            let at = offset + i as u64;
            *b = if at < 8 { 0x11 + at as u8 } else { 0 };
        }
    }
    fn activate(&mut self, features: u64) -> Result<(), DeviceError> {
        self.features = Some(features);
        Ok(())
    }
    fn reset(&mut self) {
        self.resets += 1;
        self.features = None;
    }
    fn process<M: GuestMemory>(&mut self, _: u16, q: &mut SplitQueue, mem: &M) -> Result<(), DeviceError> {
        if self.fail {
            return Err(DeviceError("told to fail".into()));
        }
        let indirect = self.features.unwrap() & pci::F_INDIRECT_DESC != 0;
        let n = q.drain(mem, indirect, |c| {
            let len = c.readable_len().min(c.writable_len()) as usize;
            let mut buf = vec![0u8; len];
            c.read_at(mem, 0, &mut buf).unwrap();
            c.write_at(mem, 0, &buf).unwrap();
            len as u32
        })?;
        self.served += n;
        Ok(())
    }
}

fn mem() -> GuestMemoryMmap {
    GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEM as usize)]).unwrap()
}

fn transport() -> VirtioPci<Echo> {
    VirtioPci::new(Echo::default(), 2, CAPS, MSIX_CAP, 4)
}

// Common configuration offsets.
const DFSELECT: u64 = 0x00;
const DF: u64 = 0x04;
const GFSELECT: u64 = 0x08;
const GF: u64 = 0x0c;
const MSIX_CONFIG: u64 = 0x10;
const NUM_QUEUES: u64 = 0x12;
const STATUS: u64 = 0x14;
const GENERATION: u64 = 0x15;
const Q_SELECT: u64 = 0x16;
const Q_SIZE: u64 = 0x18;
const Q_VECTOR: u64 = 0x1a;
const Q_ENABLE: u64 = 0x1c;
const Q_NOTIFY_OFF: u64 = 0x1e;
const Q_DESC: u64 = 0x20;
const Q_DRIVER: u64 = 0x28;
const Q_DEVICE: u64 = 0x30;

fn features(t: &mut VirtioPci<Echo>) -> u64 {
    let m = mem();
    t.bar_write(&m, DFSELECT, 4, 0);
    let lo = t.bar_read(DF, 4);
    t.bar_write(&m, DFSELECT, 4, 1);
    lo | t.bar_read(DF, 4) << 32
}

/// Linux's probe up to FEATURES_OK; returns the status read back.
fn negotiate(t: &mut VirtioPci<Echo>, m: &GuestMemoryMmap, accept: u64) -> u8 {
    assert_eq!(t.bar_write(m, STATUS, 1, 0), Outcome::None);
    t.bar_write(m, STATUS, 1, status::ACKNOWLEDGE as u64);
    t.bar_write(m, STATUS, 1, (status::ACKNOWLEDGE | status::DRIVER) as u64);
    for sel in 0..2 {
        t.bar_write(m, GFSELECT, 4, sel);
        t.bar_write(m, GF, 4, (accept >> (32 * sel)) & 0xffff_ffff);
    }
    t.bar_write(m, STATUS, 1, (status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK) as u64);
    t.bar_read(STATUS, 1) as u8
}

/// Sets up queue `index` with its rings from `base` (two 32-bit halves per
/// address, as vp_iowrite64_twopart does) and enables it.
fn setup_queue(
    t: &mut VirtioPci<Echo>,
    m: &GuestMemoryMmap,
    index: u16,
    base: u64,
    size: u16,
    vector: u16,
) -> DriverQueue {
    let d = DriverQueue::new(base, size);
    t.bar_write(m, Q_SELECT, 2, index as u64);
    t.bar_write(m, Q_SIZE, 2, size as u64);
    for (off, addr) in [(Q_DESC, d.desc), (Q_DRIVER, d.avail), (Q_DEVICE, d.used)] {
        t.bar_write(m, off, 4, addr & 0xffff_ffff);
        t.bar_write(m, off + 4, 4, addr >> 32);
    }
    t.bar_write(m, Q_VECTOR, 2, vector as u64);
    t.bar_write(m, Q_ENABLE, 2, 1);
    d
}

fn driver_ok(t: &mut VirtioPci<Echo>, m: &GuestMemoryMmap) {
    let s = t.bar_read(STATUS, 1) | status::DRIVER_OK as u64;
    assert_eq!(t.bar_write(m, STATUS, 1, s), Outcome::None);
}

/// A device up and running with queue 0 (8 entries at 0x10000).
fn running(accept: u64) -> (VirtioPci<Echo>, GuestMemoryMmap, DriverQueue) {
    let m = mem();
    let mut t = transport();
    assert_ne!(negotiate(&mut t, &m, accept) & status::FEATURES_OK, 0);
    let d = setup_queue(&mut t, &m, 0, 0x10000, 8, 1);
    driver_ok(&mut t, &m);
    (t, m, d)
}

/// Offers a chain of one readable and one writable buffer.
fn echo_request(m: &GuestMemoryMmap, d: &mut DriverQueue, head: u16, data: &[u8]) -> u64 {
    let (src, dst) = (0x100000 + head as u64 * 0x1000, 0x180000 + head as u64 * 0x1000);
    m.write_slice(data, GuestAddress(src)).unwrap();
    d.write_chain(m, head, &[(src, data.len() as u32, false), (dst, data.len() as u32, true)]);
    d.offer(m, head);
    dst
}

#[test]
fn the_capability_list_describes_the_four_regions_and_the_window() {
    let mut t = transport();
    let mut at = CAPS as u16;
    let mut seen = Vec::new();
    while at != MSIX_CAP as u16 {
        let head = t.config_read(at, 4).unwrap();
        let (vndr, next, len, kind) = (head & 0xff, (head >> 8) & 0xff, (head >> 16) & 0xff, head >> 24);
        assert_eq!(vndr, 0x09, "vendor-specific capability at {at:#x}");
        let bar = t.config_read(at + 4, 1).unwrap();
        let offset = t.config_read(at + 8, 4).unwrap();
        let length = t.config_read(at + 12, 4).unwrap();
        let extra = if len == 20 { Some(t.config_read(at + 16, 4).unwrap()) } else { None };
        seen.push((at, kind, len, bar, offset, length, extra));
        at = next as u16;
    }
    let window = Some(0); // the PCI_CFG data, with an empty window
    assert_eq!(
        seen,
        vec![
            (0x40, 1, 16, 2, 0x0000, 0x1000, None),
            (0x50, 2, 20, 2, 0x3000, 0x1000, Some(pci::NOTIFY_MULTIPLIER)),
            (0x64, 3, 16, 2, 0x1000, 0x1000, None),
            (0x74, 4, 16, 2, 0x2000, 0x1000, None),
            (0x84, 5, 20, 0, 0, 0, window),
        ]
    );
    assert_eq!(t.config_read(0x3c, 4), None, "the header is not the transport's");
    assert_eq!(t.config_read(0x98, 4), None, "nor is what follows the list");
    assert_eq!(t.config_read(0x96, 4), None, "an access crossing the list's end");
    assert_eq!(t.config_read(0x41, 2), Some(0x1050), "sub-dword reads: next 0x50, length 0x10");
    assert_eq!(pci::pci_device_id(2), 0x1042);
}

#[test]
fn linux_probe_negotiates_and_serves_a_queue_with_intx() {
    let (mut t, m, mut d) = running(FEATURES & !pci::F_EVENT_IDX);
    assert_eq!(t.device().features, Some(FEATURES & !pci::F_EVENT_IDX));
    assert_eq!(t.bar_read(NUM_QUEUES, 2), 2);
    let dst = echo_request(&m, &mut d, 0, b"hello, virtio");
    // The notify address of queue 0: notify offset + queue_notify_off * multiplier.
    t.bar_write(&m, Q_SELECT, 2, 0);
    let off = t.bar_read(Q_NOTIFY_OFF, 2) * pci::NOTIFY_MULTIPLIER as u64;
    assert_eq!(t.bar_write(&m, pci::NOTIFY_OFFSET + off, 2, 0), Outcome::Notify(0));
    assert!(!t.intx_level());
    assert_eq!(t.process(&m, 0), Some(Interrupt::Intx));
    assert!(t.intx_level());
    assert_eq!(d.take_used(&m), Some((0, 13)));
    let mut got = [0u8; 13];
    m.read_slice(&mut got, GuestAddress(dst)).unwrap();
    assert_eq!(&got, b"hello, virtio");
    // The ISR: queue interrupt bit, cleared by the read, INTx lowered.
    assert_eq!(t.bar_read(pci::ISR_OFFSET, 1), 1);
    assert!(!t.intx_level());
    assert_eq!(t.bar_read(pci::ISR_OFFSET, 1), 0);
    // Queue 1 at its own notify address.
    let mut d1 = setup_queue_after_ok(&mut t, &m);
    let _ = &mut d1;
    assert_eq!(t.stats().notifies, 1);
}

/// Queue setup after DRIVER_OK is refused: the queue stays disabled.
fn setup_queue_after_ok(t: &mut VirtioPci<Echo>, m: &GuestMemoryMmap) -> DriverQueue {
    let d = setup_queue(t, m, 1, 0x20000, 16, 2);
    t.bar_write(m, Q_SELECT, 2, 1);
    assert_eq!(t.bar_read(Q_ENABLE, 2), 0, "queue 1 cannot be enabled after DRIVER_OK");
    assert_ne!(t.status() & status::DEVICE_NEEDS_RESET, 0);
    d
}

#[test]
fn msix_vectors_replace_intx_when_enabled() {
    let (mut t, m, mut d) = running(FEATURES & !pci::F_EVENT_IDX);
    t.set_msix_enabled(true);
    echo_request(&m, &mut d, 0, b"x");
    assert_eq!(t.bar_write(&m, pci::NOTIFY_OFFSET, 2, 0), Outcome::Notify(0));
    assert_eq!(t.process(&m, 0), Some(Interrupt::Vector(1)));
    assert!(!t.intx_level());
    assert_eq!(t.bar_read(pci::ISR_OFFSET, 1), 0, "no ISR bit with MSI-X");
    // A vector beyond the table reads back as NO_VECTOR and sends nothing.
    t.bar_write(&m, Q_SELECT, 2, 0);
    t.bar_write(&m, Q_VECTOR, 2, 4);
    assert_eq!(t.bar_read(Q_VECTOR, 2), NO_VECTOR as u64);
    t.bar_write(&m, MSIX_CONFIG, 2, 3);
    assert_eq!(t.bar_read(MSIX_CONFIG, 2), 3);
    t.bar_write(&m, MSIX_CONFIG, 2, 0x1234);
    assert_eq!(t.bar_read(MSIX_CONFIG, 2), NO_VECTOR as u64);
    echo_request(&m, &mut d, 1, b"y");
    assert_eq!(t.bar_write(&m, pci::NOTIFY_OFFSET, 2, 0), Outcome::Notify(0));
    assert_eq!(t.process(&m, 0), None);
    assert_eq!(d.take_used(&m), Some((0, 1)));
    assert_eq!(d.take_used(&m), Some((1, 1)), "served, only not signalled");
}

#[test]
fn event_idx_suppresses_interrupts_the_driver_did_not_ask_for() {
    let (mut t, m, mut d) = running(FEATURES);
    d.set_used_event(&m, 1); // interrupt after the second entry
    echo_request(&m, &mut d, 0, b"a");
    t.bar_write(&m, pci::NOTIFY_OFFSET, 2, 0);
    assert_eq!(t.process(&m, 0), None);
    echo_request(&m, &mut d, 1, b"b");
    t.bar_write(&m, pci::NOTIFY_OFFSET, 2, 0);
    assert_eq!(t.process(&m, 0), Some(Interrupt::Intx));
    assert_eq!(d.avail_event(&m), 2, "the device asks to be notified for the next entry");
}

#[test]
fn feature_negotiation_refuses_what_was_not_offered_and_legacy_drivers() {
    let m = mem();
    let mut t = transport();
    assert_eq!(features(&mut t), FEATURES);
    t.bar_write(&m, DFSELECT, 4, 2);
    assert_eq!(t.bar_read(DF, 4), 0, "no feature bits past 63");
    // Without VERSION_1, and with a bit the device does not have.
    for accept in [FEATURES & !pci::F_VERSION_1, FEATURES | 1 << 5, 1 << 40] {
        let s = negotiate(&mut t, &m, accept);
        assert_eq!(s & status::FEATURES_OK, 0, "accepting {accept:#x}");
        assert_eq!(s, status::ACKNOWLEDGE | status::DRIVER);
        // DRIVER_OK without FEATURES_OK: refused, and the device needs a reset.
        let o = t.bar_write(&m, STATUS, 1, (s | status::DRIVER_OK) as u64);
        assert_eq!(o, Outcome::Interrupt(Interrupt::Intx));
        assert_eq!(t.status() & (status::DRIVER_OK | status::DEVICE_NEEDS_RESET), status::DEVICE_NEEDS_RESET);
        assert_eq!(t.bar_read(pci::ISR_OFFSET, 1), 2, "a configuration interrupt");
        assert_eq!(t.device().features, None, "never activated");
    }
    // The smallest acceptable set.
    assert_ne!(negotiate(&mut t, &m, pci::F_VERSION_1) & status::FEATURES_OK, 0);
    assert_eq!(t.driver_features(), pci::F_VERSION_1);
    assert_eq!(t.status() & status::DEVICE_NEEDS_RESET, 0, "the reset cleared it");
    // After FEATURES_OK the features are fixed.
    t.bar_write(&m, GFSELECT, 4, 0);
    t.bar_write(&m, GF, 4, 0xffff_ffff);
    assert_eq!(t.driver_features(), pci::F_VERSION_1);
    assert_eq!(t.bar_read(GF, 4), 0);
}

#[test]
fn queues_are_checked_when_enabled() {
    let m = mem();
    let mut t = transport();
    t.bar_write(&m, Q_SELECT, 2, 1);
    assert_eq!(t.bar_read(Q_SIZE, 2), 16, "the maximum until the driver writes another");
    t.bar_write(&m, Q_SELECT, 2, 2);
    assert_eq!(t.bar_read(Q_SIZE, 2), 0, "a queue that does not exist has size 0");
    t.bar_write(&m, Q_SIZE, 2, 8);
    t.bar_write(&m, Q_ENABLE, 2, 1);
    assert_eq!(t.stats().ignored, 2);
    // Enabling before FEATURES_OK.
    t.bar_write(&m, Q_SELECT, 2, 0);
    t.bar_write(&m, Q_ENABLE, 2, 1);
    assert_eq!(t.bar_read(Q_ENABLE, 2), 0);
    assert_ne!(t.status() & status::DEVICE_NEEDS_RESET, 0);
    assert!(t.last_error().unwrap().contains("before FEATURES_OK"), "{:?}", t.last_error());
    // Bad sizes and rings: refused with DEVICE_NEEDS_RESET, queue disabled.
    let cases: [(u16, u64, &str); 4] = [
        (3, 0x10000, "size 3"),
        (16, 0x10000, "size 16"), // above queue 0's maximum of 8
        (8, 0x10008, "misaligned"),
        (8, MEM - 0x100, "not in guest memory"),
    ];
    for (size, base, why) in cases {
        negotiate(&mut t, &m, FEATURES);
        let d = DriverQueue::new(base, size);
        t.bar_write(&m, Q_SELECT, 2, 0);
        t.bar_write(&m, Q_SIZE, 2, size as u64);
        t.bar_write(&m, Q_DESC, 8, d.desc);
        t.bar_write(&m, Q_DRIVER, 8, d.avail);
        t.bar_write(&m, Q_DEVICE, 8, d.used);
        assert_eq!(t.bar_read(Q_DESC, 8), d.desc, "8-byte writes and reads");
        assert_eq!(t.bar_write(&m, Q_ENABLE, 2, 1), Outcome::Interrupt(Interrupt::Intx), "{why}");
        assert_eq!(t.bar_read(Q_ENABLE, 2), 0, "{why}");
        assert!(t.last_error().unwrap().contains(why), "{why}: {:?}", t.last_error());
    }
}

#[test]
fn an_enabled_queue_is_locked_and_notifications_need_driver_ok() {
    let m = mem();
    let mut t = transport();
    negotiate(&mut t, &m, FEATURES);
    let mut d = setup_queue(&mut t, &m, 0, 0x10000, 8, 0);
    assert_eq!(t.bar_read(Q_ENABLE, 2), 1);
    // Rewriting an enabled queue's size or rings does nothing.
    let ignored = t.stats().ignored;
    t.bar_write(&m, Q_SIZE, 2, 4);
    t.bar_write(&m, Q_DESC, 4, 0x50000);
    t.bar_write(&m, Q_ENABLE, 2, 0);
    assert_eq!((t.bar_read(Q_SIZE, 2), t.bar_read(Q_DESC, 8), t.bar_read(Q_ENABLE, 2)), (8, d.desc, 1));
    assert_eq!(t.stats().ignored, ignored + 3);
    // Before DRIVER_OK a notification is dropped and nothing is processed.
    echo_request(&m, &mut d, 0, b"early");
    assert_eq!(t.bar_write(&m, pci::NOTIFY_OFFSET, 2, 0), Outcome::None);
    assert_eq!(t.process(&m, 0), None);
    assert_eq!(d.used_idx(&m), 0);
    driver_ok(&mut t, &m);
    // A disabled queue, a queue that does not exist, a misaligned address.
    for off in [4, 8, 2] {
        assert_eq!(t.bar_write(&m, pci::NOTIFY_OFFSET + off, 2, 0), Outcome::None, "notify offset {off}");
    }
    assert_eq!(t.bar_write(&m, pci::NOTIFY_OFFSET, 2, 0), Outcome::Notify(0));
    assert_eq!(t.process(&m, 0), Some(Interrupt::Intx));
    assert_eq!(t.device().served, 1);
}

#[test]
fn a_reset_returns_everything_to_the_start() {
    let (mut t, m, mut d) = running(FEATURES);
    t.bar_write(&m, MSIX_CONFIG, 2, 2);
    echo_request(&m, &mut d, 0, b"z");
    t.bar_write(&m, pci::NOTIFY_OFFSET, 2, 0);
    t.process(&m, 0);
    t.bar_write(&m, STATUS, 1, 0);
    assert_eq!(t.device().resets, 2, "the probe's reset and this one");
    assert_eq!(t.bar_read(STATUS, 1), 0);
    assert_eq!(t.driver_features(), 0);
    assert_eq!(t.bar_read(MSIX_CONFIG, 2), NO_VECTOR as u64);
    assert_eq!(t.bar_read(pci::ISR_OFFSET, 1), 0);
    assert!(!t.intx_level());
    t.bar_write(&m, Q_SELECT, 2, 0);
    let q = (t.bar_read(Q_SIZE, 2), t.bar_read(Q_ENABLE, 2), t.bar_read(Q_VECTOR, 2), t.bar_read(Q_DESC, 8));
    assert_eq!(q, (8, 0, NO_VECTOR as u64, 0));
    assert_eq!(t.bar_write(&m, pci::NOTIFY_OFFSET, 2, 0), Outcome::None);
    // And it comes up again, with the queue starting from index 0.
    let mut d = {
        assert_ne!(negotiate(&mut t, &m, FEATURES) & status::FEATURES_OK, 0);
        let d = setup_queue(&mut t, &m, 0, 0x30000, 8, 1);
        driver_ok(&mut t, &m);
        d
    };
    echo_request(&m, &mut d, 3, b"again");
    assert_eq!(t.bar_write(&m, pci::NOTIFY_OFFSET, 2, 0), Outcome::Notify(0));
    t.process(&m, 0);
    assert_eq!(d.take_used(&m), Some((3, 5)));
    assert_eq!(t.stats().resets, 3, "both probes' resets and the one between");
}

#[test]
fn status_bits_are_cleared_only_by_a_reset() {
    let (mut t, m, _d) = running(FEATURES);
    let all = (status::ACKNOWLEDGE | status::DRIVER | status::FEATURES_OK | status::DRIVER_OK) as u64;
    assert_eq!(t.bar_read(STATUS, 1), all);
    t.bar_write(&m, STATUS, 1, status::ACKNOWLEDGE as u64);
    assert_eq!(t.bar_read(STATUS, 1), all);
    t.bar_write(&m, STATUS, 1, (status::ACKNOWLEDGE | status::DEVICE_NEEDS_RESET) as u64);
    assert_eq!(t.bar_read(STATUS, 1), all, "the driver cannot set DEVICE_NEEDS_RESET");
    t.bar_write(&m, STATUS, 1, all | status::FAILED as u64);
    assert_eq!(t.bar_read(STATUS, 1), all | status::FAILED as u64);
}

#[test]
fn a_device_error_sets_needs_reset_and_stops_processing() {
    let (mut t, m, mut d) = running(FEATURES);
    t.device_mut().fail = true;
    echo_request(&m, &mut d, 0, b"q");
    t.bar_write(&m, pci::NOTIFY_OFFSET, 2, 0);
    assert_eq!(t.process(&m, 0), Some(Interrupt::Intx));
    assert_eq!(t.bar_read(pci::ISR_OFFSET, 1), 2, "a configuration interrupt, not a queue one");
    assert_ne!(t.status() & status::DEVICE_NEEDS_RESET, 0);
    assert_eq!(t.last_error(), Some("queue 0: told to fail"));
    t.device_mut().fail = false;
    assert_eq!(t.bar_write(&m, pci::NOTIFY_OFFSET, 2, 0), Outcome::None, "no more processing until a reset");
    assert_eq!(t.process(&m, 0), None);
    // A broken ring is such an error too.
    let (mut t, m, mut d) = running(FEATURES);
    d.avail_idx = 100;
    d.publish(&m);
    t.bar_write(&m, pci::NOTIFY_OFFSET, 2, 0);
    assert_eq!(t.process(&m, 0), Some(Interrupt::Intx));
    assert!(t.last_error().unwrap().contains("available index 100"), "{:?}", t.last_error());
}

#[test]
fn the_pci_cfg_window_reaches_the_bar() {
    let m = mem();
    let mut t = transport();
    let win = CAPS as u16 + 0x44;
    // Window on the common configuration's num_queues (2 bytes).
    assert_eq!(t.config_write(&m, win + 4, 1, 2), Some(Outcome::None));
    assert_eq!(t.config_write(&m, win + 8, 4, NUM_QUEUES as u32), Some(Outcome::None));
    assert_eq!(t.config_write(&m, win + 12, 4, 2), Some(Outcome::None));
    assert_eq!(t.config_read(win + 16, 2), Some(2));
    assert_eq!(t.config_read(win + 8, 4), Some(NUM_QUEUES as u32), "the window reads back");
    // A length that does not match the access reads 0.
    assert_eq!(t.config_read(win + 16, 4), Some(0));
    // Writing the status through it.
    t.config_write(&m, win + 8, 4, STATUS as u32);
    t.config_write(&m, win + 12, 4, 1);
    t.config_write(&m, win + 16, 1, status::ACKNOWLEDGE as u32);
    assert_eq!(t.status(), status::ACKNOWLEDGE);
    // Another BAR, an offset past the BAR: nothing.
    t.config_write(&m, win + 4, 1, 3);
    assert_eq!(t.config_read(win + 16, 1), Some(0));
    t.config_write(&m, win + 4, 1, 2);
    t.config_write(&m, win + 8, 4, 0x4000);
    assert_eq!(t.config_read(win + 16, 1), Some(0));
    // The rest of the list is read-only.
    t.config_write(&m, CAPS as u16 + 8, 4, 0xdead);
    assert_eq!(t.config_read(CAPS as u16 + 8, 4), Some(0));
    assert_eq!(t.config_write(&m, 0x10, 4, 0), None, "not the transport's register");
}

#[test]
fn device_configuration_generation_and_odd_accesses() {
    let m = mem();
    let mut t = transport();
    assert_eq!(t.bar_read(pci::DEVICE_OFFSET, 4), 0x1413_1211);
    assert_eq!(t.bar_read(pci::DEVICE_OFFSET + 6, 4), 0x1817, "bytes past the end read 0");
    assert_eq!(t.bar_read(pci::DEVICE_OFFSET, 8), 0x1817_1615_1413_1211);
    assert_eq!(t.bar_read(GENERATION, 1), 0);
    assert_eq!(t.config_changed(), Outcome::Interrupt(Interrupt::Intx));
    assert_eq!(t.bar_read(GENERATION, 1), 1);
    // Widths other than 1, 2, 4, 8; past the BAR; a field written with
    // another width; the ISR's other bytes.
    let before = t.stats().ignored;
    assert_eq!(t.bar_read(0, 3), 0);
    assert_eq!(t.bar_read(pci::BAR_SIZE as u64 - 2, 4), 0);
    assert_eq!(t.bar_read(u64::MAX, 1), 0);
    t.bar_write(&m, STATUS, 2, 0x0f0f);
    t.bar_write(&m, Q_SELECT, 4, 1);
    assert_eq!(t.bar_read(pci::ISR_OFFSET + 1, 1), 0);
    assert_eq!(t.stats().ignored, before + 6);
    assert_eq!(t.status(), 0);
    assert_eq!(t.bar_read(Q_SELECT, 2), 0);
    // Reads of any width inside the common configuration are fine.
    assert_eq!(t.bar_read(NUM_QUEUES, 1), 2);
    assert_eq!(t.bar_read(0x10, 4), 0x0002_ffff, "msix_config and num_queues in one dword");
}
