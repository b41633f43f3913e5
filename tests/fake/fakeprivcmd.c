/*
 * fakeprivcmd: an LD_PRELOAD test double for /dev/xen/privcmd (see
 * fakeprivcmd.h). It plays two roles:
 *   - Linux's privcmd driver: the device node, IOCTL_PRIVCMD_DM_OP with its
 *     limits (16 buffers, dm_op_buf_max_size bytes each -> E2BIG; a restricted
 *     file refuses other domids with EPERM before the num == 0 shortcut),
 *     IOCTL_PRIVCMD_RESTRICT (same domid again: ok; another: EINVAL), and
 *     IOCTL_PRIVCMD_HYPERCALL for libxencall's dm_op;
 *   - the hypervisor's dm_op: at most 2 buffers, EFAULT for NULL buffers,
 *     ESRCH for unknown domains, EPERM for the caller's own (domid 0), and
 *     out-values written back into the caller's buffers.
 * Every fake fd is a real descriptor on /dev/null, so close, fork and exec
 * behave naturally.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <xen/xen.h>
#include <xen/hvm/dm_op.h>
#include <xen/sys/privcmd.h>

#include "fakeprivcmd.h"

#define EXPORT __attribute__((visibility("default")))
#define MAX_FD 65536

/* ---- configuration ---- */
static struct {
    int nodev, proc, probe_errno, vcpus, irq_level_errno, record, trace, syscall, membarrier_errno;
    long buf_max, domid_esrch;
} cfg = { .vcpus = 4, .record = 1, .buf_max = 4096, .domid_esrch = 0x7ff0 };

/* ---- state ---- */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned char fake[MAX_FD];   /* 1: fd is a fake privcmd */
static int restriction[MAX_FD];      /* domid + 1, or 0 */
static struct fp_record ring[FP_RING];
static unsigned long nrecords, nioctls;
static unsigned next_server = 1;
static struct { int op, err, times; } inject;

static int (*real_open)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_close)(int);
static int (*real_ioctl)(int, unsigned long, ...);
static long (*real_syscall)(long, ...);
/* membarrier(2) calls seen, by command bit (1 << i) */
static unsigned long membarriers[32];
/* The counter of a membarrier command (one bit), or NULL. */
static unsigned long *membarrier_counter(long cmd)
{
    /* unsigned: 1L << 31 overflows a 32-bit long */
    unsigned long c = (unsigned long)cmd;
    return c > 0 && c <= 1UL << 31 && !(c & (c - 1)) ? &membarriers[__builtin_ctzl(c)] : NULL;
}

static void resolve(void)
{
    if (!real_open) {
        real_open = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open");
        real_openat = (int (*)(int, const char *, int, ...))dlsym(RTLD_NEXT, "openat");
        real_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
        real_ioctl = (int (*)(int, unsigned long, ...))dlsym(RTLD_NEXT, "ioctl");
        real_syscall = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
    }
}

/* Parking (fp_park): what to stop at, and whether a thread waits there. */
static struct { int armed, kind, op, parked, go; } park;

/*
 * fork(): the child gets a fresh lock instead of the parent's being held
 * across fork() (a real kernel holds no user-space lock, and a fork waiting
 * for the library, which waits for a thread inside this double, must not
 * deadlock on the double itself). A record another thread was writing may
 * be half done in the child; tests there look only at new ones.
 */
static void atfork_child(void)
{
    pthread_mutex_init(&lock, NULL);
    /* A thread parked in the parent does not exist here. */
    __atomic_store_n(&park.parked, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&park.armed, 0, __ATOMIC_SEQ_CST);
}

static long env_number(const char *name, long dflt)
{
    const char *v = getenv(name);
    if (!v || !*v)
        return dflt;
    static const struct { const char *n; int e; } names[] = {
        { "ENOTTY", ENOTTY }, { "EPERM", EPERM }, { "EINVAL", EINVAL }, { "ENOSYS", ENOSYS },
        { "EOPNOTSUPP", EOPNOTSUPP }, { "ESRCH", ESRCH }, { "EFAULT", EFAULT } };
    for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!strcmp(v, names[i].n))
            return names[i].e;
    return strtol(v, NULL, 0);
}

