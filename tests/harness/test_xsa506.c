/*
 * XSA-506: since 2026 the hypervisor refuses a dm_op with no buffer, and
 * modified_memory with fewer than two buffers. No input of any call may make
 * the library send one: every call, at its argument edges (zero counts,
 * NULL and empty extent arrays, extents of 0 pages, sizes at and past
 * privcmd's limits, inverted ranges), through the DM_OP ioctl and through
 * the libxencall fallback. The privcmd double refuses and counts what a
 * patched hypervisor would refuse (fp_xsa506_count), and records every
 * request, whose buffer counts are checked here too.
 *
 * The same program runs against Xen's library (`test_xsa506 xen`, with
 * LD_LIBRARY_PATH choosing it), leaving out the inputs on which Xen's
 * library crashes (NULL required out-pointers; NULL buffers with a size on
 * the libxencall path), to show what Xen's library sends at the same edges.
 * (The probe at open, a DM_OP with no buffer for DOMID_INVALID, is answered
 * by privcmd itself and never reaches the hypervisor; both libraries make it.)
 */
#include <unistd.h>
#include <xendevicemodel.h>

#include "check.h"
#include "fakeprivcmd.h"

#define DOM 5
static int xen_lib;   /* running against Xen's library */
static int cases, sent, bad_cases;
static const char *path;

/* Whether any request since `from` would be refused by a patched hypervisor. */
static int violations(unsigned long from, char *why, size_t len)
{
    int n = 0;
    for (unsigned long i = from; i < fp_count(); i++) {
        const struct fp_record *r = fp_get(i);
        if (!r || (r->kind != FP_DM_OP && r->kind != FP_HYPERCALL))
            continue;
        if (r->kind == FP_DM_OP && r->err == EPERM && r->nr_bufs == 0)
            continue; /* refused by privcmd's restriction (recorded without buffers): never sent on */
        unsigned op = r->nr_bufs && r->size[0] >= sizeof(struct xen_dm_op) && !r->is_null[0]
                          ? ((const struct xen_dm_op *)r->data[0])->op
                          : ~0u;
        if (r->nr_bufs == 0 || (op == XEN_DMOP_modified_memory && r->nr_bufs < 2)) {
            if (!n++)
                snprintf(why, len, "op %d with %u buffers", (int)op, r->nr_bufs);
        }
    }
    return n;
}

/*
 * One input: runs `call`, then checks that nothing was sent that XSA-506
 * refuses (the double's count and its records).
 */
#define CASE(what, call)                                                                                     \
    do {                                                                                                     \
        unsigned long from_ = fp_count(), xsa_ = fp_xsa506_count();                                          \
        errno = 0;                                                                                           \
        int rc_ = (call);                                                                                    \
        int e_ = errno;                                                                                      \
        char why_[128] = "";                                                                                 \
        int v_ = violations(from_, why_, sizeof(why_));                                                      \
        unsigned long x_ = fp_xsa506_count() - xsa_;                                                         \
        cases++;                                                                                             \
        sent += fp_count() > from_;                                                                          \
        bad_cases += v_ || x_;                                                                               \
        CHECK(v_ == 0 && x_ == 0, "%s, %s: %s: rc %d errno %d: %lu refused by XSA-506's check, %s", path,    \
              xen_lib ? "Xen's library" : "ours", what, rc_, e_, x_, why_);                                  \
    } while (0)

static struct xen_dm_op_modified_memory_extent ext[600];
static unsigned long bitmap[32768 / 64 + 2];

