/* The guest's half of the virtio-blk check: a static program for the HVM
 * guest's busybox initramfs, and for dom0 (the same checksum on both sides).
 * Every phase is bounded in time; every result is one "@G blk-..." line for
 * dom0 to parse. It judges nothing itself except its own I/O calls.
 *
 *   blk-guest pattern DEV MIB SEED   writes MIB MiB of a pseudo-random
 *                                    pattern from offset 0 (O_DIRECT), fsync,
 *                                    reads it back, compares; prints the
 *                                    checksum and the first bad offset
 *   blk-guest checksum FILE MIB      the checksum of FILE's first MIB MiB
 *                                    (dom0: the image after the guest wrote)
 *   blk-guest expect MIB SEED        the checksum the pattern must have
 *   blk-guest bench DEV MIB SECONDS  sequential write, then read, of up to
 *                                    MIB MiB in 1 MiB requests, then 4 KiB
 *                                    random reads, each phase stopping after
 *                                    SECONDS: MiB/s and IOPS
 *
 * The checksum is FNV-1a (64 bits) over the bytes. The pattern is xorshift64
 * from SEED, 8 bytes at a time, little-endian.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MIB (1024 * 1024)

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static uint64_t fnv(uint64_t h, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

#define FNV_START 0xcbf29ce484222325ull

/* Fills one MiB of the pattern, continuing from *state. */
static void fill(unsigned char *buf, uint64_t *state)
{
    for (size_t i = 0; i < MIB; i += 8) {
        uint64_t x = *state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *state = x;
        for (int b = 0; b < 8; b++)
            buf[i + b] = (unsigned char)(x >> (8 * b));
    }
}

static unsigned char *aligned(size_t n)
{
    void *p;
    if (posix_memalign(&p, 4096, n)) {
        printf("@G blk-error memory\n");
        exit(1);
    }
    return p;
}

static int open_dev(const char *dev, int flags)
{
    int fd = open(dev, flags | O_DIRECT);
    if (fd < 0) {
        printf("@G blk-error open %s: %s\n", dev, strerror(errno));
        exit(1);
    }
    return fd;
}

/* Whole-buffer pread/pwrite; on failure prints the offset and errno. */
static int io(int write, int fd, unsigned char *buf, size_t n, off_t off)
{
    ssize_t r = write ? pwrite(fd, buf, n, off) : pread(fd, buf, n, off);
    if (r != (ssize_t)n) {
        printf("@G blk-ioerror %s at %lld: %s\n", write ? "write" : "read", (long long)off,
               r < 0 ? strerror(errno) : "short");
        return -1;
    }
    return 0;
}

static uint64_t expect(long mib, uint64_t seed)
{
    unsigned char *buf = aligned(MIB);
    uint64_t state = seed | 1, h = FNV_START;
    for (long i = 0; i < mib; i++) {
        fill(buf, &state);
        h = fnv(h, buf, MIB);
    }
    free(buf);
    return h;
}

static int pattern(const char *dev, long mib, uint64_t seed)
{
    int fd = open_dev(dev, O_RDWR);
    unsigned char *buf = aligned(MIB), *want = aligned(MIB);
    uint64_t state = seed | 1, h = FNV_START;
    double t0 = now();
    for (long i = 0; i < mib; i++) {
        fill(buf, &state);
        if (io(1, fd, buf, MIB, (off_t)i * MIB))
            return 1;
    }
    if (fsync(fd)) {
        printf("@G blk-ioerror fsync: %s\n", strerror(errno));
        return 1;
    }
    double t1 = now();
    state = seed | 1;
    long bad = -1;
    for (long i = 0; i < mib; i++) {
        fill(want, &state);
        if (io(0, fd, buf, MIB, (off_t)i * MIB))
            return 1;
        h = fnv(h, buf, MIB);
        if (bad < 0 && memcmp(buf, want, MIB)) {
            for (long j = 0; j < MIB; j++)
                if (buf[j] != want[j]) {
                    bad = i * MIB + j;
                    break;
                }
        }
    }
    printf("@G blk-pattern mib=%ld written_s=%.2f read_s=%.2f checksum=%016llx first_bad=%ld\n", mib, t1 - t0,
           now() - t1, (unsigned long long)h, bad);
    close(fd);
    return bad >= 0;
}

static int checksum(const char *file, long mib)
{
    int fd = open(file, O_RDONLY);
    if (fd < 0) {
        printf("@G blk-error open %s: %s\n", file, strerror(errno));
        return 1;
    }
    unsigned char *buf = aligned(MIB);
    uint64_t h = FNV_START;
    for (long i = 0; i < mib; i++) {
        if (io(0, fd, buf, MIB, (off_t)i * MIB))
            return 1;
        h = fnv(h, buf, MIB);
    }
    printf("@G blk-checksum mib=%ld checksum=%016llx\n", mib, (unsigned long long)h);
    return 0;
}

static int bench(const char *dev, long mib, double seconds)
{
    int fd = open_dev(dev, O_RDWR);
    unsigned char *buf = aligned(MIB);
    uint64_t state = 12345;
    fill(buf, &state);
    const char *name[2] = {"read", "write"};
    for (int write = 1; write >= 0; write--) {
        double t0 = now(), t;
        long done = 0;
        while (done < mib && (t = now()) - t0 < seconds) {
            if (io(write, fd, buf, MIB, (off_t)done * MIB))
                return 1;
            done++;
        }
        if (write && fsync(fd)) {
            printf("@G blk-ioerror fsync: %s\n", strerror(errno));
            return 1;
        }
        t = now() - t0;
        printf("@G blk-bench seq-%s mib=%ld seconds=%.2f mib_per_s=%.2f\n", name[write], done, t, done / t);
    }
    /* 4 KiB random reads over what was written. */
    long blocks = mib * (MIB / 4096), n = 0;
    uint64_t x = 88172645463325252ull;
    double t0 = now(), t;
    while ((t = now()) - t0 < seconds) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if (io(0, fd, buf, 4096, (off_t)(x % blocks) * 4096))
            return 1;
        n++;
    }
    t = now() - t0;
    printf("@G blk-bench rand-read-4k ios=%ld seconds=%.2f iops=%.1f\n", n, t, n / t);
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 5 && !strcmp(argv[1], "pattern"))
        return pattern(argv[2], atol(argv[3]), strtoull(argv[4], NULL, 0));
    if (argc == 4 && !strcmp(argv[1], "checksum"))
        return checksum(argv[2], atol(argv[3]));
    if (argc == 4 && !strcmp(argv[1], "expect")) {
        printf("@G blk-expect mib=%s checksum=%016llx\n", argv[2],
               (unsigned long long)expect(atol(argv[2]), strtoull(argv[3], NULL, 0)));
        return 0;
    }
    if (argc == 5 && !strcmp(argv[1], "bench"))
        return bench(argv[2], atol(argv[3]), atof(argv[4]));
    fprintf(stderr,
            "usage: blk-guest pattern DEV MIB SEED | checksum FILE MIB | expect MIB SEED | bench DEV MIB SECONDS\n");
    return 2;
}
