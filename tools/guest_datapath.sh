#!/bin/sh
# Run inside the `switch` guest by tools/datapath_proof.py (chrooted into the host's root,
# so the host's p2pctl runs against the guest's 6.12 P2PDMA kernel). Each step's stdout and
# stderr go to $TMPDIR/<step>.out/.err and "<step> exit <status>" to $TMPDIR/datapath-status.
set -u
PATH=/usr/sbin:/usr/bin:/sbin:/bin
OUT=$TMPDIR
P2PCTL=$(dirname "$(dirname "$(readlink -f "$0")")")/.venv/bin/p2pctl

step() {
    name=$1
    shift
    "$@" > "$OUT/$name.out" 2> "$OUT/$name.err"
    echo "$name exit $?" >> "$OUT/datapath-status"
}

# The controller (nvmeX) whose serial is $1; QEMU's serial= names the drives.
controller() {
    for ctrl in /sys/class/nvme/nvme*; do
        if [ "$(tr -d ' ' < "$ctrl/serial")" = "$1" ]; then basename "$ctrl"; fi
    done
}
namespace() {
    for ns in "/sys/class/nvme/$1"/nvme*n1; do
        [ -e "$ns" ] && basename "$ns"
    done
}
bdf() { basename "$(readlink -f "/sys/class/nvme/$1/device")"; }
# sha256 of a whole namespace read with O_DIRECT (no page cache), to show what a refusal left.
digest() { dd if="/dev/$1" bs=1M iflag=direct status=none | sha256sum | cut -d' ' -f1; }

for _ in $(seq 120); do
    set -- /sys/block/nvme*
    [ -e "$1" ] && [ "$#" -ge 4 ] && break
    sleep 1
done
CMB0=$(controller cmb0)
CMB2=$(controller cmb2)
PLAIN=$(namespace "$(controller plain0)")
DST=$(namespace "$(controller cmb1)")
{
    echo "kernel $(uname -r)"
    echo "cmdline $(cat /proc/cmdline)"
    echo "cmb0 $CMB0 $(bdf "$CMB0")"
    echo "cmb2 $CMB2 $(bdf "$CMB2")"
    echo "plain0 $PLAIN"
    echo "cmb1 $DST"
    echo "available $(cat "/sys/bus/pci/devices/$(bdf "$CMB0")/p2pmem/available")"
} > "$OUT/devices"
cat "/sys/bus/pci/devices/$(bdf "$CMB0")/resource" > "$OUT/cmb0-resource"

step fill dd if=/dev/urandom of="/dev/$PLAIN" bs=1M count=64 oflag=direct status=none
step readonly "$P2PCTL" datapath "/dev/$PLAIN" --provider "$CMB0" --size 4M --json
step copy "$P2PCTL" datapath "/dev/$PLAIN" "/dev/$DST" --provider "$(bdf "$CMB0")" --size 64M --json
digest "$DST" > "$OUT/digest-after-copy"
step refuse-cmb2 "$P2PCTL" datapath "/dev/$PLAIN" "/dev/$DST" --provider "$(bdf "$CMB2")" --size 64M
step refuse-size "$P2PCTL" datapath "/dev/$PLAIN" "/dev/$DST" --provider "$CMB0" --size 65M
digest "$DST" > "$OUT/digest-after-refusals"
step mkfs mkfs.ext4 -q -F "/dev/$DST"
digest "$DST" > "$OUT/digest-after-mkfs"
step refuse-fs "$P2PCTL" datapath "/dev/$PLAIN" "/dev/$DST" --provider "$CMB0" --size 64M
digest "$DST" > "$OUT/digest-after-refuse-fs"
dmesg | tail -n 40 > "$OUT/dmesg-datapath.txt"
