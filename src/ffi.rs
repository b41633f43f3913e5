//! The C ABI: the 26 `xendevicemodel_*` functions of Xen's `xendevicemodel.h`.
//!
//! Every export is one line of glue through `with_handle`: look the handle
//! up (`EBADF` if it is not open), run one [`DeviceModel`] method, and turn its
//! `Result` into Xen's convention (0, or -1 with `errno`). NULL out-pointers
//! that Xen's library would dereference are refused with `EINVAL` before any
//! request is sent. cbindgen turns this file into `include/xendevicemodel.h`;
//! the doc comments below are that header's documentation.
#![allow(non_camel_case_types)]
// Every export has the same safety contract, Xen's C API: pointers to outputs
// and arrays are valid for the sizes documented. Handles need no promise (they
// are checked). A per-function "# Safety" section would only repeat that in
// the generated C header.
#![allow(clippy::missing_safety_doc)]

use crate::dm::{DeviceModel, Result};
use crate::handle;
use crate::log::Logger;
use crate::sys::xentoollog_logger;
use crate::xen::{domid_t, evtchn_port_t, hvmmem_type_t, ioservid_t, xen_dm_op_modified_memory_extent, xen_pfn_t};
use libc::{c_int, c_uint, c_ulong};
use nix::errno::Errno;

/// An open device-model interface. Opaque: only ever passed back to this library.
pub struct xendevicemodel_handle {
    _opaque: [u8; 0],
}

fn fail(e: Errno) -> c_int {
    e.set();
    -1
}

/// Runs `f` on the handle's device model with Xen's return convention.
#[inline]
fn with_handle(dmod: *mut xendevicemodel_handle, what: &str, f: impl FnOnce(&DeviceModel) -> Result<()>) -> c_int {
    let r = handle::with(dmod as usize, |dm| match f(dm) {
        Ok(()) => 0,
        Err(e) => fail(e),
    });
    r.unwrap_or_else(|e| bad_handle(dmod, what, e))
}

/// No handle, so no caller logger we could trust: stderr.
#[cold]
#[inline(never)]
fn bad_handle(dmod: *mut xendevicemodel_handle, what: &str, e: Errno) -> c_int {
    Logger::stderr().error(e, format_args!("{what}: {dmod:p} is not an open handle (closed, or never opened)"));
    fail(e)
}

/// The out-pointer `p`, or `EINVAL` (logged) if the caller passed NULL.
fn required<'a, T>(dm: &DeviceModel, p: *mut T, what: &str) -> Result<&'a mut T> {
    // SAFETY: non-NULL out-pointers are the caller's promise, as in Xen's API.
    match unsafe { p.as_mut() } {
        Some(r) => Ok(r),
        None => {
            dm.logger().error(Errno::EINVAL, format_args!("{what} must not be NULL"));
            Err(Errno::EINVAL)
        }
    }
}

/// Writes `v` through `p` if the caller asked for it.
fn optional<T>(p: *mut T, v: T) {
    // SAFETY: non-NULL out-pointers are the caller's promise, as in Xen's API.
    if let Some(r) = unsafe { p.as_mut() } {
        *r = v;
    }
}

/// Opens a device-model interface.
///
/// @parm logger where errors are logged; NULL means stderr at XTL_PROGRESS.
/// @parm open_flags reserved, pass 0.
/// @return a handle, or NULL with errno set.
///
/// Threads: a handle may be used by any number of threads at once.
///
/// fork(): a handle belongs to the process that opened it. In a child, every
/// call on an inherited handle fails with EBADF and sends nothing to the
/// hypervisor; xendevicemodel_close() on it returns 0 and releases only the
/// child's copy; xentoolcore_restrict_all() in the child does not restrict the
/// file it shares with the parent (it drops the child's access instead). The
/// parent is never affected. The child opens its own handles, which work
/// normally. Nothing survives exec (the descriptor is close-on-exec).
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_open(
    logger: *mut xentoollog_logger,
    open_flags: c_uint,
) -> *mut xendevicemodel_handle {
    let _ = open_flags; // reserved, as in Xen
    let log = Logger::new(logger);
    match DeviceModel::open(log)
        .map_err(|e| (e, None))
        .and_then(|dm| handle::insert(dm).map_err(|(e, dm)| (e, Some(dm))))
    {
        Ok(key) => key as *mut xendevicemodel_handle,
        Err((e, dm)) => {
            if dm.is_some() {
                log.error(e, format_args!("too many open handles"));
            }
            drop(dm);
            e.set();
            core::ptr::null_mut()
        }
    }
}

