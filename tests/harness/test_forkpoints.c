/*
 * fork() at every point of the library's life: while another thread is
 * inside open, inside close (waiting for a call still in flight), inside an
 * ordinary call, inside xentoolcore_restrict_all, and inside a logger
 * callback. The other thread is parked there deterministically (the privcmd
 * double's fp_park, or a logger that waits), then the main thread forks.
 *
 * In the child, every time: an inherited handle's calls fail with EBADF and
 * send nothing; closing it returns 0 and releases it; once every handle is
 * closed no privcmd descriptor is left; new handles open and work; and
 * restrict_all touches only the child's own handles (except after a fork
 * inside restrict_all: libxentoolcore's own lock is then held by a thread
 * that does not exist in the child, see docs/reliability.md). The parent is unaffected:
 * its calls and close complete, nothing leaks. Every wait is bounded.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xendevicemodel.h>
#include <xentoolcore.h>

#include "check.h"
#include "fakeprivcmd.h"

#define DOM 5

/* Waits until cond() holds (check.h's ceiling); false on a hang. */
static int cond_of(void *f)
{
    return ((int (*)(void))f)();
}
static int wait_for(int (*cond)(void))
{
    return t_wait(cond_of, (void *)cond);
}

static int fake_fds(void)
{
    int n = 0;
    for (int fd = 0; fd < 1024; fd++)
        n += fp_is_fake_fd(fd);
    return n;
}

/* ---- the other thread's jobs ---- */
static xendevicemodel_handle *shared; /* the handle the jobs use */
static atomic_int done;               /* the job returned */
static atomic_long result;            /* what it returned */

static void *job_open(void *a)
{
    (void)a;
    atomic_store(&result, (long)xendevicemodel_open(NULL, 0));
    atomic_store(&done, 1);
    return NULL;
}

static void *job_call(void *a)
{
    (void)a;
    atomic_store(&result, xendevicemodel_set_isa_irq_level(shared, DOM, 4, 1));
    atomic_store(&done, 1);
    return NULL;
}

static atomic_int close_done;
static atomic_int close_rc;
static void *job_close(void *a)
{
    (void)a;
    atomic_store(&close_rc, xendevicemodel_close(shared));
    atomic_store(&close_done, 1);
    return NULL;
}

static void *job_restrict_all(void *a)
{
    (void)a;
    atomic_store(&result, xentoolcore_restrict_all(DOM));
    atomic_store(&done, 1);
    return NULL;
}

/* A logger that waits inside its callback while `hold` is set. */
static atomic_int hold, in_logger;
static void parking_vmessage(xentoollog_logger *l, xentoollog_level level, int errnoval, const char *context,
                             const char *fmt, va_list al)
{
    (void)l, (void)level, (void)errnoval, (void)context, (void)fmt, (void)al;
    atomic_store(&in_logger, 1);
    long end = t_now_ms() + T_CEILING_S * 1000L;
    while (atomic_load(&hold) && t_now_ms() < end)
        usleep(200);
    atomic_store(&in_logger, 0);
}
static xentoollog_logger parking_logger = { .vmessage = parking_vmessage };

static void *job_logged_call(void *a)
{
    (void)a;
    /* An unknown domain: the failure is logged at debug level through the logger. */
    atomic_store(&result, xendevicemodel_set_isa_irq_level(shared, 0x7ff0, 4, 1));
    atomic_store(&done, 1);
    return NULL;
}

static int parked(void) { return fp_parked(); }
static int logging(void) { return atomic_load(&in_logger); }
static int job_done(void) { return atomic_load(&done); }
static int closing_done(void) { return atomic_load(&close_done); }

/* ---- the child's rules ---- */

/*
 * In the child: `inherited` (n of them) are the parent's handles. Returns
 * the number of failed checks (the child's exit status).
 */