__attribute__((constructor)) static void init(void)
{
    resolve();
    cfg.nodev = env_number("FAKEPRIVCMD_NODEV", 0);
    cfg.proc = env_number("FAKEPRIVCMD_PROC", 0);
    cfg.probe_errno = env_number("FAKEPRIVCMD_PROBE_ERRNO", 0);
    cfg.vcpus = env_number("FAKEPRIVCMD_VCPUS", 4);
    cfg.record = env_number("FAKEPRIVCMD_RECORD", 1);
    cfg.trace = env_number("FAKEPRIVCMD_TRACE", 0);
    cfg.syscall = env_number("FAKEPRIVCMD_SYSCALL", 0);
    cfg.membarrier_errno = env_number("FAKEPRIVCMD_MEMBARRIER_ERRNO", 0);
    pthread_atfork(NULL, NULL, atfork_child);
}

/* ---- the device nodes ---- */
static int fake_path(const char *path)
{
    if (!path)
        return 0;
    if (!strcmp(path, "/dev/xen/privcmd"))
        return cfg.nodev ? -ENOENT : 1;
    if (!strcmp(path, "/proc/xen/privcmd"))
        return cfg.proc ? 1 : -ENOENT;
    if (!strcmp(path, "/dev/xen/hypercall"))
        return -ENOENT; /* libxencall then uses anonymous memory */
    return 0;
}

static int open_fake(int kind, int flags)
{
    if (kind < 0) {
        errno = -kind;
        return -1;
    }
    int fd = real_open("/dev/null", O_RDWR | (flags & O_CLOEXEC));
    if (fd >= 0 && fd < MAX_FD) {
        pthread_mutex_lock(&lock);
        fake[fd] = 1;
        restriction[fd] = 0;
        pthread_mutex_unlock(&lock);
    }
    return fd;
}

static mode_t mode_arg(int flags, va_list ap)
{
    return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? (mode_t)va_arg(ap, int) : 0;
}

EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
    resolve();
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    int k = fake_path(path);
    return k ? open_fake(k, flags) : real_openat(dirfd, path, flags, mode);
}
EXPORT int openat64(int dirfd, const char *path, int flags, ...) __attribute__((alias("openat")));

EXPORT int open(const char *path, int flags, ...)
{
    va_list ap;
    va_start(ap, flags);
    mode_t mode = mode_arg(flags, ap);
    va_end(ap);
    return openat(AT_FDCWD, path, flags, mode);
}
EXPORT int open64(const char *path, int flags, ...) __attribute__((alias("open")));

EXPORT int __open_2(const char *path, int flags) { return open(path, flags); }
EXPORT int __open64_2(const char *path, int flags) { return open(path, flags); }

static void maybe_park(enum fp_kind kind, int op);

EXPORT int close(int fd)
{
    resolve();
    if (fd >= 0 && fd < MAX_FD && fake[fd]) {
        if (__atomic_load_n(&park.armed, __ATOMIC_RELAXED))
            maybe_park(FP_CLOSE, -1);
        pthread_mutex_lock(&lock);
        fake[fd] = 0;
        restriction[fd] = 0;
        pthread_mutex_unlock(&lock);
    }
    return real_close(fd);
}

