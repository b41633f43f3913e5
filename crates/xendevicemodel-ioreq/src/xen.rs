//! [`Xen`]: the [`Backend`] for a real hypervisor. Device-model operations
//! go through a [`DeviceModel`]; pages are mapped and event channels bound
//! with `/dev/xen/privcmd` and `/dev/xen/evtchn` directly (the safe crate's
//! OS layer, `xendevicemodel::os`), as libxenforeignmemory and libxenevtchn
//! would, with no C library; eventfd and epoll are vmm-sys-util's.

use crate::abi::{BufferedPage, IoreqPage};
use crate::backend::{Backend, Events, Interrupt, IoRange, Pages, Stopper, Wake};
use crate::error::{Error, Result};
use crate::guest::{self, GuestChunk};
use crate::signals;
use std::sync::Arc;
use std::time::Duration;
use vmm_sys_util::epoll::{ControlOperation, Epoll, EpollEvent, EventSet};
use vmm_sys_util::eventfd::{EventFd, EFD_CLOEXEC, EFD_NONBLOCK};
use xendevicemodel::os::{self, Evtchn, Mapper, Mapping};
use xendevicemodel::{BufIoreq, DeviceModel, DomId, Errno, IoServId};

/// The real hypervisor, reached through a [`DeviceModel`] and privcmd.
#[derive(Debug)]
pub struct Xen {
    dm: Arc<DeviceModel>,
    privcmd: Mapper,
    /// Guest memory, mapped on first use and kept (see the `guest` module).
    guest: guest::Cache<GuestChunk>,
}

impl Xen {
    /// Uses `dm` for device-model operations and opens `/dev/xen/privcmd`
    /// for mappings.
    pub fn new(dm: Arc<DeviceModel>) -> Result<Self> {
        if !os::page_size_is_xens() {
            return Err(Error::Unsupported("the system's page size is not Xen's 4 KiB"));
        }
        let privcmd = Mapper::open().map_err(|errno| Error::Os { what: "open /dev/xen/privcmd", errno })?;
        Ok(Xen { dm, privcmd, guest: guest::Cache::default() })
    }

    /// The device-model handle.
    pub fn device_model(&self) -> &Arc<DeviceModel> {
        &self.dm
    }

    /// Maps chunk `n` of `domid`'s memory (frames n * 16 ..).
    fn map_chunk(&self, domid: DomId, n: u64) -> Result<Mapping> {
        let first = n * guest::CHUNK_PAGES as u64;
        let gfns: Vec<u64> = (first..first + guest::CHUNK_PAGES as u64).collect();
        self.privcmd.map_foreign(domid, &gfns).map_err(|errno| Error::Os { what: "map guest memory", errno })
    }

    /// How many 64 KiB chunks of guest memory were mapped so far (each
    /// stays mapped for every later copy until invalidated).
    pub fn guest_chunks_mapped(&self) -> u64 {
        self.guest.mapped()
    }
}

struct XenPages {
    map: Mapping,
    buffered: bool,
}

impl Pages for XenPages {
    fn ioreq(&self) -> &IoreqPage {
        // With a buffered page it is frame 0 of the mapping, ours frame 1.
        self.map.ioreq_page(self.buffered as usize)
    }
    fn buffered(&self) -> Option<&BufferedPage> {
        self.buffered.then(|| self.map.buffered_page(0))
    }
}

struct XenEvents {
    evtchn: Evtchn,
    bound: Vec<u32>,
    stop: Arc<EventFd>,
    /// Waits for the event channel, the stopper and, if asked, the signals.
    epoll: Epoll,
    signals: bool,
}

/// What woke the epoll wait (its events' data).
const TOKEN_EVTCHN: u64 = 0;
const TOKEN_STOP: u64 = 1;
const TOKEN_SIGNAL: u64 = 2;

impl Events for XenEvents {
    fn bind(&mut self, domid: DomId, remote_port: u32) -> Result<u32> {
        let p = self
            .evtchn
            .bind_interdomain(domid, remote_port)
            .map_err(|errno| Error::Os { what: "bind event channel", errno })?;
        self.bound.push(p);
        Ok(p)
    }

    fn unbind(&mut self, port: u32) -> Result<()> {
        self.bound.retain(|&p| p != port);
        self.evtchn.unbind(port).map_err(|errno| Error::Os { what: "unbind event channel", errno })
    }

    fn notify(&self, port: u32) -> Result<()> {
        self.evtchn.notify(port).map_err(|errno| Error::Os { what: "notify event channel", errno })
    }

    fn unmask(&mut self, port: u32) -> Result<()> {
        self.evtchn.unmask(port).map_err(|errno| Error::Os { what: "unmask event channel", errno })
    }

