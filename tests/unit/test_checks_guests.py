"""The checks against a real P2PDMA kernel's answers, on snapshots captured from QEMU guests.

For every namespace and provider tools/capture_fixtures.py asked nvmet about, the checks
must say what the kernel said: a named provider that nvmet refused at ``p2pmem`` (ENODEV)
or at ``enable`` (EINVAL) fails, an accepted one passes; with ``p2pmem=1`` (``auto``) the
provider-less locality check passes exactly when the kernel found a provider.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any, Dict, List

import pytest

from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.checks import FAIL, run_checks
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.model import Node
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.reader import read_node
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.report import judge_node
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.snapshot import open_snapshot

GUESTS = Path(__file__).resolve().parent.parent / "fixtures" / "guests"
FIXTURES = sorted(path.parent.name for path in GUESTS.glob("*/kernel-answers.json"))


@functools.cache
def _node(name: str) -> Node:
    return read_node(open_snapshot(str(GUESTS / name / "snapshot.tar.gz")))


def _answers() -> List[Any]:
    params = []
    for name in FIXTURES:
        for answer in json.loads((GUESTS / name / "kernel-answers.json").read_text())["answers"]:
            params.append(pytest.param(name, answer, id="%s-%s-%s" % (name, answer["namespace"], answer["provider"])))
    return params


@pytest.mark.parametrize("name, answer", _answers())
def test_checks_agree_with_the_kernel(name: str, answer: Dict[str, Any]) -> None:
    client = answer["namespace"]
    if answer["provider"] == "auto":
        results = {r.id: r for r in run_checks(_node(name), clients=[client])}
        assert (results["locality"].status != FAIL) == answer["ok"], results["locality"].why
        return
    provider = answer["provider"]
    results = {r.id: r for r in run_checks(_node(name), providers=[provider], clients=[client])}
    refused_by = [
        check_id
        for check_id in ("provider:%s" % provider, "locality:%s" % provider)
        if results[check_id].status == FAIL
    ]
    if answer["ok"]:
        assert refused_by == []
    elif answer["stage"] == "p2pmem":
        assert refused_by[:1] == ["provider:%s" % provider]
    else:
        assert "locality:%s" % provider in refused_by


def test_the_pseudo_cmb_guest_is_pointed_at_the_quirk() -> None:
    # The kernel refused its PMR drive as a provider (ENODEV); the fix is the project's own quirk.
    results = {r.id: r for r in run_checks(_node("pseudo-cmb"), providers=["0000:03:00.0"], clients=["nvme1n1"])}
    provider = results["provider:0000:03:00.0"]
    assert provider.status == FAIL
    assert "advertises no CMB (CMBSZ 0) but has memory on BAR 4" in provider.why
    assert "nvme.pseudo_cmb=1b36:0010" in (provider.fix or "")
    assert "kernel_install_pseudo_cmb_ids: ['1b36:0010']" in (provider.fix or "")


def test_a_guests_report_counts_its_checks_and_lists_every_pair() -> None:
    _results, report = judge_node(_node("switch"), accept={"rdma:rxe_eth0": "the lab guest's NIC is emulated"})
    assert report["format"] == "p2pdma.storage/report/v1"
    assert report["kernel"]["release"] == "6.1.192" and report["kernel"]["rules"]["whitelist_entries"] == 10
    summary = report["summary"]
    assert summary["PASS"] + summary["WARN"] + summary["FAIL"] + summary["accepted"] == len(report["checks"])
    assert summary["accepted"] == 1
    # Three published providers, four NVMe controllers, no hardware RDMA device.
    assert len(report["pairs"]) == 12
    assert {pair["client_name"] for pair in report["pairs"]} == {"nvme0", "nvme1", "nvme2", "nvme3"}
