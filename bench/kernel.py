#!/usr/bin/env python3
"""Time the kernel pipeline: cold build, warm rebuild (ccache), no-op, and the fleet cost.

Runs the same library the kernel_build module runs (plugins/module_utils/kernel/kbuild.py) on a
Debian linux-source tree with the project's series and fragments:

- cold: an empty ccache and no previous package (the patched tree is prepared first, untimed
  apart from its own line, since every later build reuses it),
- warm: ccache kept, the package directory removed: what a config or patch change costs,
- no-op: the same inputs again: configure, verify, find the package, build nothing.

Fleet cost = one build + N installs. The install time is measured by running the kernel_install
playbook once against --inventory (a lab node, e.g. ~/.cache/p2pctl/lab/hosts.yml), or taken from
--install-seconds; installs run in parallel across nodes (Ansible forks), so the fleet line also
shows the serial bound.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from typing import List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

from ansible_collections.p2pdma.storage.plugins.module_utils.common.paths import (  # noqa: E402
    cache_root,
    kernel_src,
    playbook_path,
)
from ansible_collections.p2pdma.storage.plugins.module_utils.kernel import kbuild, source_tree  # noqa: E402
from p2pctl.lab.fleet import LAB_KERNEL_SERIES  # noqa: E402
from p2pctl.runner import PlaybookRun, run_playbook  # noqa: E402


def timed_build(
    tree: source_tree.PreparedTree, args: argparse.Namespace, output_root: str, ccache: str
) -> Tuple[float, str]:
    """Seconds the build took, and the directory with its packages."""
    start = time.monotonic()
    result = kbuild.build_packages(
        tree,
        kbuild.ConfigBase(args.config_base),
        args.fragments,
        output_root=output_root,
        jobs=args.jobs,
        ccache_dir=ccache,
    )
    seconds = time.monotonic() - start
    print(
        "  %s: %s, %d package(s), steps %s"
        % (
            result.release,
            "built" if result.changed else "reused",
            len(result.packages),
            {step: round(value) for step, value in result.times.items()},
        )
    )
    return seconds, result.output_dir


def measure_install(inventory: str, package_dir: str) -> float:
    run = PlaybookRun(
        playbook_path("kernel_install"),
        inventory=os.path.abspath(inventory),
        extravars={"kernel_install_package_dir": package_dir},
    )
    start = time.monotonic()
    for event in run_playbook(run):
        if event.get("stdout"):
            print(event["stdout"])
    return time.monotonic() - start


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--series", default=LAB_KERNEL_SERIES, help="default: the lab nodes' series")
    parser.add_argument("--config-base", default="tinyconfig", choices=kbuild.CONFIG_BASES)
    parser.add_argument(
        "--fragment",
        dest="fragments",
        action="append",
        default=None,
        help="default: p2pdma.config and lab.config",
    )
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--nodes", type=int, default=16, help="fleet size for the fleet cost line")
    parser.add_argument("--inventory", help="measure one install with the kernel_install playbook on these nodes")
    parser.add_argument("--install-seconds", type=float, help="install time per node, when not measured")
    args = parser.parse_args(argv)
    configs = kernel_src() / "configs"
    args.fragments = args.fragments or [str(configs / "p2pdma.config"), str(configs / "lab.config")]

    start = time.monotonic()
    tree = source_tree.prepare_tree(
        str(kernel_src() / "patches" / args.series),
        tarball=source_tree.debian_source_tarball(args.series),
    )
    print(
        "source tree %s: %.0f s (%s)" % (tree.path, time.monotonic() - start, "cached" if tree.reused else "extracted")
    )

    bench_root = cache_root() / "bench-kernel"
    bench_root.mkdir(parents=True, exist_ok=True)
    work = tempfile.mkdtemp(prefix="run-", dir=bench_root)
    try:
        ccache = os.path.join(work, "ccache")
        output_root = os.path.join(work, "packages")
        print("cold build (empty ccache), -j%d:" % args.jobs)
        cold, _ = timed_build(tree, args, output_root, ccache)
        shutil.rmtree(output_root)
        print("warm rebuild (ccache kept, package removed):")
        warm, _ = timed_build(tree, args, output_root, ccache)
        print("no-op (same inputs):")
        # The output root also holds the build's lock file: take the package directory from the result.
        noop, package_dir = timed_build(tree, args, output_root, ccache)

        install = args.install_seconds
        if args.inventory:
            install = measure_install(args.inventory, package_dir)
        print()
        print("cold build     %7.0f s" % cold)
        print("warm rebuild   %7.0f s  (%.0f%% of cold)" % (warm, 100.0 * warm / cold))
        print("no-op          %7.0f s" % noop)
        if install is not None:
            print("install + boot %7.0f s per node" % install)
            print(
                "fleet of %d    %7.0f s with parallel installs, %.0f s one node at a time (one build, %d installs)"
                % (args.nodes, cold + install, cold + args.nodes * install, args.nodes)
            )
        else:
            print(
                "fleet of %d    %7.0f s + the install time of one node (give --inventory or --install-seconds)"
                % (args.nodes, cold)
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
