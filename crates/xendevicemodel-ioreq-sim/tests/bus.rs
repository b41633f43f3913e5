//! The device bus and the register helpers against the simulated
//! hypervisor: regions claimed at attach, accesses routed as offsets,
//! overlapping regions refused, strays counted, a device's changed regions
//! re-claimed; narrow, unaligned and 8-byte accesses as register reads and
//! masked writes.

use std::sync::{Arc, Mutex};
use xendevicemodel::{Errno, Level, Log, Logger};
use xendevicemodel_ioreq::regs::{self, Registers};
use xendevicemodel_ioreq::*;
use xendevicemodel_ioreq_sim::{serve_while, SimVcpu, SimXen};

/// Four 32-bit registers at MMIO `base`; every register call is recorded.
struct Regs {
    base: u64,
    r: [u32; 4],
    calls: Vec<(&'static str, u64, u32, u32)>,
}

impl Registers for Regs {
    fn read_register(&mut self, _: &mut Ctx<'_>, _: RegionId, off: u64) -> u32 {
        self.calls.push(("read", off, 0, 0));
        self.r.get(off as usize / 4).copied().unwrap_or(0xdead_beef)
    }
    fn write_register(&mut self, _: &mut Ctx<'_>, _: RegionId, off: u64, v: u32, mask: u32) {
        self.calls.push(("write", off, v, mask));
        if let Some(r) = self.r.get_mut(off as usize / 4) {
            *r = *r & !mask | v & mask;
        }
    }
}

impl Device for Regs {
    fn regions(&self) -> Vec<(RegionId, IoRange)> {
        vec![(3, IoRange::Mmio { start: self.base, end: self.base + 15 })]
    }
    fn read(&mut self, ctx: &mut Ctx<'_>, a: Access) -> u64 {
        assert_eq!(a.region, 3);
        regs::read(self, ctx, a)
    }
    fn write(&mut self, ctx: &mut Ctx<'_>, a: Access, v: u64) {
        regs::write(self, ctx, a, v)
    }
}

#[derive(Default)]
struct Capture(Mutex<Vec<String>>);
impl Log for Capture {
    fn log(&self, _: Level, _: Option<Errno>, message: &str) {
        self.0.lock().unwrap().push(message.to_owned());
    }
}

/// Serves `bus` on a session while `guest` runs on vCPU 0.
fn serve<T: Send + 'static>(
    bus: &mut Bus,
    logger: Logger,
    guest: impl FnOnce(&SimVcpu) -> T + Send + 'static,
) -> (T, Arc<SimXen>, Result<()>) {
    let xen = SimXen::new(1);
    let config = Config { logger, ..Config::default() };
    let mut session = Session::with_backend(xen.clone(), 2, config).unwrap();
    let attached = bus.attach(session.server());
    let x = xen.clone();
    let seen = serve_while(&mut session, bus, move || guest(&x.vcpu(0)));
    (seen, xen, attached)
}

#[test]
fn registers_take_any_size_and_alignment() {
    const B: u64 = 0xfe00_0000;
    let mut bus = Bus::new();
    let id = bus.add(Regs { base: B, r: [0x4433_2211, 0x8877_6655, 0, 0], calls: Vec::new() });
    let (seen, _, attached) = serve(&mut bus, Logger::silent(), |cpu| {
        let r = |a, s| cpu.mmio_read(a, s).unwrap();
        let seen = vec![
            r(B + 1, Size::B1),
            r(B + 2, Size::B2),
            r(B + 3, Size::B2), // across registers 0 and 1
            r(B, Size::B8),     // two registers
            r(B + 6, Size::B4), // unaligned, across
        ];
        cpu.mmio_write(B + 9, Size::B1, 0xab).unwrap();
        cpu.mmio_write(B + 11, Size::B2, 0xcdef).unwrap(); // bytes 11 and 12
        cpu.mmio_write(B + 4, Size::B8, 0x0102_0304_0506_0708).unwrap();
        seen
    });
    attached.unwrap();
    assert_eq!(seen, [0x22, 0x4433, 0x5544, 0x8877_6655_4433_2211, 0x0000_8877]);
    let dev = bus.device(id);
    assert_eq!(dev.r, [0x4433_2211, 0x0506_0708, 0x0102_0304, 0xcd]);
    let writes: Vec<_> = dev.calls.iter().filter(|c| c.0 == "write").copied().collect();
    assert_eq!(
        writes,
        [
            ("write", 8, 0x0000_ab00, 0x0000_ff00),
            ("write", 8, 0xef00_0000, 0xff00_0000),
            ("write", 12, 0x0000_00cd, 0x0000_00ff),
            ("write", 4, 0x0506_0708, 0xffff_ffff),
            ("write", 8, 0x0102_0304, 0xffff_ffff),
        ]
    );
}

