//! The C ABI: the 26 `xendevicemodel_*` functions of Xen's `xendevicemodel.h`.
//!
//! Each body is one `entry!` (boundary.rs), which catches panics, looks the
//! handle up, checks out-pointers, maps the result to Xen's convention (0,
//! or -1 with `errno`) and writes the trace; the expression it runs is one
//! call of the device model (the `xendevicemodel` crate, whose `*_raw`
//! methods keep Xen's C semantics where they differ from the typed ones:
//! arguments truncated to 8 bits here, as Xen truncates them, and caller
//! buffers passed to the kernel as they are).
//! cbindgen turns this file into `include/xendevicemodel.h`; the doc
//! comments below are that header's documentation.
//!
//! Safety, for every function: a handle (`dmod`) may be any value at all,
//! since it is checked (anything but an open handle gets `EBADF`); every
//! other pointer must be NULL where the documentation allows it, or valid
//! for the size it documents, as in Xen's API.
#![allow(non_camel_case_types)]

use crate::boundary::entry;
use crate::sys::xentoollog_logger;
use libc::{c_int, c_uint, c_ulong};
use xendevicemodel::{Event, IoSpace, Sbdf};

/// An open device-model interface. Opaque: only ever passed back to this library.
pub struct xendevicemodel_handle {
    _opaque: [u8; 0],
}

/// `domid_t` (Xen's public headers).
pub type domid_t = u16;
/// `ioservid_t`.
pub type ioservid_t = u16;
/// `xen_pfn_t`: `unsigned long` on x86, 64 bits on Arm.
pub type xen_pfn_t = xendevicemodel::arch::XenPfn;
/// `evtchn_port_t`.
pub type evtchn_port_t = u32;
/// `hvmmem_type_t`, a C enum.
pub type hvmmem_type_t = c_uint;
/// `struct xen_dm_op_modified_memory_extent`.
pub type xen_dm_op_modified_memory_extent = xendevicemodel::Extent;

fn space(is_mmio: c_int) -> IoSpace {
    if is_mmio != 0 {
        IoSpace::Mmio
    } else {
        IoSpace::Port
    }
}

/// Opens a device-model interface.
///
/// @parm logger where errors are logged; NULL means stderr at XTL_PROGRESS.
/// @parm open_flags reserved, pass 0.
/// @return a handle, or NULL with errno set (besides open(2)'s errors:
///         EMFILE when the process has 1,048,576 handles open, 16,384 on
///         32-bit targets; ENOSPC when it has used up its handle values, see
///         below; both logged).
///
/// Handle values: a handle is accepted exactly as open returned it, and only
/// while it is open. No value is given out twice in a process's life, so a
/// handle kept after its close can never name a handle opened later: it gets
/// EBADF, whatever was opened since. A process has 2^52 values (2^30 on
/// 32-bit targets: a billion opens); once they are used up, open fails with
/// ENOSPC.
///
/// Threads: a handle may be used by any number of threads at once.
///
/// fork(): a handle belongs to the process that opened it. In a child, every
/// call on an inherited handle fails with EBADF and sends nothing to the
/// hypervisor; xendevicemodel_close() on it returns 0 and releases only the
/// child's copy; xentoolcore_restrict_all() in the child does not restrict the
/// file it shares with the parent (it drops the child's access instead). The
/// parent is never affected. The child opens its own handles, which work
/// normally. Nothing survives exec (the descriptor is close-on-exec). A fork()
/// while another thread is inside open waits for that open to finish.
///
/// Signal handlers: a handler may call this library, and fork(), whatever the
/// thread it interrupted was doing in the library; nothing waits for the
/// interrupted function, which goes on only once the handler returns:
/// - calls work (also on the handle the interrupted call uses; EBADF on a
///   handle being closed);
/// - open and close (and xentoolcore_restrict_all's walk) in a handler that
///   interrupted open or close fail with EDEADLK (logged) and change nothing;
///   otherwise they work, except closing the handle the interrupted call
///   uses (EDEADLK, as from a logger callback);
/// - fork() proceeds; in the child, inherited handles follow the fork() rule
///   above, and until the handler returns open and close fail with EDEADLK
///   there if the interrupted function was open or close. Should the child
///   return from the handler, the interrupted function completes in it too.
///
/// libxentoolcore's own lock (xentoolcore_restrict_all, closing a libxencall
/// handle) and the C allocator are not the library's: a handler must not
/// re-enter them, as with Xen's library.
///
/// Tracing: with XENDEVICEMODEL_TRACE=<file> (or "stderr") in the environment
/// at the first open, every call is written there, one line each.
///
/// # Safety
/// `logger` must be NULL or a live xentoollog logger that outlives the handle.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_open(
    logger: *mut xentoollog_logger,
    open_flags: c_uint,
) -> *mut xendevicemodel_handle {
    entry!(open(logger, open_flags))
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
///
/// # Safety
/// Any value of `dmod` is safe: handles are checked, never dereferenced.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_close(dmod: *mut xendevicemodel_handle) -> c_int {
    entry!(close(dmod))
}

