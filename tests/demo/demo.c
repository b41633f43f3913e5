/*
 * A tiny device model doing what QEMU does when it starts and stops serving
 * an HVM guest, through xendevicemodel_*. `make demo` runs it against the
 * privcmd test double, which prints every request it receives decoded
 * ("privcmd: ...") the way the hypervisor would see it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <xendevicemodel.h>

#define GUEST 7

static int failures;

/* Each step's request appears above it, as the privcmd double decoded it. */
static void step(const char *what, int rc)
{
    printf("  %-52s %s\n", what, rc == 0 ? "ok" : strerror(errno));
    failures += rc != 0;
}

int main(void)
{
    setvbuf(stdout, NULL, _IONBF, 0); /* interleave with the double's trace on stderr */
    printf("device model for domain %d: start\n", GUEST);
    xendevicemodel_handle *dm = xendevicemodel_open(NULL, 0);
    if (!dm) {
        perror("xendevicemodel_open");
        return 1;
    }
    unsigned int vcpus = 0;
    step("query the number of vCPUs", xendevicemodel_nr_vcpus(dm, GUEST, &vcpus));
    printf("  -> %u vCPUs\n", vcpus);

    ioservid_t id = 0;
    step("create an IOREQ server (buffered ioreqs, atomic)", xendevicemodel_create_ioreq_server(dm, GUEST, 1, &id));
    xen_pfn_t ioreq_gfn = 0, bufioreq_gfn = 0;
    evtchn_port_t port = 0;
    step("get its ioreq pages and event channel",
         xendevicemodel_get_ioreq_server_info(dm, GUEST, id, &ioreq_gfn, &bufioreq_gfn, &port));
    printf("  -> server %u: ioreq gfn %#lx, buffered gfn %#lx, port %u\n", id, (unsigned long)ioreq_gfn,
           (unsigned long)bufioreq_gfn, port);
    step("claim MMIO 0xfebf0000-0xfebfffff (a PCI BAR)",
         xendevicemodel_map_io_range_to_ioreq_server(dm, GUEST, id, 1, 0xfebf0000, 0xfebfffff));
    step("claim I/O ports 0x3f8-0x3ff (a UART)",
         xendevicemodel_map_io_range_to_ioreq_server(dm, GUEST, id, 0, 0x3f8, 0x3ff));
    step("claim PCI device 0000:00:03.0 config space",
         xendevicemodel_map_pcidev_to_ioreq_server(dm, GUEST, id, 0, 0, 3, 0));
    step("enable the server", xendevicemodel_set_ioreq_server_state(dm, GUEST, id, 1));

    printf("device model for domain %d: running\n", GUEST);
    step("raise ISA IRQ 4 (the UART)", xendevicemodel_set_isa_irq_level(dm, GUEST, 4, 1));
    step("lower ISA IRQ 4", xendevicemodel_set_isa_irq_level(dm, GUEST, 4, 0));
    step("inject an MSI (vector 0x41 to APIC 1)", xendevicemodel_inject_msi(dm, GUEST, 0xfee01000, 0x4041));
    step("mark 16 pages from pfn 0x1000 modified (DMA)", xendevicemodel_modified_memory(dm, GUEST, 0x1000, 16));

    printf("device model for domain %d: stop\n", GUEST);
    step("disable the server", xendevicemodel_set_ioreq_server_state(dm, GUEST, id, 0));
    step("destroy the server", xendevicemodel_destroy_ioreq_server(dm, GUEST, id));
    step("close the handle", xendevicemodel_close(dm));
    printf("%s\n", failures ? "demo: FAILED" : "demo: every call succeeded");
    return failures != 0;
}
