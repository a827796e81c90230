"""Runs inside a lab guest (fed to ``python3 -`` over SSH): its PCI devices as JSON.

Only the standard library and sysfs, so it works on the stock Debian image.
"""

import glob
import json
import os

DEVICES = "/sys/bus/pci/devices"


def read(path: str) -> str:
    with open(path) as handle:
        return handle.read().strip()


def describe(bdf: str) -> dict:
    device_dir = os.path.join(DEVICES, bdf)

    # The sysfs path names every bridge above the device: .../0000:00:04.0/0000:01:00.0/<bdf>
    path = os.path.realpath(device_dir).split("/")
    above = [part for part in path if part.count(":") == 2 and part != bdf]
    bars = {}
    for index, line in enumerate(read(os.path.join(device_dir, "resource")).splitlines()[:6]):
        start, end, _flags = (int(field, 16) for field in line.split())
        if end:
            bars[str(index)] = end - start + 1
    serials = glob.glob(os.path.join(device_dir, "nvme", "nvme*", "serial"))
    serial = read(serials[0]) if serials else None
    p2pmem = os.path.join(device_dir, "p2pmem", "size")
    return {
        "id": "%s:%s" % (read(device_dir + "/vendor")[2:], read(device_dir + "/device")[2:]),
        "above": above,
        "bars": bars,
        "nvme_serial": serial,
        # Published by a P2PDMA kernel for memory a driver registered (the NVMe driver: its CMB).
        "p2pmem_size": int(read(p2pmem)) if os.path.exists(p2pmem) else None,
    }


print(json.dumps({bdf: describe(bdf) for bdf in sorted(os.listdir(DEVICES))}))
