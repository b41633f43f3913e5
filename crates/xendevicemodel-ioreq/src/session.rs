//! [`Session`]: one IOREQ server from creation to destruction, and the loop
//! that serves its requests.
//!
//! Setup, in QEMU's order: create the server, map its pages, learn the
//! buffered event channel, enable it, bind one event channel per vCPU (the
//! ports Xen wrote into the vCPUs' slots) and the buffered one, then claim
//! the configured ranges, so that no request arrives before it can be
//! served. Any failure undoes what was done. Teardown (drop, [`Session::close`],
//! after a signal) disables and destroys the server, unbinds the ports and
//! unmaps the pages.
//!
//! Serving one synchronous request: the vCPU's port fires; unmask it; the
//! slot's state is read with acquire ordering and must be READY (otherwise
//! the notification is logged and nothing is touched); the fields are read
//! and decoded, the state set to INPROCESS; the device is called (or the
//! request refused and logged); if the state is still INPROCESS, a read's
//! value is written into the data field, then the state IORESP_READY with
//! release ordering, then the port is notified.

use crate::abi::*;
use crate::backend::{Backend, Events, IoRange, Pages, Stopper, Wake};
use crate::device::{refused, Ctx, Handler, Server};
use crate::error::{Error, Result};
use crate::request::{decode, decode_buffered, Refusal, Request};
use crate::xen::Xen;
use std::sync::Arc;
use std::time::Duration;
use xendevicemodel::{BufIoreq, DeviceModel, DomId, Errno, IoServId, Logger};

/// How to set up a [`Session`].
#[derive(Clone, Debug)]
pub struct Config {
    /// Whether the server has a buffered page (default: none; Arm has none).
    pub buffered: BufIoreq,
    /// Ranges to claim once the session is ready (more can be claimed later
    /// with [`Server::claim`]).
    pub ranges: Vec<IoRange>,
    /// Where refusals and teardown failures are reported (default: stderr).
    pub logger: Logger,
    /// Whether SIGINT, SIGTERM and SIGHUP end [`Session::run`] with
    /// [`Exit::Signal`] (default: no: no signal handler is installed
    /// unless asked). The handlers are process-wide and installed at the
    /// first session that asks.
    pub stop_on_signals: bool,
    /// How often `run` looks at the buffered page without a notification
    /// (default: 100 ms, as QEMU).
    pub buffered_poll: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            buffered: BufIoreq::Off,
            ranges: Vec::new(),
            logger: Logger::stderr(),
            stop_on_signals: false,
            buffered_poll: Duration::from_millis(100),
        }
    }
}

/// Why [`Session::run`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// A [`Stopper`] asked.
    Stopped,
    /// The process received this signal.
    Signal(i32),
}

/// What a session has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Synchronous requests answered by the device.
    pub served: u64,
    /// Buffered requests delivered to the device.
    pub buffered: u64,
    /// Requests refused (malformed), logged and answered without the device.
    pub refused: u64,
    /// Notifications whose slot was in a state no request or answer has
    /// (INPROCESS, or not a state at all): logged, slot left alone.
    pub ignored: u64,
    /// Notifications whose slot held no request (state NONE, or our answer
    /// not yet taken: IORESP_READY): not logged. Xen sets a port pending when
    /// it is bound ("a notification may have been lost"), so every vCPU's
    /// port fires once after setup, and that may be seen after a request.
    pub spurious: u64,
    /// Notifications on ports the session does not know: logged.
    pub unknown_ports: u64,
}

/// An IOREQ server for one domain, with its pages mapped and its event
/// channels bound: serves the guest's requests to a [`Handler`] (usually a [`Bus`](crate::Bus)).
///
/// The session owns every mapping and descriptor; dropping it disables and
/// destroys the server.
pub struct Session {
    server: Server,
    pages: Option<Box<dyn Pages>>,
    events: Option<Box<dyn Events>>,
    /// Local port of each vCPU.
    ports: Vec<u32>,
    /// vCPU of each local port below its length (`u32::MAX`: none).
    vcpu_of_port: Vec<u32>,
    buf_port: Option<u32>,
    enabled: bool,
    created: bool,
    fired: Vec<u32>,
    poll: Option<Duration>,
    stats: Stats,
}

impl core::fmt::Debug for Session {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Session")
            .field("server", &self.server)
            .field("ports", &self.ports)
            .field("buf_port", &self.buf_port)
            .field("stats", &self.stats)
            .finish()
    }
}