/// Closes a handle.
///
/// @return 0, or -1 with errno (close(2)'s error, or EBADF for a handle that
///         is not open: already closed, or never returned by open).
///
/// Closing NULL returns 0. A close racing calls on the same handle from other
/// threads is safe: each of those calls completes normally or fails with
/// EBADF, and the descriptor is closed once no call is using it. In a child
/// process, closing an inherited handle returns 0 and leaves the parent's
/// handle untouched. Closing a handle from inside a call on it (its logger
/// callback) fails with EDEADLK and leaves it open.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_close(dmod: *mut xendevicemodel_handle) -> c_int {
    if dmod.is_null() {
        return 0;
    }
    match handle::remove(dmod as usize) {
        Ok(dm) => match dm.close() {
            Ok(()) => 0,
            Err(e) => fail(e),
        },
        Err(e @ Errno::EDEADLK) => {
            Logger::stderr().error(e, format_args!("close: {dmod:p} is in use by a call on this thread (its logger?)"));
            fail(e)
        }
        Err(e) => {
            Logger::stderr().error(e, format_args!("close: {dmod:p} is not an open handle (double close?)"));
            fail(e)
        }
    }
}

/// Creates an IOREQ server.
///
/// @parm dmod a handle to an open devicemodel interface.
/// @parm domid the domain id to be serviced
/// @parm handle_bufioreq how should the IOREQ Server handle buffered requests
///       (HVM_IOREQSRV_BUFIOREQ_*)? Sent as 8 bits.
/// @parm id receives the IOREQ Server id (must not be NULL: EINVAL).
/// @return 0 on success, -1 on failure.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_create_ioreq_server(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    handle_bufioreq: c_int,
    id: *mut ioservid_t,
) -> c_int {
    with_handle(dmod, "create_ioreq_server", move |dm| {
        let id = required(dm, id, "create_ioreq_server: id")?;
        *id = dm.create_ioreq_server(domid, handle_bufioreq as u8)?;
        Ok(())
    })
}

/// Retrieves what an emulator needs to use an IOREQ Server.
///
/// @parm ioreq_gfn receives the synchronous ioreq gfn (may be NULL).
/// @parm bufioreq_gfn receives the buffered ioreq gfn (may be NULL).
/// @parm bufioreq_port receives the buffered ioreq event channel (may be NULL).
/// When both gfn pointers are NULL the hypervisor is asked not to map the
/// ioreq pages (XEN_DMOP_no_gfns).
/// @return 0 on success, -1 on failure.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_get_ioreq_server_info(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    id: ioservid_t,
    ioreq_gfn: *mut xen_pfn_t,
    bufioreq_gfn: *mut xen_pfn_t,
    bufioreq_port: *mut evtchn_port_t,
) -> c_int {
    with_handle(dmod, "get_ioreq_server_info", move |dm| {
        let want_gfns = !ioreq_gfn.is_null() || !bufioreq_gfn.is_null();
        let (gfn, bufgfn, port) = dm.get_ioreq_server_info(domid, id, want_gfns)?;
        optional(ioreq_gfn, gfn as xen_pfn_t);
        optional(bufioreq_gfn, bufgfn as xen_pfn_t);
        optional(bufioreq_port, port);
        Ok(())
    })
}

/// Registers a range of MMIO (is_mmio != 0) or I/O ports for emulation.
///
/// @parm start start of range; @parm end end of range (inclusive).
/// @return 0 on success, -1 on failure.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_map_io_range_to_ioreq_server(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    id: ioservid_t,
    is_mmio: c_int,
    start: u64,
    end: u64,
) -> c_int {
    with_handle(dmod, "map_io_range_to_ioreq_server", move |dm| dm.map_io_range(domid, id, is_mmio != 0, start, end))
}

/// Deregisters a range of MMIO (is_mmio != 0) or I/O ports.
///
/// @return 0 on success, -1 on failure.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_unmap_io_range_from_ioreq_server(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    id: ioservid_t,
    is_mmio: c_int,
    start: u64,
    end: u64,
) -> c_int {
    with_handle(dmod, "unmap_io_range_from_ioreq_server", move |dm| {
        dm.unmap_io_range(domid, id, is_mmio != 0, start, end)
    })
}

/// Registers (flags = XEN_DMOP_IOREQ_MEM_ACCESS_WRITE) or deregisters
/// (flags = 0) a memory type for emulation.
///
/// @parm type only HVMMEM_ioreq_server is supported; anything else, or other
///       flags, fails with EINVAL before any request is sent.
/// @return 0 on success, -1 on failure.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_map_mem_type_to_ioreq_server(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    id: ioservid_t,
    type_: u16,
    flags: u32,
) -> c_int {
    with_handle(dmod, "map_mem_type_to_ioreq_server", move |dm| dm.map_mem_type(domid, id, type_, flags))
}

