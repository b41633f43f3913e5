/*
 * Every entry point that takes a handle, as a table: each calls its function
 * once on a handle with fixed arguments that the privcmd test double accepts
 * for domain CALLS_DOM (so on an open handle every one succeeds, and on
 * anything else every one must fail with EBADF). Used where a rule must hold
 * for every entry point: stale and altered keys, signal handlers.
 *
 * xendevicemodel_close is last and marked: it consumes the handle.
 */
#ifndef XDM_CALLS_H
#define XDM_CALLS_H

#include <xendevicemodel.h>

#define CALLS_DOM 5

struct call {
    const char *name;
    int (*run)(xendevicemodel_handle *h);
    int closes; /* 1 for close: the handle is gone afterwards */
};

static int c_create(xendevicemodel_handle *h)
{
    ioservid_t id;
    return xendevicemodel_create_ioreq_server(h, CALLS_DOM, 0, &id);
}
static int c_info(xendevicemodel_handle *h)
{
    xen_pfn_t g, b;
    evtchn_port_t p;
    return xendevicemodel_get_ioreq_server_info(h, CALLS_DOM, 1, &g, &b, &p);
}
static int c_map_io(xendevicemodel_handle *h)
{
    return xendevicemodel_map_io_range_to_ioreq_server(h, CALLS_DOM, 1, 1, 0xf0000000, 0xf0000fff);
}
static int c_unmap_io(xendevicemodel_handle *h)
{
    return xendevicemodel_unmap_io_range_from_ioreq_server(h, CALLS_DOM, 1, 1, 0xf0000000, 0xf0000fff);
}
static int c_map_mem(xendevicemodel_handle *h)
{
    return xendevicemodel_map_mem_type_to_ioreq_server(h, CALLS_DOM, 1, 4 /* HVMMEM_ioreq_server */, 2 /* XEN_DMOP_IOREQ_MEM_ACCESS_WRITE */);
}
static int c_map_pci(xendevicemodel_handle *h)
{
    return xendevicemodel_map_pcidev_to_ioreq_server(h, CALLS_DOM, 1, 0, 0, 3, 0);
}
static int c_unmap_pci(xendevicemodel_handle *h)
{
    return xendevicemodel_unmap_pcidev_from_ioreq_server(h, CALLS_DOM, 1, 0, 0, 3, 0);
}
static int c_destroy(xendevicemodel_handle *h)
{
    return xendevicemodel_destroy_ioreq_server(h, CALLS_DOM, 1);
}
static int c_state(xendevicemodel_handle *h)
{
    return xendevicemodel_set_ioreq_server_state(h, CALLS_DOM, 1, 1);
}
static int c_intx(xendevicemodel_handle *h)
{
    return xendevicemodel_set_pci_intx_level(h, CALLS_DOM, 0, 0, 3, 0, 1);
}
static int c_isa(xendevicemodel_handle *h)
{
    return xendevicemodel_set_isa_irq_level(h, CALLS_DOM, 1, 1);
}
static int c_irq(xendevicemodel_handle *h)
{
    return xendevicemodel_set_irq_level(h, CALLS_DOM, 32, 1);
}
static int c_link(xendevicemodel_handle *h)
{
    return xendevicemodel_set_pci_link_route(h, CALLS_DOM, 0, 5);
}
static int c_msi(xendevicemodel_handle *h)
{
    return xendevicemodel_inject_msi(h, CALLS_DOM, 0xfee00000, 0x30);
}
static int c_vram(xendevicemodel_handle *h)
{
    unsigned long bitmap[2] = {0, 0};
    return xendevicemodel_track_dirty_vram(h, CALLS_DOM, 0x1000, 64, bitmap);
}
static int c_modified(xendevicemodel_handle *h)
{
    return xendevicemodel_modified_memory(h, CALLS_DOM, 0x1000, 1);
}
static int c_bulk(xendevicemodel_handle *h)
{
    struct xen_dm_op_modified_memory_extent e[2] = {{.first_pfn = 0x1000, .nr = 1}, {.first_pfn = 0x2000, .nr = 2}};
    return xendevicemodel_modified_memory_bulk(h, CALLS_DOM, e, 2);
}
static int c_mem_type(xendevicemodel_handle *h)
{
    return xendevicemodel_set_mem_type(h, CALLS_DOM, 0, 0x1000, 1);
}
static int c_event(xendevicemodel_handle *h)
{
    return xendevicemodel_inject_event(h, CALLS_DOM, 0, 14, 3, 0, 0, 0);
}
static int c_shutdown(xendevicemodel_handle *h)
{
    return xendevicemodel_shutdown(h, CALLS_DOM, 0);
}
static int c_relocate(xendevicemodel_handle *h)
{
    return xendevicemodel_relocate_memory(h, CALLS_DOM, 1, 0x1000, 0x2000);
}
static int c_pin(xendevicemodel_handle *h)
{
    return xendevicemodel_pin_memory_cacheattr(h, CALLS_DOM, 0x1000, 0x1000, 0);
}
static int c_vcpus(xendevicemodel_handle *h)
{
    unsigned int n;
    return xendevicemodel_nr_vcpus(h, CALLS_DOM, &n);
}
static int c_restrict(xendevicemodel_handle *h)
{
    return xendevicemodel_restrict(h, CALLS_DOM);
}
static int c_close(xendevicemodel_handle *h)
{
    return xendevicemodel_close(h);
}

static const struct call CALLS[] = {
    {"create_ioreq_server", c_create, 0},
    {"get_ioreq_server_info", c_info, 0},
    {"map_io_range_to_ioreq_server", c_map_io, 0},
    {"unmap_io_range_from_ioreq_server", c_unmap_io, 0},
    {"map_mem_type_to_ioreq_server", c_map_mem, 0},
    {"map_pcidev_to_ioreq_server", c_map_pci, 0},
    {"unmap_pcidev_from_ioreq_server", c_unmap_pci, 0},
    {"destroy_ioreq_server", c_destroy, 0},
    {"set_ioreq_server_state", c_state, 0},
    {"set_pci_intx_level", c_intx, 0},
    {"set_isa_irq_level", c_isa, 0},
    {"set_irq_level", c_irq, 0},
    {"set_pci_link_route", c_link, 0},
    {"inject_msi", c_msi, 0},
    {"track_dirty_vram", c_vram, 0},
    {"modified_memory", c_modified, 0},
    {"modified_memory_bulk", c_bulk, 0},
    {"set_mem_type", c_mem_type, 0},
    {"inject_event", c_event, 0},
    {"shutdown", c_shutdown, 0},
    {"relocate_memory", c_relocate, 0},
    {"pin_memory_cacheattr", c_pin, 0},
    {"nr_vcpus", c_vcpus, 0},
    {"restrict", c_restrict, 0},
    {"close", c_close, 1},
};
#define NCALLS ((int)(sizeof(CALLS) / sizeof(CALLS[0])))

#endif
