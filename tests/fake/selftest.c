/*
 * The test double checked against Xen's OWN library (Debian's
 * libxendevicemodel.so.1): if the double answers Xen's library the way the
 * kernel and hypervisor would, tests of our library against it mean something.
 */
#include <errno.h>
#include <string.h>
#include <xendevicemodel.h>
#include <xentoolcore.h>

#include "../harness/check.h"
#include "fakeprivcmd.h"

static const struct fp_record *last(void) { return fp_get(fp_count() - 1); }

int main(void)
{
    fp_reset();
    xendevicemodel_handle *h = xendevicemodel_open(NULL, 0);
    CHECK(h != NULL, "open: %s", strerror(errno));
    if (!h)
        return t_done("fakeprivcmd");
    CHECK(fp_count() == 1 && last()->kind == FP_PROBE && last()->domid == 0x7ff4, "Xen's probe recorded");

    ioservid_t id = 0;
    CHECK_OK(xendevicemodel_create_ioreq_server(h, 5, 1, &id));
    const struct fp_record *r = last();
    struct xen_dm_op *op = (struct xen_dm_op *)r->data[0];
    CHECK(id == 1 && r->kind == FP_DM_OP && r->nr_bufs == 1 && r->size[0] == 32 && op->op == XEN_DMOP_create_ioreq_server &&
          op->u.create_ioreq_server.handle_bufioreq == 1, "create: id %u", id);
    evtchn_port_t port = 0;
    CHECK_OK(xendevicemodel_get_ioreq_server_info(h, 5, id, NULL, NULL, &port));
    op = (struct xen_dm_op *)last()->data[0];
    CHECK(port == 0x31 && op->u.get_ioreq_server_info.flags == XEN_DMOP_no_gfns, "no_gfns and port");
    unsigned char bitmap[2] = { 0, 0 };
    CHECK_OK(xendevicemodel_track_dirty_vram(h, 5, 0, 9, (unsigned long *)bitmap));
    CHECK(bitmap[0] == 0xa5 && bitmap[1] == 0xa5 && last()->size[1] == 2, "dirty bitmap");
    CHECK_OK(xendevicemodel_modified_memory(h, 5, 0x10, 2));
    CHECK(last()->nr_bufs == 2 && last()->size[1] == 16, "modified_memory: 32 + 16 bytes");
    fp_fail_next(XEN_DMOP_set_isa_irq_level, ESRCH, 1);
    CHECK_FAILS(xendevicemodel_set_isa_irq_level(h, 5, 1, 1), ESRCH);
    CHECK_OK(xendevicemodel_set_isa_irq_level(h, 5, 1, 1));
    CHECK_FAILS(xendevicemodel_set_isa_irq_level(h, 0x7ff0, 1, 1), ESRCH);
    CHECK_FAILS(xendevicemodel_set_isa_irq_level(h, 0, 1, 1), EPERM);
    unsigned vcpus = 0;
    CHECK_OK(xendevicemodel_nr_vcpus(h, 5, &vcpus));
    CHECK(vcpus == 4, "vcpus %u", vcpus);
    CHECK_OK(xendevicemodel_restrict(h, 5));
    CHECK_FAILS(xendevicemodel_set_isa_irq_level(h, 6, 1, 1), EPERM);
    CHECK_FAILS(xendevicemodel_restrict(h, 6), EINVAL);
    CHECK_OK(xendevicemodel_close(h));

    /* Without the DM_OP ioctl, Xen's library goes through libxencall. */
    fp_config("probe_errno", ENOTTY);
    h = xendevicemodel_open(NULL, 0);
    fp_config("probe_errno", 0);
    CHECK(h != NULL, "open (ENOTTY)");
    CHECK_OK(xendevicemodel_set_isa_irq_level(h, 5, 4, 1));
    r = last();
    op = (struct xen_dm_op *)r->data[0];
    CHECK(r->kind == FP_HYPERCALL && r->size[0] == 32 && op->op == XEN_DMOP_set_isa_irq_level &&
          op->u.set_isa_irq_level.isa_irq == 4, "hypercall record");
    CHECK_OK(xendevicemodel_nr_vcpus(h, 5, &vcpus));
    CHECK(vcpus == 4, "vcpus through the hypercall: %u", vcpus);
    CHECK_OK(xendevicemodel_close(h));
    return t_done("fakeprivcmd");
}
