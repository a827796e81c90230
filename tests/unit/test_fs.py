import os
import shutil
import tempfile

import pytest

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.fs import MemoryRoot, SysRoot, UnreadableError


@pytest.fixture
def tree(tmp_path):
    dev = tmp_path / "sys/devices/pci0000:00/0000:00:04.0/0000:01:00.0"
    dev.mkdir(parents=True)
    (dev / "vendor").write_text("0x1b36\n")
    (tmp_path / "sys/bus/pci/devices").mkdir(parents=True)
    os.symlink("../../../devices/pci0000:00/0000:00:04.0/0000:01:00.0", tmp_path / "sys/bus/pci/devices/0000:01:00.0")
    (tmp_path / "sys/class/nvme").mkdir(parents=True)
    # An absolute target, as a snapshot of a hand-made tree might hold: it must stay inside the root.
    os.symlink("/sys/devices/pci0000:00/0000:00:04.0/0000:01:00.0", tmp_path / "sys/class/nvme/nvme0")
    os.symlink("../../devices/pci0000:00/gone", tmp_path / "sys/class/nvme/nvme9")
    os.symlink("../../../devices", tmp_path / "sys/bus/pci/all")
    os.symlink("0000:01:00.0", tmp_path / "sys/devices/pci0000:00/0000:00:04.0/alias")
    (dev / "driver").symlink_to("../../../../bus/pci/devices")
    return tmp_path


def _memory_copy(base) -> MemoryRoot:
    """The tree below ``base`` as a MemoryRoot, member by member as a snapshot holds it."""
    root = MemoryRoot(str(base / "node.tar.gz"))
    for directory, subdirs, files in os.walk(base):
        node_dir = "/" + os.path.relpath(directory, base).lstrip(".")
        for name in subdirs + files:
            host, path = os.path.join(directory, name), os.path.join(node_dir, name)
            if os.path.islink(host):
                root.add_link(path, os.readlink(host))
            elif os.path.isdir(host):
                root.add_dir(path)
            else:
                with open(host, "rb") as handle:
                    root.add_file(path, handle.read())
    return root


QUERIES = [
    "/sys/bus/pci/devices/0000:01:00.0",
    "/sys/bus/pci/devices/0000:01:00.0/vendor",
    "/sys/class/nvme/nvme0/vendor",
    "/sys/class/nvme/nvme0/driver",
    "/sys/class/nvme/nvme0/driver/0000:01:00.0/vendor",
    "/sys/class/nvme/nvme9",
    "/sys/class/nvme/nvme9/vendor",
    "/sys/bus/pci/all/pci0000:00/0000:00:04.0/alias/vendor",
    "/sys/bus/pci/all/pci0000:00/0000:00:04.0/alias",
    "/sys/bus/pci/all/../devices",
    "/sys/devices/pci0000:00/0000:00:04.0",
    "/sys/nothing/at/all",
    "/sys",
    "/",
]


@pytest.mark.parametrize("path", QUERIES)
def test_memory_root_answers_as_the_directory_tree(tree, path):
    on_disk, in_memory = SysRoot(str(tree)), _memory_copy(tree)
    for ask in ("exists", "is_dir", "read_bytes", "listdir", "readlink", "realpath", "kind"):
        assert getattr(in_memory, ask)(path) == getattr(on_disk, ask)(path), ask
    assert in_memory.read_bytes(path, 4) == on_disk.read_bytes(path, 4)


def test_memory_root_records_what_it_touches(tree):
    root = _memory_copy(tree).recording()
    assert root.realpath("/sys/class/nvme/nvme0/vendor") == "/sys/devices/pci0000:00/0000:00:04.0/0000:01:00.0/vendor"
    assert root.touched == {"/sys", "/sys/class", "/sys/class/nvme", "/sys/class/nvme/nvme0", "/sys/devices",
                            "/sys/devices/pci0000:00", "/sys/devices/pci0000:00/0000:00:04.0",
                            "/sys/devices/pci0000:00/0000:00:04.0/0000:01:00.0",
                            "/sys/devices/pci0000:00/0000:00:04.0/0000:01:00.0/vendor"}


def test_memory_root_is_read_only(tree):
    root = _memory_copy(tree)
    with pytest.raises(P2PError, match="node.tar.gz is a snapshot read into memory: /sys/class/x has no file"):
        root.mkdir("/sys/class/x")
    assert not root.is_live and root.label == str(tree / "node.tar.gz")


def test_realpath_resolves_relative_and_absolute_links_inside_root(tree):
    root = SysRoot(str(tree))
    want = "/sys/devices/pci0000:00/0000:00:04.0/0000:01:00.0"
    assert root.realpath("/sys/bus/pci/devices/0000:01:00.0") == want
    assert root.realpath("/sys/class/nvme/nvme0") == want
    assert root.read_text("/sys/class/nvme/nvme0/vendor") == "0x1b36"


def test_missing_files_read_as_none_and_empty(tree):
    root = SysRoot(str(tree))
    assert root.read_text("/sys/nothing") is None
    assert root.listdir("/sys/nothing") == []
    assert root.read_int("/sys/bus/pci/devices/0000:01:00.0/vendor") == 0x1B36


def test_recording_lists_every_touched_path(tree):
    root = SysRoot(str(tree), record=True)
    root.read_text("/sys/bus/pci/devices/0000:01:00.0/vendor")
    root.listdir("/sys/class/nvme")
    assert root.touched is not None
    assert {"/sys/bus/pci/devices/0000:01:00.0/vendor", "/sys/class/nvme"} <= root.touched


def _read_as_unprivileged_user(root: SysRoot, path: str) -> str:
    """The error reading ``path`` gives a process without root (a forked child that drops to nobody as root)."""
    if os.geteuid() != 0:
        try:
            root.read_text(path)
        except UnreadableError as exc:
            return str(exc)
        return "read"
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(reader)
        message = "read"
        try:
            os.setgid(65534)
            os.setuid(65534)
            root.read_text(path)
        except UnreadableError as exc:
            message = str(exc)
        except BaseException as exc:  # noqa: BLE001 - anything else is reported to the parent, never raised here
            message = "unexpected %r" % exc
        os.write(writer, message.encode())
        os._exit(0)
    os.close(writer)
    with os.fdopen(reader) as pipe:
        message = pipe.read()
    os.waitpid(child, 0)
    return message


def test_unreadable_file_names_the_path_and_the_fix():
    # pytest's own temp root is private to root: the tree goes where an unprivileged reader can walk.
    base = tempfile.mkdtemp(prefix="p2pctl-fs-")
    try:
        os.chmod(base, 0o755)
        device = os.path.join(base, "sys/devices/pci0000:00/0000:01:00.0")
        os.makedirs(device)
        for name, mode in (("vendor", 0o000), ("device", 0o644)):
            with open(os.path.join(device, name), "w") as handle:
                handle.write("0x1b36\n")
            os.chmod(os.path.join(device, name), mode)
        for parent in ("sys", "sys/devices", "sys/devices/pci0000:00", "sys/devices/pci0000:00/0000:01:00.0"):
            os.chmod(os.path.join(base, parent), 0o755)
        root = SysRoot(base)
        node_path = "/sys/devices/pci0000:00/0000:01:00.0/"
        # The readable sibling shows that the file's own mode, not the tree, is what stops the reader.
        assert _read_as_unprivileged_user(root, node_path + "device") == "read"
        message = _read_as_unprivileged_user(root, node_path + "vendor")
        assert message.startswith("cannot read %svendor: permission denied" % node_path)
        assert "fix: run as root" in message
    finally:
        shutil.rmtree(base)
