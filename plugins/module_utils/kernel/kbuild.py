# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Configure and package a kernel from a prepared source tree, once per content hash.

Flow: a config base (defconfig, tinyconfig, a given file, the running config, or
localmodconfig) -> the fragments written over it -> ``make olddefconfig`` -> every
fragment symbol verified (:mod:`_kconfig`) -> the resolved .config hashed together
with the tree's source and patches -> ``make bindeb-pkg`` in an output directory named
by that hash, with ``LOCALVERSION=-p2p<hash>``. A second run with the same inputs
finds the provenance file of the finished build and builds nothing.

Every ``make`` runs out of tree (``O=``) so one prepared source tree serves any number
of configs without being written to.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from typing import IO, Dict, List, Mapping, Optional, Sequence

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.common.files import write_atomic
from ansible_collections.p2pdma.storage.plugins.module_utils.kernel import kconfig
from ansible_collections.p2pdma.storage.plugins.module_utils.kernel.source_tree import PreparedTree, file_sha256

CONFIG_BASES = ("defconfig", "tinyconfig", "file", "running", "localmodconfig")
PROVENANCE = "provenance.json"
DEFAULT_TARGET = "bindeb-pkg"
_HASH_LENGTH = 12
# Symbols the pipeline itself decides: the release must carry only our hash, and a
# git tree must not append "+" or a commit id that the hash already accounts for.
_RELEASE_SYMBOLS = ("LOCALVERSION", "LOCALVERSION_AUTO")


@dataclass(frozen=True)
class ConfigBase:
    kind: str
    path: Optional[str] = None  # the file for "file"; the base config for "running"/"localmodconfig"
    lsmod: Optional[str] = None  # module list for "localmodconfig" (default: this host's)

    def __post_init__(self) -> None:
        if self.kind not in CONFIG_BASES:
            raise P2PError(
                "config base %r is unknown" % self.kind,
                fix="use one of %s" % ", ".join(CONFIG_BASES),
            )
        if self.kind == "file" and not self.path:
            raise P2PError("config base 'file' needs a path", fix="give the .config file to start from")


# A build log line that starts a stage: "==> make bindeb-pkg: make -C ... bindeb-pkg".
STAGE_MARK = "==> "