impl Session {
    /// Sets up a session for `domid` on the real hypervisor through `dm`.
    pub fn open(dm: Arc<DeviceModel>, domid: DomId, config: Config) -> Result<Session> {
        let xen = Xen::new(dm)?;
        Session::with_backend(Arc::new(xen), domid, config)
    }

    /// Sets up a session on any [`Backend`] (the simulated one of the xendevicemodel-ioreq-sim crate in tests).
    pub fn with_backend(backend: Arc<dyn Backend>, domid: DomId, config: Config) -> Result<Session> {
        let logger = config.logger.clone();
        let nr = backend.nr_vcpus(domid)?;
        if nr == 0 || nr as usize > SLOTS_PER_PAGE {
            return Err(Error::TooManyVcpus(nr));
        }
        let buffered = config.buffered != BufIoreq::Off;
        let id = backend.create_ioreq_server(domid, config.buffered)?;
        // From here on, dropping `s` undoes what was done.
        let mut s = Session {
            server: Server { backend: backend.clone(), domid, id, logger },
            pages: None,
            events: None,
            ports: Vec::with_capacity(nr as usize),
            vcpu_of_port: Vec::new(),
            buf_port: None,
            enabled: false,
            created: true,
            fired: vec![0; nr as usize + 1],
            poll: buffered.then_some(config.buffered_poll),
            stats: Stats::default(),
        };
        let pages = s.pages.insert(backend.map_ioreq_pages(domid, id, buffered)?);
        if buffered && pages.buffered().is_none() {
            return Err(Error::Unsupported("the backend mapped no buffered page"));
        }
        let buf_remote = if buffered { Some(backend.bufioreq_port(domid, id)?) } else { None };
        backend.set_ioreq_server_state(domid, id, true)?;
        s.enabled = true;
        let events = s.events.insert(backend.open_events(config.stop_on_signals)?);
        for v in 0..nr {
            let remote = pages.ioreq().slot(v).map(IoreqSlot::vp_eport).ok_or(Error::TooManyVcpus(nr))?;
            s.ports.push(events.bind(domid, remote)?);
        }
        if let Some(remote) = buf_remote {
            s.buf_port = Some(events.bind(domid, remote)?);
        }
        s.index_ports();
        for r in config.ranges {
            s.server.claim(r)?;
        }
        Ok(s)
    }

    /// A table from local port to vCPU, for ports small enough to index.
    fn index_ports(&mut self) {
        const MAX_INDEXED: u32 = 1 << 16;
        let top = self.ports.iter().copied().filter(|&p| p < MAX_INDEXED).max().map_or(0, |p| p + 1);
        self.vcpu_of_port = vec![u32::MAX; top as usize];
        for (v, &p) in self.ports.iter().enumerate() {
            if let Some(e) = self.vcpu_of_port.get_mut(p as usize) {
                *e = v as u32;
            }
        }
    }

    #[inline]
    fn vcpu_of(&self, port: u32) -> Option<u32> {
        match self.vcpu_of_port.get(port as usize) {
            Some(&v) if v != u32::MAX => Some(v),
            Some(_) => None,
            None => self.ports.iter().position(|&p| p == port).map(|v| v as u32),
        }
    }

    /// The server: claim ranges, raise interrupts, reach guest memory
    /// (clone it for other threads).
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// The server's id.
    pub fn id(&self) -> IoServId {
        self.server.id
    }

    /// How many vCPUs the session serves.
    pub fn nr_vcpus(&self) -> u32 {
        self.ports.len() as u32
    }

    /// The local event channel port of each vCPU.
    pub fn ports(&self) -> &[u32] {
        &self.ports
    }

    /// The local event channel port of the buffered page, if there is one.
    pub fn buffered_port(&self) -> Option<u32> {
        self.buf_port
    }

    /// What the session has done so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Something that makes [`run`](Self::run) return [`Exit::Stopped`], from any thread.
    pub fn stopper(&self) -> Stopper {
        self.events.as_ref().expect("a session has events until it is closed").stopper()
    }

    /// Serves requests until a [`Stopper`] or a signal ends it. An error of
    /// the event channel or of a notification ends it too (the vCPU could not
    /// be answered). Dropping the session afterwards tears the server down.
    pub fn run<D: Handler + ?Sized>(&mut self, dev: &mut D) -> Result<Exit> {
        loop {
            if let Some(exit) = self.run_once(dev, self.poll)? {
                return Ok(exit);
            }
        }
    }

