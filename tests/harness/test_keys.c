/*
 * Handle keys: a key is never given out twice in a process's life, and
 * nothing but a key open returned for a handle that is open now is accepted.
 *
 * - 100,000 open/close cycles with every stale key kept: all distinct; on
 *   32-bit targets they cross a real retirement (a slot's 65,536th key);
 *   afterwards every stale key fails with EBADF and sends nothing, on every
 *   entry point for a sample, while handles that reuse the slot work.
 * - The key space spent, with XENDEVICEMODEL_TEST_KEY_SPACE shrinking it:
 *   EMFILE while every slot is open, ENOSPC (and a log line through the
 *   caller's logger) once slots are retired, a slot with generations left
 *   usable again after its handle closes, every one of the process's keys
 *   distinct and, once stale, refused everywhere.
 * - Every bit of a key flipped, in a process that traces and in one that
 *   does not: EBADF on every entry point, nothing sent, the handle intact.
 *
 * The variables are read at a process's first open, so those scenarios run
 * in children forked before the library did anything. The key layout
 * (src/table.rs) is known here only to report and check the figures.
 */
#include <fcntl.h>
#include <stdint.h>
#include <unistd.h>
#include <xendevicemodel.h>

#include "calls.h"
#include "check.h"
#include "fakeprivcmd.h"

#define DOM CALLS_DOM
#define REUSES 100000

/* The layout's fields (src/table.rs). */
#if UINTPTR_MAX > 0xffffffffu
#define KEY_BITS 64
#define TRACED_BIT ((uintptr_t)1 << 56)
#define SLOT_OF(k) ((uintptr_t)(k) & 0xfffff)
#define GEN_OF(k) (((uintptr_t)(k) >> 20) & 0xffffffffu)
#define GENERATIONS 4294967296.0
#else
#define KEY_BITS 32
#define TRACED_BIT ((uintptr_t)2)
#define SLOT_OF(k) (((uintptr_t)(k) >> 2) & 0x3fff)
#define GEN_OF(k) ((uintptr_t)(k) >> 16)
#define GENERATIONS 65536.0
#endif

static int cmp_ptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

/* How many of keys[0..n) (sorted in place) are equal to another one. */
static long duplicates(uintptr_t *keys, long n)
{
    long d = 0;
    qsort(keys, n, sizeof(*keys), cmp_ptr);
    for (long i = 1; i < n; i++)
        d += keys[i] == keys[i - 1];
    return d;
}

/*
 * Every entry point on `h`, which must not name an open handle: each must
 * fail with EBADF and privcmd must see nothing. Returns the failures, the
 * first of them described in `why`.
 */
static int refused_everywhere(xendevicemodel_handle *h, char *why, size_t len)
{
    int bad = 0;
    for (int c = 0; c < NCALLS; c++) {
        if (!h && CALLS[c].closes)
            continue; /* closing NULL is 0, as in Xen (a traced 32-bit key can be 1) */
        unsigned long before = fp_ioctl_count();
        errno = 0;
        int rc = CALLS[c].run(h);
        int e = errno;
        if (rc != -1 || e != EBADF || fp_ioctl_count() != before) {
            if (!bad++)
                snprintf(why, len, "%s(%p): rc %d errno %d, %lu ioctls", CALLS[c].name, (void *)h, rc, e,
                         fp_ioctl_count() - before);
        }
    }
    return bad;
}

/* Every bit of `h`'s key flipped: refused everywhere; `h` itself still works. */
static void flips(xendevicemodel_handle *h, const char *what)
{
    int bad = 0;
    char why[256] = "";
    int saved = t_quiet_stderr();
    for (int bit = 0; bit < KEY_BITS; bit++)
        bad += refused_everywhere((xendevicemodel_handle *)((uintptr_t)h ^ ((uintptr_t)1 << bit)), why, sizeof(why));
    t_restore_stderr(saved);
    CHECK(bad == 0, "%s: %d calls on a key with one bit flipped were not refused; first: %s", what, bad, why);
    CHECK_OK(xendevicemodel_set_isa_irq_level(h, DOM, 1, 1));
}

