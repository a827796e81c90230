"""p2pmem judged with the engine on captured guests: the kernel's own answers, refusals that change nothing."""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import tarfile
import tempfile
from pathlib import Path

import pytest

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.configfs import apply_actions, read_target
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.model import target_from_dict
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.p2pmem import P2PJudge
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.plan import Plan, plan_target
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.fs import SysRoot
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.reader import read_node
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.snapshot import open_snapshot
from tests.support.configfs_tree import ConfigfsTree

GUESTS = Path(__file__).resolve().parent.parent / "fixtures" / "guests"
SWITCH = "linux-6.12/switch"  # the lab node's topology under the lab's 6.12 P2PDMA kernel
SUBSYSTEM = "nqn.2026-01.com.example:p2p"


@functools.cache
def unpacked(name: str) -> SysRoot:
    """The captured guest unpacked into a directory once: the planner's tests write configfs and /dev into it."""
    snapshot = str(GUESTS / name / "snapshot.tar.gz")
    open_snapshot(snapshot)  # verified against its manifest first
    directory = tempfile.mkdtemp(prefix="nvmet-guest-")
    atexit.register(shutil.rmtree, directory, True)
    with tarfile.open(snapshot) as archive:
        archive.extractall(directory)
    return SysRoot(directory)


def guest_tree(name: str) -> ConfigfsTree:
    """The captured guest's sysfs with an empty nvmet configfs and /dev nodes for its block devices."""
    snapshot = unpacked(name)
    for made in ("/sys/kernel/config", "/dev", "/srv"):
        shutil.rmtree(snapshot.host_path(made), ignore_errors=True)
    tree = ConfigfsTree(snapshot.root)
    for block in read_node(snapshot).block:
        tree.device("/dev/" + block)
    return tree


@pytest.fixture
def switch() -> ConfigfsTree:
    return guest_tree(SWITCH)


def target(device: str, p2pmem: str, enable: bool = True) -> dict:
    return {"subsystems": [{
        "nqn": SUBSYSTEM, "attr": {"allow_any_host": "1"},
        "namespaces": [{"nsid": 1, "device": {"path": device}, "p2pmem": p2pmem, "enable": enable}],
    }]}


def plan(tree: ConfigfsTree, wanted: dict) -> Plan:
    return plan_target(target_from_dict(wanted), read_target(tree.root), P2PJudge(tree.root))


def p2pmem_written(result: Plan) -> str:
    return next(a.value for a in result.actions if a.path.endswith("/p2pmem")) or ""


def answers(name: str) -> list:
    data = json.loads((GUESTS / name / "kernel-answers.json").read_text())["answers"]
    return [pytest.param(a, id="%s-%s" % (a["namespace"], a["provider"])) for a in data]


@pytest.mark.parametrize("answer", answers(SWITCH))
def test_the_judgement_matches_what_the_kernel_did(switch, answer):
    """Every namespace/provider pair the 6.12 guest tried: refused here exactly when the kernel refused it."""
    wanted = target("/dev/" + answer["namespace"], answer["provider"])
    if answer["ok"]:
        assert plan(switch, wanted).p2pmem
    else:
        with pytest.raises(P2PError):
            plan(switch, wanted)


def test_a_provider_behind_another_root_port_is_refused_and_nothing_changes(switch):
    """cmb2 (0000:07:00.0) is on the second root port; the plain drive nvme2n1 is behind the switch."""
    before = read_target(switch.root).to_dict()
    with pytest.raises(P2PError) as failure:
        plan(switch, target("/dev/nvme2n1", "0000:07:00.0"))
    message = str(failure.value)
    for part in ("namespace 1", "device nvme2n1", "client 0000:05:00.0", "provider 0000:07:00.0", "not_supported",
                 "fix: "):
        assert part in message
    assert read_target(switch.root).to_dict() == before


def test_a_provider_without_published_p2pmem_is_refused(switch):
    with pytest.raises(P2PError, match="provider 0000:05:00.0 has no published p2pmem.*ENODEV"):
        plan(switch, target("/dev/nvme0n1", "0000:05:00.0"))


def test_a_switch_local_provider_is_written_as_its_bdf(switch):
    result = plan(switch, target("/dev/nvme2n1", "03:00.0"))
    assert p2pmem_written(result) == "0000:03:00.0"
    assert result.p2pmem[0]["map_type"] == "bus_addr"
    assert result.p2pmem[0]["client"] == "0000:05:00.0"


