//! The virtio-blk device on the toolkit, against the simulated hypervisor:
//! a simulated guest probes it as Linux's PCI core, virtio_pci and
//! virtio_blk do (ids, BAR sizing and placement, the capability list,
//! reset, ACKNOWLEDGE/DRIVER, features, FEATURES_OK, MSI-X setup or the
//! INTx fallback, queue setup, DRIVER_OK), then reads, writes, flushes and
//! asks for the serial with real descriptor chains (direct and indirect) in
//! the simulated guest RAM, several in flight per notification. Every
//! interrupt the session sends is checked against what the guest set up;
//! the image file is checked byte for byte; malformed chains are answered
//! with an error status and leave the image as it was.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread;

use vm_memory::{Bytes, GuestAddress};
use xendevicemodel::Logger;
use xendevicemodel_ioreq::{Bus, Config, DeviceId, Exit, GuestRam, Handler, IoRange, Sbdf, Session, Size};
use xendevicemodel_ioreq_sim::{SimVcpu, SimXen};
use xendevicemodel_virtio::driver::{DriverQueue, F_INDIRECT, F_NEXT, F_WRITE};
use xendevicemodel_virtio::ioreq::PciTransport;
use xendevicemodel_virtio::pci::{status, F_EVENT_IDX, F_INDIRECT_DESC, F_VERSION_1, NO_VECTOR};

use virtio_blk::{pci_function, Block, FileStorage, ID_BYTES, QUEUE_SIZE, SECTOR};

const SLOT: u8 = 5;
const DEV: Sbdf = Sbdf::new(0, 0, SLOT, 0);
const BAR0: u64 = 0xf100_0000;
const BAR1: u64 = 0xf100_4000;
const RAM: usize = 8 << 20;
const RINGS: u64 = 0x10_0000;
const SECTORS: u64 = 2048; // a 1 MiB image
const SERIAL: &str = "sim-disk-0001";

const OK: u8 = 0;
const IOERR: u8 = 1;
const UNSUPP: u8 = 2;
const T_IN: u32 = 0;
const T_OUT: u32 = 1;
const T_FLUSH: u32 = 4;
const T_GET_ID: u32 = 8;

// virtio_blk feature bits Linux 6.1's driver knows (of those offered).
const BLK_F_SEG_MAX: u64 = 1 << 2;
const BLK_F_RO: u64 = 1 << 5;
const BLK_F_BLK_SIZE: u64 = 1 << 6;
const BLK_F_FLUSH: u64 = 1 << 9;
const LINUX_WANTS: u64 =
    F_VERSION_1 | F_INDIRECT_DESC | F_EVENT_IDX | BLK_F_SEG_MAX | BLK_F_RO | BLK_F_BLK_SIZE | BLK_F_FLUSH;

// Common configuration registers.
const DFSELECT: u64 = 0x00;
const DF: u64 = 0x04;
const GFSELECT: u64 = 0x08;
const GF: u64 = 0x0c;
const MSIX_CONFIG: u64 = 0x10;
const NUM_QUEUES: u64 = 0x12;
const STATUS: u64 = 0x14;
const Q_SELECT: u64 = 0x16;
const Q_SIZE: u64 = 0x18;
const Q_MSIX: u64 = 0x1a;
const Q_ENABLE: u64 = 0x1c;
const Q_NOTIFY_OFF: u64 = 0x1e;
const Q_DESC: u64 = 0x20;
const Q_AVAIL: u64 = 0x28;
const Q_USED: u64 = 0x30;

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

/// An image file of SECTORS sectors filled with pattern(seed 7), removed on drop.
struct Image(PathBuf);

impl Image {
    fn new(name: &str) -> Image {
        let p = std::env::temp_dir().join(format!("virtio-blk-sim-{}-{name}.img", std::process::id()));
        std::fs::write(&p, pattern((SECTORS * SECTOR) as usize, 7)).unwrap();
        Image(p)
    }
    fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.0).unwrap()
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// What the guest found walking the capability list.
#[derive(Debug, Default, Clone, Copy)]
struct Found {
    msix_cap: u16,
    msix_table: u64,
    msix_pba: u64,
    common: u64,
    notify: u64,
    notify_mult: u64,
    isr: u64,
    device: u64,
}

/// A simulated guest driving the function as Linux does.
struct Guest {
    xen: Arc<SimXen>,
    cpu: SimVcpu,
    ram: GuestRam,
    f: Found,
    q: DriverQueue,
    notify_off: u64,
    /// Next free descriptor (requests take consecutive ones).
    next_desc: u16,
    /// Next free request area.
    next_area: u64,
    features: u64,
}

