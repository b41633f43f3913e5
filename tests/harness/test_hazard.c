/*
 * How a call keeps its handle alive without an atomic read-modify-write
 * (src/liveness/): per-thread records, and close paying with membarrier(2).
 * Checks what is observable from outside: when close issues a membarrier,
 * that threads give their records back when they exit, that fork() while
 * another thread is inside a call leaves the child able to close, that calls
 * nested in a logger callback work, and what happens when membarrier stops
 * working (the privcmd double counts and fails membarrier on demand).
 */
#include <linux/membarrier.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xendevicemodel.h>

#include "check.h"
#include "fakeprivcmd.h"

#define DOM 5
#define EXPEDITED MEMBARRIER_CMD_PRIVATE_EXPEDITED

static unsigned long barriers(void) { return fp_membarrier_count(EXPEDITED); }

/* Under valgrind threads take turns and fork() is slow: do fewer rounds. */
static int under_valgrind(void)
{
    const char *p = getenv("LD_PRELOAD");
    return p && strstr(p, "vgpreload");
}

/* A thread that makes one call on `h`, then waits until told to go. */
struct parked {
    xendevicemodel_handle *h;
    pthread_t t;
    atomic_int called, go;
    int rc;
};

static void *park(void *arg)
{
    struct parked *p = arg;
    p->rc = xendevicemodel_set_isa_irq_level(p->h, DOM, 3, 1);
    atomic_store(&p->called, 1);
    long end = t_now_ms() + T_CEILING_S * 1000L; /* bounded, should the test fail before it says go */
    while (!atomic_load(&p->go) && t_now_ms() < end)
        usleep(1000);
    return NULL;
}

static int has_called(void *p)
{
    return atomic_load(&((struct parked *)p)->called);
}

static void park_start(struct parked *p, xendevicemodel_handle *h)
{
    memset(p, 0, sizeof(*p));
    p->h = h;
    pthread_create(&p->t, NULL, park, p);
    CHECK(t_wait(has_called, p), "the parked thread never made its call");
}

static void park_end(struct parked *p)
{
    atomic_store(&p->go, 1);
    pthread_join(p->t, NULL);
}

static void *one_call(void *h)
{
    return (void *)(intptr_t)xendevicemodel_inject_msi(h, DOM, 0xfee00000, 0x31);
}

static void test_when_close_pays(void)
{
    /* Only this thread ever called: no other thread can be inside a call. */
    xendevicemodel_handle *h = xendevicemodel_open(NULL, 0);
    CHECK_OK(xendevicemodel_set_isa_irq_level(h, DOM, 1, 1));
    unsigned long before = barriers();
    CHECK_OK(xendevicemodel_close(h));
    CHECK(barriers() == before, "close without other calling threads issued %lu membarriers", barriers() - before);

    /* Another live thread has a record: close must make it visible. */
    xendevicemodel_handle *other = xendevicemodel_open(NULL, 0);
    h = xendevicemodel_open(NULL, 0);
    struct parked p;
    park_start(&p, other);
    CHECK(p.rc == 0, "parked thread's call failed");
    before = barriers();
    CHECK_OK(xendevicemodel_close(h));
    CHECK(barriers() == before + 1, "close with another calling thread: %lu membarriers, want 1", barriers() - before);
    CHECK_OK(xendevicemodel_set_isa_irq_level(other, DOM, 1, 0)); /* other handles are untouched */
    park_end(&p);

    /* Threads give their records back when they exit. */
    enum { MAX = 300 };
    int n = under_valgrind() ? 30 : MAX;
    pthread_t t[MAX];
    int failed = 0;
    for (int i = 0; i < n; i++)
        pthread_create(&t[i], NULL, one_call, other);
    for (int i = 0; i < n; i++) {
        void *rc;
        pthread_join(t[i], &rc);
        failed += rc != NULL;
    }
    CHECK(failed == 0, "%d of %d short-lived threads' calls failed", failed, n);
    before = barriers();
    CHECK_OK(xendevicemodel_close(other));
    CHECK(barriers() == before, "%lu membarriers after every calling thread exited: records not given back",
          barriers() - before);
}

/* fork() while another thread is inside a call on the handle. */
static atomic_int hammer_stop;
static atomic_long hammer_calls;
static void *hammer(void *h)
{
    while (!atomic_load(&hammer_stop)) {
        xendevicemodel_set_isa_irq_level(h, DOM, 2, 1);
        atomic_fetch_add(&hammer_calls, 1);
    }
    return NULL;
}

/* Whether the hammer made a call since the count was `*(long *)from`. */
static int hammered(void *from)
{
    return atomic_load(&hammer_calls) > *(long *)from;
}

static int child_after_fork(xendevicemodel_handle *inherited)
{
    alarm(T_CEILING_S); /* a close waiting for a thread that does not exist here would hang */
    int bad = xendevicemodel_close(inherited) != 0;
    xendevicemodel_handle *own = xendevicemodel_open(NULL, 0);
    bad += own == NULL;
    pthread_t t;
    atomic_store(&hammer_stop, 0);
    long from = atomic_load(&hammer_calls);
    pthread_create(&t, NULL, hammer, own);
    bad += !t_wait(hammered, &from); /* the child's own thread is calling */
    xendevicemodel_handle *third = xendevicemodel_open(NULL, 0);
    bad += xendevicemodel_set_isa_irq_level(third, DOM, 1, 1) != 0;
    bad += xendevicemodel_close(third) != 0; /* the child's own barrier works */
    atomic_store(&hammer_stop, 1);
    pthread_join(t, NULL);
    bad += xendevicemodel_close(own) != 0;
    return bad;
}

