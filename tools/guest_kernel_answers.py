"""Ask a running P2PDMA kernel what it decides, from inside a fixture capture guest.

Run by tools/capture_fixtures.py inside the QEMU guest (host Python, chrooted into the
host's read-only root with the guest's /proc, /sys, /dev and configfs mounted over it).
For every NVMe namespace and every candidate provider it creates an nvmet namespace,
writes the provider's BDF (and then ``1``, the kernel's own pick) to ``p2pmem`` and
``1`` to ``enable``, and records whether the kernel accepted each step, the errno it
gave and the kernel log lines written meanwhile. It also records the guest's own
p2pmem attributes, so that tests can compare the snapshot's model with them.

Standard library only: it must not depend on what it is used to test.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import re
import sys
import time
from typing import Dict, List, Optional

PCI_DEVICES = "/sys/bus/pci/devices"
NVMET = "/sys/kernel/config/nvmet"
SUBSYSTEM_NQN = "nqn.2014-08.org.p2pdma.storage:fixture-capture"
BDF = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")
AUTO_PICK = "1"
NVME_PCI_CLASS = "0x010802"


def read(path: str) -> Optional[str]:
    try:
        with open(path) as handle:
            return handle.read().strip()
    except OSError:
        return None


class KernelLog:
    """New /dev/kmsg records since the last call: the kernel's reasons for one attempt."""

    def __init__(self) -> None:
        self.fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
        os.lseek(self.fd, 0, os.SEEK_END)

    def new_lines(self) -> List[str]:
        lines: List[str] = []
        while True:
            try:
                record = os.read(self.fd, 8192).decode("utf-8", "replace")
            except BlockingIOError:
                return lines
            except OSError as exc:
                # EPIPE: records were overwritten before we read them; keep what follows.
                if exc.errno == errno.EPIPE:
                    continue
                raise
            # "prio,seq,usec,flags;message\n" followed by " KEY=value" continuation lines.
            lines.append(record.split(";", 1)[1].split("\n", 1)[0])


def wait_for_namespaces(timeout: float) -> None:
    """NVMe controllers probe asynchronously: wait until each is live with its namespaces."""
    deadline = time.monotonic() + timeout
    while True:
        controllers = sorted(os.listdir("/sys/class/nvme")) if os.path.isdir("/sys/class/nvme") else []
        pending = [
            name
            for name in controllers
            if read("/sys/class/nvme/%s/state" % name) != "live"
            or not any(entry.startswith("nvme") and "n" in entry[4:] for entry in os.listdir("/sys/class/nvme/" + name))
        ]
        if not pending or time.monotonic() > deadline:
            return
        time.sleep(0.5)


def namespace_block_devices() -> List[str]:
    return sorted(name for name in os.listdir("/sys/block") if re.match(r"^nvme\d+n\d+$", name))


def pci_function_of(sysfs_path: str) -> Optional[str]:
    """The PCI function a sysfs device sits below (the last BDF on its real path), if any."""
    for component in reversed(os.path.realpath(sysfs_path).split("/")):
        if BDF.match(component):
            return component
    return None


def candidate_providers() -> List[str]:
    """Every function with p2pmem, plus every NVMe controller (to see the kernel refuse those without)."""
    candidates = []
    for bdf in sorted(os.listdir(PCI_DEVICES)):
        device = os.path.join(PCI_DEVICES, bdf)
        if os.path.isdir(os.path.join(device, "p2pmem")) or read(os.path.join(device, "class")) == NVME_PCI_CLASS:
            candidates.append(bdf)
    return candidates


def p2pmem_state() -> Dict[str, Dict[str, int]]:
    state = {}
    for bdf in sorted(os.listdir(PCI_DEVICES)):
        directory = os.path.join(PCI_DEVICES, bdf, "p2pmem")
        if os.path.isdir(directory):
            state[bdf] = {
                attribute: int(read(os.path.join(directory, attribute)) or 0)
                for attribute in ("size", "available", "published")
            }
    return state


def rdma_devices() -> Dict[str, Optional[str]]:
    """Each RDMA device and the PCI function it sits on (None for software RDMA such as rxe)."""
    root = "/sys/class/infiniband"
    names = sorted(os.listdir(root)) if os.path.isdir(root) else []
    return {name: pci_function_of(os.path.join(root, name)) for name in names}


def write(path: str, value: str) -> Optional[str]:
    """Write one configfs attribute with a single write(2), like echo; the errno name if the kernel refused it.

    Not through a buffered file object: when the write fails, its close() flushes, and so
    asks the kernel, a second time.
    """
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, str(exc.errno))
    finally:
        os.close(fd)
    return None


def attempt(log: KernelLog, namespace: str, provider: str) -> Dict[str, object]:
    """One nvmet namespace on ``/dev/<namespace>`` with ``p2pmem=<provider>``, enabled and removed again."""
    subsystem = os.path.join(NVMET, "subsystems", SUBSYSTEM_NQN)
    nvmet_namespace = os.path.join(subsystem, "namespaces", "1")
    os.mkdir(subsystem)
    os.mkdir(nvmet_namespace)
    log.new_lines()
    try:
        refused = write(os.path.join(nvmet_namespace, "device_path"), "/dev/" + namespace)
        if refused:
            raise RuntimeError("the kernel refused device_path /dev/%s: %s" % (namespace, refused))
        stage = "p2pmem"
        refused = write(os.path.join(nvmet_namespace, "p2pmem"), provider)
        if not refused:
            stage = "enable"
            refused = write(os.path.join(nvmet_namespace, "enable"), "1")
            if not refused:
                write(os.path.join(nvmet_namespace, "enable"), "0")
        return {"stage": stage, "ok": refused is None, "errno": refused, "kernel_log": log.new_lines()}
    finally:
        os.rmdir(nvmet_namespace)
        os.rmdir(subsystem)


def kernel_answers(settle_timeout: float) -> Dict[str, object]:
    wait_for_namespaces(settle_timeout)
    log = KernelLog()
    providers = candidate_providers()
    answers = []
    for namespace in namespace_block_devices():
        controller_path = "/sys/block/%s/device" % namespace
        controller = os.path.basename(os.path.realpath(controller_path))
        client = pci_function_of(controller_path)
        for provider in providers + [AUTO_PICK]:
            record: Dict[str, object] = {
                "namespace": namespace,
                "controller": controller,
                "client": client,
                "provider": "auto" if provider == AUTO_PICK else provider,
            }
            record.update(attempt(log, namespace, provider))
            answers.append(record)
    return {
        "kernel_release": os.uname().release,
        "cmdline": read("/proc/cmdline"),
        "p2pmem": p2pmem_state(),
        "rdma": rdma_devices(),
        "answers": answers,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", help="where to write kernel-answers.json")
    parser.add_argument("--settle-timeout", type=float, default=60.0, help="seconds to wait for NVMe namespaces")
    options = parser.parse_args()
    result = kernel_answers(options.settle_timeout)
    with open(options.output, "w") as handle:
        json.dump(result, handle, indent=1, sort_keys=True)
        handle.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
