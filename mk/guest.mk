# Real guests (`make guest-check`) and QEMU's sandbox policy (`make sandbox-check`),
# included from the Makefile. See tests/guest/ and tests/sandbox/.
.PHONY: guest-check sandbox-check

# HVM Linux guests on Debian's QEMU for Xen, with Xen's library and with ours,
# on Xen 4.17 booted under QEMU (TCG); needs what xen-check needs.
guest-check: lib
	bash tests/guest/run.sh

# The library under a seccomp filter equivalent to QEMU's -sandbox on,
# obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny, with
# ours and with Xen's library, against the privcmd test double.
$(B)/sandbox: tests/sandbox/sandbox.c tests/harness/check.h include/xendevicemodel.h tests/fake/fakeprivcmd.h $(LIB) $(SHIM)
	$(CC) $(CFLAGS) $(CWARN) -Iinclude -Itests/fake -Itests/harness -o $@ $< \
	  -L$(B) -lfakeprivcmd -lxendevicemodel -lxentoolcore -lxentoollog -lpthread

sandbox-check: $(B)/sandbox $(SHIM) $(B)/orig/libxendevicemodel.so.1
	bash tests/sandbox/run.sh
