/*
 * A small device model for the real Xen for Arm test (tests/xen-arm/guest.sh),
 * over libxendevicemodel (ours, by LD_LIBRARY_PATH) and Xen's foreignmemory
 * and evtchn libraries, as demu-style emulators and virtio back-ends work:
 *
 *   an IOREQ server for domain DOMID claims two MMIO pages:
 *   - 0x0a000000: an ARM PL031 real-time clock (the guest's built-in rtc-pl031
 *     driver binds to it through the partial device tree guest.dts); its alarm
 *     raises interrupt IRQ with xendevicemodel_set_irq_level, and the guest's
 *     write to the interrupt clear register lowers it again;
 *   - 0x0a001000: a mailbox the guest's /init reads and writes with devmem:
 *     0x0 ID (reads "XDM1"), 0x4 scratch (reads back what was written),
 *     0x8 report (the guest writes how many interrupts /proc/interrupts shows),
 *     0xc done (the guest is finished).
 *
 * The ioreq page is mapped with xenforeignmemory_map_resource before the
 * server is enabled; each vCPU's ioreq event channel is bound with libxenevtchn.
 * Every access and every library call is logged on stdout ("dm: ...").
 *
 *   mmio-dm DOMID IRQ TIMEOUT_SECONDS
 */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <xendevicemodel.h>
#include <xenevtchn.h>
#include <xenforeignmemory.h>
#include <xen/hvm/ioreq.h>
#include <xen/memory.h>

#define RTC_BASE 0x0a000000ULL
#define MBOX_BASE 0x0a001000ULL
#define PAGE 0x1000ULL
#define MAX_VCPUS 8

static xendevicemodel_handle *dmod;
static domid_t dom;
static uint32_t irq;
static int irq_level;
static time_t rtc_offset;                 /* RTC_DR = now + offset */
static uint32_t rtc_mr, rtc_cr = 1, rtc_imsc, rtc_ris;
static int rtc_armed;                     /* the match register's alarm has not fired yet */
static uint32_t mbox_scratch, mbox_report = 0xffffffff;
static int done, reported;
static unsigned long reads, writes;

static uint32_t rtc_now(void) { return (uint32_t)(time(NULL) + rtc_offset); }

static void set_line(int level)
{
    if (level == irq_level)
        return;
    int rc = xendevicemodel_set_irq_level(dmod, dom, irq, level);
    printf("dm: set_irq_level(%u, %u, %d) = %d%s%s\n", dom, irq, level, rc, rc ? " errno " : "",
           rc ? strerror(errno) : "");
    if (rc == 0)
        irq_level = level;
}

/* The alarm: the raw status is set once when the clock reaches the match
 * value; the line follows the masked status (a level-triggered interrupt),
 * so it drops when the guest clears the status or masks the alarm. */
static void rtc_update(void)
{
    if (rtc_armed && rtc_now() >= rtc_mr) {
        rtc_ris = 1;
        rtc_armed = 0;
    }
    set_line(!!(rtc_ris & rtc_imsc));
}

static uint32_t rtc_read(uint64_t off)
{
    /* PrimeCell identification: PL031 (0x00041031), component id 0xb105f00d */
    static const uint8_t id[8] = { 0x31, 0x10, 0x04, 0x00, 0x0d, 0xf0, 0x05, 0xb1 };
    if (off >= 0xfe0 && off < 0x1000)
        return id[(off - 0xfe0) / 4];
    switch (off) {
    case 0x00: return rtc_now();
    case 0x04: return rtc_mr;
    case 0x0c: return rtc_cr;
    case 0x10: return rtc_imsc;
    case 0x14: return rtc_ris;
    case 0x18: return rtc_ris & rtc_imsc;
    default: return 0;
    }
}

static void rtc_write(uint64_t off, uint32_t v)
{
    switch (off) {
    case 0x04: rtc_mr = v; rtc_armed = 1; printf("dm: rtc alarm set to %u (now %u)\n", v, rtc_now()); break;
    case 0x08: rtc_offset = (time_t)v - time(NULL); break;
    case 0x0c: rtc_cr = v; break;
    case 0x10: rtc_imsc = v & 1; printf("dm: rtc alarm interrupt %s\n", rtc_imsc ? "enabled" : "disabled"); break;
    case 0x1c:
        if (v & 1) {
            rtc_ris = 0;
            printf("dm: guest cleared the rtc interrupt (ICR)\n");
        }
        break;
    }
    rtc_update();
}

static uint32_t mbox_read(uint64_t off)
{
    switch (off) {
    case 0x0: return 0x58444d31; /* "XDM1" */
    case 0x4: return mbox_scratch;
    case 0x8: return mbox_report;
    default: return 0;
    }
}

static void mbox_write(uint64_t off, uint32_t v)
{
    switch (off) {
    case 0x4: mbox_scratch = v; break;
    case 0x8: mbox_report = v; reported = 1; printf("dm: guest reports %u interrupts in /proc/interrupts\n", v); break;
    case 0xc: done = 1; break;
    }
}

