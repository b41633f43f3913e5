/*
 * Stand-in for the privcmd test double's control API on a real hypervisor:
 * the differential driver links against it, records nothing and injects
 * nothing, so only what Xen itself answers is compared.
 */
#include "fakeprivcmd.h"

unsigned long fp_count(void) { return 0; }
const struct fp_record *fp_get(unsigned long i) { (void)i; return 0; }
unsigned long fp_ioctl_count(void) { return 0; }
void fp_reset(void) {}
void fp_fail_next(int op, int err, int times) { (void)op; (void)err; (void)times; }
void fp_config(const char *key, long value) { (void)key; (void)value; }
int fp_is_fake_fd(int fd) { (void)fd; return 0; }
int fp_restriction(int fd) { (void)fd; return -1; }
void fp_dump(FILE *f, const struct fp_record *r) { (void)f; (void)r; }
