/*
 * The call trace (XENDEVICEMODEL_TRACE): its format, line by line; whole
 * lines from concurrent threads; a forked child tracing into the same file
 * under its own pid; the file opened append-only and close-on-exec; bad
 * values (a directory, an unwritable path) giving one warning through the
 * opening handle's logger and no trace; "stderr"; a file size limit that
 * stops the trace instead of killing the process. The variable is read at a
 * process's first open, so every scenario runs in a child forked before the
 * library did anything.
 */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xendevicemodel.h>

#include "check.h"
#include "fakeprivcmd.h"

#define DOM 5
static char path[256];

/* Every line of the trace file, read into a buffer. */
static char text[1 << 20];
static int read_trace(const char *file)
{
    FILE *f = fopen(file, "r");
    size_t n = f ? fread(text, 1, sizeof(text) - 1, f) : 0;
    if (f)
        fclose(f);
    text[n] = 0;
    return (int)n;
}

/* Lines matching the documented format; bad ones are printed. */
static int well_formed(int *lines)
{
    regex_t re;
    regcomp(&re,
            "^[0-9]+\\.[0-9]{6} [0-9]+ [0-9]+ [a-z_]+( [a-z_]+=(-?[0-9]+|0x[0-9a-f]+))* "
            "handle=0x[0-9a-f]+ rc=-?[0-9]+ errno=(0|E[A-Z0-9]+) ns=[0-9]+$",
            REG_EXTENDED | REG_NOSUB);
    int good = 0;
    *lines = 0;
    for (char *l = strtok(text, "\n"); l; l = strtok(NULL, "\n")) {
        (*lines)++;
        if (regexec(&re, l, 0, NULL, 0) == 0)
            good++;
        else
            fprintf(stderr, "malformed trace line: %s\n", l);
    }
    regfree(&re);
    return good;
}

/* Whether some line of the last read trace contains every one of the words. */
static int has_line(const char *a, const char *b, const char *c)
{
    static char copy[sizeof(text)];
    strcpy(copy, text);
    for (char *l = strtok(copy, "\n"); l; l = strtok(NULL, "\n"))
        if (strstr(l, a) && (!b || strstr(l, b)) && (!c || strstr(l, c)))
            return 1;
    return 0;
}

static void quiet_stderr(void)
{
    int null = open("/dev/null", O_WRONLY);
    dup2(null, 2);
    close(null);
}

/* ---- scenarios (each in a fresh child) ---- */

