"""Snapshots: what the model reads, packed and read back in memory so that the same node comes back."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pathlib
import re
import subprocess
import sys
import tarfile
import tempfile
from typing import Callable, Dict, Optional

import pytest
from click.testing import CliRunner

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.checks import run_checks
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.fs import SysRoot
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.reader import read_node
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.snapshot import (
    MANIFEST_NAME,
    SNAPSHOT_FORMAT,
    open_root,
    open_snapshot,
    write_snapshot,
)
from ansible_collections.p2pdma.storage.plugins.module_utils.views.text import topology_view
from p2pctl.main import cli
from tests.support.nodes import switch_node
from tests.support.sysfs_tree import SysfsTree

GUESTS = pathlib.Path(__file__).resolve().parent.parent / "fixtures" / "guests"
P2PCTL = os.path.join(os.path.dirname(sys.executable), "p2pctl")
TAKE_AGAIN = "take the snapshot again on the node with 'p2pctl snapshot"


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
    reopened = open_snapshot(snapshot).recording()
    read_node(reopened)
    assert reopened.touched is not None and original.touched is not None
    present_in_snapshot = {p for p in reopened.touched if reopened.kind(p) is not None}
    present_in_tree = {p for p in original.touched if original.kind(p) is not None}
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


def test_reading_a_snapshot_writes_nothing_to_disk(snapshot, tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    root = open_snapshot(snapshot)
    read_node(root)
    assert list(scratch.iterdir()) == []
    with pytest.raises(P2PError, match="snapshot read into memory: /sys/x has no file on this machine"):
        root.write_text("/sys/x", "1")


def test_the_manifest_lists_every_member_with_size_and_sha256(snapshot):
    with tarfile.open(snapshot) as tar:
        first, *members = tar.getmembers()
        manifest = json.loads(tar.extractfile(first).read())  # type: ignore[union-attr]
        contents = {m.name: tar.extractfile(m).read() for m in members if m.isfile()}  # type: ignore[union-attr]
    assert first.name == MANIFEST_NAME and manifest["format"] == SNAPSHOT_FORMAT
    listed = manifest["members"]
    assert sorted(listed) == sorted(m.name.rstrip("/") for m in members)
    for member in members:
        entry = listed[member.name.rstrip("/")]
        if member.isfile():
            data = contents[member.name]
            assert entry == {"type": "file", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        elif member.issym():
            assert entry == {"type": "link", "target": member.linkname}
        else:
            assert entry == {"type": "dir"}
    assert listed["proc/sys/kernel/osrelease"]["size"] == len("6.1.0-28-amd64\n")


def _repacked(snapshot: str, path: pathlib.Path, change: Callable[[tarfile.TarInfo, bytes], Optional[bytes]]) -> str:
    """``snapshot`` written again member by member, manifest untouched; ``change`` gives new bytes, or None to drop."""
    with tarfile.open(snapshot) as source, tarfile.open(path, "w:gz") as target:
        for member in source.getmembers():
            data = source.extractfile(member).read() if member.isfile() else b""  # type: ignore[union-attr]
            changed = data if member.name == MANIFEST_NAME else change(member, data)
            if changed is None:
                continue
            member.size = len(changed)
            target.addfile(member, io.BytesIO(changed) if member.isfile() else None)
    return str(path)


OSRELEASE = "proc/sys/kernel/osrelease"


def _drop_osrelease(member: tarfile.TarInfo, data: bytes) -> Optional[bytes]:
    return None if member.name == OSRELEASE else data


def _alter_osrelease(member: tarfile.TarInfo, data: bytes) -> Optional[bytes]:
    return b"6.1.0-29-amd64\n" if member.name == OSRELEASE else data


def _drop_every_other_link(member: tarfile.TarInfo, data: bytes) -> Optional[bytes]:
    return None if member.issym() and hash(member.name) % 2 else data


@pytest.mark.parametrize(
    "change, complaint",
    [
        (_drop_osrelease, "is damaged: 1 members its manifest lists are missing, e.g. %s" % OSRELEASE),
        (_alter_osrelease, "is damaged: the content of %s does not match its manifest (size and sha256)" % OSRELEASE),
        (_drop_every_other_link, "members its manifest lists are missing"),
    ],
)
def test_a_snapshot_that_lost_or_changed_members_is_refused(snapshot, tmp_path, change, complaint):
    damaged = _repacked(snapshot, tmp_path / "damaged.tar.gz", change)
    with pytest.raises(P2PError) as caught:
        open_snapshot(damaged)
    assert complaint in str(caught.value)
    assert str(caught.value).startswith("snapshot %s " % damaged)
    assert TAKE_AGAIN in str(caught.value)


def test_a_member_the_manifest_does_not_list_is_refused(snapshot, tmp_path):
    planted = tmp_path / "planted.tar.gz"
    with tarfile.open(snapshot) as source, tarfile.open(planted, "w:gz") as target:
        for member in source.getmembers():
            target.addfile(member, source.extractfile(member) if member.isfile() else None)
        info, data = _member("sys/planted", data=b"x")
        target.addfile(info, io.BytesIO(data))
    with pytest.raises(P2PError, match="is damaged: it holds sys/planted, which its manifest does not list"):
        open_snapshot(str(planted))


@pytest.mark.parametrize("keep", [0.5, 0.98, 10 / 1000])
def test_a_truncated_snapshot_is_one_line_naming_it(snapshot, tmp_path, keep):
    data = pathlib.Path(snapshot).read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(data[: int(len(data) * keep)])
    result = subprocess.run([P2PCTL, "check", "--root", str(cut)], capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("p2pctl: error: snapshot %s is damaged: the archive ends early (truncated)" % cut)
    assert TAKE_AGAIN in line


def test_a_corrupt_snapshot_names_it(snapshot, tmp_path):
    data = bytearray(pathlib.Path(snapshot).read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupt = tmp_path / "corrupt.tar.gz"
    corrupt.write_bytes(bytes(data))
    with pytest.raises(P2PError, match="snapshot .*corrupt.tar.gz is damaged: the gzip stream is corrupt"):
        open_snapshot(str(corrupt))


def test_snapshot_to_stdout_writes_only_the_archive(tree, tmp_path):
    result = CliRunner().invoke(cli, ["snapshot", "--root", tree.root, "-o", "-"])
    assert result.exit_code == 0, result.stderr
    assert "wrote the snapshot to stdout (kernel 6.1.0-28-amd64" in result.stderr
    piped = tmp_path / "piped.tar.gz"
    piped.write_bytes(result.stdout_bytes)
    assert _node_dict(open_snapshot(str(piped))) == _node_dict(SysRoot(tree.root))


def test_snapshot_to_a_file_says_where(tree, tmp_path):
    path = tmp_path / "node.tar.gz"
    result = CliRunner().invoke(cli, ["snapshot", "--root", tree.root, "-o", str(path)])
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith("wrote %s (kernel 6.1.0-28-amd64" % path)


def _judged(root: SysRoot) -> Dict[str, object]:
    """What p2pctl topology and check make of the node below ``root``."""
    node = read_node(root)
    return {
        "topology": topology_view(node),
        "checks": [result.to_dict() for result in run_checks(node, [], [], "kernel")],
        "problems": [problem.__dict__ for problem in node.problems],
    }


GUEST_SNAPSHOTS = sorted(p.parent.relative_to(GUESTS).as_posix() for p in GUESTS.glob("**/snapshot.tar.gz"))


@pytest.mark.parametrize("name", GUEST_SNAPSHOTS)
def test_a_guest_snapshot_judges_in_memory_as_its_unpacked_tree(name, tmp_path):
    # Guest snapshots are format 1 (p2pctl 0.1, no member list): still read, and read the same either way.
    archive = str(GUESTS / name / "snapshot.tar.gz")
    with tarfile.open(archive) as tar:
        assert json.loads(tar.extractfile(MANIFEST_NAME).read())["format"] == 1  # type: ignore[union-attr]
        tar.extractall(tmp_path, filter="data")
    in_memory = open_snapshot(archive)
    judged, expected = _judged(in_memory), _judged(SysRoot(str(tmp_path)))
    assert judged == expected
    assert in_memory.label == archive


def _tar_with(path, *members, manifest_text='{"format": 1}'):
    """A gzip'd tar with a manifest (by default a format-1 one, which lists no members) and the given members."""
    with tarfile.open(path, "w:gz") as tar:
        manifest = manifest_text.encode()
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


