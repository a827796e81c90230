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


@pytest.mark.parametrize(
    "environment, expected",
    [
        ({"P2PCTL_CACHE": "/srv/p2p", "XDG_CACHE_HOME": "/xdg"}, "/srv/p2p"),
        ({"P2PCTL_CACHE": "", "XDG_CACHE_HOME": "/xdg"}, "/xdg/p2pctl"),
        ({"XDG_CACHE_HOME": "/xdg"}, "/xdg/p2pctl"),
        ({"XDG_CACHE_HOME": ""}, "/home/op/.cache/p2pctl"),
        ({}, "/home/op/.cache/p2pctl"),
    ],
)
def test_cache_root_honours_p2pctl_cache_then_xdg(monkeypatch, environment, expected):
    monkeypatch.setenv("HOME", "/home/op")
    for name in ("P2PCTL_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert cache_root() == Path(expected)
    assert lab_dir() == Path(expected) / "lab"


def test_the_collection_root_is_the_checkout():
    assert collection_root() == CHECKOUT
    assert (collection_root() / "galaxy.yml").is_file()
    assert (kernel_src() / "configs" / "p2pdma.config").is_file()


def test_playbook_path():
    assert playbook_path("kernel_build") == CHECKOUT / "playbooks" / "kernel_build.yml"
    assert playbook_path("check.yml") == CHECKOUT / "playbooks" / "check.yml"


def test_an_unknown_playbook_names_the_ones_there():
    with pytest.raises(P2PError, match="no playbook .*provison.yml") as caught:
        playbook_path("provison")
    assert "kernel_build" in str(caught.value)