static void format(void)
{
    setenv("XENDEVICEMODEL_TRACE", path, 1);
    xendevicemodel_handle *h = xendevicemodel_open(NULL, 0);
    CHECK(h != NULL, "open");
    ioservid_t id;
    xen_pfn_t gfn;
    evtchn_port_t port;
    unsigned vcpus;
    CHECK_OK(xendevicemodel_create_ioreq_server(h, DOM, 1, &id));
    CHECK_OK(xendevicemodel_get_ioreq_server_info(h, DOM, id, &gfn, NULL, &port));
    CHECK_OK(xendevicemodel_nr_vcpus(h, DOM, &vcpus));
    CHECK_OK(xendevicemodel_map_io_range_to_ioreq_server(h, DOM, id, 1, 0xfe000000, 0xfe000fff));
    CHECK_FAILS(xendevicemodel_set_isa_irq_level(h, 0x7ff0, 4, 1), ESRCH);
    CHECK_FAILS(xendevicemodel_create_ioreq_server(h, DOM, 1, NULL), EINVAL);
    quiet_stderr();
    CHECK_FAILS(xendevicemodel_inject_msi((xendevicemodel_handle *)&id, DOM, 0xfee00000, 1), EBADF);
    CHECK_OK(xendevicemodel_close(h));
    CHECK_FAILS(xendevicemodel_set_isa_irq_level(h, DOM, 4, 1), EBADF);
    CHECK(read_trace(path) > 0, "nothing traced");
    char pid[32];
    snprintf(pid, sizeof(pid), " %d %d ", getpid(), (int)syscall(SYS_gettid));
    CHECK(has_line(pid, " open logger=0x0 open_flags=0 handle=0x", " rc=0 errno=0 "), "the open");
    char want[64];
    snprintf(want, sizeof(want), " dom=5 handle_bufioreq=1 id=%u ", id);
    CHECK(has_line(" create_ioreq_server dom=5 ", want, " rc=0 errno=0 "), "create_ioreq_server with its id");
    snprintf(want, sizeof(want), " ioreq_gfn=%#lx bufioreq_gfn=0x0 bufioreq_port=%u ", (unsigned long)gfn, port);
    CHECK(has_line(" get_ioreq_server_info ", want, " rc=0 "), "get_ioreq_server_info with its out-values (%s)", want);
    CHECK(has_line(" nr_vcpus dom=5 vcpus=4 ", " rc=0 ", NULL), "nr_vcpus with its count");
    CHECK(has_line(" map_io_range_to_ioreq_server dom=5 id=", " is_mmio=1 start=0xfe000000 end=0xfe000fff ", " rc=0 "),
          "map_io_range with its decoded range");
    CHECK(has_line(" set_isa_irq_level dom=32752 irq=4 level=1 ", " rc=-1 errno=ESRCH ", NULL), "a failure, by name");
    CHECK(has_line(" create_ioreq_server dom=5 handle_bufioreq=1 id=0x0 ", " rc=-1 errno=EINVAL ", NULL), "a NULL out-pointer");
    CHECK(has_line(" inject_msi dom=5 msi_addr=0xfee00000 msi_data=1 ", " rc=-1 errno=EBADF ", NULL), "a bogus handle");
    CHECK(has_line(" close handle=0x", " rc=0 errno=0 ", NULL), "the close");
    CHECK(has_line(" set_isa_irq_level dom=5 ", " rc=-1 errno=EBADF ", NULL), "a closed handle");
    read_trace(path);
    int lines, good = well_formed(&lines);
    CHECK(lines == 10 && good == lines, "%d of %d lines well formed, want 10 of 10", good, lines);
    /* Append-only and close-on-exec. */
    int found = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    char link[512], target[512];
    while (d && (e = readdir(d))) {
        snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(link, target, sizeof(target) - 1);
        if (n > 0 && (target[n] = 0, !strcmp(target, path))) {
            int fd = atoi(e->d_name);
            found++;
            CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC, "the trace file is not close-on-exec");
            CHECK(fcntl(fd, F_GETFL) & O_APPEND, "the trace file is not append-only");
        }
    }
    if (d)
        closedir(d);
    CHECK(found == 1, "%d descriptors on the trace file, want 1", found);
}

static xendevicemodel_handle *th;
static void *calls(void *a)
{
    (void)a;
    for (int i = 0; i < 500; i++)
        xendevicemodel_set_isa_irq_level(th, DOM, 4, i & 1);
    return NULL;
}

static void threads_and_fork(void)
{
    setenv("XENDEVICEMODEL_TRACE", path, 1);
    th = xendevicemodel_open(NULL, 0);
    pthread_t t[8];
    for (int i = 0; i < 8; i++)
        pthread_create(&t[i], NULL, calls, NULL);
    for (int i = 0; i < 8; i++)
        pthread_join(t[i], NULL);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        xendevicemodel_handle *own = xendevicemodel_open(NULL, 0);
        for (int i = 0; i < 10; i++)
            xendevicemodel_inject_msi(own, DOM, 0xfee00000, i);
        xendevicemodel_close(own);
        _exit(0);
    }
    int status = -1;
    CHECK(t_reap(pid, T_CEILING_S, &status) && WIFEXITED(status) && WEXITSTATUS(status) == 0, "child: status %#x",
          status);
    CHECK_OK(xendevicemodel_close(th));
    read_trace(path);
    char child[32];
    snprintf(child, sizeof(child), " %d ", pid);
    int from_child = 0, irq = 0;
    static char copy[sizeof(text)];
    strcpy(copy, text);
    for (char *l = strtok(copy, "\n"); l; l = strtok(NULL, "\n")) {
        from_child += strstr(l, child) != NULL && strstr(l, child) < l + 24;
        irq += strstr(l, " set_isa_irq_level dom=5 irq=4 ") != NULL;
    }
    int lines, good = well_formed(&lines);
    CHECK(lines == 1 + 4000 + 12 + 1 && good == lines, "%d of %d lines well formed, want %d", good, lines, 4014);
    CHECK(irq == 4000, "%d lines of the threads' calls, want 4000", irq);
    CHECK(from_child == 12, "%d lines under the child's pid, want 12 (open, 10 calls, close)", from_child);
}

static int warnings;
static void cap_vmessage2(xentoollog_logger *l, xentoollog_level level, int errnoval, const char *context,
                          const char *fmt, va_list al)
{
    (void)l, (void)errnoval, (void)context, (void)fmt, (void)al;
    warnings += level == XTL_WARN;
}

