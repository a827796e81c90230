"""Slow: the patch series and the config verification against Debian's real linux-source-6.1.

Run with ``pytest -m kernel tests/kernel``; the tarball comes from /usr/src or is fetched once
into ~/.cache/p2pctl/linux-source, and the patched tree is cached by content hash.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.common.paths import kernel_src
from ansible_collections.p2pdma.storage.plugins.module_utils.kernel import kbuild, source_tree

pytestmark = pytest.mark.kernel

SERIES_61 = kernel_src() / "patches" / "6.1"
PATCHED_FILES = ("drivers/nvme/host/pci.c", "include/linux/nvme.h")


@pytest.fixture(scope="module")
def tarball_61() -> str:
    return source_tree.debian_source_tarball("6.1")


@pytest.fixture
def partial_tree(tarball_61: str, tmp_path: Path) -> Path:
    """Only the files the series patches, straight from the tarball."""
    subprocess.run(
        ["tar", "-xf", tarball_61, "-C", str(tmp_path), "--strip-components=1"]
        + ["linux-source-6.1/" + name for name in PATCHED_FILES],
        check=True,
    )
    return tmp_path


def test_series_applies_to_pristine_files(partial_tree: Path) -> None:
    for patch in source_tree.read_series(str(SERIES_61)):
        source_tree.apply_patch(str(partial_tree), patch)
    patched = (partial_tree / "drivers/nvme/host/pci.c").read_text()
    assert "module_param_cb(pseudo_cmb, &pseudo_cmb_ops, NULL, 0444);" in patched
    assert "{ PCI_DEVICE(0x1db1, 0x0002) }," in patched


def test_failing_hunk_is_named_with_its_function(partial_tree: Path) -> None:
    pci_c = partial_tree / "drivers/nvme/host/pci.c"
    # A kernel whose nvme_map_cmb() reads the registers differently: the quirk's hunk there cannot apply.
    pci_c.write_text(pci_c.read_text().replace("dev->cmbsz = readl(dev->bar + NVME_REG_CMBSZ);", "nvme_read_cmb(dev);"))
    (patch,) = source_tree.read_series(str(SERIES_61))
    with pytest.raises(P2PError) as caught:
        source_tree.apply_patch(str(partial_tree), patch)
    message = str(caught.value)
    assert message.startswith("patch 0001-nvme-pci-use-BAR-4-as-a-CMB")
    assert re.search(r"drivers/nvme/host/pci\.c hunk #\d+ at line \d+ @@ [^@]+ @@ static void nvme_map_cmb", message)
    assert "refresh" in message
    # The dry run failed, so nothing was applied: nvme.h is untouched.
    assert "NVME_CAP_PMRS" not in (partial_tree / "include/linux/nvme.h").read_text()


def test_dropped_symbol_fails_configure_with_its_dependency(tarball_61: str, tmp_path: Path) -> None:
    tree = source_tree.prepare_tree(str(SERIES_61), tarball=tarball_61)
    fragment = tmp_path / "no-inet.config"
    fragment.write_text("CONFIG_NET=y\n# CONFIG_INET is not set\nCONFIG_NVME_TARGET_TCP=y\n")
    base = kbuild.ConfigBase("tinyconfig")
    with pytest.raises(P2PError) as caught:
        kbuild.configure(tree, str(tmp_path / "build"), base, [str(fragment)], 2, kbuild.StepTimes())
    assert "CONFIG_NVME_TARGET_TCP: asked y (no-inet.config), received n: unmet dependency: 'INET' is n" in str(
        caught.value
    )