/* ---- decoding, for traces and fp_dump ---- */
static const char *op_names[] = {
    [XEN_DMOP_create_ioreq_server] = "create_ioreq_server",
    [XEN_DMOP_get_ioreq_server_info] = "get_ioreq_server_info",
    [XEN_DMOP_map_io_range_to_ioreq_server] = "map_io_range_to_ioreq_server",
    [XEN_DMOP_unmap_io_range_from_ioreq_server] = "unmap_io_range_from_ioreq_server",
    [XEN_DMOP_set_ioreq_server_state] = "set_ioreq_server_state",
    [XEN_DMOP_destroy_ioreq_server] = "destroy_ioreq_server",
    [XEN_DMOP_track_dirty_vram] = "track_dirty_vram",
    [XEN_DMOP_set_pci_intx_level] = "set_pci_intx_level",
    [XEN_DMOP_set_isa_irq_level] = "set_isa_irq_level",
    [XEN_DMOP_set_pci_link_route] = "set_pci_link_route",
    [XEN_DMOP_modified_memory] = "modified_memory",
    [XEN_DMOP_set_mem_type] = "set_mem_type",
    [XEN_DMOP_inject_event] = "inject_event",
    [XEN_DMOP_inject_msi] = "inject_msi",
    [XEN_DMOP_map_mem_type_to_ioreq_server] = "map_mem_type_to_ioreq_server",
    [XEN_DMOP_remote_shutdown] = "remote_shutdown",
    [XEN_DMOP_relocate_memory] = "relocate_memory",
    [XEN_DMOP_pin_memory_cacheattr] = "pin_memory_cacheattr",
    [XEN_DMOP_set_irq_level] = "set_irq_level",
    [XEN_DMOP_nr_vcpus] = "nr_vcpus",
};

static void describe_range(FILE *f, const struct xen_dm_op_ioreq_server_range *r)
{
    if (r->type == XEN_DMOP_IO_RANGE_PCI)
        fprintf(f, " id %u pci %04x:%02x:%02x.%x", r->id, (unsigned)(r->start >> 16) & 0xffff,
                (unsigned)(r->start >> 8) & 0xff, (unsigned)(r->start >> 3) & 0x1f, (unsigned)r->start & 7);
    else
        fprintf(f, " id %u %s %#llx-%#llx", r->id, r->type == XEN_DMOP_IO_RANGE_MEMORY ? "mmio" : "ports",
                (unsigned long long)r->start, (unsigned long long)r->end);
}

