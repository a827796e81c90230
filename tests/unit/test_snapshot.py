"""Snapshots: what the model reads, packed and unpacked so that the same node comes back."""

from __future__ import annotations

import gc
import io
import json
import os
import tarfile

import pytest

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.fs import SysRoot
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.reader import read_node
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.snapshot import (
    MANIFEST_NAME,
    open_root,
    open_snapshot,
    write_snapshot,
)
from tests.support.nodes import switch_node
from tests.support.sysfs_tree import SysfsTree


def _node_dict(root: SysRoot) -> dict:
    view = read_node(root).to_dict()
    view.pop("root")  # where the tree lives on this machine, not part of the node
    return view


@pytest.fixture
def tree(tmp_path):
    """The switch node with its config in /proc/config.gz (binary), plus rxe0 and a dm device."""
    tree = switch_node(tmp_path / "node", config_source="proc")
    tree.rxe(netdev="eth0")
    tree.block("dm-0", slaves=["nvme1n1"])
    tree.write()
    return tree


@pytest.fixture
def snapshot(tree, tmp_path):
    path = str(tmp_path / "node.tar.gz")
    write_snapshot(SysRoot(tree.root), path)
    return path


def test_reopened_snapshot_reads_as_the_same_node(tree, snapshot):
    assert _node_dict(open_snapshot(snapshot)) == _node_dict(SysRoot(tree.root))


def test_every_path_a_second_read_touches_is_in_the_snapshot(tree, snapshot):
    original = SysRoot(tree.root, record=True)
    read_node(original)
    unpacked = open_snapshot(snapshot)  # keeps the unpacked directory alive
    reopened = SysRoot(unpacked.root, record=True)
    read_node(reopened)
    assert reopened.touched is not None and original.touched is not None
    present_in_snapshot = {p for p in reopened.touched if os.path.lexists(reopened.host_path(p))}
    present_in_tree = {p for p in original.touched if os.path.lexists(original.host_path(p))}
    assert present_in_snapshot == present_in_tree


def test_members_keep_symlinks_and_real_file_sizes(tree, snapshot):
    with tarfile.open(snapshot) as tar:
        members = {m.name: m for m in tar.getmembers()}
        manifest = json.loads(tar.extractfile(MANIFEST_NAME).read())  # type: ignore[union-attr]
    device = "devices/pci0000:00/0000:00:01.0/0000:01:00.0/0000:02:00.0/0000:03:00.0"
    link = members["sys/bus/pci/devices/0000:03:00.0"]
    assert link.issym() and link.linkname == "../../../" + device
    config = members["sys/%s/config" % device]
    assert config.isfile() and config.size == 4096
    assert members["sys/devices/pci0000:00/0000:00:01.0"].isdir()
    assert members["proc/config.gz"].size == os.path.getsize(tree.host_path("/proc/config.gz"))
    assert manifest["kernel_release"] == "6.1.0-28-amd64"
    assert manifest["as_root"] == (os.geteuid() == 0)


def test_a_snapshot_of_a_snapshot_is_the_same_node(tree, tmp_path):
    (tmp_path / "node/proc/sys/kernel/hostname").write_text("storage7\n")
    first, again = str(tmp_path / "first.tar.gz"), str(tmp_path / "again.tar.gz")
    assert write_snapshot(SysRoot(tree.root), first).hostname == "storage7"
    assert write_snapshot(open_root(first), again).hostname == "storage7"
    assert _node_dict(open_root(again)) == _node_dict(SysRoot(tree.root))


def test_truncated_config_space_stays_truncated(tmp_path):
    # What a non-root snapshot holds: 64 bytes of config space, so ACS stays unknown offline.
    tree = SysfsTree(tmp_path / "node")
    rp = tree.root_port("00:01.0", config_bytes=64)
    tree.nvme(rp, config_bytes=64)
    path = str(tmp_path / "s.tar.gz")
    write_snapshot(tree.sysroot(), path)
    node = read_node(open_snapshot(path))
    assert node.functions["0000:00:01.0"].acs is None
    assert node.functions["0000:00:01.0"].config_bytes == 64


def test_unpacked_directory_is_removed_with_the_root(snapshot):
    root = open_snapshot(snapshot)
    unpacked = root.root
    assert os.path.isdir(unpacked)
    del root
    gc.collect()
    assert not os.path.exists(unpacked)


def _tar_with(path, *members):
    """A gzip'd tar with a valid manifest and the given (TarInfo, bytes) members."""
    with tarfile.open(path, "w:gz") as tar:
        manifest = json.dumps({"format": 1}).encode()
        info = tarfile.TarInfo(MANIFEST_NAME)
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data else None)
    return str(path)


def _member(name, kind=tarfile.REGTYPE, linkname="", data=b""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.size = len(data)
    return info, data


@pytest.mark.parametrize(
    "member, complaint",
    [
        (_member("/etc/passwd", data=b"x"), "outside its tree"),
        (_member("sys/../../etc/passwd", data=b"x"), "outside its tree"),
        (_member("sys/escape", tarfile.SYMTYPE, "../../etc"), "pointing outside the tree"),
        (_member("sys/abs", tarfile.SYMTYPE, "/etc"), "pointing outside the tree"),
        (_member("dev/sda", tarfile.BLKTYPE), "not a file, directory or symlink"),
        (_member("sys/hard", tarfile.LNKTYPE, "sys/x"), "not a file, directory or symlink"),
    ],
)
def test_unsafe_members_are_refused(tmp_path, member, complaint):
    path = _tar_with(tmp_path / "evil.tar.gz", member)
    with pytest.raises(P2PError, match=complaint):
        open_snapshot(path)


def test_members_below_a_symlink_are_refused(tmp_path):
    # A link that stays inside lexically could still lead a later member out of the tree.
    path = _tar_with(
        tmp_path / "evil.tar.gz",
        _member("a/b/up", tarfile.SYMTYPE, "../.."),
        _member("a/b/up/x", data=b"x"),
    )
    with pytest.raises(P2PError, match="below a symlink"):
        open_snapshot(path)


def test_a_tar_without_manifest_is_not_a_snapshot(tmp_path):
    path = tmp_path / "other.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info, data = _member("hello", data=b"hi")
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(P2PError, match="not a p2pctl snapshot .no p2pctl-snapshot.json"):
        open_root(str(path))


def test_a_plain_file_is_neither_a_directory_nor_a_snapshot(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello\n")
    with pytest.raises(P2PError, match="notes.txt is neither a directory nor a p2pctl snapshot"):
        open_root(str(path))


def test_a_missing_root_is_named(tmp_path):
    with pytest.raises(P2PError, match="root .*/nowhere does not exist"):
        open_root(str(tmp_path / "nowhere"))


def test_writing_into_a_missing_directory_names_it(tree, tmp_path):
    with pytest.raises(P2PError, match="directory .*/missing does not exist"):
        write_snapshot(SysRoot(tree.root), str(tmp_path / "missing" / "s.tar.gz"))


def test_a_directory_that_is_not_a_node_is_refused(tmp_path):
    (tmp_path / "etc").mkdir()
    with pytest.raises(P2PError, match="has neither sys/ nor proc/"):
        open_root(str(tmp_path))
