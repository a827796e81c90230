#!/bin/sh
# Bring up the virtual functions of every SR-IOV NVMe controller in a fixture capture guest
# (run by tools/capture_fixtures.py, chrooted into the host's root for nvme-cli).
# QEMU's NVMe VFs start offline with no queues: the primary controller must hand its
# flexible queue and interrupt resources to each secondary controller and set it online
# (NVMe Virtualization Management), as QEMU's docs/system/devices/nvme.rst describes.
set -eu

# Queues (admin + one I/O) and interrupts given to each VF; the fixture's
# sriov_vq_flexible and sriov_vi_flexible hold exactly this much per VF.
QUEUES_PER_VF=2
INTERRUPTS_PER_VF=1

wait_for() {
    tries=120
    until [ -e "$1" ]; do
        tries=$((tries - 1))
        [ "$tries" -gt 0 ] || { echo "timed out waiting for $1" >&2; exit 1; }
        sleep 0.5
    done
}

for function in /sys/bus/pci/devices/*; do
    [ -r "$function/sriov_totalvfs" ] || continue
    total=$(cat "$function/sriov_totalvfs")
    [ "$total" -gt 0 ] || continue
    wait_for "$function/nvme"
    controller=/dev/$(ls "$function/nvme")
    wait_for "$controller"
    # Take the flexible resources away from the primary controller; a function level
    # reset makes it let go of them.
    nvme virt-mgmt "$controller" --cntlid=0 --rt=1 --act=1 --nr=0
    nvme virt-mgmt "$controller" --cntlid=0 --rt=0 --act=1 --nr=0
    echo 1 > "$function/reset"
    # VFs come up offline, so nvme's first probe of each fails; they stay open to
    # binding only while sriov_drivers_autoprobe is on (the kernel decides that when it
    # adds them), so bind again once they are online.
    echo "$total" > "$function/sriov_numvfs"
    secondary=1
    while [ "$secondary" -le "$total" ]; do
        nvme virt-mgmt "$controller" --cntlid="$secondary" --rt=1 --act=8 --nr="$INTERRUPTS_PER_VF"
        nvme virt-mgmt "$controller" --cntlid="$secondary" --rt=0 --act=8 --nr="$QUEUES_PER_VF"
        nvme virt-mgmt "$controller" --cntlid="$secondary" --rt=0 --act=9 --nr=0
        secondary=$((secondary + 1))
    done
    for virtfn in "$function"/virtfn*; do
        vf=$(basename "$(readlink -f "$virtfn")")
        if [ -e "/sys/bus/pci/devices/$vf/driver" ]; then
            echo "$vf" > "/sys/bus/pci/devices/$vf/driver/unbind"
        fi
        echo "$vf" > /sys/bus/pci/drivers/nvme/bind
    done
done
