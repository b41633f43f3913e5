/* The guest's half of the toolkit check (tests/guest/toolkit.sh is dom0's):
 * a static program for the HVM guest's busybox initramfs. It reaches the
 * Rust device model's PCI device (examples/ioreq-pci-device) the way a user
 * program can: config space through ports 0xcf8/0xcfc, the registers through
 * sysfs's resource0 mapping (BAR0, memory) and the I/O ports of BAR1, the
 * interrupt through uio_pci_generic's /dev/uio0. It prints "@G toolkit-..."
 * lines for dom0 and judges nothing itself except the register values.
 *
 *   toolkit-guest probe SLOT SECONDS  wait until function 00:SLOT.0 answers
 *                                     config reads; prints its vendor:device
 *   toolkit-guest gone SLOT SECONDS   wait until it no longer answers
 *   toolkit-guest run BDF N           registers, N interrupts, timings
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

/* The device's registers (examples/ioreq-pci-device/src/lib.rs). */
enum { REG_A = 0x0, REG_B = 0x4, REG_SUM = 0x8, REG_DOORBELL = 0xc, REG_ACK = 0x10, REG_MAGIC = 0x14 };
#define MAGIC 0x14005845u

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static uint32_t config_read32(unsigned slot, unsigned reg)
{
    outl(0x80000000u | slot << 11 | (reg & 0xfc), 0xcf8);
    return inl(0xcfc);
}

/* probe/gone: poll the function's first config dword once a second. */
static int wait_for(unsigned slot, int seconds, int present)
{
    double end = now() + seconds;
    for (;;) {
        uint32_t id = config_read32(slot, 0);
        if ((id != 0xffffffffu) == present) {
            if (present)
                printf("%04x:%04x\n", id & 0xffff, id >> 16);
            return 0;
        }
        if (now() > end)
            return 1;
        sleep(1);
    }
}

static volatile uint32_t *mmio;
static unsigned io;

static uint32_t mr(unsigned off) { return mmio[off / 4]; }
static void mw(unsigned off, uint32_t v) { mmio[off / 4] = v; }
static uint32_t pr(unsigned off) { return inl(io + off); }
static void pw(unsigned off, uint32_t v) { outl(v, io + off); }

/* The BARs from sysfs: "start end flags" per line. */
static int bars(const char *bdf, unsigned long long *mem, unsigned long long *port)
{
    char path[128];
    snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/resource", bdf);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    unsigned long long s[2], e, fl;
    for (int i = 0; i < 2; i++)
        if (fscanf(f, "%llx %llx %llx", &s[i], &e, &fl) != 3) {
            fclose(f);
            return -1;
        }
    fclose(f);
    *mem = s[0];
    *port = s[1];
    return 0;
}

static int registers(void)
{
    int bad = 0, n = 0;
#define CHECK(what, got, want)                                                                              \
    do {                                                                                                    \
        uint32_t g_ = (got), w_ = (want);                                                                   \
        n++;                                                                                                \
        if (g_ != w_) {                                                                                     \
            bad++;                                                                                          \
            printf("@G toolkit-register-mismatch %s: read %#x, expected %#x\n", what, g_, w_);              \
        }                                                                                                   \
    } while (0)
    CHECK("MAGIC by MMIO", mr(REG_MAGIC), MAGIC);
    CHECK("MAGIC by port", pr(REG_MAGIC), MAGIC);
    mw(REG_A, 40);
    pw(REG_B, 2);
    CHECK("SUM by MMIO", mr(REG_SUM), 42);
    CHECK("SUM by port", pr(REG_SUM), 42);
    CHECK("A by port", pr(REG_A), 40);
    CHECK("B by MMIO", mr(REG_B), 2);
    pw(REG_A, 0xfffffffeu);
    mw(REG_B, 3);
    CHECK("SUM wraps", mr(REG_SUM), 1);
    /* Pseudo-random operands, alternating the BARs. */
    uint32_t x = 0x2545f491u;
    for (int i = 0; i < 16; i++) {
        x = x * 1664525u + 1013904223u;
        uint32_t a = x;
        x = x * 1664525u + 1013904223u;
        uint32_t b = x;
        if (i & 1) { pw(REG_A, a); mw(REG_B, b); } else { mw(REG_A, a); pw(REG_B, b); }
        CHECK("SUM of random operands", (i & 1) ? mr(REG_SUM) : pr(REG_SUM), a + b);
    }
    CHECK("SUM is read-only", (mw(REG_SUM, 7), mr(REG_SUM)), mr(REG_A) + mr(REG_B));
    printf("@G toolkit-registers %s %d %d\n", bad ? "bad" : "ok", n, bad);
    return bad;
}

/* uio_pci_generic has no irqcontrol (writing /dev/uio0 fails ENOSYS): its
 * user unmasks by clearing INTx Disable in the command register itself. */
