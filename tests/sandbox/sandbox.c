/*
 * The library under QEMU's sandbox policy. Debian's qemu-system-xen is built
 * without seccomp, so this program installs, with its own BPF filter, the
 * equivalent of QEMU's
 *   -sandbox on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny
 * (QEMU's default, obsolete, privileged, spawn and resource-control deny
 * lists and their actions: kill the process, or fail with EPERM / ENOSYS;
 * clone is allowed only with the flags pthread_create uses), then uses every
 * one of the 26 functions, from several threads, and the handle rules, against
 * the privcmd test double (LD_PRELOAD). Killed by the filter, it never prints
 * its last line.
 *
 *   sandbox run ours|xen          the whole test (the handle rules Xen's
 *                                 library leaves undefined only with ours)
 *   sandbox run-deny-membarrier   the same with membarrier(2) also denied:
 *                                 ours must be killed (shows the filter sees
 *                                 the library's own system calls)
 *   sandbox probe CALL            installs the filter, makes CALL (fork,
 *                                 execve, setuid, unshare, mount, setns):
 *                                 must be killed
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/membarrier.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xendevicemodel.h>
#include <xentoolcore.h>
#include <xen/sched.h>

#include "check.h"
#include "fakeprivcmd.h"

#define DOM 7

/* ---- the filter ---- */
#define KILL SECCOMP_RET_KILL_PROCESS      /* QEMU's SCMP_ACT_TRAP, upgraded as QEMU does */
#define KILL_THREAD SECCOMP_RET_KILL_THREAD /* QEMU's rules without an action (execveat, setns, unshare) */
#define EPERM_ (SECCOMP_RET_ERRNO | EPERM)
#define ENOSYS_ (SECCOMP_RET_ERRNO | ENOSYS)

struct rule { long nr; const char *name; unsigned action; };

/* Calls that do not exist on this architecture are left out, as libseccomp does. */
#define R(n, act) { SYS_##n, #n, act }
static const struct rule rules[] = {
    /* QEMU's default set */
    R(reboot, KILL), R(swapon, KILL), R(swapoff, KILL), R(syslog, KILL), R(mount, KILL),
#ifdef SYS_umount
    R(umount, KILL),
#endif
    R(kexec_load, KILL),
#ifdef SYS_afs_syscall
    R(afs_syscall, KILL),
#endif
#ifdef SYS_break
    R(break, KILL),
#endif
#ifdef SYS_ftime
    R(ftime, KILL),
#endif
#ifdef SYS_getpmsg
    R(getpmsg, KILL),
#endif
#ifdef SYS_gtty
    R(gtty, KILL),
#endif
#ifdef SYS_lock
    R(lock, KILL),
#endif
#ifdef SYS_mpx
    R(mpx, KILL),
#endif
#ifdef SYS_prof
    R(prof, KILL),
#endif
#ifdef SYS_profil
    R(profil, KILL),
#endif
#ifdef SYS_putpmsg
    R(putpmsg, KILL),
#endif
#ifdef SYS_security
    R(security, KILL),
#endif
#ifdef SYS_stty
    R(stty, KILL),
#endif
#ifdef SYS_tuxcall
    R(tuxcall, KILL),
#endif
#ifdef SYS_ulimit
    R(ulimit, KILL),
#endif
#ifdef SYS_vserver
    R(vserver, KILL),
#endif
    /* obsolete=deny */
#ifdef SYS_readdir
    R(readdir, KILL),
#endif
#ifdef SYS__sysctl
    R(_sysctl, KILL),
#endif
#ifdef SYS_bdflush
    R(bdflush, KILL),
#endif
#ifdef SYS_create_module
    R(create_module, KILL),
#endif
#ifdef SYS_get_kernel_syms
    R(get_kernel_syms, KILL),
#endif
#ifdef SYS_query_module
    R(query_module, KILL),
#endif
#ifdef SYS_sgetmask
    R(sgetmask, KILL),
#endif
#ifdef SYS_ssetmask
    R(ssetmask, KILL),
#endif
#ifdef SYS_sysfs
    R(sysfs, KILL),
#endif
#ifdef SYS_uselib
    R(uselib, KILL),
#endif
#ifdef SYS_ustat
    R(ustat, KILL),
#endif
    /* elevateprivileges=deny */
    R(setuid, KILL), R(setgid, KILL), R(setpgid, KILL), R(setsid, KILL), R(setreuid, KILL), R(setregid, KILL),
    R(setresuid, KILL), R(setresgid, KILL), R(setfsuid, KILL), R(setfsgid, KILL),
    /* spawn=deny (clone: see below) */
#ifdef SYS_fork
    R(fork, KILL),
#endif
#ifdef SYS_vfork
    R(vfork, KILL),
#endif
    R(execve, KILL), R(clone3, ENOSYS_), R(execveat, KILL_THREAD), R(setns, KILL_THREAD), R(unshare, KILL_THREAD),
    /* resourcecontrol=deny (sched_setscheduler: see below) */
    R(setpriority, EPERM_), R(sched_setparam, EPERM_), R(sched_setaffinity, EPERM_),
};

