import os

import pytest

from ansible_collections.p2pdma.storage.plugins.module_utils._fs import SysRoot, UnreadableError


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
    return tmp_path


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


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_names_the_path(tree):
    path = tree / "sys/devices/pci0000:00/0000:00:04.0/0000:01:00.0/vendor"
    path.chmod(0)
    with pytest.raises(UnreadableError, match="vendor: permission denied"):
        SysRoot(str(tree)).read_text("/sys/bus/pci/devices/0000:01:00.0/vendor")
