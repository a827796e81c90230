"""The project's patch series as the pipeline reads them (plugins/module_utils/kernel/source_tree.py, kbuild.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.kernel import kbuild, source_tree

PATCHES = Path(__file__).resolve().parents[2] / "kernel-src" / "patches"


@pytest.mark.parametrize("version", ["6.1", "6.12"])
def test_each_series_is_the_quirk_touching_nvme_pci(version: str) -> None:
    (patch,) = source_tree.read_series(str(PATCHES / version))
    assert patch.name.startswith("0001-nvme-pci-use-BAR-4-as-a-CMB")
    assert patch.touched_files() == ["drivers/nvme/host/pci.c", "include/linux/nvme.h"]
    assert source_tree.touched_objects([patch]) == ["drivers/nvme/host/pci.o"]
    text = Path(patch.path).read_text()
    assert "Signed-off-by: p2pdma.storage developers" in text
    for device in ("PCI_DEVICE(0x11f8, 0xf117)", "PCI_DEVICE(0x1db1, 0x0002)", "module_param_cb(pseudo_cmb,"):
        assert device in text


def test_series_options_and_comments(tmp_path: Path) -> None:
    (tmp_path / "a.patch").write_text("")
    (tmp_path / "b.patch").write_text("")
    (tmp_path / "series").write_text("# quilt series\na.patch\n\nb.patch -p0  # from a p0 tree\n")
    patches = source_tree.read_series(str(tmp_path))
    assert [(p.name, p.strip) for p in patches] == [("a.patch", 1), ("b.patch", 0)]


@pytest.mark.parametrize(
    ("series", "message"),
    [
        ("missing.patch\n", "series line 1 names missing.patch, which does not exist"),
        ("a.patch --fuzz=3\n", "series line 1: unknown option '--fuzz=3'"),
    ],
)
def test_bad_series_is_a_user_error(tmp_path: Path, series: str, message: str) -> None:
    (tmp_path / "a.patch").write_text("")
    (tmp_path / "series").write_text(series)
    with pytest.raises(P2PError, match=message):
        source_tree.read_series(str(tmp_path))


def test_directory_without_series_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(P2PError, match="has no series file"):
        source_tree.read_series(str(tmp_path))


def test_config_hash_ignores_what_the_pipeline_sets_itself() -> None:
    resolved = {"PCI_P2PDMA": "y", "LOCALVERSION": '""', "LOCALVERSION_AUTO": "n"}
    assert kbuild.config_hash(resolved) == kbuild.config_hash({**resolved, "LOCALVERSION": '"-p2pabc"'})
    assert kbuild.config_hash(resolved) != kbuild.config_hash({**resolved, "PCI_P2PDMA": "n"})


def test_unknown_config_base_lists_the_choices() -> None:
    with pytest.raises(P2PError, match="config base 'allyesconfig' is unknown; fix: use one of defconfig"):
        kbuild.ConfigBase("allyesconfig")
