/*
 * Prints the ABI facts the library depends on, as this architecture's C
 * compiler sees them in Xen's and Linux's public headers: sizes and offsets of
 * privcmd's and Xen's dm_op structures, the ioctl numbers, the widths of
 * xen_pfn_t, unsigned long, pointers, and the alignment of uint64_t.
 * tests/arch/run.sh compares this output between architectures and against
 * the numbers the Rust code asserts (src/xen.rs). `layout VAR` prints VAR's
 * value instead (run.sh checks that the emulator passes the environment on).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <xenctrl.h> /* first: it sets up the tools view of the public headers */
#include <xen/hvm/dm_op.h>
#include <xen/sys/privcmd.h>

#define S(t) printf("sizeof %s = %zu\n", #t, sizeof(t))
#define A(t) printf("alignof %s = %zu\n", #t, _Alignof(t))
#define O(t, f) printf("offsetof %s.%s = %zu\n", #t, #f, offsetof(t, f))

int main(int argc, char **argv)
{
    if (argc == 2) {
        const char *v = getenv(argv[1]);
        printf("%s=%s\n", argv[1], v ? v : "(unset)");
        return 0;
    }
    S(void *); S(unsigned long); S(size_t); S(xen_pfn_t); S(xen_ulong_t); S(domid_t);
    A(uint64_t); A(xen_pfn_t); A(struct xen_dm_op);
    S(privcmd_dm_op_buf_t); O(privcmd_dm_op_buf_t, uptr); O(privcmd_dm_op_buf_t, size);
    S(privcmd_dm_op_t); O(privcmd_dm_op_t, dom); O(privcmd_dm_op_t, num); O(privcmd_dm_op_t, ubufs);
    printf("IOCTL_PRIVCMD_DM_OP = %#lx\n", (unsigned long)IOCTL_PRIVCMD_DM_OP);
    printf("IOCTL_PRIVCMD_RESTRICT = %#lx\n", (unsigned long)IOCTL_PRIVCMD_RESTRICT);
    printf("IOCTL_PRIVCMD_HYPERCALL = %#lx\n", (unsigned long)IOCTL_PRIVCMD_HYPERCALL);
    S(privcmd_hypercall_t);
    S(struct xen_dm_op_buf); O(struct xen_dm_op_buf, h); O(struct xen_dm_op_buf, size);
    S(struct xen_dm_op); O(struct xen_dm_op, op); O(struct xen_dm_op, pad); O(struct xen_dm_op, u);
    S(struct xen_dm_op_create_ioreq_server); O(struct xen_dm_op_create_ioreq_server, id);
    S(struct xen_dm_op_get_ioreq_server_info); O(struct xen_dm_op_get_ioreq_server_info, bufioreq_port);
    O(struct xen_dm_op_get_ioreq_server_info, ioreq_gfn); O(struct xen_dm_op_get_ioreq_server_info, bufioreq_gfn);
    S(struct xen_dm_op_ioreq_server_range); O(struct xen_dm_op_ioreq_server_range, start);
    O(struct xen_dm_op_ioreq_server_range, end);
    S(struct xen_dm_op_set_ioreq_server_state); S(struct xen_dm_op_destroy_ioreq_server);
    S(struct xen_dm_op_track_dirty_vram); O(struct xen_dm_op_track_dirty_vram, first_pfn);
    S(struct xen_dm_op_set_pci_intx_level); S(struct xen_dm_op_set_isa_irq_level);
    S(struct xen_dm_op_set_pci_link_route); S(struct xen_dm_op_modified_memory);
    S(struct xen_dm_op_modified_memory_extent); O(struct xen_dm_op_modified_memory_extent, first_pfn);
    S(struct xen_dm_op_set_mem_type); O(struct xen_dm_op_set_mem_type, first_pfn);
    S(struct xen_dm_op_inject_event); O(struct xen_dm_op_inject_event, cr2);
    S(struct xen_dm_op_inject_msi); O(struct xen_dm_op_inject_msi, addr);
    S(struct xen_dm_op_map_mem_type_to_ioreq_server); O(struct xen_dm_op_map_mem_type_to_ioreq_server, opaque);
    S(struct xen_dm_op_remote_shutdown);
    S(struct xen_dm_op_relocate_memory); O(struct xen_dm_op_relocate_memory, src_gfn);
    O(struct xen_dm_op_relocate_memory, dst_gfn);
    S(struct xen_dm_op_pin_memory_cacheattr); O(struct xen_dm_op_pin_memory_cacheattr, type);
    S(struct xen_dm_op_set_irq_level); O(struct xen_dm_op_set_irq_level, level);
    S(struct xen_dm_op_nr_vcpus);
    return 0;
}