static void test_fork_during_calls(void)
{
    xendevicemodel_handle *h = xendevicemodel_open(NULL, 0);
    pthread_t t;
    atomic_store(&hammer_stop, 0);
    pthread_create(&t, NULL, hammer, h);
    int bad = 0, rounds = under_valgrind() ? 3 : 20;
    for (int i = 0; i < rounds && !bad; i++) {
        long from = atomic_load(&hammer_calls);
        bad += !t_wait(hammered, &from); /* the fork comes while the thread is calling */
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0)
            _exit(child_after_fork(h));
        int status = -1;
        bad += !(t_reap(pid, T_CEILING_S + 30, &status) && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    atomic_store(&hammer_stop, 1);
    pthread_join(t, NULL);
    CHECK(bad == 0, "a child forked while a thread was calling failed or hung");
    CHECK_OK(xendevicemodel_close(h));
}

/* A logger callback that calls back into the library. */
struct reentrant_logger {
    struct cap_logger cap;
    xendevicemodel_handle *self, *other;
    int nested_self, nested_other, close_rc, close_errno;
};

static void reentrant_vmessage(xentoollog_logger *l, xentoollog_level level, int errnoval, const char *context,
                               const char *fmt, va_list al)
{
    struct reentrant_logger *r = (struct reentrant_logger *)l;
    cap_vmessage(l, level, errnoval, context, fmt, al);
    if (r->cap.count != 1)
        return;
    r->nested_other = xendevicemodel_set_isa_irq_level(r->other, DOM, 6, 1);
    r->nested_self = xendevicemodel_set_isa_irq_level(r->self, DOM, 6, 0);
    errno = 0;
    r->close_rc = xendevicemodel_close(r->self);
    r->close_errno = errno;
}

static void test_nested_calls(void)
{
    struct reentrant_logger r;
    memset(&r, 0, sizeof(r));
    cap_init(&r.cap);
    r.cap.base.vmessage = reentrant_vmessage;
    r.self = xendevicemodel_open(&r.cap.base, 0);
    r.other = xendevicemodel_open(NULL, 0);
    unsigned long n = fp_count();
    fp_fail_next(XEN_DMOP_set_isa_irq_level, EINVAL, 1);
    CHECK_FAILS(xendevicemodel_set_isa_irq_level(r.self, DOM, 6, 1), EINVAL);
    CHECK(r.cap.count >= 1, "the failure was not logged");
    CHECK(r.nested_other == 0, "call on another handle from the logger failed");
    CHECK(r.nested_self == 0, "call on the same handle from its logger failed");
    CHECK(fp_count() == n + 3, "%lu requests, want the failed one and two nested ones", fp_count() - n);
    CHECK(r.close_rc == -1 && r.close_errno == EDEADLK, "close from the handle's own logger: rc %d errno %d",
          r.close_rc, r.close_errno);
    CHECK_OK(xendevicemodel_set_isa_irq_level(r.self, DOM, 6, 0)); /* still open */
    CHECK_OK(xendevicemodel_close(r.self));
    CHECK_OK(xendevicemodel_close(r.other));
}

/* membarrier stops working after the library chose records (a seccomp policy
 * installed later): closes still complete, and threads from then on use the
 * shared counts, so their closes need no membarrier. */
static void test_membarrier_lost(void)
{
    xendevicemodel_handle *other = xendevicemodel_open(NULL, 0);
    xendevicemodel_handle *h = xendevicemodel_open(NULL, 0);
    struct parked p;
    park_start(&p, other);
    fp_config("membarrier_errno", ENOSYS);
    unsigned long before = barriers();
    CHECK_OK(xendevicemodel_close(h));
    CHECK(barriers() > before, "close did not try membarrier");
    CHECK_OK(xendevicemodel_set_isa_irq_level(other, DOM, 1, 1));
    park_end(&p);

    /* a thread started now gets no record */
    h = xendevicemodel_open(NULL, 0);
    park_start(&p, h);
    CHECK(p.rc == 0, "call after membarrier was lost failed");
    xendevicemodel_handle *h2 = xendevicemodel_open(NULL, 0);
    before = barriers();
    CHECK_OK(xendevicemodel_close(h2));
    CHECK(barriers() == before, "close tried membarrier although no thread has a record");
    park_end(&p);
    CHECK_OK(xendevicemodel_close(h));
    CHECK_OK(xendevicemodel_close(other));
    fp_config("membarrier_errno", 0);
}

int main(void)
{
    fp_reset();
    /* the library chooses once per process; without membarrier at start it
     * never uses records (that mode runs the handle suite separately) */
    xendevicemodel_handle *probe = xendevicemodel_open(NULL, 0);
    CHECK_OK(xendevicemodel_set_isa_irq_level(probe, DOM, 1, 1));
    CHECK_OK(xendevicemodel_close(probe));
    int records = fp_membarrier_count(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) > 0 && !getenv("FAKEPRIVCMD_MEMBARRIER_ERRNO");
    if (records) {
        test_when_close_pays();
        test_fork_during_calls();
        test_nested_calls();
        test_membarrier_lost(); /* last: the process stays without records */
    } else {
        test_fork_during_calls();
        test_nested_calls();
        CHECK(barriers() == 0, "membarrier used although registration failed");
    }
    return t_done("hazard");
}
