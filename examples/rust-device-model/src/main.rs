//! A small device model on the safe `xendevicemodel` crate: it claims a
//! serial port's registers and a PCI function for a guest, enables its IOREQ
//! server, pulses the port's interrupt, tracks dirty VRAM once, and tears
//! everything down, reporting each step. No `unsafe` anywhere.
//!
//! Usage: rust-device-model <domid>. Without a hypervisor, run it against
//! the privcmd test double (`make check` does).

use std::process::ExitCode;
use xendevicemodel::{BufIoreq, DeviceModel, Error, IoSpace, Sbdf};

fn run(domid: u16) -> xendevicemodel::Result<()> {
    let dm = DeviceModel::open()?;
    println!("opened ({})", if dm.uses_xencall() { "libxencall" } else { "privcmd DM_OP ioctl" });
    println!("domain {domid}: {} vCPUs", dm.nr_vcpus(domid)?);

    let id = dm.create_ioreq_server(domid, BufIoreq::Atomic)?;
    let info = dm.get_ioreq_server_info(domid, id, false)?;
    println!("IOREQ server {id}: buffered ioreq event channel {}", info.bufioreq_port);
    dm.map_io_range(domid, id, IoSpace::Port, 0x3f8, 0x3ff)?;
    dm.map_pcidev(domid, id, Sbdf::new(0, 0, 3, 0))?;
    // A device number above 31 is refused before anything is sent.
    match Sbdf::try_new(0, 0, 32, 0).and_then(|sbdf| dm.map_pcidev(domid, id, sbdf)) {
        Err(Error::InvalidArgument(why)) => println!("refused as expected: {why}"),
        other => println!("unexpected: {other:?}"),
    }
    dm.set_ioreq_server_state(domid, id, true)?;

    dm.set_isa_irq_level(domid, 4, true)?;
    dm.set_isa_irq_level(domid, 4, false)?;
    let mut bitmap = [0u8; 4];
    dm.track_dirty_vram(domid, 0xa0, 32, &mut bitmap)?;
    println!("dirty VRAM bitmap: {bitmap:02x?}");

    dm.set_ioreq_server_state(domid, id, false)?;
    dm.unmap_pcidev(domid, id, Sbdf::new(0, 0, 3, 0))?;
    dm.unmap_io_range(domid, id, IoSpace::Port, 0x3f8, 0x3ff)?;
    dm.destroy_ioreq_server(domid, id)?;
    dm.close()?;
    println!("done");
    Ok(())
}

fn main() -> ExitCode {
    let domid = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(5);
    match run(domid) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rust-device-model: {e} (errno {:?})", e.errno());
            ExitCode::FAILURE
        }
    }
}