fn cfg_r(cpu: &SimVcpu, reg: u16, size: Size) -> u64 {
    cpu.pci_config_read(DEV, reg, size).expect("config read answered")
}
fn cfg_w(cpu: &SimVcpu, reg: u16, size: Size, v: u64) {
    cpu.pci_config_write(DEV, reg, size, v).expect("config write answered")
}

/// One request's buffers: header, data descriptors, status byte.
struct Req {
    head: u16,
    status: u64,
    data: Vec<(u64, u32)>,
}

impl Guest {
    fn r(&self, at: u64, size: Size) -> u64 {
        self.cpu.mmio_read(at, size).unwrap_or_else(|| panic!("MMIO read at {at:#x} answered"))
    }
    fn w(&self, at: u64, size: Size, v: u64) {
        self.cpu.mmio_write(at, size, v).unwrap_or_else(|| panic!("MMIO write at {at:#x} answered"))
    }
    fn common_r(&self, reg: u64, size: Size) -> u64 {
        self.r(self.f.common + reg, size)
    }
    fn common_w(&self, reg: u64, size: Size, v: u64) {
        self.w(self.f.common + reg, size, v)
    }
    fn status(&self) -> u8 {
        self.common_r(STATUS, Size::B1) as u8
    }
    fn add_status(&self, bits: u8) {
        self.common_w(STATUS, Size::B1, (self.status() | bits) as u64)
    }

    /// The PCI core: ids, BAR sizing and placement, decoding and bus
    /// mastering on, then virtio_pci's walk of the capability list.
    fn enumerate(&mut self, bar0: u64) -> Vec<(&'static str, u64)> {
        let cpu = &self.cpu;
        let mut seen = vec![
            ("ids", cfg_r(cpu, 0, Size::B4)),
            ("class/revision", cfg_r(cpu, 8, Size::B4)),
            ("subsystem", cfg_r(cpu, 0x2c, Size::B4)),
            ("pin", cfg_r(cpu, 0x3d, Size::B1)),
        ];
        for (reg, at) in [(0x10u16, bar0), (0x14, BAR1)] {
            cfg_w(cpu, reg, Size::B4, 0xffff_ffff);
            seen.push(("BAR size mask", cfg_r(cpu, reg, Size::B4)));
            cfg_w(cpu, reg, Size::B4, at);
        }
        cfg_w(cpu, 0x04, Size::B2, 0x6); // memory decoding, bus master
        seen.push(("capability list", cfg_r(cpu, 0x06, Size::B2) & 0x10));
        let bar_at = |b: u64| match b {
            0 => bar0,
            1 => BAR1,
            _ => panic!("a capability in BAR {b}"),
        };
        let mut at = cfg_r(cpu, 0x34, Size::B1) as u16;
        let mut f = Found::default();
        let mut walked = 0;
        while at != 0 {
            walked += 1;
            assert!(walked < 48, "a loop in the capability list");
            let (id, next) = (cfg_r(cpu, at, Size::B1), cfg_r(cpu, at + 1, Size::B1) as u16);
            match id {
                0x11 => {
                    f.msix_cap = at;
                    let (t, p) = (cfg_r(cpu, at + 4, Size::B4), cfg_r(cpu, at + 8, Size::B4));
                    f.msix_table = bar_at(t & 7) + (t & !7);
                    f.msix_pba = bar_at(p & 7) + (p & !7);
                    seen.push(("MSI-X table size", (cfg_r(cpu, at + 2, Size::B2) & 0x7ff) + 1));
                }
                0x09 => {
                    let kind = cfg_r(cpu, at + 3, Size::B1);
                    let (bar, off) = (cfg_r(cpu, at + 4, Size::B1), cfg_r(cpu, at + 8, Size::B4));
                    let len = cfg_r(cpu, at + 12, Size::B4);
                    seen.push(("virtio cap type/len", (kind << 32) | len));
                    let addr = if kind == 5 { 0 } else { bar_at(bar) + off };
                    match kind {
                        1 => f.common = addr,
                        2 => {
                            f.notify = addr;
                            f.notify_mult = cfg_r(cpu, at + 16, Size::B4);
                        }
                        3 => f.isr = addr,
                        4 => f.device = addr,
                        _ => {}
                    }
                }
                other => panic!("capability {other:#x}"),
            }
            at = next;
        }
        self.f = f;
        seen
    }

