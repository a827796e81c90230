"""Where the lab's drives DMAed: QEMU's pci_nvme_map_addr trace mapped onto the guest's BARs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from p2pctl.lab.dmatrace import TRACE_FILE, Bar, landings, parse_resource
from p2pctl.lab.node import LabNode
from p2pctl.lab.topologies import get_topology

# cmb0's resource file in the 6.12 switch guest: BAR 0 registers, BAR 2 the 64 MiB CMB.
CMB0_RESOURCE = """0x00000000fe600000 0x00000000fe603fff 0x0000000000140204
0x0000000000000000 0x0000000000000000 0x0000000000000000
0x00000000f0000000 0x00000000f3ffffff 0x000000000014220c
0x0000000000000000 0x0000000000000000 0x0000000000000000
0x0000000000000000 0x0000000000000000 0x0000000000000000
0x0000000000000000 0x0000000000000000 0x0000000000000000
0x0000000000000000 0x0000000000000000 0x0000000000000000
"""
PLAIN0_RESOURCE = "0x00000000fe400000 0x00000000fe403fff 0x0000000000140204\n"
# The first two lines are from the proof run's trace (QEMU 7.2, log backend), the rest made alike.
TRACE = [
    "pci_nvme_map_addr addr 0xf0000000 len 524288",
    "pci_nvme_map_addr addr 0xf0080000 len 524288",
    "pci_nvme_map_addr addr 0x3a1c000 len 4096",
    "pci_nvme_map_addr addr 0xf3fff800 len 4096",  # runs past the BAR's end: not inside it
    "pci_nvme_map_prp trans_len 4096 len 4096 prp1 0x1 prp2 0x0 num_prps 1",
]


def test_the_resource_file_gives_the_used_bars():
    assert parse_resource("0000:03:00.0", CMB0_RESOURCE) == [
        Bar("0000:03:00.0", 0, 0xFE600000, 0xFE603FFF),
        Bar("0000:03:00.0", 2, 0xF0000000, 0xF3FFFFFF),
    ]


def test_dma_is_counted_per_bar_and_the_rest_is_system_memory():
    guest = "== 0000:03:00.0\n%s== 0000:05:00.0\n%s" % (CMB0_RESOURCE, PLAIN0_RESOURCE)
    assert [row.to_dict() for row in landings(TRACE, guest)] == [
        {"where": "0000:03:00.0 BAR 2", "bdf": "0000:03:00.0", "bar": 2, "range": "0xf0000000-0xf3ffffff",
         "events": 2, "bytes": 1048576},
        {"where": "system memory", "events": 2, "bytes": 8192},
    ]


@pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="needs qemu-system-x86_64")
def test_qemu_opens_the_trace_file_of_a_node_started_with_trace_dma(tmp_path, monkeypatch):
    monkeypatch.setenv("P2PCTL_CACHE", str(tmp_path / "cache"))
    node = LabNode("trace")
    node.dir.mkdir(parents=True)
    node.config_file.write_text(json.dumps({"topology": "switch", "ssh_port": 0, "base_image": "/nonexistent"}))
    topology = get_topology("switch")
    for drive in topology.drives:
        (node.dir / ("nvme-%s.raw" % drive.id)).write_bytes(b"")
        os.truncate(node.dir / ("nvme-%s.raw" % drive.id), drive.size_mb << 20)
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(node.overlay), "64M"], check=True)
    argv = node.qemu_argv("qemu-system-x86_64", topology, ssh_port=0, trace_dma=True) + ["-S"]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    try:
        assert done.returncode == 0, done.stderr
        assert Path(node.dir / TRACE_FILE).exists()
    finally:
        node._kill()