/// A device whose region the test moves (through `device_mut`).
struct Movable(u16);
impl Device for Movable {
    fn regions(&self) -> Vec<(RegionId, IoRange)> {
        vec![(0, IoRange::Port { start: self.0, end: self.0 + 1 })]
    }
    fn read(&mut self, _: &mut Ctx<'_>, a: Access) -> u64 {
        0x100 + a.offset
    }
    fn write(&mut self, _: &mut Ctx<'_>, _: Access, _: u64) {}
}

#[test]
fn the_bus_claims_routes_refuses_overlaps_and_counts_strays() {
    let cap = Arc::new(Capture::default());
    let mut bus = Bus::new();
    let a = bus.add(Movable(0x510));
    let _b = bus.add(Movable(0x511)); // overlaps a's 0x510-0x511
    let (seen, xen, attached) = serve(&mut bus, Logger::custom(cap.clone()), |cpu| {
        (cpu.pio_read(0x510, Size::B2), cpu.pio_read(0x511, Size::B2), cpu.pio_read(0x512, Size::B2))
    });
    assert_eq!(attached, Err(Error::InvalidRange), "the overlap is an error");
    assert!(cap.0.lock().unwrap().iter().any(|l| l.contains("overlaps port 0x510-0x511")), "{:?}", cap.0);
    assert_eq!(seen, (Some(0x100), Some(0x101), None), "offsets within a's region; 0x512 never claimed");
    assert_eq!(bus.routes(), [(IoRange::Port { start: 0x510, end: 0x511 }, 0, 0)]);
    assert_eq!(bus.stray(), 0);
    let claims: Vec<String> = xen.take_calls().into_iter().filter(|c| c.starts_with("claim")).collect();
    assert_eq!(claims, ["claim id=1 port 0x510-0x511"], "the overlapping range was never asked for");
    let _ = a;
}

#[test]
fn a_changed_device_is_reclaimed_on_the_same_server() {
    let xen = SimXen::new(1);
    let mut session =
        Session::with_backend(xen.clone(), 2, Config { logger: Logger::silent(), ..Config::default() }).unwrap();
    let mut bus = Bus::new();
    let a = bus.add(Movable(0x510));
    bus.attach(session.server()).unwrap();
    bus.device_mut(a).0 = 0x600;
    bus.attach(session.server()).unwrap();
    let claims: Vec<String> = xen.take_calls().into_iter().filter(|c| c.contains("port")).collect();
    assert_eq!(claims, ["claim id=1 port 0x510-0x511", "release id=1 port 0x510-0x511", "claim id=1 port 0x600-0x601"]);
    assert_eq!(xen.claimed(), [IoRange::Port { start: 0x600, end: 0x601 }]);
    // A stray: a request for a port the bus no longer routes (Xen still had it queued).
    let mut ctx_bus = bus;
    let xs = xen.clone();
    let v = serve_while(&mut session, &mut ctx_bus, move || {
        xs.vcpu(0).request(&xendevicemodel_ioreq_sim::pio(0x510, Size::B1, true, 0))
    });
    assert_eq!(v, Some(0xff), "a stray read reads as all ones (1 byte)");
    assert_eq!(ctx_bus.stray(), 1);
}