    /// virtio core and virtio_pci_modern up to DRIVER_OK; `msix` as
    /// pci_alloc_irq_vectors succeeding (or failing: the INTx fallback).
    fn probe(&mut self, msix: bool) {
        self.common_w(STATUS, Size::B1, 0);
        assert_eq!(self.status(), 0, "reset reads back 0");
        self.add_status(status::ACKNOWLEDGE);
        self.add_status(status::DRIVER);
        self.common_w(DFSELECT, Size::B4, 0);
        let lo = self.common_r(DF, Size::B4);
        self.common_w(DFSELECT, Size::B4, 1);
        let offered = lo | (self.common_r(DF, Size::B4) << 32);
        self.features = offered & LINUX_WANTS;
        for sel in 0..2 {
            self.common_w(GFSELECT, Size::B4, sel);
            self.common_w(GF, Size::B4, (self.features >> (32 * sel)) & 0xffff_ffff);
        }
        self.add_status(status::FEATURES_OK);
        assert_ne!(self.status() & status::FEATURES_OK, 0, "FEATURES_OK stuck");
        if msix {
            let ctl = self.f.msix_cap + 2;
            cfg_w(&self.cpu, ctl, Size::B2, 0xc000); // enable, function masked
            for v in 0..2u64 {
                let e = self.f.msix_table + 16 * v;
                self.w(e, Size::B4, 0xfee0_0000 | ((v + 1) << 12));
                self.w(e + 4, Size::B4, 0);
                self.w(e + 8, Size::B4, 0x40 + v);
            }
            cfg_w(&self.cpu, ctl, Size::B2, 0x8000);
            for v in 0..2u64 {
                self.w(self.f.msix_table + 16 * v + 12, Size::B4, 0); // request_irq unmasks
            }
            self.common_w(MSIX_CONFIG, Size::B2, 0);
            assert_eq!(self.common_r(MSIX_CONFIG, Size::B2), 0, "config vector taken");
        }
        self.common_w(Q_SELECT, Size::B2, 0);
        let size = self.common_r(Q_SIZE, Size::B2) as u16;
        assert_eq!(size, QUEUE_SIZE);
        assert_eq!(self.common_r(Q_ENABLE, Size::B2), 0);
        self.ram.write_slice(&vec![0u8; 0x4000], GuestAddress(RINGS)).unwrap();
        self.q = DriverQueue::new(RINGS, size);
        self.next_desc = 0;
        self.common_w(Q_SIZE, Size::B2, size as u64);
        for (reg, addr) in [(Q_DESC, self.q.desc), (Q_AVAIL, self.q.avail), (Q_USED, self.q.used)] {
            self.common_w(reg, Size::B4, addr & 0xffff_ffff);
            self.common_w(reg + 4, Size::B4, addr >> 32);
        }
        if msix {
            self.common_w(Q_MSIX, Size::B2, 1);
            assert_eq!(self.common_r(Q_MSIX, Size::B2), 1, "queue vector taken");
        }
        self.notify_off = self.common_r(Q_NOTIFY_OFF, Size::B2);
        self.common_w(Q_ENABLE, Size::B2, 1);
        self.add_status(status::DRIVER_OK);
        assert_eq!(self.status() & status::DEVICE_NEEDS_RESET, 0, "{:#x}", self.status());
    }

    /// The device configuration: capacity, as virtio_cread64 (generation before and after).
    fn capacity(&self) -> u64 {
        self.r(self.f.device, Size::B4) | (self.r(self.f.device + 4, Size::B4) << 32)
    }

    /// Lays out a request: header (readable), `data` buffers of these
    /// lengths (device-writable if `writable`), status byte; through an
    /// indirect table if `indirect`. Returns it, not yet offered.
    fn build(&mut self, kind: u32, sector: u64, lens: &[u32], writable: bool, indirect: bool) -> Req {
        let area = 0x20_0000 + self.next_area;
        self.next_area = (self.next_area + 0x2_0000) % 0x50_0000;
        let mut h = [0u8; 16];
        h[0..4].copy_from_slice(&kind.to_le_bytes());
        h[8..16].copy_from_slice(&sector.to_le_bytes());
        self.ram.write_slice(&h, GuestAddress(area)).unwrap();
        let mut at = area + 0x100;
        let data: Vec<(u64, u32)> = lens
            .iter()
            .map(|&l| {
                let d = (at, l);
                at += l as u64;
                d
            })
            .collect();
        let status = at;
        self.ram.write_obj(0xeeu8, GuestAddress(status)).unwrap();
        let mut bufs = vec![(area, 16, false)];
        bufs.extend(data.iter().map(|&(a, l)| (a, l, writable)));
        bufs.push((status, 1, true));
        let head = self.next_desc;
        if indirect {
            let table = area + 0x1_f000;
            for (i, &(a, l, w)) in bufs.iter().enumerate() {
                let last = i + 1 == bufs.len();
                let flags = if w { F_WRITE } else { 0 } | if last { 0 } else { F_NEXT };
                DriverQueue::write_desc_at(&self.ram, table, i as u16, a, l, flags, i as u16 + 1);
            }
            self.q.write_desc(&self.ram, head, table, 16 * bufs.len() as u32, F_INDIRECT, 0);
            self.next_desc = (head + 1) % self.q.size;
        } else {
            self.q.write_chain(&self.ram, head, &bufs);
            self.next_desc = (head + bufs.len() as u16) % self.q.size;
        }
        Req { head, status, data }
    }

