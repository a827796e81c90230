import importlib.util
import shutil
from pathlib import Path

import pytest

from ansible_collections.p2pdma.storage.plugins.module_utils.common import paths
from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError

CHECKOUT = Path(__file__).resolve().parents[2]


def _paths_module_in(root: Path):
    """A copy of paths.py placed in ``root``'s collection layout, imported from there."""
    target = root / "plugins/module_utils/common/paths.py"
    target.parent.mkdir(parents=True)
    shutil.copy(paths.__file__, target)
    spec = importlib.util.spec_from_file_location("paths_under_test", target)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_checkout_root_is_the_directory_with_galaxy_yml():
    root = paths.collection_root()
    assert root == CHECKOUT
    assert (root / "galaxy.yml").is_file()
    assert (root / "playbooks/site.yml").is_file()


@pytest.mark.parametrize(
    "layout, marker",
    [
        ("site-packages/ansible_collections/p2pdma/storage", "galaxy.yml"),  # pip install
        ("collections/ansible_collections/p2pdma/storage", "MANIFEST.json"),  # ansible-galaxy collection install
    ],
)
def test_installed_root_is_found_from_the_module_place(tmp_path, layout, marker):
    root = tmp_path / layout
    root.mkdir(parents=True)
    (root / marker).write_text("{}\n")
    assert _paths_module_in(root).collection_root() == root


def test_a_tree_without_collection_metadata_is_refused_with_a_fix(tmp_path):
    module = _paths_module_in(tmp_path / "stray")
    with pytest.raises(P2PError) as err:
        module.collection_root()
    assert str(tmp_path / "stray") in str(err.value)
    assert "galaxy.yml" in str(err.value)
    assert err.value.fix


@pytest.mark.parametrize(
    "env, want",
    [
        ({"P2PCTL_CACHE": "/srv/p2p-cache", "XDG_CACHE_HOME": "/xdg"}, "/srv/p2p-cache"),
        ({"XDG_CACHE_HOME": "/xdg"}, "/xdg/p2pctl"),
        ({"P2PCTL_CACHE": "", "XDG_CACHE_HOME": ""}, "{home}/.cache/p2pctl"),
        ({}, "{home}/.cache/p2pctl"),
    ],
)
def test_cache_root_honours_p2pctl_cache_then_xdg_then_home(monkeypatch, tmp_path, env, want):
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("P2PCTL_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert paths.cache_root() == Path(want.format(home=tmp_path))
