/*
 * Running out of resources: memory (this program interposes malloc and
 * friends and fails them on demand), file descriptors (RLIMIT_NOFILE), and
 * pthread keys (all taken before the library's first open). Each scenario
 * runs in a child forked before the library did anything, so that it starts
 * from a fresh library. Every time: a clean -1 or NULL with errno, nothing
 * leaked, nothing sent, and handles work again once the resource is back.
 *
 * Not run under valgrind: memcheck replaces the allocator this test wraps.
 */
#include <dirent.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xendevicemodel.h>

#include "check.h"
#include "fakeprivcmd.h"

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static atomic_int fail_allocs; /* every allocation fails while set */
static atomic_long failed_allocs;

static int refuse(void)
{
    if (!atomic_load(&fail_allocs))
        return 0;
    atomic_fetch_add(&failed_allocs, 1);
    errno = ENOMEM;
    return 1;
}
void *malloc(size_t n) { return refuse() ? NULL : __libc_malloc(n); }
void *calloc(size_t n, size_t m) { return refuse() ? NULL : __libc_calloc(n, m); }
void *realloc(void *p, size_t n) { return refuse() ? NULL : __libc_realloc(p, n); }
void *memalign(size_t a, size_t n) { return refuse() ? NULL : __libc_memalign(a, n); }
void *aligned_alloc(size_t a, size_t n) { return refuse() ? NULL : __libc_memalign(a, n); }
int posix_memalign(void **p, size_t a, size_t n)
{
    if (refuse())
        return ENOMEM;
    *p = __libc_memalign(a, n);
    return *p ? 0 : ENOMEM;
}
void free(void *p) { __libc_free(p); }

#define DOM 5

/* Opening with no memory at all: NULL/ENOMEM, nothing leaked; then it works. */
static void no_memory_at_first_open(void)
{
    int fds = t_count_fds();
    atomic_store(&fail_allocs, 1);
    errno = 0;
    xendevicemodel_handle *h = xendevicemodel_open(NULL, 0);
    int e = errno;
    atomic_store(&fail_allocs, 0);
    CHECK(h == NULL && e == ENOMEM, "open without memory: %p errno %d, want NULL ENOMEM", (void *)h, e);
    CHECK(atomic_load(&failed_allocs) > 0, "the library never asked for memory");
    CHECK(t_count_fds() == fds, "open without memory left %d descriptors", t_count_fds() - fds);
    h = xendevicemodel_open(NULL, 0);
    CHECK(h != NULL, "open once memory is back");
    CHECK_OK(xendevicemodel_set_isa_irq_level(h, DOM, 4, 1));
    CHECK_OK(xendevicemodel_close(h));
    CHECK(t_count_fds() == fds, "descriptors %d -> %d", fds, t_count_fds());
}

/* Calls need no memory; opens that need a new table chunk fail cleanly. */
static void no_memory_later(void)
{
    int fds = t_count_fds();
    xendevicemodel_handle *h[80];
    h[0] = xendevicemodel_open(NULL, 0);
    CHECK(h[0] != NULL, "open");
    atomic_store(&fail_allocs, 1);
    int failures = 0;
    unsigned vcpus;
    for (int i = 0; i < 1000; i++) {
        failures += xendevicemodel_set_isa_irq_level(h[0], DOM, 4, i & 1) != 0;
        failures += xendevicemodel_nr_vcpus(h[0], DOM, &vcpus) != 0;
    }
    CHECK(failures == 0, "%d calls failed without memory", failures);
    int opened = 1, enomem = 0;
    for (int i = 1; i < 80; i++) {
        errno = 0;
        h[i] = xendevicemodel_open(NULL, 0);
        if (h[i])
            opened++;
        else
            enomem += errno == ENOMEM;
    }
    atomic_store(&fail_allocs, 0);
    /* The first chunk holds 64 handles; the 65th needs memory. */
    CHECK(opened == 64 && enomem == 16, "without memory: %d opened, %d ENOMEM; want 64 and 16", opened, enomem);
    for (int i = 0; i < 80; i++)
        if (h[i])
            CHECK_OK(xendevicemodel_close(h[i]));
    CHECK(t_count_fds() == fds, "descriptors %d -> %d", fds, t_count_fds());
    for (int i = 0; i < 80; i++)
        h[i] = xendevicemodel_open(NULL, 0);
    int ok = 0;
    for (int i = 0; i < 80; i++)
        ok += h[i] && xendevicemodel_close(h[i]) == 0;
    CHECK(ok == 80, "once memory is back, %d of 80 handles opened and closed", ok);
}

