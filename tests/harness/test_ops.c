/*
 * Every xendevicemodel_* call against the privcmd test double: the exact
 * request bytes (compared with a struct xen_dm_op built here from Xen's
 * public header), out-values, errno pass-through, argument validation,
 * loggers, and the three ways open can reach the hypervisor.
 *
 * Run with LD_LIBRARY_PATH=build (ours) — see tests/run.sh.
 */
#include <fcntl.h>
#include <unistd.h>
#include <xendevicemodel.h>
#include <xentoolcore.h>

#include "check.h"
#include "fakeprivcmd.h"

#define DOM 5

static const struct fp_record *last(void)
{
    unsigned long n = fp_count();
    return n ? fp_get(n - 1) : NULL;
}

static struct xen_dm_op mk(uint32_t opno)
{
    struct xen_dm_op op;
    memset(&op, 0, sizeof(op));
    op.op = opno;
    return op;
}

/* The last request must be `want` (plus nbufs-1 more buffers) for domain dom. */
static void check_req(const char *what, int kind, domid_t dom, unsigned nbufs, const struct xen_dm_op *want)
{
    const struct fp_record *r = last();
    CHECK(r != NULL, "%s: no request recorded", what);
    if (!r)
        return;
    CHECK(r->kind == (enum fp_kind)kind, "%s: kind %d", what, r->kind);
    CHECK(r->domid == dom, "%s: domid %u", what, r->domid);
    CHECK(r->nr_bufs == nbufs, "%s: %u buffers", what, r->nr_bufs);
    CHECK(r->size[0] == sizeof(*want), "%s: buffer 0 is %zu bytes", what, r->size[0]);
    CHECK(memcmp(r->data[0], want, sizeof(*want)) == 0, "%s: request bytes differ from Xen's encoding", what);
}

