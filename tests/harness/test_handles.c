/*
 * Handle lifecycle rules that Xen's library leaves undefined, and ours
 * defines: stale and double-closed handles, pointers that never came from
 * open, fork(), restrict_all in a child, and a close racing calls in threads.
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xendevicemodel.h>
#include <xentoolcore.h>

#include "check.h"
#include "fakeprivcmd.h"

#define DOM 5

static void test_stale_handles(void)
{
    xendevicemodel_handle *h = xendevicemodel_open(NULL, 0);
    CHECK(h != NULL, "open");
    CHECK_OK(xendevicemodel_close(h));
    int saved = t_quiet_stderr();
    unsigned long before = fp_ioctl_count();
    CHECK_FAILS(xendevicemodel_set_isa_irq_level(h, DOM, 1, 1), EBADF);
    CHECK_FAILS(xendevicemodel_restrict(h, DOM), EBADF);
    CHECK_FAILS(xendevicemodel_close(h), EBADF);
    /* The slot is reused by the next open; the old key stays dead. */
    xendevicemodel_handle *h2 = xendevicemodel_open(NULL, 0);
    CHECK(h2 != NULL && h2 != h, "reopen gave %p (old %p)", (void *)h2, (void *)h);
    before = fp_ioctl_count();
    CHECK_FAILS(xendevicemodel_inject_msi(h, DOM, 0xfee00000, 1), EBADF);
    CHECK(fp_ioctl_count() == before, "a stale handle reached privcmd");
    /* Pointers that never came from open. */
    int local;
    void *heap = malloc(64);
    CHECK_FAILS(xendevicemodel_set_isa_irq_level((xendevicemodel_handle *)&local, DOM, 1, 1), EBADF);
    CHECK_FAILS(xendevicemodel_set_isa_irq_level((xendevicemodel_handle *)heap, DOM, 1, 1), EBADF);
    CHECK_FAILS(xendevicemodel_set_isa_irq_level(NULL, DOM, 1, 1), EBADF);
    CHECK_FAILS(xendevicemodel_close((xendevicemodel_handle *)(uintptr_t)0xdeadbeef), EBADF);
    CHECK_FAILS(xendevicemodel_nr_vcpus((xendevicemodel_handle *)~(uintptr_t)0, DOM, &(unsigned){0}), EBADF);
    CHECK(fp_ioctl_count() == before, "invalid handles reached privcmd");
    free(heap);
    t_restore_stderr(saved);
    CHECK(xendevicemodel_close(NULL) == 0, "close(NULL) is 0, as in Xen");
    CHECK_OK(xendevicemodel_set_isa_irq_level(h2, DOM, 1, 1));
    CHECK_OK(xendevicemodel_close(h2));
}

/* What the child checks; its exit status is its number of failed checks. */
static int child_checks(xendevicemodel_handle *inherited, struct cap_logger *cap, int parent_fd)
{
    t_passed = t_failed = 0;
    unsigned long ioctls = fp_ioctl_count();
    int logged = cap->count;
    CHECK_FAILS(xendevicemodel_set_isa_irq_level(inherited, DOM, 1, 1), EBADF);
    CHECK_FAILS(xendevicemodel_nr_vcpus(inherited, DOM, &(unsigned){0}), EBADF);
    CHECK_FAILS(xendevicemodel_restrict(inherited, DOM), EBADF);
    CHECK(fp_ioctl_count() == ioctls, "child: inherited handle reached privcmd");
    CHECK(cap->count > logged && cap->errnoval == EBADF, "child: no log line through the caller's logger");

    /* restrict_all must not restrict the file the parent shares. */
    xendevicemodel_handle *own = xendevicemodel_open(NULL, 0);
    CHECK(own != NULL, "child: open");
    unsigned long before = fp_count();
    CHECK_OK(xentoolcore_restrict_all(DOM));
    for (unsigned long i = before; i < fp_count(); i++) {
        const struct fp_record *r = fp_get(i);
        CHECK(!(r && r->kind == FP_RESTRICT && r->fd == parent_fd), "child restricted the parent's file");
    }
    CHECK(fp_restriction(parent_fd) == -1, "child: inherited fd restricted");
    CHECK_OK(xendevicemodel_set_isa_irq_level(own, DOM, 1, 1));
    CHECK_FAILS(xendevicemodel_set_isa_irq_level(own, DOM + 1, 1, 1), EPERM); /* own handle is restricted */

    CHECK(xendevicemodel_close(inherited) == 0, "child: close of inherited handle");
    CHECK_OK(xendevicemodel_close(own));
    return t_failed;
}