/* clone is allowed only with every flag pthread_create sets and none of the
 * flags that make a process, a namespace or a traced child (QEMU's rules). */
#define CLONE_REQUIRED (CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD | CLONE_SYSVSEM | \
                        CLONE_SETTLS | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID)
#define CLONE_FORBIDDEN (CLONE_PIDFD | CLONE_PTRACE | CLONE_VFORK | CLONE_PARENT | CLONE_NEWNS | CLONE_UNTRACED | \
                         CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | \
                         CLONE_IO)

#define NR_RULES (sizeof(rules) / sizeof(rules[0]))
#define ARG_LO(n) (offsetof(struct seccomp_data, args[n]))  /* x86_64: little-endian, low half first */
#define ARG_HI(n) (offsetof(struct seccomp_data, args[n]) + 4)

static void install_filter(long extra_kill)
{
    struct sock_filter f[8 + 2 * NR_RULES + 32];
    unsigned n = 0;
#define S(code, k) (f[n++] = (struct sock_filter)BPF_STMT(code, k))
#define J(code, k, jt, jf) (f[n++] = (struct sock_filter)BPF_JUMP(code, k, jt, jf))
    S(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    J(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
    S(BPF_RET | BPF_K, KILL);
    S(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    J(BPF_JMP | BPF_JGE | BPF_K, 0x40000000, 0, 1); /* x32 calls: QEMU's filter kills another ABI too */
    S(BPF_RET | BPF_K, KILL);
    for (unsigned i = 0; i < NR_RULES; i++) {
        J(BPF_JMP | BPF_JEQ | BPF_K, rules[i].nr, 0, 1);
        S(BPF_RET | BPF_K, rules[i].action);
    }
    if (extra_kill >= 0) {
        J(BPF_JMP | BPF_JEQ | BPF_K, extra_kill, 0, 1);
        S(BPF_RET | BPF_K, KILL);
    }
    /* sched_setscheduler: EPERM unless the policy (argument 1) is SCHED_IDLE. */
    J(BPF_JMP | BPF_JEQ | BPF_K, SYS_sched_setscheduler, 0, 6);
    S(BPF_LD | BPF_W | BPF_ABS, ARG_HI(1));
    J(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, 2);
    S(BPF_LD | BPF_W | BPF_ABS, ARG_LO(1));
    J(BPF_JMP | BPF_JEQ | BPF_K, SCHED_IDLE, 1, 0);
    S(BPF_RET | BPF_K, EPERM_);
    S(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    /* clone: the flags (argument 0 on x86_64) decide. */
    J(BPF_JMP | BPF_JEQ | BPF_K, SYS_clone, 0, 5);
    S(BPF_LD | BPF_W | BPF_ABS, ARG_LO(0));
    S(BPF_ALU | BPF_AND | BPF_K, CLONE_REQUIRED | CLONE_FORBIDDEN);
    J(BPF_JMP | BPF_JEQ | BPF_K, CLONE_REQUIRED, 1, 0);
    S(BPF_RET | BPF_K, KILL);
    S(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    S(BPF_RET | BPF_K, SECCOMP_RET_ALLOW); /* (the jump target when nr is not clone) */
#undef S
#undef J
    struct sock_fprog prog = { (unsigned short)n, f };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
        syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &prog)) {
        perror("installing the seccomp filter");
        exit(3);
    }
}

/* ---- the 26 functions ---- */
static void all_calls(xendevicemodel_handle *h)
{
    ioservid_t id = 0;
    xen_pfn_t gfn = 0, bufgfn = 0;
    evtchn_port_t port = 0;
    unsigned vcpus = 0;
    unsigned long bitmap[4] = { 0 };
    struct xen_dm_op_modified_memory_extent ext[2] = { { .nr = 2, .first_pfn = 0x1000 }, { .nr = 1, .first_pfn = 0x3000 } };
    CHECK_OK(xendevicemodel_create_ioreq_server(h, DOM, 1, &id));
    CHECK_OK(xendevicemodel_get_ioreq_server_info(h, DOM, id, &gfn, &bufgfn, &port));
    CHECK_OK(xendevicemodel_map_io_range_to_ioreq_server(h, DOM, id, 0, 0x3f8, 0x3ff));
    CHECK_OK(xendevicemodel_map_io_range_to_ioreq_server(h, DOM, id, 1, 0xfebf0000, 0xfebfffff));
    CHECK_OK(xendevicemodel_unmap_io_range_from_ioreq_server(h, DOM, id, 0, 0x3f8, 0x3ff));
    CHECK_OK(xendevicemodel_map_mem_type_to_ioreq_server(h, DOM, id, HVMMEM_ioreq_server, XEN_DMOP_IOREQ_MEM_ACCESS_WRITE));
    CHECK_OK(xendevicemodel_map_pcidev_to_ioreq_server(h, DOM, id, 0, 0, 3, 0));
    CHECK_OK(xendevicemodel_unmap_pcidev_from_ioreq_server(h, DOM, id, 0, 0, 3, 0));
    CHECK_OK(xendevicemodel_set_ioreq_server_state(h, DOM, id, 1));
    CHECK_OK(xendevicemodel_set_pci_intx_level(h, DOM, 0, 0, 3, 0, 1));
    CHECK_OK(xendevicemodel_set_isa_irq_level(h, DOM, 4, 1));
    CHECK_OK(xendevicemodel_set_irq_level(h, DOM, 32, 1));
    CHECK_OK(xendevicemodel_set_pci_link_route(h, DOM, 0, 5));
    CHECK_OK(xendevicemodel_inject_msi(h, DOM, 0xfee00000, 0x4041));
    CHECK_OK(xendevicemodel_track_dirty_vram(h, DOM, 0xa0, 64, bitmap));
    CHECK_OK(xendevicemodel_modified_memory(h, DOM, 0x1000, 16));
    CHECK_OK(xendevicemodel_modified_memory_bulk(h, DOM, ext, 2));
    CHECK_OK(xendevicemodel_set_mem_type(h, DOM, HVMMEM_ram_ro, 0x2000, 4));
    CHECK_OK(xendevicemodel_inject_event(h, DOM, 0, 14, 3, 0, 0, 0x1000));
    CHECK_OK(xendevicemodel_relocate_memory(h, DOM, 1, 0x4000, 0x5000));
    CHECK_OK(xendevicemodel_pin_memory_cacheattr(h, DOM, 0xa0, 0xbf, XEN_DMOP_MEM_CACHEATTR_UC));
    CHECK_OK(xendevicemodel_nr_vcpus(h, DOM, &vcpus));
    CHECK(vcpus == 4, "nr_vcpus answered %u, the double says 4", vcpus);
    CHECK_OK(xendevicemodel_set_ioreq_server_state(h, DOM, id, 0));
    CHECK_OK(xendevicemodel_destroy_ioreq_server(h, DOM, id));
    CHECK_OK(xendevicemodel_shutdown(h, DOM, SHUTDOWN_reboot));
    /* 23 functions; open, close and restrict make the 26. */
}

/* ---- threads: calls from several threads, which stay alive (each holds
 * the library's per-thread state) while main closes handles. ---- */
#define THREADS 4
static xendevicemodel_handle *shared;
static pthread_barrier_t called, closed;
static int thread_failures;

static void *worker(void *arg)
{
    (void)arg;
    int bad = 0;
    for (int i = 0; i < 200; i++)
        bad += xendevicemodel_set_isa_irq_level(shared, DOM, 1, i & 1) != 0;
    bad += xendevicemodel_inject_msi(shared, DOM, 0xfee00000, 0x30) != 0;
    __atomic_fetch_add(&thread_failures, bad, __ATOMIC_RELAXED);
    pthread_barrier_wait(&called);
    pthread_barrier_wait(&closed);
    return NULL;
}

/* ---- the handle rules ---- */
static int child_checks(xendevicemodel_handle *inherited, int ours)
{
    t_passed = t_failed = 0;
    install_filter(-1);
    if (ours) {
        int saved = dup(2), null = open("/dev/null", 1); /* the refusal logs a line */
        dup2(null, 2);
        CHECK_FAILS(xendevicemodel_set_isa_irq_level(inherited, DOM, 1, 1), EBADF);
        CHECK_FAILS(xendevicemodel_nr_vcpus(inherited, DOM, &(unsigned){0}), EBADF);
        dup2(saved, 2);
        CHECK(xendevicemodel_close(inherited) == 0, "child: close of the inherited handle");
    } else {
        errno = 0;
        int rc = xendevicemodel_set_isa_irq_level(inherited, DOM, 1, 1);
        printf("with Xen's library, a forked child's call on the inherited handle: rc %d errno %d\n", rc, rc ? errno : 0);
    }
    xendevicemodel_handle *own = xendevicemodel_open(NULL, 0);
    CHECK(own != NULL, "child: open under the filter");
    CHECK_OK(xentoolcore_restrict_all(DOM));
    CHECK_OK(xendevicemodel_set_isa_irq_level(own, DOM, 1, 1));
    CHECK_FAILS(xendevicemodel_set_isa_irq_level(own, DOM + 1, 1, 1), EPERM);
    CHECK_OK(xendevicemodel_close(own));
    fflush(NULL);
    return t_failed;
}

static int run(int ours, long extra_kill)
{
    /* A QEMU with spawn=deny cannot fork once sandboxed: the fork rule is
     * checked in a child forked before the filter, which installs it too. */
    xendevicemodel_handle *h = xendevicemodel_open(NULL, 0);
    CHECK(h != NULL, "open");
    CHECK_OK(xendevicemodel_set_isa_irq_level(h, DOM, 1, 1));
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        _exit(child_checks(h, ours));
    int status = -1;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "forked child: status %#x", status);
    CHECK_OK(xendevicemodel_close(h));

    install_filter(extra_kill);
    printf("filter installed: %zu denied calls on this architecture, clone only for threads\n", NR_RULES + 2);
    /* The filter is in force: resource control fails as QEMU's does. */
    CHECK(setpriority(PRIO_PROCESS, 0, 1) == -1 && errno == EPERM, "setpriority: errno %d", errno);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(0, &set);
    CHECK(sched_setaffinity(0, sizeof(set), &set) == -1 && errno == EPERM, "sched_setaffinity: errno %d", errno);
    CHECK(syscall(SYS_clone3, NULL, 0) == -1 && errno == ENOSYS, "clone3: errno %d", errno);

    /* Every function, under the filter. */
    unsigned long before = fp_ioctl_count();
    h = xendevicemodel_open(NULL, 0);
    CHECK(h != NULL, "open under the filter");
    all_calls(h);
    CHECK(fp_ioctl_count() - before >= 24, "only %lu requests reached privcmd", fp_ioctl_count() - before);

    /* Threads (pthread_create: clone3 refused, clone with thread flags). */
    shared = h;
    pthread_barrier_init(&called, NULL, THREADS + 1);
    pthread_barrier_init(&closed, NULL, THREADS + 1);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        CHECK(pthread_create(&t[i], NULL, worker, NULL) == 0, "pthread_create %d", i);
    pthread_barrier_wait(&called);
    unsigned long mb = fp_membarrier_count(MEMBARRIER_CMD_PRIVATE_EXPEDITED);
    /* restrict as QEMU's -xen-domid-restrict does, then close while the
     * threads that called are alive. */
    CHECK_OK(xendevicemodel_restrict(h, DOM));
    CHECK_FAILS(xendevicemodel_set_isa_irq_level(h, DOM + 1, 1, 1), EPERM);
    CHECK_OK(xentoolcore_restrict_all(DOM));
    CHECK_OK(xendevicemodel_close(h));
    if (ours) {
        /* The library's close waited for the other threads with membarrier(2),
         * which QEMU's policy allows. */
        CHECK(fp_membarrier_count(MEMBARRIER_CMD_PRIVATE_EXPEDITED) > mb, "close made no membarrier call");
        int saved = dup(2), null = open("/dev/null", 1);
        dup2(null, 2);
        CHECK_FAILS(xendevicemodel_set_isa_irq_level(h, DOM, 1, 1), EBADF); /* a closed handle */
        dup2(saved, 2);
    }
    pthread_barrier_wait(&closed);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    CHECK(thread_failures == 0, "%d calls failed in threads", thread_failures);
    printf("membarrier(PRIVATE_EXPEDITED) calls: %lu; requests to privcmd: %lu\n",
           fp_membarrier_count(MEMBARRIER_CMD_PRIVATE_EXPEDITED), fp_ioctl_count());
    printf("all 26 functions were called under the filter, from %d threads\n", THREADS + 1);
    printf("sandbox (%s): %d passed, %d failed\n", ours ? "ours" : "xen", t_passed, t_failed);
    return t_failed != 0;
}

static int probe(const char *call)
{
    install_filter(-1);
    printf("probe %s: filter installed, calling it\n", call);
    fflush(NULL);
    if (!strcmp(call, "fork"))
        fork();
    else if (!strcmp(call, "execve"))
        execl("/bin/true", "true", (char *)NULL);
    else if (!strcmp(call, "setuid"))
        (void)!setuid(0);
    else if (!strcmp(call, "unshare"))
        unshare(CLONE_NEWUTS);
    else if (!strcmp(call, "mount"))
        mount("none", "/tmp", "tmpfs", 0, NULL);
    else if (!strcmp(call, "setns"))
        setns(0, 0);
    else
        return 2;
    printf("probe %s: survived\n", call);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 3 && !strcmp(argv[1], "run"))
        return run(!strcmp(argv[2], "ours"), -1);
    if (argc == 2 && !strcmp(argv[1], "run-deny-membarrier"))
        return run(1, SYS_membarrier);
    if (argc == 3 && !strcmp(argv[1], "probe"))
        return probe(argv[2]);
    fprintf(stderr, "usage: %s run ours|xen | run-deny-membarrier | probe CALL\n", argv[0]);
    return 2;
}