    /// Waits once (at most `timeout`; `Some(Duration::ZERO)` does not wait)
    /// and serves what is pending. `Some(exit)` when the loop should end.
    pub fn run_once<D: Handler + ?Sized>(&mut self, dev: &mut D, timeout: Option<Duration>) -> Result<Option<Exit>> {
        // Claims what the handler decodes (once; again after it changed).
        dev.attach(&self.server)?;
        let events = self.events.as_mut().expect("a session has events until it is closed");
        let n = match events.wait(&mut self.fired, timeout)? {
            Wake::Ports(n) => n.min(self.fired.len()),
            Wake::Timeout => 0,
            Wake::Stopped => return Ok(Some(Exit::Stopped)),
            Wake::Signal(s) => return Ok(Some(Exit::Signal(s))),
        };
        for i in 0..n {
            let port = self.fired[i];
            if Some(port) == self.buf_port {
                self.events_mut().unmask(port)?;
            } else if let Some(v) = self.vcpu_of(port) {
                self.events_mut().unmask(port)?;
                self.serve_vcpu(dev, v, port)?;
            } else {
                self.stats.unknown_ports += 1;
                self.server
                    .logger
                    .warn(Errno::EINVAL, format_args!("ioreq: notification on unknown port {port}; ignored"));
            }
        }
        self.drain_buffered(dev);
        Ok(None)
    }

    fn events_mut(&mut self) -> &mut Box<dyn Events> {
        self.events.as_mut().expect("a session has events until it is closed")
    }

    /// Serves vCPU `v`'s slot after its port fired.
    fn serve_vcpu<D: Handler + ?Sized>(&mut self, dev: &mut D, v: u32, port: u32) -> Result<()> {
        let pages = self.pages.as_ref().expect("a session has pages until it is closed");
        let Some(slot) = pages.ioreq().slot(v) else {
            // Not reachable: vCPUs are checked against the page at setup.
            refused(&self.server.logger, Some(v), format_args!("vCPU beyond the ioreq page"));
            self.stats.refused += 1;
            return Ok(());
        };
        let state = slot.state();
        if state == STATE_IOREQ_NONE || state == STATE_IORESP_READY {
            // No request: the notification Xen makes at bind, or one that
            // arrives after we answered and before the vCPU took the answer
            // (the bind's, served late). Nothing to answer, nothing to report
            // (QEMU ignores both too).
            self.stats.spurious += 1;
            return Ok(());
        }
        if state != STATE_IOREQ_READY {
            self.stats.ignored += 1;
            refused(&self.server.logger, Some(v), format_args!("{}; slot left alone", Refusal::State(state)));
            return Ok(());
        }
        let raw = slot.load();
        slot.set_state(STATE_IOREQ_INPROCESS);
        let mut ctx = Ctx { server: &self.server, vcpu: Some(v) };
        let value = match decode(&raw) {
            Ok(req) => {
                if req == Request::Invalidate {
                    self.server.invalidate_guest();
                }
                let value = dev.request(&mut ctx, &req);
                self.stats.served += 1;
                match req.size() {
                    Some(size) if req.wants_value() => Some(value & size.mask()),
                    _ => None,
                }
            }
            Err(why) => {
                self.stats.refused += 1;
                refused(
                    &self.server.logger,
                    Some(v),
                    format_args!(
                        "{why} (type {} addr {:#x} size {} count {})",
                        raw.type_, raw.addr, raw.size, raw.count
                    ),
                );
                // A read with immediate data reads as nothing there: all ones.
                (raw.dir_read && !raw.data_is_ptr).then_some(u64::MAX)
            }
        };
        let now = slot.state();
        if now != STATE_IOREQ_INPROCESS {
            self.stats.ignored += 1;
            refused(
                &self.server.logger,
                Some(v),
                format_args!("slot changed to state {now} while in service; not answered"),
            );
            return Ok(());
        }
        if let Some(d) = value {
            slot.set_data(d);
        }
        slot.set_state(STATE_IORESP_READY);
        self.events.as_ref().expect("a session has events until it is closed").notify(port)
    }