static void test_fork(void)
{
    struct cap_logger cap;
    cap_init(&cap);
    xendevicemodel_handle *h = xendevicemodel_open(&cap.base, 0);
    CHECK(h != NULL, "open");
    CHECK_OK(xendevicemodel_set_isa_irq_level(h, DOM, 1, 1));
    int parent_fd = fp_get(fp_count() - 1)->fd;

    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        _exit(child_checks(h, &cap, parent_fd));
    int status = -1;
    CHECK(t_reap(pid, T_CEILING_S, &status) && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "child failed %d checks", WEXITSTATUS(status));

    /* The parent never notices. */
    CHECK_OK(xendevicemodel_set_isa_irq_level(h, DOM + 1, 1, 1));
    CHECK(fp_restriction(parent_fd) == -1, "parent fd restricted");

    /* 1000 forks, each child closing its inherited copy: no descriptor leaks. */
    int fds = t_count_fds();
    int bad = 0;
    for (int i = 0; i < 1000; i++) {
        pid = fork();
        if (pid == 0)
            _exit(xendevicemodel_close(h) == 0 ? 0 : 1);
        bad += !(t_reap(pid, T_CEILING_S, &status) && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    CHECK(bad == 0, "%d of 1000 children could not close their inherited handle", bad);
    CHECK(t_count_fds() == fds, "parent fds %d -> %d over 1000 forks", fds, t_count_fds());
    CHECK_OK(xendevicemodel_inject_msi(h, DOM, 0xfee00000, 0x30));
    CHECK_OK(xendevicemodel_close(h));
}

/*
 * 8 threads share 8 handles: each operation is a call on a random handle, or
 * (1 in 32) a reopen: swap a fresh handle into a random slot and close the old
 * one, which other threads may be using at that very moment.
 */
enum { SLOTS = 8, THREADS = 8, OPS = 100000 };
static _Atomic(xendevicemodel_handle *) slots[SLOTS];
static atomic_long done_ops, ok_ops, ebadf_ops, other_ops, reopens, open_failures, close_failures;

static void *worker(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    while (atomic_fetch_add(&done_ops, 1) < OPS) {
        unsigned slot = rand_r(&seed) % SLOTS;
        if (rand_r(&seed) % 32 == 0) {
            xendevicemodel_handle *fresh = xendevicemodel_open(NULL, 0);
            if (!fresh) {
                atomic_fetch_add(&open_failures, 1);
                continue;
            }
            if (xendevicemodel_close(atomic_exchange(&slots[slot], fresh)) != 0)
                atomic_fetch_add(&close_failures, 1);
            atomic_fetch_add(&reopens, 1);
            continue;
        }
        xendevicemodel_handle *h = atomic_load(&slots[slot]);
        errno = 0;
        int rc = xendevicemodel_set_isa_irq_level(h, DOM, 1, 1);
        if (rc == 0)
            atomic_fetch_add(&ok_ops, 1);
        else if (errno == EBADF)
            atomic_fetch_add(&ebadf_ops, 1);
        else
            atomic_fetch_add(&other_ops, 1);
    }
    return NULL;
}

static void test_threads(void)
{
    fp_config("record", 0); /* the double is only a fast kernel here */
    int fds = t_count_fds();
    for (int i = 0; i < SLOTS; i++)
        atomic_store(&slots[i], xendevicemodel_open(NULL, 0));
    int saved = t_quiet_stderr();
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    t_restore_stderr(saved);
    for (int i = 0; i < SLOTS; i++)
        CHECK_OK(xendevicemodel_close(atomic_load(&slots[i])));
    fp_config("record", 1);
    long ok = atomic_load(&ok_ops), ebadf = atomic_load(&ebadf_ops), other = atomic_load(&other_ops);
    long re = atomic_load(&reopens);
    printf("threads: %ld operations: %ld calls ok, %ld EBADF, %ld other; %ld handles closed and reopened\n",
           ok + ebadf + other + re, ok, ebadf, other, re);
    CHECK(ok + ebadf + re == OPS && other == 0, "%ld calls failed with something other than EBADF", other);
    CHECK(ok > 0, "no call succeeded");
    CHECK(re > OPS / 64, "only %ld handles were closed during the calls", re);
    CHECK(atomic_load(&open_failures) == 0 && atomic_load(&close_failures) == 0,
          "%ld opens and %ld closes failed", atomic_load(&open_failures), atomic_load(&close_failures));
    CHECK(t_count_fds() == fds, "fds %d -> %d after the stress test", fds, t_count_fds());
}

int main(void)
{
    test_stale_handles();
    test_fork();
    test_threads();
    return t_done("handles");
}