static void every_call(xendevicemodel_handle *h, int via_xencall)
{
    /* Xen's library copies from NULL on the libxencall path (a crash). */
    int null_sized_ok = !(xen_lib && via_xencall);
    ioservid_t id = 0;
    xen_pfn_t g, b;
    evtchn_port_t p;
    unsigned vcpus;

    CASE("create_ioreq_server bufioreq 0", xendevicemodel_create_ioreq_server(h, DOM, 0, &id));
    CASE("create_ioreq_server bufioreq -1", xendevicemodel_create_ioreq_server(h, DOM, -1, &id));
    if (!xen_lib)
        CASE("create_ioreq_server id NULL", xendevicemodel_create_ioreq_server(h, DOM, 1, NULL));
    CASE("get_ioreq_server_info all NULL", xendevicemodel_get_ioreq_server_info(h, DOM, 0, NULL, NULL, NULL));
    CASE("get_ioreq_server_info all", xendevicemodel_get_ioreq_server_info(h, DOM, 0xffff, &g, &b, &p));
    CASE("map_io_range empty-ended", xendevicemodel_map_io_range_to_ioreq_server(h, DOM, 0, 0, 0, 0));
    CASE("map_io_range inverted", xendevicemodel_map_io_range_to_ioreq_server(h, DOM, 1, 1, ~0ull, 0));
    CASE("unmap_io_range inverted", xendevicemodel_unmap_io_range_from_ioreq_server(h, DOM, 1, 7, ~0ull, 0));
    CASE("map_mem_type flags 0", xendevicemodel_map_mem_type_to_ioreq_server(h, DOM, 1, 4, 0));
    CASE("map_mem_type type 0", xendevicemodel_map_mem_type_to_ioreq_server(h, DOM, 1, 0, 0));
    CASE("map_mem_type flags ~0", xendevicemodel_map_mem_type_to_ioreq_server(h, DOM, 1, 4, ~0u));
    CASE("map_pcidev 0", xendevicemodel_map_pcidev_to_ioreq_server(h, DOM, 0, 0, 0, 0, 0));
    CASE("map_pcidev device 0x20", xendevicemodel_map_pcidev_to_ioreq_server(h, DOM, 1, 0xffff, 0xff, 0x20, 0));
    CASE("unmap_pcidev function 8", xendevicemodel_unmap_pcidev_from_ioreq_server(h, DOM, 1, 0, 0, 0, 8));
    CASE("destroy id 0", xendevicemodel_destroy_ioreq_server(h, DOM, 0));
    CASE("set_ioreq_server_state 0", xendevicemodel_set_ioreq_server_state(h, DOM, 0, 0));
    CASE("set_pci_intx_level level 0", xendevicemodel_set_pci_intx_level(h, DOM, 0, 0, 0, 0, 0));
    CASE("set_pci_intx_level level 0x100", xendevicemodel_set_pci_intx_level(h, DOM, 0, 0, 0, 0, 0x100));
    CASE("set_isa_irq_level irq 0", xendevicemodel_set_isa_irq_level(h, DOM, 0, 0));
    CASE("set_isa_irq_level irq 255", xendevicemodel_set_isa_irq_level(h, DOM, 255, ~0u));
    CASE("set_irq_level 0", xendevicemodel_set_irq_level(h, DOM, 0, 0));
    CASE("set_irq_level ~0", xendevicemodel_set_irq_level(h, DOM, ~0u, ~0u));
    CASE("set_pci_link_route 0", xendevicemodel_set_pci_link_route(h, DOM, 0, 0));
    CASE("set_pci_link_route 255", xendevicemodel_set_pci_link_route(h, DOM, 255, 255));
    CASE("inject_msi 0", xendevicemodel_inject_msi(h, DOM, 0, 0));
    CASE("track_dirty_vram nr 0, NULL", xendevicemodel_track_dirty_vram(h, DOM, 0, 0, NULL));
    CASE("track_dirty_vram nr 0", xendevicemodel_track_dirty_vram(h, DOM, 0, 0, bitmap));
    CASE("track_dirty_vram nr 1", xendevicemodel_track_dirty_vram(h, DOM, ~0ull, 1, bitmap));
    CASE("track_dirty_vram nr 32768", xendevicemodel_track_dirty_vram(h, DOM, 0, 32768, bitmap));
    CASE("track_dirty_vram nr 32769", xendevicemodel_track_dirty_vram(h, DOM, 0, 32769, bitmap));
    if (null_sized_ok) {
        CASE("track_dirty_vram nr 1, NULL", xendevicemodel_track_dirty_vram(h, DOM, 0, 1, NULL));
        CASE("track_dirty_vram nr ~0, NULL", xendevicemodel_track_dirty_vram(h, DOM, 0, ~0u, NULL));
    }
    CASE("modified_memory nr 0", xendevicemodel_modified_memory(h, DOM, 0, 0));
    CASE("modified_memory nr ~0", xendevicemodel_modified_memory(h, DOM, ~0ull, ~0u));
    CASE("modified_memory nr 1", xendevicemodel_modified_memory(h, DOM, 0x1000, 1));
    CASE("modified_memory_bulk nr 0, NULL", xendevicemodel_modified_memory_bulk(h, DOM, NULL, 0));
    CASE("modified_memory_bulk nr 0", xendevicemodel_modified_memory_bulk(h, DOM, ext, 0));
    /* Empty extents: 0 pages each. */
    memset(ext, 0, sizeof(ext));
    CASE("modified_memory_bulk 1 empty extent", xendevicemodel_modified_memory_bulk(h, DOM, ext, 1));
    CASE("modified_memory_bulk 2 empty extents", xendevicemodel_modified_memory_bulk(h, DOM, ext, 2));
    CASE("modified_memory_bulk 256 empty extents", xendevicemodel_modified_memory_bulk(h, DOM, ext, 256));
    for (int i = 0; i < 600; i++)
        ext[i] = (struct xen_dm_op_modified_memory_extent){.first_pfn = 0x1000 + i, .nr = (uint32_t)i % 3};
    CASE("modified_memory_bulk 255", xendevicemodel_modified_memory_bulk(h, DOM, ext, 255));
    CASE("modified_memory_bulk 256", xendevicemodel_modified_memory_bulk(h, DOM, ext, 256));
    CASE("modified_memory_bulk 257", xendevicemodel_modified_memory_bulk(h, DOM, ext, 257));
    CASE("modified_memory_bulk 512", xendevicemodel_modified_memory_bulk(h, DOM, ext, 512));
    CASE("modified_memory_bulk 513", xendevicemodel_modified_memory_bulk(h, DOM, ext, 513));
    CASE("modified_memory_bulk 600", xendevicemodel_modified_memory_bulk(h, DOM, ext, 600));
    if (null_sized_ok) {
        CASE("modified_memory_bulk 1, NULL", xendevicemodel_modified_memory_bulk(h, DOM, NULL, 1));
        CASE("modified_memory_bulk 600, NULL", xendevicemodel_modified_memory_bulk(h, DOM, NULL, 600));
    }
    CASE("set_mem_type nr 0", xendevicemodel_set_mem_type(h, DOM, 0, 0, 0));
    CASE("set_mem_type nr ~0", xendevicemodel_set_mem_type(h, DOM, ~0u, ~0ull, ~0u));
    CASE("inject_event 0", xendevicemodel_inject_event(h, DOM, 0, 0, 0, 0, 0, 0));
    CASE("inject_event vcpu -1", xendevicemodel_inject_event(h, DOM, -1, 255, 255, ~0u, 255, ~0ull));
    CASE("shutdown 0", xendevicemodel_shutdown(h, DOM, 0));
    CASE("relocate_memory size 0", xendevicemodel_relocate_memory(h, DOM, 0, 0, 0));
    CASE("relocate_memory size ~0", xendevicemodel_relocate_memory(h, DOM, ~0u, ~0ull, ~0ull));
    CASE("pin_memory_cacheattr inverted", xendevicemodel_pin_memory_cacheattr(h, DOM, ~0ull, 0, ~0u));
    CASE("nr_vcpus", xendevicemodel_nr_vcpus(h, DOM, &vcpus));
    if (!xen_lib)
        CASE("nr_vcpus NULL", xendevicemodel_nr_vcpus(h, DOM, NULL));
    /* Unknown and reserved domains, and a restricted handle's refusals. */
    CASE("modified_memory_bulk nr 0, DOMID_INVALID", xendevicemodel_modified_memory_bulk(h, 0x7ff4, ext, 0));
    CASE("set_isa_irq_level dom 0", xendevicemodel_set_isa_irq_level(h, 0, 1, 1));
    if (!via_xencall) {
        CASE("restrict", xendevicemodel_restrict(h, DOM));
        CASE("modified_memory_bulk nr 0, other domain", xendevicemodel_modified_memory_bulk(h, DOM + 1, ext, 0));
        CASE("modified_memory nr 0, restricted", xendevicemodel_modified_memory(h, DOM, 0, 0));
    }
}