/* No descriptor left: NULL/EMFILE, no slot or descriptor leaked. */
static void no_descriptors(void)
{
    int fds = t_count_fds();
    struct rlimit old, low;
    getrlimit(RLIMIT_NOFILE, &old);
    low = old;
    low.rlim_cur = 1024;
    setrlimit(RLIMIT_NOFILE, &low);
    /* Take every descriptor, then give two back. */
    static int filler[1024];
    int nfill = 0;
    while (nfill < 1024 && (filler[nfill] = open("/dev/null", O_RDONLY)) >= 0)
        nfill++;
    CHECK(nfill > 2 && errno == EMFILE, "could not use up the descriptors (%d)", nfill);
    close(filler[--nfill]);
    close(filler[--nfill]);
    xendevicemodel_handle *a = xendevicemodel_open(NULL, 0), *b = xendevicemodel_open(NULL, 0);
    errno = 0;
    xendevicemodel_handle *c = xendevicemodel_open(NULL, 0);
    int e = errno;
    CHECK(a && b, "two handles within the limit");
    CHECK(c == NULL && e == EMFILE, "a third: %p errno %d, want NULL EMFILE", (void *)c, e);
    CHECK_OK(xendevicemodel_set_isa_irq_level(a, DOM, 4, 1));
    CHECK_OK(xendevicemodel_close(a));
    CHECK_OK(xendevicemodel_close(b));
    while (nfill > 0)
        close(filler[--nfill]);
    setrlimit(RLIMIT_NOFILE, &old);
    CHECK(t_count_fds() == fds, "descriptors %d -> %d", fds, t_count_fds());
    c = xendevicemodel_open(NULL, 0);
    CHECK(c != NULL, "open once descriptors are back");
    CHECK_OK(xendevicemodel_close(c));
}

static xendevicemodel_handle *th;
static void *call_twice(void *a)
{
    (void)a;
    xendevicemodel_set_isa_irq_level(th, DOM, 4, 1);
    xendevicemodel_set_isa_irq_level(th, DOM, 4, 0);
    return NULL;
}

/* No pthread key left for the library: calls from threads use the shared
 * counts (no membarrier needed), and everything works. */
static void no_thread_keys(void)
{
    pthread_key_t k;
    int keys = 0;
    while (pthread_key_create(&k, NULL) == 0)
        keys++;
    CHECK(keys > 0, "could not take the keys");
    unsigned long barriers = fp_membarrier_count(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
    th = xendevicemodel_open(NULL, 0);
    CHECK(th != NULL, "open without thread keys");
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, call_twice, NULL);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    CHECK_OK(xendevicemodel_set_isa_irq_level(th, DOM, 4, 1));
    CHECK_OK(xendevicemodel_close(th));
    CHECK(fp_membarrier_count(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == barriers,
          "without thread keys the library still used per-thread records (membarrier)");
}

/* libxencall's open (no DM_OP ioctl) without memory. */
static void no_memory_for_libxencall(void)
{
    fp_config("probe_errno", ENOTTY);
    xendevicemodel_handle *warm = xendevicemodel_open(NULL, 0); /* first open: process set-up done */
    int fds = t_count_fds();
    atomic_store(&fail_allocs, 1);
    errno = 0;
    xendevicemodel_handle *h = xendevicemodel_open(NULL, 0);
    int e = errno;
    atomic_store(&fail_allocs, 0);
    CHECK(h == NULL && e == ENOMEM, "libxencall open without memory: %p errno %d", (void *)h, e);
    CHECK(t_count_fds() == fds, "libxencall open without memory left %d descriptors", t_count_fds() - fds);
    h = xendevicemodel_open(NULL, 0);
    CHECK(h != NULL, "libxencall open once memory is back");
    CHECK_OK(xendevicemodel_set_isa_irq_level(h, DOM, 4, 1));
    CHECK_OK(xendevicemodel_close(h));
    CHECK_OK(xendevicemodel_close(warm));
    fp_config("probe_errno", 0);
}

int main(void)
{
    /* Each scenario starts from a library that has done nothing yet. */
    static const struct { const char *name; void (*run)(void); } scenarios[] = {
        { "no memory at the first open", no_memory_at_first_open },
        { "no memory later: calls work, opens needing a new chunk fail", no_memory_later },
        { "no file descriptor left", no_descriptors },
        { "no pthread key left", no_thread_keys },
        { "no memory for libxencall", no_memory_for_libxencall },
    };
    for (unsigned i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
        printf("exhaustion: %s\n", scenarios[i].name);
        int f = t_in_child(scenarios[i].run);
        CHECK(f == 0, "%s: %d checks failed (255: hung, 254: crashed or ended by its alarm)", scenarios[i].name, f);
    }
    return t_done("exhaustion");
}
