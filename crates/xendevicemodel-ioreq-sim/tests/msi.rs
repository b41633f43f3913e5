//! MSI and MSI-X of a toolkit device, driven by a simulated guest the way
//! Linux's PCI core programs them: the capability list, MSI's address, data,
//! granted vectors and per-vector mask and pending bits, MSI-X's table and
//! pending bits in a BAR, the function mask; every vector delivered through
//! inject_msi exactly when and as the guest's setup says, INTx before either
//! is enabled.

#![allow(clippy::vec_init_then_push)]

use xendevicemodel::Logger;
use xendevicemodel_ioreq::pci::{BarKind, ConfigSpace, Delivery, CONFIG};
use xendevicemodel_ioreq::*;
use xendevicemodel_ioreq_sim::{serve_while, SimVcpu, SimXen};

const DEV: Sbdf = Sbdf::new(0, 0, 6, 0);
const MEM: u64 = 0xf400_0000;
const MSI: u16 = 0x40;
const MSIX: u16 = 0x58;

/// BAR0: 0x000 rings vector `value`, 0x004 lowers INTx; MSI-X table at
/// 0x800, pending bits at 0xc00.
struct Ringer {
    cfg: ConfigSpace,
    deliveries: Vec<Delivery>,
}

impl Device for Ringer {
    fn regions(&self) -> Vec<(RegionId, IoRange)> {
        self.cfg.regions()
    }
    fn read(&mut self, _: &mut Ctx<'_>, a: Access) -> u64 {
        match a.region {
            CONFIG => self.cfg.read(a.offset as u16, a.size),
            bar => self.cfg.msix_read(bar as usize, a.offset, a.size).unwrap_or(0),
        }
    }
    fn write(&mut self, ctx: &mut Ctx<'_>, a: Access, v: u64) {
        if a.region == CONFIG {
            self.cfg.write(ctx, a.offset as u16, a.size, v).unwrap();
        } else if let Some(r) = self.cfg.msix_write(ctx, a.region as usize, a.offset, a.size, v) {
            r.unwrap();
        } else if a.offset == 0 {
            let d = self.cfg.signal(ctx, v as u16).unwrap();
            self.deliveries.push(d);
        } else if a.offset == 4 {
            self.cfg.set_intx(ctx, false).unwrap();
        }
    }
}

fn cfg_r(cpu: &SimVcpu, reg: u16, size: Size) -> u64 {
    cpu.pci_config_read(DEV, reg, size).expect("config read answered")
}
fn cfg_w(cpu: &SimVcpu, reg: u16, size: Size, v: u64) {
    cpu.pci_config_write(DEV, reg, size, v).expect("config write answered")
}
fn ring(cpu: &SimVcpu, vector: u64) {
    cpu.mmio_write(MEM, Size::B4, vector).unwrap();
}