    fn offer(&mut self, r: &Req) {
        self.q.offer(&self.ram, r.head);
    }

    /// The driver's kick: a 2-byte write of the queue index at its notify address.
    fn kick(&self) {
        self.w(self.f.notify + self.notify_off * self.f.notify_mult, Size::B2, 0);
    }

    /// Collects what came back, then asks for the next interrupt (EVENT_IDX:
    /// used_event = the last seen, as virtqueue_enable_cb does).
    fn collect(&mut self) -> Vec<(u32, u32)> {
        let mut got = Vec::new();
        while let Some(u) = self.q.take_used(&self.ram) {
            got.push(u);
        }
        self.q.set_used_event(&self.ram, self.q.last_used);
        got
    }

    fn status_of(&self, r: &Req) -> u8 {
        self.ram.read_obj(GuestAddress(r.status)).unwrap()
    }

    fn read_mem(&self, at: u64, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.ram.read_slice(&mut v, GuestAddress(at)).unwrap();
        v
    }

    /// One request, alone: offered, kicked, collected; (used length, status).
    fn one(&mut self, r: &Req) -> (u32, u8) {
        self.offer(r);
        self.kick();
        let got = self.collect();
        assert_eq!(got.len(), 1, "one request back: {got:?}");
        assert_eq!(got[0].0, r.head as u32);
        (got[0].1, self.status_of(r))
    }

    /// The interrupts sent since the last call.
    fn interrupts(&self) -> Vec<String> {
        self.xen.take_calls().into_iter().filter(|c| c.starts_with("interrupt")).collect()
    }
}

type Dev = PciTransport<Block<FileStorage>>;

/// Serves a virtio-blk function for `image` while `guest` runs on a
/// simulated vCPU; returns what it returned, the bus with the device and
/// the simulator.
fn with_guest<T: Send + 'static>(
    image: &Image,
    read_only: bool,
    guest: impl FnOnce(&mut Guest) -> T + Send + 'static,
) -> (T, Bus, DeviceId<Dev>, Arc<SimXen>) {
    let xen = SimXen::new(1);
    xen.write_guest_memory(RAM - 1, &[0]);
    let file = std::fs::OpenOptions::new().read(true).write(!read_only).open(&image.0).unwrap();
    let block = Block::new(FileStorage::new(file).unwrap(), read_only, SERIAL);
    let mut bus = Bus::new();
    let id = bus.add(pci_function(DEV, block));
    let config = Config { logger: Logger::silent(), ..Config::default() };
    let mut session = Session::with_backend(xen.clone(), 4, config).unwrap();
    bus.attach(session.server()).unwrap();
    assert_eq!(xen.claimed(), [IoRange::Pci(DEV)], "only config space before the BARs are placed");
    let (x, server, stop) = (xen.clone(), session.server().clone(), session.stopper());
    let guest = thread::spawn(move || {
        let mut g = Guest {
            cpu: x.vcpu(0),
            xen: x,
            ram: server.guest_ram(),
            f: Found::default(),
            q: DriverQueue::new(RINGS, QUEUE_SIZE),
            notify_off: 0,
            next_desc: 0,
            next_area: 0,
            features: 0,
        };
        g.xen.take_calls();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| guest(&mut g)));
        stop.stop();
        r
    });
    assert_eq!(session.run(&mut bus).unwrap(), Exit::Stopped);
    let seen = match guest.join().expect("the guest thread") {
        Ok(seen) => seen,
        Err(p) => std::panic::resume_unwind(p),
    };
    (seen, bus, id, xen)
}

