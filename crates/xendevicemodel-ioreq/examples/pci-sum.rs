//! A PCI device in Rust: BAR0 has registers A (0x0), B (0x4), SUM (0x8, reads A + B)
//! and IRQ (0xc: write 1 to raise INTx, 0 to lower it). Usage: pci-sum DOMID [SLOT]
use std::sync::Arc;
use xendevicemodel::DeviceModel;
use xendevicemodel_ioreq::pci::{BarKind, ConfigSpace};
use xendevicemodel_ioreq::{Access, Config, Ctx, Device, IoRange, Sbdf, Session, Space};

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

impl Device for Sum {
    fn read(&mut self, _: &mut Ctx<'_>, a: Access) -> u64 {
        match (a.space, self.cfg.bar_offset(a.space)) {
            (Space::PciConfig { reg, .. }, _) => self.cfg.read(reg, a.size),
            (_, Some((0, 0))) => self.regs[0] as u64,
            (_, Some((0, 4))) => self.regs[1] as u64,
            (_, Some((0, 8))) => self.regs[0].wrapping_add(self.regs[1]) as u64,
            (_, Some((0, 0xc))) => self.cfg.intx_pending() as u64,
            _ => u64::MAX,
        }
    }

    fn write(&mut self, ctx: &mut Ctx<'_>, a: Access, v: u64) {
        let _ = match (a.space, self.cfg.bar_offset(a.space)) {
            (Space::PciConfig { reg, .. }, _) => self.cfg.write(ctx, reg, a.size, v),
            (_, Some((0, off @ (0 | 4)))) => {
                self.regs[off as usize / 4] = v as u32;
                Ok(())
            }
            (_, Some((0, 0xc))) => self.cfg.set_intx(ctx, v & 1 != 0),
            _ => Ok(()),
        }; // failures are logged by ConfigSpace
    }
}

#[allow(dead_code)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let domid = args.get(1).ok_or("usage: pci-sum DOMID [SLOT]")?.parse()?;
    let slot = args.get(2).map_or(Ok(5), |s| s.parse())?;
    let mut dev = Sum::new(slot);
    let config = Config { ranges: vec![IoRange::Pci(dev.cfg.sbdf())], ..Config::default() };
    let mut session = Session::open(Arc::new(DeviceModel::open()?), domid, config)?;
    eprintln!("pci-sum: serving {} of domain {domid} (server {})", dev.cfg.sbdf(), session.id());
    let exit = session.run(&mut dev)?;
    eprintln!("pci-sum: {exit:?}, {:?}", session.stats());
    Ok(()) // dropping the session disables and destroys the server
}
