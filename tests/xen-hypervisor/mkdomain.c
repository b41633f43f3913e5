/*
 * Creates or destroys the target of the real-hypervisor tests, with
 * libxenctrl: a paused HVM (HAP) domain with a fixed domid, two vCPUs, a
 * paging pool, some RAM, and (x86) the ioreq pages and HVM params an IOREQ
 * server needs. On Arm (tests/xen-arm) the domain has an emulated GIC with 32
 * SPIs (interrupts 32-63, for set_irq_level) and its RAM at GUEST_RAM0_BASE;
 * Arm's IOREQ servers need no legacy pages.
 *
 *   mkdomain create DOMID     (retries while a previous DOMID is still dying)
 *   mkdomain destroy DOMID
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xenctrl.h>

#define MiB (1024 * 1024)
#define RAM_PAGES 1024          /* 4 MiB of guest RAM */
#if defined(__aarch64__) || defined(__arm__)
#define RAM_BASE_PFN (GUEST_RAM0_BASE >> XC_PAGE_SHIFT)
#else
#define RAM_BASE_PFN 0
#endif
#define IOREQ_PFN 0xfeff0       /* where legacy ioreq pages may be mapped */
#define NR_IOREQ_PAGES 8

static int create(xc_interface *xch, uint32_t domid)
{
    struct xen_domctl_createdomain cfg = {
        .flags = XEN_DOMCTL_CDF_hvm | XEN_DOMCTL_CDF_hap,
        .max_vcpus = 2,
        .max_evtchn_port = 1023,
        .max_grant_frames = -1,
        .max_maptrack_frames = -1,
        .grant_opts = XEN_DOMCTL_GRANT_version(1),
#if defined(__aarch64__) || defined(__arm__)
        .arch = { .gic_version = XEN_DOMCTL_CONFIG_GIC_NATIVE, .tee_type = XEN_DOMCTL_CONFIG_TEE_NONE, .nr_spis = 32 },
#else
        .arch = { .emulation_flags = XEN_X86_EMU_ALL & ~XEN_X86_EMU_VPCI },
#endif
    };
    uint32_t id = domid;
    int rc = -1;
    for (int i = 0; i < 100; i++) { /* a destroyed domain may take a moment to go */
        id = domid;
        rc = xc_domain_create(xch, &id, &cfg);
        if (rc == 0 || errno != EEXIST)
            break;
        usleep(100 * 1000);
    }
    if (rc) {
        perror("xc_domain_create");
        return 1;
    }
    static xen_pfn_t pfns[RAM_PAGES];
    for (unsigned i = 0; i < RAM_PAGES; i++)
        pfns[i] = RAM_BASE_PFN + i;
#if !defined(__aarch64__) && !defined(__arm__)
    /* Legacy ioreq pages must be backed by memory, or mapping them for
     * get_ioreq_server_info fails with EINVAL (as the toolstack's do). */
    static xen_pfn_t ioreq_pfns[NR_IOREQ_PAGES];
    for (unsigned i = 0; i < NR_IOREQ_PAGES; i++)
        ioreq_pfns[i] = IOREQ_PFN + i;
#endif
    if (xc_domain_setmaxmem(xch, id, 64 * 1024) ||
        xc_set_paging_mempool_size(xch, id, 16 * MiB) ||
        xc_domain_populate_physmap_exact(xch, id, RAM_PAGES, 0, 0, pfns)
#if defined(__aarch64__) || defined(__arm__)
        /* Allocate the vCPUs, as libxl does. Without them, Xen 4.17 for Arm
         * dereferences vcpu[0] == NULL on set_irq_level (seen: a data abort
         * in vgic_get_target_vcpu that panics the hypervisor). */
        || xc_domain_max_vcpus(xch, id, 2)
#else
        || xc_domain_populate_physmap_exact(xch, id, NR_IOREQ_PAGES, 0, 0, ioreq_pfns) ||
        xc_hvm_param_set(xch, id, HVM_PARAM_IOREQ_SERVER_PFN, IOREQ_PFN) ||
        xc_hvm_param_set(xch, id, HVM_PARAM_NR_IOREQ_SERVER_PAGES, NR_IOREQ_PAGES)
#endif
    ) {
        perror("setting up the domain");
        xc_domain_destroy(xch, id);
        return 1;
    }
    printf("%u\n", id);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s create|destroy DOMID\n", argv[0]);
        return 2;
    }
    xc_interface *xch = xc_interface_open(NULL, NULL, 0);
    if (!xch) {
        perror("xc_interface_open");
        return 1;
    }
    uint32_t domid = strtoul(argv[2], NULL, 0);
    int rc;
    if (!strcmp(argv[1], "create"))
        rc = create(xch, domid);
    else {
        rc = xc_domain_destroy(xch, domid) ? 1 : 0;
        if (rc)
            perror("xc_domain_destroy");
    }
    xc_interface_close(xch);
    return rc;
}
