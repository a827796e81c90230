"""The engine's verdicts against a real P2PDMA kernel's own answers, on real sysfs trees.

Each fixture under tests/fixtures/guests/ was captured from a QEMU guest by
tools/capture_fixtures.py (docs/fixtures.md): a snapshot of the node, and for every
NVMe namespace and candidate provider what the kernel said when nvmet was asked to use
that provider's p2pmem for that namespace.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.model import Node
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.reader import read_node
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.snapshot import open_snapshot
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.verdict import MapType, pair_verdict

GUESTS = Path(__file__).resolve().parent.parent / "fixtures" / "guests"
# "switch" for the default 6.1 guest, "linux-6.12/switch" for a fixture of another kernel.
FIXTURE_NAMES = sorted(str(path.parent.relative_to(GUESTS)) for path in GUESTS.glob("**/kernel-answers.json"))

# The lines drivers/pci/p2pdma.c logs when nvmet asks verbosely; other kernel lines
# (nvmet's own, for instance) say nothing about the verdict.
P2PDMA_LOG = re.compile(
    r"ACS redirect is set|pci=disable_acs_redir=|not in P2PDMA whitelist|do not share an upstream bridge"
    r"|not a PCI device"
)
# dev_printk() puts the driver (or bus) name before the device: "nvme 0000:01:00.0: ...".
DEVICE_PREFIX = re.compile(r"^\S+ ([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]: )")


def _answers(name: str) -> Dict[str, Any]:
    return json.loads((GUESTS / name / "kernel-answers.json").read_text())


@functools.cache
def _node(name: str) -> Node:
    return read_node(open_snapshot(str(GUESTS / name / "snapshot.tar.gz")))


def _attempts(stage: Optional[str] = None, auto: Optional[bool] = None) -> List[Any]:
    params = []
    for name in FIXTURE_NAMES:
        for answer in _answers(name)["answers"]:
            if stage is not None and answer["stage"] != stage:
                continue
            if auto is not None and (answer["provider"] == "auto") != auto:
                continue
            params.append(pytest.param(name, answer, id="%s-%s-%s" % (name, answer["namespace"], answer["provider"])))
    return params


def _p2pdma_log(lines: List[str]) -> List[str]:
    return [DEVICE_PREFIX.sub(r"\1", line) for line in lines if P2PDMA_LOG.search(line)]


def test_fixtures_are_present() -> None:
    """The parametrized tests below silently shrink to nothing if the fixtures go missing."""
    assert FIXTURE_NAMES, "no guest fixtures under %s: run tools/capture_fixtures.py" % GUESTS


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_p2pmem_matches_the_guest(name: str) -> None:
    node = _node(name)
    in_model = {
        bdf: {"size": fn.p2pmem.size, "available": fn.p2pmem.available, "published": int(fn.p2pmem.published)}
        for bdf, fn in node.functions.items()
        if fn.p2pmem is not None
    }
    assert in_model == _answers(name)["p2pmem"]


@pytest.mark.parametrize("name", FIXTURE_NAMES)
def test_rdma_devices_match_the_guest(name: str) -> None:
    """Each RDMA device on the PCI function the guest had it on, software RDMA (rxe) on none."""
    node = _node(name)
    assert {device.name: device.bdf for device in node.rdma.values()} == _answers(name)["rdma"]
    for device in node.rdma.values():
        assert (device.software is not None) == (device.bdf is None), device
        if device.bdf is None:
            assert not pair_verdict(node, next(iter(_answers(name)["p2pmem"])), device.name).supported


@pytest.mark.parametrize("name, answer", _attempts(auto=False))
def test_naming_a_provider_needs_published_p2pmem(name: str, answer: Dict[str, Any]) -> None:
    """nvmet's p2pmem store refuses (ENODEV) a function without published p2pmem."""
    provider = _node(name).functions[answer["provider"]]
    published = provider.p2pmem is not None and provider.p2pmem.published
    assert (answer["stage"] == "enable") == published, answer
    if not published:
        assert answer["errno"] == "ENODEV"


@pytest.mark.parametrize("name, answer", _attempts(auto=False))
def test_namespace_client_is_the_kernels(name: str, answer: Dict[str, Any]) -> None:
    """The PCI function nvmet's distance check starts from (none for a multipath head node)."""
    assert _node(name).pci_parent_of(answer["namespace"]) == answer["client"]


@pytest.mark.parametrize("name, answer", _attempts(stage="enable", auto=False))
def test_verdict_matches_the_kernel(name: str, answer: Dict[str, Any]) -> None:
    # By namespace name, as nvmet judges it: a multipath head node is no PCI client.
    verdict = pair_verdict(_node(name), answer["provider"], answer["namespace"])
    said = {"kernel": "accepted" if answer["ok"] else "refused (%s)" % answer["errno"], "we": verdict.map_type}
    assert verdict.supported == answer["ok"], said
    if not answer["ok"]:
        assert answer["errno"] == "EINVAL"
    log = " ".join(answer["kernel_log"])
    if "not in P2PDMA whitelist" in log or "do not share an upstream bridge" in log:
        assert verdict.map_type == MapType.NOT_SUPPORTED, said
    elif "ACS redirect is set" in log:
        assert verdict.map_type == MapType.THRU_HOST_BRIDGE, said
    redirect = re.search(r"pci=disable_acs_redir=(\S+)", log)
    assert verdict.acs_redirect == (redirect.group(1).split(";") if redirect else []), said


@pytest.mark.parametrize(
    "name, answer", [attempt for attempt in _attempts(stage="enable", auto=False) if attempt.values[1]["client"]]
)
def test_predicted_kernel_log_matches(name: str, answer: Dict[str, Any]) -> None:
    """For PCI clients: nvmet refuses other namespaces (multipath heads) before P2PDMA logs anything."""
    verdict = pair_verdict(_node(name), answer["provider"], answer["client"])
    assert _p2pdma_log(verdict.kernel_log) == _p2pdma_log(answer["kernel_log"])


@pytest.mark.parametrize("name, answer", _attempts(auto=True))
def test_auto_pick_matches_the_kernel(name: str, answer: Dict[str, Any]) -> None:
    """p2pmem=1: enable succeeds when some published provider is compatible (pci_p2pmem_find())."""
    node = _node(name)
    compatible = [
        bdf
        for bdf, fn in node.functions.items()
        if fn.p2pmem is not None and fn.p2pmem.published and pair_verdict(node, bdf, answer["namespace"]).supported
    ]
    assert bool(compatible) == answer["ok"], {"kernel": answer, "compatible providers": compatible}