#[test]
fn linux_probe_then_io_with_msix() {
    let image = Image::new("msix");
    let (seen, bus, id, _xen) = with_guest(&image, false, |g| {
        let mut seen = g.enumerate(BAR0);
        g.probe(true);
        assert_eq!(g.features, LINUX_WANTS & !BLK_F_RO, "every feature Linux wants but RO");
        seen.push(("capacity", g.capacity()));
        seen.push(("num_queues", g.common_r(NUM_QUEUES, Size::B2)));
        assert_eq!(g.interrupts(), Vec::<String>::new(), "no interrupt during the probe");

        // A 64 KiB write in two buffers, read back through an indirect table in four.
        let new = pattern(64 << 10, 99);
        let w = g.build(T_OUT, 8, &[32 << 10, 32 << 10], false, false);
        g.ram.write_slice(&new[..32 << 10], GuestAddress(w.data[0].0)).unwrap();
        g.ram.write_slice(&new[32 << 10..], GuestAddress(w.data[1].0)).unwrap();
        assert_eq!(g.one(&w), (1, OK));
        assert_eq!(g.interrupts(), ["interrupt msi addr=0xfee02000 data=0x41"], "the queue's vector (1)");
        let r = g.build(T_IN, 8, &[16 << 10; 4], true, true);
        assert_eq!(g.one(&r), ((64 << 10) + 1, OK));
        let back: Vec<u8> = r.data.iter().flat_map(|&(a, l)| g.read_mem(a, l as usize)).collect();
        assert!(back == new, "the read returned what was written");
        assert_eq!(g.interrupts().len(), 1);

        let fl = g.build(T_FLUSH, 0, &[], false, false);
        assert_eq!(g.one(&fl), (1, OK));
        let id = g.build(T_GET_ID, 0, &[ID_BYTES as u32], true, false);
        assert_eq!(g.one(&id), (ID_BYTES as u32 + 1, OK));
        let serial = g.read_mem(id.data[0].0, ID_BYTES);
        assert_eq!(&serial[..SERIAL.len()], SERIAL.as_bytes());
        assert!(serial[SERIAL.len()..].iter().all(|&b| b == 0));
        assert_eq!(g.interrupts().len(), 2);

        // Eight 4 KiB reads in flight, one kick: eight answers, one interrupt.
        let reqs: Vec<Req> = (0..8).map(|i| g.build(T_IN, 200 + 8 * i, &[4096], true, i % 2 == 0)).collect();
        for r in &reqs {
            g.offer(r);
        }
        g.kick();
        let got = g.collect();
        assert_eq!(got, reqs.iter().map(|r| (r.head as u32, 4097)).collect::<Vec<_>>());
        let original = pattern((SECTORS * SECTOR) as usize, 7);
        for (i, r) in reqs.iter().enumerate() {
            assert_eq!(g.status_of(r), OK);
            let at = (200 + 8 * i) * 512;
            assert!(g.read_mem(r.data[0].0, 4096) == original[at..at + 4096], "read {i}");
        }
        assert_eq!(g.interrupts(), ["interrupt msi addr=0xfee02000 data=0x41"], "one interrupt for the batch");
        // The image's last sector, exactly; the one past it is refused.
        let last = g.build(T_IN, SECTORS - 1, &[512], true, false);
        assert_eq!(g.one(&last), (513, OK));
        let past = g.build(T_IN, SECTORS, &[512], true, false);
        assert_eq!(g.one(&past).1, IOERR);
        g.interrupts();
        seen
    });
    let want: Vec<(&str, u64)> = vec![
        ("ids", 0x1042_1af4),
        ("class/revision", 0x0100_0001),
        ("subsystem", 0x0040_1af4),
        ("pin", 1),
        ("BAR size mask", 0xffff_c000),
        ("BAR size mask", 0xffff_f000),
        ("capability list", 0x10),
        ("MSI-X table size", 2),
        ("virtio cap type/len", (1 << 32) | 0x1000),
        ("virtio cap type/len", (2 << 32) | 0x1000),
        ("virtio cap type/len", (3 << 32) | 0x1000),
        ("virtio cap type/len", (4 << 32) | 0x1000),
        ("virtio cap type/len", 5 << 32),
        ("capacity", SECTORS),
        ("num_queues", 1),
    ];
    assert_eq!(seen, want);
    let mut expect = pattern((SECTORS * SECTOR) as usize, 7);
    expect[8 * 512..8 * 512 + (64 << 10)].copy_from_slice(&pattern(64 << 10, 99));
    assert!(image.bytes() == expect, "the image holds the write and nothing else changed");
    let t = bus.device(id);
    let (b, v, i) = (t.device().stats(), t.virtio().stats(), t.interrupt_stats());
    assert_eq!((b.reads, b.writes, b.flushes, b.get_ids, b.errors), (1 + 8 + 1, 1, 1, 1, 1));
    assert_eq!((b.bytes_written, b.bytes_read), (64 << 10, (64 << 10) + 8 * 4096 + 512));
    assert_eq!((v.notifies, v.needs_reset, i.msix, i.intx_raised, i.pending), (7, 0, 7, 0, 0));
}

