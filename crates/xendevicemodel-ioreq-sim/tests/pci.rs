//! docs/rust.md's PCI device (examples/pci-sum.rs) against the simulated
//! hypervisor, driven the way a guest's firmware and driver drive it:
//! enumeration, BAR sizing and placement (the server claims the BAR where
//! the guest puts it, and only while memory decoding is on), register
//! reads and writes, INTx with the status and disable bits (what
//! uio_pci_generic uses), a moved BAR.

#![allow(clippy::vec_init_then_push)]

#[path = "../../xendevicemodel-ioreq/examples/pci-sum.rs"]
mod pci_sum;

use xendevicemodel::Logger;
use xendevicemodel_ioreq::*;
use xendevicemodel_ioreq_sim::{serve_while, SimXen};

const DEV: Sbdf = Sbdf::new(0, 0, 5, 0);
const BAR: u64 = 0xf100_0000;

#[test]
fn the_readme_device_serves_a_simulated_guest() {
    let xen = SimXen::new(2);
    let mut bus = Bus::new();
    let dev = bus.add(pci_sum::Sum::new(5));
    let config = Config { logger: Logger::silent(), ..Config::default() };
    let mut session = Session::with_backend(xen.clone(), 3, config).unwrap();
    xen.take_calls();
    // What run() does first; here before the guest thread starts.
    bus.attach(session.server()).unwrap();
    let x = xen.clone();
    let seen = serve_while(&mut session, &mut bus, move || {
        let cpu = x.vcpu(1);
        let cfg_r = |reg, size| cpu.pci_config_read(DEV, reg, size).expect("config read answered");
        let cfg_w = |reg, size, v| cpu.pci_config_write(DEV, reg, size, v).expect("config write answered");
        let mut seen = Vec::new();
        // Enumeration: ids, class, header type, pin.
        seen.push(("ids", cfg_r(0, Size::B4)));
        seen.push(("class/revision", cfg_r(8, Size::B4)));
        seen.push(("header type", cfg_r(0xe, Size::B1)));
        seen.push(("pin", cfg_r(0x3d, Size::B1)));
        // An unclaimed function is not ours: Xen sends it elsewhere.
        assert_eq!(cpu.pci_config_read(Sbdf::new(0, 0, 6, 0), 0, Size::B4), None);
        // BAR sizing, then placement; no decoding yet, so no MMIO reaches us.
        cfg_w(0x10, Size::B4, 0xffff_ffff);
        seen.push(("BAR0 size mask", cfg_r(0x10, Size::B4)));
        cfg_w(0x10, Size::B4, BAR);
        seen.push(("BAR0", cfg_r(0x10, Size::B4)));
        assert_eq!(cpu.mmio_read(BAR, Size::B4), None, "decoding is off");
        cfg_w(0x4, Size::B2, 0x2); // memory decoding on
                                   // The registers.
        cpu.mmio_write(BAR, Size::B4, 40).unwrap();
        cpu.mmio_write(BAR + 4, Size::B4, 2).unwrap();
        seen.push(("SUM", cpu.mmio_read(BAR + 8, Size::B4).unwrap()));
        cpu.mmio_write(BAR, Size::B4, 0xffff_ffff).unwrap();
        seen.push(("SUM wraps", cpu.mmio_read(BAR + 8, Size::B4).unwrap()));
        seen.push(("A", cpu.mmio_read(BAR, Size::B4).unwrap()));
        seen.push(("beyond", cpu.mmio_read(BAR + 0x100, Size::B4).unwrap()));
        // INTx: raised, masked with INTx Disable (status still shows it), unmasked, lowered.
        cpu.mmio_write(BAR + 0xc, Size::B4, 1).unwrap();
        let intx = |x: &SimXen| x.intx(5, 0);
        seen.push(("INTx after raise", intx(&x) as u64));
        seen.push(("status", cfg_r(0x6, Size::B2)));
        cfg_w(0x4, Size::B2, 0x402);
        seen.push(("INTx while disabled", intx(&x) as u64));
        seen.push(("status while disabled", cfg_r(0x6, Size::B2)));
        cfg_w(0x4, Size::B2, 0x002);
        seen.push(("INTx re-enabled", intx(&x) as u64));
        cpu.mmio_write(BAR + 0xc, Size::B4, 0).unwrap();
        seen.push(("INTx after lower", intx(&x) as u64));
        seen.push(("status after lower", cfg_r(0x6, Size::B2)));
        // Read-only bits stay: ids, pin; the line register is writable.
        cfg_w(0, Size::B4, 0);
        cfg_w(0x3d, Size::B1, 4);
        cfg_w(0x3c, Size::B1, 11);
        seen.push(("ids after write", cfg_r(0, Size::B4)));
        seen.push(("line/pin", cfg_r(0x3c, Size::B2)));
        // The BAR moves: decoding off, new address, decoding on.
        cfg_w(0x4, Size::B2, 0);
        cfg_w(0x10, Size::B4, BAR + 0x10_0000);
        cfg_w(0x4, Size::B2, 2);
        assert_eq!(cpu.mmio_read(BAR + 8, Size::B4), None, "the old place is released");
        seen.push(("SUM at the new place", cpu.mmio_read(BAR + 0x10_0008, Size::B4).unwrap()));
        seen
    });
    let want: Vec<(&str, u64)> = vec![
        ("ids", 0x5355_5845),
        ("class/revision", 0xff00_0001),
        ("header type", 0),
        ("pin", 1),
        ("BAR0 size mask", 0xffff_f000),
        ("BAR0", BAR),
        ("SUM", 42),
        ("SUM wraps", 1),
        ("A", 0xffff_ffff),
        ("beyond", 0xffff_ffff),
        ("INTx after raise", 1),
        ("status", 0x8),
        ("INTx while disabled", 0),
        ("status while disabled", 0x8),
        ("INTx re-enabled", 1),
        ("INTx after lower", 0),
        ("status after lower", 0),
        ("ids after write", 0x5355_5845),
        ("line/pin", 0x010b),
        ("SUM at the new place", 1),
    ];
    assert_eq!(seen, want);
    assert_eq!(
        xen.take_calls(),
        [
            "claim id=1 pci 0000:00:05.0",
            "claim id=1 mmio 0xf1000000-0xf1000fff",
            "interrupt pci-intx 0000:00:05.0 pin=0 level=1",
            "interrupt pci-intx 0000:00:05.0 pin=0 level=0",
            "interrupt pci-intx 0000:00:05.0 pin=0 level=1",
            "interrupt pci-intx 0000:00:05.0 pin=0 level=0",
            "release id=1 mmio 0xf1000000-0xf1000fff",
            "claim id=1 mmio 0xf1100000-0xf1100fff",
        ]
    );
    assert_eq!(session.stats().refused, 0);
    assert_eq!(bus.stray(), 0);
    assert_eq!(bus.device(dev).regs, [0xffff_ffff, 2]);
}