static int child_rules(xendevicemodel_handle **inherited, int n, int restrict_all_ok)
{
    t_passed = t_failed = 0;
    unsigned long ioctls = fp_ioctl_count();
    for (int i = 0; i < n; i++) {
        CHECK_FAILS(xendevicemodel_set_isa_irq_level(inherited[i], DOM, 4, 1), EBADF);
        CHECK_FAILS(xendevicemodel_nr_vcpus(inherited[i], DOM, &(unsigned){0}), EBADF);
    }
    CHECK(fp_ioctl_count() == ioctls, "child: an inherited handle reached privcmd");
    xendevicemodel_handle *own = xendevicemodel_open(NULL, 0);
    CHECK(own != NULL, "child: open");
    CHECK_OK(xendevicemodel_set_isa_irq_level(own, DOM, 4, 1));
    if (restrict_all_ok) {
        unsigned long before = fp_count();
        CHECK_OK(xentoolcore_restrict_all(DOM));
        int restricts = 0;
        for (unsigned long i = before; i < fp_count(); i++)
            restricts += fp_get(i) && fp_get(i)->kind == FP_RESTRICT;
        CHECK(restricts == 1, "child: restrict_all restricted %d files, want 1 (its own)", restricts);
        CHECK_FAILS(xendevicemodel_set_isa_irq_level(own, DOM + 1, 4, 1), EPERM);
    }
    for (int i = 0; i < n; i++)
        CHECK(xendevicemodel_close(inherited[i]) == 0, "child: close of inherited handle %d", i);
    CHECK_OK(xendevicemodel_close(own));
    CHECK(fake_fds() == 0, "child: %d privcmd descriptors left after closing every handle", fake_fds());
    return t_failed;
}

/* Forks; the child runs child_rules on `handles` (with `late`, read from
 * the pipe, added when the parent sends one) and exits with its failures.
 * Returns the child's pid. */
static int late_pipe[2];
static pid_t fork_child(xendevicemodel_handle **handles, int n, int expect_late, int restrict_all_ok)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        alarm(T_CEILING_S); /* a hang in the child becomes a failure */
        atomic_store(&hold, 0); /* the child's own log lines must not wait */
        xendevicemodel_handle *all[8];
        for (int i = 0; i < n; i++)
            all[i] = handles[i];
        if (expect_late) {
            long key = 0;
            if (read(late_pipe[0], &key, sizeof(key)) != sizeof(key))
                _exit(100);
            all[n++] = (xendevicemodel_handle *)key;
        }
        _exit(child_rules(all, n, restrict_all_ok));
    }
    return pid;
}

/* Waits for the child (which its alarm ends, should it hang); its failure
 * count, or -1. */
