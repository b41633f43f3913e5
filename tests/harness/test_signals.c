/*
 * Signal handlers that use the library while the thread they interrupted is
 * inside it. Every entry point (open, close, the 24 calls and restrict) is
 * stopped inside the privcmd double (in its probe, its close(), its request),
 * a signal is sent to that thread, and its handler forks, calls, opens or
 * closes. Nothing may hang (each scenario runs in a child with a bounded
 * alarm); what happens is the header's rule:
 * - a call from the handler works (on another handle; on the interrupted
 *   call's own handle too; EBADF on a handle being closed);
 * - open and close from a handler that interrupted open or close (which hold
 *   the table lock) fail with EDEADLK, logged, and change nothing; from a
 *   handler that interrupted a call they work, except closing the handle
 *   the interrupted call uses (EDEADLK, as from a logger callback);
 * - fork() from the handler proceeds; in the child, inherited handles are
 *   refused (EBADF, nothing sent), and open works unless the interrupted
 *   function holds the table lock (EDEADLK, until the handler returns);
 * - afterwards the interrupted function completes normally, nothing leaks.
 * Then the program: open/close in a loop with SIGALRM forking from
 * its handler, for SIGNAL_LOOP_MS (default 2000) ms.
 *
 * With `test_signals xen` it runs against Xen's library, which takes no
 * locks of its own: every action succeeds there (its inherited handles
 * still reach privcmd, and closing a handle a call is using would free it
 * under the call, so those two are left out).
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xendevicemodel.h>
#include <xentoolcore.h>

#include "calls.h"
#include "check.h"
#include "fakeprivcmd.h"

#define DOM CALLS_DOM
static int xen_lib;
static int scenario_ceiling_s = 60;

enum action { A_CALL, A_OPEN, A_CLOSE, A_FORK, A_RESTRICT_ALL, NACTIONS };
static const char *const action_names[] = {"calls", "opens", "closes", "forks", "restricts all"};

/* The entry point the interrupted thread is in: -1 open, else CALLS[i]. */
static int entry;
static enum action action;
static xendevicemodel_handle *victim; /* the handle the entry point uses */
static xendevicemodel_handle *other;  /* another open handle */
static struct cap_logger cap;         /* the handler's open logs here */

/* What the handler saw (read by the scenario once it is done). */
static atomic_int handler_done;
static int r_other, e_other, r_victim, e_victim, e_open, r_close, e_close, r_vclose, e_vclose, r_all, e_all;
static int restricted; /* privcmd restrictions the handler's restrict_all made */
static xendevicemodel_handle *opened;
static int child_status;

static int lock_held(void) { return entry == -1 || CALLS[entry].closes; }

static int call_isa(xendevicemodel_handle *h, int *e)
{
    errno = 0;
    int rc = xendevicemodel_set_isa_irq_level(h, DOM, 1, 1);
    *e = errno;
    return rc;
}

/* The child of a fork from the handler: it never returns from the handler. */
static void forked_child(void)
{
    int bad = 0, e;
    unsigned long before = fp_ioctl_count();
    int rc = call_isa(other, &e);
    if (!xen_lib)
        bad += rc != -1 || e != EBADF || fp_ioctl_count() != before;
    struct cap_logger c;
    cap_init(&c);
    errno = 0;
    xendevicemodel_handle *own = xendevicemodel_open(&c.base, 0);
    if (!xen_lib && lock_held()) {
        bad += own != NULL || errno != EDEADLK;
    } else {
        bad += own == NULL;
        bad += call_isa(own, &e) != 0;
        bad += xendevicemodel_close(own) != 0;
    }
    /* Closing an inherited handle: the same rule as open. */
    errno = 0;
    rc = xendevicemodel_close(other);
    bad += !xen_lib && lock_held() ? rc != -1 || errno != EDEADLK : rc != 0;
    _exit(bad > 100 ? 100 : bad);
}

static void handler(int sig)
{
    (void)sig;
    int saved = errno;
    switch (action) {
    case A_CALL:
        r_other = call_isa(other, &e_other);
        if (entry != -1)
            r_victim = call_isa(victim, &e_victim);
        break;
    case A_OPEN:
        cap_init(&cap);
        errno = 0;
        opened = xendevicemodel_open(&cap.base, 0);
        e_open = errno;
        if (opened) {
            errno = 0;
            r_close = xendevicemodel_close(opened);
            e_close = errno;
        }
        break;
    case A_CLOSE:
        errno = 0;
        r_close = xendevicemodel_close(other);
        e_close = errno;
        if (!lock_held() && !xen_lib) {
            errno = 0;
            r_vclose = xendevicemodel_close(victim);
            e_vclose = errno;
        }
        break;
    case A_FORK: {
        pid_t pid = fork();
        if (pid == 0)
            forked_child();
        child_status = -1;
        if (pid > 0)
            while (waitpid(pid, &child_status, 0) == -1 && errno == EINTR)
                ;
        break;
    }
    case A_RESTRICT_ALL: {
        unsigned long before = fp_count();
        errno = 0;
        r_all = xentoolcore_restrict_all(DOM);
        e_all = errno;
        for (unsigned long i = before; i < fp_count(); i++)
            restricted += fp_get(i) && fp_get(i)->kind == FP_RESTRICT;
        break;
    }
    default:
        break;
    }
    atomic_store(&handler_done, 1);
    errno = saved;
}