def test_a_controller_name_is_resolved_to_its_bdf(switch):
    result = plan(switch, target("/dev/nvme2n1", "nvme1"))
    assert p2pmem_written(result) == "0000:04:00.0"


def test_an_unknown_controller_is_refused(switch):
    with pytest.raises(P2PError, match="p2pmem names NVMe controller nvme9, which this node does not have"):
        plan(switch, target("/dev/nvme2n1", "nvme9"))


def test_auto_is_written_as_1_and_reports_the_tied_providers(switch):
    """pci_p2pmem_find_many(): the nearest published providers; two CMBs behind the switch tie."""
    result = plan(switch, target("/dev/nvme2n1", "auto"))
    assert p2pmem_written(result) == "1"
    judged = result.p2pmem[0]
    assert judged["candidates"] == ["0000:03:00.0", "0000:04:00.0"]
    assert judged["provider"] is None and "tied" in judged["reason"]


def test_auto_on_a_cmb_drive_picks_its_own_memory(switch):
    judged = plan(switch, target("/dev/nvme0n1", "auto")).p2pmem[0]
    assert (judged["provider"], judged["distance"]) == ("0000:03:00.0", 0)


def test_none_is_written_as_0_and_needs_no_judgement(switch):
    tree_state = target("/dev/nvme2n1", "auto")
    apply_actions(switch.writer, plan(switch, tree_state).actions)
    result = plan(switch, target("/dev/nvme2n1", "none"))
    assert p2pmem_written(result) == "0"
    assert result.p2pmem == []


def test_an_applied_p2pmem_reads_back_and_converges(switch):
    wanted = target("/dev/nvme2n1", "nvme0")
    apply_actions(switch.writer, plan(switch, wanted).actions)
    namespace = read_target(switch.root).to_dict()["subsystems"][0]["namespaces"][0]
    assert (namespace["p2pmem"], namespace["enable"]) == ("0000:03:00.0", 1)
    assert plan(switch, wanted).actions == []


def test_a_partition_is_refused(switch):
    partition = switch.root.host_path("/sys/class/block/nvme2n1p1")
    os.makedirs(partition)
    try:
        Path(partition, "partition").write_text("1\n")
        switch.device("/dev/nvme2n1p1")
        with pytest.raises(P2PError, match="device /dev/nvme2n1p1 is a partition"):
            plan(switch, target("/dev/nvme2n1p1", "auto"))
    finally:
        shutil.rmtree(partition)


def test_a_loop_device_is_refused(switch):
    with pytest.raises(P2PError, match="device /dev/loop0 cannot use p2pmem: loop0 is a loop device"):
        plan(switch, target("/dev/loop0", "auto"))


def test_a_file_backed_namespace_is_refused(switch):
    switch.device("/srv/disk.img")
    with pytest.raises(P2PError, match="not supported by non-block device namespaces"):
        plan(switch, target("/srv/disk.img", "auto"))


def test_a_stable_udev_name_is_followed_to_its_disk(switch):
    link = switch.root.host_path("/dev/disk/by-path/pci-0000:05:00.0-nvme-1")
    os.makedirs(os.path.dirname(link))
    os.symlink("../../nvme2n1", link)
    result = plan(switch, target("/dev/disk/by-path/pci-0000:05:00.0-nvme-1", "nvme0"))
    assert result.p2pmem[0]["device"] == "nvme2n1"


@pytest.mark.parametrize(
    "device, reason",
    [
        ("nvme1n1", "nvme1n1 is an NVMe multipath head node.*fix: name the controller instead"),
        ("nvme1c0n1", "nvme1c0n1 is a hidden multipath path node"),
    ],
)
def test_multipath_devices_are_refused(device, reason):
    """The 6.12 multipath guest: nvme1n1 is the head over two controllers' paths nvme1c0n1 and nvme1c1n1."""
    tree = guest_tree("linux-6.12/multipath")
    with pytest.raises(P2PError, match=reason):
        plan(tree, target("/dev/" + device, "auto"))


def test_a_disabled_namespace_is_not_judged(switch):
    result = plan(switch, target("/dev/nvme2n1", "0000:07:00.0", enable=False))
    assert result.p2pmem == [] and p2pmem_written(result) == "0000:07:00.0"