/// Creates an IOREQ server.
///
/// @parm dmod a handle to an open devicemodel interface.
/// @parm domid the domain id to be serviced
/// @parm handle_bufioreq how should the IOREQ Server handle buffered requests
///       (HVM_IOREQSRV_BUFIOREQ_*)? Sent as 8 bits.
/// @parm id receives the IOREQ Server id (must not be NULL: EINVAL).
/// @return 0 on success, -1 on failure.
///
/// # Safety
/// `id` must be valid for writing one ioservid_t.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_create_ioreq_server(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    handle_bufioreq: c_int,
    id: *mut ioservid_t,
) -> c_int {
    entry!(create_ioreq_server(dmod, domid, handle_bufioreq; required id) => |dm| {
        *id = dm.create_ioreq_server_raw(domid, handle_bufioreq as u8)?;
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
///
/// # Safety
/// Each out-pointer must be NULL or valid for writing one value of its type.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_get_ioreq_server_info(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    id: ioservid_t,
    ioreq_gfn: *mut xen_pfn_t,
    bufioreq_gfn: *mut xen_pfn_t,
    bufioreq_port: *mut evtchn_port_t,
) -> c_int {
    entry!(get_ioreq_server_info(dmod, domid, id; optional ioreq_gfn, optional bufioreq_gfn, optional bufioreq_port) => |dm| {
        let info = dm.get_ioreq_server_info(domid, id, ioreq_gfn.is_some() || bufioreq_gfn.is_some())?;
        if let Some(p) = ioreq_gfn {
            *p = info.ioreq_gfn as xen_pfn_t;
        }
        if let Some(p) = bufioreq_gfn {
            *p = info.bufioreq_gfn as xen_pfn_t;
        }
        if let Some(p) = bufioreq_port {
            *p = info.bufioreq_port;
        }
        Ok(())
    })
}

/// Registers a range of MMIO (is_mmio != 0) or I/O ports for emulation.
///
/// @parm start start of range; @parm end end of range (inclusive).
/// @return 0 on success, -1 on failure.
///
/// # Safety
/// Any value of `dmod` is safe; there are no other pointers.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_map_io_range_to_ioreq_server(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    id: ioservid_t,
    is_mmio: c_int,
    start: u64,
    end: u64,
) -> c_int {
    entry!(map_io_range_to_ioreq_server(dmod, domid, id, is_mmio, start, end) => |dm| {
        dm.map_io_range(domid, id, space(is_mmio), start, end)
    })
}

/// Deregisters a range of MMIO (is_mmio != 0) or I/O ports.
///
/// @return 0 on success, -1 on failure.
///
/// # Safety
/// Any value of `dmod` is safe; there are no other pointers.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_unmap_io_range_from_ioreq_server(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    id: ioservid_t,
    is_mmio: c_int,
    start: u64,
    end: u64,
) -> c_int {
    entry!(unmap_io_range_from_ioreq_server(dmod, domid, id, is_mmio, start, end) => |dm| {
        dm.unmap_io_range(domid, id, space(is_mmio), start, end)
    })
}

