"""Config fragments, resolved .config files and Kconfig dependencies (plugins/module_utils/kernel/kconfig.py).

Fixtures are real: ``6.1-tinyconfig-olddefconfig.config`` is what ``make tinyconfig`` and then
``olddefconfig`` with an early p2pdma.config (without BLOCK, NET and INET) produced on Debian's
linux-source-6.1, and ``linux-6.1/`` holds the Kconfig entries of that tree which decide its fate.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.common.paths import kernel_src
from ansible_collections.p2pdma.storage.plugins.module_utils.kernel import kconfig

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "kconfig"
KERNEL_SRC = kernel_src() / "configs"
RESOLVED_TINY = FIXTURES / "6.1-tinyconfig-olddefconfig.config"


@pytest.fixture(scope="module")
def kconfig_61() -> kconfig.KconfigTree:
    return kconfig.KconfigTree(str(FIXTURES / "linux-6.1"))


@pytest.fixture(scope="module")
def resolved_tiny() -> dict:
    return kconfig.read_config(str(RESOLVED_TINY))


def requests(text: str, tmp_path: Path) -> dict:
    fragment = tmp_path / "asked.config"
    fragment.write_text(text)
    return kconfig.merge_fragments([str(fragment)])


def test_resolved_config_values(resolved_tiny: dict) -> None:
    assert resolved_tiny["PCI_P2PDMA"] == "y"
    assert resolved_tiny["BLOCK"] == "n"  # "# CONFIG_BLOCK is not set"
    assert resolved_tiny["LOCALVERSION"] == '""'
    assert "INFINIBAND" not in resolved_tiny  # invisible without NET: olddefconfig writes nothing


def test_bad_line_names_file_and_line(tmp_path: Path) -> None:
    fragment = tmp_path / "broken.config"
    fragment.write_text("CONFIG_PCI=y\nPCI_P2PDMA=y\n")
    with pytest.raises(P2PError, match=r"broken.config line 2: 'PCI_P2PDMA=y' is not a config line"):
        kconfig.read_config(str(fragment))


def test_missing_fragment_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(P2PError, match="does not exist"):
        kconfig.merge_fragments([str(tmp_path / "nope.config")])


def test_later_fragment_wins_and_is_named() -> None:
    merged = kconfig.merge_fragments([str(KERNEL_SRC / "p2pdma.config"), str(KERNEL_SRC / "lab.config")])
    assert merged["BLK_DEV_NVME"].value == "y"
    assert merged["BLK_DEV_NVME"].fragment.endswith("lab.config")
    assert merged["PCI_P2PDMA"].fragment.endswith("p2pdma.config")


def test_render_round_trips(resolved_tiny: dict) -> None:
    assert kconfig.parse_config(kconfig.render_config(resolved_tiny)) == resolved_tiny


@pytest.mark.parametrize(
    ("asked", "received", "ok"),
    [("m", "y", True), ("y", "m", False), ("m", "m", True), ("n", "n", True), ("y", "n", False), ('"a"', '"b"', False)],
)
def test_module_request_is_satisfied_by_builtin(asked: str, received: str, ok: bool) -> None:
    assert kconfig.satisfies(asked, received) is ok


@pytest.mark.parametrize(
    ("expression", "values", "result"),
    [
        ("m || IPV6 != m", {"IPV6": "m"}, "m"),
        ("m || IPV6 != m", {"IPV6": "y"}, "y"),
        ("HAS_IOMEM && HAS_DMA", {"HAS_IOMEM": "y"}, "n"),
        ("!ALPHA", {}, "y"),
        (
            "INFINIBAND_ADDR_TRANS && CONFIGFS_FS && !(INFINIBAND=y && CONFIGFS_FS=m)",
            kconfig.parse_config("CONFIG_INFINIBAND=y\nCONFIG_INFINIBAND_ADDR_TRANS=y\nCONFIG_CONFIGFS_FS=m\n"),
            "n",
        ),
        ("NVME_TARGET && m", {"NVME_TARGET": "y"}, "m"),
        ("NR_CPUS > 1", {"NR_CPUS": "64"}, "y"),
    ],
)
def test_expressions_use_tristate_logic(expression: str, values: dict, result: str) -> None:
    assert kconfig.evaluate(expression, values) == result


def test_if_and_menu_blocks_add_dependencies(kconfig_61: kconfig.KconfigTree) -> None:
    (p2pdma,) = kconfig_61.definitions["PCI_P2PDMA"]
    assert p2pdma.depends == ["PCI", "ZONE_DEVICE", "64BIT"]
    assert p2pdma.location == "drivers/pci/Kconfig:13"
    (user_access,) = kconfig_61.definitions["INFINIBAND_USER_ACCESS"]
    assert user_access.depends == ["INFINIBAND", "MMU"]
    (virt_dma,) = kconfig_61.definitions["INFINIBAND_VIRT_DMA"]
    assert not virt_dma.has_prompt


def test_dropped_symbols_name_the_unmet_dependency(
    kconfig_61: kconfig.KconfigTree, resolved_tiny: dict, tmp_path: Path
) -> None:
    asked = requests(
        "CONFIG_PCI_P2PDMA=y\nCONFIG_INFINIBAND=m\nCONFIG_NVME_TARGET_TCP=m\nCONFIG_ZONE_DEVICE=y\n", tmp_path
    )
    dropped = {entry.symbol: entry for entry in kconfig.verify(asked, resolved_tiny, kconfig_61)}
    assert sorted(dropped) == ["INFINIBAND", "NVME_TARGET_TCP"]
    infiniband = dropped["INFINIBAND"]
    assert (infiniband.asked, infiniband.received) == ("m", "n")
    assert infiniband.reason == (
        "unmet dependency: 'NET' is n (drivers/infiniband/Kconfig:2); 'INET' is n (drivers/infiniband/Kconfig:2)"
    )
    assert "'INET' is n" in dropped["NVME_TARGET_TCP"].reason
    assert "'NVME_TARGET' is n" in dropped["NVME_TARGET_TCP"].reason


def test_require_all_lists_every_drop_in_one_error(
    kconfig_61: kconfig.KconfigTree, resolved_tiny: dict, tmp_path: Path
) -> None:
    asked = requests("CONFIG_INFINIBAND=m\nCONFIG_NVME_TARGET=m\n", tmp_path)
    with pytest.raises(P2PError) as caught:
        kconfig.require_all(asked, resolved_tiny, kconfig_61)
    message = str(caught.value)
    assert message.startswith("2 config symbol(s) did not survive olddefconfig")
    assert "CONFIG_INFINIBAND: asked m (asked.config), received n" in message
    assert "fix:" in message


def test_unknown_symbol_is_reported_as_absent(
    kconfig_61: kconfig.KconfigTree, resolved_tiny: dict, tmp_path: Path
) -> None:
    (dropped,) = kconfig.verify(requests("CONFIG_PCI_P2PDMA_TYPO=y\n", tmp_path), resolved_tiny, kconfig_61)
    assert dropped.reason == "no Kconfig entry defines PCI_P2PDMA_TYPO in this kernel (renamed or removed)"


def test_symbol_without_prompt_is_explained(kconfig_61: kconfig.KconfigTree, tmp_path: Path) -> None:
    resolved = kconfig.parse_config("CONFIG_INFINIBAND=y\n# CONFIG_INFINIBAND_VIRT_DMA is not set\n")
    (dropped,) = kconfig.verify(requests("CONFIG_INFINIBAND_VIRT_DMA=y\n", tmp_path), resolved, kconfig_61)
    assert "has no prompt" in dropped.reason


def test_tree_without_kconfig_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(P2PError, match="has no top-level Kconfig"):
        kconfig.KconfigTree(str(tmp_path))


def test_help_text_is_not_read_as_statements(tmp_path: Path) -> None:
    (tmp_path / "Kconfig").write_text(
        'config A\n\tbool "a"\n\thelp\n\t  source to be read below\n\t  depends on B\n\nconfig B\n\tbool\n'
    )
    tree = kconfig.KconfigTree(str(tmp_path))
    assert tree.definitions["A"][0].depends == []
    assert os.path.basename(tree.definitions["B"][0].location) == "Kconfig:7"
