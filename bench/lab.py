#!/usr/bin/env python3
"""Benchmark the lab: image build, then boot to SSH and reboot for each boot mode, side by side. Prints seconds.

- image build: cold builds into an empty cache; warm finds the cached image.
- lab kernel: the kernel_build role run that finds (or first builds) the lab kernel of direct boots.
- first boot: a new node's first boot to SSH (fresh overlay; for grub, the first-boot units).
- boot again: the same node started again after `lab down`.
- reboot: a reboot from inside the guest until a new boot answers SSH.
- resume: a saved node started again from its saved state. The NVMe model of QEMU 7.2 (Debian 12)
  and 10.0 (Debian 13) cannot be migrated (savevm: "State blocked by non-migratable device
  '.../nvme'"), so the row says so.

Boot modes: grub (SeaBIOS, GRUB, Debian's kernel, systemd) and lab-kernel (QEMU loads the lab's
P2PDMA kernel, a minimal init starts sshd); see docs/lab.md.

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
from typing import Callable, Dict, List, Sequence

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from p2pctl.lab.fleet import Lab
from p2pctl.lab.image import ImageSpec, debian_mirror, ensure_image
from p2pctl.lab.labkernel import lab_kernel
from p2pctl.lab.node import BOOT_GRUB, BOOT_LAB_KERNEL, BOOT_MODES, ensure_ssh_key

BENCH_NODE = "bench"
RESUME_BLOCKED = "n/a: the nvme device of QEMU 7.2 and 10.0 cannot be saved (docs/lab.md)"


def timed(action: Callable[[], object]) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def bench_boot(lab: Lab, name: str, topology: str, boot: str) -> Dict[str, float]:
    try:
        first = timed(lambda: lab.up(name, topology=topology, boot=boot))
        lab.down(name)
        again = timed(lambda: lab.up(name))
        reboot = timed(lab.node(name).reboot)
    finally:
        if lab.node(name).exists():
            lab.destroy(name)
    return {"first boot": first, "boot again": again, "reboot": reboot}


def run_bench(topology: str, name: str, modes: Sequence[str]) -> List[str]:
    key = ensure_ssh_key()
    spec = ImageSpec(ssh_public_key=key.with_suffix(".pub").read_text(), mirror=debian_mirror())
    image_cold = ensure_image(spec, print).seconds
    image_warm = ensure_image(spec, print).seconds
    lines = ["image build: cold %.1f s, warm %.1f s" % (image_cold, image_warm)]
    if BOOT_LAB_KERNEL in modes:
        lines.append("lab kernel (kernel_build, cached or built): %.1f s" % timed(lab_kernel))
    lab = Lab()
    results = {mode: bench_boot(lab, "%s-%s" % (name, mode), topology, mode) for mode in modes}
    lines.append("%-12s" % "" + "".join("%16s" % ("%s (s)" % mode) for mode in modes))
    for row in ("first boot", "boot again", "reboot"):
        lines.append("%-12s" % row + "".join("%16.1f" % results[mode][row] for mode in modes))
    lines.append("%-12s %s" % ("resume", RESUME_BLOCKED))
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topology", default="switch", help="topology preset of the benchmark nodes")
    parser.add_argument("--name", default=BENCH_NODE, help="node name prefix (one node per boot mode)")
    parser.add_argument(
        "--boot", action="append", choices=BOOT_MODES, help="boot modes to measure (repeatable; default: both)"
    )
    parser.add_argument("--cache", help="cache directory to use (default: a new temporary one, removed afterwards)")
    args = parser.parse_args()
    cache = args.cache or tempfile.mkdtemp(prefix="p2pctl-bench-")
    os.environ["P2PCTL_CACHE"] = cache
    try:
        lines = run_bench(args.topology, args.name, args.boot or [BOOT_GRUB, BOOT_LAB_KERNEL])
    except P2PError as exc:
        print("bench/lab.py: error: %s" % exc, file=sys.stderr)
        return 2
    finally:
        if not args.cache:
            shutil.rmtree(cache, ignore_errors=True)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