#[test]
fn msi_and_msix_deliver_as_the_guest_programmed_them() {
    let xen = SimXen::new(1);
    let mut bus = Bus::new();
    let cfg = ConfigSpace::new(DEV, 0x5845, 0x1900, 0xff0000, 1)
        .with_bar(0, BarKind::Memory32, 4096)
        .with_interrupt_pin(1)
        .with_msi(4, true)
        .with_msix(4, 0, 0x800, 0xc00);
    let id = bus.add(Ringer { cfg, deliveries: Vec::new() });
    let mut session =
        Session::with_backend(xen.clone(), 3, Config { logger: Logger::silent(), ..Config::default() }).unwrap();
    bus.attach(session.server()).unwrap();
    let x = xen.clone();
    let seen = serve_while(&mut session, &mut bus, move || {
        let cpu = x.vcpu(0);
        let mut seen: Vec<(&str, u64)> = Vec::new();
        // The capability list: status bit 4, pointer, MSI then MSI-X.
        seen.push(("capability list", cfg_r(&cpu, 0x06, Size::B2) & 0x10));
        seen.push(("pointer", cfg_r(&cpu, 0x34, Size::B1)));
        seen.push(("MSI id/next", cfg_r(&cpu, MSI, Size::B2)));
        seen.push(("MSI control", cfg_r(&cpu, MSI + 2, Size::B2)));
        seen.push(("MSI-X id/next", cfg_r(&cpu, MSIX, Size::B2)));
        seen.push(("MSI-X control", cfg_r(&cpu, MSIX + 2, Size::B2)));
        seen.push(("MSI-X table", cfg_r(&cpu, MSIX + 4, Size::B4)));
        seen.push(("MSI-X PBA", cfg_r(&cpu, MSIX + 8, Size::B4)));
        cfg_w(&cpu, 0x10, Size::B4, MEM);
        cfg_w(&cpu, 0x04, Size::B2, 0x2);
        // Neither enabled: INTx.
        ring(&cpu, 0);
        seen.push(("INTx", x.intx(6, 0) as u64));
        cpu.mmio_write(MEM + 4, Size::B4, 0).unwrap();
        // MSI: address, data, 4 vectors granted, enabled.
        cfg_w(&cpu, MSI + 4, Size::B4, 0xfee0_1000);
        cfg_w(&cpu, MSI + 8, Size::B4, 0);
        cfg_w(&cpu, MSI + 12, Size::B2, 0x4040);
        cfg_w(&cpu, MSI + 2, Size::B2, 0x0021);
        ring(&cpu, 1);
        cfg_w(&cpu, MSI + 0x10, Size::B4, 0x4); // mask vector 2
        ring(&cpu, 2);
        seen.push(("MSI pending while masked", cfg_r(&cpu, MSI + 0x14, Size::B4)));
        cfg_w(&cpu, MSI + 0x10, Size::B4, 0); // unmask: sent now
        seen.push(("MSI pending after unmask", cfg_r(&cpu, MSI + 0x14, Size::B4)));
        ring(&cpu, 5); // not granted
                       // MSI-X: entry 0 programmed and unmasked, entry 1 left masked.
        cfg_w(&cpu, MSI + 2, Size::B2, 0);
        cpu.mmio_write(MEM + 0x800, Size::B4, 0xfee0_2000).unwrap();
        cpu.mmio_write(MEM + 0x804, Size::B4, 0).unwrap();
        cpu.mmio_write(MEM + 0x808, Size::B4, 0x51).unwrap();
        cpu.mmio_write(MEM + 0x80c, Size::B4, 0).unwrap();
        seen.push(("entry 1 control at reset", cpu.mmio_read(MEM + 0x81c, Size::B4).unwrap()));
        cfg_w(&cpu, MSIX + 2, Size::B2, 0x8000); // enable
        ring(&cpu, 0);
        ring(&cpu, 1);
        seen.push(("PBA with vector 1 pending", cpu.mmio_read(MEM + 0xc00, Size::B8).unwrap()));
        cpu.mmio_write(MEM + 0x810, Size::B8, 0xfee0_3000).unwrap();
        cpu.mmio_write(MEM + 0x818, Size::B4, 0x52).unwrap();
        cpu.mmio_write(MEM + 0x81c, Size::B4, 0).unwrap(); // unmask: sent now
        seen.push(("PBA after unmask", cpu.mmio_read(MEM + 0xc00, Size::B8).unwrap()));
        cfg_w(&cpu, MSIX + 2, Size::B2, 0xc000); // function mask
        ring(&cpu, 0);
        seen.push(("PBA while the function is masked", cpu.mmio_read(MEM + 0xc00, Size::B4).unwrap()));
        cfg_w(&cpu, MSIX + 2, Size::B2, 0x8000); // sent now
        ring(&cpu, 9); // beyond the table
        seen
    });
    let want: Vec<(&str, u64)> = vec![
        ("capability list", 0x10),
        ("pointer", 0x40),
        ("MSI id/next", 0x5805),
        ("MSI control", 0x0184), // 4 vectors asked, 64-bit, per-vector masking
        ("MSI-X id/next", 0x0011),
        ("MSI-X control", 3),
        ("MSI-X table", 0x800),
        ("MSI-X PBA", 0xc00),
        ("INTx", 1),
        ("MSI pending while masked", 0x4),
        ("MSI pending after unmask", 0),
        ("entry 1 control at reset", 1),
        ("PBA with vector 1 pending", 0x2),
        ("PBA after unmask", 0),
        ("PBA while the function is masked", 0x1),
    ];
    assert_eq!(seen, want);
    use Delivery::*;
    assert_eq!(bus.device(id).deliveries, [Intx, Msi, Pending, Dropped, Msix, Pending, Pending, Dropped]);
    let sent: Vec<String> = xen.take_calls().into_iter().filter(|c| c.starts_with("interrupt")).collect();
    assert_eq!(
        sent,
        [
            "interrupt pci-intx 0000:00:06.0 pin=0 level=1",
            "interrupt pci-intx 0000:00:06.0 pin=0 level=0",
            "interrupt msi addr=0xfee01000 data=0x4041",
            "interrupt msi addr=0xfee01000 data=0x4042",
            "interrupt msi addr=0xfee02000 data=0x51",
            "interrupt msi addr=0xfee03000 data=0x52",
            "interrupt msi addr=0xfee02000 data=0x51",
        ]
    );
}
