# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kernel source trees: get one, apply a quilt-style patch series to it, and cache the result.

A prepared tree lives under ``<cache>/<key>/linux`` where the key hashes the source
(tarball content or git commit) and every patch of the series, so the same inputs
never extract or patch twice, and changed inputs never reuse a stale tree. The tree
is built in a temporary directory and renamed into place only when every patch
applied, so an interrupted run leaves nothing half-patched behind.
"""

from __future__ import annotations

import glob
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.common.paths import cache_root

_CHUNK = 1 << 20


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class Patch:
    name: str
    path: str
    strip: int
    sha256: str

    def touched_files(self) -> List[str]:
        """Source files the patch changes, from its ``+++`` lines."""
        files = []
        with open(self.path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("+++ ") and not line.startswith("+++ /dev/null"):
                    target = line[4:].split("\t")[0].strip()
                    files.append(target.split("/", self.strip)[-1])
        return files


def read_series(series_dir: str) -> List[Patch]:
    """The patches listed in ``series_dir/series``, in order (quilt format: ``name [-pN]``, ``#`` comments)."""
    series_file = os.path.join(series_dir, "series")
    if not os.path.isfile(series_file):
        raise P2PError(
            "patch series %s has no series file" % series_dir,
            fix="list the patch files, one per line, in %s" % series_file,
        )
    patches = []
    with open(series_file, encoding="utf-8") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.split("#", 1)[0].strip()
            if not line:
                continue
            fields = line.split()
            strip = 1
            for option in fields[1:]:
                if not re.fullmatch(r"-p[0-9]", option):
                    raise P2PError(
                        "%s line %d: unknown option %r" % (series_file, number, option),
                        fix="use 'patch-name' or 'patch-name -pN'",
                    )
                strip = int(option[2:])
            path = os.path.join(series_dir, fields[0])
            if not os.path.isfile(path):
                raise P2PError(
                    "%s line %d names %s, which does not exist" % (series_file, number, fields[0]),
                    fix="add the patch file or remove it from the series",
                )
            patches.append(Patch(fields[0], path, strip, file_sha256(path)))
    return patches


def touched_objects(patches: Sequence[Patch]) -> List[str]:
    """The object files to compile to prove a series builds: one per patched C file."""
    objects: Dict[str, None] = {}
    for patch in patches:
        for touched in patch.touched_files():
            if touched.endswith(".c"):
                objects[touched[:-2] + ".o"] = None
    return list(objects)


_HUNK_FAILED = re.compile(r"^Hunk #(\d+) FAILED at (\d+)", re.MULTILINE)
_PATCHING = re.compile(r"^(?:patching|checking) file (.+)$")


def _failed_hunks(output: str) -> List[str]:
    """``file hunk #N at line L`` for every failed hunk in GNU patch output."""
    failures = []
    current = "?"
    for line in output.splitlines():
        patching = _PATCHING.match(line)
        if patching:
            current = patching.group(1).strip()
            continue
        failed = _HUNK_FAILED.match(line)
        if failed:
            failures.append("%s hunk #%s at line %s" % (current, failed.group(1), failed.group(2)))
    return failures


def _hunk_header(patch: Patch, failed: str) -> str:
    """The ``@@ ... @@ context`` line of a failed hunk, so the message shows which function it targets."""
    match = re.match(r"(.+) hunk #(\d+)", failed)
    if not match:
        return ""
    wanted_file, wanted_hunk = match.group(1), int(match.group(2))
    in_file, hunk = False, 0
    with open(patch.path, encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if line.startswith("+++ "):
                in_file = line[4:].split("\t")[0].strip().split("/", patch.strip)[-1] == wanted_file
                hunk = 0
            elif in_file and line.startswith("@@"):
                hunk += 1
                if hunk == wanted_hunk:
                    return line.strip()
    return ""


def apply_patch(tree: str, patch: Patch) -> None:
    """Dry-run ``patch``, then apply it; a failure names the patch and each failing hunk."""
    base = ["patch", "-d", tree, "-p%d" % patch.strip, "--forward", "--batch", "-i", patch.path]
    for argv in (base + ["--dry-run"], base):
        result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
        if result.returncode != 0:
            hunks = _failed_hunks(result.stdout)
            detail = "; ".join("%s %s" % (hunk, _hunk_header(patch, hunk)) for hunk in hunks)
            raise P2PError(
                "patch %s does not apply to %s: %s"
                % (patch.name, tree, detail or result.stdout.strip().splitlines()[-1:]),
                fix="refresh %s against this kernel version (or pick the series written for it)" % patch.path,
            )


@dataclass(frozen=True)
class PreparedTree:
    path: str
    key: str
    source: str
    source_id: str
    patches: List[Patch]
    reused: bool


def _tree_key(source_id: str, patches: Sequence[Patch]) -> str:
    digest = hashlib.sha256(source_id.encode())
    for patch in patches:
        digest.update(("\0%s\0%d\0%s" % (patch.name, patch.strip, patch.sha256)).encode())
    return digest.hexdigest()[:16]


def _extract_tarball(tarball: str, destination: str) -> None:
    """Unpack a linux source tarball so its one top directory becomes ``destination``."""
    staging = destination + ".unpack"
    os.makedirs(staging)
    # GNU tar is several times faster than tarfile on a 1 GiB tree and keeps modes and mtimes.
    result = subprocess.run(["tar", "-xf", tarball, "-C", staging], stderr=subprocess.PIPE, text=True, check=False)
    tops = os.listdir(staging)
    if result.returncode != 0 or len(tops) != 1:
        raise P2PError(
            "%s is not a kernel source tarball with one top directory: %s"
            % (tarball, result.stderr.strip() or "%d top-level entries" % len(tops)),
            fix="give a kernel source tarball such as /usr/src/linux-source-6.1.tar.xz",
        )
    os.rename(os.path.join(staging, tops[0]), destination)
    os.rmdir(staging)


def _clone_git(url: str, ref: str, destination: str) -> str:
    result = subprocess.run(
        ["git", "clone", "--quiet", "--depth", "1", "--branch", ref, url, destination],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise P2PError(
            "cannot clone %s at %s: %s" % (url, ref, result.stdout.strip()),
            fix="give a reachable git URL and an existing branch or tag",
        )
    head = subprocess.run(
        ["git", "-C", destination, "rev-parse", "HEAD"], stdout=subprocess.PIPE, text=True, check=True
    )
    return head.stdout.strip()


def prepare_tree(
    series_dir: Optional[str],
    tarball: Optional[str] = None,
    git_url: Optional[str] = None,
    git_ref: Optional[str] = None,
    cache_dir: Optional[str] = None,
) -> PreparedTree:
    """An extracted (or cloned) source tree with the series applied, from the cache when it is there.

    ``cache_dir`` defaults to ``kernel-tree`` in the cache root (paths.cache_root).
    """
    cache_dir = cache_dir or str(cache_root() / "kernel-tree")
    if bool(tarball) == bool(git_url):
        raise P2PError("give exactly one kernel source: a tarball or a git URL", fix="pass tarball= or git_url=")
    patches = read_series(series_dir) if series_dir else []
    if tarball:
        if not os.path.isfile(tarball):
            raise P2PError(
                "kernel source tarball %s does not exist" % tarball,
                fix="install the linux-source-X.Y package or give an existing tarball",
            )
        source, source_id = tarball, "tarball:" + file_sha256(tarball)
    else:
        if not git_ref:
            raise P2PError("git source %s has no ref" % git_url, fix="give a branch or tag as git_ref")
        source, source_id = "%s@%s" % (git_url, git_ref), ""
    os.makedirs(cache_dir, exist_ok=True)
    if source_id:
        key = _tree_key(source_id, patches)
        final = os.path.join(cache_dir, key, "linux")
        if os.path.isdir(final):
            return PreparedTree(final, key, source, source_id, patches, reused=True)
    work = tempfile.mkdtemp(prefix="prepare-", dir=cache_dir)
    try:
        tree = os.path.join(work, "linux")
        if tarball:
            _extract_tarball(tarball, tree)
        else:
            source_id = "git:" + _clone_git(git_url or "", git_ref or "", tree)
            key = _tree_key(source_id, patches)
            final = os.path.join(cache_dir, key, "linux")
            if os.path.isdir(final):
                return PreparedTree(final, key, source, source_id, patches, reused=True)
        for patch in patches:
            apply_patch(tree, patch)
        os.makedirs(os.path.dirname(final), exist_ok=True)
        try:
            os.rename(tree, final)
        except OSError:
            # Another run prepared the same tree meanwhile: its copy is identical.
            if not os.path.isdir(final):
                raise
            return PreparedTree(final, key, source, source_id, patches, reused=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return PreparedTree(final, key, source, source_id, patches, reused=False)


# Debian suites that ship linux-source-X.Y; a suite other than the host's own is read
# through its own apt lists directory, so the host's sources.list is never changed.
DEBIAN_SOURCE_SUITES = {"6.1": "bookworm", "6.12": "trixie"}
_DEBIAN_MIRROR = "http://deb.debian.org/debian"


def _apt_options(state: str, suite: str) -> List[str]:
    sources = os.path.join(state, "%s.sources" % suite)
    with open(sources, "w", encoding="utf-8") as handle:
        handle.write(
            "Types: deb\nURIs: %s\nSuites: %s\nComponents: main\n"
            "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n" % (_mirror(), suite)
        )
    lists = os.path.join(state, "lists-" + suite)
    os.makedirs(os.path.join(lists, "partial"), exist_ok=True)
    return [
        "-o",
        "Dir::Etc::sourcelist=" + sources,
        "-o",
        "Dir::Etc::sourceparts=-",
        "-o",
        "Dir::State::Lists=" + lists,
        "-o",
        "APT::Sandbox::User=root",
    ]


def _mirror() -> str:
    """The mirror this host already uses for Debian, so a suite is fetched from the same place."""
    for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*"))]:
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except OSError:
            continue
        found = re.search(r"(?:URIs:|^deb)\s+(?:\[[^]]*\]\s+)?(\S+/debian)/?\s", text, re.MULTILINE)
        if found:
            return found.group(1)
    return _DEBIAN_MIRROR


def debian_source_tarball(version: str, package_cache: Optional[str] = None) -> str:
    """The path of Debian's linux-source-<version> tarball: installed, cached, or fetched with apt-get download.

    ``package_cache`` defaults to ``linux-source`` in the cache root (paths.cache_root).
    """
    package_cache = package_cache or str(cache_root() / "linux-source")
    installed = "/usr/src/linux-source-%s.tar.xz" % version
    if os.path.isfile(installed):
        return installed
    cached = os.path.join(package_cache, version, "linux-source-%s.tar.xz" % version)
    if os.path.isfile(cached):
        return cached
    suite = DEBIAN_SOURCE_SUITES.get(version)
    if suite is None:
        raise P2PError(
            "no Debian suite is known to ship linux-source-%s" % version,
            fix="use one of %s, or give a tarball or git source" % ", ".join(sorted(DEBIAN_SOURCE_SUITES)),
        )
    state = os.path.join(package_cache, "apt")
    os.makedirs(state, exist_ok=True)
    options = _apt_options(state, suite)
    work = tempfile.mkdtemp(prefix="fetch-", dir=package_cache)
    try:
        for argv in (["apt-get", *options, "update"], ["apt-get", *options, "download", "linux-source-" + version]):
            result = subprocess.run(
                argv, cwd=work, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False
            )
            if result.returncode != 0:
                raise P2PError(
                    "cannot fetch linux-source-%s from Debian %s: %s" % (version, suite, result.stdout.strip()[-400:]),
                    fix="check that this host reaches its Debian mirror, or install linux-source-%s" % version,
                )
        (package,) = glob.glob(os.path.join(work, "linux-source-%s_*.deb" % version))
        subprocess.run(["dpkg-deb", "-x", package, os.path.join(work, "root")], check=True)
        os.makedirs(os.path.dirname(cached), exist_ok=True)
        os.rename(os.path.join(work, "root", "usr", "src", os.path.basename(cached)), cached)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return cached