static int unmask(int cfg)
{
    uint16_t cmd;
    if (pread(cfg, &cmd, 2, 4) != 2)
        return -1;
    cmd &= ~(1u << 10);
    return pwrite(cfg, &cmd, 2, 4) == 2 ? 0 : -1;
}

/* N interrupts through uio: raise at the device, wait for uio's event,
 * acknowledge at the device, unmask in config space. Then none more may come. */
static void interrupts(const char *bdf, int n)
{
    char path[128];
    snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/config", bdf);
    int fd = open("/dev/uio0", O_RDWR), cfg = open(path, O_RDWR);
    if (fd < 0 || cfg < 0) {
        printf("@G toolkit-intx error open /dev/uio0 or %s: %s\n", path, strerror(errno));
        return;
    }
    uint32_t count = 0;
    int got = 0;
    double t0 = now();
    for (int i = 1; i <= n; i++) {
        mw(REG_DOORBELL, 1);
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (poll(&p, 1, 20000) != 1 || read(fd, &count, 4) != 4) {
            printf("@G toolkit-intx-missing interrupt %d did not arrive within 20 s\n", i);
            break;
        }
        if (count != (uint32_t)i)
            printf("@G toolkit-intx-count after interrupt %d uio counts %u\n", i, count);
        got++;
        mw(REG_ACK, 1);
        if (unmask(cfg) != 0)
            printf("@G toolkit-intx-unmask failed: %s\n", strerror(errno));
    }
    double t1 = now();
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int extra = poll(&p, 1, 1000);
    uint32_t later = count;
    if (extra == 1 && read(fd, &later, 4) != 4)
        later = 0;
    printf("@G toolkit-intx %d %u %u %d %.0f\n", got, count, later, mr(REG_DOORBELL) == (uint32_t)n ? 1 : 0,
           (t1 - t0) * 1e6 / (got ? got : 1));
    close(fd);
    close(cfg);
}

static uint32_t xen_port61(void)
{
    (void)inb(0x61);
    return 0;
}

/* One kind of access, n times: microseconds per access. */
#define TIME(n, expr, want, bad)                                                                            \
    ({                                                                                                      \
        double t0_ = now();                                                                                 \
        for (int i_ = 0; i_ < (n); i_++)                                                                    \
            if ((uint32_t)(expr) != (uint32_t)(want))                                                       \
                (bad)++;                                                                                    \
        (now() - t0_) * 1e6 / (n);                                                                          \
    })

static void timings(int n)
{
    int bad = 0;
    mw(REG_A, 1000);
    mw(REG_B, 337);
    outb(0x5a, 0x3ff); /* COM1's scratch register, QEMU's 16550 */
    double ours_port = TIME(n, inl(io + REG_SUM), 1337, bad);
    double ours_mmio = TIME(n, mr(REG_SUM), 1337, bad);
    double qemu_port = TIME(n, inb(0x3ff), 0x5a, bad);
    /* Port 0x61 (PIT speaker/NMI status) is emulated inside Xen; its value varies. */
    double xen_port = TIME(20 * n, xen_port61(), 0, bad);
    printf("@G toolkit-timing %d %.1f %.1f %.1f %.2f %d\n", n, ours_port, ours_mmio, qemu_port, xen_port, bad);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc != 4) {
        fprintf(stderr, "usage: toolkit-guest probe|gone SLOT SECONDS | run BDF N\n");
        return 2;
    }
    if (iopl(3) != 0) {
        printf("@G toolkit-error iopl: %s\n", strerror(errno));
        return 1;
    }
    if (!strcmp(argv[1], "probe") || !strcmp(argv[1], "gone"))
        return wait_for(strtoul(argv[2], NULL, 0), atoi(argv[3]), !strcmp(argv[1], "probe"));
    if (strcmp(argv[1], "run"))
        return 2;
    unsigned long long mem = 0, port = 0;
    if (bars(argv[2], &mem, &port) != 0 || !mem || !port) {
        printf("@G toolkit-registers bad: BARs not assigned (memory %#llx, ports %#llx)\n", mem, port);
        return 1;
    }
    io = port;
    char path[128];
    snprintf(path, sizeof path, "/sys/bus/pci/devices/%s/resource0", argv[2]);
    int fd = open(path, O_RDWR | O_SYNC);
    void *m = fd < 0 ? MAP_FAILED : mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (m == MAP_FAILED) {
        printf("@G toolkit-registers bad: cannot map %s: %s\n", path, strerror(errno));
        return 1;
    }
    mmio = m;
    printf("@G toolkit-bars memory %#llx ports %#x\n", mem, io);
    registers();
    interrupts(argv[2], atoi(argv[3]));
    timings(200);
    return 0;
}
