/*
 * fakeprivcmd: an LD_PRELOAD test double for Linux's /dev/xen/privcmd.
 *
 * It fakes the device node, answers IOCTL_PRIVCMD_DM_OP, IOCTL_PRIVCMD_RESTRICT
 * and libxencall's IOCTL_PRIVCMD_HYPERCALL (dm_op only) the way Linux's privcmd
 * driver and Xen would, records every request, and lets tests inject errors.
 * Tests link against it (or find these functions with dlsym) to inspect it.
 */
#ifndef FAKEPRIVCMD_H
#define FAKEPRIVCMD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum fp_kind { FP_PROBE, FP_DM_OP, FP_RESTRICT, FP_HYPERCALL, FP_CLOSE /* parking only: close() of a privcmd fd */ };

#define FP_MAX_BUFS 16
#define FP_BUF_BYTES 4096

struct fp_record {
    enum fp_kind kind;
    int fd;
    uint16_t domid;
    unsigned int nr_bufs;
    size_t size[FP_MAX_BUFS];            /* size of each buffer as passed */
    int is_null[FP_MAX_BUFS];            /* buffer pointer was NULL */
    unsigned char data[2][FP_BUF_BYTES]; /* buffers 0 and 1 as they arrived */
    int rc;                              /* what the double answered */
    int err;
};

/* Records since the last reset (monotonic). */
unsigned long fp_count(void);
/* Record i (< fp_count()); a ring keeps the last FP_RING; NULL if overwritten. */
const struct fp_record *fp_get(unsigned long i);
#define FP_RING 64
/* ioctls seen on fake descriptors since the last reset (not counted with record=0). */
unsigned long fp_ioctl_count(void);
/*
 * Requests that reached the hypervisor although XSA-506's fix refuses them
 * (EINVAL): a dm_op with no buffer, modified_memory with fewer than two.
 * Never reset.
 */
unsigned long fp_xsa506_count(void);
/* Clears records, counters, server ids and injected errors; keeps the config. */
void fp_reset(void);
/* The next `times` dm_ops with xen_dm_op.op == op (-1: any) fail with err. */
void fp_fail_next(int op, int err, int times);
/*
 * Configuration (also from the environment at load time, FAKEPRIVCMD_<KEY>):
 *   nodev        /dev/xen/privcmd is missing (ENOENT)
 *   proc         /proc/xen/privcmd exists (old kernels; libxencall tries it)
 *   probe_errno  a DM_OP with no buffers (the probe) fails with this errno
 *   buf_max      privcmd's dm_op_buf_max_size (default 4096)
 *   vcpus        what nr_vcpus answers (default 4)
 *   irq_level_errno   what set_irq_level answers (default 0)
 *   domid_errno_esrch a domid answered ESRCH (default 0x7ff0)
 *   record       0: fast mode, no recording (benchmarks); default 1
 *   trace        1: print every request decoded to stderr ("privcmd: ...")
 *   syscall      1: every privcmd ioctl also makes one real system call, to
 *                model the cost of entering the kernel (benchmarks)
 *   membarrier_errno  membarrier(2) fails with this errno (0: the kernel's answer)
 */
void fp_config(const char *key, long value);
/* membarrier(2) calls made with command `cmd` (e.g. MEMBARRIER_CMD_PRIVATE_EXPEDITED). */
unsigned long fp_membarrier_count(int cmd);
int fp_is_fake_fd(int fd);
/*
 * Parking, to stop a thread at a known point inside the library: the next
 * privcmd ioctl of `kind` (FP_PROBE, FP_DM_OP with xen_dm_op.op == op or any
 * op for -1, FP_RESTRICT), or the next close() of a privcmd descriptor
 * (FP_CLOSE), waits inside the double, holding none of its
 * locks, until fp_unpark(). fp_parked() is 1 while a thread waits there.
 */
void fp_park(enum fp_kind kind, int op);
int fp_parked(void);
void fp_unpark(void);
/* The domid an fd is restricted to, or -1. */
int fp_restriction(int fd);
/* One human-readable line for a record. */
void fp_dump(FILE *f, const struct fp_record *r);

#endif
