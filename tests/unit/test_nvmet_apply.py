"""Applying nvmet plans to configfs-shaped trees: a failure half-way leaves configfs exactly as it was."""

from __future__ import annotations

import os

import pytest

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.configfs import apply_actions, read_target
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.model import target_from_dict
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.p2pmem import P2PJudge
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.plan import plan_target
from tests.support.configfs_tree import ConfigfsTree
from tests.unit.test_nvmet_plan import CFG, H1, S1, declaration

H2 = "nqn.2026-01.com.example:host2"
S2 = "nqn.2026-01.com.example:store2"


@pytest.fixture
def tree(tmp_path) -> ConfigfsTree:
    tree = ConfigfsTree(str(tmp_path))
    for name in ("nvme0n1", "nvme1n1", "nvme2n1", "nvme3n1"):
        tree.device("/dev/" + name)
    wanted = declaration()
    wanted["hosts"][0]["dhchap"] = {"hash": "hmac(sha384)"}
    wanted["ports"][0]["ana_groups"] = [{"grpid": 2, "ana": {"state": "inaccessible"}}]
    wanted["subsystems"][0]["namespaces"][0].update(ana_grpid=2, buffered_io=1)
    wanted["subsystems"][0]["namespaces"][0]["device"]["uuid"] = "7f2c1f1e-0b7d-4f4e-9c55-9d1c7a2b3e4f"
    apply_actions(tree.writer, plan(tree, wanted).actions)
    return tree


def plan(tree: ConfigfsTree, wanted: dict, state: str = "present"):  # type: ignore[no-untyped-def]
    return plan_target(target_from_dict(wanted, state), read_target(tree.root), P2PJudge(tree.root))


def bigger() -> dict:
    """Touches every kind of object: a host's first key, a new host and subsystem, a namespace change, new links,
    a port change."""
    wanted = declaration()
    wanted["hosts"][0]["dhchap"] = {"key": "DHHC-1:00:ia6zGodOr4SEG0Zzaw398rpY0wqipUWj4jWjUh4HWUz6aQ2n:"}
    wanted["hosts"].append({"nqn": H2})
    wanted["subsystems"][0]["allowed_hosts"] = [H1, H2]
    wanted["subsystems"][0]["namespaces"][1]["device"]["path"] = "/dev/nvme2n1"
    wanted["subsystems"].append({
        "nqn": S2, "attr": {"allow_any_host": "0"}, "allowed_hosts": [H2],
        "namespaces": [{"nsid": 5, "device": {"path": "/dev/nvme3n1"}}],
    })
    wanted["ports"][0]["subsystems"] = [S1, S2]
    wanted["ports"][0]["addr"]["trsvcid"] = "4421"
    return wanted


def break_attribute(tree: ConfigfsTree) -> None:
    """An attribute that cannot be written: a directory where the file should be (EISDIR)."""
    path = tree.root.host_path(CFG + "/ports/1/addr_trsvcid")
    os.unlink(path)
    os.mkdir(path)


def break_parent(tree: ConfigfsTree) -> None:
    """A missing parent: the port's subsystems group is gone, so the last link fails (ENOENT)."""
    path = tree.root.host_path(CFG + "/ports/1/subsystems")
    for name in os.listdir(path):
        os.unlink(os.path.join(path, name))
    os.rmdir(path)


@pytest.mark.parametrize("breakage", [break_attribute, break_parent])
def test_a_failure_half_way_is_rolled_back(tree, breakage):
    breakage(tree)
    before = read_target(tree.root).to_dict()
    actions = plan(tree, bigger()).actions
    with pytest.raises(P2PError) as failure:
        apply_actions(tree.writer, actions)
    assert "were undone, configfs is as before" in str(failure.value)
    assert str(failure.value).count("failed (") == 1
    assert read_target(tree.root).to_dict() == before


def test_the_failure_names_the_action_and_the_kernels_errno(tree):
    break_attribute(tree)
    with pytest.raises(P2PError, match=r"write .*/ports/1/addr_trsvcid failed \(EISDIR"):
        apply_actions(tree.writer, plan(tree, bigger()).actions)


def test_a_failed_teardown_puts_every_removed_object_back(tree):
    """The host's rmdir fails last; subsystem, namespaces, links and port come back with their values."""
    before = read_target(tree.root).to_dict()
    with open(tree.root.host_path("%s/hosts/%s/stray" % (CFG, H1)), "w"):
        pass
    actions = plan(tree, declaration(), state="absent").actions
    assert actions[-1].op == "rmdir" and actions[-1].path.endswith(H1)
    with pytest.raises(P2PError, match="ENOTEMPTY"):
        apply_actions(tree.writer, actions)
    after = read_target(tree.root).to_dict()
    assert after == before
    namespace = after["subsystems"][0]["namespaces"][0]
    assert (namespace["enable"], namespace["ana_grpid"], namespace["buffered_io"]) == (1, 2, 1)
    assert after["ports"][0]["ana_groups"][1] == {"grpid": 2, "ana": {"state": "inaccessible"}}


def test_a_successful_apply_returns_what_it_did(tree):
    actions = plan(tree, bigger()).actions
    assert apply_actions(tree.writer, actions) == actions
    assert plan(tree, bigger()).actions == []