static void test_encodings(xendevicemodel_handle *h, int kind)
{
    struct xen_dm_op w;
    unsigned long before;

    /* create_ioreq_server: handle_bufioreq is truncated to 8 bits. */
    ioservid_t id = 0xdead;
    CHECK_OK(xendevicemodel_create_ioreq_server(h, DOM, 0x101, &id));
    w = mk(XEN_DMOP_create_ioreq_server);
    w.u.create_ioreq_server.handle_bufioreq = 0x01;
    check_req("create", kind, DOM, 1, &w);
    CHECK(id >= 1 && id != 0xdead, "create: id %u", id);

    /* get_ioreq_server_info: all outputs, then no_gfns only if both gfns are NULL. */
    xen_pfn_t gfn = 0, bufgfn = 0;
    evtchn_port_t port = 0;
    CHECK_OK(xendevicemodel_get_ioreq_server_info(h, DOM, id, &gfn, &bufgfn, &port));
    w = mk(XEN_DMOP_get_ioreq_server_info);
    w.u.get_ioreq_server_info.id = id;
    check_req("get_info", kind, DOM, 1, &w);
    CHECK(gfn == 0xfeff0 + 2u * id && bufgfn == 0xfeff1 + 2u * id && port == 0x30u + id,
          "get_info: gfn %#lx bufgfn %#lx port %#x", (unsigned long)gfn, (unsigned long)bufgfn, port);
    port = 0;
    CHECK_OK(xendevicemodel_get_ioreq_server_info(h, DOM, id, NULL, NULL, &port));
    w.u.get_ioreq_server_info.flags = XEN_DMOP_no_gfns;
    check_req("get_info no_gfns", kind, DOM, 1, &w);
    CHECK(port == 0x30u + id, "get_info: port %#x", port);
    gfn = 0;
    CHECK_OK(xendevicemodel_get_ioreq_server_info(h, DOM, id, NULL, &bufgfn, NULL));
    w.u.get_ioreq_server_info.flags = 0;
    check_req("get_info one gfn", kind, DOM, 1, &w);

    /* io ranges: is_mmio is a boolean, any non-zero value means MMIO. */
    CHECK_OK(xendevicemodel_map_io_range_to_ioreq_server(h, DOM, id, 7, 0xf0000000, 0xf0000fff));
    w = mk(XEN_DMOP_map_io_range_to_ioreq_server);
    w.u.map_io_range_to_ioreq_server.id = id;
    w.u.map_io_range_to_ioreq_server.type = XEN_DMOP_IO_RANGE_MEMORY;
    w.u.map_io_range_to_ioreq_server.start = 0xf0000000;
    w.u.map_io_range_to_ioreq_server.end = 0xf0000fff;
    check_req("map mmio", kind, DOM, 1, &w);
    CHECK_OK(xendevicemodel_unmap_io_range_from_ioreq_server(h, DOM, id, 0, 0x3f8, 0x3ff));
    w = mk(XEN_DMOP_unmap_io_range_from_ioreq_server);
    w.u.unmap_io_range_from_ioreq_server.id = id;
    w.u.unmap_io_range_from_ioreq_server.type = XEN_DMOP_IO_RANGE_PORT;
    w.u.unmap_io_range_from_ioreq_server.start = 0x3f8;
    w.u.unmap_io_range_from_ioreq_server.end = 0x3ff;
    check_req("unmap ports", kind, DOM, 1, &w);

    /* PCI: a singleton SBDF range; invalid slot/function is EINVAL, nothing sent. */
    CHECK_OK(xendevicemodel_map_pcidev_to_ioreq_server(h, DOM, id, 0x1234, 0xab, 0x1f, 7));
    w = mk(XEN_DMOP_map_io_range_to_ioreq_server);
    w.u.map_io_range_to_ioreq_server.id = id;
    w.u.map_io_range_to_ioreq_server.type = XEN_DMOP_IO_RANGE_PCI;
    w.u.map_io_range_to_ioreq_server.start = w.u.map_io_range_to_ioreq_server.end =
        XEN_DMOP_PCI_SBDF(0x1234ULL, 0xabULL, 0x1fULL, 7ULL);
    check_req("map pcidev", kind, DOM, 1, &w);
    CHECK_OK(xendevicemodel_unmap_pcidev_from_ioreq_server(h, DOM, id, 0, 0, 3, 0));
    w = mk(XEN_DMOP_unmap_io_range_from_ioreq_server);
    w.u.unmap_io_range_from_ioreq_server.id = id;
    w.u.unmap_io_range_from_ioreq_server.type = XEN_DMOP_IO_RANGE_PCI;
    w.u.unmap_io_range_from_ioreq_server.start = w.u.unmap_io_range_from_ioreq_server.end = 0x18;
    check_req("unmap pcidev", kind, DOM, 1, &w);
    before = fp_count();
    CHECK_FAILS(xendevicemodel_map_pcidev_to_ioreq_server(h, DOM, id, 0, 0, 0x20, 0), EINVAL);
    CHECK_FAILS(xendevicemodel_map_pcidev_to_ioreq_server(h, DOM, id, 0, 0, 0, 8), EINVAL);
    CHECK_FAILS(xendevicemodel_unmap_pcidev_from_ioreq_server(h, DOM, id, 0, 0, 0xff, 0), EINVAL);
    CHECK_FAILS(xendevicemodel_unmap_pcidev_from_ioreq_server(h, DOM, id, 0, 0, 0, 0xff), EINVAL);

    /* map_mem_type: only HVMMEM_ioreq_server, only the WRITE flag. */
    CHECK_FAILS(xendevicemodel_map_mem_type_to_ioreq_server(h, DOM, id, HVMMEM_ram_rw, 0), EINVAL);
    CHECK_FAILS(xendevicemodel_map_mem_type_to_ioreq_server(h, DOM, id, HVMMEM_ioreq_server,
                                                            XEN_DMOP_IOREQ_MEM_ACCESS_READ), EINVAL);
    CHECK(fp_count() == before, "validation errors sent %lu requests", fp_count() - before);
    CHECK_OK(xendevicemodel_map_mem_type_to_ioreq_server(h, DOM, id, HVMMEM_ioreq_server,
                                                         XEN_DMOP_IOREQ_MEM_ACCESS_WRITE));
    w = mk(XEN_DMOP_map_mem_type_to_ioreq_server);
    w.u.map_mem_type_to_ioreq_server.id = id;
    w.u.map_mem_type_to_ioreq_server.type = HVMMEM_ioreq_server;
    w.u.map_mem_type_to_ioreq_server.flags = XEN_DMOP_IOREQ_MEM_ACCESS_WRITE;
    check_req("map_mem_type", kind, DOM, 1, &w);
    CHECK_OK(xendevicemodel_map_mem_type_to_ioreq_server(h, DOM, id, HVMMEM_ioreq_server, 0));

    /* set_ioreq_server_state: !!enabled. */
    CHECK_OK(xendevicemodel_set_ioreq_server_state(h, DOM, id, 42));
    w = mk(XEN_DMOP_set_ioreq_server_state);
    w.u.set_ioreq_server_state.id = id;
    w.u.set_ioreq_server_state.enabled = 1;
    check_req("set_state", kind, DOM, 1, &w);
    CHECK_OK(xendevicemodel_set_ioreq_server_state(h, DOM, id, 0));
    w.u.set_ioreq_server_state.enabled = 0;
    check_req("set_state off", kind, DOM, 1, &w);

    /* Interrupts: levels are truncated to 8 bits, not normalised. */
    CHECK_OK(xendevicemodel_set_pci_intx_level(h, DOM, 0x1, 0x2, 0x3, 0x3, 0x100));
    w = mk(XEN_DMOP_set_pci_intx_level);
    w.u.set_pci_intx_level.domain = 1;
    w.u.set_pci_intx_level.bus = 2;
    w.u.set_pci_intx_level.device = 3;
    w.u.set_pci_intx_level.intx = 3;
    w.u.set_pci_intx_level.level = 0;
    check_req("intx", kind, DOM, 1, &w);
    CHECK_OK(xendevicemodel_set_isa_irq_level(h, DOM, 4, 0x101));
    w = mk(XEN_DMOP_set_isa_irq_level);
    w.u.set_isa_irq_level.isa_irq = 4;
    w.u.set_isa_irq_level.level = 1;
    check_req("isa irq", kind, DOM, 1, &w);
    CHECK_OK(xendevicemodel_set_irq_level(h, DOM, 0x12345, 1));
    w = mk(XEN_DMOP_set_irq_level);
    w.u.set_irq_level.irq = 0x12345;
    w.u.set_irq_level.level = 1;
    check_req("irq", kind, DOM, 1, &w);
    CHECK_OK(xendevicemodel_set_pci_link_route(h, DOM, 2, 11));
    w = mk(XEN_DMOP_set_pci_link_route);
    w.u.set_pci_link_route.link = 2;
    w.u.set_pci_link_route.isa_irq = 11;
    check_req("link route", kind, DOM, 1, &w);
    CHECK_OK(xendevicemodel_inject_msi(h, DOM, 0xfee01000, 0x4041));
    w = mk(XEN_DMOP_inject_msi);
    w.u.inject_msi.addr = 0xfee01000;
    w.u.inject_msi.data = 0x4041;
    check_req("msi", kind, DOM, 1, &w);

    /* track_dirty_vram: bitmap of ceil(nr/8) bytes, filled by the hypervisor. */
    unsigned long bitmap[4];
    memset(bitmap, 0, sizeof(bitmap));
    CHECK_OK(xendevicemodel_track_dirty_vram(h, DOM, 0xa0, 9, bitmap));
    w = mk(XEN_DMOP_track_dirty_vram);
    w.u.track_dirty_vram.first_pfn = 0xa0;
    w.u.track_dirty_vram.nr = 9;
    check_req("dirty vram", kind, DOM, 2, &w);
    CHECK(last()->size[1] == 2, "dirty vram: bitmap buffer %zu bytes", last()->size[1]);
    CHECK(((unsigned char *)bitmap)[0] == 0xa5 && ((unsigned char *)bitmap)[1] == 0xa5 &&
          ((unsigned char *)bitmap)[2] == 0, "dirty vram: bitmap not filled as the hypervisor wrote it");
    /* nr 0 with a NULL bitmap: a zero-sized buffer at NULL, which Xen answers
     * EFAULT; through libxencall it becomes an empty hypercall buffer (as with
     * Xen's library), which is fine. */
    if (kind == FP_DM_OP)
        CHECK_FAILS(xendevicemodel_track_dirty_vram(h, DOM, 0xa0, 0, NULL), EFAULT);
    else
        CHECK_OK(xendevicemodel_track_dirty_vram(h, DOM, 0xa0, 0, NULL));
    /* nr near 2^32: the size is computed without overflow (512 MiB), so privcmd says E2BIG. */
    if (kind == FP_DM_OP)
        CHECK_FAILS(xendevicemodel_track_dirty_vram(h, DOM, 0, 0xffffffffu, bitmap), E2BIG);

    /* modified_memory is a one-extent bulk call. */
    CHECK_OK(xendevicemodel_modified_memory(h, DOM, 0x1000, 16));
    w = mk(XEN_DMOP_modified_memory);
    w.u.modified_memory.nr_extents = 1;
    check_req("modified", kind, DOM, 2, &w);
    struct xen_dm_op_modified_memory_extent ext = { .nr = 16, .first_pfn = 0x1000 };
    CHECK(last()->size[1] == sizeof(ext) && memcmp(last()->data[1], &ext, sizeof(ext)) == 0,
          "modified: extent bytes");
    struct xen_dm_op_modified_memory_extent exts[3] = {
        { .nr = 1, .first_pfn = 10 }, { .nr = 2, .first_pfn = 20 }, { .nr = 3, .first_pfn = 30 } };
    CHECK_OK(xendevicemodel_modified_memory_bulk(h, DOM, exts, 3));
    w.u.modified_memory.nr_extents = 3;
    check_req("modified bulk", kind, DOM, 2, &w);
    CHECK(last()->size[1] == sizeof(exts) && memcmp(last()->data[1], exts, sizeof(exts)) == 0,
          "modified bulk: extent bytes");

    /* set_mem_type: the enum is sent as 16 bits. */
    CHECK_OK(xendevicemodel_set_mem_type(h, DOM, (hvmmem_type_t)0x10001, 0x2000, 8));
    w = mk(XEN_DMOP_set_mem_type);
    w.u.set_mem_type.mem_type = 1;
    w.u.set_mem_type.first_pfn = 0x2000;
    w.u.set_mem_type.nr = 8;
    check_req("mem type", kind, DOM, 1, &w);

    CHECK_OK(xendevicemodel_inject_event(h, DOM, -1, 14, 3, 0xffffffffu, 2, 0xdeadbeefcafeULL));
    w = mk(XEN_DMOP_inject_event);
    w.u.inject_event.vcpuid = 0xffffffffu;
    w.u.inject_event.vector = 14;
    w.u.inject_event.type = 3;
    w.u.inject_event.error_code = 0xffffffffu;
    w.u.inject_event.insn_len = 2;
    w.u.inject_event.cr2 = 0xdeadbeefcafeULL;
    check_req("event", kind, DOM, 1, &w);

    CHECK_OK(xendevicemodel_shutdown(h, DOM, 2));
    w = mk(XEN_DMOP_remote_shutdown);
    w.u.remote_shutdown.reason = 2;
    check_req("shutdown", kind, DOM, 1, &w);

    CHECK_OK(xendevicemodel_relocate_memory(h, DOM, 4, 0x100, 0x200));
    w = mk(XEN_DMOP_relocate_memory);
    w.u.relocate_memory.size = 4;
    w.u.relocate_memory.src_gfn = 0x100;
    w.u.relocate_memory.dst_gfn = 0x200;
    check_req("relocate", kind, DOM, 1, &w);

    CHECK_OK(xendevicemodel_pin_memory_cacheattr(h, DOM, 0x10, 0x20, XEN_DMOP_MEM_CACHEATTR_WB));
    w = mk(XEN_DMOP_pin_memory_cacheattr);
    w.u.pin_memory_cacheattr.start = 0x10;
    w.u.pin_memory_cacheattr.end = 0x20;
    w.u.pin_memory_cacheattr.type = XEN_DMOP_MEM_CACHEATTR_WB;
    check_req("cacheattr", kind, DOM, 1, &w);

    unsigned int vcpus = 0;
    CHECK_OK(xendevicemodel_nr_vcpus(h, DOM, &vcpus));
    w = mk(XEN_DMOP_nr_vcpus);
    check_req("nr_vcpus", kind, DOM, 1, &w);
    CHECK(vcpus == 4, "nr_vcpus: %u", vcpus);

    CHECK_OK(xendevicemodel_destroy_ioreq_server(h, DOM, id));
    w = mk(XEN_DMOP_destroy_ioreq_server);
    w.u.destroy_ioreq_server.id = id;
    check_req("destroy", kind, DOM, 1, &w);
}