static void describe(FILE *f, const struct fp_record *r, const struct xen_dm_op *out)
{
    const struct xen_dm_op *op = (const void *)r->data[0];
    switch (r->kind) {
    case FP_PROBE:
        fprintf(f, "probe DM_OP (dom %#x, no buffers)", r->domid);
        break;
    case FP_RESTRICT:
        fprintf(f, "restrict to dom %u", r->domid);
        break;
    default:
        fprintf(f, "%s dom %u ", r->kind == FP_HYPERCALL ? "hypercall dm_op" : "dm_op", r->domid);
        if (r->nr_bufs < 1 || r->size[0] < sizeof(*op) || r->is_null[0]) {
            fprintf(f, "(%u buffers)", r->nr_bufs);
            break;
        }
        fprintf(f, "%s", op->op < sizeof(op_names) / sizeof(op_names[0]) && op_names[op->op] ? op_names[op->op] : "unknown-op");
        switch (op->op) {
        case XEN_DMOP_create_ioreq_server:
            fprintf(f, " handle_bufioreq=%u", op->u.create_ioreq_server.handle_bufioreq);
            break;
        case XEN_DMOP_get_ioreq_server_info:
            fprintf(f, " id %u%s", op->u.get_ioreq_server_info.id,
                    op->u.get_ioreq_server_info.flags & XEN_DMOP_no_gfns ? " no_gfns" : "");
            break;
        case XEN_DMOP_map_io_range_to_ioreq_server:
        case XEN_DMOP_unmap_io_range_from_ioreq_server:
            describe_range(f, &op->u.map_io_range_to_ioreq_server);
            break;
        case XEN_DMOP_set_ioreq_server_state:
            fprintf(f, " id %u %s", op->u.set_ioreq_server_state.id,
                    op->u.set_ioreq_server_state.enabled ? "enabled" : "disabled");
            break;
        case XEN_DMOP_destroy_ioreq_server:
            fprintf(f, " id %u", op->u.destroy_ioreq_server.id);
            break;
        case XEN_DMOP_track_dirty_vram:
            fprintf(f, " pfn %#llx nr %u bitmap %zu bytes", (unsigned long long)op->u.track_dirty_vram.first_pfn,
                    op->u.track_dirty_vram.nr, r->nr_bufs > 1 ? r->size[1] : 0);
            break;
        case XEN_DMOP_set_pci_intx_level:
            fprintf(f, " %04x:%02x:%02x INT%c level %u", op->u.set_pci_intx_level.domain,
                    op->u.set_pci_intx_level.bus, op->u.set_pci_intx_level.device,
                    'A' + (op->u.set_pci_intx_level.intx & 3), op->u.set_pci_intx_level.level);
            break;
        case XEN_DMOP_set_isa_irq_level:
            fprintf(f, " irq %u level %u", op->u.set_isa_irq_level.isa_irq, op->u.set_isa_irq_level.level);
            break;
        case XEN_DMOP_set_irq_level:
            fprintf(f, " irq %u level %u", op->u.set_irq_level.irq, op->u.set_irq_level.level);
            break;
        case XEN_DMOP_set_pci_link_route:
            fprintf(f, " link %u irq %u", op->u.set_pci_link_route.link, op->u.set_pci_link_route.isa_irq);
            break;
        case XEN_DMOP_modified_memory: {
            unsigned n = op->u.modified_memory.nr_extents;
            fprintf(f, " %u extent(s)", n);
            if (r->nr_bufs > 1 && !r->is_null[1]) {
                const struct xen_dm_op_modified_memory_extent *e = (const void *)r->data[1];
                for (unsigned i = 0; i < n && i < 3 && (i + 1) * sizeof(*e) <= r->size[1]; i++)
                    fprintf(f, " [%#llx+%u]", (unsigned long long)e[i].first_pfn, e[i].nr);
                if (n > 3)
                    fprintf(f, " ...");
            }
            break;
        }
        case XEN_DMOP_set_mem_type:
            fprintf(f, " type %u pfn %#llx nr %u", op->u.set_mem_type.mem_type,
                    (unsigned long long)op->u.set_mem_type.first_pfn, op->u.set_mem_type.nr);
            break;
        case XEN_DMOP_inject_event:
            fprintf(f, " vcpu %u vector %u type %u error %#x insn_len %u extra %#llx", op->u.inject_event.vcpuid,
                    op->u.inject_event.vector, op->u.inject_event.type, op->u.inject_event.error_code,
                    op->u.inject_event.insn_len, (unsigned long long)op->u.inject_event.cr2);
            break;
        case XEN_DMOP_inject_msi:
            fprintf(f, " addr %#llx data %#x", (unsigned long long)op->u.inject_msi.addr, op->u.inject_msi.data);
            break;
        case XEN_DMOP_map_mem_type_to_ioreq_server:
            fprintf(f, " id %u type %u flags %#x", op->u.map_mem_type_to_ioreq_server.id,
                    op->u.map_mem_type_to_ioreq_server.type, op->u.map_mem_type_to_ioreq_server.flags);
            break;
        case XEN_DMOP_remote_shutdown:
            fprintf(f, " reason %u", op->u.remote_shutdown.reason);
            break;
        case XEN_DMOP_relocate_memory:
            fprintf(f, " %u gfns %#llx -> %#llx", op->u.relocate_memory.size,
                    (unsigned long long)op->u.relocate_memory.src_gfn,
                    (unsigned long long)op->u.relocate_memory.dst_gfn);
            break;
        case XEN_DMOP_pin_memory_cacheattr:
            fprintf(f, " %#llx-%#llx type %u", (unsigned long long)op->u.pin_memory_cacheattr.start,
                    (unsigned long long)op->u.pin_memory_cacheattr.end, op->u.pin_memory_cacheattr.type);
            break;
        }
    }
    if (r->rc != 0) {
        fprintf(f, " -> error %s", strerrorname_np(r->err) ? strerrorname_np(r->err) : "?");
        return;
    }
    fprintf(f, " -> ok");
    if (!out)
        return;
    switch (out->op) {
    case XEN_DMOP_create_ioreq_server:
        fprintf(f, ": server id %u", out->u.create_ioreq_server.id);
        break;
    case XEN_DMOP_get_ioreq_server_info:
        fprintf(f, ": ioreq gfn %#llx, bufioreq gfn %#llx, port %u",
                (unsigned long long)out->u.get_ioreq_server_info.ioreq_gfn,
                (unsigned long long)out->u.get_ioreq_server_info.bufioreq_gfn,
                out->u.get_ioreq_server_info.bufioreq_port);
        break;
    case XEN_DMOP_nr_vcpus:
        fprintf(f, ": %u vCPUs", out->u.nr_vcpus.vcpus);
        break;
    }
}

