//! The device against the toolkit's simulated hypervisor, driven the way the
//! real guest drives it (tests/guest/toolkit-guest.c, Linux's PCI core and
//! uio_pci_generic): config reads of the ids, BAR sizing and placement by the
//! kernel, decoding enabled by the driver, INTx masking probed, register
//! round trips through both BARs, interrupts raised and acknowledged the
//! uio way, a BAR moved, then the server torn down.

use ioreq_pci_device::{reg, SumDevice, CLASS, DEVICE, MAGIC, VENDOR};
use xendevicemodel::Logger;
use xendevicemodel_ioreq::{Bus, DeviceId, Handler};
use xendevicemodel_ioreq::{Config, Device, IoRange, Sbdf, Session, Size};
use xendevicemodel_ioreq_sim::{SimVcpu, SimXen};

const SLOT: u8 = 16;
const DEV: Sbdf = Sbdf::new(0, 0, SLOT, 0);
const MEM: u64 = 0xf300_0000;
const IO: u16 = 0xc100;
const COMMAND: u16 = 0x04;
const STATUS: u16 = 0x06;
const INTX_DISABLE: u64 = 1 << 10;
const INTERRUPT_STATUS: u64 = 1 << 3;

fn cfg_r(cpu: &SimVcpu, reg: u16, size: Size) -> u64 {
    cpu.pci_config_read(DEV, reg, size).expect("config read answered")
}
fn cfg_w(cpu: &SimVcpu, reg: u16, size: Size, v: u64) {
    cpu.pci_config_write(DEV, reg, size, v).expect("config write answered")
}

/// Runs `guest` on a simulated vCPU against a session serving the device;
/// returns what it saw, the bus with the device, the session (still open)
/// and the simulator.
fn with_guest<T: Send + 'static>(
    guest: impl FnOnce(&SimXen, &SimVcpu) -> T + Send + 'static,
) -> (T, Bus, DeviceId<SumDevice>, Session, std::sync::Arc<SimXen>) {
    let xen = SimXen::new(1);
    let mut bus = Bus::new();
    let dev = bus.add(SumDevice::new(SLOT));
    let config = Config { logger: Logger::silent(), ..Config::default() };
    let mut session = Session::with_backend(xen.clone(), 7, config).unwrap();
    bus.attach(session.server()).unwrap();
    assert_eq!(xen.take_calls().last().map(String::as_str), Some("claim id=1 pci 0000:00:10.0"));
    let x = xen.clone();
    let seen = xendevicemodel_ioreq_sim::serve_while(&mut session, &mut bus, move || guest(&x, &x.vcpu(0)));
    (seen, bus, dev, session, xen)
}

/// The kernel's part: ids, BAR sizing and placement, then the driver's
/// pci_enable_device (decoding on) and uio_pci_generic's INTx mask probe.
fn enumerate_and_enable(cpu: &SimVcpu) -> Vec<(&'static str, u64)> {
    let mut seen = vec![
        ("ids", cfg_r(cpu, 0, Size::B4)),
        ("class/revision", cfg_r(cpu, 8, Size::B4)),
        ("subsystem", cfg_r(cpu, 0x2c, Size::B4)),
        ("pin", cfg_r(cpu, 0x3d, Size::B1)),
    ];
    for (bar, at) in [(0x10u16, MEM), (0x14, IO as u64)] {
        let orig = cfg_r(cpu, bar, Size::B4);
        cfg_w(cpu, bar, Size::B4, 0xffff_ffff);
        seen.push(("size mask", cfg_r(cpu, bar, Size::B4)));
        cfg_w(cpu, bar, Size::B4, orig);
        cfg_w(cpu, bar, Size::B4, at);
    }
    assert_eq!(cpu.mmio_read(MEM + reg::MAGIC, Size::B4), None, "no decoding before the driver enables it");
    cfg_w(cpu, COMMAND, Size::B2, 0x3); // I/O and memory decoding
    let cmd = cfg_r(cpu, COMMAND, Size::B2);
    cfg_w(cpu, COMMAND, Size::B2, cmd | INTX_DISABLE);
    seen.push(("INTx Disable sticks", cfg_r(cpu, COMMAND, Size::B2) & INTX_DISABLE));
    cfg_w(cpu, COMMAND, Size::B2, cmd);
    seen
}

