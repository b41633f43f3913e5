/*
 * The library loaded and unloaded as plugin hosts and language bindings do:
 * 100 times, dlopen() it, open a handle, make calls from 4 threads, close the
 * handle, dlclose() it, and only then let the threads exit (their exit runs
 * whatever thread destructors the library left). Then fork(), and in the
 * child load and use it once more. No crash, no descriptor left, and
 * /proc/self/maps shows whether the library is still mapped:
 *
 *   unload LIBRARY stays|unmapped
 *
 * ours stays mapped on purpose (linked -z nodelete, see src/process.rs);
 * Xen's library is unmapped. Runs under the privcmd test double.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

#define ROUNDS 100
#define THREADS 4
#define DOM 5

typedef void *(*open_fn)(void *, unsigned);
typedef int (*close_fn)(void *);
typedef int (*isa_fn)(void *, uint16_t, uint8_t, unsigned);

static isa_fn isa;
static void *handle;
static pthread_barrier_t called, unloaded;
static int failures;

/* Lines of /proc/self/maps that map `path` (by its real file name). */
static int mappings(const char *path)
{
    char real[4096], line[8192];
    if (!realpath(path, real))
        return -1;
    FILE *f = fopen("/proc/self/maps", "r");
    int n = 0;
    while (f && fgets(line, sizeof(line), f))
        n += strstr(line, real) != NULL;
    if (f)
        fclose(f);
    return n;
}

static void *worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 3; i++)
        __atomic_add_fetch(&failures, isa(handle, DOM, 4, i & 1) != 0, __ATOMIC_RELAXED);
    pthread_barrier_wait(&called);
    pthread_barrier_wait(&unloaded); /* exit only after dlclose() */
    return NULL;
}

/* One round; returns 0 if every step worked. */
static int round_trip(const char *path)
{
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    open_fn open_ = (open_fn)dlsym(lib, "xendevicemodel_open");
    close_fn close_ = (close_fn)dlsym(lib, "xendevicemodel_close");
    isa = (isa_fn)dlsym(lib, "xendevicemodel_set_isa_irq_level");
    if (!open_ || !close_ || !isa)
        return 1;
    handle = open_(NULL, 0);
    if (!handle)
        return 1;
    pthread_t t[THREADS];
    pthread_barrier_init(&called, NULL, THREADS + 1);
    pthread_barrier_init(&unloaded, NULL, THREADS + 1);
    for (int i = 0; i < THREADS; i++)
        pthread_create(&t[i], NULL, worker, NULL);
    pthread_barrier_wait(&called);
    int bad = close_(handle) != 0;
    bad |= dlclose(lib) != 0;
    pthread_barrier_wait(&unloaded);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&called);
    pthread_barrier_destroy(&unloaded);
    return bad;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    const char *path = argv[1];
    int stays = !strcmp(argv[2], "stays");
    alarm(T_CEILING_S); /* a hang becomes a failure */
    int fds = t_count_fds();
    int bad = 0;
    for (int i = 0; i < ROUNDS; i++)
        bad += round_trip(path);
    CHECK(bad == 0, "%d of %d load/use/close/unload rounds failed", bad, ROUNDS);
    CHECK(failures == 0, "%d calls from threads failed", failures);
    CHECK(t_count_fds() == fds, "descriptors %d -> %d after %d rounds", fds, t_count_fds(), ROUNDS);
    int maps = mappings(path);
    if (stays)
        CHECK(maps > 0, "the library was unmapped, but is meant to stay (-z nodelete)");
    else
        CHECK(maps == 0, "the library is still mapped (%d lines of /proc/self/maps)", maps);
    /* Every round loaded the same instance, or a fresh one that was unmapped:
     * never 100 copies. */
    CHECK(maps <= 8, "%d mappings: the library was loaded again and again", maps);

    /* fork(): a child loads and uses it again. */
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int r = round_trip(path);
        _exit(r || failures);
    }
    int status = -1;
    CHECK(t_reap(pid, T_CEILING_S, &status) && WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child could not load and use the library (status %#x)",
          status);
    printf("unload: %d rounds of dlopen, calls from %d threads, close, dlclose, thread exit; then fork: %s\n", ROUNDS,
           THREADS, stays ? "the library stays mapped" : "the library was unmapped");
    return t_done("unload");
}