/// Registers (flags = XEN_DMOP_IOREQ_MEM_ACCESS_WRITE) or deregisters
/// (flags = 0) a memory type for emulation.
///
/// @parm type only HVMMEM_ioreq_server is supported; anything else, or other
///       flags, fails with EINVAL before any request is sent.
/// @return 0 on success, -1 on failure.
///
/// # Safety
/// Any value of `dmod` is safe; there are no other pointers.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_map_mem_type_to_ioreq_server(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    id: ioservid_t,
    type_: u16,
    flags: u32,
) -> c_int {
    entry!(map_mem_type_to_ioreq_server(dmod, domid, id, type_, flags) => |dm| {
        dm.map_mem_type(domid, id, type_, flags)
    })
}

/// Registers a PCI device for config space emulation.
///
/// @parm device the slot (0..0x1f); @parm function 0..7: otherwise EINVAL
///       before any request is sent.
/// @return 0 on success, -1 on failure.
///
/// # Safety
/// Any value of `dmod` is safe; there are no other pointers.
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
    entry!(map_pcidev_to_ioreq_server(dmod, domid, id, segment, bus, device, function) => |dm| {
        dm.map_pcidev(domid, id, Sbdf::try_new(segment, bus, device, function)?)
    })
}

/// Deregisters a PCI device from config space emulation.
///
/// @return 0 on success, -1 on failure (EINVAL for device > 0x1f or function > 7).
///
/// # Safety
/// Any value of `dmod` is safe; there are no other pointers.
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
    entry!(unmap_pcidev_from_ioreq_server(dmod, domid, id, segment, bus, device, function) => |dm| {
        dm.unmap_pcidev(domid, id, Sbdf::try_new(segment, bus, device, function)?)
    })
}

/// Destroys an IOREQ Server.
///
/// @return 0 on success, -1 on failure.
///
/// # Safety
/// Any value of `dmod` is safe; there are no other pointers.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_destroy_ioreq_server(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    id: ioservid_t,
) -> c_int {
    entry!(destroy_ioreq_server(dmod, domid, id) => |dm| dm.destroy_ioreq_server(domid, id))
}

/// Enables (enabled != 0) or disables an IOREQ Server. A server receives no
/// emulation requests, and its gfns are not meaningful, until enabled.
///
/// @return 0 on success, -1 on failure.
///
/// # Safety
/// Any value of `dmod` is safe; there are no other pointers.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_set_ioreq_server_state(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    id: ioservid_t,
    enabled: c_int,
) -> c_int {
    entry!(set_ioreq_server_state(dmod, domid, id, enabled) => |dm| {
        dm.set_ioreq_server_state(domid, id, enabled != 0)
    })
}

/// Sets the level of the INTx pin (0 => A .. 3 => D) of an emulated PCI device.
///
/// @parm level 1 asserted, 0 de-asserted (sent as 8 bits).
/// @return 0 on success, -1 on failure.
///
/// # Safety
/// Any value of `dmod` is safe; there are no other pointers.
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
    entry!(set_pci_intx_level(dmod, domid, segment, bus, device, intx, level) => |dm| {
        dm.set_pci_intx_level_raw(domid, segment, bus, device, intx, level as u8)
    })
}

/// Sets the level of an ISA IRQ line (0 - 15).
///
/// @parm level 1 asserted, 0 de-asserted (sent as 8 bits).
/// @return 0 on success, -1 on failure.
///
/// # Safety
/// Any value of `dmod` is safe; there are no other pointers.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_set_isa_irq_level(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    irq: u8,
    level: c_uint,
) -> c_int {
    entry!(set_isa_irq_level(dmod, domid, irq, level) => |dm| dm.set_isa_irq_level_raw(domid, irq, level as u8))
}