/* Errors from the kernel or hypervisor reach the caller unchanged. */
static void test_errno_passthrough(xendevicemodel_handle *h)
{
    static const int errs[] = { EPERM, ESRCH, EINVAL, E2BIG, ENODATA, EFAULT, EOPNOTSUPP, EIO };
    for (unsigned i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
        fp_fail_next(XEN_DMOP_set_isa_irq_level, errs[i], 1);
        CHECK_FAILS(xendevicemodel_set_isa_irq_level(h, DOM, 1, 1), errs[i]);
        CHECK_OK(xendevicemodel_set_isa_irq_level(h, DOM, 1, 0));
    }
    /* Out-values stay untouched on failure. */
    ioservid_t id = 0xbeef;
    fp_fail_next(XEN_DMOP_create_ioreq_server, ENOSPC, 1);
    CHECK_FAILS(xendevicemodel_create_ioreq_server(h, DOM, 0, &id), ENOSPC);
    CHECK(id == 0xbeef, "create: id written on failure (%#x)", id);
    unsigned int vcpus = 77;
    fp_fail_next(XEN_DMOP_nr_vcpus, ESRCH, 1);
    CHECK_FAILS(xendevicemodel_nr_vcpus(h, DOM, &vcpus), ESRCH);
    CHECK(vcpus == 77, "nr_vcpus written on failure");
    /* The fake hypervisor's own rules: unknown domain, our own domain. */
    CHECK_FAILS(xendevicemodel_inject_msi(h, 0x7ff0, 0xfee00000, 1), ESRCH);
    CHECK_FAILS(xendevicemodel_inject_msi(h, 0, 0xfee00000, 1), EPERM);
    CHECK_FAILS(xendevicemodel_set_pci_intx_level(h, DOM, 0, 0, 3, 0, 2), EINVAL);
}