/*
 * The signaller: once the scenario's main thread is stopped inside the
 * library, it sends that thread the signal, waits for the handler, and lets
 * the main thread go on. The interrupted thread is the main thread so that
 * a child forked from its handler is a copy of the main thread (a child of
 * a pthread_create'd thread leaves that thread's TLS block unreachable, and
 * memcheck would call it a leak).
 */
static pthread_t main_thread;
static int sig_parked, sig_handled; /* what the signaller saw, in time */
static int is_parked(void *a) { (void)a; return fp_parked(); }
static int is_handled(void *a) { (void)a; return atomic_load(&handler_done); }
static void *signaller(void *arg)
{
    (void)arg;
    sig_parked = t_wait(is_parked, NULL);
    if (sig_parked) {
        pthread_kill(main_thread, SIGUSR1);
        sig_handled = t_wait(is_handled, NULL);
    }
    fp_unpark(); /* also after a timeout: the main thread must not stay stopped */
    return NULL;
}

/* One entry point, one action, in a child of its own (see main). */
static void scenario(void)
{
    const char *what = entry == -1 ? "open" : CALLS[entry].name;
    const char *act = action_names[action];
    /* Refusals are logged on stderr: kept in a file, shown on a failure. */
    int keep = dup(2);
    FILE *log = tmpfile();
    if (log)
        dup2(fileno(log), 2);
    fp_reset();
    int fds0 = t_count_fds();
    other = xendevicemodel_open(NULL, 0);
    victim = entry == -1 ? NULL : xendevicemodel_open(NULL, 0);
    CHECK(other && (entry == -1 || victim), "%s: open", what);
    struct sigaction sa = {.sa_handler = handler};
    sigaction(SIGUSR1, &sa, NULL);
    fp_park(entry == -1 ? FP_PROBE : CALLS[entry].closes ? FP_CLOSE : !strcmp(what, "restrict") ? FP_RESTRICT : FP_DM_OP,
            -1);
    main_thread = pthread_self();
    pthread_t t;
    pthread_create(&t, NULL, signaller, NULL);
    long rc = entry == -1 ? (long)(uintptr_t)xendevicemodel_open(NULL, 0) : CALLS[entry].run(victim);
    pthread_join(t, NULL);
    CHECK(sig_parked, "%s: the thread never stopped inside it", what);
    CHECK(!sig_parked || sig_handled, "%s, the handler %s: it never finished", what, act);
    CHECK(entry == -1 ? rc != 0 : rc == 0, "%s, the handler %s: the interrupted function failed (%ld)", what, act, rc);
    if (entry == -1)
        victim = (xendevicemodel_handle *)(uintptr_t)rc;
    int closing = entry != -1 && CALLS[entry].closes;
    int held = lock_held() && !xen_lib;

    switch (action) {
    case A_CALL:
        CHECK(r_other == 0, "%s, the handler calls another handle: rc %d errno %d", what, r_other, e_other);
        if (entry != -1) {
            if (closing && !xen_lib)
                CHECK(r_victim == -1 && e_victim == EBADF, "%s, the handler calls the closing handle: rc %d errno %d",
                      what, r_victim, e_victim);
            else if (!closing)
                CHECK(r_victim == 0, "%s, the handler calls the same handle: rc %d errno %d", what, r_victim, e_victim);
        }
        break;
    case A_OPEN:
        if (held) {
            CHECK(!opened && e_open == EDEADLK, "%s, the handler opens: %p errno %d, want NULL EDEADLK", what,
                  (void *)opened, e_open);
            CHECK(cap.errors == 1 && strstr(cap.last, "signal handler"), "%s, the handler opens: logged %d: %s", what,
                  cap.errors, cap.last);
        } else {
            CHECK(opened && r_close == 0, "%s, the handler opens and closes: %p errno %d, close %d errno %d", what,
                  (void *)opened, e_open, r_close, e_close);
        }
        break;
    case A_CLOSE:
        if (held) {
            CHECK(r_close == -1 && e_close == EDEADLK, "%s, the handler closes another handle: rc %d errno %d", what,
                  r_close, e_close);
        } else {
            CHECK(r_close == 0, "%s, the handler closes another handle: rc %d errno %d", what, r_close, e_close);
            other = NULL;
        }
        if (!lock_held() && !xen_lib)
            CHECK(r_vclose == -1 && e_vclose == EDEADLK,
                  "%s, the handler closes the handle the call uses: rc %d errno %d, want EDEADLK", what, r_vclose,
                  e_vclose);
        break;
    case A_FORK:
        CHECK(WIFEXITED(child_status) && WEXITSTATUS(child_status) == 0,
              "%s, the handler forks: the child failed %d checks (status %#x)", what,
              WIFEXITED(child_status) ? WEXITSTATUS(child_status) : -1, child_status);
        break;
    case A_RESTRICT_ALL: {
        /* Every handle open, and the one a call uses (ours refuses inside
         * open and close). Xen's open registers a handle after the probe
         * the thread is stopped in; its close deregisters after close(). */
        int want = held ? 0 : 1 + (entry != -1);
        CHECK(held ? r_all == -1 && e_all == EDEADLK : r_all == 0,
              "%s, the handler restricts all: rc %d errno %d, want %s", what, r_all, e_all, held ? "EDEADLK" : "0");
        CHECK(restricted == want, "%s, the handler restricts all: %d handles restricted, want %d", what, restricted,
              want);
        break;
    }
    default:
        break;
    }
    /* Everything still open works, and closes; nothing leaks. */
    if (other) {
        CHECK_OK(xendevicemodel_set_isa_irq_level(other, DOM, 1, 1));
        CHECK_OK(xendevicemodel_close(other));
    }
    if (!closing) {
        CHECK_OK(xendevicemodel_set_isa_irq_level(victim, DOM, 1, 1));
        CHECK_OK(xendevicemodel_close(victim));
    }
    CHECK(t_count_fds() == fds0, "%s, the handler %s: descriptors %d -> %d", what, act, fds0, t_count_fds());
    fflush(stderr);
    dup2(keep, 2);
    if (t_failed && log) {
        char line[512];
        rewind(log);
        while (fgets(line, sizeof(line), log))
            fputs(line, stderr);
    }
}