/// Registers a PCI device for config space emulation.
///
/// @parm device the slot (0..0x1f); @parm function 0..7: otherwise EINVAL
///       before any request is sent.
/// @return 0 on success, -1 on failure.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_map_pcidev_to_ioreq_server(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    id: ioservid_t,
    segment: u16,
    bus: u8,
    device: u8,
    function: u8,
) -> c_int {
    with_handle(dmod, "map_pcidev_to_ioreq_server", move |dm| dm.map_pcidev(domid, id, segment, bus, device, function))
}

/// Deregisters a PCI device from config space emulation.
///
/// @return 0 on success, -1 on failure (EINVAL for device > 0x1f or function > 7).
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_unmap_pcidev_from_ioreq_server(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    id: ioservid_t,
    segment: u16,
    bus: u8,
    device: u8,
    function: u8,
) -> c_int {
    with_handle(dmod, "unmap_pcidev_from_ioreq_server", move |dm| {
        dm.unmap_pcidev(domid, id, segment, bus, device, function)
    })
}

/// Destroys an IOREQ Server.
///
/// @return 0 on success, -1 on failure.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_destroy_ioreq_server(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    id: ioservid_t,
) -> c_int {
    with_handle(dmod, "destroy_ioreq_server", move |dm| dm.destroy_ioreq_server(domid, id))
}

/// Enables (enabled != 0) or disables an IOREQ Server. A server receives no
/// emulation requests, and its gfns are not meaningful, until enabled.
///
/// @return 0 on success, -1 on failure.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_set_ioreq_server_state(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    id: ioservid_t,
    enabled: c_int,
) -> c_int {
    with_handle(dmod, "set_ioreq_server_state", move |dm| dm.set_ioreq_server_state(domid, id, enabled != 0))
}

/// Sets the level of the INTx pin (0 => A .. 3 => D) of an emulated PCI device.
///
/// @parm level 1 asserted, 0 de-asserted (sent as 8 bits).
/// @return 0 on success, -1 on failure.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_set_pci_intx_level(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    segment: u16,
    bus: u8,
    device: u8,
    intx: u8,
    level: c_uint,
) -> c_int {
    with_handle(dmod, "set_pci_intx_level", move |dm| dm.set_pci_intx_level(domid, segment, bus, device, intx, level))
}

/// Sets the level of an ISA IRQ line (0 - 15).
///
/// @parm level 1 asserted, 0 de-asserted (sent as 8 bits).
/// @return 0 on success, -1 on failure.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_set_isa_irq_level(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    irq: u8,
    level: c_uint,
) -> c_int {
    with_handle(dmod, "set_isa_irq_level", move |dm| dm.set_isa_irq_level(domid, irq, level))
}

/// Sets the level of an interrupt line (used on Arm; x86 Xen answers EOPNOTSUPP).
///
/// @parm level 1 asserted, 0 de-asserted (sent as 8 bits).
/// @return 0 on success, -1 on failure.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_set_irq_level(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    irq: c_uint,
    level: c_uint,
) -> c_int {
    with_handle(dmod, "set_irq_level", move |dm| dm.set_irq_level(domid, irq, level))
}

/// Maps a PCI INTx line (0 => A .. 3 => D) to an ISA IRQ (0 disables the link).
///
/// @return 0 on success, -1 on failure.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_set_pci_link_route(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    link: u8,
    irq: u8,
) -> c_int {
    with_handle(dmod, "set_pci_link_route", move |dm| dm.set_pci_link_route(domid, link, irq))
}

/// Injects an MSI (address 0xfeexxxxx, data) into the guest.
///
/// @return 0 on success, -1 on failure.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_inject_msi(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    msi_addr: u64,
    msi_data: u32,
) -> c_int {
    with_handle(dmod, "inject_msi", move |dm| dm.inject_msi(domid, msi_addr, msi_data))
}

/// Tracks changes in a VRAM area. Atomically: fetches the dirty bitmap since
/// the last call, sets up tracking of nr pages from first_pfn until the next
/// call, and clears the tracking area.
///
/// @parm dirty_bitmap receives ceil(nr / 8) bytes (may be NULL when nr is 0).
///       The request is never split, so nr is limited by privcmd's buffer
///       size (32768 pages with Linux's default 4096-byte limit; E2BIG above).
/// @return 0 on success, -1 on failure.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_track_dirty_vram(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    first_pfn: u64,
    nr: u32,
    dirty_bitmap: *mut c_ulong,
) -> c_int {
    // SAFETY: the bitmap's size is the caller's promise, as in Xen's API.
    with_handle(dmod, "track_dirty_vram", move |dm| unsafe { dm.track_dirty_vram(domid, first_pfn, nr, dirty_bitmap) })
}

