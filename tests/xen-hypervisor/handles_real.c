/*
 * The handle rules on a real hypervisor, where privcmd's restriction really
 * belongs to the open file that parent and child share. Domain T (argv[1])
 * exists; domain 999 does not, so a call for it answers ESRCH from Xen on an
 * unrestricted file and EPERM from privcmd on a file restricted to T.
 *
 * With Xen's library (argv[2] == "xen") the expectations that Xen's library
 * leaves undefined are reported, not asserted: it lets the child restrict the
 * parent's file, which is the point of the comparison.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xendevicemodel.h>
#include <xentoolcore.h>

#include "check.h"

static domid_t T;
static int xen;
static xendevicemodel_handle *shared;
static atomic_long ok_calls, ebadf_calls, other_calls;

static void *worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 300; i++) {
        unsigned v;
        errno = 0;
        int rc = xendevicemodel_nr_vcpus(shared, T, &v);
        atomic_fetch_add(rc == 0 && v == 2 ? &ok_calls : errno == EBADF ? &ebadf_calls : &other_calls, 1);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    T = argc > 1 ? atoi(argv[1]) : 5;
    xen = argc > 2 && !strcmp(argv[2], "xen");
    unsigned v = 0;
    xendevicemodel_handle *h = xendevicemodel_open(NULL, 0);
    CHECK(h != NULL, "open: %s", strerror(errno));
    CHECK_OK(xendevicemodel_nr_vcpus(h, T, &v));
    CHECK(v == 2, "nr_vcpus %u, want 2", v);
    CHECK_FAILS(xendevicemodel_nr_vcpus(h, 999, &v), ESRCH);
    CHECK_FAILS(xendevicemodel_nr_vcpus(h, 0, &v), EPERM);

    /* fork: the child restricts everything it has, then exits. */
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int bad = 0;
        errno = 0;
        int rc = xendevicemodel_nr_vcpus(h, T, &v);
        printf("child: call on the inherited handle: rc %d errno %s\n", rc, rc ? strerrorname_np(errno) : "-");
        bad += !xen && !(rc == -1 && errno == EBADF);
        xendevicemodel_handle *own = xendevicemodel_open(NULL, 0);
        rc = xentoolcore_restrict_all(T);
        printf("child: xentoolcore_restrict_all: rc %d errno %s\n", rc, rc ? strerrorname_np(errno) : "-");
        bad += rc != 0;
        rc = xendevicemodel_nr_vcpus(own, 999, &v);
        printf("child: own handle, call for another domain: rc %d errno %s\n", rc, rc ? strerrorname_np(errno) : "-");
        bad += !(rc == -1 && errno == EPERM); /* the child's own handle is restricted */
        bad += xendevicemodel_close(own) != 0;
        if (!xen) {
            rc = xendevicemodel_close(h);
            printf("child: close of the inherited handle: rc %d\n", rc);
            bad += rc != 0;
        }
        fflush(NULL);
        _exit(bad);
    }
    int status = -1;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child: %d checks failed", WEXITSTATUS(status));
    errno = 0;
    int rc = xendevicemodel_nr_vcpus(h, 999, &v);
    printf("parent after the child's restrict_all: call for another domain: rc %d errno %s\n", rc,
           rc ? strerrorname_np(errno) : "-");
    if (!xen)
        CHECK(rc == -1 && errno == ESRCH, "the child restricted the parent's file (errno %s)", strerrorname_np(errno));
    CHECK_OK(xendevicemodel_nr_vcpus(h, T, &v));

    /* restrict, then restrict_all in this process. */
    xendevicemodel_handle *r = xendevicemodel_open(NULL, 0);
    CHECK_OK(xendevicemodel_restrict(r, T));
    CHECK_OK(xendevicemodel_restrict(r, T));
    CHECK_FAILS(xendevicemodel_restrict(r, T + 1), EINVAL);
    CHECK_FAILS(xendevicemodel_nr_vcpus(r, 999, &v), EPERM);
    CHECK_OK(xendevicemodel_nr_vcpus(r, T, &v));
    CHECK_OK(xendevicemodel_close(r));

    /* Threads on one handle, which is closed under them at the end. */
    shared = xendevicemodel_open(NULL, 0);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, worker, NULL);
    usleep(1000);
    if (!xen) /* with Xen's library this is a use after free */
        CHECK_OK(xendevicemodel_close(shared));
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    if (xen)
        xendevicemodel_close(shared);
    printf("threads: %ld ok, %ld EBADF, %ld other\n", atomic_load(&ok_calls), atomic_load(&ebadf_calls),
           atomic_load(&other_calls));
    CHECK(atomic_load(&other_calls) == 0, "%ld calls failed otherwise", atomic_load(&other_calls));

    /* A closed handle. */
    CHECK_OK(xendevicemodel_close(h));
    if (!xen)
        CHECK_FAILS(xendevicemodel_nr_vcpus(h, T, &v), EBADF);
    return t_done(xen ? "handles-real(xen)" : "handles-real");
}
