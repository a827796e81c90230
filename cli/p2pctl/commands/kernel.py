"""``p2pctl kernel``: check the patch series and build the P2PDMA kernel package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from typing import List, Optional, Tuple

import click

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.kernel import kbuild, source_tree

# The CLI is installed from the collection checkout, so kernel-src/ and the playbooks sit at its root
# (kbuild is plugins/module_utils/kernel/kbuild.py there).
COLLECTION_ROOT = os.path.abspath(os.path.join(os.path.dirname(kbuild.__file__), "..", "..", ".."))
KERNEL_SRC = os.path.join(COLLECTION_ROOT, "kernel-src")
P2PDMA_FRAGMENT = os.path.join(KERNEL_SRC, "configs", "p2pdma.config")
BUILD_PLAYBOOK = os.path.join(COLLECTION_ROOT, "playbooks", "kernel_build.yml")


def _progress(message: str) -> None:
    click.echo(message, err=True)


def series_versions() -> List[str]:
    patches = os.path.join(KERNEL_SRC, "patches")
    return sorted(entry for entry in os.listdir(patches) if os.path.isfile(os.path.join(patches, entry, "series")))


@click.group()
def kernel() -> None:
    """The P2PDMA kernel: patch series, config fragments and packages."""


@kernel.command("check-series")
@click.option(
    "--series",
    "versions",
    multiple=True,
    metavar="X.Y",
    help="Series under kernel-src/patches to check (repeatable); default: all.",
)
@click.option("--jobs", type=int, default=2, show_default=True, help="make -j for the compile.")
def check_series(versions: Tuple[str, ...], jobs: int) -> None:
    """Apply each series to Debian's linux-source-X.Y (dry run first) and compile the objects it touches."""
    for version in versions or series_versions():
        tarball = source_tree.debian_source_tarball(version)
        _progress("%s: preparing %s with kernel-src/patches/%s" % (version, tarball, version))
        start = time.monotonic()
        tree = source_tree.prepare_tree(os.path.join(KERNEL_SRC, "patches", version), tarball=tarball)
        prepared = "cached tree" if tree.reused else "extract and patch %.0f s" % (time.monotonic() - start)
        objects = source_tree.touched_objects(tree.patches)
        objdir = os.path.join(os.path.dirname(tree.path), "check-build")
        times = kbuild.compile_objects(tree, objects, [P2PDMA_FRAGMENT], objdir, jobs)
        click.echo(
            "%s: %d patch(es) apply, p2pdma.config verified, compiled %s (%s)"
            % (
                version,
                len(tree.patches),
                " ".join(objects),
                ", ".join([prepared] + ["%s %.0f s" % (step, seconds) for step, seconds in times.seconds.items()]),
            )
        )


def build_playbook_argv(extra_vars: dict, check: bool) -> List[str]:
    """The ansible-playbook command that runs the kernel_build role on this host."""
    argv = [
        os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
        "-i",
        "localhost,",
        "-c",
        "local",
        # The controller's own interpreter runs the modules on localhost, whatever python3 is first on PATH.
        "-e",
        "ansible_python_interpreter=" + sys.executable,
        BUILD_PLAYBOOK,
        "-e",
        json.dumps(extra_vars),
    ]
    if check:
        argv += ["--check", "--diff"]
    return argv


@kernel.command()
@click.option("--series", "version", default="6.1", show_default=True, help="Kernel series X.Y (patches and source).")
@click.option("--tarball", type=click.Path(dir_okay=False), help="Source tarball instead of Debian's linux-source-X.Y.")
@click.option("--git-url", help="Git source instead of Debian's package (with --git-ref).")
@click.option("--git-ref", help="Branch or tag of --git-url.")
@click.option(
    "--config-base",
    type=click.Choice(kbuild.CONFIG_BASES),
    default="running",
    show_default=True,
    help="Where the config starts before the fragments.",
)
@click.option(
    "--config-file",
    type=click.Path(dir_okay=False),
    help="The .config for --config-base file, or a node's config instead of this host's for running/localmodconfig.",
)
@click.option(
    "--lsmod-file",
    type=click.Path(dir_okay=False),
    help="lsmod output of the target node for --config-base localmodconfig (default: this host's modules).",
)
@click.option(
    "--fragment",
    "fragments",
    multiple=True,
    type=click.Path(dir_okay=False, exists=True),
    help="Extra config fragment after p2pdma.config (repeatable, later wins).",
)
@click.option("--jobs", type=int, default=2, show_default=True)
@click.option("--check", is_flag=True, help="Configure and verify only; report whether a build is needed.")
def build(
    version: str,
    tarball: Optional[str],
    git_url: Optional[str],
    git_ref: Optional[str],
    config_base: str,
    config_file: Optional[str],
    lsmod_file: Optional[str],
    fragments: Tuple[str, ...],
    jobs: int,
    check: bool,
) -> None:
    """Build the P2PDMA kernel package on this host with the kernel_build role; print where it went."""
    source = "git" if git_url else "tarball" if tarball else "debian"
    with tempfile.TemporaryDirectory(prefix="p2pctl-kernel-") as scratch:
        result_file = os.path.join(scratch, "result.json")
        extra_vars = {
            "kernel_build_version": version,
            "kernel_build_source": source,
            "kernel_build_tarball": os.path.abspath(tarball) if tarball else None,
            "kernel_build_git_url": git_url,
            "kernel_build_git_ref": git_ref,
            "kernel_build_config_base": config_base,
            "kernel_build_config_file": os.path.abspath(config_file) if config_file else None,
            "kernel_build_lsmod_file": os.path.abspath(lsmod_file) if lsmod_file else None,
            "kernel_build_extra_fragments": [os.path.abspath(f) for f in fragments],
            "kernel_build_jobs": jobs,
            "kernel_build_result_file": result_file,
        }
        argv = build_playbook_argv(extra_vars, check)
        _progress("running: %s" % " ".join(argv[:6]))
        env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(COLLECTION_ROOT, "ansible.cfg"))
        completed = subprocess.run(argv, env=env, check=False)
        if completed.returncode != 0:
            raise P2PError(
                "the kernel_build role failed (ansible-playbook exit %d)" % completed.returncode,
                fix="read the failed task above",
            )
        with open(result_file, encoding="utf-8") as handle:
            result = json.load(handle)
    state = ("would build" if check else "built") if result["changed"] else "up to date"
    click.echo("%s: %s" % (state, result["release"] or result["output_dir"]))
    for package in result["packages"]:
        click.echo(os.path.join(result["output_dir"], package))