    fn wait(&mut self, ports: &mut [u32], timeout: Option<Duration>) -> Result<Wake> {
        let read = |e: &os::Evtchn, ports: &mut [u32]| {
            e.read(ports).map_err(|errno| Error::Os { what: "read event channel", errno })
        };
        // Ports already pending need no system call to wait for.
        let n = read(&self.evtchn, ports)?;
        if n > 0 {
            return Ok(Wake::Ports(n));
        }
        let ms = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as i32);
        let mut ready = [EpollEvent::default(); 3];
        let n = match self.epoll.wait(ms, &mut ready) {
            Ok(n) => n,
            // A signal without a handler of ours: nothing happened here.
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => 0,
            Err(e) => return Err(Error::Os { what: "epoll", errno: io_errno(e) }),
        };
        let woke = |token| ready[..n].iter().any(|e| e.data() == token);
        if woke(TOKEN_SIGNAL) || (self.signals && signals::signalled().is_some()) {
            return Ok(Wake::Signal(signals::signalled().unwrap_or(0)));
        }
        // Reading clears the counter (it is non-blocking: EAGAIN if not signalled).
        if woke(TOKEN_STOP) && self.stop.read().is_ok() {
            return Ok(Wake::Stopped);
        }
        match read(&self.evtchn, ports)? {
            0 => Ok(Wake::Timeout),
            n => Ok(Wake::Ports(n)),
        }
    }

    fn stopper(&self) -> Stopper {
        let stop = self.stop.clone();
        // A full counter only means it is signalled already.
        Stopper::new(move || drop(stop.write(1)))
    }
}

impl Drop for XenEvents {
    fn drop(&mut self) {
        // Closing the device unbinds too; unbinding first frees the ports now.
        for p in self.bound.drain(..) {
            let _ = self.evtchn.unbind(p);
        }
    }
}

impl Backend for Xen {
    fn nr_vcpus(&self, domid: DomId) -> Result<u32> {
        Ok(self.dm.nr_vcpus(domid)?)
    }

    fn create_ioreq_server(&self, domid: DomId, buffered: BufIoreq) -> Result<IoServId> {
        Ok(self.dm.create_ioreq_server(domid, buffered)?)
    }

    fn map_ioreq_pages(&self, domid: DomId, id: IoServId, buffered: bool) -> Result<Box<dyn Pages>> {
        // Frame 0 is the buffered page, frame 1 the synchronous one
        // (XENMEM_resource_ioreq_server_frame_bufioreq / _ioreq(0)).
        let (idx, num) = if buffered { (0, 2) } else { (1, 1) };
        let map = self
            .privcmd
            .map_ioreq_server(domid, id, idx, num)
            .map_err(|errno| Error::Os { what: "map ioreq server pages", errno })?;
        Ok(Box::new(XenPages { map, buffered }))
    }

    fn bufioreq_port(&self, domid: DomId, id: IoServId) -> Result<u32> {
        Ok(self.dm.get_ioreq_server_info(domid, id, false)?.bufioreq_port)
    }

    fn set_ioreq_server_state(&self, domid: DomId, id: IoServId, enabled: bool) -> Result<()> {
        Ok(self.dm.set_ioreq_server_state(domid, id, enabled)?)
    }

    fn destroy_ioreq_server(&self, domid: DomId, id: IoServId) -> Result<()> {
        Ok(self.dm.destroy_ioreq_server(domid, id)?)
    }

    fn claim(&self, domid: DomId, id: IoServId, range: IoRange, claim: bool) -> Result<()> {
        let r = if claim { self.dm.map_range(domid, id, range) } else { self.dm.unmap_range(domid, id, range) };
        Ok(r?)
    }

    fn interrupt(&self, domid: DomId, irq: Interrupt) -> Result<()> {
        let dm = &self.dm;
        let r = match irq {
            Interrupt::IsaLevel { irq, level } => dm.set_isa_irq_level(domid, irq, level),
            Interrupt::PciIntx { sbdf, pin, level } => {
                dm.set_pci_intx_level(domid, sbdf.segment(), sbdf.bus(), sbdf.device(), pin, level)
            }
            Interrupt::Msi { addr, data } => dm.inject_msi(domid, addr, data),
            Interrupt::Line { irq, level } => dm.set_irq_level(domid, irq, level),
            Interrupt::LinkRoute { link, irq } => dm.set_pci_link_route(domid, link, irq),
        };
        Ok(r?)
    }

    fn open_events(&self, stop_on_signals: bool) -> Result<Box<dyn Events>> {
        let evtchn = Evtchn::open().map_err(|errno| Error::Os { what: "open /dev/xen/evtchn", errno })?;
        let os_err = |what| move |e: std::io::Error| Error::Os { what, errno: io_errno(e) };
        let stop = Arc::new(EventFd::new(EFD_CLOEXEC | EFD_NONBLOCK).map_err(os_err("eventfd"))?);
        let epoll = Epoll::new().map_err(os_err("epoll"))?;
        let add = |fd: std::os::fd::RawFd, token| {
            epoll.ctl(ControlOperation::Add, fd, EpollEvent::new(EventSet::IN, token)).map_err(os_err("epoll"))
        };
        use std::os::fd::AsRawFd;
        add(evtchn.as_raw_fd(), TOKEN_EVTCHN)?;
        add(stop.as_raw_fd(), TOKEN_STOP)?;
        if stop_on_signals {
            let wake = signals::install().map_err(|errno| Error::Os { what: "signal handlers", errno })?;
            add(wake.as_raw_fd(), TOKEN_SIGNAL)?;
        }
        Ok(Box::new(XenEvents { evtchn, bound: Vec::new(), stop, epoll, signals: stop_on_signals }))
    }

    fn guest_chunk(&self, domid: DomId, n: u64) -> Result<GuestChunk> {
        self.guest.get(domid, n, || GuestChunk::new(n, Arc::new(self.map_chunk(domid, n)?), 0))
    }

    fn invalidate_guest(&self, _domid: DomId) {
        self.guest.clear();
    }
}

fn io_errno(e: std::io::Error) -> Errno {
    Errno::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}