EXPORT void fp_dump(FILE *f, const struct fp_record *r)
{
    fprintf(f, "privcmd: ");
    describe(f, r, NULL);
    fputc('\n', f);
}

/* ---- the hypervisor's side of a dm_op ---- */
/*
 * XSA-506 (2026): the hypervisor refuses a dm_op with no buffer, and
 * modified_memory with fewer than two. Such requests are counted (no
 * library should send them) and refused, as a patched Xen would (its errno
 * is our guess: EINVAL).
 */
static unsigned long xsa506;

static int hypervisor_dm_op(domid_t dom, unsigned num, void *const ptr[], const size_t size[])
{
    if (num == 0) {
        __atomic_fetch_add(&xsa506, 1, __ATOMIC_RELAXED);
        return EINVAL;
    }
    if (num > 2)
        return E2BIG;
    for (unsigned i = 0; i < num; i++)
        if (!ptr[i])
            return EFAULT;
    if (size[0] < sizeof(struct xen_dm_op))
        return EFAULT;
    if (dom == cfg.domid_esrch || dom >= DOMID_FIRST_RESERVED)
        return ESRCH;
    if (dom == 0)
        return EPERM;
    struct xen_dm_op *op = ptr[0];
    if (inject.times > 0 && (inject.op == -1 || inject.op == (int)op->op)) {
        inject.times--;
        return inject.err;
    }
    switch (op->op) {
    case XEN_DMOP_create_ioreq_server:
        op->u.create_ioreq_server.id = next_server++;
        return 0;
    case XEN_DMOP_get_ioreq_server_info: {
        struct xen_dm_op_get_ioreq_server_info *g = &op->u.get_ioreq_server_info;
        g->bufioreq_port = 0x30 + g->id;
        if (!(g->flags & XEN_DMOP_no_gfns)) {
            g->ioreq_gfn = 0xfeff0 + 2 * g->id;
            g->bufioreq_gfn = 0xfeff1 + 2 * g->id;
        }
        return 0;
    }
    case XEN_DMOP_track_dirty_vram: {
        /* the hypervisor computes in 64 bits, whatever the caller's word size */
        uint64_t need = ((uint64_t)op->u.track_dirty_vram.nr + 7) / 8;
        if (num < 2 || size[1] < need)
            return EINVAL;
        memset(ptr[1], 0xa5, need);
        return 0;
    }
    case XEN_DMOP_modified_memory:
        if (num < 2) {
            __atomic_fetch_add(&xsa506, 1, __ATOMIC_RELAXED);
            return EINVAL;
        }
        if (size[1] < (uint64_t)op->u.modified_memory.nr_extents * 16)
            return EINVAL;
        return 0;
    case XEN_DMOP_set_pci_intx_level:
        return op->u.set_pci_intx_level.level > 1 ? EINVAL : 0;
    case XEN_DMOP_set_isa_irq_level:
        return op->u.set_isa_irq_level.level > 1 ? EINVAL : 0;
    case XEN_DMOP_set_irq_level:
        return cfg.irq_level_errno;
    case XEN_DMOP_nr_vcpus:
        op->u.nr_vcpus.vcpus = cfg.vcpus;
        return 0;
    case XEN_DMOP_map_io_range_to_ioreq_server:
    case XEN_DMOP_unmap_io_range_from_ioreq_server:
    case XEN_DMOP_set_ioreq_server_state:
    case XEN_DMOP_destroy_ioreq_server:
    case XEN_DMOP_set_pci_link_route:
    case XEN_DMOP_set_mem_type:
    case XEN_DMOP_inject_event:
    case XEN_DMOP_inject_msi:
    case XEN_DMOP_map_mem_type_to_ioreq_server:
    case XEN_DMOP_remote_shutdown:
    case XEN_DMOP_relocate_memory:
    case XEN_DMOP_pin_memory_cacheattr:
        return 0;
    default:
        return EOPNOTSUPP;
    }
}