static int child_failures(pid_t pid)
{
    int status;
    if (!t_reap(pid, T_CEILING_S + 30, &status))
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static void reset(void)
{
    atomic_store(&done, 0);
    atomic_store(&close_done, 0);
    atomic_store(&result, 0);
}

/* ---- the five points ---- */

/* Lets the parked open go after `a` ms; `unparked` is set just before. */
static atomic_int unparked;
static void *unpark_later(void *a)
{
    usleep((long)a * 1000);
    atomic_store(&unparked, 1);
    fp_unpark();
    return NULL;
}

static void point_open(void)
{
    int base = fake_fds();
    xendevicemodel_handle *h = xendevicemodel_open(NULL, 0);
    reset();
    CHECK(pipe(late_pipe) == 0, "pipe");
    fp_park(FP_PROBE, -1);
    pthread_t t, u;
    pthread_create(&t, NULL, job_open, NULL);
    CHECK(wait_for(parked), "open: the thread never parked inside open");
    /* fork() waits for an open in progress: something must let it finish. */
    atomic_store(&unparked, 0);
    pthread_create(&u, NULL, unpark_later, (void *)100L);
    long t0 = t_now_ms();
    pid_t pid = fork_child(&h, 1, 1, 1);
    long waited = t_now_ms() - t0;
    /* Only the open's end lets fork() through, and only the unpark ends the open. */
    CHECK(atomic_load(&unparked), "open: fork() did not wait for the open in progress (%ld ms)", waited);
    CHECK(wait_for(job_done), "open: the parked open never returned");
    long key = atomic_load(&result);
    CHECK(key != 0, "open: the parked open failed");
    CHECK(write(late_pipe[1], &key, sizeof(key)) == sizeof(key), "pipe write");
    int f = child_failures(pid);
    CHECK(f == 0, "open: the child failed %d checks", f);
    pthread_join(t, NULL);
    pthread_join(u, NULL);
    close(late_pipe[0]);
    close(late_pipe[1]);
    /* The parent is unaffected. */
    CHECK_OK(xendevicemodel_set_isa_irq_level((xendevicemodel_handle *)key, DOM, 4, 1));
    CHECK_OK(xendevicemodel_close((xendevicemodel_handle *)key));
    CHECK_OK(xendevicemodel_close(h));
    CHECK(fake_fds() == base, "open: parent descriptors %d -> %d", base, fake_fds());
}

static void point_call(void)
{
    int base = fake_fds();
    shared = xendevicemodel_open(NULL, 0);
    reset();
    fp_park(FP_DM_OP, XEN_DMOP_set_isa_irq_level);
    pthread_t t;
    pthread_create(&t, NULL, job_call, NULL);
    CHECK(wait_for(parked), "call: the thread never parked inside the call");
    pid_t pid = fork_child(&shared, 1, 0, 1);
    int f = child_failures(pid);
    CHECK(f == 0, "call: the child failed %d checks", f);
    fp_unpark();
    CHECK(wait_for(job_done) && atomic_load(&result) == 0, "call: the parked call did not complete");
    pthread_join(t, NULL);
    CHECK_OK(xendevicemodel_close(shared));
    CHECK(fake_fds() == base, "call: parent descriptors %d -> %d", base, fake_fds());
}

/* Whether a call on the shared handle is refused: close has begun. */
static int close_begun(void)
{
    errno = 0;
    return xendevicemodel_inject_msi(shared, DOM, 0xfee00000, 1) == -1 && errno == EBADF;
}

static void point_close_waiting(void)
{
    int base = fake_fds();
    shared = xendevicemodel_open(NULL, 0);
    reset();
    fp_park(FP_DM_OP, XEN_DMOP_set_isa_irq_level);
    pthread_t t, c;
    pthread_create(&t, NULL, job_call, NULL);
    CHECK(wait_for(parked), "close: the call never parked");
    pthread_create(&c, NULL, job_close, NULL);
    /* Once close has begun, new calls are refused; it then waits for the parked call. */
    int saved = dup(2), null = open("/dev/null", O_WRONLY);
    dup2(null, 2); /* the EBADF below is logged on stderr */
    CHECK(wait_for(close_begun), "close: new calls were never refused");
    dup2(saved, 2);
    close(saved), close(null);
    CHECK(!atomic_load(&close_done), "close returned while a call was in flight");
    pid_t pid = fork_child(&shared, 1, 0, 1);
    int f = child_failures(pid);
    CHECK(f == 0, "close: the child failed %d checks", f);
    fp_unpark();
    CHECK(wait_for(closing_done), "close: never completed after the call ended");
    CHECK(atomic_load(&close_rc) == 0, "close: rc %d", atomic_load(&close_rc));
    CHECK(wait_for(job_done) && atomic_load(&result) == 0, "close: the parked call did not complete");
    pthread_join(t, NULL);
    pthread_join(c, NULL);
    CHECK(fake_fds() == base, "close: parent descriptors %d -> %d", base, fake_fds());
}

static void point_restrict_all(void)
{
    int base = fake_fds();
    shared = xendevicemodel_open(NULL, 0);
    reset();
    fp_park(FP_RESTRICT, -1);
    pthread_t t;
    pthread_create(&t, NULL, job_restrict_all, NULL);
    CHECK(wait_for(parked), "restrict_all: the thread never parked inside restrict_all");
    /* libxentoolcore's lock is held by that thread: restrict_all cannot be used in the child. */
    pid_t pid = fork_child(&shared, 1, 0, 0);
    int f = child_failures(pid);
    CHECK(f == 0, "restrict_all: the child failed %d checks", f);
    fp_unpark();
    CHECK(wait_for(job_done) && atomic_load(&result) == 0, "restrict_all: did not complete in the parent");
    pthread_join(t, NULL);
    CHECK_FAILS(xendevicemodel_set_isa_irq_level(shared, DOM + 1, 4, 1), EPERM); /* it did restrict */
    CHECK_OK(xendevicemodel_close(shared));
    CHECK(fake_fds() == base, "restrict_all: parent descriptors %d -> %d", base, fake_fds());
}

static void point_logger(void)
{
    int base = fake_fds();
    shared = xendevicemodel_open(&parking_logger, 0);
    reset();
    atomic_store(&hold, 1);
    pthread_t t;
    pthread_create(&t, NULL, job_logged_call, NULL);
    CHECK(wait_for(logging), "logger: the call never reached the logger");
    pid_t pid = fork_child(&shared, 1, 0, 1);
    int f = child_failures(pid);
    CHECK(f == 0, "logger: the child failed %d checks", f);
    atomic_store(&hold, 0);
    CHECK(wait_for(job_done) && atomic_load(&result) == -1, "logger: the logged call did not complete");
    pthread_join(t, NULL);
    CHECK_OK(xendevicemodel_close(shared));
    CHECK(fake_fds() == base, "logger: parent descriptors %d -> %d", base, fake_fds());
}

int main(void)
{
    point_open();
    point_call();
    point_close_waiting();
    point_restrict_all();
    point_logger();
    printf("forkpoints: open, close, call, restrict_all, logger: child and parent checked\n");
    return t_done("forkpoints");
}
