#!/usr/bin/python3
"""Connect to one export with nvme-cli, write or read a known pattern, check it, disconnect.

Usage: export_io.py write|read PATTERN DRIVE NQN CONNECT-ARGS...
write: puts PATTERN (4 MiB) at the start of the exported namespace. Both modes then read it back
through the fabric and from the backing DRIVE (O_DIRECT, so neither read comes from a cache) and
print one JSON line with the three SHA-256 sums; the exit status is 0 only when all three match.
"""

import glob
import hashlib
import json
import os
import subprocess
import sys
import time

SIZE = 4 << 20


def direct_read(path):
    return subprocess.run(["dd", "if=" + path, "bs=1M", "count=%d" % (SIZE >> 20), "iflag=direct", "status=none"],
                          check=True, capture_output=True).stdout


def fabric_disk(nqn):
    """The block device of the connected subsystem: nvme-subsystem (multipath head) or the controller's own."""
    for subsys in glob.glob("/sys/class/nvme-subsystem/*"):
        with open(subsys + "/subsysnqn") as handle:
            if handle.read().strip() != nqn:
                continue
        for controller in glob.glob(subsys + "/nvme*"):
            with open(controller + "/transport") as handle:
                if handle.read().strip() not in ("loop", "tcp", "rdma", "fc"):
                    break
            disks = sorted(os.path.basename(p) for p in glob.glob(subsys + "/nvme*n*"))
            if disks:
                return "/dev/" + disks[0]
    return None


def main():
    mode, pattern, drive, nqn = sys.argv[1:5]
    subprocess.run(["nvme", "connect", "-n", nqn, *sys.argv[5:]], check=True)
    try:
        for _ in range(100):
            disk = fabric_disk(nqn)
            if disk and os.path.exists(disk):
                break
            time.sleep(0.2)
        else:
            raise SystemExit("no block device appeared for %s" % nqn)
        with open(pattern, "rb") as handle:
            expected = handle.read()
        if mode == "write":
            subprocess.run(["dd", "if=" + pattern, "of=" + disk, "bs=1M", "oflag=direct", "conv=fsync",
                            "status=none"], check=True)
        sums = {
            "pattern": hashlib.sha256(expected).hexdigest(),
            "fabric": hashlib.sha256(direct_read(disk)).hexdigest(),
            "drive": hashlib.sha256(direct_read(drive)).hexdigest(),
            "disk": disk,
        }
    finally:
        subprocess.run(["nvme", "disconnect", "-n", nqn], check=False, capture_output=True)
    print(json.dumps(sums))
    return 0 if sums["pattern"] == sums["fabric"] == sums["drive"] else 1


sys.exit(main())