/* ---- scenarios in a fresh child ---- */

/* A process that does not trace: its first keys, with every bit flipped. */
static void flips_untraced(void)
{
    xendevicemodel_handle *h = xendevicemodel_open(NULL, 0);
    CHECK(h && ((uintptr_t)h & TRACED_BIT) == TRACED_BIT,
          "untraced key %p has the tag of a traced one", (void *)h);
    flips(h, "untraced, first key");
    CHECK_OK(xendevicemodel_close(h));
    h = xendevicemodel_open(NULL, 0);
    CHECK(h != NULL, "reopen");
    flips(h, "untraced, the slot's second key");
    CHECK_OK(xendevicemodel_close(h));
}

/* A process that traces: its keys carry the trace bit, and only that form is accepted. */
static void flips_traced(void)
{
    setenv("XENDEVICEMODEL_TRACE", "/dev/null", 1);
    xendevicemodel_handle *h = xendevicemodel_open(NULL, 0);
    CHECK(h && ((uintptr_t)h & TRACED_BIT) == 0, "traced key %p lacks the trace tag", (void *)h);
    /* The case: the same key with the trace bit flipped back. */
    unsigned long before = fp_ioctl_count();
    int saved = t_quiet_stderr();
    xendevicemodel_handle *untraced = (xendevicemodel_handle *)((uintptr_t)h ^ TRACED_BIT);
    CHECK_FAILS(xendevicemodel_set_isa_irq_level(untraced, DOM, 1, 1), EBADF);
    CHECK_FAILS(xendevicemodel_close(untraced), EBADF);
    t_restore_stderr(saved);
    CHECK(fp_ioctl_count() == before, "the untraced form of a traced key reached privcmd");
    flips(h, "traced, first key");
    CHECK_OK(xendevicemodel_close(h));
    h = xendevicemodel_open(NULL, 0);
    flips(h, "traced, the slot's second key");
    CHECK_OK(xendevicemodel_close(h));
    unsetenv("XENDEVICEMODEL_TRACE");
}