static void handle(ioreq_t *req)
{
    if (req->type != IOREQ_TYPE_COPY || req->data_is_ptr || req->count != 1 || req->size > 8) {
        printf("dm: unexpected ioreq type %u ptr %u count %u size %u at %#" PRIx64 "\n", req->type,
               req->data_is_ptr, req->count, req->size, req->addr);
        if (req->dir == IOREQ_READ)
            req->data = ~0ULL;
        return;
    }
    uint64_t a = req->addr;
    int rtc = a >= RTC_BASE && a < RTC_BASE + PAGE;
    uint64_t off = a - (rtc ? RTC_BASE : MBOX_BASE);
    if (req->dir == IOREQ_READ) {
        req->data = rtc ? rtc_read(off) : mbox_read(off);
        reads++;
        if (!rtc || off >= 0xfe0 || reads <= 40)
            printf("dm: read  %#" PRIx64 " size %u -> %#" PRIx64 "\n", a, req->size, req->data);
    } else {
        uint32_t v = (uint32_t)req->data;
        writes++;
        printf("dm: write %#" PRIx64 " size %u <- %#x\n", a, req->size, v);
        if (rtc)
            rtc_write(off, v);
        else
            mbox_write(off, v);
    }
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s DOMID IRQ TIMEOUT_SECONDS\n", argv[0]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    dom = (domid_t)strtoul(argv[1], NULL, 0);
    irq = (uint32_t)strtoul(argv[2], NULL, 0);
    /* a ceiling for a guest that never finishes, not a budget */
    time_t start = time(NULL), deadline = start + atol(argv[3]);

    Dl_info lib;
    if (dladdr((void *)xendevicemodel_open, &lib) && lib.dli_fname)
        printf("dm: libxendevicemodel from %s\n", lib.dli_fname);
    dmod = xendevicemodel_open(NULL, 0);
    xenforeignmemory_handle *fmem = xenforeignmemory_open(NULL, 0);
    xenevtchn_handle *xce = xenevtchn_open(NULL, 0);
    if (!dmod || !fmem || !xce) {
        perror("dm: open");
        return 1;
    }
    unsigned int vcpus = 0;
    ioservid_t id;
    int rc = xendevicemodel_nr_vcpus(dmod, dom, &vcpus);
    printf("dm: nr_vcpus(%u) = %d, %u vCPUs\n", dom, rc, vcpus);
    if (rc || vcpus == 0 || vcpus > MAX_VCPUS)
        return 1;
    rc = xendevicemodel_create_ioreq_server(dmod, dom, 0 /* HVM_IOREQSRV_BUFIOREQ_OFF */, &id);
    printf("dm: create_ioreq_server(%u) = %d, id %u\n", dom, rc, id);
    if (rc)
        return 1;
    void *page = NULL;
    xenforeignmemory_resource_handle *res = xenforeignmemory_map_resource(
        fmem, dom, XENMEM_resource_ioreq_server, id, XENMEM_resource_ioreq_server_frame_ioreq(0), 1, &page,
        PROT_READ | PROT_WRITE, 0);
    if (!res) {
        perror("dm: map the ioreq page");
        return 1;
    }
    shared_iopage_t *iopage = page;
    int r1 = xendevicemodel_map_io_range_to_ioreq_server(dmod, dom, id, 1, RTC_BASE, RTC_BASE + PAGE - 1);
    int r2 = xendevicemodel_map_io_range_to_ioreq_server(dmod, dom, id, 1, MBOX_BASE, MBOX_BASE + PAGE - 1);
    int r3 = xendevicemodel_set_ioreq_server_state(dmod, dom, id, 1);
    printf("dm: map MMIO %#llx and %#llx = %d %d, enable = %d\n", RTC_BASE, MBOX_BASE, r1, r2, r3);
    if (r1 || r2 || r3)
        return 1;
    evtchn_port_t local[MAX_VCPUS];
    for (unsigned int v = 0; v < vcpus; v++) {
        xenevtchn_port_or_error_t p = xenevtchn_bind_interdomain(xce, dom, iopage->vcpu_ioreq[v].vp_eport);
        if (p < 0) {
            perror("dm: bind the ioreq event channel");
            return 1;
        }
        local[v] = p;
    }
    printf("dm: serving domain %u (%u vCPUs)\n", dom, vcpus);
    fflush(stdout);

    struct pollfd pfd = { .fd = xenevtchn_fd(xce), .events = POLLIN };
    while (!done && time(NULL) < deadline) {
        int n = poll(&pfd, 1, 100);
        if (n > 0) {
            xenevtchn_port_or_error_t port = xenevtchn_pending(xce);
            if (port >= 0)
                xenevtchn_unmask(xce, port);
        }
        for (unsigned int v = 0; v < vcpus; v++) {
            ioreq_t *req = &iopage->vcpu_ioreq[v];
            if (req->state != STATE_IOREQ_READY)
                continue;
            __atomic_thread_fence(__ATOMIC_ACQUIRE);
            handle(req);
            __atomic_thread_fence(__ATOMIC_RELEASE);
            req->state = STATE_IORESP_READY;
            __atomic_thread_fence(__ATOMIC_SEQ_CST);
            xenevtchn_notify(xce, local[v]);
        }
        rtc_update();
        /* the domain is gone (destroyed or shut down): stop */
        unsigned int tmp;
        if (n == 0 && xendevicemodel_nr_vcpus(dmod, dom, &tmp) && errno == ESRCH)
            break;
    }
    set_line(0);
    printf("dm: %lu reads, %lu writes; report %s; %s after %ld s\n", reads, writes, reported ? "received" : "missing",
           done ? "guest done" : "stopped (timeout or domain gone)", (long)(time(NULL) - start));
    rc = xendevicemodel_set_ioreq_server_state(dmod, dom, id, 0);
    int rd = xendevicemodel_destroy_ioreq_server(dmod, dom, id);
    printf("dm: disable = %d, destroy = %d\n", rc, rd);
    xenforeignmemory_unmap_resource(fmem, res);
    xenevtchn_close(xce);
    xenforeignmemory_close(fmem);
    xendevicemodel_close(dmod);
    return done && reported ? 0 : 1;
}
