"""Slow: the config bases an operator starts from, on Debian's real linux-source-6.12.

The base is what a storage node gives: the stock Debian 13 kernel config and the lsmod output
of a lab node (tests/fixtures/nodes/debian13, captured as docs/fixtures.md says), as
kernel_build_config_file and kernel_build_lsmod_file would fetch them from a node.
"""

from __future__ import annotations

import lzma
from pathlib import Path
from typing import Dict, Set

import pytest

from ansible_collections.p2pdma.storage.plugins.module_utils.common.paths import kernel_src
from ansible_collections.p2pdma.storage.plugins.module_utils.kernel import kbuild, kconfig, source_tree

pytestmark = pytest.mark.kernel

REPO = Path(__file__).resolve().parents[2]
SERIES_612 = kernel_src() / "patches" / "6.12"
P2PDMA_FRAGMENT = kernel_src() / "configs" / "p2pdma.config"
NODE = REPO / "tests" / "fixtures" / "nodes" / "debian13"


@pytest.fixture(scope="module")
def tree_612() -> source_tree.PreparedTree:
    return source_tree.prepare_tree(str(SERIES_612), tarball=source_tree.debian_source_tarball("6.12"))


@pytest.fixture(scope="module")
def node_config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    (compressed,) = NODE.glob("config-*.xz")
    path = tmp_path_factory.mktemp("node") / compressed.stem
    path.write_bytes(lzma.decompress(compressed.read_bytes()))
    return path


@pytest.fixture(scope="module")
def stock(node_config: Path) -> Dict[str, str]:
    return kconfig.read_config(str(node_config))


@pytest.fixture(scope="module")
def loaded_modules() -> Set[str]:
    lines = (NODE / "lsmod.txt").read_text().splitlines()
    assert lines[0].split() == ["Module", "Size", "Used", "by"]
    return {line.split()[0] for line in lines[1:]}


def configure(tree: source_tree.PreparedTree, objdir: Path, base: kbuild.ConfigBase) -> Dict[str, str]:
    return kbuild.configure(tree, str(objdir), base, [str(P2PDMA_FRAGMENT)], 2, kbuild.StepTimes())


def test_the_fixture_is_a_stock_debian_kernel_without_p2pdma(stock: Dict[str, str]) -> None:
    assert stock.get("PCI_P2PDMA", "n") == "n"
    assert stock["BTRFS_FS"] == "m"
    assert stock["LOCALVERSION"] == '""'


@pytest.mark.parametrize("kind", ["running", "file"])
def test_a_nodes_config_gains_p2pdma_and_keeps_its_own_choices(
    tree_612: source_tree.PreparedTree, node_config: Path, stock: Dict[str, str], tmp_path: Path, kind: str
) -> None:
    resolved = configure(tree_612, tmp_path / "build", kbuild.ConfigBase(kind, path=str(node_config)))
    assert resolved["PCI_P2PDMA"] == "y"
    assert resolved["ZONE_DEVICE"] == "y"
    assert resolved["NVME_TARGET_RDMA"] == "m"
    # Debian's choices that the fragment does not mention survive olddefconfig.
    for symbol in ("BTRFS_FS", "MLX5_CORE", "HZ", "DEFAULT_HOSTNAME"):
        assert resolved[symbol] == stock[symbol], symbol
    # The release carries the pipeline's hash only.
    assert resolved["LOCALVERSION"] == '""'
    assert resolved.get("LOCALVERSION_AUTO", "n") == "n"


def test_localmodconfig_keeps_the_nodes_modules_and_the_fragment(
    tree_612: source_tree.PreparedTree,
    node_config: Path,
    stock: Dict[str, str],
    loaded_modules: Set[str],
    tmp_path: Path,
) -> None:
    base = kbuild.ConfigBase("localmodconfig", path=str(node_config), lsmod=str(NODE / "lsmod.txt"))
    resolved = configure(tree_612, tmp_path / "build", base)
    # A module the node had loaded stays a module; one it never loaded is gone.
    assert "nvme" in loaded_modules and resolved["BLK_DEV_NVME"] == "m"
    assert "btrfs" not in loaded_modules and resolved.get("BTRFS_FS", "n") == "n"
    stock_modules = sum(1 for value in stock.values() if value == "m")
    kept_modules = sum(1 for value in resolved.values() if value == "m")
    assert kept_modules < stock_modules / 10
    # nvmet and RDMA were never loaded on the node, yet the fragment asks for them and gets them.
    assert "nvmet" not in loaded_modules
    assert resolved["NVME_TARGET_RDMA"] == "m"
    assert resolved["PCI_P2PDMA"] == "y"
