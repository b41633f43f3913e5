# mk/dist.mk: the Debian release the build and the tests are for. The ONE
# place for what differs between the releases; the Makefile includes it first
# and exports every DIST_* variable to the test scripts.
#
#   make ... DIST=bookworm   Debian 12: Xen 4.17, QEMU 7.2, Linux 6.1
#   make ... DIST=trixie     Debian 13: Xen 4.20, QEMU 10.0, Linux 6.12
#
# DIST defaults to the release of the machine make runs on (bookworm on the
# project's machines, trixie on a Debian 13 host), or bookworm elsewhere. When
# DIST is not the running release, the goals that need that release's
# userland (DIST_ROOT_GOALS) run inside a debootstrapped root of it,
# build/dist/$(DIST)/root (tests/dist/mkroot.sh makes it, tests/dist/in-root.sh
# enters it): the same goal, the same Makefile, run there natively.
#
#   make dist-root DIST=trixie    make (or complete) the root; fast when it exists
#   make dist-shell DIST=trixie   a shell inside it, the worktree mounted
#   make dist-env DIST=trixie     the DIST_* variables as shell assignments
#   make dist-clean DIST=trixie   delete the root and its build/ and target/

DIST_RUNNING := $(shell . /etc/os-release 2>/dev/null && echo $$VERSION_CODENAME)
DIST ?= $(or $(filter bookworm trixie,$(DIST_RUNNING)),bookworm)

ifeq ($(DIST),bookworm)
DIST_RELEASE      := 12
# The release a Debian 12 host is upgraded to (make deb-upgrade-check).
DIST_NEXT         := trixie
DIST_XEN          := 4.17
DIST_QEMU         := 7.2
DIST_KERNEL       := 6.1
# Package name of the kernel images (the newest is taken): linux-image-6.1.0-N-<arch>.
DIST_KERNEL_RE    := ^linux-image-6\.1\.0-[0-9]+-$(or $(ARCH),amd64)$$
# How many xendevicemodel_* functions Debian's QEMU for Xen imports.
DIST_QEMU_IMPORTS := 19
# Native builds use rustup's toolchain (bookworm's rustc 1.63 is older than the
# crates' rust-version); cross builds use Debian's rustc-web (1.85 and newer)
# with the target's standard library.
DIST_RUST_PKGS    :=
DIST_CARGO        := cargo
DIST_CROSS_RUST_PKGS := rustc-web cargo-web libstd-rust-web-dev
# qemu-user, static, as qemu-<arch>-static.
DIST_QEMU_USER_PKG := qemu-user-static
DIST_QEMU_USER_SUFFIX := -static
# The architectures this release ships Xen's libraries for.
DIST_ARCHES       := amd64 arm64 armhf
else ifeq ($(DIST),trixie)
DIST_RELEASE      := 13
DIST_NEXT         :=
DIST_XEN          := 4.20
DIST_QEMU         := 10.0
DIST_KERNEL       := 6.12
# linux-image-6.12.N+deb13-<arch> (Debian 13 names the ABI after the upstream release).
DIST_KERNEL_RE    := ^linux-image-6\.12\.[0-9]+\+deb13-$(or $(ARCH),amd64)$$
# Debian 12's 19 and xendevicemodel_set_irq_level.
DIST_QEMU_IMPORTS := 20
# Debian 13's own toolchain, 1.85 (rust-version is 1.79): what a Debian 13
# user and Debian's package build have, and a check of the declared MSRV.
DIST_RUST_PKGS    := rustc cargo rustfmt rust-clippy
DIST_CARGO        := /usr/bin/cargo
DIST_CROSS_RUST_PKGS := rustc cargo libstd-rust-dev
# qemu-user is static in Debian 13, as qemu-<arch> (qemu-user-static is a
# transitional package that also pulls qemu-user-binfmt, which would register
# interpreters with the host kernel from inside a root).
DIST_QEMU_USER_PKG := qemu-user
DIST_QEMU_USER_SUFFIX :=
# No armhf: Debian 13 builds Xen (source package xen) for amd64 and arm64 only;
# its armhf archive has no libxendevicemodel1 (read off its Packages index).
DIST_ARCHES       := amd64 arm64
else
$(error DIST=$(DIST) is not supported: use bookworm or trixie)
endif