#[test]
fn a_guest_enumerates_uses_and_loses_the_device() {
    const N: u32 = 8;
    let (seen, bus, dev, session, xen) = with_guest(|x, cpu| {
        let mut seen = enumerate_and_enable(cpu);
        // Registers through BAR0 (memory) and BAR1 (ports): one register file.
        let mr = |off| cpu.mmio_read(MEM + off, Size::B4).unwrap();
        let pr = |off: u64| cpu.pio_read(IO + off as u16, Size::B4).unwrap();
        seen.push(("MAGIC by MMIO", mr(reg::MAGIC)));
        seen.push(("MAGIC by port", pr(reg::MAGIC)));
        cpu.mmio_write(MEM + reg::A, Size::B4, 40).unwrap();
        cpu.pio_write(IO + reg::B as u16, Size::B4, 2).unwrap();
        seen.push(("SUM by MMIO", mr(reg::SUM)));
        seen.push(("SUM by port", pr(reg::SUM)));
        cpu.pio_write(IO + reg::A as u16, Size::B4, 0xffff_fffe).unwrap();
        cpu.mmio_write(MEM + reg::B, Size::B4, 3).unwrap();
        seen.push(("SUM wraps", mr(reg::SUM)));
        cpu.mmio_write(MEM + reg::A + 1, Size::B1, 0x12).unwrap();
        seen.push(("A after a byte write", mr(reg::A)));
        seen.push(("SUM's high half", cpu.mmio_read(MEM + reg::SUM + 2, Size::B2).unwrap()));
        seen.push(("outside the registers", mr(0x800)));
        // Interrupts, as uio_pci_generic and its user handle them.
        let mut levels = Vec::new();
        for _ in 0..N {
            cpu.mmio_write(MEM + reg::DOORBELL, Size::B4, 1).unwrap();
            levels.push(x.intx(SLOT, 0));
            // The kernel's handler: Interrupt Status set? then INTx Disable.
            assert_ne!(cfg_r(cpu, STATUS, Size::B2) & INTERRUPT_STATUS, 0);
            let cmd = cfg_r(cpu, COMMAND, Size::B2);
            cfg_w(cpu, COMMAND, Size::B2, cmd | INTX_DISABLE);
            levels.push(x.intx(SLOT, 0));
            assert_ne!(cfg_r(cpu, STATUS, Size::B2) & INTERRUPT_STATUS, 0, "status shows it while masked");
            // The user: acknowledge at the device, then unmask through uio.
            cpu.mmio_write(MEM + reg::ACK, Size::B4, 1).unwrap();
            assert_eq!(cfg_r(cpu, STATUS, Size::B2) & INTERRUPT_STATUS, 0);
            cfg_w(cpu, COMMAND, Size::B2, cmd & !INTX_DISABLE);
            levels.push(x.intx(SLOT, 0));
        }
        assert_eq!(levels, [true, false, false].repeat(N as usize), "INTx line per step");
        seen.push(("DOORBELL counts", mr(reg::DOORBELL)));
        seen.push(("ACK: none pending", mr(reg::ACK)));
        // An interrupt raised while masked stays off the line until unmasked.
        cfg_w(cpu, COMMAND, Size::B2, 0x3 | INTX_DISABLE);
        cpu.pio_write(IO + reg::DOORBELL as u16, Size::B4, 1).unwrap();
        seen.push(("line while masked", x.intx(SLOT, 0) as u64));
        cfg_w(cpu, COMMAND, Size::B2, 0x3);
        seen.push(("line once unmasked", x.intx(SLOT, 0) as u64));
        cpu.pio_write(IO + reg::ACK as u16, Size::B4, 1).unwrap();
        // The BAR moves: the old range is released, the new one claimed.
        cfg_w(cpu, COMMAND, Size::B2, 0x1);
        cfg_w(cpu, 0x10, Size::B4, MEM + 0x10_0000);
        cfg_w(cpu, COMMAND, Size::B2, 0x3);
        assert_eq!(cpu.mmio_read(MEM + reg::SUM, Size::B4), None, "the old place is released");
        seen.push(("SUM at the new place", cpu.mmio_read(MEM + 0x10_0000 + reg::SUM, Size::B4).unwrap()));
        seen
    });
    let want: Vec<(&str, u64)> = vec![
        ("ids", ((DEVICE as u64) << 16) | VENDOR as u64),
        ("class/revision", ((CLASS as u64) << 8) | 1),
        ("subsystem", ((DEVICE as u64) << 16) | VENDOR as u64),
        ("pin", 1),
        ("size mask", 0xffff_f000),
        ("size mask", 0xffff_ffe1),
        ("INTx Disable sticks", INTX_DISABLE),
        ("MAGIC by MMIO", MAGIC as u64),
        ("MAGIC by port", MAGIC as u64),
        ("SUM by MMIO", 42),
        ("SUM by port", 42),
        ("SUM wraps", 1),
        ("A after a byte write", 0xffff_12fe),
        ("SUM's high half", 0xffff),
        ("outside the registers", 0),
        ("DOORBELL counts", N as u64),
        ("ACK: none pending", 0),
        ("line while masked", 0),
        ("line once unmasked", 1),
        ("SUM at the new place", 0xffff_1301),
    ];
    assert_eq!(seen, want);
    assert_eq!(bus.device(dev).raised(), N + 1);
    assert_eq!(bus.stray(), 0, "the read of the released place never reached the bus");
    let calls = xen.take_calls();
    let claims: Vec<&String> = calls.iter().filter(|c| c.starts_with("claim") || c.starts_with("release")).collect();
    assert_eq!(
        claims,
        [
            "claim id=1 mmio 0xf3000000-0xf3000fff",
            "claim id=1 port 0xc100-0xc11f",
            "release id=1 mmio 0xf3000000-0xf3000fff",
            "claim id=1 mmio 0xf3100000-0xf3100fff",
        ]
    );
    let intx = calls.iter().filter(|c| c.contains("pci-intx 0000:00:10.0 pin=0")).count();
    assert_eq!(intx, 2 * (N as usize + 1), "one raise and one lower per interrupt, no repeats");
    assert_eq!(session.stats().refused, 0);
    // Teardown: disabled, then destroyed.
    session.close().unwrap();
    assert!(!xen.server_exists());
    assert_eq!(
        xen.take_calls(),
        [
            "set_ioreq_server_state id=1 enabled=false",
            "destroy_ioreq_server id=1",
            "unbind 5",
            "close events",
            "unmap_ioreq_pages id=1"
        ]
    );
}

#[test]
fn the_function_claimed_is_the_slot_asked_for() {
    let dev = SumDevice::new(SLOT);
    assert_eq!(
        dev.regions(),
        [(xendevicemodel_ioreq::pci::CONFIG, IoRange::Pci(DEV))],
        "no BAR before the guest places it"
    );
    assert_eq!(DEV.to_string(), "0000:00:10.0");
}