@pytest.mark.parametrize(
    "manifest_text, complaint",
    [
        ('{"format": 3}', "has format 3; this p2pctl reads formats 1, 2"),
        ('{"format": 2}', "is damaged: its manifest p2pctl-snapshot.json lists no members"),
        ('{"format": 2, "members": {', "is damaged: its manifest p2pctl-snapshot.json is not valid JSON"),
        ("[]", "is damaged: its manifest p2pctl-snapshot.json has no format number"),
    ],
)
def test_a_manifest_this_p2pctl_cannot_use_is_refused(tmp_path, manifest_text, complaint):
    path = _tar_with(tmp_path / "odd.tar.gz", _member("proc/cmdline", data=b"quiet\n"), manifest_text=manifest_text)
    with pytest.raises(P2PError, match=re.escape("snapshot %s %s" % (path, complaint))):
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
    no_manifest = "other.tar.gz is a tar archive but not a p2pctl snapshot .no p2pctl-snapshot.json"
    with pytest.raises(P2PError, match=no_manifest) as caught:
        open_root(str(path))
    assert TAKE_AGAIN in str(caught.value)


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


def test_a_snapshot_records_whether_p2pmem_can_be_mapped_without_reading_it(tree, tmp_path):
    # The kernel's allocate attribute is mmap-only, with a stat size of 1 TiB: the snapshot keeps it empty.
    allocate = tree.host_path("/sys/bus/pci/devices/0000:03:00.0/p2pmem/allocate")
    with open(allocate, "wb") as handle:
        handle.truncate(1 << 30)
    path = str(tmp_path / "allocate.tar.gz")
    write_snapshot(SysRoot(tree.root), path)
    snapshot_root = open_snapshot(path)
    assert read_node(snapshot_root).functions["0000:03:00.0"].p2pmem.allocate is True
    assert snapshot_root.read_bytes("/sys/bus/pci/devices/0000:03:00.0/p2pmem/allocate") == b""
    assert read_node(SysRoot(tree.root)).functions["0000:04:00.0"].p2pmem is None
