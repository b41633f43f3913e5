/*
 * The hot path allocates nothing: every heap allocation in the process is
 * counted (this program interposes malloc and friends, forwarding to glibc),
 * and 1000 calls of each kind of dm_op must add none.
 *
 * Not run under valgrind: memcheck replaces the allocator this test wraps.
 */
#include <malloc.h>
#include <stdatomic.h>
#include <unistd.h>
#include <xendevicemodel.h>

#include "check.h"
#include "fakeprivcmd.h"

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

static atomic_long allocations;

void *malloc(size_t n) { atomic_fetch_add(&allocations, 1); return __libc_malloc(n); }
void *calloc(size_t n, size_t m) { atomic_fetch_add(&allocations, 1); return __libc_calloc(n, m); }
void *realloc(void *p, size_t n) { atomic_fetch_add(&allocations, 1); return __libc_realloc(p, n); }
void *memalign(size_t a, size_t n) { atomic_fetch_add(&allocations, 1); return __libc_memalign(a, n); }
void *aligned_alloc(size_t a, size_t n) { atomic_fetch_add(&allocations, 1); return __libc_memalign(a, n); }
int posix_memalign(void **p, size_t a, size_t n)
{
    atomic_fetch_add(&allocations, 1);
    *p = __libc_memalign(a, n);
    return *p ? 0 : ENOMEM;
}
void free(void *p) { __libc_free(p); }

#define DOM 5
#define N 1000

int main(void)
{
    xendevicemodel_handle *h = xendevicemodel_open(NULL, 0);
    CHECK(h != NULL, "open");
    if (!h)
        return t_done("alloc");
    long before = atomic_load(&allocations);
    void *probe = malloc(16); /* the counter itself works */
    free(probe);
    CHECK(atomic_load(&allocations) == before + 1, "allocation counter does not count");

    struct xen_dm_op_modified_memory_extent ext[4] = { { .nr = 1, .first_pfn = 1 }, { .nr = 2, .first_pfn = 9 } };
    unsigned long bitmap[8];
    ioservid_t id;
    xen_pfn_t gfn;
    unsigned vcpus;
    int failures = 0;
    before = atomic_load(&allocations);
    for (int i = 0; i < N; i++) {
        failures += xendevicemodel_set_isa_irq_level(h, DOM, 4, i & 1) != 0;
        failures += xendevicemodel_modified_memory_bulk(h, DOM, ext, 2) != 0;
        failures += xendevicemodel_modified_memory(h, DOM, 0x1000, 8) != 0;
        failures += xendevicemodel_track_dirty_vram(h, DOM, 0xa0, 64, bitmap) != 0;
        failures += xendevicemodel_inject_msi(h, DOM, 0xfee00000, 0x41) != 0;
        failures += xendevicemodel_create_ioreq_server(h, DOM, 1, &id) != 0;
        failures += xendevicemodel_get_ioreq_server_info(h, DOM, id, &gfn, NULL, NULL) != 0;
        failures += xendevicemodel_nr_vcpus(h, DOM, &vcpus) != 0;
    }
    long per = atomic_load(&allocations) - before;
    CHECK(failures == 0, "%d calls failed", failures);
    CHECK(per == 0, "%ld heap allocations in %d dm_op calls", per, 8 * N);
    printf("alloc: %ld heap allocations in %d dm_op calls\n", per, 8 * N);
    CHECK_OK(xendevicemodel_close(h));
    return t_done("alloc");
}