static struct fp_record *new_record(enum fp_kind kind, int fd, domid_t dom, unsigned num, void *const ptr[],
                                    const size_t size[])
{
    struct fp_record *r = &ring[nrecords++ % FP_RING];
    memset(r, 0, sizeof(*r));
    r->kind = kind;
    r->fd = fd;
    r->domid = dom;
    r->nr_bufs = num;
    for (unsigned i = 0; i < num && i < FP_MAX_BUFS; i++) {
        r->size[i] = size[i];
        r->is_null[i] = ptr[i] == NULL;
        if (i < 2 && ptr[i])
            memcpy(r->data[i], ptr[i], size[i] < FP_BUF_BYTES ? size[i] : FP_BUF_BYTES);
    }
    return r;
}

static void finish(struct fp_record *r, int err, const void *out)
{
    if (!r)
        return;
    r->rc = err ? -1 : 0;
    r->err = err;
    if (cfg.trace) {
        /* one fprintf call per line: lines from threads do not interleave */
        char line[512];
        FILE *m = fmemopen(line, sizeof(line), "w");
        if (m) {
            fputs("    privcmd: ", m);
            describe(m, r, out);
            fputc('\n', m);
            fclose(m);
            line[sizeof(line) - 1] = 0;
            fputs(line, stderr);
        }
    }
}

/* A DM_OP (from the ioctl or the hypercall): limits, record, emulate. */
static int dm_op(enum fp_kind kind, int fd, domid_t dom, unsigned num, void *const ptr[], const size_t size[])
{
    /* privcmd's limits, checked before the hypervisor sees anything */
    if (num > 16)
        return E2BIG;
    for (unsigned i = 0; i < num; i++)
        if (size[i] > (size_t)cfg.buf_max)
            return E2BIG;
    if (!cfg.record && !cfg.trace)
        return hypervisor_dm_op(dom, num, ptr, size);
    pthread_mutex_lock(&lock);
    struct fp_record *r = new_record(kind, fd, dom, num, ptr, size);
    int err = hypervisor_dm_op(dom, num, ptr, size);
    finish(r, err, num && ptr[0] && size[0] >= sizeof(struct xen_dm_op) ? ptr[0] : NULL);
    pthread_mutex_unlock(&lock);
    return err;
}