/// Notifies the hypervisor that nr contiguous pages from first_pfn were modified.
///
/// @return 0 on success, -1 on failure.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_modified_memory(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    first_pfn: u64,
    nr: u32,
) -> c_int {
    with_handle(dmod, "modified_memory", move |dm| dm.modified_memory(domid, first_pfn, nr))
}

/// Notifies the hypervisor that a set of discontiguous pages were modified.
///
/// @parm extents an array of nr extents (start pfn and number of pages).
///       Any nr works: arrays longer than one privcmd buffer holds (256
///       extents) are sent in chunks; on failure the failing chunk's error is
///       returned (earlier chunks have been applied).
/// @return 0 on success, -1 on failure.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_modified_memory_bulk(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    extents: *mut xen_dm_op_modified_memory_extent,
    nr: u32,
) -> c_int {
    // SAFETY: the array's length is the caller's promise, as in Xen's API.
    with_handle(dmod, "modified_memory_bulk", move |dm| unsafe { dm.modified_memory_bulk(domid, extents, nr) })
}

/// Sets how nr pages from first_pfn are treated (see hvmmem_type_t; sent as 16 bits).
///
/// @return 0 on success, -1 on failure.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_set_mem_type(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    mem_type: hvmmem_type_t,
    first_pfn: u64,
    nr: u32,
) -> c_int {
    with_handle(dmod, "set_mem_type", move |dm| dm.set_mem_type(domid, mem_type, first_pfn, nr))
}

/// Injects an event into a vCPU, to take effect the next time it resumes.
///
/// @parm type the event type (see enum x86_event_type).
/// @parm error_code the error code, or ~0 to skip.
/// @parm extra type-specific extra data (%cr2 for #PF, pending_dbg for #DB).
/// @return 0 on success, -1 on failure.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_inject_event(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    vcpu: c_int,
    vector: u8,
    type_: u8,
    error_code: u32,
    insn_len: u8,
    extra: u64,
) -> c_int {
    with_handle(dmod, "inject_event", move |dm| {
        dm.inject_event(domid, vcpu, vector, type_, error_code, insn_len, extra)
    })
}

/// Shuts the domain down.
///
/// @parm reason usually enum sched_shutdown_reason, see xen/sched.h
/// @return 0 on success, -1 on failure.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_shutdown(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    reason: c_uint,
) -> c_int {
    with_handle(dmod, "shutdown", move |dm| dm.shutdown(domid, reason))
}

/// Relocates size GFNs from src_gfn to dst_gfn.
///
/// @return 0 on success, -1 on failure.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_relocate_memory(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    size: u32,
    src_gfn: u64,
    dst_gfn: u64,
) -> c_int {
    with_handle(dmod, "relocate_memory", move |dm| dm.relocate_memory(domid, size, src_gfn, dst_gfn))
}

/// Pins the caching type (XEN_DMOP_MEM_CACHEATTR_*) of the RAM gfns start..end.
///
/// @return 0 on success, -1 on failure.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_pin_memory_cacheattr(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    start: u64,
    end: u64,
    type_: u32,
) -> c_int {
    with_handle(dmod, "pin_memory_cacheattr", move |dm| dm.pin_memory_cacheattr(domid, start, end, type_))
}

/// Queries the number of vCPUs of a domain.
///
/// @parm vcpus receives the count (must not be NULL: EINVAL).
/// @return 0 on success, -1 on failure.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_nr_vcpus(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    vcpus: *mut c_uint,
) -> c_int {
    with_handle(dmod, "nr_vcpus", move |dm| {
        let out = required(dm, vcpus, "nr_vcpus: vcpus")?;
        *out = dm.nr_vcpus(domid)?;
        Ok(())
    })
}

/// Restricts this handle to the given domain: later calls for any other
/// domain fail with EPERM. Restricting again to another domain fails (EINVAL);
/// EOPNOTSUPP when the kernel lacks the DM_OP ioctl.
///
/// @return 0 on success, -1 on failure.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_restrict(dmod: *mut xendevicemodel_handle, domid: domid_t) -> c_int {
    with_handle(dmod, "restrict", move |dm| dm.restrict(domid))
}

#[cfg(test)]
mod tests {
    /// The committed header must be exactly what cbindgen makes of this file.
    #[test]
    fn committed_header_matches_exports() {
        let generated = include_str!(env!("XDM_GENERATED_HEADER"));
        let committed = include_str!("../include/xendevicemodel.h");
        assert!(generated == committed, "include/xendevicemodel.h is stale: run `make header` and commit it");
    }
}
