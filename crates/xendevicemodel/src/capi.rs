//! What the C ABI crate (`libxendevicemodel.so.1`) needs beyond the safe
//! API (feature `capi`): Xen's C semantics where they differ from the typed
//! methods (arguments truncated as Xen truncates them, caller buffers as raw
//! pointers that the kernel checks), libxentoollog loggers, the
//! libxentoolcore registration and the process primitives its handle table
//! is built on. Safe Rust device models never need this module. Its only
//! unsafe step is [`CPtr::new`] (in the OS module), where a C caller's
//! buffer pointer is vouched for.

use crate::abi::{DomId, Extent, IoServId};
use crate::dm::{self, bitmap_bytes, DeviceModel};
use crate::error::{Errno, Result};
use crate::log::Logger;
use crate::os::Buf;
use libc::{c_int, c_uint};

pub use crate::arch::XenPfn;
pub use crate::os::{
    atfork, file_size_limit, gettid, membarrier, membarrier_register, register_restrict_all, xentoollog_logger, CPtr,
    ThreadKey, XtlLogger,
};

/// An open that needs its second step (logging, libxencall) outside the
/// caller's locks: see [`open_first`].
#[derive(Debug)]
pub struct Opening(dm::Opening);

/// Opens privcmd and probes it without calling any user code (no logger
/// callback, no libxentoolcore lock), so a caller may hold its own locks
/// meanwhile. `Err` carries what is left: [`Opening::finish`] logs it and,
/// on kernels without the DM_OP ioctl, opens libxencall.
pub fn open_first(logger: Logger) -> core::result::Result<DeviceModel, Opening> {
    match DeviceModel::open_first(dm::Options { logger }) {
        dm::Opening::Done(dm) => Ok(dm),
        other => Err(Opening(other)),
    }
}

impl Opening {
    /// The second step of [`open_first`].
    pub fn finish(self) -> Result<DeviceModel> {
        self.0.finish()
    }
}

impl DeviceModel {
    /// `xendevicemodel_create_ioreq_server`: `handle_bufioreq` is sent as 8 bits.
    #[inline]
    pub fn c_create_ioreq_server(&self, domid: DomId, handle_bufioreq: c_int) -> Result<IoServId> {
        self.create_ioreq_server_raw(domid, handle_bufioreq as u8)
    }

    /// `xendevicemodel_set_pci_intx_level`: `level` is sent as 8 bits.
    #[inline]
    pub fn c_set_pci_intx_level(
        &self,
        domid: DomId,
        seg: u16,
        bus: u8,
        dev: u8,
        intx: u8,
        level: c_uint,
    ) -> Result<()> {
        self.pci_intx_level(domid, seg, bus, dev, intx, level as u8)
    }

    /// `xendevicemodel_set_isa_irq_level`: `level` is sent as 8 bits.
    #[inline]
    pub fn c_set_isa_irq_level(&self, domid: DomId, irq: u8, level: c_uint) -> Result<()> {
        self.isa_irq_level(domid, irq, level as u8)
    }

    /// `xendevicemodel_set_irq_level`: `level` is sent as 8 bits.
    #[inline]
    pub fn c_set_irq_level(&self, domid: DomId, irq: c_uint, level: c_uint) -> Result<()> {
        self.irq_level(domid, irq, level as u8)
    }

    /// `xendevicemodel_track_dirty_vram`: `ceil(nr / 8)` bytes at `bitmap`
    /// (computed in the native word, so no overflow to 0 as in Xen's).
    ///
    /// `bitmap` must be valid for `ceil(nr / 8)` bytes, or NULL, which is
    /// sent as it is (the kernel or hypervisor answers `EFAULT`).
    #[inline]
    pub fn c_track_dirty_vram(&self, domid: DomId, first_pfn: u64, nr: u32, bitmap: CPtr) -> Result<()> {
        self.dirty_vram(domid, first_pfn, nr, Buf::from_c(bitmap, bitmap_bytes(nr)))
    }

    /// `xendevicemodel_modified_memory_bulk`: `extents` must be valid for
    /// `nr` extents, or NULL, which is sent as it is (with `nr` 0, exactly
    /// Xen's request).
    #[inline]
    pub fn c_modified_memory_bulk(&self, domid: DomId, extents: CPtr, nr: u32) -> Result<()> {
        self.modified_extents(domid, Buf::from_c(extents, nr as usize * core::mem::size_of::<Extent>()), nr)
    }

    /// What `xentoolcore_restrict_all(domid)` does to this handle: restricts
    /// its privcmd file, or, for a handle inherited across fork(), replaces
    /// this process's descriptor with /dev/null instead (the open file is
    /// the parent's too). libxencall handles restrict themselves.
    pub fn c_restrict_all_member(&self, domid: DomId) -> core::result::Result<(), Errno> {
        if self.uses_xencall() {
            return Ok(());
        }
        let fd = self.privcmd_fd();
        if self.is_inherited() {
            self.logger().debug(format_args!("restrict_all: dropping fd {fd} inherited across fork"));
            return self.neuter();
        }
        self.restrict_fd(domid).inspect_err(|&e| {
            self.logger().error(e, format_args!("restrict_all: cannot restrict to domain {domid}"));
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extents_are_xens() {
        assert_eq!(core::mem::size_of::<Extent>(), 16);
        assert_eq!(bitmap_bytes(u32::MAX), 0x2000_0000);
        assert_eq!(bitmap_bytes(9), 2);
    }
}