/// Sets the level of an interrupt line (used on Arm; x86 Xen answers EOPNOTSUPP).
///
/// @parm level 1 asserted, 0 de-asserted (sent as 8 bits).
/// @return 0 on success, -1 on failure.
///
/// # Safety
/// Any value of `dmod` is safe; there are no other pointers.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_set_irq_level(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    irq: c_uint,
    level: c_uint,
) -> c_int {
    entry!(set_irq_level(dmod, domid, irq, level) => |dm| dm.set_irq_level_raw(domid, irq, level as u8))
}

/// Maps a PCI INTx line (0 => A .. 3 => D) to an ISA IRQ (0 disables the link).
///
/// @return 0 on success, -1 on failure.
///
/// # Safety
/// Any value of `dmod` is safe; there are no other pointers.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_set_pci_link_route(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    link: u8,
    irq: u8,
) -> c_int {
    entry!(set_pci_link_route(dmod, domid, link, irq) => |dm| dm.set_pci_link_route(domid, link, irq))
}

/// Injects an MSI (address 0xfeexxxxx, data) into the guest.
///
/// @return 0 on success, -1 on failure.
///
/// # Safety
/// Any value of `dmod` is safe; there are no other pointers.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_inject_msi(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    msi_addr: u64,
    msi_data: u32,
) -> c_int {
    entry!(inject_msi(dmod, domid, msi_addr, msi_data) => |dm| dm.inject_msi(domid, msi_addr, msi_data))
}

/// Tracks changes in a VRAM area. Atomically: fetches the dirty bitmap since
/// the last call, sets up tracking of nr pages from first_pfn until the next
/// call, and clears the tracking area.
///
/// @parm dirty_bitmap receives ceil(nr / 8) bytes (may be NULL when nr is 0).
///       The request is never split, so nr is limited by privcmd's buffer
///       size (32768 pages with Linux's default 4096-byte limit; E2BIG above).
/// @return 0 on success, -1 on failure.
///
/// # Safety
/// `dirty_bitmap` must be valid for writing ceil(nr / 8) bytes, or NULL
/// (which the hypervisor refuses with EFAULT).
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_track_dirty_vram(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    first_pfn: u64,
    nr: u32,
    dirty_bitmap: *mut c_ulong,
) -> c_int {
    entry!(track_dirty_vram(dmod, domid, first_pfn, nr; buffer dirty_bitmap) => |dm| {
        dm.track_dirty_vram_raw(domid, first_pfn, nr, dirty_bitmap)
    })
}

/// Notifies the hypervisor that nr contiguous pages from first_pfn were modified.
///
/// @return 0 on success, -1 on failure.
///
/// # Safety
/// Any value of `dmod` is safe; there are no other pointers.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_modified_memory(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    first_pfn: u64,
    nr: u32,
) -> c_int {
    entry!(modified_memory(dmod, domid, first_pfn, nr) => |dm| dm.modified_memory(domid, first_pfn, nr))
}

/// Notifies the hypervisor that a set of discontiguous pages were modified.
///
/// @parm extents an array of nr extents (start pfn and number of pages).
///       Any nr works: arrays longer than one privcmd buffer holds (256
///       extents) are sent in chunks; on failure the failing chunk's error is
///       returned (earlier chunks have been applied).
/// @return 0 on success, -1 on failure.
///
/// # Safety
/// `extents` must be valid for reading and writing nr extents (the
/// hypervisor updates extents it splits), or NULL (refused with EFAULT when
/// nr > 0).
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_modified_memory_bulk(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    extents: *mut xen_dm_op_modified_memory_extent,
    nr: u32,
) -> c_int {
    entry!(modified_memory_bulk(dmod, domid, nr; buffer extents) => |dm| {
        dm.modified_memory_raw(domid, extents, nr)
    })
}

