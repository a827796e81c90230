from pathlib import Path

import pytest

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.common.paths import (
    cache_root,
    collection_root,
    kernel_src,
    playbook_path,
)
from p2pctl.lab.cache import lab_dir

CHECKOUT = Path(__file__).resolve().parents[2]


def test_the_lab_keeps_its_state_in_the_cache_root(monkeypatch, tmp_path):
    monkeypatch.setenv("P2PCTL_CACHE", str(tmp_path))
    assert cache_root() == tmp_path
    assert lab_dir() == tmp_path / "lab"


def test_kernel_src_holds_the_series_and_the_fragments():
    assert kernel_src() == collection_root() / "kernel-src"
    assert (kernel_src() / "configs" / "p2pdma.config").is_file()
    assert (kernel_src() / "patches" / "6.12" / "series").is_file()


def test_playbook_path():
    assert playbook_path("kernel_build") == CHECKOUT / "playbooks" / "kernel_build.yml"
    assert playbook_path("check.yml") == CHECKOUT / "playbooks" / "check.yml"


def test_an_unknown_playbook_names_the_ones_there():
    with pytest.raises(P2PError, match="no playbook .*provison.yml") as caught:
        playbook_path("provison")
    assert "kernel_build" in str(caught.value)