/* The key space shrunk to G generations of S slots, and spent. */
enum { G = 3, S = 70 };
static void key_space_spent(void)
{
    setenv("XENDEVICEMODEL_TEST_KEY_SPACE", "3,70", 1);
    static uintptr_t keys[G * S + 8];
    long n = 0;
    struct cap_logger cap;
    xendevicemodel_handle *open_now[S];

    /* Every slot open: EMFILE, logged through the caller's logger. */
    for (int i = 0; i < S; i++) {
        open_now[i] = xendevicemodel_open(NULL, 0);
        CHECK(open_now[i] != NULL, "open %d of %d", i, S);
        keys[n++] = (uintptr_t)open_now[i];
    }
    cap_init(&cap);
    errno = 0;
    xendevicemodel_handle *extra = xendevicemodel_open(&cap.base, 0);
    int e = errno;
    CHECK(extra == NULL && e == EMFILE, "open with every slot open: %p errno %d, want NULL EMFILE", (void *)extra, e);
    CHECK(cap.errors == 1 && cap.errnoval == EMFILE && strstr(cap.last, "too many open handles (70)"),
          "logged %d errors (errno %d): %s", cap.errors, cap.errnoval, cap.last);
    int fds = t_count_fds();
    for (int i = 0; i < S; i++)
        CHECK_OK(xendevicemodel_close(open_now[i]));

    /* One handle stays open while the rest of the key space is spent. */
    xendevicemodel_handle *held = xendevicemodel_open(NULL, 0);
    keys[n++] = (uintptr_t)held;
    long cycles = 0;
    for (;;) {
        cap_init(&cap);
        errno = 0;
        xendevicemodel_handle *h = xendevicemodel_open(&cap.base, 0);
        e = errno;
        if (!h)
            break;
        keys[n++] = (uintptr_t)h;
        cycles++;
        if (xendevicemodel_close(h) != 0 || n >= G * S)
            break;
    }
    CHECK(cycles == (S - 1) * (G - 1), "%ld open/close cycles before the keys ran out, want %d", cycles,
          (S - 1) * (G - 1));
    CHECK(e == ENOSPC, "open once the keys are spent: errno %d, want ENOSPC", e);
    CHECK(cap.errors == 1 && cap.errnoval == ENOSPC && strstr(cap.last, "no handle key left") &&
              strstr(cap.last, "69 of the table's 70 slots have used their 3 keys"),
          "logged %d errors (errno %d): %s", cap.errors, cap.errnoval, cap.last);
    printf("keys: space shrunk to %d generations of %d slots: EMFILE with every slot open, "
           "ENOSPC after %ld more cycles: \"%s\"\n", G, S, cycles, cap.last);
    CHECK_OK(xendevicemodel_set_isa_irq_level(held, DOM, 1, 1));

    /* Closing the held handle frees its slot's last generation: one more key. */
    CHECK_OK(xendevicemodel_close(held));
    xendevicemodel_handle *last = xendevicemodel_open(NULL, 0);
    CHECK(last != NULL, "open after a slot with a generation left was freed");
    keys[n++] = (uintptr_t)last;
    CHECK_OK(xendevicemodel_set_isa_irq_level(last, DOM, 1, 1));
    CHECK_OK(xendevicemodel_close(last));
    cap_init(&cap);
    errno = 0;
    CHECK(xendevicemodel_open(&cap.base, 0) == NULL && errno == ENOSPC, "open after every key was used: errno %d",
          errno);
    CHECK(cap.errors == 1 && strstr(cap.last, "210 handles were opened") &&
              strstr(cap.last, "70 of the table's 70 slots"), "logged: %s", cap.last);
    CHECK(t_count_fds() == fds - S, "descriptors: %d, want %d", t_count_fds(), fds - S);

    /* Every key of the process's life: distinct, and now refused everywhere. */
    CHECK(n == G * S, "%ld keys given out, want %d", n, G * S);
    int bad = 0;
    char why[256] = "";
    int saved = t_quiet_stderr();
    for (long i = 0; i < n; i++)
        bad += refused_everywhere((xendevicemodel_handle *)keys[i], why, sizeof(why));
    t_restore_stderr(saved);
    CHECK(bad == 0, "%d calls on stale keys were not refused; first: %s", bad, why);
    CHECK(duplicates(keys, n) == 0, "a key was given out twice");
}

/* ---- the real counters, in this process ---- */

static uintptr_t stale[REUSES];

