# Sourced by tests/guest/run.sh: puts the toolkit check's pieces into the
# guest's initramfs ($GI: toolkit-guest.sh, the static toolkit-guest,
# uio_pci_generic) and into dom0's payload ($P, $I: the Rust device model
# and its libraries, toolkit.sh).
cargo build --release -q -p ioreq-pci-device || die "cannot build examples/ioreq-pci-device"
cp target/release/ioreq-pci-device "$P/guest/"
vm_copy_libs "$I" "$P/guest/ioreq-pci-device"
cp tests/guest/toolkit.sh "$P/guest/"
program toolkit-guest "$GI/toolkit-guest" || die "cannot build toolkit-guest"
cp tests/guest/toolkit-guest.sh "$GI/"
chmod +x "$GI/toolkit-guest.sh"
list modules.uio uio_pci_generic