/* NULL out-pointers that Xen's library dereferences: EINVAL, nothing sent, logged. */
static void test_null_outputs(xendevicemodel_handle *h, struct cap_logger *cap)
{
    unsigned long before = fp_count();
    int logged = cap->count;
    CHECK_FAILS(xendevicemodel_create_ioreq_server(h, DOM, 0, NULL), EINVAL);
    CHECK(cap->count == logged + 1 && cap->level == XTL_ERROR && cap->errnoval == EINVAL &&
          strcmp(cap->context, "xendevicemodel") == 0 && strstr(cap->last, "create_ioreq_server"),
          "create(NULL id) log: count %d level %d errno %d context '%s' msg '%s'",
          cap->count - logged, cap->level, cap->errnoval, cap->context, cap->last);
    CHECK_FAILS(xendevicemodel_nr_vcpus(h, DOM, NULL), EINVAL);
    CHECK(strstr(cap->last, "nr_vcpus") != NULL, "nr_vcpus(NULL) log: '%s'", cap->last);
    CHECK(fp_count() == before, "NULL out-pointer calls sent %lu requests", fp_count() - before);
}

/* modified_memory_bulk beyond one privcmd buffer (256 extents) is chunked. */
static void test_chunking(xendevicemodel_handle *h)
{
    enum { N = 600 };
    static struct xen_dm_op_modified_memory_extent ext[N];
    for (unsigned i = 0; i < N; i++) {
        ext[i].nr = i + 1;
        ext[i].first_pfn = 0x100000 + 0x100 * i;
    }
    unsigned long before = fp_count();
    CHECK_OK(xendevicemodel_modified_memory_bulk(h, DOM, ext, 256));
    CHECK(fp_count() == before + 1, "256 extents: %lu requests", fp_count() - before);
    before = fp_count();
    CHECK_OK(xendevicemodel_modified_memory_bulk(h, DOM, ext, N));
    CHECK(fp_count() == before + 3, "600 extents: %lu requests, want 3", fp_count() - before);
    static const unsigned want[3] = { 256, 256, 88 };
    unsigned off = 0;
    for (unsigned c = 0; c < 3 && fp_count() == before + 3; c++) {
        const struct fp_record *r = fp_get(before + c);
        struct xen_dm_op w = mk(XEN_DMOP_modified_memory);
        w.u.modified_memory.nr_extents = want[c];
        CHECK(r && memcmp(r->data[0], &w, sizeof(w)) == 0, "chunk %u header", c);
        CHECK(r && r->size[1] == want[c] * sizeof(ext[0]) &&
              memcmp(r->data[1], &ext[off], want[c] * sizeof(ext[0])) == 0, "chunk %u extents", c);
        off += want[c];
    }
    /* A failing chunk's error is returned and nothing after it is sent. */
    before = fp_count();
    fp_fail_next(XEN_DMOP_modified_memory, ESRCH, 1);
    CHECK_FAILS(xendevicemodel_modified_memory_bulk(h, DOM, ext, N), ESRCH);
    CHECK(fp_count() == before + 1, "after a failed chunk %lu requests were sent", fp_count() - before);
    /* A kernel with a smaller buffer limit: its E2BIG is reported. */
    fp_config("buf_max", 2048);
    CHECK_FAILS(xendevicemodel_modified_memory_bulk(h, DOM, ext, N), E2BIG);
    fp_config("buf_max", 4096);
    /* nr 0: as in Xen, one request with an empty extent buffer. */
    before = fp_count();
    CHECK_OK(xendevicemodel_modified_memory_bulk(h, DOM, ext, 0));
    CHECK(fp_count() == before + 1 && last()->size[1] == 0, "nr 0: one request with an empty buffer");
}

