"""Verify the kernel scenario on the pseudo-cmb node: p2pmem on both drives, BAR 4 through the quirk."""

from __future__ import annotations

from typing import Any

testinfra_hosts = ["molecule-kernel"]

PMR_DRIVE = "0000:03:00.0"  # pmr0: QEMU PMR on BAR 4, CMBSZ = 0
CMB_DRIVE = "0000:04:00.0"  # cmb0: a real 64 MiB CMB


def test_the_command_line_carries_the_parameters(host: Any) -> None:
    params = host.file("/proc/cmdline").content_string.split()
    assert "nvme.pseudo_cmb=1b36:0010" in params
    assert "nvme.use_cmb_sqes=0" in params


def test_pseudo_cmb_publishes_bar4_as_p2pmem(host: Any) -> None:
    p2pmem = "/sys/bus/pci/devices/%s/p2pmem" % PMR_DRIVE
    assert host.file(p2pmem + "/published").content_string.strip() == "1"
    assert int(host.file(p2pmem + "/size").content_string) == 32 * 1024 * 1024
    # The synthesized CMBSZ: SZ = 2 units of SZU 3 (16 MiB), WDS | RDS.
    cmbsz = int(host.check_output("cat /sys/bus/pci/devices/%s/nvme/nvme*/cmbsz" % PMR_DRIVE))
    assert cmbsz == (2 << 12) | (3 << 8) | (1 << 4) | (1 << 3)


def test_real_cmb_is_whole_for_peer_to_peer(host: Any) -> None:
    p2pmem = "/sys/bus/pci/devices/%s/p2pmem" % CMB_DRIVE
    assert host.file(p2pmem + "/published").content_string.strip() == "1"
    assert int(host.file(p2pmem + "/available").content_string) == 64 * 1024 * 1024
