# xendevicemodel-rs: build, test, demonstrate and install the drop-in
# replacement for Xen's libxendevicemodel.so.1.
#
#   make            library (build/libxendevicemodel.so.1.4) and header
#   make check      every test: cargo tests, ABI checks, the C harness (also under valgrind)
#   make demo       a QEMU-like device model run against the privcmd test double
#   make bench      ours vs Xen's library vs the bare ioctl, side by side
#   make xen-check  boot Xen 4.17 under QEMU and run the tests on the real hypervisor
#   make install    PREFIX=/usr/local LIBDIR=$(PREFIX)/lib DESTDIR=
#   make header     regenerate include/xendevicemodel.h from src/ffi.rs

PREFIX   ?= /usr/local
LIBDIR   ?= $(PREFIX)/lib
INCDIR   ?= $(PREFIX)/include
DESTDIR  ?=
CC       ?= cc
CARGO    ?= cargo

B        := build
REALNAME := libxendevicemodel.so.1.4
SONAME   := libxendevicemodel.so.1
LIB      := $(B)/$(REALNAME)
SHIM     := $(B)/libfakeprivcmd.so
CFLAGS   ?= -O2 -g
CWARN    := -std=gnu11 -Wall -Wextra -Werror
RUSTSRC  := $(wildcard src/*.rs) Cargo.toml build.rs cbindgen.toml xendevicemodel.map tools/cc-link

# Debian packages the build and the tests need (see deps).
DEB_PKGS := libxen-dev pkg-config valgrind abigail-tools gcc make qemu-system-xen

.PHONY: all lib header deps check demo bench xen-check install clean
all: lib

# Installs what is missing when run as root; otherwise says what to install.
deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing: $$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing Debian packages; run: sudo apt-get update && sudo apt-get install -y $$missing" >&2; exit 1; \
	  fi; \
	fi

$(B)/.dir:
	@mkdir -p $(B) && touch $@

lib: $(LIB)
$(LIB): $(RUSTSRC) | deps $(B)/.dir
	$(CARGO) build --release --locked
	cp target/release/libxendevicemodel.so $@
	ln -sf $(REALNAME) $(B)/$(SONAME)
	ln -sf $(SONAME) $(B)/libxendevicemodel.so

header: deps
	XDM_WRITE_HEADER=1 $(CARGO) build --release --locked

# The privcmd test double (an LD_PRELOAD shim) and its self-test.
$(SHIM): tests/fake/fakeprivcmd.c tests/fake/fakeprivcmd.h | deps $(B)/.dir
	$(CC) $(CFLAGS) $(CWARN) -shared -fPIC -o $@ $< -ldl -lpthread

# C test programs: compiled against our header, linked to our library; the
# same binaries run against Xen's library by switching LD_LIBRARY_PATH.
HARNESS := $(patsubst tests/harness/%.c,$(B)/%,$(wildcard tests/harness/test_*.c))
$(B)/test_%: tests/harness/test_%.c tests/harness/check.h include/xendevicemodel.h tests/fake/fakeprivcmd.h $(LIB) $(SHIM)
	$(CC) $(CFLAGS) $(CWARN) -Iinclude -Itests/fake -Itests/harness -o $@ $< \
	  -L$(B) -lfakeprivcmd -lxendevicemodel -lxentoolcore -lxentoollog -lpthread

# Debian's original library, alone in a directory, for LD_LIBRARY_PATH.
$(B)/orig/libxendevicemodel.so.1: | deps $(B)/.dir
	mkdir -p $(B)/orig
	ln -sf /usr/lib/x86_64-linux-gnu/libxendevicemodel.so.1 $@

$(B)/fake-selftest: tests/fake/selftest.c tests/fake/fakeprivcmd.h tests/harness/check.h $(SHIM) $(B)/orig/libxendevicemodel.so.1
	$(CC) $(CFLAGS) -Wall -Werror -Itests/fake -Itests/harness -o $@ $< -L$(B) -lfakeprivcmd \
	  /usr/lib/x86_64-linux-gnu/libxendevicemodel.so.1 -lxentoolcore

$(B)/demo: tests/demo/demo.c include/xendevicemodel.h $(LIB) $(SHIM)
	$(CC) $(CFLAGS) $(CWARN) -Iinclude -o $@ $< -L$(B) -lxendevicemodel

check: lib $(SHIM) $(HARNESS) $(B)/fake-selftest $(B)/orig/libxendevicemodel.so.1
	CARGO="$(CARGO)" CC="$(CC)" bash tests/run-all.sh

demo: $(B)/demo
	@echo "== a QEMU-like device model, against the privcmd test double (FAKEPRIVCMD_TRACE=1) =="
	LD_LIBRARY_PATH=$(B) LD_PRELOAD=$(SHIM) FAKEPRIVCMD_TRACE=1 $(B)/demo

bench: lib $(SHIM) $(B)/orig/libxendevicemodel.so.1
	bash tests/bench/run.sh

xen-check: lib $(SHIM)
	bash tests/xen-hypervisor/run.sh

install: lib
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR) $(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 0755 $(LIB) $(DESTDIR)$(LIBDIR)/$(REALNAME)
	ln -sf $(REALNAME) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libxendevicemodel.so
	install -m 0644 include/xendevicemodel.h $(DESTDIR)$(INCDIR)/xendevicemodel.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCDIR@|$(INCDIR)|' \
	  xendevicemodel.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/xendevicemodel.pc

clean:
	rm -rf $(B)
	$(CARGO) clean

# Real guests and the sandbox test (mk/guest.mk).
-include mk/guest.mk
