/*
 * A minimal test framework for the C harness: counted checks, a capturing
 * xentoollog logger, descriptors counted, scenarios in a fresh child, and a
 * closing "suite: N passed, M failed" line.
 */
#ifndef XDM_CHECK_H
#define XDM_CHECK_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xentoollog.h>

static int t_passed, t_failed;

#define CHECK(cond, ...)                                                   \
    do {                                                                   \
        if (cond) {                                                        \
            t_passed++;                                                    \
        } else {                                                           \
            t_failed++;                                                    \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                  \
            fputc('\n', stderr);                                           \
        }                                                                  \
    } while (0)

/* A call that must fail with `err`. errno is read right after the call. */
#define CHECK_FAILS(call, err)                                             \
    do {                                                                   \
        errno = 0;                                                         \
        int rc_ = (call);                                                  \
        int e_ = errno;                                                    \
        CHECK(rc_ == -1 && e_ == (err), "%s: rc %d errno %d (%s), want -1 errno %d (%s)", \
              #call, rc_, e_, strerror(e_), (err), strerror(err));         \
    } while (0)

#define CHECK_OK(call)                                                     \
    do {                                                                   \
        errno = 0;                                                         \
        int rc_ = (call);                                                  \
        int e_ = errno;                                                    \
        CHECK(rc_ == 0, "%s: rc %d errno %d (%s)", #call, rc_, e_, strerror(e_)); \
    } while (0)

/*
 * Bounded waits. A test waits for an event (a thread parked, a child
 * exited), never for a fixed time, and only a hang reaches the ceiling: it
 * is generous (a loaded machine, valgrind, qemu-user take many times the
 * usual time), and the longest wait is reported, so a run shows how close
 * it came.
 */
#define T_CEILING_S 180
static long t_longest_ms;

static inline long t_now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000L + t.tv_nsec / 1000000;
}

/* Waits until cond(arg) holds: 1, or 0 after T_CEILING_S (a hang). */
static inline int t_wait(int (*cond)(void *), void *arg)
{
    long start = t_now_ms(), end = start + T_CEILING_S * 1000L;
    while (!cond(arg)) {
        if (t_now_ms() > end)
            return 0;
        usleep(200);
    }
    if (t_now_ms() - start > t_longest_ms)
        t_longest_ms = t_now_ms() - start;
    return 1;
}

/*
 * Waits for child `pid` to end, at most `seconds`: the parent's watchdog,
 * for a child whose own alarm cannot end it (a scenario that takes SIGALRM
 * for itself, blocks it, or hangs with signals masked). Past the ceiling the
 * child (its process group, if it leads one) is killed and the hang
 * reported. Returns 1 with the child's wait status in *status, or 0 if the
 * watchdog killed it.
 */
static inline int t_reap(pid_t pid, int seconds, int *status)
{
    long start = t_now_ms(), end = start + seconds * 1000L;
    pid_t r;
    while ((r = waitpid(pid, status, WNOHANG)) == 0 || (r == -1 && errno == EINTR)) {
        if (t_now_ms() > end) {
            kill(getpgid(pid) == pid ? -pid : pid, SIGKILL);
            while (waitpid(pid, status, 0) == -1 && errno == EINTR)
                ;
            fprintf(stderr, "FAIL: child %d still running after %d s: killed\n", (int)pid, seconds);
            return 0;
        }
        usleep(1000);
    }
    if (r != pid) {
        fprintf(stderr, "FAIL: waitpid(%d): %s\n", (int)pid, strerror(errno));
        return 0;
    }
    return 1;
}

/* Open file descriptors of this process. */
static inline int t_count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n - 1; /* the directory stream's own descriptor */
}

/* Invalid handles log to stderr: stderr to /dev/null around a noisy part, to
 * keep the test output readable. Returns the saved descriptor for
 * t_restore_stderr. */
static inline int t_quiet_stderr(void)
{
    int saved = dup(2), null = open("/dev/null", O_WRONLY);
    fflush(stderr);
    dup2(null, 2);
    close(null);
    return saved;
}

static inline void t_restore_stderr(int saved)
{
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
}

/*
 * Runs `scenario` in a forked child and returns its failed checks (its
 * passed ones are added to ours): 255 if it was still running after
 * `seconds` (then killed, with its process group when it has one), 254 if
 * it died of a signal (named on stderr). Flags: T_ALARM, the child's own
 * timer ends a hang inside it too (for scenarios that do not use the timer);
 * T_GROUP, the child leads a process group of its own, so that what it
 * forked is killed with it.
 */
enum { T_ALARM = 1, T_GROUP = 2 };
static inline int t_run_child(void (*scenario)(void), int seconds, int flags)
{
    int p[2];
    if (pipe(p) != 0)
        return 255;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (flags & T_GROUP)
            setpgid(0, 0);
        if (flags & T_ALARM)
            alarm(seconds);
        t_passed = t_failed = 0;
        scenario();
        if (write(p[1], &t_passed, sizeof(t_passed)) != sizeof(t_passed))
            t_failed++;
        fflush(NULL);
        _exit(t_failed > 250 ? 250 : t_failed);
    }
    close(p[1]);
    if (flags & T_GROUP)
        setpgid(pid, pid); /* also here: the child may not have run yet */
    int status = -1, passed = 0;
    if (!t_reap(pid, (flags & T_ALARM) ? seconds + 30 : seconds, &status)) {
        close(p[0]);
        return 255;
    }
    if (read(p[0], &passed, sizeof(passed)) == sizeof(passed))
        t_passed += passed;
    close(p[0]);
    if (WIFSIGNALED(status))
        fprintf(stderr, "a scenario died of signal %d (%s)\n", WTERMSIG(status), strsignal(WTERMSIG(status)));
    return WIFEXITED(status) ? WEXITSTATUS(status) : 254;
}

/*
 * t_run_child for scenarios that need a process in which the library has
 * done nothing yet: its alarm ends it after T_CEILING_S (254), the parent's
 * watchdog 30 s later (255).
 */
static inline int t_in_child(void (*scenario)(void))
{
    return t_run_child(scenario, T_CEILING_S, T_ALARM); /* the alarm: a hang becomes a failure */
}

static inline int t_done(const char *suite)
{
    if (t_longest_ms > 0)
        printf("%s: the longest wait for an event took %ld ms (ceiling %d s)\n", suite, t_longest_ms, T_CEILING_S);
    printf("%s: %d passed, %d failed\n", suite, t_passed, t_failed);
    fflush(stdout);
    return t_failed ? 1 : 0;
}

/* A logger that remembers what it was told. */
struct cap_logger {
    xentoollog_logger base;
    int count;  /* messages of any level */
    int errors; /* messages at XTL_ERROR or above */
    int level, errnoval;
    char context[64];
    char last[512];
};

static inline void cap_vmessage(xentoollog_logger *l, xentoollog_level level, int errnoval,
                         const char *context, const char *fmt, va_list al)
{
    struct cap_logger *c = (struct cap_logger *)l;
    c->count++;
    c->errors += level >= XTL_ERROR;
    c->level = level;
    c->errnoval = errnoval;
    snprintf(c->context, sizeof(c->context), "%s", context ? context : "");
    vsnprintf(c->last, sizeof(c->last), fmt, al);
}

static inline void cap_init(struct cap_logger *c)
{
    memset(c, 0, sizeof(*c));
    c->base.vmessage = cap_vmessage;
}

#endif
