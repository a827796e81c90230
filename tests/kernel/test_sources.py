"""Slow: `p2pctl kernel build --check` from each kind of source, through the real kernel_build role.

Check mode prepares the source (extract or clone, patch series), configures, verifies every fragment
symbol and reports the release a build would have; it compiles nothing. The git source is a local
repository made from Debian's linux-source-6.1, cloned over file:// like any remote.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import List

import pytest

from ansible_collections.p2pdma.storage.plugins.module_utils.common.paths import cache_root, kernel_src
from ansible_collections.p2pdma.storage.plugins.module_utils.kernel import source_tree

pytestmark = pytest.mark.kernel

LAB_FRAGMENT = kernel_src() / "configs" / "lab.config"
P2PCTL = os.path.join(os.path.dirname(sys.executable), "p2pctl")
GIT_TAG = "v6.1-debian"
# A fixed identity and date make the same commit id on every run, so the patched tree cached by
# content hash is reused instead of piling up.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "p2pdma.storage tests",
    "GIT_AUTHOR_EMAIL": "tests@p2pdma.invalid",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z",
    "GIT_COMMITTER_NAME": "p2pdma.storage tests",
    "GIT_COMMITTER_EMAIL": "tests@p2pdma.invalid",
    "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
}
RELEASE = re.compile(r"^(would build|up to date|built): (6\.1\.\d+-p2p[0-9a-f]+)$", re.MULTILINE)


@pytest.fixture(scope="module")
def tarball_61() -> str:
    return source_tree.debian_source_tarball("6.1")


@pytest.fixture(scope="module")
def git_repo(tarball_61: str) -> str:
    """A bare repository with the tarball's tree as one tagged commit; its file:// URL.

    Made once per tarball content (the commit is the same every time, see GIT_ENV) and kept in the
    p2pctl cache: extracting and committing 1.2 GB of source is most of this module's time, and the
    clone that kernel_build makes from it, which is what the tests are about, still runs every time.
    """
    cached = cache_root() / "test-git" / source_tree.file_sha256(tarball_61)[:16] / "linux.git"
    if not cached.is_dir():
        cached.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="make-", dir=cached.parent) as work:
            _make_repo(tarball_61, Path(work))
            os.rename(Path(work) / "linux.git", cached)
    return "file://%s" % cached


def _make_repo(tarball: str, base: Path) -> None:
    subprocess.run(["tar", "-xf", tarball, "-C", str(base)], check=True)
    (tree,) = [path for path in base.iterdir() if path.is_dir()]
    bare = base / "linux.git"
    env = dict(os.environ, **GIT_ENV)

    def git(*args: str) -> None:
        subprocess.run(["git", "--git-dir", str(bare), "--work-tree", str(tree), *args], env=env, check=True)

    subprocess.run(["git", "init", "--quiet", "--bare", str(bare)], check=True)
    git("config", "core.bare", "false")
    # Debian's tree ignores its own top-level files ("/*" in .gitignore): add everything.
    git("add", "--all", "--force")
    git("commit", "--quiet", "--message", "Debian linux-source-6.1")
    git("tag", GIT_TAG)
    git("config", "core.bare", "true")


def build_check(*args: str) -> subprocess.CompletedProcess:
    argv: List[str] = [P2PCTL, "kernel", "build", "--check", "--series", "6.1", "--config-base", "tinyconfig"]
    argv += ["--fragment", str(LAB_FRAGMENT), *args]
    return subprocess.run(argv, capture_output=True, text=True, check=False)


def release_of(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    match = RELEASE.search(result.stdout)
    assert match, result.stdout
    return match.group(2)


def test_tarball_and_git_sources_give_releases_of_their_own(tarball_61: str, git_repo: str) -> None:
    from_tarball = release_of(build_check("--tarball", tarball_61))
    from_git = release_of(build_check("--git-url", git_repo, "--git-ref", GIT_TAG))
    # Same files, but the hash covers where they came from: the tarball's digest or the commit id.
    assert from_tarball.split("-p2p")[0] == from_git.split("-p2p")[0]
    assert from_tarball != from_git
    # Nothing changed: the same release again.
    assert release_of(build_check("--git-url", git_repo, "--git-ref", GIT_TAG)) == from_git


def test_a_missing_git_ref_names_the_url_and_the_ref(git_repo: str) -> None:
    result = build_check("--git-url", git_repo, "--git-ref", "v9.9-missing")
    assert result.returncode != 0
    assert "cannot clone %s at v9.9-missing" % git_repo in result.stdout + result.stderr


def test_a_file_that_is_not_a_kernel_tarball_is_named(tmp_path: Path) -> None:
    bogus = tmp_path / "linux.tar"
    with tarfile.open(bogus, "w") as archive:
        for name in ("a", "b"):
            (tmp_path / name).write_text(name)
            archive.add(tmp_path / name, arcname=name)
    result = build_check("--tarball", str(bogus))
    assert result.returncode != 0
    assert "%s is not a kernel source tarball with one top directory" % bogus in result.stdout + result.stderr