/* Waits here if a park is armed for this request (see fp_park). */
static void maybe_park(enum fp_kind kind, int op)
{
    if (!__atomic_load_n(&park.armed, __ATOMIC_SEQ_CST) || park.kind != (int)kind || (park.op != -1 && park.op != op))
        return;
    int one = 1;
    if (!__atomic_compare_exchange_n(&park.armed, &one, 0, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
        return;
    __atomic_store_n(&park.parked, 1, __ATOMIC_SEQ_CST);
    while (!__atomic_load_n(&park.go, __ATOMIC_SEQ_CST))
        usleep(200);
    __atomic_store_n(&park.parked, 0, __ATOMIC_SEQ_CST);
}

static int privcmd_ioctl(int fd, unsigned long req, void *arg)
{
    if (__atomic_load_n(&park.armed, __ATOMIC_RELAXED)) {
        if (req == IOCTL_PRIVCMD_DM_OP && arg) {
            privcmd_dm_op_t u;
            memcpy(&u, arg, sizeof(u));
            int op = -1;
            if (u.num && u.ubufs[0].uptr && u.ubufs[0].size >= sizeof(struct xen_dm_op))
                op = ((const struct xen_dm_op *)u.ubufs[0].uptr)->op;
            maybe_park(u.num ? FP_DM_OP : FP_PROBE, op);
        } else if (req == IOCTL_PRIVCMD_RESTRICT) {
            maybe_park(FP_RESTRICT, -1);
        }
    }
    if (cfg.record) /* fast mode shares no cache line between threads */
        __atomic_fetch_add(&nioctls, 1, __ATOMIC_RELAXED);
    if (cfg.syscall) /* model the cost of entering the kernel */
        real_syscall(SYS_getppid);
    if (req == IOCTL_PRIVCMD_DM_OP) {
        privcmd_dm_op_t uop;
        if (!arg)
            return EFAULT;
        memcpy(&uop, arg, sizeof(uop));
        int restricted = restriction[fd];
        int err = 0;
        if (restricted && uop.dom != restricted - 1)
            err = EPERM;
        else if (uop.num == 0)
            err = cfg.probe_errno;
        if (uop.num == 0 || err) {
            if (cfg.record || cfg.trace) {
                pthread_mutex_lock(&lock);
                finish(new_record(uop.num ? FP_DM_OP : FP_PROBE, fd, uop.dom, 0, NULL, NULL), err, NULL);
                pthread_mutex_unlock(&lock);
            }
            return err;
        }
        if (uop.num > 16)
            return E2BIG;
        void *ptr[16];
        size_t size[16];
        for (unsigned i = 0; i < uop.num; i++) {
            ptr[i] = uop.ubufs[i].uptr;
            size[i] = uop.ubufs[i].size;
        }
        return dm_op(FP_DM_OP, fd, uop.dom, uop.num, ptr, size);
    }
    if (req == IOCTL_PRIVCMD_RESTRICT) {
        domid_t dom = *(domid_t *)arg;
        pthread_mutex_lock(&lock);
        int err = 0;
        if (!restriction[fd])
            restriction[fd] = dom + 1;
        else if (restriction[fd] != dom + 1)
            err = EINVAL;
        struct fp_record *r = cfg.record || cfg.trace ? new_record(FP_RESTRICT, fd, dom, 0, NULL, NULL) : NULL;
        finish(r, err, NULL);
        pthread_mutex_unlock(&lock);
        return err;
    }
    if (req == IOCTL_PRIVCMD_HYPERCALL) {
        privcmd_hypercall_t *call = arg;
        if (call->op != __HYPERVISOR_dm_op)
            return ENOSYS;
        unsigned num = call->arg[1];
        if (num > 16)
            return E2BIG;
        const struct xen_dm_op_buf *bufs = (const void *)(uintptr_t)call->arg[2];
        void *ptr[16];
        size_t size[16];
        for (unsigned i = 0; i < num; i++) {
            /* A plain pointer (x86), or Arm's 64-bit union around one: Xen
             * reads all of its bits, also for a 32-bit caller. */
            uint64_t h = 0;
            memcpy(&h, &bufs[i].h, sizeof(bufs[i].h) < sizeof(h) ? sizeof(bufs[i].h) : sizeof(h));
            if (h != (uintptr_t)h)
                return EFAULT;
            ptr[i] = (void *)(uintptr_t)h;
            size[i] = bufs[i].size;
        }
        return dm_op(FP_HYPERCALL, fd, (domid_t)call->arg[0], num, ptr, size);
    }
    return ENOTTY;
}

EXPORT int ioctl(int fd, unsigned long req, ...)
{
    resolve();
    va_list ap;
    va_start(ap, req);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    if (fd < 0 || fd >= MAX_FD || !fake[fd])
        return real_ioctl(fd, req, arg);
    int err = privcmd_ioctl(fd, req, arg);
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

/*
 * membarrier(2), which the library uses to close handles: counted, and made
 * to fail on demand (a kernel or seccomp policy without it). Other system
 * calls pass through.
 */
EXPORT long syscall(long number, ...)
{
    resolve();
    va_list ap;
    va_start(ap, number);
    long a[6];
    for (int i = 0; i < 6; i++) /* the kernel ignores arguments a call does not have */
        a[i] = va_arg(ap, long);
    va_end(ap);
    if (number == SYS_membarrier) {
        unsigned long *n = membarrier_counter((int)a[0]);
        if (n)
            __atomic_fetch_add(n, 1, __ATOMIC_RELAXED);
        if (cfg.membarrier_errno) {
            errno = cfg.membarrier_errno;
            return -1;
        }
    }
    return real_syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

EXPORT unsigned long fp_membarrier_count(int cmd)
{
    unsigned long *n = membarrier_counter(cmd);
    return n ? __atomic_load_n(n, __ATOMIC_RELAXED) : 0;
}

/* ---- the control API ---- */
EXPORT unsigned long fp_count(void) { return nrecords; }
EXPORT unsigned long fp_ioctl_count(void) { return nioctls; }
EXPORT unsigned long fp_xsa506_count(void) { return __atomic_load_n(&xsa506, __ATOMIC_RELAXED); }

EXPORT const struct fp_record *fp_get(unsigned long i)
{
    if (i >= nrecords || nrecords - i > FP_RING)
        return NULL;
    return &ring[i % FP_RING];
}

EXPORT void fp_reset(void)
{
    pthread_mutex_lock(&lock);
    nrecords = nioctls = 0;
    next_server = 1;
    inject.times = 0;
    pthread_mutex_unlock(&lock);
}

EXPORT void fp_fail_next(int op, int err, int times)
{
    pthread_mutex_lock(&lock);
    inject.op = op;
    inject.err = err;
    inject.times = times;
    pthread_mutex_unlock(&lock);
}

EXPORT void fp_config(const char *key, long value)
{
    pthread_mutex_lock(&lock);
    if (!strcmp(key, "nodev")) cfg.nodev = value;
    else if (!strcmp(key, "proc")) cfg.proc = value;
    else if (!strcmp(key, "probe_errno")) cfg.probe_errno = value;
    else if (!strcmp(key, "buf_max")) cfg.buf_max = value;
    else if (!strcmp(key, "vcpus")) cfg.vcpus = value;
    else if (!strcmp(key, "irq_level_errno")) cfg.irq_level_errno = value;
    else if (!strcmp(key, "domid_errno_esrch")) cfg.domid_esrch = value;
    else if (!strcmp(key, "record")) cfg.record = value;
    else if (!strcmp(key, "trace")) cfg.trace = value;
    else if (!strcmp(key, "syscall")) cfg.syscall = value;
    else if (!strcmp(key, "membarrier_errno")) cfg.membarrier_errno = value;
    else {
        pthread_mutex_unlock(&lock);
        fprintf(stderr, "fakeprivcmd: unknown config key '%s'\n", key);
        abort();
    }
    pthread_mutex_unlock(&lock);
}

EXPORT void fp_park(enum fp_kind kind, int op)
{
    park.kind = kind;
    park.op = op;
    __atomic_store_n(&park.go, 0, __ATOMIC_SEQ_CST);
    __atomic_store_n(&park.armed, 1, __ATOMIC_SEQ_CST);
}
EXPORT int fp_parked(void) { return __atomic_load_n(&park.parked, __ATOMIC_SEQ_CST); }
EXPORT void fp_unpark(void) { __atomic_store_n(&park.go, 1, __ATOMIC_SEQ_CST); }

EXPORT int fp_is_fake_fd(int fd) { return fd >= 0 && fd < MAX_FD && fake[fd]; }
EXPORT int fp_restriction(int fd) { return fp_is_fake_fd(fd) ? restriction[fd] - 1 : -1; }
