#!/usr/bin/env python3
"""Time ``p2pctl check --inventory`` against node count and forks, on simulated nodes.

Each simulated node has a local connection and its own ``p2p_check_root`` (a copy of a captured
guest snapshot, tests/support/fleet.py); the fleet also has one node that does not answer. For
each run it prints the wall time, the CPU time of everything it started (controller and the
modules), and the wall time as a ratio against the one-node reference measured in the same run.

The issue's target: 50 nodes + 1 unreachable with --forks 10 in at most 3x one node's time.

Two more runs on the same 50 nodes at --forks 10 show what the judging is measured against:
ansible.builtin.debug, Ansible's own floor per host (a worker process and a task, nothing run on
the node), and ansible.builtin.ping, one module process per host, which is what every simulated
node cost when p2p_check ran as a module there (it now judges in Ansible's process on a local
connection: plugins/action/p2p_check.py).

    .venv/bin/python bench/fleet.py                  # the default grid
    .venv/bin/python bench/fleet.py --nodes 50 --forks 10 20
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)

from tests.support.fleet import DEAD_NODE, simulated_fleet  # noqa: E402

BIN = os.path.dirname(sys.executable)
# What a host costs Ansible with nothing judged: a task in the worker (debug), a module process (ping).
FLOORS = {
    "debug": "Ansible's floor: a task per host",
    "ping": "a module process per host",
}
FLOOR_PLAY = """- name: Ansible's own cost per host
  hosts: all
  gather_facts: false
  tasks:
    - name: Nothing judged
      ansible.builtin.%s:
"""


def timed(argv: List[str]) -> Tuple[float, float, subprocess.CompletedProcess]:
    """Wall seconds, CPU seconds of the process and its children, and the finished process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, done


def check_fleet(inventory: Path, forks: int) -> Tuple[float, float, dict]:
    wall, cpu, done = timed([os.path.join(BIN, "p2pctl"), "check", "--inventory", str(inventory),
                             "--forks", str(forks), "--json"])
    if done.returncode not in (0, 3, 4, 5):
        raise SystemExit("p2pctl check failed (exit %d): %s" % (done.returncode, done.stderr))
    return wall, cpu, json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, nargs="+", default=[10, 25, 50])
    parser.add_argument("--forks", type=int, nargs="+", default=[1, 5, 10, 20])
    parser.add_argument("--at-forks", type=int, default=10, help="forks of the node-count series")
    parser.add_argument("--at-nodes", type=int, default=50, help="node count of the forks series")
    parser.add_argument("--runs", type=int, default=2, help="runs of the one-node reference (best kept)")
    args = parser.parse_args()
    env_note = "%d CPUs, load average %.1f at start" % (os.cpu_count() or 0, os.getloadavg()[0])
    print("p2pctl check --inventory on simulated nodes (+1 unreachable); %s" % env_note)
    with tempfile.TemporaryDirectory(prefix="p2pctl-bench-fleet-") as work:
        one = simulated_fleet(Path(work) / "one", 1, dead=False)
        reference = min(check_fleet(one, 1)[0] for _run in range(args.runs))
        print("%-34s %8.2f s  (the reference, best of %d)" % ("1 node, no unreachable", reference, args.runs))
        print("%-34s %8s %8s %7s %s" % ("run", "wall", "cpu", "ratio", "nodes judged + unreachable"))
        fleets = {}
        grid = [(nodes, args.at_forks) for nodes in args.nodes]
        grid += [(args.at_nodes, forks) for forks in args.forks if (args.at_nodes, forks) not in grid]
        for nodes, forks in grid:
            if nodes not in fleets:
                fleets[nodes] = simulated_fleet(Path(work) / ("fleet%d" % nodes), nodes)
            wall, cpu, fleet = check_fleet(fleets[nodes], forks)
            judged = sum(1 for entry in fleet["nodes"] if entry["report"] is not None)
            print("%-34s %6.2f s %6.1f s %6.2fx %d + %d" % (
                "%d nodes + 1, --forks %d" % (nodes, forks), wall, cpu, wall / reference, judged,
                fleet["summary"]["UNREACHABLE"]))
        nodes = args.at_nodes
        inventory = fleets.get(nodes) or simulated_fleet(Path(work) / ("fleet%d" % nodes), nodes)
        for module, meaning in FLOORS.items():
            playbook = Path(work) / ("%s.yml" % module)
            playbook.write_text(FLOOR_PLAY % module)
            wall, cpu, _done = timed([os.path.join(BIN, "ansible-playbook"), "-i", str(inventory), "--limit",
                                      "!%s" % DEAD_NODE, "--forks", str(args.at_forks), str(playbook)])
            print("%-34s %6.2f s %6.1f s %6.2fx (%s)" % (
                "%s, %d nodes, --forks %d" % (module, nodes, args.at_forks), wall, cpu, wall / reference, meaning))


if __name__ == "__main__":
    main()
