#!/usr/bin/env python3
"""Time ``p2pctl topology --json`` and an all-pairs verdict on a large synthetic fabric.

Builds a sysfs tree with at least 4096 NVMe endpoints behind PCIe switches (the test
suite's tree builder), then measures, on that same tree:

- ``lspci -A linux-sysfs -O sysfs.path=<tree>/sys/bus/pci -tv`` (the reference),
- ``p2pctl topology --root <tree> --json`` (both as fresh processes, best of N runs),
- the same command on a ``p2pctl snapshot`` of the tree (``--root <snapshot>.tar.gz``),
- every verdict of 64 providers x 4096 clients (pci_p2pdma_distance_many per provider),
  including reading the node, in this process.

Prints the times and their ratios. Targets: topology no slower than 2x lspci, the
snapshot no slower than 2x the directory, all-pairs under 1 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import List

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.fs import SysRoot  # noqa: E402
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.reader import read_node  # noqa: E402
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.snapshot import write_snapshot  # noqa: E402
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.verdict import distance_many  # noqa: E402
from tests.support.sysfs_tree import SysfsTree, fabric  # noqa: E402


def best_of(runs: int, argv: List[str]) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - start)
    return best


def _met(ok: bool) -> str:
    return "met" if ok else "MISSED"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", type=int, default=4096)
    parser.add_argument("--providers", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3, help="best of this many runs per command")
    parser.add_argument("--keep", metavar="DIR", help="build the tree here and keep it")
    args = parser.parse_args()

    lspci = shutil.which("lspci")
    if lspci is None:
        print("bench/topology.py: lspci not found; install pciutils (scripts/bootstrap does)", file=sys.stderr)
        return 2
    p2pctl = os.path.join(os.path.dirname(sys.executable), "p2pctl")
    if not os.path.exists(p2pctl):
        print("bench/topology.py: %s not found; run scripts/bootstrap" % p2pctl, file=sys.stderr)
        return 2

    base = args.keep or tempfile.mkdtemp(prefix="p2pctl-bench-topology-")
    try:
        start = time.perf_counter()
        tree = SysfsTree(base)
        providers, clients = fabric(tree, args.endpoints, providers=args.providers)
        tree.write()
        built = time.perf_counter() - start
        functions = len(os.listdir(os.path.join(base, "sys/bus/pci/devices")))
        print("tree: %d PCI functions (%d endpoints, %d providers) built in %.1f s at %s"
              % (functions, len(clients), len(providers), built, base))

        lspci_time = best_of(args.runs, [lspci, "-A", "linux-sysfs", "-O", "sysfs.path=%s/sys/bus/pci" % base, "-tv"])
        topology_time = best_of(args.runs, [p2pctl, "topology", "--root", base, "--json"])
        snapshot = os.path.join(base, "snapshot.tar.gz")
        write_snapshot(SysRoot(base), snapshot)
        archive_time = best_of(args.runs, [p2pctl, "topology", "--root", snapshot, "--json"])

        start = time.perf_counter()
        node = read_node(SysRoot(base))
        read_time = time.perf_counter() - start
        start = time.perf_counter()
        verdicts = [distance_many(node, provider, clients) for provider in providers]
        pairs_time = time.perf_counter() - start
        pairs = sum(len(v.clients) for v in verdicts)

        ratio = topology_time / lspci_time
        print("lspci -tv:                %.3f s" % lspci_time)
        print("p2pctl topology --json:   %.3f s  (%.2fx lspci; target <= 2x: %s)"
              % (topology_time, ratio, _met(ratio <= 2)))
        archive_ratio = archive_time / topology_time
        print("the same from .tar.gz:    %.3f s  (%.2fx the directory, snapshot %d KiB; target <= 2x: %s)"
              % (archive_time, archive_ratio, os.path.getsize(snapshot) >> 10, _met(archive_ratio <= 2)))
        print("all-pairs verdicts:       %.3f s for %d pairs (%d x %d); target < 1 s: %s"
              % (pairs_time, pairs, len(providers), len(clients), _met(pairs_time < 1)))
        print("reading the node once:    %.3f s (all-pairs with it: %.3f s)" % (read_time, pairs_time + read_time))
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