    /// Delivers every complete entry of the buffered page.
    fn drain_buffered<D: Handler + ?Sized>(&mut self, dev: &mut D) {
        let Some(bp) = self.pages.as_ref().and_then(|p| p.buffered()) else { return };
        loop {
            let rp = bp.read_pointer();
            let wp = bp.write_pointer();
            let avail = wp.wrapping_sub(rp);
            if avail == 0 {
                return;
            }
            if avail > BUF_SLOTS {
                self.stats.refused += 1;
                refused(
                    &self.server.logger,
                    None,
                    format_args!("write pointer {wp} is {avail} entries past read pointer {rp}; skipped"),
                );
                bp.advance(avail);
                return;
            }
            let e = bp.slot(rp).load();
            let second = (avail >= 2).then(|| bp.slot(rp.wrapping_add(1)).load());
            let mut ctx = Ctx { server: &self.server, vcpu: None };
            match decode_buffered(&e, second.as_ref()) {
                Ok((req, used)) => {
                    dev.request(&mut ctx, &req);
                    self.stats.buffered += 1;
                    bp.advance(used);
                }
                Err(why) => {
                    self.stats.refused += 1;
                    refused(&self.server.logger, None, format_args!("{why} (type {} addr {:#x})", e.type_, e.addr));
                    // An 8-byte entry takes two slots, when both are there.
                    bp.advance(if e.size_log2 == 3 && avail >= 2 { 2 } else { 1 });
                }
            }
        }
    }

    /// Disables and destroys the server, unbinds the ports and unmaps the
    /// pages, reporting the first failure (every step is tried).
    pub fn close(mut self) -> Result<()> {
        self.teardown()
    }

    /// Answers every request still waiting in a slot (state READY) as the
    /// guest sees an access to nothing: reads all ones, writes dropped; each
    /// is logged and counted as refused, and its vCPU notified.
    fn answer_left_over(&mut self) -> Result<()> {
        let (Some(pages), Some(events)) = (self.pages.as_ref(), self.events.as_ref()) else { return Ok(()) };
        let mut first = Ok(());
        for (v, &port) in self.ports.iter().enumerate() {
            let v = v as u32;
            let Some(slot) = pages.ioreq().slot(v) else { continue };
            if slot.state() != STATE_IOREQ_READY {
                continue;
            }
            let raw = slot.load();
            self.stats.refused += 1;
            refused(
                &self.server.logger,
                Some(v),
                format_args!(
                    "the server is closing (type {} addr {:#x} size {} count {}); answered as nothing there",
                    raw.type_, raw.addr, raw.size, raw.count
                ),
            );
            if raw.dir_read && !raw.data_is_ptr {
                slot.set_data(u64::MAX);
            }
            slot.set_state(STATE_IORESP_READY);
            if let Err(e) = events.notify(port) {
                first = first.and(Err(e));
            }
        }
        first
    }

    fn teardown(&mut self) -> Result<()> {
        let mut first: Option<Error> = None;
        let (domid, id) = (self.server.domid, self.server.id);
        let backend = self.server.backend.clone();
        let mut note = |r: Result<()>, what: &str, logger: &Logger| {
            if let Err(e) = r {
                logger.error(e.errno(), format_args!("ioreq: {what} server {id} of domain {domid}: {e}"));
                first.get_or_insert(e);
            }
        };
        if self.enabled {
            self.enabled = false;
            note(backend.set_ioreq_server_state(domid, id, false), "disabling", &self.server.logger);
        }
        // Disabled, the server gets no new request, but one Xen handed over
        // before (its notification unread: the loop ended on a signal or a
        // stop) keeps its vCPU blocked for good once the server is gone.
        if let Err(e) = self.answer_left_over() {
            note(Err(e), "answering what is left on", &self.server.logger);
        }
        if self.created {
            self.created = false;
            note(backend.destroy_ioreq_server(domid, id), "destroying", &self.server.logger);
        }
        // Unbinds every port and closes the device, then unmaps the pages.
        self.events = None;
        self.pages = None;
        first.map_or(Ok(()), Err)
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.teardown(); // failures are logged
    }
}

#[cfg(test)]
mod tests {
    /// A session can move to another thread; a server and a stopper can be shared.
    #[test]
    fn thread_safety() {
        fn send<T: Send>() {}
        fn send_sync<T: Send + Sync>() {}
        send::<super::Session>();
        send_sync::<crate::Server>();
        send_sync::<crate::Stopper>();
        send_sync::<crate::Xen>();
        send::<crate::Bus>();
    }
}