#[test]
fn intx_when_msix_is_off() {
    let image = Image::new("intx");
    let ((), bus, id, xen) = with_guest(&image, false, |g| {
        g.enumerate(BAR0);
        g.probe(false);
        assert_eq!(g.common_r(MSIX_CONFIG, Size::B2), NO_VECTOR as u64);
        let new = pattern(4096, 5);
        let w = g.build(T_OUT, 16, &[4096], false, false);
        g.ram.write_slice(&new, GuestAddress(w.data[0].0)).unwrap();
        assert_eq!(g.one(&w), (1, OK));
        assert!(g.xen.intx(SLOT, 0), "INTA# raised");
        assert_eq!(cfg_r(&g.cpu, 0x06, Size::B2) & 0x8, 0x8, "Interrupt Status set");
        assert_eq!(g.r(g.f.isr, Size::B1), 1, "ISR: a queue interrupt");
        assert!(!g.xen.intx(SLOT, 0), "reading the ISR lowered INTA#");
        assert_eq!(g.r(g.f.isr, Size::B1), 0, "the ISR clears on read");
        let r = g.build(T_IN, 16, &[4096], true, false);
        assert_eq!(g.one(&r), (4097, OK));
        assert!(g.read_mem(r.data[0].0, 4096) == new);
        assert!(g.xen.intx(SLOT, 0));
        // A reset with the line high lowers it.
        g.common_w(STATUS, Size::B1, 0);
        assert!(!g.xen.intx(SLOT, 0), "reset lowered INTA#");
        assert_eq!(
            g.interrupts(),
            [
                "interrupt pci-intx 0000:00:05.0 pin=0 level=1",
                "interrupt pci-intx 0000:00:05.0 pin=0 level=0",
                "interrupt pci-intx 0000:00:05.0 pin=0 level=1",
                "interrupt pci-intx 0000:00:05.0 pin=0 level=0",
            ]
        );
    });
    let i = bus.device(id).interrupt_stats();
    assert_eq!((i.msix, i.intx_raised), (0, 2));
    assert!(!xen.intx(SLOT, 0));
    let mut expect = pattern((SECTORS * SECTOR) as usize, 7);
    expect[16 * 512..16 * 512 + 4096].copy_from_slice(&pattern(4096, 5));
    assert!(image.bytes() == expect);
}

#[test]
fn malformed_chains_get_an_error_and_lose_nothing() {
    let image = Image::new("malformed");
    let ((), bus, id, _xen) = with_guest(&image, false, |g| {
        g.enumerate(BAR0);
        g.probe(true);
        let before = g.interrupts();
        assert!(before.is_empty());
        let mut expect: Vec<(&str, u8)> = Vec::new();
        let mut got: Vec<(&str, u8)> = Vec::new();
        let mut check = |g: &mut Guest, what: &'static str, r: &Req, want: u8| {
            let (_, st) = g.one(r);
            got.push((what, st));
            expect.push((what, want));
        };
        // A write past the end, a read starting past it, a sector number that overflows.
        let r = g.build(T_OUT, SECTORS - 1, &[1024], false, false);
        check(g, "write past the end", &r, IOERR);
        let r = g.build(T_IN, SECTORS + 5, &[512], true, false);
        check(g, "read past the end", &r, IOERR);
        let r = g.build(T_OUT, u64::MAX / 256, &[512], false, false);
        check(g, "sector overflow", &r, IOERR);
        let r = g.build(T_OUT, 0, &[100], false, false);
        check(g, "not whole sectors", &r, IOERR);
        let r = g.build(T_OUT, 0, &[512], true, false);
        check(g, "write with writable data", &r, IOERR);
        let r = g.build(T_IN, 0, &[512], false, false);
        check(g, "read with readable data", &r, IOERR);
        let r = g.build(0x99, 0, &[512], false, false);
        check(g, "unknown type", &r, UNSUPP);
        // A loop: the status descriptor leads back to the header.
        let r = g.build(T_OUT, 0, &[512], false, false);
        let (h, s) = (r.head, (r.head + 2) % QUEUE_SIZE);
        g.q.write_desc(&g.ram, s, r.status, 1, F_WRITE | F_NEXT, h);
        check(g, "a descriptor loop", &r, IOERR);
        // An index past the table.
        let r = g.build(T_OUT, 0, &[512], false, false);
        let s = (r.head + 2) % QUEUE_SIZE;
        g.q.write_desc(&g.ram, s, r.status, 1, F_WRITE | F_NEXT, QUEUE_SIZE + 44);
        check(g, "next index past the table", &r, IOERR);
        // A read whose second buffer lies past the guest's RAM: the status goes
        // into the last byte of the first.
        let r = g.build(T_IN, 0, &[512, 512], true, false);
        let d2 = (r.head + 2) % QUEUE_SIZE;
        g.q.write_desc(&g.ram, d2, RAM as u64 - 256, 512, F_WRITE | F_NEXT, (d2 + 1) % QUEUE_SIZE);
        g.ram.write_obj(0xeeu8, GuestAddress(r.data[0].0 + 511)).unwrap();
        let (len, _) = g.one(&r);
        got.push(("buffer past the RAM", g.ram.read_obj(GuestAddress(r.data[0].0 + 511)).unwrap()));
        expect.push(("buffer past the RAM", IOERR));
        got.push(("its used length", len as u8));
        expect.push(("its used length", 1));
        assert_eq!(got, expect);
        assert_eq!(g.status() & status::DEVICE_NEEDS_RESET, 0, "errors answered, no reset needed");
        // Each was answered with the queue's vector; then a good write works.
        assert_eq!(g.interrupts().len(), 10);
        let w = g.build(T_OUT, 2, &[512], false, false);
        g.ram.write_slice(&[0x5a; 512], GuestAddress(w.data[0].0)).unwrap();
        assert_eq!(g.one(&w), (1, OK));

        // No writable byte at all: nothing to answer in; the device asks
        // for a reset with a configuration interrupt (vector 0).
        g.interrupts();
        let r = g.build(T_OUT, 0, &[512], false, false);
        let s = (r.head + 2) % QUEUE_SIZE;
        g.q.write_desc(&g.ram, s, r.status, 1, 0, 0); // the status readable
        g.offer(&r);
        g.kick();
        assert_eq!(g.collect(), [(r.head as u32, 0)]);
        assert_eq!(g.status_of(&r), 0xee, "nothing written into a readable buffer");
        assert_ne!(g.status() & status::DEVICE_NEEDS_RESET, 0);
        assert_eq!(g.interrupts(), ["interrupt msi addr=0xfee01000 data=0x40"], "the config vector (0)");
        // The driver resets and probes again; the disk serves again.
        g.probe(true);
        let r = g.build(T_IN, 2, &[512], true, false);
        assert_eq!(g.one(&r), (513, OK));
        assert_eq!(g.read_mem(r.data[0].0, 512), [0x5a; 512]);
    });
    let mut expect = pattern((SECTORS * SECTOR) as usize, 7);
    expect[2 * 512..3 * 512].fill(0x5a);
    assert!(image.bytes() == expect, "only the good write reached the image");
    let t = bus.device(id);
    let (b, v) = (t.device().stats(), t.virtio().stats());
    assert_eq!((b.errors, b.unsupported, b.malformed, b.unanswerable), (9, 1, 3, 1));
    assert_eq!((v.needs_reset, v.resets), (1, 2));
}

