/*
 * Differential driver: compiled once against Xen's own header, run once with
 * Xen's library and once with ours (LD_LIBRARY_PATH picks), both under the
 * privcmd test double. For every call it prints one canonical line: the call
 * and its arguments, rc, errno, out-values, and every request that reached
 * privcmd (kind, domid, buffer sizes, NULL-ness and bytes). run.sh diffs them.
 *
 *   driver edges             a fixed tour of edge arguments, all 24 operations
 *   driver random SEED N     N calls with random arguments (seeded)
 *   driver deliberate        the cases where docs/differences.md documents a difference
 *   driver lifecycle [SPI]   a device model's life on domain 5: an IOREQ server
 *                            created, MMIO mapped, enabled, an interrupt line
 *                            (SPI) raised and lowered, then torn down
 */
#define _GNU_SOURCE /* strerrorname_np */
#include </usr/include/xendevicemodel.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fakeprivcmd.h"

static xendevicemodel_handle *h;
static unsigned long seen;

static void hex(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
}

/* Ends the line of the call just made: result, out-values, and requests. */
static void result(int rc, int err, const char *outs, ...)
{
    printf(" = %d", rc);
    if (rc)
        printf(" errno %s", strerrorname_np(err) ? strerrorname_np(err) : "?");
    if (outs && *outs) {
        va_list ap;
        va_start(ap, outs);
        printf(" out ");
        vprintf(outs, ap);
        va_end(ap);
    }
    for (; seen < fp_count(); seen++) {
        const struct fp_record *r = fp_get(seen);
        if (!r)
            continue;
        printf(" | req kind %d dom %u bufs %u ->%d/%d", r->kind, r->domid, r->nr_bufs, r->rc, r->err);
        for (unsigned i = 0; i < r->nr_bufs && i < FP_MAX_BUFS; i++) {
            printf(" [%zu%s", r->size[i], r->is_null[i] ? " NULL" : "");
            if (i < 2 && !r->is_null[i]) {
                putchar(' ');
                hex(r->data[i], r->size[i] < 64 ? r->size[i] : 64);
            }
            putchar(']');
        }
    }
    putchar('\n');
}

