# Sourced by tests/guest/run.sh: the virtio-blk check's pieces (issue 19).
# dom0's payload ($P, $I): the device model (examples/virtio-blk's
# virtio-blk-dm) and its libraries, blk-guest for the image's checksum,
# blk-dom0.sh (dom0's half). The guest's initramfs ($GI): the static
# blk-guest, blk-guest.sh (the guest's half), the virtio modules in load
# order (modules.virtio; Debian 12's 6.1 has them all as modules).
cargo build --release -q -p virtio-blk --bin virtio-blk-dm || die "cannot build examples/virtio-blk"
cp target/release/virtio-blk-dm "$P/guest/"
$CC -O2 -Wall -Wextra -Werror -o "$P/guest/blk-guest" tests/virtio/blk-guest.c
vm_copy_libs "$I" "$P/guest/virtio-blk-dm" "$P/guest/blk-guest"
cp tests/virtio/blk-dom0.sh "$P/guest/"
$CC -static -s -O2 -Wall -Wextra -Werror -o "$GI/blk-guest" tests/virtio/blk-guest.c
cp tests/virtio/blk-guest.sh "$GI/"
chmod +x "$GI/blk-guest.sh"
list modules.virtio virtio_pci virtio_blk
