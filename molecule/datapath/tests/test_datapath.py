"""Verify the datapath scenario: 64 MiB moved peer to peer through cmb0's BAR, intact; refusals wrote nothing.

converge.yml leaves the module results, QEMU's DMA trace read before and after the copy
(`p2pctl lab dma --json`) and cmb1's checksums in /root/datapath.json, and cmb1's checksum after
the last refusal in /root/datapath.json.after-fs-refusal.
"""

from __future__ import annotations

import json
from typing import Any, Dict

import pytest

RESULTS = "/root/datapath.json"
MIB = 1 << 20
# QEMU's NVMe model puts the CMB in BAR 2.
CMB_BAR = 2


@pytest.fixture()
def results(host: Any) -> Dict[str, Any]:
    return json.loads(host.file(RESULTS).content_string)


def _bytes_into(rows: Any, bdf: str) -> int:
    return sum(row["bytes"] for row in rows if row.get("bdf") == bdf and row.get("bar") == CMB_BAR)


def test_the_copy_went_through_p2pmem_and_arrived_intact(results: Dict[str, Any]) -> None:
    copy = results["copy"]
    assert copy["bytes"] == 64 * MIB
    assert copy["p2p_used"] is True
    assert copy["sha256"]["source"] == copy["sha256"]["destination"]


def test_the_drives_dmaed_the_copy_into_and_out_of_cmb0s_bar(results: Dict[str, Any]) -> None:
    cmb0 = results["bdf"]["cmb0"]
    moved = _bytes_into(results["dma_after"], cmb0) - _bytes_into(results["dma_before"], cmb0)
    # plain0 writes the 64 MiB into the BAR, cmb1 reads them out of it; the host-memory comparison copy stays out.
    assert moved == 2 * 64 * MIB


@pytest.mark.parametrize(
    "refusal, said",
    [
        ("cmb2", "the kernel refuses p2pmem of"),
        ("size", "larger than the 67108864 bytes of p2pmem available"),
        ("filesystem", "carries a signature: ext2/3/4"),
    ],
)
def test_refusals_fail_with_the_reason(results: Dict[str, Any], refusal: str, said: str) -> None:
    # converge registers refusals with failed_when: false, so a refusal is a result with a msg and no copy.
    result = results["refusals"][refusal]
    assert "bytes" not in result and "p2p_used" not in result
    assert said in result["msg"]


def test_the_refusals_wrote_nothing(host: Any, results: Dict[str, Any]) -> None:
    sums = results["cmb1_sha256"]
    assert sums["after_refusals"] == results["copy"]["sha256"]["destination"]
    assert sums["with_fs"] != sums["after_refusals"]
    assert host.file(RESULTS + ".after-fs-refusal").content_string.strip() == sums["with_fs"]
