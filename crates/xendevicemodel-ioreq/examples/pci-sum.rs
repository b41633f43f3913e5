//! A PCI device in Rust: BAR0 has registers A (0x0), B (0x4), SUM (0x8, reads A + B)
//! and IRQ (0xc: write 1 to raise INTx, 0 to lower it). Usage: pci-sum DOMID [SLOT]
use std::sync::Arc;
use xendevicemodel::DeviceModel;
use xendevicemodel_ioreq::pci::{BarKind, ConfigSpace, CONFIG};
use xendevicemodel_ioreq::regs::{self, Registers};
use xendevicemodel_ioreq::{Access, Bus, Config, Ctx, Device, IoRange, RegionId, Sbdf, Session};

pub struct Sum {
    pub cfg: ConfigSpace,
    pub regs: [u32; 2],
}

impl Sum {
    pub fn new(slot: u8) -> Self {
        let cfg = ConfigSpace::new(Sbdf::new(0, 0, slot, 0), 0x5845, 0x5355, 0xff0000, 1)
            .with_bar(0, BarKind::Memory32, 4096)
            .with_interrupt_pin(1);
        Sum { cfg, regs: [0; 2] }
    }
}

impl Registers for Sum {
    fn read_register(&mut self, _: &mut Ctx<'_>, _bar: RegionId, offset: u64) -> u32 {
        match offset {
            0 | 4 => self.regs[offset as usize / 4],
            8 => self.regs[0].wrapping_add(self.regs[1]),
            0xc => self.cfg.intx_pending() as u32,
            _ => u32::MAX,
        }
    }

    fn write_register(&mut self, ctx: &mut Ctx<'_>, _bar: RegionId, offset: u64, v: u32, mask: u32) {
        match offset {
            0 | 4 => self.regs[offset as usize / 4] = self.regs[offset as usize / 4] & !mask | v & mask,
            0xc => drop(self.cfg.set_intx(ctx, v & 1 != 0)), // failures are logged by ConfigSpace
            _ => {}
        }
    }
}

impl Device for Sum {
    fn regions(&self) -> Vec<(RegionId, IoRange)> {
        self.cfg.regions()
    }

    fn read(&mut self, ctx: &mut Ctx<'_>, a: Access) -> u64 {
        match a.region {
            CONFIG => self.cfg.read(a.offset as u16, a.size),
            _ => regs::read(self, ctx, a),
        }
    }

    fn write(&mut self, ctx: &mut Ctx<'_>, a: Access, v: u64) {
        match a.region {
            CONFIG => drop(self.cfg.write(ctx, a.offset as u16, a.size, v)), // failures are logged
            _ => regs::write(self, ctx, a, v),
        }
    }
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let domid = args.get(1).ok_or("usage: pci-sum DOMID [SLOT]")?.parse()?;
    let slot = args.get(2).map_or(Ok(5), |s| s.parse())?;
    let mut bus = Bus::new();
    let dev = bus.add(Sum::new(slot));
    let config = Config { stop_on_signals: true, ..Config::default() };
    let mut session = Session::open(Arc::new(DeviceModel::open()?), domid, config)?;
    eprintln!("pci-sum: serving {} of domain {domid} (server {})", bus.device(dev).cfg.sbdf(), session.id());
    let exit = session.run(&mut bus)?; // until SIGINT, SIGTERM or SIGHUP
    eprintln!("pci-sum: {exit:?}, {:?}", session.stats());
    Ok(()) // dropping the session disables and destroys the server
}