static void reuses(void)
{
    xendevicemodel_handle *a = xendevicemodel_open(NULL, 0);
    CHECK(a != NULL, "open");
    long failed = 0;
    for (long i = 0; i < REUSES; i++) {
        xendevicemodel_handle *h = xendevicemodel_open(NULL, 0);
        failed += h == NULL || (i % 1000 == 0 && xendevicemodel_set_isa_irq_level(h, DOM, 1, 1) != 0);
        stale[i] = (uintptr_t)h;
        failed += xendevicemodel_close(h) != 0;
    }
    CHECK(failed == 0, "%ld of %d open/call/close cycles failed", failed, REUSES);

    /* The figures: which slots and generations the keys used. */
    long per_slot[4] = {0};
    uintptr_t first_slot = SLOT_OF(stale[0]), slots = 1, max_gen = 0;
    for (long i = 0; i < REUSES; i++) {
        uintptr_t s = SLOT_OF(stale[i]) - first_slot;
        if (s < 4)
            per_slot[s]++;
        if (s + 1 > slots)
            slots = s + 1;
        if (GEN_OF(stale[i]) > max_gen)
            max_gen = GEN_OF(stale[i]);
    }
    printf("keys: %d open/close cycles used %lu slot(s) (%ld, %ld, %ld keys), generations up to %lu of %.0f\n", REUSES,
           (unsigned long)slots, per_slot[0], per_slot[1], per_slot[2], (unsigned long)max_gen, GENERATIONS);
    if (KEY_BITS == 32)
        CHECK(slots == 2 && per_slot[0] == 65536 && per_slot[1] == REUSES - 65536,
              "32-bit: a slot must retire after its 65,536th key: %lu slots, %ld and %ld keys", (unsigned long)slots,
              per_slot[0], per_slot[1]);
    else
        CHECK(slots == 1 && max_gen == REUSES - 1, "64-bit: one slot, generations 0..%d: %lu slots, up to %lu",
              REUSES - 1, (unsigned long)slots, (unsigned long)max_gen);

    /* Handles opened now reuse the slot; every stale key stays dead. */
    xendevicemodel_handle *b = xendevicemodel_open(NULL, 0), *c = xendevicemodel_open(NULL, 0);
    CHECK(b && c, "open after the cycles");
    int saved = t_quiet_stderr();
    unsigned long before = fp_ioctl_count();
    long accepted = 0, live = 0;
    for (long i = 0; i < REUSES; i++) {
        live += stale[i] == (uintptr_t)a || stale[i] == (uintptr_t)b || stale[i] == (uintptr_t)c;
        errno = 0;
        accepted += xendevicemodel_set_isa_irq_level((xendevicemodel_handle *)stale[i], DOM, 1, 1) != -1 || errno != EBADF;
    }
    unsigned long sent = fp_ioctl_count() - before;
    /* Every entry point, on the keys nearest the live ones and the retirement. */
    long sample[] = {0, 1, 65535, 65536, REUSES - 2, REUSES - 1};
    int bad = 0;
    char why[256] = "";
    for (unsigned i = 0; i < sizeof(sample) / sizeof(sample[0]); i++)
        bad += refused_everywhere((xendevicemodel_handle *)stale[sample[i]], why, sizeof(why));
    t_restore_stderr(saved);
    CHECK(live == 0, "%ld stale keys equal a live handle's", live);
    CHECK(accepted == 0 && sent == 0, "%ld of %d stale keys were accepted, %lu ioctls sent", accepted, REUSES, sent);
    CHECK(bad == 0, "%d calls on sampled stale keys were not refused; first: %s", bad, why);
    long dups = duplicates(stale, REUSES);
    CHECK(dups == 0, "%ld keys were given out twice in %d cycles", dups, REUSES);

    /* The live handles work; with b alone open, its key's every bit flipped. */
    CHECK_OK(xendevicemodel_set_isa_irq_level(a, DOM, 1, 1));
    CHECK_OK(xendevicemodel_close(a));
    CHECK_OK(xendevicemodel_close(c));
    flips(b, "a key after 100,000 reuses");
    int ok = 0;
    for (int i = 0; i < NCALLS; i++) {
        errno = 0;
        int rc = CALLS[i].run(b);
        ok += rc == 0;
        CHECK(rc == 0, "%s on a live handle: rc %d errno %d", CALLS[i].name, rc, errno);
    }
    printf("keys: every stale key refused (%d), every entry point works on the live handle (%d of %d)\n", REUSES, ok,
           NCALLS);
}

int main(void)
{
    static const struct { const char *name; void (*run)(void); } scenarios[] = {
        {"every bit of a key flipped, untraced process", flips_untraced},
        {"every bit of a key flipped, tracing process", flips_traced},
        {"the key space spent (shrunk by the test hook)", key_space_spent},
    };
    for (unsigned i = 0; i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
        printf("keys: %s\n", scenarios[i].name);
        int f = t_in_child(scenarios[i].run);
        CHECK(f == 0, "%s: %d checks failed (255: hung, 254: crashed or ended by its alarm)", scenarios[i].name, f);
    }
    reuses();
    return t_done("keys");
}
