"""``p2pctl kernel``: check the patch series and build the P2PDMA kernel package."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import click
from rich.console import Console
from rich.live import Live
from rich.text import Text

from ansible_collections.p2pdma.storage.plugins.module_utils.common.paths import cache_root, kernel_src, playbook_path
from ansible_collections.p2pdma.storage.plugins.module_utils.kernel import kbuild, source_tree
from p2pctl.commands.common import minutes
from p2pctl.runner import PlaybookRun, run_playbook


def _progress(message: str) -> None:
    click.echo(message, err=True)


def series_versions() -> List[str]:
    return sorted(entry.parent.name for entry in (kernel_src() / "patches").glob("*/series") if entry.is_file())


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
        tree = source_tree.prepare_tree(str(kernel_src() / "patches" / version), tarball=tarball)
        prepared = "cached tree" if tree.reused else "extract and patch %.0f s" % (time.monotonic() - start)
        objects = source_tree.touched_objects(tree.patches)
        objdir = os.path.join(os.path.dirname(tree.path), "check-build")
        fragment = str(kernel_src() / "configs" / "p2pdma.config")
        times = kbuild.compile_objects(tree, objects, [fragment], objdir, jobs)
        click.echo(
            "%s: %d patch(es) apply, p2pdma.config verified, compiled %s (%s)"
            % (
                version,
                len(tree.patches),
                " ".join(objects),
                ", ".join([prepared] + ["%s %.0f s" % (step, seconds) for step, seconds in times.seconds.items()]),
            )
        )


def build_run(extra_vars: Dict[str, Any], check: bool) -> PlaybookRun:
    """The kernel_build playbook on this host, with its caches and build log in p2pctl's cache root."""
    return PlaybookRun(
        playbook_path("kernel_build"),
        extravars={
            "kernel_build_cache_root": str(cache_root()),
            "kernel_build_log_file": str(build_log()),
            **extra_vars,
        },
        check=check,
        diff=check,
    )


def build_log() -> Path:
    """Where ``p2pctl kernel build`` has the make output written: the latest build's."""
    return cache_root() / "kernel-pkg" / "build.log"


class BuildStatus:
    """The status line of a running build: the build stage (else the Ansible task) and their times."""

    def __init__(self, log: Path) -> None:
        self.reader = kbuild.BuildLogReader(str(log))
        self.task = "starting"
        self.started = self.stage_started = time.monotonic()
        self.stage: Optional[str] = None

    def __rich__(self) -> Text:
        self.reader.poll()
        now = time.monotonic()
        if self.reader.stage != self.stage:
            self.stage, self.stage_started = self.reader.stage, now
        text = Text(no_wrap=True, overflow="ellipsis")
        if self.stage:
            text.append(self.stage, style="bold")
            text.append(" %s (total %s)" % (minutes(now - self.stage_started), minutes(now - self.started)))
            text.append("  " + self.reader.last_line.strip(), style="dim")
        else:
            text.append(self.task, style="bold")
            text.append(" (total %s)" % minutes(now - self.started))
        return text


def follow(run: PlaybookRun, log: Path) -> None:
    """Run ``run``, print Ansible's output as it comes, and keep a status line of the build below it."""
    console = Console(stderr=True, highlight=False)
    status = BuildStatus(log)
    console.print("running: %s" % " ".join(run.argv()[:1] + [str(run.playbook)]), style="dim")
    console.print("make output: %s" % log, style="dim")
    with Live(status, console=console, refresh_per_second=4, transient=True):
        for event in run_playbook(run):
            if event.get("event") == "playbook_on_task_start":
                status.task = event["event_data"].get("task") or status.task
            if event.get("stdout"):
                # ansible-runner reads Ansible through a terminal: its lines end in CR LF.
                console.print(Text.from_ansi(event["stdout"].replace("\r\n", "\n")), soft_wrap=True)


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
    log = build_log()
    # The status line follows this run's log only.
    log.unlink(missing_ok=True)
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
        follow(build_run(extra_vars, check), log)
        with open(result_file, encoding="utf-8") as handle:
            result = json.load(handle)
    state = ("would build" if check else "built") if result["changed"] else "up to date"
    click.echo("%s: %s" % (state, result["release"] or result["output_dir"]))
    for package in result["packages"]:
        click.echo(os.path.join(result["output_dir"], package))
    click.echo("build log: %s" % log, err=True)