static void test_restrict(void)
{
    xendevicemodel_handle *h = xendevicemodel_open(NULL, 0);
    CHECK(h != NULL, "open: %s", strerror(errno));
    if (!h)
        return;
    CHECK_OK(xendevicemodel_restrict(h, DOM));
    CHECK(last()->kind == FP_RESTRICT && last()->domid == DOM, "restrict request recorded");
    CHECK_OK(xendevicemodel_set_isa_irq_level(h, DOM, 1, 1));
    CHECK_FAILS(xendevicemodel_set_isa_irq_level(h, DOM + 1, 1, 1), EPERM);
    CHECK_OK(xendevicemodel_restrict(h, DOM));
    CHECK_FAILS(xendevicemodel_restrict(h, DOM + 1), EINVAL);
    CHECK_OK(xendevicemodel_close(h));
}

/* xentoolcore_restrict_all() reaches our descriptor through libxentoolcore. */
static void test_restrict_all(void)
{
    xendevicemodel_handle *h = xendevicemodel_open(NULL, 0);
    CHECK(h != NULL, "open");
    if (!h)
        return;
    unsigned long before = fp_count();
    CHECK_OK(xentoolcore_restrict_all(DOM));
    int restricted = 0;
    for (unsigned long i = before; i < fp_count(); i++)
        if (fp_get(i) && fp_get(i)->kind == FP_RESTRICT && fp_get(i)->domid == DOM)
            restricted++;
    CHECK(restricted == 1, "restrict_all sent %d RESTRICT requests", restricted);
    CHECK_FAILS(xendevicemodel_nr_vcpus(h, DOM + 1, &(unsigned){0}), EPERM);
    CHECK(xentoolcore_restrict_all(DOM) == 0, "restrict_all again with the same domid failed");
    CHECK(xentoolcore_restrict_all(DOM + 1) != 0, "restrict_all with another domid succeeded");
    CHECK_OK(xendevicemodel_nr_vcpus(h, DOM, &(unsigned){0}));
    CHECK_OK(xendevicemodel_close(h));
}