/*
 * A fork inside a call (from its logger callback, here the thread's first
 * call, which pins the handle with a shared count): in the child the call
 * goes on, and a close of the handle from another thread must wait for it
 * (the child counts the forking thread's own call again), not free the
 * handle under it.
 */
static xendevicemodel_handle *logged;
static atomic_int closer_done;
static int closer_rc;
static void *closer(void *a)
{
    (void)a;
    closer_rc = xendevicemodel_close(logged);
    atomic_store(&closer_done, 1);
    return NULL;
}
static int close_began(void *a)
{
    (void)a;
    errno = 0;
    return xendevicemodel_set_isa_irq_level(logged, DOM, 1, 1) == -1 && errno == EBADF;
}
/* -1 before the fork; the parent 0; the child 2 while in the callback, then
 * 1 if the closer waited for the call, 3 if not. */
static int forked_in_call = -1;
static pthread_t closer_thread;
static void forking_vmessage(xentoollog_logger *l, xentoollog_level level, int errnoval, const char *context,
                             const char *fmt, va_list al)
{
    (void)l, (void)level, (void)errnoval, (void)context, (void)fmt, (void)al;
    if (forked_in_call != -1)
        return;
    fflush(NULL);
    if (fork() != 0) {
        forked_in_call = 0; /* the parent: nothing more */
        return;
    }
    forked_in_call = 2; /* the child: no more forks from here */
    pthread_create(&closer_thread, NULL, closer, NULL);
    /* The close has begun once calls on the handle are refused; it must
     * still be waiting for this call then. */
    int began = t_wait(close_began, NULL);
    forked_in_call = began && !atomic_load(&closer_done) ? 1 : 3;
}
static void fork_inside_a_call(void)
{
    xentoollog_logger lg = {.vmessage = forking_vmessage};
    logged = xendevicemodel_open(&lg, 0);
    fp_fail_next(-1, EINVAL, 1); /* the failure is logged, inside the call */
    int rc = xendevicemodel_set_isa_irq_level(logged, DOM, 1, 1);
    if (forked_in_call == 1) { /* the child, after the call */
        pthread_join(closer_thread, NULL);
        _exit(rc == -1 && closer_rc == 0 ? 0 : 1);
    }
    if (forked_in_call == -1 || forked_in_call == 0) {
        int status = -1;
        if (forked_in_call == 0)
            wait(&status);
        CHECK(forked_in_call == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "a fork inside a call: in the child, a close from another thread did not wait for the call "
              "(status %#x)", status);
        CHECK_OK(xendevicemodel_close(logged));
        return;
    }
    _exit(2); /* the child, whose closer did not wait */
}

