#!/bin/sh
# Add a software RDMA device (rxe) on the guest's first Ethernet port, so that the
# fixture holds an RDMA device with no PCI parent, which can never be a P2PDMA client.
# Run by tools/capture_fixtures.py in the guest, chrooted into the host's root for ip
# and rdma (iproute2).
set -eu

for netdev in /sys/class/net/*; do
    [ -e "$netdev/device" ] || continue
    name=$(basename "$netdev")
    ip link set "$name" up
    rdma link add "rxe_$name" type rxe netdev "$name"
    exit 0
done
echo "no Ethernet port with a device to put rxe on" >&2
exit 1