#[test]
fn reset_and_a_moved_bar() {
    let image = Image::new("reset");
    const MOVED: u64 = 0xf200_0000;
    let ((), bus, id, xen) = with_guest(&image, true, |g| {
        g.enumerate(BAR0);
        g.probe(true);
        assert_eq!(g.features & BLK_F_RO, BLK_F_RO, "a read-only disk says so");
        let w = g.build(T_OUT, 0, &[512], false, false);
        assert_eq!(g.one(&w), (1, IOERR), "a write to a read-only disk");
        // The driver resets: every register back to its initial state.
        g.common_w(STATUS, Size::B1, 0);
        let regs = [
            g.status() as u64,
            g.common_r(MSIX_CONFIG, Size::B2),
            g.common_r(Q_ENABLE, Size::B2),
            g.common_r(Q_MSIX, Size::B2),
            g.common_r(Q_DESC, Size::B4),
            g.common_r(GF, Size::B4),
        ];
        assert_eq!(regs, [0, NO_VECTOR as u64, 0, NO_VECTOR as u64, 0, 0]);
        // A kick while reset reaches no queue, and sends nothing.
        g.interrupts();
        g.kick();
        assert!(g.interrupts().is_empty());
        // The guest moves BAR 0: the old range is released, the new one claimed.
        cfg_w(&g.cpu, 0x10, Size::B4, MOVED);
        let claimed = g.xen.claimed();
        assert!(claimed.contains(&IoRange::Mmio { start: MOVED, end: MOVED + 0x3fff }), "{claimed:?}");
        assert!(!claimed.iter().any(|r| matches!(r, IoRange::Mmio { start, .. } if *start == BAR0)));
        assert_eq!(g.cpu.mmio_read(BAR0 + NUM_QUEUES, Size::B2), None, "nothing at the old place");
        g.enumerate(MOVED);
        assert_eq!(g.f.common, MOVED);
        g.probe(true);
        let r = g.build(T_IN, 1, &[512], true, false);
        assert_eq!(g.one(&r), (513, OK));
        assert!(g.read_mem(r.data[0].0, 512) == pattern(1024, 7)[512..]);
        // MSI-X: a masked vector is held pending and sent at the unmask.
        g.interrupts();
        let ctl = g.f.msix_table + 16 + 12;
        g.w(ctl, Size::B4, 1);
        let r = g.build(T_IN, 1, &[512], true, false);
        assert_eq!(g.one(&r), (513, OK));
        assert!(g.interrupts().is_empty(), "nothing sent while masked");
        assert_eq!(g.r(g.f.msix_pba, Size::B8), 0x2, "vector 1 pending");
        g.w(ctl, Size::B4, 0);
        assert_eq!(g.interrupts(), ["interrupt msi addr=0xfee02000 data=0x41"]);
        assert_eq!(g.r(g.f.msix_pba, Size::B8), 0);
    });
    assert!(image.bytes() == pattern((SECTORS * SECTOR) as usize, 7), "a read-only image unchanged");
    let t = bus.device(id);
    assert_eq!(t.interrupt_stats().pending, 1);
    assert!(xen.claimed().is_empty(), "the session released everything at its end");
}

