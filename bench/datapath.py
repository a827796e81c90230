#!/usr/bin/env python3
"""Benchmark the P2P data path: throughput through p2pmem and through host memory, and the link limit, by size.

For each size from 1 MiB to 256 MiB (doubling), runs the copy of ``p2pctl datapath``
(plugins/module_utils/datapath: plan, refusals, copy through the provider's mapped
p2pmem, sha256 check, the same copy through host memory, the link limit) and prints one
line per size. Sizes over the provider's available p2pmem or the drives' capacity are
listed as skipped: the whole size is one p2pmem buffer.

On the node itself (root, a P2PDMA kernel 6.2+):

    python3 bench/datapath.py --source nvme2n1 --destination nvme1n1 --provider nvme0 [--json]

On a lab node, from the lab host: ``--lab NODE`` ships plugins/module_utils and this
script to the guest, runs it there and prints the same lines; ``--plot FILE.png`` draws
the result with matplotlib (the ``bench`` extra: pip install .[bench]).
The destination's range is overwritten; ``--force`` overwrites one that carries a
filesystem or partition table.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import sys
import tarfile
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

REPO = Path(__file__).resolve().parent.parent
MIB = 1 << 20
SIZES_MIB = (1, 2, 4, 8, 16, 32, 64, 128, 256)
# Where --lab unpacks the code in the guest, laid out as the collection's import path.
GUEST_DIR = "/tmp/p2pctl-bench"
COLLECTION = "ansible_collections/p2pdma/storage"


def measure(source: str, destination: str, provider: str, sizes: Sequence[int], force: bool) -> Dict[str, Any]:
    """Copy each size on this node; the rows, and the sizes skipped with the reason."""
    from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
    from ansible_collections.p2pdma.storage.plugins.module_utils.datapath.copy import run_copy
    from ansible_collections.p2pdma.storage.plugins.module_utils.datapath.plan import plan_copy
    from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.fs import SysRoot
    from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.reader import read_node

    root = SysRoot("/")
    rows: List[Dict[str, Any]] = []
    skipped: Dict[int, str] = {}
    for size in sizes:
        try:
            # Read the node again per size: p2pmem/available is what the plan checks against.
            plan = plan_copy(read_node(root), source, destination, provider, size, force=force)
        except P2PError as exc:
            skipped[size] = exc.message
            continue
        result = run_copy(plan, root)
        rows.append({
            "bytes": size,
            "p2p_used": result["p2p_used"],
            "throughput": result["throughput"],
            "host_memory_throughput": result["host_memory_throughput"],
            "link_limit": result["link_limit"]["bytes_per_second"],
            "limiting_hop": result["link_limit"]["limiting_hop"],
        })
    return {"source": source, "destination": destination, "provider": provider, "rows": rows,
            "skipped": {str(size): why for size, why in skipped.items()}}


def _bundle() -> str:
    """module_utils and this script as a base64 tar.gz, laid out for PYTHONPATH=GUEST_DIR."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:gz") as tar:
        tar.add(str(REPO / "plugins" / "module_utils"), arcname=COLLECTION + "/plugins/module_utils",
                filter=lambda info: None if "__pycache__" in info.name else info)
        tar.add(str(Path(__file__).resolve()), arcname="bench/datapath.py")
    return base64.b64encode(data.getvalue()).decode()


def measure_on_lab(node_name: str, argv: List[str]) -> Dict[str, Any]:
    from p2pctl.lab.fleet import Lab

    node = Lab().node(node_name)
    node.run(["sh", "-c", "'rm -rf %s && mkdir -p %s && base64 -d | tar -xz -C %s'" % ((GUEST_DIR,) * 3)],
             input_text=_bundle())
    output = node.run(["env", "PYTHONPATH=%s" % GUEST_DIR, "python3", GUEST_DIR + "/bench/datapath.py",
                       "--json", *argv], timeout=3600)
    result: Dict[str, Any] = json.loads(output)
    result["node"] = "lab node %s" % node_name
    return result


def _mb(value: Optional[float]) -> str:
    return "-" if value is None else "%.1f" % (value / 1e6)


def print_table(result: Dict[str, Any]) -> None:
    print("%s -> %s through %s's p2pmem (MB/s)" % (result["source"], result["destination"], result["provider"]))
    print("%10s %8s %10s %12s %10s" % ("size", "p2p", "p2pmem", "host memory", "link"))
    for row in result["rows"]:
        print("%7d MiB %8s %10s %12s %10s" % (row["bytes"] // MIB, "yes" if row["p2p_used"] else "NO",
              _mb(row["throughput"]), _mb(row["host_memory_throughput"]), _mb(row["link_limit"])))
    for size, why in result["skipped"].items():
        print("%7d MiB skipped: %s" % (int(size) // MIB, why))


def plot(result: Dict[str, Any], output: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["rows"]
    sizes = [row["bytes"] // MIB for row in rows]
    figure, axes = plt.subplots(figsize=(7, 4))
    axes.plot(sizes, [row["throughput"] / 1e6 for row in rows], "o-", label="through p2pmem (peer to peer)")
    axes.plot(sizes, [row["host_memory_throughput"] / 1e6 for row in rows], "s-", label="through host memory")
    limits = [row["link_limit"] / 1e6 for row in rows if row["link_limit"]]
    if limits:
        axes.axhline(min(limits), color="grey", linestyle="--", label="link limit (narrowest link on the path)")
    axes.set_xscale("log", base=2)
    axes.set_xticks(sizes)
    axes.set_xticklabels(["%d MiB" % size for size in sizes], rotation=30)
    axes.set_ylabel("MB/s")
    axes.set_title(title)
    axes.legend()
    figure.tight_layout()
    figure.savefig(str(output), dpi=100)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="NVMe namespace to read (nvme2n1)")
    parser.add_argument("--destination", required=True, help="NVMe namespace to overwrite (nvme1n1)")
    parser.add_argument("--provider", required=True, help="p2pmem provider (BDF or nvmeX)")
    parser.add_argument("--max-mib", type=int, default=SIZES_MIB[-1], help="largest size (default %(default)s)")
    parser.add_argument("--force", action="store_true", help="overwrite a destination with a filesystem")
    parser.add_argument("--lab", metavar="NODE", help="run on this lab node (from the lab host)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--plot", type=Path, metavar="PNG", help="draw the result into this PNG")
    parser.add_argument("--title", default="P2P data path", help="the plot's title")
    options = parser.parse_args(argv)
    sys.path.insert(0, str(REPO / "collection"))  # a checkout: ansible_collections/p2pdma/storage -> the root
    sys.path.insert(0, str(REPO / "cli"))
    from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError

    sizes = [mib * MIB for mib in SIZES_MIB if mib <= options.max_mib]
    try:
        if options.lab:
            forwarded = ["--source", options.source, "--destination", options.destination,
                         "--provider", options.provider, "--max-mib", str(options.max_mib)]
            result = measure_on_lab(options.lab, forwarded + (["--force"] if options.force else []))
        else:
            if os.geteuid() != 0:
                raise P2PError("bench/datapath.py maps p2pmem and opens block devices", fix="run it as root")
            result = measure(options.source, options.destination, options.provider, sizes, options.force)
    except P2PError as exc:
        print("bench/datapath.py: error: %s" % exc, file=sys.stderr)
        return 2
    if options.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)
    if options.plot:
        plot(result, options.plot, options.title)
    return 0


if __name__ == "__main__":
    sys.exit(main())