/* The probe answered EPERM: a restricted privcmd (stub domain); keep privcmd. */
static void test_eperm_probe(void)
{
    fp_config("probe_errno", EPERM);
    xendevicemodel_handle *h = xendevicemodel_open(NULL, 0);
    fp_config("probe_errno", 0);
    CHECK(h != NULL, "open with EPERM probe: %s", strerror(errno));
    if (!h)
        return;
    CHECK_OK(xendevicemodel_set_isa_irq_level(h, DOM, 3, 1));
    CHECK(last()->kind == FP_DM_OP, "EPERM probe: request went by %d, want DM_OP", last()->kind);
    CHECK_OK(xendevicemodel_close(h));
}

/* No DM_OP ioctl (ENOTTY) or no /dev/xen/privcmd: libxencall's hypercall. */
static void test_fallback(const char *why)
{
    xendevicemodel_handle *h = xendevicemodel_open(NULL, 0);
    CHECK(h != NULL, "open (%s): %s", why, strerror(errno));
    if (!h)
        return;
    test_encodings(h, FP_HYPERCALL);
    CHECK_FAILS(xendevicemodel_restrict(h, DOM), EOPNOTSUPP);
    CHECK_OK(xendevicemodel_close(h));
}

/* With a NULL logger, messages go to stderr in Xen's format. */
static void test_null_logger(void)
{
    char path[] = "/tmp/xdm-stderr-XXXXXX";
    int tmp = mkstemp(path);
    int saved = dup(2);
    fflush(stderr);
    dup2(tmp, 2);
    xendevicemodel_handle *h = xendevicemodel_open(NULL, 0);
    int rc = xendevicemodel_create_ioreq_server(h, DOM, 0, NULL);
    int e = errno;
    xendevicemodel_close(h);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char buf[1024] = "";
    ssize_t n = pread(tmp, buf, sizeof(buf) - 1, 0);
    close(tmp);
    unlink(path);
    buf[n > 0 ? n : 0] = 0;
    CHECK(rc == -1 && e == EINVAL, "create(NULL id) with NULL logger: rc %d errno %d", rc, e);
    CHECK(strstr(buf, "xendevicemodel: error: create_ioreq_server: id must not be NULL: Invalid argument"),
          "stderr was '%s'", buf);
}