/* Runs CALL with errno cleared, then prints its line. */
#define CALL(outs, call, ...)                      \
    do {                                           \
        errno = 0;                                 \
        int rc_ = (call);                          \
        int e_ = errno;                            \
        result(rc_, e_, outs, ##__VA_ARGS__);      \
    } while (0)

static uint64_t bitmap_sum(const unsigned char *b, size_t n)
{
    uint64_t s = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        s = (s ^ b[i]) * 1099511628211ULL;
    return s;
}

static unsigned char bitmap[8192 + 64];
/* Through libxencall, a NULL buffer with a size crashes Xen's library (it
 * copies from NULL); ours answers EFAULT. Such calls are compared only on the
 * privcmd path and checked in `deliberate`. */
static int via_libxencall;
static struct xen_dm_op_modified_memory_extent ext[256];

/* ---- one printer per operation (shared by the edge tour and the random driver) ---- */
static void create(domid_t d, int bufioreq)
{
    ioservid_t id = 0xaaaa;
    printf("create_ioreq_server(%u, %d)", d, bufioreq);
    CALL("id %u", xendevicemodel_create_ioreq_server(h, d, bufioreq, &id), id);
}

static void get_info(domid_t d, ioservid_t id, int mask)
{
    /* above 32 bits: a library writing only an unsigned long (32-bit Arm) shows */
    xen_pfn_t g = 0xaaaa0000aaaaULL, bg = 0xbbbb0000bbbbULL;
    evtchn_port_t p = 0xcccc;
    printf("get_ioreq_server_info(%u, %u, %s%s%s)", d, id, mask & 1 ? "gfn" : "-", mask & 2 ? ",bufgfn" : ",-",
           mask & 4 ? ",port" : ",-");
    CALL("%#llx %#llx %#x", xendevicemodel_get_ioreq_server_info(h, d, id, mask & 1 ? &g : NULL, mask & 2 ? &bg : NULL,
                                                                   mask & 4 ? &p : NULL),
         (unsigned long long)g, (unsigned long long)bg, p);
}

static void io_range(int map, domid_t d, ioservid_t id, int is_mmio, uint64_t s, uint64_t e)
{
    printf("%s_io_range(%u, %u, %d, %#llx, %#llx)", map ? "map" : "unmap", d, id, is_mmio, (unsigned long long)s,
           (unsigned long long)e);
    if (map)
        CALL("", xendevicemodel_map_io_range_to_ioreq_server(h, d, id, is_mmio, s, e));
    else
        CALL("", xendevicemodel_unmap_io_range_from_ioreq_server(h, d, id, is_mmio, s, e));
}

static void pcidev(int map, domid_t d, ioservid_t id, uint16_t seg, uint8_t bus, uint8_t dev, uint8_t fn)
{
    printf("%s_pcidev(%u, %u, %x:%x:%x.%x)", map ? "map" : "unmap", d, id, seg, bus, dev, fn);
    if (map)
        CALL("", xendevicemodel_map_pcidev_to_ioreq_server(h, d, id, seg, bus, dev, fn));
    else
        CALL("", xendevicemodel_unmap_pcidev_from_ioreq_server(h, d, id, seg, bus, dev, fn));
}

static void mem_type_map(domid_t d, ioservid_t id, uint16_t type, uint32_t flags)
{
    printf("map_mem_type_to_ioreq_server(%u, %u, %u, %#x)", d, id, type, flags);
    CALL("", xendevicemodel_map_mem_type_to_ioreq_server(h, d, id, type, flags));
}

static void dirty(domid_t d, uint64_t pfn, uint32_t nr, int null)
{
    if (null && nr && via_libxencall)
        return;
    memset(bitmap, 0x11, sizeof(bitmap));
    printf("track_dirty_vram(%u, %#llx, %u, %s)", d, (unsigned long long)pfn, nr, null ? "NULL" : "bitmap");
    CALL("%016llx", xendevicemodel_track_dirty_vram(h, d, pfn, nr, null ? NULL : (unsigned long *)bitmap),
         (unsigned long long)bitmap_sum(bitmap, sizeof(bitmap)));
}

static void bulk(domid_t d, uint32_t nr, int null)
{
    if (null && nr && via_libxencall)
        return;
    printf("modified_memory_bulk(%u, %u, %s)", d, nr, null ? "NULL" : "extents");
    CALL("", xendevicemodel_modified_memory_bulk(h, d, null ? NULL : ext, nr));
}

static void nr_vcpus(domid_t d)
{
    unsigned v = 0xdddd;
    printf("nr_vcpus(%u)", d);
    CALL("%u", xendevicemodel_nr_vcpus(h, d, &v), v);
}

#define SIMPLE(fmt, call, ...)         \
    do {                               \
        printf(fmt, __VA_ARGS__);      \
        CALL("", call);                \
    } while (0)

static const int errs[] = { EPERM, ESRCH, EINVAL, E2BIG, ENODATA, EFAULT, ENOSPC, EOPNOTSUPP, EBUSY, EIO };
#define NERRS (sizeof(errs) / sizeof(errs[0]))

static void edges(void)
{
    static const domid_t doms[] = { 5, 0, 0x7ff0, 0x7ff4 };
    for (unsigned i = 0; i < 256; i++) {
        ext[i].nr = i * 3 + 1;
        ext[i].first_pfn = 0x100000 + ((uint64_t)i << 12);
    }
    for (unsigned di = 0; di < sizeof(doms) / sizeof(doms[0]); di++) {
        domid_t d = doms[di];
        create(d, 0);
        create(d, 1);
        create(d, 0x1ff);
        create(d, -1);
        for (int mask = 0; mask < 8; mask++)
            get_info(d, 1, mask);
        io_range(1, d, 1, 0, 0x3f8, 0x3ff);
        io_range(1, d, 1, 1, 0xfebf0000, 0xfebfffff);
        io_range(1, d, 1, 42, 0, UINT64_MAX);
        io_range(0, d, 1, -1, 0x10, 0x1);
        io_range(0, d, 0xffff, 0, 0, 0);
        pcidev(1, d, 1, 0, 0, 3, 0);
        pcidev(1, d, 1, 0xffff, 0xff, 0x1f, 7);
        pcidev(1, d, 1, 0, 0, 0x20, 0);
        pcidev(1, d, 1, 0, 0, 0, 8);
        pcidev(0, d, 1, 1, 2, 0xff, 0xff);
        pcidev(0, d, 2, 0x10, 0x20, 0x1e, 6);
        mem_type_map(d, 1, HVMMEM_ioreq_server, 0);
        mem_type_map(d, 1, HVMMEM_ioreq_server, XEN_DMOP_IOREQ_MEM_ACCESS_WRITE);
        mem_type_map(d, 1, HVMMEM_ioreq_server, XEN_DMOP_IOREQ_MEM_ACCESS_READ);
        mem_type_map(d, 1, HVMMEM_ioreq_server, 0xffffffff);
        mem_type_map(d, 1, HVMMEM_ram_rw, 0);
        mem_type_map(d, 1, 0xffff, XEN_DMOP_IOREQ_MEM_ACCESS_WRITE);
        SIMPLE("destroy_ioreq_server(%u, %u)", xendevicemodel_destroy_ioreq_server(h, d, 1), d, 1);
        for (int en = -1; en <= 42; en += 43)
            SIMPLE("set_ioreq_server_state(%u, 1, %d)", xendevicemodel_set_ioreq_server_state(h, d, 1, en), d, en);
        SIMPLE("set_ioreq_server_state(%u, 1, %d)", xendevicemodel_set_ioreq_server_state(h, d, 1, 0), d, 0);
        static const unsigned levels[] = { 0, 1, 2, 0x100, 0x101, 0xffffffff };
        for (unsigned li = 0; li < sizeof(levels) / sizeof(levels[0]); li++) {
            unsigned l = levels[li];
            SIMPLE("set_pci_intx_level(%u, 1, 2, 3, 3, %#x)", xendevicemodel_set_pci_intx_level(h, d, 1, 2, 3, 3, l), d, l);
            SIMPLE("set_isa_irq_level(%u, 15, %#x)", xendevicemodel_set_isa_irq_level(h, d, 15, l), d, l);
            SIMPLE("set_irq_level(%u, 0xffffffff, %#x)", xendevicemodel_set_irq_level(h, d, 0xffffffff, l), d, l);
        }
        SIMPLE("set_pci_link_route(%u, 3, 15)", xendevicemodel_set_pci_link_route(h, d, 3, 15), d);
        SIMPLE("set_pci_link_route(%u, 255, 255)", xendevicemodel_set_pci_link_route(h, d, 255, 255), d);
        SIMPLE("inject_msi(%u, 0xfee00000, 0)", xendevicemodel_inject_msi(h, d, 0xfee00000, 0), d);
        SIMPLE("inject_msi(%u, max, max)", xendevicemodel_inject_msi(h, d, UINT64_MAX, UINT32_MAX), d);
        static const uint32_t nrs[] = { 0, 1, 7, 8, 9, 64, 32767, 32768, 32769, 65536 };
        for (unsigned ni = 0; ni < sizeof(nrs) / sizeof(nrs[0]); ni++)
            dirty(d, 0xa0, nrs[ni], 0);
        dirty(d, 0xa0, 0, 1);
        dirty(d, 0xa0, 8, 1);
        SIMPLE("modified_memory(%u, 0x1000, 16)", xendevicemodel_modified_memory(h, d, 0x1000, 16), d);
        SIMPLE("modified_memory(%u, max, 0)", xendevicemodel_modified_memory(h, d, UINT64_MAX, 0), d);
        SIMPLE("modified_memory(%u, 0, max)", xendevicemodel_modified_memory(h, d, 0, UINT32_MAX), d);
        static const uint32_t bnrs[] = { 0, 1, 2, 255, 256 };
        for (unsigned ni = 0; ni < sizeof(bnrs) / sizeof(bnrs[0]); ni++)
            bulk(d, bnrs[ni], 0);
        bulk(d, 0, 1);
        bulk(d, 3, 1);
        static const unsigned types[] = { HVMMEM_ram_rw, HVMMEM_ram_ro, HVMMEM_mmio_dm, HVMMEM_ioreq_server, 0x10001, 0xffffffff };
        for (unsigned ti = 0; ti < sizeof(types) / sizeof(types[0]); ti++)
            SIMPLE("set_mem_type(%u, %#x, 0x2000, 8)",
                   xendevicemodel_set_mem_type(h, d, (hvmmem_type_t)types[ti], 0x2000, 8), d, types[ti]);
        SIMPLE("inject_event(%u, -1, 14, 3, ~0, 2, x)",
               xendevicemodel_inject_event(h, d, -1, 14, 3, 0xffffffff, 2, 0xdeadbeefcafeULL), d);
        SIMPLE("inject_event(%u, 0, 0, 0, 0, 0, 0)", xendevicemodel_inject_event(h, d, 0, 0, 0, 0, 0, 0), d);
        SIMPLE("inject_event(%u, INT_MAX, 255, 255, 1, 255, max)",
               xendevicemodel_inject_event(h, d, 0x7fffffff, 255, 255, 1, 255, UINT64_MAX), d);
        SIMPLE("shutdown(%u, 0)", xendevicemodel_shutdown(h, d, 0), d);
        SIMPLE("shutdown(%u, max)", xendevicemodel_shutdown(h, d, 0xffffffff), d);
        SIMPLE("relocate_memory(%u, 4, 0x100, 0x200)", xendevicemodel_relocate_memory(h, d, 4, 0x100, 0x200), d);
        SIMPLE("relocate_memory(%u, max, max, 0)", xendevicemodel_relocate_memory(h, d, UINT32_MAX, UINT64_MAX, 0), d);
        SIMPLE("pin_memory_cacheattr(%u, 0x10, 0x20, WB)",
               xendevicemodel_pin_memory_cacheattr(h, d, 0x10, 0x20, XEN_DMOP_MEM_CACHEATTR_WB), d);
        SIMPLE("pin_memory_cacheattr(%u, 0, max, DELETE)",
               xendevicemodel_pin_memory_cacheattr(h, d, 0, UINT64_MAX, XEN_DMOP_DELETE_MEM_CACHEATTR), d);
        nr_vcpus(d);
    }
    /* Every errno the double can inject, on one- and two-buffer operations. */
    for (unsigned i = 0; i < NERRS; i++) {
        fp_fail_next(-1, errs[i], 1);
        create(5, 1);
        fp_fail_next(-1, errs[i], 1);
        get_info(5, 1, 7);
        fp_fail_next(-1, errs[i], 1);
        dirty(5, 0, 16, 0);
        fp_fail_next(-1, errs[i], 1);
        bulk(5, 2, 0);
        fp_fail_next(-1, errs[i], 1);
        nr_vcpus(5);
    }
    /* A kernel with a smaller buffer limit. */
    fp_config("buf_max", 256);
    bulk(5, 16, 0);
    bulk(5, 17, 0);
    dirty(5, 0, 2048, 0);
    dirty(5, 0, 2049, 0);
    fp_config("buf_max", 4096);
    /* restrict: the rest of the run is restricted to domain 5. */
    SIMPLE("restrict(%u)", xendevicemodel_restrict(h, 5), 5);
    SIMPLE("restrict(%u)", xendevicemodel_restrict(h, 5), 5);
    SIMPLE("restrict(%u)", xendevicemodel_restrict(h, 6), 6);
    nr_vcpus(5);
    nr_vcpus(6);
    SIMPLE("inject_msi(%u, 0xfee00000, 1)", xendevicemodel_inject_msi(h, 7, 0xfee00000, 1), 7);
}

static unsigned rnd(unsigned *s) { return rand_r(s); }
static uint64_t rnd64(unsigned *s) { return ((uint64_t)rnd(s) << 33) ^ ((uint64_t)rnd(s) << 11) ^ rnd(s); }

/* Interesting values more often than uniform ones. */
static uint32_t rnd32(unsigned *s)
{
    static const uint32_t special[] = { 0, 1, 2, 7, 8, 9, 0xff, 0x100, 0x101, 0xffff, 0x10000, 0x7fffffff, 0xffffffff };
    return rnd(s) % 3 ? special[rnd(s) % (sizeof(special) / sizeof(special[0]))] : (uint32_t)rnd64(s);
}

static void random_calls(unsigned seed, long n)
{
    static const domid_t doms[] = { 1, 5, 5, 5, 7, 0, 0x7ff0, 0x7ff4, 0x7fff };
    unsigned s = seed;
    for (unsigned i = 0; i < 256; i++) {
        ext[i].nr = rnd(&s);
        ext[i].pad = rnd(&s) % 8 == 0 ? rnd(&s) : 0;
        ext[i].first_pfn = rnd64(&s);
    }
    for (long i = 0; i < n; i++) {
        domid_t d = doms[rnd(&s) % (sizeof(doms) / sizeof(doms[0]))];
        ioservid_t id = rnd(&s) % 4;
        if (rnd(&s) % 10 == 0)
            fp_fail_next(rnd(&s) % 3 ? -1 : (int)(rnd(&s) % 22), errs[rnd(&s) % NERRS], 1 + rnd(&s) % 2);
        switch (rnd(&s) % 24) {
        case 0: create(d, (int)rnd32(&s)); break;
        case 1: get_info(d, id, rnd(&s) % 8); break;
        case 2: io_range(1, d, id, (int)rnd32(&s), rnd64(&s), rnd64(&s)); break;
        case 3: io_range(0, d, id, (int)rnd32(&s), rnd64(&s), rnd64(&s)); break;
        case 4: mem_type_map(d, id, rnd(&s) % 3 ? HVMMEM_ioreq_server : rnd32(&s), rnd(&s) % 2 ? rnd32(&s) : rnd(&s) % 3); break;
        case 5: pcidev(1, d, id, rnd32(&s), rnd32(&s), rnd(&s) % 40, rnd(&s) % 10); break;
        case 6: pcidev(0, d, id, rnd32(&s), rnd32(&s), rnd(&s) % 40, rnd(&s) % 10); break;
        case 7: SIMPLE("destroy_ioreq_server(%u, %u)", xendevicemodel_destroy_ioreq_server(h, d, id), d, id); break;
        case 8: { int en = (int)rnd32(&s);
            SIMPLE("set_ioreq_server_state(%u, %u, %d)", xendevicemodel_set_ioreq_server_state(h, d, id, en), d, id, en); break; }
        case 9: { uint32_t a = rnd32(&s), b = rnd32(&s), c = rnd32(&s), l = rnd32(&s);
            SIMPLE("set_pci_intx_level(%u, %#x, %#x, %#x, %#x)",
                   xendevicemodel_set_pci_intx_level(h, d, a, b, c, c >> 8, l), d, a, b, c, l); break; }
        case 10: { uint32_t irq = rnd32(&s), l = rnd32(&s);
            SIMPLE("set_isa_irq_level(%u, %#x, %#x)", xendevicemodel_set_isa_irq_level(h, d, irq, l), d, irq, l); break; }
        case 11: { uint32_t irq = rnd32(&s), l = rnd32(&s);
            SIMPLE("set_irq_level(%u, %#x, %#x)", xendevicemodel_set_irq_level(h, d, irq, l), d, irq, l); break; }
        case 12: { uint32_t a = rnd32(&s), b = rnd32(&s);
            SIMPLE("set_pci_link_route(%u, %#x, %#x)", xendevicemodel_set_pci_link_route(h, d, a, b), d, a, b); break; }
        case 13: { uint64_t a = rnd64(&s); uint32_t v = rnd32(&s);
            SIMPLE("inject_msi(%u, %#llx, %#x)", xendevicemodel_inject_msi(h, d, a, v), d, (unsigned long long)a, v); break; }
        case 14: dirty(d, rnd64(&s), rnd(&s) % 3 ? rnd(&s) % 40000 : rnd32(&s) % 65537, rnd(&s) % 8 == 0); break; /* bitmap holds 65536 bits */
        case 15: { uint64_t p = rnd64(&s); uint32_t nr = rnd32(&s);
            SIMPLE("modified_memory(%u, %#llx, %#x)", xendevicemodel_modified_memory(h, d, p, nr), d, (unsigned long long)p, nr); break; }
        case 16: bulk(d, rnd(&s) % 257, rnd(&s) % 16 == 0); break;
        case 17: { uint32_t t = rnd32(&s), nr = rnd32(&s); uint64_t p = rnd64(&s);
            SIMPLE("set_mem_type(%u, %#x, %#llx, %#x)", xendevicemodel_set_mem_type(h, d, (hvmmem_type_t)t, p, nr), d, t,
                   (unsigned long long)p, nr); break; }
        case 18: { uint32_t v = rnd32(&s), vec = rnd32(&s), ty = rnd32(&s), ec = rnd32(&s), il = rnd32(&s); uint64_t x = rnd64(&s);
            SIMPLE("inject_event(%u, %d, %#x, %#x, %#x, %#x, %#llx)",
                   xendevicemodel_inject_event(h, d, (int)v, vec, ty, ec, il, x), d, (int)v, vec, ty, ec, il, (unsigned long long)x); break; }
        case 19: { uint32_t r = rnd32(&s);
            SIMPLE("shutdown(%u, %#x)", xendevicemodel_shutdown(h, d, r), d, r); break; }
        case 20: { uint32_t sz = rnd32(&s); uint64_t a = rnd64(&s), b = rnd64(&s);
            SIMPLE("relocate_memory(%u, %#x, %#llx, %#llx)", xendevicemodel_relocate_memory(h, d, sz, a, b), d, sz,
                   (unsigned long long)a, (unsigned long long)b); break; }
        case 21: { uint64_t a = rnd64(&s), b = rnd64(&s); uint32_t t = rnd32(&s);
            SIMPLE("pin_memory_cacheattr(%u, %#llx, %#llx, %#x)", xendevicemodel_pin_memory_cacheattr(h, d, a, b, t), d,
                   (unsigned long long)a, (unsigned long long)b, t); break; }
        case 22: nr_vcpus(d); break;
        default: fp_config("vcpus", rnd(&s) % 130); nr_vcpus(d); break;
        }
    }
    fp_config("vcpus", 4);
}

/* Cases docs/differences.md lists as deliberate differences that are safe to run on Xen's library too. */
static void deliberate(void)
{
    bulk(5, 256, 0);     /* identical: one request */
    static struct xen_dm_op_modified_memory_extent big[300];
    printf("modified_memory_bulk(5, 300, extents)");
    CALL("", xendevicemodel_modified_memory_bulk(h, 5, big, 300));
    dirty(5, 0, 0xffffffff, 0);
    if (via_libxencall && getenv("XDM_OURS")) { /* Xen's library would crash here */
        via_libxencall = 0;
        dirty(5, 0, 8, 1);
        bulk(5, 3, 1);
    }
}

/* What a device model does over its life (demu, virtio back-ends), with the
 * server id the hypervisor hands out, plus the calls Arm's Xen refuses. */
static void lifecycle(uint32_t spi)
{
    const domid_t d = 5;
    ioservid_t id = 0xaaaa;
    printf("create_ioreq_server(%u, 0)", d);
    CALL("id %u", xendevicemodel_create_ioreq_server(h, d, 0, &id), id);
    get_info(d, id, 4);
    get_info(d, id, 7);
    io_range(1, d, id, 1, 0x0a000000, 0x0a000fff);
    io_range(1, d, id, 1, 0x0a001000, 0x0a001fff);
    io_range(1, d, id, 1, 0x0a000800, 0x0a000fff);
    io_range(1, d, id, 0, 0x3f8, 0x3ff);
    SIMPLE("set_ioreq_server_state(%u, %u, 1)", xendevicemodel_set_ioreq_server_state(h, d, id, 1), d, id);
    static const uint32_t lines[][2] = { { 1, 1 }, { 1, 0 }, { 0, 1 }, { 1, 2 }, { 2, 1 } };
    for (unsigned i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        /* 0: the SPI; 1: a private interrupt (below 32); 2: past the domain's SPIs */
        uint32_t irq = lines[i][0] == 1 ? spi : lines[i][0] == 0 ? 27 : spi + 4096;
        SIMPLE("set_irq_level(%u, %u, %u)", xendevicemodel_set_irq_level(h, d, irq, lines[i][1]), d, irq, lines[i][1]);
    }
    nr_vcpus(d);
    SIMPLE("set_ioreq_server_state(%u, %u, 0)", xendevicemodel_set_ioreq_server_state(h, d, id, 0), d, id);
    io_range(0, d, id, 1, 0x0a000000, 0x0a000fff);
    io_range(0, d, id, 1, 0x0a000000, 0x0a000fff);
    SIMPLE("destroy_ioreq_server(%u, %u)", xendevicemodel_destroy_ioreq_server(h, d, id), d, id);
    SIMPLE("destroy_ioreq_server(%u, %u)", xendevicemodel_destroy_ioreq_server(h, d, id), d, id);
    create(d, 1);
    SIMPLE("inject_event(%u, 0, 14, 3, ~0, 2, x)", xendevicemodel_inject_event(h, d, 0, 14, 3, 0xffffffff, 2, 0x1000), d);
    SIMPLE("shutdown(%u, 0)", xendevicemodel_shutdown(h, d, 0), d);
    nr_vcpus(d);
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "edges";
    via_libxencall = getenv("FAKEPRIVCMD_PROBE_ERRNO") || getenv("FAKEPRIVCMD_NODEV");
    h = xendevicemodel_open(NULL, 0);
    printf("open = %s", h ? "handle" : "NULL");
    result(h ? 0 : -1, errno, "");
    if (!h)
        return 1;
    if (!strcmp(mode, "edges"))
        edges();
    else if (!strcmp(mode, "random"))
        random_calls(argc > 2 ? (unsigned)strtoul(argv[2], NULL, 0) : 1, argc > 3 ? atol(argv[3]) : 5000);
    else if (!strcmp(mode, "deliberate"))
        deliberate();
    else if (!strcmp(mode, "lifecycle"))
        lifecycle(argc > 2 ? (uint32_t)strtoul(argv[2], NULL, 0) : 40);
    printf("close");
    CALL("", xendevicemodel_close(h));
    return 0;
}
