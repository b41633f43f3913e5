/*
 * One benchmark program, three variants (argv[1]):
 *   lib    the xendevicemodel library that LD_LIBRARY_PATH selects (ours or Xen's)
 *   floor  the bare ioctl(IOCTL_PRIVCMD_DM_OP) with a prebuilt request: the
 *          least any library can do per call
 * and four workloads (argv[2]): isa (set_isa_irq_level, one buffer), bulk
 * (modified_memory_bulk, two buffers), open (an open+close pair), and isa2
 * (set_isa_irq_level from two threads on ONE handle: ns per call of the pair,
 * so it halves if the threads do not serialize).
 * argv[3] is the iteration count. Prints: ns/call, heap allocations per call,
 * fds per handle. Run under the privcmd test double in fast mode
 * (FAKEPRIVCMD_RECORD=0), which plays the kernel for every variant alike.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include <xendevicemodel.h>
#include <xen/sys/privcmd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);
static atomic_long allocs;
void *malloc(size_t n) { atomic_fetch_add_explicit(&allocs, 1, memory_order_relaxed); return __libc_malloc(n); }
void *calloc(size_t n, size_t m) { atomic_fetch_add_explicit(&allocs, 1, memory_order_relaxed); return __libc_calloc(n, m); }
void *realloc(void *p, size_t n) { atomic_fetch_add_explicit(&allocs, 1, memory_order_relaxed); return __libc_realloc(p, n); }
void *aligned_alloc(size_t a, size_t n) { atomic_fetch_add_explicit(&allocs, 1, memory_order_relaxed); return __libc_memalign(a, n); }
int posix_memalign(void **p, size_t a, size_t n)
{
    atomic_fetch_add_explicit(&allocs, 1, memory_order_relaxed);
    *p = __libc_memalign(a, n);
    return *p ? 0 : ENOMEM;
}
void free(void *p) { __libc_free(p); }

#define DOM 5

/* one cache line each: the threads must not share one through the bench itself */
struct mt { xendevicemodel_handle *h; int fd; long n, failures; } __attribute__((aligned(64)));

static void *isa_thread(void *arg)
{
    struct mt *m = arg;
    if (m->h) {
        for (long i = 0; i < m->n; i++)
            m->failures += xendevicemodel_set_isa_irq_level(m->h, DOM, 4, i & 1) != 0;
    } else {
        struct xen_dm_op op;
        memset(&op, 0, sizeof(op));
        op.op = XEN_DMOP_set_isa_irq_level;
        op.u.set_isa_irq_level.isa_irq = 4;
        privcmd_dm_op_buf_t buf = { &op, sizeof(op) };
        privcmd_dm_op_t uop = { .dom = DOM, .num = 1, .ubufs = &buf };
        for (long i = 0; i < m->n; i++)
            m->failures += ioctl(m->fd, IOCTL_PRIVCMD_DM_OP, &uop) != 0;
    }
    return NULL;
}

static int count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s lib|floor isa|bulk|open ITERATIONS\n", argv[0]);
        return 2;
    }
    const char *variant = argv[1], *work = argv[2];
    long n = atol(argv[3]);
    int floor = strcmp(variant, "floor") == 0;
    struct xen_dm_op_modified_memory_extent ext[2] = { { .nr = 1, .first_pfn = 0x100 }, { .nr = 4, .first_pfn = 0x900 } };
    long failures = 0;
    double t0, t1;
    long a0;
    int fds_per_handle = -1;

    if (strcmp(work, "isa2") == 0) {
        struct mt m[2] = { { .n = n }, { .n = n } };
        xendevicemodel_handle *h = NULL;
        int fd = -1;
        if (floor)
            fd = open("/dev/xen/privcmd", O_RDWR | O_CLOEXEC);
        else
            h = xendevicemodel_open(NULL, 0);
        pthread_t t[2];
        a0 = atomic_load(&allocs);
        t0 = now();
        for (int i = 0; i < 2; i++) {
            m[i].h = h;
            m[i].fd = fd;
            pthread_create(&t[i], NULL, isa_thread, &m[i]);
        }
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        t1 = now();
        n *= 2; /* per call of either thread */
        failures = m[0].failures + m[1].failures;
        if (h)
            xendevicemodel_close(h);
        if (fd >= 0)
            close(fd);
    } else if (strcmp(work, "open") == 0) {
        if (floor) {
            a0 = atomic_load(&allocs);
            t0 = now();
            for (long i = 0; i < n; i++) {
                int fd = open("/dev/xen/privcmd", O_RDWR | O_CLOEXEC);
                privcmd_dm_op_t probe = { .dom = DOMID_INVALID };
                failures += fd < 0 || ioctl(fd, IOCTL_PRIVCMD_DM_OP, &probe) != 0;
                close(fd);
            }
            t1 = now();
            fds_per_handle = 1;
        } else {
            int before = count_fds();
            xendevicemodel_handle *h = xendevicemodel_open(NULL, 0);
            fds_per_handle = count_fds() - before;
            xendevicemodel_close(h);
            a0 = atomic_load(&allocs);
            t0 = now();
            for (long i = 0; i < n; i++) {
                h = xendevicemodel_open(NULL, 0);
                failures += !h || xendevicemodel_close(h) != 0;
            }
            t1 = now();
        }
    } else {
        int isa = strcmp(work, "isa") == 0;
        if (floor) {
            int fd = open("/dev/xen/privcmd", O_RDWR | O_CLOEXEC);
            struct xen_dm_op op;
            memset(&op, 0, sizeof(op));
            privcmd_dm_op_buf_t bufs[2] = { { &op, sizeof(op) }, { ext, sizeof(ext) } };
            if (isa) {
                op.op = XEN_DMOP_set_isa_irq_level;
                op.u.set_isa_irq_level.isa_irq = 4;
            } else {
                op.op = XEN_DMOP_modified_memory;
                op.u.modified_memory.nr_extents = 2;
            }
            privcmd_dm_op_t uop = { .dom = DOM, .num = isa ? 1 : 2, .ubufs = bufs };
            a0 = atomic_load(&allocs);
            t0 = now();
            for (long i = 0; i < n; i++)
                failures += ioctl(fd, IOCTL_PRIVCMD_DM_OP, &uop) != 0;
            t1 = now();
            close(fd);
        } else {
            xendevicemodel_handle *h = xendevicemodel_open(NULL, 0);
            a0 = atomic_load(&allocs);
            t0 = now();
            if (isa)
                for (long i = 0; i < n; i++)
                    failures += xendevicemodel_set_isa_irq_level(h, DOM, 4, i & 1) != 0;
            else
                for (long i = 0; i < n; i++)
                    failures += xendevicemodel_modified_memory_bulk(h, DOM, ext, 2) != 0;
            t1 = now();
            xendevicemodel_close(h);
        }
    }
    long a = atomic_load(&allocs) - a0;
    printf("%s %s ns_per_call %.1f allocs_per_call %.2f fds_per_handle %d failures %ld\n", variant, work,
           (t1 - t0) / n, (double)a / n, fds_per_handle, failures);
    return failures != 0;
}
