# xendevicemodel-rs: build, test, demonstrate and install the drop-in
# replacement for Xen's libxendevicemodel.so.1.
#
#   make            library (build/libxendevicemodel.so.1.4) and header
#   make check      every test: cargo tests, ABI checks, the C harness (also under valgrind)
#   make check-load make check 3 times with the machine oversubscribed (spinners it starts and stops)
#   make demo       a QEMU-like device model run against the privcmd test double
#   make bench      ours vs Xen's library vs the bare ioctl, side by side (BEFORE=<git ref>: and an older build)
#   make xen-check  boot Xen (4.17 on Debian 12, 4.20 on Debian 13) under QEMU and run the tests on the real hypervisor
#   make guest-check  real Linux guests on QEMU over each library, and a Rust PCI device beside QEMU
#   make docs       API docs, and the generated maps and measured tables in the documents
#   make install    PREFIX=/usr/local LIBDIR=$(PREFIX)/lib DESTDIR=
#   make header     regenerate include/xendevicemodel.h from src/ffi.rs
#
# With ARCH=arm64 or ARCH=armhf, deps, all, lib, check, bench, xen-check and
# clean are mk/arch.mk's: cross-built here, tested under QEMU
# (docs/architectures.md).
#
# DIST=bookworm|trixie (mk/dist.mk) is the Debian release, by default the
# running one. For another release than the running one, every goal runs
# inside a debootstrapped root of it (build/dist/$(DIST)/root; docs/debian-13.md).

include mk/dist.mk
ifneq ($(DIST_VIA_ROOT),)
# mk/dist.mk's rules run the goals in DIST's root.
else ifneq ($(filter arm64 armhf,$(ARCH)),)
include mk/arch.mk
else

PREFIX   ?= /usr/local
LIBDIR   ?= $(PREFIX)/lib
INCDIR   ?= $(PREFIX)/include
DESTDIR  ?=
CC       ?= cc
CARGO    ?= $(DIST_CARGO)

B        := build
REALNAME := libxendevicemodel.so.1.4
SONAME   := libxendevicemodel.so.1
LIB      := $(B)/$(REALNAME)
SHIM     := $(B)/libfakeprivcmd.so
CFLAGS   ?= -O2 -g
CWARN    := -std=gnu11 -Wall -Wextra -Werror
RUSTSRC  := $(wildcard src/*.rs src/*/*.rs crates/xendevicemodel/src/*.rs) Cargo.toml Cargo.lock \
            crates/xendevicemodel/Cargo.toml build.rs cbindgen.toml xendevicemodel.map tools/cc-link

# Debian packages the build and the tests need (see deps).
# (g++: libFuzzer, which the fuzz suites build; bc: tests/run.sh's timings.)
DEB_PKGS := libxen-dev pkg-config valgrind abigail-tools gcc g++ make bc qemu-system-xen $(DIST_RUST_PKGS)

.PHONY: all lib header deps check check-load demo bench xen-check install clean
all: lib

# Installs what is missing when run as root; otherwise says what to install.
deps:
	@ME=deps bash tests/lib/common.sh need_debs $(DEB_PKGS)

$(B)/.dir:
	@mkdir -p $(B) && touch $@

lib: $(LIB)
$(LIB): $(RUSTSRC) | deps $(B)/.dir
	$(CARGO) build --release --locked -p xendevicemodel-rs
	@# A new file renamed into place: a test that has the old one mapped keeps it
	@# (cp would rewrite the mapped file under it).
	cp target/release/libxendevicemodel_rs.so $@.tmp && mv -f $@.tmp $@
	ln -sf $(REALNAME) $(B)/$(SONAME)
	ln -sf $(SONAME) $(B)/libxendevicemodel.so

header: deps
	XDM_WRITE_HEADER=1 $(CARGO) build --release --locked -p xendevicemodel-rs

# The privcmd test double (an LD_PRELOAD shim) and its self-test.
$(SHIM): tests/fake/fakeprivcmd.c tests/fake/fakeprivcmd.h | deps $(B)/.dir
	$(CC) $(CFLAGS) $(CWARN) -shared -fPIC -o $@ $< -ldl -lpthread

# Debian's original library, alone in a directory, for LD_LIBRARY_PATH.
$(B)/orig/libxendevicemodel.so.1: | deps $(B)/.dir
	mkdir -p $(B)/orig
	ln -sf /usr/lib/x86_64-linux-gnu/libxendevicemodel.so.1 $@

$(B)/demo: tests/demo/demo.c include/xendevicemodel.h $(LIB) $(SHIM)
	$(CC) $(CFLAGS) $(CWARN) -Iinclude -o $@ $< -L$(B) -lxendevicemodel

# The one test runner builds the C test programs and runs every suite.
check: lib $(SHIM) $(B)/orig/libxendevicemodel.so.1
	CARGO="$(CARGO)" CC="$(CC)" bash tests/run.sh check

# Loads the machine on purpose: run it alone (CI and helpers: under flock /work/vm.lock).
check-load: lib $(SHIM) $(B)/orig/libxendevicemodel.so.1
	CARGO="$(CARGO)" CC="$(CC)" bash tests/load/run.sh

demo: $(B)/demo
	@echo "== a QEMU-like device model, against the privcmd test double (FAKEPRIVCMD_TRACE=1) =="
	LD_LIBRARY_PATH=$(B) LD_PRELOAD=$(SHIM) FAKEPRIVCMD_TRACE=1 $(B)/demo

# BEFORE=<git ref> adds a column for the library as built from that commit.
bench: lib $(SHIM) $(B)/orig/libxendevicemodel.so.1
	BEFORE="$(BEFORE)" bash tests/bench/run.sh

xen-check: lib $(SHIM)
	CC="$(CC)" bash tests/run.sh xen

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

# Coverage-guided fuzzing of the C ABI against Xen's library (libFuzzer):
# make fuzz FUZZ_SECONDS=3600. `make check` runs it for 20 s.
FUZZ_SECONDS ?= 60
.PHONY: fuzz
fuzz: lib $(SHIM)
	bash tests/fuzz/run.sh $(FUZZ_SECONDS)

# Real HVM Linux guests on Debian's QEMU for Xen, with Xen's library and with
# ours (docs/real-guests.md).
.PHONY: guest-check
guest-check: lib
	CC="$(CC)" bash tests/run.sh guest

endif # native

ifeq ($(DIST_VIA_ROOT),)
-include mk/deb.mk
endif

# Calls, errors and latencies of a call trace (XENDEVICEMODEL_TRACE).
.PHONY: trace-summary
trace-summary:
	@test -n "$(TRACE)" || { echo "usage: make trace-summary TRACE=<trace file>" >&2; exit 2; }
	@sh tools/trace-summary "$(TRACE)"

# The Rust API documentation of the crates a device-model author uses
# (target/doc/<crate>/index.html), docs/architecture.md's generated maps, and
# the tables and figures of the last runs here (build/**/tables/) put into
# the documents.
.PHONY: doc docs
doc docs:
	$(or $(CARGO),cargo) doc --no-deps --all-features -p xendevicemodel -p xendevicemodel-ioreq -p xendevicemodel-virtio
	bash tools/docs-map update
	bash tools/docs-map tables
