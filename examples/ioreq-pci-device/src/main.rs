//! `ioreq-pci-device DOMID SLOT`: serves [`SumDevice`] to domain DOMID as
//! PCI function 0000:00:SLOT.0, as a second IOREQ server beside the guest's
//! QEMU, until SIGTERM (or SIGINT, SIGHUP). Then it disables and destroys
//! the server, checks that Xen no longer knows it, and exits 0. Each step
//! is a line on stderr (tests/guest/toolkit.sh reads them).
#![forbid(unsafe_code)]

use ioreq_pci_device::{SumDevice, DEVICE, VENDOR};
use std::process::ExitCode;
use std::sync::Arc;
use xendevicemodel::{DeviceModel, Errno};
use xendevicemodel_ioreq::{Bus, Config, Handler, Session};

fn run(domid: u16, slot: u8) -> Result<(), String> {
    let dm = Arc::new(DeviceModel::open().map_err(|e| format!("opening privcmd: {e}"))?);
    let mut bus = Bus::new();
    let mut dev = SumDevice::new(slot);
    dev.verbose = true;
    let sbdf = dev.cfg.sbdf();
    let dev = bus.add(dev);
    let config = Config { stop_on_signals: true, ..Config::default() };
    let mut session =
        Session::open(dm.clone(), domid, config).map_err(|e| format!("setting up the ioreq server: {e}"))?;
    let id = session.id();
    // Claimed before the line below, which tells the guest to look for it.
    bus.attach(session.server()).map_err(|e| format!("claiming {sbdf}: {e}"))?;
    eprintln!(
        "ioreq-pci-device: serving {sbdf} ({VENDOR:04x}:{DEVICE:04x}) of domain {domid} as ioreq server {id}, {} vCPU(s), ports {:?}",
        session.nr_vcpus(),
        session.ports()
    );
    let exit = session.run(&mut bus).map_err(|e| format!("serving: {e}"))?;
    let (s, d) = (session.stats(), bus.device(dev));
    let c = d.counts;
    eprintln!(
        "ioreq-pci-device: {exit:?}: served {} requests ({} config, {} MMIO, {} port, {} stray), refused {}, ignored {}; {} interrupts raised",
        s.served, c.config, c.mmio, c.port, bus.stray(), s.refused, s.ignored, d.raised()
    );
    session.close().map_err(|e| format!("tearing down server {id}: {e}"))?;
    // The server must be gone from Xen, not only from this process.
    match dm.get_ioreq_server_info(domid, id, false) {
        Err(e) if e.errno() == Errno::ENOENT => {
            eprintln!("ioreq-pci-device: server {id} disabled and destroyed (Xen now answers ENOENT for it)");
            Ok(())
        }
        other => Err(format!("server {id} still known to Xen after teardown: {other:?}")),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let (Some(Ok(domid)), Some(Ok(slot))) = (args.get(1).map(|a| a.parse()), args.get(2).map(|a| a.parse::<u8>()))
    else {
        eprintln!("usage: ioreq-pci-device DOMID SLOT");
        return ExitCode::from(2);
    };
    if slot > 31 {
        eprintln!("ioreq-pci-device: slot {slot} is not 0-31");
        return ExitCode::from(2);
    }
    match run(domid, slot) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ioreq-pci-device: FAIL {e}");
            ExitCode::FAILURE
        }
    }
}
