# Debian package of the library (issue 13), included by the Makefile.
#
#   make deb             build/deb/: libxendevicemodel1-rs and its -dbgsym package, .buildinfo, .changes
#   make deb ARCH=arm64  the same for another architecture, packaging build/arm64/ (cross builds: issue 10)
#   make deb-lint        lintian on the packages
#   make deb-check       build, lint, install, reinstall Xen's package, purge: on this machine, or in a
#                        chroot with DEB_CHECK_ROOT=/path (see tests/deb/run.sh); with DIST=trixie
#                        all of it inside the Debian 13 root (mk/dist.mk)
#   make deb-upgrade-check  Debian 12 with the package installed, upgraded to Debian 13, in a root of
#                        its own (tests/deb/upgrade.sh)

DEB_BUILD_ARCH := $(shell dpkg --print-architecture)
DEB_ARCH       := $(or $(ARCH),$(DEB_BUILD_ARCH))
DEB_OUT        := $(B)/deb
# The first changelog line's version (dpkg-parsechangelog may not be installed yet).
DEB_VERSION    := $(shell sed -n '1s/^[^(]*(\([^)]*\)).*/\1/p' debian/changelog)
DEB_CHANGES    := $(DEB_OUT)/xendevicemodel-rs_$(DEB_VERSION)_$(DEB_ARCH).changes
# The packaging tools a fresh Debian 12 lacks; dpkg-buildpackage also checks
# for build-essential, which it treats as an implicit build dependency.
DEB_TOOLS      := debhelper lintian dpkg-dev build-essential
DEB_CHECK_ROOT ?=
# In a root of tests/dist/mkroot.sh (no service can start there), deb-check
# has Xen's toolstack installed too, so that xl is among the users it checks.
DEB_CHECK_PKGS := $(if $(wildcard /etc/xendevicemodel-rs-root),$(DIST_XEN_UTILS_PKG))
# Build dependencies of another architecture are unpacked by the cross build
# (make deps ARCH=...), not installed, so dpkg-buildpackage cannot check them.
DEB_CROSS_OPTS := $(if $(filter $(DEB_BUILD_ARCH),$(DEB_ARCH)),,-d)

.PHONY: deb deb-deps deb-lint deb-check deb-upgrade-check

deb-deps:
	@ME=deb-deps bash tests/lib/common.sh need_debs $(DEB_TOOLS)

# debian/rules builds the library with `make lib` (a no-op when it is up to
# date) and takes it from build/ (native) or build/$(ARCH)/. `deps` installs
# the build dependency libxen-dev.
deb: deps deb-deps
	@mkdir -p $(DEB_OUT)
	rm -f $(DEB_OUT)/*_$(DEB_ARCH).deb $(DEB_OUT)/*_$(DEB_ARCH).buildinfo $(DEB_OUT)/*_$(DEB_ARCH).changes
	dpkg-buildpackage -b -us -uc -a$(DEB_ARCH) $(DEB_CROSS_OPTS) \
	  --buildinfo-option=-u$(DEB_OUT) --buildinfo-file=$(DEB_OUT)/xendevicemodel-rs_$(DEB_VERSION)_$(DEB_ARCH).buildinfo \
	  --changes-option=-u$(DEB_OUT) --changes-file=$(DEB_CHANGES)
	@ls -l $(DEB_OUT)/*_$(DEB_ARCH).*

deb-lint: deb
	lintian --info --display-info --pedantic $(DEB_CHANGES)

deb-check: deb
	@test "$(DEB_ARCH)" = "$(DEB_BUILD_ARCH)" || { echo "deb-check installs the package here: $(DEB_BUILD_ARCH) only" >&2; exit 1; }
	@ME=deb-check bash tests/lib/common.sh need_debs $(DEB_CHECK_PKGS)
	DEB_CHECK_ROOT="$(DEB_CHECK_ROOT)" DEB_CHANGES="$(DEB_CHANGES)" bash tests/run.sh deb

# The package of this release installed on a Debian 12 root, which is then
# upgraded to DIST_NEXT (Debian 13), apt run inside that root only.
deb-upgrade-check: deb
	@test -n "$(DIST_NEXT)" || { echo "deb-upgrade-check: no release after $(DIST) to upgrade to" >&2; exit 1; }
	DEB_CHANGES="$(DEB_CHANGES)" bash tests/run.sh deb-upgrade
