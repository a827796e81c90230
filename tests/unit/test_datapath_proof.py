"""tools/datapath_proof.py: where the drives DMAed, from QEMU's pci_nvme_map_addr trace."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
sys.path.insert(0, str(REPO / "tools"))  # datapath_proof imports capture_fixtures next to it
_spec = importlib.util.spec_from_file_location("datapath_proof", REPO / "tools" / "datapath_proof.py")
assert _spec is not None and _spec.loader is not None
proof = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(proof)

# cmb0's resource file in the 6.12 switch guest: BAR 0 registers, BAR 2 the 64 MiB CMB.
RESOURCE = """0x00000000fe600000 0x00000000fe603fff 0x0000000000140204
0x0000000000000000 0x0000000000000000 0x0000000000000000
0x00000000f0000000 0x00000000f3ffffff 0x000000000014220c
0x0000000000000000 0x0000000000000000 0x0000000000000000
"""


def test_bar_range_reads_the_cmb_bar_from_the_resource_file():
    assert proof.bar_range(RESOURCE) == (0xF0000000, 0xF3FFFFFF)


def test_dma_inside_counts_events_and_bytes_in_the_bar():
    # The first two lines are from the proof run's trace (QEMU 7.2, log backend), the rest made alike.
    lines = [
        "pci_nvme_map_addr addr 0xf0000000 len 524288",
        "pci_nvme_map_addr addr 0xf0080000 len 524288",
        "pci_nvme_map_addr addr 0x3a1c000 len 4096",
        "pci_nvme_map_addr addr 0xf3fff800 len 4096",  # runs past the BAR's end
        "pci_nvme_map_prp trans_len 4096 len 4096 prp1 0x1 prp2 0x0 num_prps 1",
    ]
    assert proof.dma_inside(lines, 0xF0000000, 0xF3FFFFFF) == {
        "events_inside": 2, "bytes_inside": 1048576, "events_outside": 2, "bytes_outside": 8192,
    }
