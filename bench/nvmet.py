#!/usr/bin/env python3
"""Benchmark the nvmet planner and applier on a node's real configfs. Prints seconds.

A target of --ports ports x --subsystems subsystems x --namespaces namespaces (default
4 x 16 x 4 = 256 namespaces, every subsystem on every port), backed by null_blk devices
made through null_blk's configfs, then:

- apply: from an empty nvmet configfs to the whole target (read, plan, apply);
- no-op: the same declaration again (read and plan; nothing to apply);
- one namespace: one namespace's device changes (disable, write, enable), with each action printed;
- restore: the saved target restored into an empty configfs by the boot-time restore;
- nvmetcli restore: the same file through nvmetcli, when it is installed.

Runs as root on a lab node booted on the lab kernel (nvmet and null_blk built in), with the
collection's module_utils importable: after the nvmet role, from the controller:
  p2pctl lab ssh NODE -- env PYTHONPATH=/usr/local/lib/p2pdma-storage python3 - < bench/nvmet.py
It leaves nvmet's configfs empty and removes the null_blk devices it made.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from typing import Callable, List, Optional, Tuple

from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet import boot
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.configfs import (
    Action,
    ConfigfsWriter,
    apply_actions,
    read_target,
)
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.model import Target, target_from_dict
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.p2pmem import P2PJudge
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.plan import plan_target
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.fs import SysRoot

NULLB = "/sys/kernel/config/nullb"
PREFIX = "nqn.2026-12.io.p2pdma.bench:s"
HOST = "nqn.2026-12.io.p2pdma.bench:host"


def make_null_devices(count: int) -> List[str]:
    """null_blk devices bench0..: 64 MiB each, not memory backed (reads return zeroes).

    6.12 names the disk after its configfs directory (/dev/bench0); older kernels call it nullb<index>.
    """
    paths = []
    for index in range(count):
        directory = "%s/bench%d" % (NULLB, index)
        os.makedirs(directory, exist_ok=True)
        for name, value in (("size", "64"), ("power", "1")):
            with open(os.path.join(directory, name), "w") as handle:
                handle.write(value)
        with open(os.path.join(directory, "index")) as handle:
            numbered = "/dev/nullb" + handle.read().strip()
        named = "/dev/bench%d" % index
        paths.append(named if os.path.exists(named) else numbered)
    return paths


def remove_null_devices(count: int) -> None:
    for index in range(count):
        directory = "%s/bench%d" % (NULLB, index)
        if os.path.isdir(directory):
            with open(directory + "/power", "w") as handle:
                handle.write("0")
            os.rmdir(directory)


def declaration(ports: int, subsystems: int, namespaces: int, devices: List[str]) -> dict:
    nqns = ["%s%d" % (PREFIX, index) for index in range(subsystems)]
    return {
        "hosts": [{"nqn": HOST}],
        "ports": [
            {"portid": 10 + index, "addr": {"trtype": "tcp", "adrfam": "ipv4", "traddr": "127.0.0.1",
                                            "trsvcid": str(4500 + index)}, "subsystems": nqns}
            for index in range(ports)
        ],
        "subsystems": [
            {"nqn": nqn, "allowed_hosts": [HOST], "namespaces": [
                {"nsid": nsid + 1, "device": {"path": devices[sub * namespaces + nsid]}}
                for nsid in range(namespaces)
            ]}
            for sub, nqn in enumerate(nqns)
        ],
    }


def converge(root: SysRoot, desired: Target) -> List[Action]:
    plan = plan_target(desired, read_target(root), P2PJudge(root), purge=True)
    return apply_actions(ConfigfsWriter(root), plan.actions)


def timed(action: Callable[[], object]) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    parser.add_argument("--ports", type=int, default=4)
    parser.add_argument("--subsystems", type=int, default=16)
    parser.add_argument("--namespaces", type=int, default=4)
    args = parser.parse_args()
    root = SysRoot("/")
    count = args.subsystems * args.namespaces
    empty = Target()
    converge(root, empty)
    try:
        devices = make_null_devices(count + 1)
        data = declaration(args.ports, args.subsystems, args.namespaces, devices)
        desired = target_from_dict(data)
        shape = "%d ports x %d subsystems x %d namespaces" % (args.ports, args.subsystems, args.namespaces)
        rows: List[Tuple[str, Optional[float]]] = [("apply (%s)" % shape, timed(lambda: converge(root, desired)))]
        rows.append(("no-op", timed(lambda: converge(root, desired))))
        data["subsystems"][0]["namespaces"][0]["device"]["path"] = devices[count]
        changed = target_from_dict(data)
        touched: List[Action] = []
        rows.append(("one namespace's device", timed(lambda: touched.extend(converge(root, changed)))))
        with tempfile.TemporaryDirectory() as scratch:
            saved = os.path.join(scratch, "config.json")
            boot.write_if_changed(saved, boot.saved_text(read_target(root)), boot.SAVED_MODE)
            converge(root, empty)
            started = time.monotonic()
            report = boot.restore(root, boot.load_target(saved), timeout=0)
            rows.append(("restore (boot-time program, %d changes)" % report.actions, time.monotonic() - started))
            if report.failed:
                raise SystemExit("restore failed: %s" % report.failed)
            nvmetcli = shutil.which("nvmetcli")
            seconds = None
            if nvmetcli:
                converge(root, empty)
                seconds = timed(lambda: subprocess.run([nvmetcli, "restore", saved], check=True))
            rows.append(("nvmetcli restore", seconds))
    finally:
        converge(root, empty)
        remove_null_devices(count + 1)
    for label, seconds in rows:
        print("%-52s %s" % (label, "not installed" if seconds is None else "%.2f s" % seconds))
    print("the one-namespace change, action by action:")
    for action in touched:
        print("  %s %s%s" % (action.op, action.path, "" if action.value is None else " = " + action.value))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
