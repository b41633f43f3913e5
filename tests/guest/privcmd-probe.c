/*
 * Proves from dom0 that a device model's privcmd handles are restricted.
 *
 *   privcmd-probe PID TARGET OTHER
 *
 * For every descriptor of process PID that is /dev/xen/privcmd, it takes a
 * copy of that very open file (pidfd_getfd: a restriction belongs to the open
 * file, so the copy is exactly as restricted as QEMU's own) and issues:
 * a dm_op (nr_vcpus) for TARGET, which must be served; a dm_op for OTHER, an
 * existing domain, which a restricted file refuses with EPERM; and an
 * arbitrary hypercall (xen_version), which a restricted file refuses with
 * EPERM. As a control, a freshly opened privcmd file must serve all three.
 * Exit status 0 only if PID holds at least one privcmd file and all of them
 * are restricted to TARGET.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <xen/xen.h>
#include <xen/hvm/dm_op.h>
#include <xen/version.h>

/* Linux's privcmd interface (include/uapi/xen/privcmd.h). */
struct pc_dm_op_buf { void *uptr; size_t size; };
struct pc_dm_op { domid_t dom; uint16_t num; const struct pc_dm_op_buf *ubufs; };
struct pc_hypercall { uint64_t op, arg[5]; };
#define PC_IOCTL_HYPERCALL _IOC(_IOC_NONE, 'P', 0, sizeof(struct pc_hypercall))
#define PC_IOCTL_DM_OP _IOC(_IOC_NONE, 'P', 5, sizeof(struct pc_dm_op))

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

/* rc of nr_vcpus through fd, errno on failure; *vcpus the answer. */
static int nr_vcpus(int fd, domid_t dom, unsigned *vcpus)
{
    struct xen_dm_op op;
    memset(&op, 0, sizeof(op));
    op.op = XEN_DMOP_nr_vcpus;
    struct pc_dm_op_buf buf = { &op, sizeof(op) };
    struct pc_dm_op arg = { dom, 1, &buf };
    int rc = ioctl(fd, PC_IOCTL_DM_OP, &arg);
    *vcpus = op.u.nr_vcpus.vcpus;
    return rc < 0 ? -errno : rc;
}

static int xen_version(int fd)
{
    struct pc_hypercall h = { __HYPERVISOR_xen_version, { XENVER_version, 0, 0, 0, 0 } };
    int rc = ioctl(fd, PC_IOCTL_HYPERCALL, &h);
    return rc < 0 ? -errno : rc;
}

static const char *res(int rc)
{
    static char b[4][32];
    static int i;
    i = (i + 1) % 4;
    if (rc >= 0)
        snprintf(b[i], sizeof(b[i]), "%d", rc);
    else
        snprintf(b[i], sizeof(b[i]), "-1 %s", rc == -EPERM ? "EPERM" : rc == -ESRCH ? "ESRCH" : strerror(-rc));
    return b[i];
}

/* 1: restricted to target; 0: not; prints one line. */
static int probe(const char *what, int fd, domid_t target, domid_t other)
{
    unsigned vt = 0, vo = 0;
    int t = nr_vcpus(fd, target, &vt), o = nr_vcpus(fd, other, &vo), h = xen_version(fd);
    int restricted = t == 0 && o == -EPERM && h == -EPERM;
    printf("%s: nr_vcpus(%u) = %s (%u vcpus), nr_vcpus(%u) = %s, xen_version hypercall = %s: %s\n", what, target,
           res(t), vt, other, res(o), h >= 0 ? "served" : res(h), restricted ? "restricted" : "NOT restricted");
    return restricted;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s PID TARGET OTHER\n", argv[0]);
        return 2;
    }
    pid_t pid = atoi(argv[1]);
    domid_t target = atoi(argv[2]), other = atoi(argv[3]);

    int ctl = open("/dev/xen/privcmd", O_RDWR | O_CLOEXEC);
    if (ctl < 0) {
        perror("open /dev/xen/privcmd");
        return 1;
    }
    unsigned v;
    int c_other = nr_vcpus(ctl, other, &v), c_hyp = xen_version(ctl), c_t = nr_vcpus(ctl, target, &v);
    printf("control (a fresh privcmd file): nr_vcpus(%u) = %s, nr_vcpus(%u) = %s, xen_version = %s\n", target,
           res(c_t), other, res(c_other), c_hyp >= 0 ? "served" : res(c_hyp));
    int control_ok = c_t == 0 && c_other == 0 && c_hyp >= 0;
    close(ctl);

    int pidfd = syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) {
        perror("pidfd_open");
        return 1;
    }
    char dir[64], path[64 + 256], link[256];
    snprintf(dir, sizeof(dir), "/proc/%d/fd", pid);
    DIR *d = opendir(dir);
    if (!d) {
        perror(dir);
        return 1;
    }
    int total = 0, restricted = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        ssize_t n = readlink(path, link, sizeof(link) - 1);
        if (n < 0)
            continue;
        link[n] = 0;
        if (strcmp(link, "/dev/xen/privcmd"))
            continue;
        int fd = syscall(SYS_pidfd_getfd, pidfd, atoi(e->d_name), 0);
        if (fd < 0) {
            fprintf(stderr, "pidfd_getfd %s: %s\n", e->d_name, strerror(errno));
            total++;
            continue;
        }
        char what[300];
        snprintf(what, sizeof(what), "QEMU's fd %s (privcmd)", e->d_name);
        total++;
        restricted += probe(what, fd, target, other);
        close(fd);
    }
    closedir(d);
    printf("privcmd-probe: %d privcmd files in process %d, %d restricted to domain %u, control %s\n", total, pid,
           restricted, target, control_ok ? "unrestricted" : "FAILED");
    return control_ok && total > 0 && restricted == total ? 0 : 1;
}