/* ---- the program ---- */
static atomic_long forks;
static atomic_int stopping; /* the loop is over: no more alarms */
static void forking_alarm(int sig)
{
    (void)sig;
    if (atomic_load(&stopping))
        return;
    int saved = errno;
    pid_t pid = fork();
    if (pid == 0)
        _exit(0);
    if (pid > 0) {
        while (waitpid(pid, NULL, 0) == -1 && errno == EINTR)
            ;
        atomic_fetch_add(&forks, 1);
    }
    /* The next alarm 1 ms after this fork, not after the last one: where a
     * fork takes longer than 1 ms (valgrind), the loop still goes on. */
    struct itimerval next = {.it_value = {0, 1000}};
    setitimer(ITIMER_REAL, &next, NULL);
    errno = saved;
}

static void open_close_loop(void)
{
    const char *v = getenv("SIGNAL_LOOP_MS");
    long ms = v ? atol(v) : 2000;
    struct sigaction sa = {.sa_handler = forking_alarm, .sa_flags = SA_RESTART};
    sigaction(SIGALRM, &sa, NULL);
    struct itimerval it = {.it_value = {0, 1000}};
    setitimer(ITIMER_REAL, &it, NULL);
    long cycles = 0, failed = 0, end = t_now_ms() + ms;
    while (t_now_ms() < end) {
        xendevicemodel_handle *h = xendevicemodel_open(NULL, 0);
        failed += h == NULL || xendevicemodel_close(h) != 0;
        cycles++;
    }
    struct itimerval off = {{0, 0}, {0, 0}};
    /* An alarm already due may still come (valgrind delivers signals
     * late): it finds the handler, which then does nothing. */
    atomic_store(&stopping, 1);
    setitimer(ITIMER_REAL, &off, NULL);
    printf("signals: %s, open/close with SIGALRM forking from its handler: %ld cycles and %ld forks in %ld ms\n",
           xen_lib ? "Xen's library" : "ours", cycles, atomic_load(&forks), ms);
    CHECK(failed == 0, "%ld of %ld open/close cycles failed", failed, cycles);
    CHECK(atomic_load(&forks) > 0 && cycles > 0, "%ld forks, %ld cycles", atomic_load(&forks), cycles);
}

/*
 * Under valgrind (some 0.7 s per scenario) only one entry point of each
 * kind: open, a call with one buffer, one with two, restrict, close.
 */
static int skipped(int e)
{
    const char *p = getenv("LD_PRELOAD");
    if (!p || !strstr(p, "vgpreload") || e == -1)
        return 0;
    const char *name = CALLS[e].name;
    return strcmp(name, "set_isa_irq_level") && strcmp(name, "modified_memory_bulk") && strcmp(name, "restrict") &&
           !CALLS[e].closes;
}

int main(int argc, char **argv)
{
    xen_lib = argc > 1 && strcmp(argv[1], "xen") == 0;
    const char *c = getenv("SIGNAL_CEILING_S");
    if (c)
        scenario_ceiling_s = atoi(c);
    int hung = 0, bad = 0, n = 0;
    for (entry = -1; entry < NCALLS; entry++) {
        for (action = 0; action < NACTIONS; action++) {
            if (skipped(entry))
                continue;
            if (xen_lib && action == A_FORK && entry != -1 && CALLS[entry].closes)
                continue; /* Xen's close frees the handle before close(): nothing of it is left to test */
            n++;
            int f = t_run_child(scenario, scenario_ceiling_s, T_GROUP);
            hung += f == 255;
            bad += f != 0;
            CHECK(f == 0, "%s interrupted by a handler that %s: %d checks failed (255: hung, 254: crashed)",
                  entry == -1 ? "open" : CALLS[entry].name, action_names[action], f);
        }
    }
    int entries = 0;
    for (int e = -1; e < NCALLS; e++)
        entries += !skipped(e);
    printf("signals: %s: %d entry points x %d handler actions: %d scenarios, %d failed, %d of them hung\n",
           xen_lib ? "Xen's library" : "ours", entries, NACTIONS, n, bad, hung);
    if (!xen_lib) {
        int g = t_run_child(fork_inside_a_call, scenario_ceiling_s, T_GROUP);
        CHECK(g == 0, "a fork inside a call: %d checks failed (255: hung, 254: crashed)", g);
    }
    int f = t_run_child(open_close_loop, scenario_ceiling_s, T_GROUP);
    CHECK(f == 0, "the open/close loop with a forking SIGALRM handler: %d checks failed (255: hung, 254: crashed)", f);
    return t_done(xen_lib ? "signals (the Xen library)" : "signals");
}