ifeq ($(filter $(or $(ARCH),amd64),$(DIST_ARCHES)),)
$(error ARCH=$(ARCH): Debian $(DIST_RELEASE) ($(DIST)) ships Xen's libraries for $(DIST_ARCHES) only)
endif

DIST_SUITE          := $(DIST)
# Xen's tools, its hypervisor and its versioned libraries are named after its version.
DIST_XEN_DIR        := /usr/lib/xen-$(DIST_XEN)
DIST_XEN_UTILS_PKG  := xen-utils-$(DIST_XEN)
DIST_XEN_MISC_PKG   := libxenmisc$(DIST_XEN)
DIST_XEN_HYPERVISOR_PKG := xen-hypervisor-$(DIST_XEN)-$(or $(ARCH),amd64)

# The root of DIST, and its build/ and target/ (mounted over the worktree's
# inside it, so that the releases' outputs never mix), as paths on this machine.
DIST_DIR            := build/dist/$(DIST)
DIST_ROOT           := $(DIST_DIR)/root
# Whether goals run inside the root (DIST is not the running release).
DIST_VIA_ROOT       := $(if $(filter $(DIST_RUNNING),$(DIST_SUITE)),,yes)
# Where this release's `make` puts the library, seen from this machine.
DIST_B              := $(if $(DIST_VIA_ROOT),$(DIST_DIR)/build,build)
# Debian packages every root gets (the rest comes from `make deps` inside it).
DIST_ROOT_PKGS      := make bc ca-certificates

DIST_VARS := DIST DIST_ARCHES DIST_SUITE DIST_RELEASE DIST_NEXT DIST_XEN DIST_QEMU DIST_KERNEL DIST_KERNEL_RE DIST_QEMU_IMPORTS \
	DIST_RUST_PKGS DIST_CARGO DIST_CROSS_RUST_PKGS DIST_QEMU_USER_PKG DIST_QEMU_USER_SUFFIX DIST_XEN_DIR DIST_XEN_UTILS_PKG DIST_XEN_MISC_PKG \
	DIST_XEN_HYPERVISOR_PKG DIST_DIR DIST_ROOT DIST_VIA_ROOT DIST_B DIST_ROOT_PKGS
export $(DIST_VARS)

# The goals that need DIST's userland. The VM checks are among them: their
# dom0 gets that release's programs and libraries (xl, QEMU for Xen, Xen's
# library, glibc) and the test programs built there, at their own paths.
DIST_ROOT_GOALS := all lib header deps check demo bench install fuzz deb deb-deps deb-lint deb-check \
	deb-upgrade-check xen-check guest-check
DIST_IN_ROOT    := bash tests/dist/in-root.sh

.PHONY: dist-root dist-shell dist-env dist-clean
dist-root:
	@bash tests/dist/mkroot.sh

dist-shell: dist-root
	$(DIST_IN_ROOT) bash

dist-env:
	@$(foreach v,$(DIST_VARS),printf "%s='%s'\n" $(v) '$($(v))';)

dist-clean:
	rm -rf $(DIST_DIR)

ifneq ($(DIST_VIA_ROOT),)
# DIST is not the running release: the Makefile includes nothing else. Each
# goal of DIST_ROOT_GOALS is `make GOAL` inside the root, with the same
# command-line variables (ARCH=..., DIST=...).
.DEFAULT_GOAL := all
.PHONY: $(DIST_ROOT_GOALS) clean dist-lib
$(DIST_ROOT_GOALS): dist-root
	$(DIST_IN_ROOT) make $@ $(MAKEOVERRIDES)

# The library as the root builds it (make lib there; a no-op when up to date).
dist-lib: dist-root
	$(DIST_IN_ROOT) make lib $(MAKEOVERRIDES)

# The root's build/ and target/ (make dist-clean also deletes the root).
clean:
	rm -rf $(DIST_DIR)/build $(DIST_DIR)/target
endif