/// The device model's loop: a signal ends it; so does the domain's end
/// (asked once per period); each within a bounded time.
#[test]
fn serving_ends_on_a_signal_or_the_domains_end() {
    use std::time::{Duration, Instant};
    use virtio_blk::{serve, End};
    let image = Image::new("serve");
    let xen = SimXen::new(1);
    let file = std::fs::OpenOptions::new().read(true).write(true).open(&image.0).unwrap();
    let mut bus = Bus::new();
    bus.add(pci_function(DEV, Block::new(FileStorage::new(file).unwrap(), false, SERIAL)));
    let config = Config { logger: Logger::silent(), ..Config::default() };
    let mut session = Session::with_backend(xen.clone(), 4, config).unwrap();
    let x = xen.clone();
    let raiser = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        x.raise_signal(15);
    });
    let t0 = Instant::now();
    let mut asked = 0;
    // A loop that missed the signal would end here (bounded), with another answer.
    let end = serve(&mut session, &mut bus, Duration::from_millis(10), || {
        asked += 1;
        (t0.elapsed() > Duration::from_secs(10)).then(|| "10 s without the signal".to_string())
    });
    raiser.join().unwrap();
    assert_eq!(end.unwrap(), End::Signal(15));
    assert!(asked >= 1 && t0.elapsed() < Duration::from_secs(10), "asked {asked} times in {:?}", t0.elapsed());
    assert!(xen.claimed().contains(&IoRange::Pci(DEV)), "the bus was attached");

    let (t0, mut asked) = (Instant::now(), 0);
    let end = serve(&mut session, &mut bus, Duration::from_millis(10), || {
        asked += 1;
        (asked == 3 || t0.elapsed() > Duration::from_secs(10)).then(|| format!("gone at {asked}"))
    });
    assert_eq!(end.unwrap(), End::Gone("gone at 3".into()));
    let took = t0.elapsed();
    assert!(took >= Duration::from_millis(20) && took < Duration::from_secs(10), "took {took:?}");
}

/// Config space read at any width and alignment (Xen passes unaligned ones
/// on) agrees with its bytes, across the edge between the toolkit's header
/// and MSI-X and the virtio capabilities (0x4c), and past the end of both.
#[test]
fn config_reads_of_any_width_agree_with_their_bytes() {
    let image = Image::new("widths");
    let (bad, _, _, _) = with_guest(&image, false, |g| {
        let byte = |r: u16| cfg_r(&g.cpu, r, Size::B1);
        let mut bad = Vec::new();
        for reg in 0x00..0x100u16 {
            for size in [Size::B2, Size::B4] {
                let n = size.bytes() as u16;
                let want: u64 = (0..n).map(|i| byte(reg + i) << (8 * i)).sum();
                let got = cfg_r(&g.cpu, reg, size);
                if got != want {
                    bad.push((reg, n, got, want));
                }
            }
        }
        assert_eq!(cfg_r(&g.cpu, 0x40, Size::B2), 0x4c11, "MSI-X, then the virtio list at 0x4c");
        assert_eq!(cfg_r(&g.cpu, 0x4a, Size::B4), byte(0x4a) | (byte(0x4b) << 8) | (0x09 << 16) | (0x5c << 24));
        // A write across the edge, onto read-only bytes on both sides, changes nothing.
        let all = |g: &Guest| (0..0x100u16).map(|r| cfg_r(&g.cpu, r, Size::B1)).collect::<Vec<_>>();
        let before = all(g);
        cfg_w(&g.cpu, 0x4a, Size::B4, 0xffff_ffff);
        assert!(all(g) == before, "a straddling write changed read-only bytes");
        bad
    });
    assert_eq!(bad, [], "(reg, bytes, read, from its bytes)");
}
