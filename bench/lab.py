#!/usr/bin/env python3
"""Benchmark the lab: image build, boot to SSH and reboot, each cold and warm. Prints seconds.

- image build: cold builds into an empty cache; warm finds the cached image.
- boot to SSH: cold is a new node's first boot (fresh overlay, first-boot units);
  warm is the same node started again after `lab down`.
- reboot: `systemctl reboot` in the guest until a new boot answers SSH, twice.

By default everything happens in a throw-away cache directory, so the user's lab is not
touched; --cache reuses a directory (then a cached image makes the "cold" build warm).
Needs root (the image build uses loop devices). Run: .venv/bin/python bench/lab.py
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from typing import Callable, List, Tuple

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from p2pctl.lab.fleet import Lab
from p2pctl.lab.image import ImageSpec, debian_mirror, ensure_image
from p2pctl.lab.node import ensure_ssh_key

BENCH_NODE = "bench"


def timed(action: Callable[[], object]) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def run_bench(topology: str) -> List[Tuple[str, float, float]]:
    key = ensure_ssh_key()
    spec = ImageSpec(ssh_public_key=key.with_suffix(".pub").read_text(), mirror=debian_mirror())
    image_cold = ensure_image(spec, print).seconds
    image_warm = ensure_image(spec, print).seconds

    lab = Lab()
    try:
        boot_cold = timed(lambda: lab.up(BENCH_NODE, topology=topology))
        lab.down(BENCH_NODE)
        boot_warm = timed(lambda: lab.up(BENCH_NODE))
        node = lab.node(BENCH_NODE)
        reboot_first = timed(node.reboot)
        reboot_second = timed(node.reboot)
    finally:
        if lab.node(BENCH_NODE).exists():
            lab.destroy(BENCH_NODE)
    return [
        ("image build", image_cold, image_warm),
        ("boot to SSH", boot_cold, boot_warm),
        ("reboot", reboot_first, reboot_second),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topology", default="switch", help="topology preset of the benchmark node")
    parser.add_argument("--cache", help="cache directory to use (default: a new temporary one, removed afterwards)")
    args = parser.parse_args()
    cache = args.cache or tempfile.mkdtemp(prefix="p2pctl-bench-")
    os.environ["P2PCTL_CACHE"] = cache
    try:
        rows = run_bench(args.topology)
    except P2PError as exc:
        print("bench/lab.py: error: %s" % exc, file=sys.stderr)
        return 2
    finally:
        if not args.cache:
            shutil.rmtree(cache, ignore_errors=True)
    print("%-12s %10s %10s" % ("", "cold (s)", "warm (s)"))
    for name, cold, warm in rows:
        print("%-12s %10.1f %10.1f" % (name, cold, warm))
    return 0


if __name__ == "__main__":
    sys.exit(main())
