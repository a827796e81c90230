"""Verify the lab_check scenario: the node checks ran on a stock Debian kernel and said so.

converge.yml leaves p2pdma.storage.p2p_check's registered result in /root/p2p_check.json.
"""

from __future__ import annotations

import json
from typing import Any, Dict

import pytest

REPORT = "/root/p2p_check.json"


@pytest.fixture()
def report(host: Any) -> Dict[str, Any]:
    return json.loads(host.file(REPORT).content_string)


@pytest.fixture()
def kernel_check(report: Dict[str, Any]) -> Dict[str, Any]:
    records = [record for record in report["checks"] if record["id"] == "kernel-p2pdma"]
    assert len(records) == 1
    return records[0]


def test_the_node_really_runs_a_kernel_without_p2pdma(host: Any) -> None:
    release = host.check_output("uname -r")
    assert "# CONFIG_PCI_P2PDMA is not set" in host.file("/boot/config-%s" % release).content_string


def test_the_kernel_check_fails_on_the_stock_kernel(kernel_check: Dict[str, Any]) -> None:
    assert kernel_check["status"] == "FAIL"
    assert "CONFIG_PCI_P2PDMA" in kernel_check["why"]


def test_the_kernel_check_gives_the_fix(kernel_check: Dict[str, Any]) -> None:
    assert kernel_check["fix"]
    assert "kernel_build" in kernel_check["fix"]


def test_the_report_as_a_whole_fails_the_task(report: Dict[str, Any]) -> None:
    assert report["status"] == "FAIL"
    # The task failed on FAIL; converge only kept it going to hand the report to this verifier.
    assert report["msg"]