class BuildLog:
    """The output of every command of one build, as it comes, in one file a user can follow.

    Each stage starts with a :data:`STAGE_MARK` line naming it, so a reader of the tail
    (``tail -f``, ``p2pctl kernel build``) knows what the build is doing.
    """

    def __init__(self, path: Optional[str]) -> None:
        self.path = path
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            with open(path, "w", encoding="utf-8"):
                pass  # this build's log only

    def stage(self, name: str, detail: str = "") -> IO[str]:
        """Start a stage; the handle (line-buffered, so followers see each line) takes its output."""
        handle = open(self.path or os.devnull, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
        handle.write("%s%s%s\n" % (STAGE_MARK, name, ": " + detail if detail else ""))
        return handle


class BuildLogReader:
    """Follows a build log as it grows: the stage it is in and its last line of output.

    The log may not exist yet, and a new build truncates it: both read as a fresh start.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self._start()

    def _start(self) -> None:
        self.stage: Optional[str] = None
        self.last_line = ""
        self._offset = 0
        self._partial = b""

    def poll(self) -> None:
        """Read what was written since the last poll."""
        try:
            with open(self.path, "rb") as handle:
                if os.fstat(handle.fileno()).st_size < self._offset:
                    self._start()
                handle.seek(self._offset)
                data = handle.read()
        except FileNotFoundError:
            return
        self._offset += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        for raw in lines:
            line = raw.decode("utf-8", "replace").rstrip()
            if line.startswith(STAGE_MARK):
                self.stage = line[len(STAGE_MARK) :].partition(": ")[0]
                self.last_line = ""
            elif line:
                self.last_line = line


@dataclass
class StepTimes:
    seconds: Dict[str, float] = field(default_factory=dict)
    log: BuildLog = field(default_factory=lambda: BuildLog(None))

    def run(
        self, name: str, argv: Sequence[str], env: Optional[Mapping[str, str]] = None, cwd: Optional[str] = None
    ) -> str:
        """Run one stage: its output goes to the log line by line, and is returned."""
        start = time.monotonic()
        lines: List[str] = []
        with self.log.stage(name, " ".join(argv)) as sink, subprocess.Popen(
            list(argv),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            env=dict(env) if env is not None else None,
            cwd=cwd,
        ) as process:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line)
                sink.write(line)
        self.seconds[name] = self.seconds.get(name, 0.0) + time.monotonic() - start
        output = "".join(lines)
        if process.returncode != 0:
            tail = "\n".join(output.strip().splitlines()[-25:])
            where = "; the whole output is in %s" % self.log.path if self.log.path else ""
            raise P2PError(
                "%s failed (exit %d): %s\n%s" % (name, process.returncode, " ".join(argv), tail),
                fix="read the output above%s; the build directory is kept for inspection" % where,
            )
        return output


def running_config_path() -> str:
    return "/boot/config-%s" % platform.release()


def make_argv(tree: str, objdir: str, jobs: int, *targets: str, extra: Sequence[str] = ()) -> List[str]:
    return ["make", "-C", tree, "O=" + objdir, "-j%d" % jobs, *extra, *targets]


def configure(
    tree: PreparedTree,
    objdir: str,
    base: ConfigBase,
    fragments: Sequence[str],
    jobs: int,
    times: StepTimes,
) -> Dict[str, str]:
    """Write the resolved and verified .config into ``objdir``; return its values."""
    os.makedirs(objdir, exist_ok=True)
    config_path = os.path.join(objdir, ".config")
    requests = kconfig.merge_fragments(fragments)
    if base.kind in ("defconfig", "tinyconfig"):
        times.run("make " + base.kind, make_argv(tree.path, objdir, jobs, base.kind))
    else:
        source = base.path or running_config_path()
        if not os.path.isfile(source):
            raise P2PError(
                "config base %s: %s does not exist" % (base.kind, source),
                fix="give an existing .config (kernel_build_config_file) or pick another base",
            )
        shutil.copyfile(source, config_path)
        if base.kind == "localmodconfig":
            lsmod = base.lsmod or "/proc/modules"
            # localmodconfig asks about new symbols on stdin: olddefconfig first answers them all with defaults.
            times.run("make olddefconfig", make_argv(tree.path, objdir, jobs, "olddefconfig"))
            times.run(
                "make localmodconfig", make_argv(tree.path, objdir, jobs, "localmodconfig", extra=["LSMOD=" + lsmod])
            )
    base_values = kconfig.read_config(config_path)
    merged = kconfig.apply_requests(base_values, requests)
    merged["LOCALVERSION"] = '""'
    merged["LOCALVERSION_AUTO"] = "n"
    # Debian's running configs name certificate files that exist only in Debian's own build tree.
    for symbol in ("SYSTEM_TRUSTED_KEYS", "SYSTEM_REVOCATION_KEYS"):
        if symbol in merged and symbol not in requests:
            merged[symbol] = '""'
    with open(config_path, "w", encoding="utf-8") as handle:
        handle.write(kconfig.render_config(merged))
    times.run("make olddefconfig", make_argv(tree.path, objdir, jobs, "olddefconfig"))
    resolved = kconfig.read_config(config_path)
    kconfig.require_all(requests, resolved, kconfig.KconfigTree(tree.path))
    return resolved


def config_hash(resolved: Mapping[str, str]) -> str:
    """Hash of a resolved .config without the symbols the pipeline sets itself."""
    kept = {symbol: value for symbol, value in sorted(resolved.items()) if symbol not in _RELEASE_SYMBOLS}
    return hashlib.sha256(kconfig.render_config(kept).encode()).hexdigest()


def build_hash(tree: PreparedTree, resolved: Mapping[str, str]) -> str:
    digest = hashlib.sha256()
    digest.update(tree.key.encode())
    digest.update(config_hash(resolved).encode())
    return digest.hexdigest()[:_HASH_LENGTH]


@dataclass
class BuildResult:
    output_dir: str
    release: str
    packages: List[str]
    provenance: Dict[str, object]
    changed: bool
    times: Dict[str, float]


def _compiler(ccache: bool) -> str:
    version = subprocess.run(["gcc", "--version"], stdout=subprocess.PIPE, text=True, check=True).stdout
    return version.splitlines()[0] + (" via ccache" if ccache else "")


def _read_provenance(output_dir: str) -> Optional[Dict[str, object]]:
    path = os.path.join(output_dir, PROVENANCE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle:
        provenance: Dict[str, object] = json.load(handle)
    packages = provenance.get("packages")
    if not isinstance(packages, list) or not all(os.path.isfile(os.path.join(output_dir, p)) for p in packages):
        return None
    return provenance


def build_packages(
    tree: PreparedTree,
    base: ConfigBase,
    fragments: Sequence[str],
    output_root: str,
    jobs: int = 2,
    ccache_dir: Optional[str] = None,
    target: str = DEFAULT_TARGET,
    dry_run: bool = False,
    log: Optional[BuildLog] = None,
) -> BuildResult:
    """Configure, verify and package; reuse a finished build with the same hash.

    ``dry_run`` configures and verifies (in a scratch directory under ``output_root``)
    and reports what would be built, without building. Without ``ccache_dir`` the
    compiler runs without ccache. Every command's output goes to ``log`` as it comes.
    """
    times = StepTimes(log=log or BuildLog(None))
    os.makedirs(output_root, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix="configure-", dir=output_root)
    try:
        resolved = configure(tree, os.path.join(scratch, "build"), base, fragments, jobs, times)
        digest = build_hash(tree, resolved)
        output_dir = os.path.join(output_root, digest)
        # Two runs with the same inputs (two playbooks, a CLI call during a build) must not share a build
        # directory: the second waits here, then finds the first one's packages.
        with open(os.path.join(output_root, digest + ".lock"), "w", encoding="utf-8") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                with times.log.stage("wait for the other build of %s" % digest, output_dir):
                    fcntl.flock(lock, fcntl.LOCK_EX)
            existing = _read_provenance(output_dir)
            if existing is not None:
                packages = list(existing["packages"])  # type: ignore[call-overload]
                return BuildResult(output_dir, str(existing["release"]), packages, existing, False, times.seconds)
            if dry_run:
                release = kernel_release(tree, os.path.join(scratch, "build"), digest, times)
                return BuildResult(output_dir, release, [], {}, False, times.seconds)
            # Keep the finished config: build where the hash says, and drop any half-finished earlier attempt.
            shutil.rmtree(output_dir, ignore_errors=True)
            os.makedirs(output_dir)
            os.rename(os.path.join(scratch, "build"), os.path.join(output_dir, "build"))
            return _package(tree, base, fragments, resolved, digest, output_dir, jobs, ccache_dir, target, times)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def kernel_release(tree: PreparedTree, objdir: str, digest: str, times: StepTimes) -> str:
    """What ``uname -r`` will say: the tree's version with the build hash as LOCALVERSION."""
    output = times.run(
        "make kernelrelease", make_argv(tree.path, objdir, 1, "-s", "kernelrelease", extra=[_localversion(digest)])
    )
    return output.strip().splitlines()[-1]


def _localversion(digest: str) -> str:
    return "LOCALVERSION=-p2p" + digest


def _package(
    tree: PreparedTree,
    base: ConfigBase,
    fragments: Sequence[str],
    resolved: Mapping[str, str],
    digest: str,
    output_dir: str,
    jobs: int,
    ccache_dir: Optional[str],
    target: str,
    times: StepTimes,
) -> BuildResult:
    objdir = os.path.join(output_dir, "build")
    env = dict(os.environ)
    make_extra = [_localversion(digest)]
    if ccache_dir:
        os.makedirs(ccache_dir, exist_ok=True)
        env.update(
            CCACHE_DIR=ccache_dir, CCACHE_BASEDIR=os.path.dirname(os.path.dirname(tree.path)), CCACHE_NOHASHDIR="1"
        )
        make_extra.append("CC=ccache gcc")
    release = kernel_release(tree, objdir, digest, times)
    times.run("make " + target, make_argv(tree.path, objdir, jobs, target, extra=make_extra), env)
    packages = sorted(os.path.basename(p) for p in glob.glob(os.path.join(output_dir, "*.deb")))
    if not packages:
        raise P2PError("make %s produced no .deb in %s" % (target, output_dir), fix="read the build log in %s" % objdir)
    provenance: Dict[str, object] = {
        "source": tree.source,
        "source_id": tree.source_id,
        "release": release,
        "patches": [{"name": p.name, "sha256": p.sha256} for p in tree.patches],
        "config_base": base.kind,
        "config_base_file": base.path,
        "fragments": [{"path": f, "sha256": file_sha256(f)} for f in fragments],
        "config_sha256": config_hash(resolved),
        "build_hash": digest,
        "compiler": _compiler(bool(ccache_dir)),
        "packages": packages,
        "seconds": {name: round(value, 1) for name, value in times.seconds.items()},
    }
    # The object tree is what ccache and a warm rebuild need; the packages and provenance are the product.
    write_atomic(os.path.join(output_dir, PROVENANCE), json.dumps(provenance, indent=2, sort_keys=True) + "\n")
    return BuildResult(output_dir, release, packages, provenance, True, times.seconds)


def compile_objects(
    tree: PreparedTree, objects: Sequence[str], fragments: Sequence[str], objdir: str, jobs: int
) -> StepTimes:
    """defconfig + fragments, verified, then only ``objects``: the CI proof that a series builds."""
    times = StepTimes()
    configure(tree, objdir, ConfigBase("defconfig"), fragments, jobs, times)
    times.run("make " + " ".join(objects), make_argv(tree.path, objdir, jobs, *objects))
    return times
