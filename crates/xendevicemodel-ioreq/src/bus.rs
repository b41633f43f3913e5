//! The device bus: devices say which ranges they decode (a PCI function's
//! config space, its BARs, fixed ports), the bus claims them for the
//! session's server, routes every access to the device whose range it
//! falls in, as an offset into that range, and claims and releases again
//! when a device's ranges change (a BAR the guest moved, decoding turned
//! on or off).

use crate::backend::IoRange;
use crate::device::{Ctx, Handler, IoAccess, Server, Space};
use crate::error::Result;
use crate::request::Size;
use core::any::Any;
use core::marker::PhantomData;
use xendevicemodel::IoServId;

/// A device's name for one of its ranges: its own numbering (a PCI device
/// uses [`pci::CONFIG`](crate::pci::CONFIG) for its config space and the
/// BAR number for each BAR).
pub type RegionId = u32;

/// One access to a device: which of its regions, how far into it, how
/// many bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Access {
    /// The region ([`Device::regions`]).
    pub region: RegionId,
    /// The offset from the region's start (for config space: the register).
    pub offset: u64,
    /// How many bytes.
    pub size: Size,
}

/// A device on a [`Bus`]: it decodes the regions it names and receives
/// accesses as offsets into them.
pub trait Device: Send {
    /// The regions the device decodes now, each with the range it is at.
    /// The bus asks when it attaches to a server and after every write to
    /// one of the device's PCI config spaces (where BARs and decoding
    /// change), and claims and releases the difference.
    fn regions(&self) -> Vec<(RegionId, IoRange)>;

    /// A read of `access.size` bytes; the value's upper bits are ignored.
    fn read(&mut self, ctx: &mut Ctx<'_>, access: Access) -> u64;

    /// A write of `value` (already masked to `access.size`).
    fn write(&mut self, ctx: &mut Ctx<'_>, access: Access, value: u64);

    /// Guest memory mappings changed (`IOREQ_TYPE_INVALIDATE`): drop any
    /// guest addresses translated ahead.
    fn invalidate(&mut self, _ctx: &mut Ctx<'_>) {}
}

/// A device and what the bus needs to hand it back by type.
trait Slot: Send {
    fn device(&mut self) -> &mut dyn Device;
    fn any(&self) -> &dyn Any;
    fn any_mut(&mut self) -> &mut dyn Any;
}

impl<D: Device + 'static> Slot for D {
    fn device(&mut self) -> &mut dyn Device {
        self
    }
    fn any(&self) -> &dyn Any {
        self
    }
    fn any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

/// Which device of a bus, with its type (see [`Bus::device`]).
pub struct DeviceId<D> {
    index: usize,
    _type: PhantomData<fn() -> D>,
}

impl<D> Clone for DeviceId<D> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<D> Copy for DeviceId<D> {}
impl<D> core::fmt::Debug for DeviceId<D> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "DeviceId({})", self.index)
    }
}

/// A range the bus routes to a device's region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Route {
    range: IoRange,
    device: usize,
    region: RegionId,
}

/// The devices a session serves ([`Session::run`](crate::Session::run) takes
/// it as its [`Handler`]). Accesses that reach no device (a range released
/// while a request was under way) read as all ones and are counted
/// ([`Bus::stray`]).
#[derive(Default)]
pub struct Bus {
    devices: Vec<Box<dyn Slot>>,
    /// What is claimed for `attached`, in claim order.
    routes: Vec<Route>,
    /// The server the routes are claimed for.
    attached: Option<IoServId>,
    /// Devices whose regions are to be compared with their routes.
    dirty: Vec<usize>,
    stray: u64,
}

impl core::fmt::Debug for Bus {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Bus").field("devices", &self.devices.len()).field("routes", &self.routes).finish()
    }
}

impl Bus {
    /// A bus without devices.
    pub fn new() -> Self {
        Bus::default()
    }