/// Sets how nr pages from first_pfn are treated (see hvmmem_type_t; sent as 16 bits).
///
/// @return 0 on success, -1 on failure.
///
/// # Safety
/// Any value of `dmod` is safe; there are no other pointers.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_set_mem_type(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    mem_type: hvmmem_type_t,
    first_pfn: u64,
    nr: u32,
) -> c_int {
    entry!(set_mem_type(dmod, domid, mem_type, first_pfn, nr) => |dm| {
        dm.set_mem_type(domid, mem_type as u16, first_pfn, nr)
    })
}

/// Injects an event into a vCPU, to take effect the next time it resumes.
///
/// @parm type the event type (see enum x86_event_type).
/// @parm error_code the error code, or ~0 to skip.
/// @parm extra type-specific extra data (%cr2 for #PF, pending_dbg for #DB).
/// @return 0 on success, -1 on failure.
///
/// # Safety
/// Any value of `dmod` is safe; there are no other pointers.
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
    entry!(inject_event(dmod, domid, vcpu, vector, type_, error_code, insn_len, extra) => |dm| {
        dm.inject_event(domid, vcpu as u32, Event { vector, kind: type_, error_code, insn_len, extra })
    })
}

/// Shuts the domain down.
///
/// @parm reason usually enum sched_shutdown_reason, see xen/sched.h
/// @return 0 on success, -1 on failure.
///
/// # Safety
/// Any value of `dmod` is safe; there are no other pointers.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_shutdown(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    reason: c_uint,
) -> c_int {
    entry!(shutdown(dmod, domid, reason) => |dm| dm.shutdown(domid, reason))
}

/// Relocates size GFNs from src_gfn to dst_gfn.
///
/// @return 0 on success, -1 on failure.
///
/// # Safety
/// Any value of `dmod` is safe; there are no other pointers.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_relocate_memory(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    size: u32,
    src_gfn: u64,
    dst_gfn: u64,
) -> c_int {
    entry!(relocate_memory(dmod, domid, size, src_gfn, dst_gfn) => |dm| {
        dm.relocate_memory(domid, size, src_gfn, dst_gfn)
    })
}

/// Pins the caching type (XEN_DMOP_MEM_CACHEATTR_*) of the RAM gfns start..end.
///
/// @return 0 on success, -1 on failure.
///
/// # Safety
/// Any value of `dmod` is safe; there are no other pointers.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_pin_memory_cacheattr(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    start: u64,
    end: u64,
    type_: u32,
) -> c_int {
    entry!(pin_memory_cacheattr(dmod, domid, start, end, type_) => |dm| {
        dm.pin_memory_cacheattr(domid, start, end, type_)
    })
}

/// Queries the number of vCPUs of a domain.
///
/// @parm vcpus receives the count (must not be NULL: EINVAL).
/// @return 0 on success, -1 on failure.
///
/// # Safety
/// `vcpus` must be valid for writing one unsigned int.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_nr_vcpus(
    dmod: *mut xendevicemodel_handle,
    domid: domid_t,
    vcpus: *mut c_uint,
) -> c_int {
    entry!(nr_vcpus(dmod, domid; required vcpus) => |dm| {
        *vcpus = dm.nr_vcpus(domid)?;
        Ok(())
    })
}

/// Restricts this handle to the given domain: later calls for any other
/// domain fail with EPERM. Restricting again to another domain fails (EINVAL);
/// EOPNOTSUPP when the kernel lacks the DM_OP ioctl.
///
/// @return 0 on success, -1 on failure.
///
/// # Safety
/// Any value of `dmod` is safe; there are no other pointers.
#[no_mangle]
pub unsafe extern "C" fn xendevicemodel_restrict(dmod: *mut xendevicemodel_handle, domid: domid_t) -> c_int {
    entry!(restrict(dmod, domid) => |dm| dm.restrict(domid))
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