static void bad_value(const char *value)
{
    setenv("XENDEVICEMODEL_TRACE", value, 1);
    xentoollog_logger cap = { .vmessage = cap_vmessage2 };
    xendevicemodel_handle *h = xendevicemodel_open(&cap, 0);
    CHECK(h != NULL, "open with XENDEVICEMODEL_TRACE=%s failed", value);
    CHECK(warnings == 1, "XENDEVICEMODEL_TRACE=%s: %d warnings, want 1", value, warnings);
    CHECK_OK(xendevicemodel_set_isa_irq_level(h, DOM, 4, 1));
    xendevicemodel_handle *h2 = xendevicemodel_open(&cap, 0);
    CHECK(warnings == 1, "a second open warned again (%d)", warnings);
    CHECK_OK(xendevicemodel_close(h2));
    CHECK_OK(xendevicemodel_close(h));
}
static void directory(void) { bad_value("/tmp"); }
static void unwritable(void) { bad_value("/nonexistent/dir/trace"); }
static void empty(void) { bad_value(""); }

static void to_stderr(void)
{
    int p[2];
    if (pipe(p) != 0)
        return;
    dup2(p[1], 2);
    close(p[1]);
    setenv("XENDEVICEMODEL_TRACE", "stderr", 1);
    xendevicemodel_handle *h = xendevicemodel_open(NULL, 0);
    CHECK_OK(xendevicemodel_set_isa_irq_level(h, DOM, 4, 1));
    CHECK_OK(xendevicemodel_close(h));
    close(2);
    ssize_t n = read(p[0], text, sizeof(text) - 1);
    text[n > 0 ? n : 0] = 0;
    int lines, good = well_formed(&lines);
    CHECK(lines == 3 && good == 3, "stderr: %d of %d lines well formed, want 3", good, lines);
}

/* A process with a file size limit (libxl gives a deprivileged QEMU 256 KiB):
 * a write past it would kill the process (SIGXFSZ). The trace stops below
 * it instead, says so once on stderr, and every call still works. */
static void file_size_limit(void)
{
    enum { LIMIT = 128 << 10, CALLS = 3000 };
    char err[300];
    snprintf(err, sizeof(err), "%s.stderr", path);
    int fd = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    dup2(fd, 2);
    close(fd);
    struct rlimit r;
    getrlimit(RLIMIT_FSIZE, &r);
    r.rlim_cur = LIMIT;
    CHECK(setrlimit(RLIMIT_FSIZE, &r) == 0, "setrlimit: %s", strerror(errno));
    setenv("XENDEVICEMODEL_TRACE", path, 1);
    xendevicemodel_handle *h = xendevicemodel_open(NULL, 0);
    int failed = 0;
    for (int i = 0; i < CALLS; i++)
        failed += xendevicemodel_set_isa_irq_level(h, DOM, 4, i & 1) != 0;
    CHECK(failed == 0, "%d of %d calls failed once the trace stopped", failed, CALLS);
    CHECK_OK(xendevicemodel_close(h));
    int size = read_trace(path), lines, good = well_formed(&lines);
    CHECK(size > 0 && size <= LIMIT, "trace file of %d bytes, limit %d", size, LIMIT);
    CHECK(lines > 100 && lines < CALLS, "%d lines traced of %d calls: want the trace to stop, not to be empty", lines,
          CALLS);
    CHECK(good == lines, "%d of %d lines well formed (a line cut at the limit?)", good, lines);
    read_trace(err);
    char *first = strstr(text, "RLIMIT_FSIZE");
    CHECK(first && !strstr(first + 1, "RLIMIT_FSIZE"), "stderr, want one note that tracing stopped: %s", text);
    unlink(err);
}

int main(void)
{
    snprintf(path, sizeof(path), "/tmp/xdm-trace-test.%d", getpid());
    static const struct { const char *name; void (*run)(void); } scenarios[] = {
        { "format, decoded arguments and out-values, errors", format },
        { "8 threads and a forked child into one file", threads_and_fork },
        { "a directory", directory },
        { "an unwritable path", unwritable },
        { "an empty value", empty },
        { "stderr", to_stderr },
        { "a file size limit (RLIMIT_FSIZE): stops, no SIGXFSZ", file_size_limit },
    };
    for (unsigned i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
        unlink(path); /* each scenario starts with no trace file */
        int f = t_in_child(scenarios[i].run);
        CHECK(f == 0, "trace, %s: %d checks failed (255: hung, 254: crashed or ended by its alarm)", scenarios[i].name, f);
    }
    unlink(path);
    return t_done("trace");
}