int main(void)
{
    struct cap_logger cap;
    cap_init(&cap);

    fp_reset();
    xendevicemodel_handle *h = xendevicemodel_open(&cap.base, 0);
    CHECK(h != NULL, "open: %s", strerror(errno));
    if (!h)
        return t_done("ops");
    CHECK(fp_count() >= 1, "open sent no probe");
    const struct fp_record *p = last();
    CHECK(p && p->kind == FP_PROBE && p->domid == 0x7ff4 && p->nr_bufs == 0,
          "probe: kind %d dom %#x bufs %u", p ? (int)p->kind : -1, p ? p->domid : 0, p ? p->nr_bufs : 0);
    CHECK(fp_is_fake_fd(p->fd) && fcntl(p->fd, F_GETFD) == FD_CLOEXEC, "privcmd fd is close-on-exec");

    test_encodings(h, FP_DM_OP);
    test_errno_passthrough(h);
    test_null_outputs(h, &cap);
    test_chunking(h);
    CHECK(cap.errors == 2, "the session logged %d errors (want only the 2 NULL-pointer ones)", cap.errors);
    CHECK(cap.count > cap.errors, "failed dm_ops were not logged at debug level");
    CHECK_OK(xendevicemodel_close(h));

    test_restrict();
    test_restrict_all();
    test_eperm_probe();

    fp_config("probe_errno", ENOTTY);
    test_fallback("ENOTTY probe");
    fp_config("probe_errno", 0);

    fp_config("nodev", 1);
    fp_config("proc", 1);
    test_fallback("no /dev/xen/privcmd, /proc/xen/privcmd");
    fp_config("proc", 0);
    /* Neither device: open fails, as in Xen, with the error logged. */
    cap_init(&cap);
    errno = 0;
    h = xendevicemodel_open(&cap.base, 0);
    CHECK(h == NULL && errno == ENOENT, "open without privcmd: %p errno %d", (void *)h, errno);
    CHECK(cap.count >= 1, "open without privcmd logged nothing");
    fp_config("nodev", 0);

    test_null_logger();
    return t_done("ops");
}