    /// Adds a device; its regions are claimed when the bus is attached to
    /// a server (the session does it before serving).
    pub fn add<D: Device + 'static>(&mut self, device: D) -> DeviceId<D> {
        self.devices.push(Box::new(device));
        let index = self.devices.len() - 1;
        self.dirty.push(index);
        DeviceId { index, _type: PhantomData }
    }

    /// The device `id` names.
    pub fn device<D: Device + 'static>(&self, id: DeviceId<D>) -> &D {
        self.devices[id.index].any().downcast_ref().expect("a DeviceId names a device of its type")
    }

    /// The device `id` names, to change. Its regions are compared with what
    /// is claimed at the next request (or attach).
    pub fn device_mut<D: Device + 'static>(&mut self, id: DeviceId<D>) -> &mut D {
        self.dirty.push(id.index);
        self.devices[id.index].any_mut().downcast_mut().expect("a DeviceId names a device of its type")
    }

    /// The ranges claimed now, with the device (its index on the bus, in
    /// the order added) and region each goes to.
    pub fn routes(&self) -> Vec<(IoRange, usize, RegionId)> {
        self.routes.iter().map(|r| (r.range, r.device, r.region)).collect()
    }

    /// Accesses that reached no device.
    pub fn stray(&self) -> u64 {
        self.stray
    }

    /// Brings what is claimed in line with what each device (that may have
    /// changed) decodes: releases routes it no longer has, claims new ones.
    /// Failures are logged and the first is returned; a range that could not
    /// be claimed gets no route (tried again at the next sync).
    fn sync(&mut self, server: &Server) -> Result<()> {
        if self.attached != Some(server.id()) {
            // A new server: nothing is claimed for it yet.
            self.routes.clear();
            self.attached = Some(server.id());
            self.dirty = (0..self.devices.len()).collect();
        }
        let mut first = Ok(());
        let mut dirty = core::mem::take(&mut self.dirty);
        dirty.sort_unstable();
        dirty.dedup();
        for d in dirty {
            let want = self.devices[d].device().regions();
            let mut kept = Vec::with_capacity(self.routes.len());
            for r in self.routes.drain(..) {
                if r.device != d || want.contains(&(r.region, r.range)) {
                    kept.push(r);
                } else if let Err(e) = server.release(r.range) {
                    log(server, e, format_args!("releasing {} of device {d}", r.range));
                    first = first.and(Err(e));
                }
            }
            self.routes = kept;
            for (region, range) in want {
                let route = Route { range, device: d, region };
                if self.routes.contains(&route) {
                    continue;
                }
                if let Some(other) = self.routes.iter().find(|r| overlaps(r.range, range)) {
                    let e = crate::Error::InvalidRange;
                    log(server, e, format_args!("device {d} region {region} at {range} overlaps {}", other.range));
                    first = first.and(Err(e));
                    continue;
                }
                match server.claim(range) {
                    Ok(()) => self.routes.push(route),
                    Err(e) => {
                        log(server, e, format_args!("claiming {range} for device {d}"));
                        first = first.and(Err(e));
                    }
                }
            }
        }
        first
    }

    /// The route an access at `space` takes, and the offset into its range.
    #[inline]
    fn route(&self, space: Space) -> Option<(Route, u64)> {
        self.routes.iter().find_map(|r| r.range.offset_of(space).map(|o| (*r, o)))
    }
}

fn overlaps(a: IoRange, b: IoRange) -> bool {
    match (a, b) {
        (IoRange::Port { start: s1, end: e1 }, IoRange::Port { start: s2, end: e2 }) => s1 <= e2 && s2 <= e1,
        (IoRange::Mmio { start: s1, end: e1 }, IoRange::Mmio { start: s2, end: e2 }) => s1 <= e2 && s2 <= e1,
        (IoRange::Pci(x), IoRange::Pci(y)) => x == y,
        _ => false,
    }
}

fn log(server: &Server, e: crate::Error, what: core::fmt::Arguments<'_>) {
    server.logger().error(e.errno(), format_args!("ioreq bus: {what}: {e}"));
}

impl Handler for Bus {
    fn attach(&mut self, server: &Server) -> Result<()> {
        if self.attached == Some(server.id()) && self.dirty.is_empty() {
            return Ok(());
        }
        self.sync(server)
    }

    fn read(&mut self, ctx: &mut Ctx<'_>, a: IoAccess) -> u64 {
        match self.route(a.space) {
            Some((r, offset)) => {
                let access = Access { region: r.region, offset, size: a.size };
                self.devices[r.device].device().read(ctx, access)
            }
            None => {
                self.stray += 1;
                u64::MAX // nothing there
            }
        }
    }

    fn write(&mut self, ctx: &mut Ctx<'_>, a: IoAccess, value: u64) {
        let Some((r, offset)) = self.route(a.space) else {
            self.stray += 1;
            return;
        };
        let access = Access { region: r.region, offset, size: a.size };
        self.devices[r.device].device().write(ctx, access, value);
        if matches!(r.range, IoRange::Pci(_)) {
            // BARs or decoding may have changed: claim what moved now, so
            // that the guest's next access reaches its new place.
            self.dirty.push(r.device);
            let _ = self.sync(ctx.server); // logged
        }
    }

    fn invalidate(&mut self, ctx: &mut Ctx<'_>) {
        for d in &mut self.devices {
            d.device().invalidate(ctx);
        }
    }
}