static void run(int via_xencall)
{
    path = via_xencall ? "libxencall" : "privcmd DM_OP";
    fp_config("probe_errno", via_xencall ? ENOTTY : 0);
    fp_reset();
    int before = cases, saved_sent = sent, saved_bad = bad_cases;
    struct cap_logger cap; /* both libraries log some refusals */
    cap_init(&cap);
    xendevicemodel_handle *h = xendevicemodel_open(&cap.base, 0);
    CHECK(h != NULL, "open (%s)", path);
    unsigned long probes = 0;
    for (unsigned long i = 0; i < fp_count(); i++)
        probes += fp_get(i) && fp_get(i)->kind == FP_PROBE;
    if (h)
        every_call(h, via_xencall);
    xendevicemodel_close(h);
    printf("xsa506: %s, %s: %d inputs, %d of them sent requests, %d sent what XSA-506 refuses "
           "(the open's probe: %lu request(s) with no buffer, answered by privcmd)\n",
           xen_lib ? "Xen's library" : "ours", path, cases - before, sent - saved_sent, bad_cases - saved_bad, probes);
    fp_config("probe_errno", 0);
}

int main(int argc, char **argv)
{
    xen_lib = argc > 1 && strcmp(argv[1], "xen") == 0;
    run(0);
    run(1);
    CHECK(bad_cases == 0, "%d inputs sent requests that XSA-506 refuses", bad_cases);
    CHECK(sent > cases / 2, "only %d of %d inputs sent anything: the edges test nothing", sent, cases);
    return t_done(xen_lib ? "xsa506 (the Xen library)" : "xsa506");
}
