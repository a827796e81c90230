#!/usr/bin/python3
"""Ask the kernel what the module predicted: enable a scratch namespace with each p2pmem choice.

Usage: kernel_answer.py NQN DEVICE,P2PMEM,PREDICTED...
P2PMEM is auto or a BDF, PREDICTED what the module predicted: accepted or refused.
For each case, in subsystem NQN (made here and removed again): mkdir namespace 1, write device_path
and p2pmem (auto is written as 1), write enable = 1, note the errno and the kernel's log lines, remove it.
Prints one JSON line per case; the exit status is 0 only when every answer is the prediction.
"""

import errno
import json
import os
import sys

NVMET = "/sys/kernel/config/nvmet/subsystems"


def write(path, value):
    with open(path, "w") as handle:
        handle.write(value)


def kernel_lines(kmsg):
    """The records logged since ``kmsg`` was opened and moved to the end."""
    lines = []
    while True:
        try:
            record = os.read(kmsg, 8192).decode(errors="replace")
        except BlockingIOError:
            return lines
        lines.append(record.split(";", 1)[-1].strip())


def ask(subsystem, case):
    namespace = subsystem + "/namespaces/1"
    os.mkdir(namespace)
    kmsg = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK)
    os.lseek(kmsg, 0, os.SEEK_END)
    try:
        write(namespace + "/device_path", case["device"])
        write(namespace + "/p2pmem", "1" if case["p2pmem"] == "auto" else case["p2pmem"])
        try:
            write(namespace + "/enable", "1")
        except OSError as exc:
            return {"answer": "refused", "errno": errno.errorcode.get(exc.errno, exc.errno),
                    "kernel": kernel_lines(kmsg)}
        write(namespace + "/enable", "0")
        return {"answer": "accepted", "errno": None, "kernel": kernel_lines(kmsg)}
    finally:
        os.close(kmsg)
        os.rmdir(namespace)


def main():
    nqn = sys.argv[1]
    cases = [dict(zip(("device", "p2pmem", "predicted"), arg.split(","))) for arg in sys.argv[2:]]
    subsystem = os.path.join(NVMET, nqn)
    os.mkdir(subsystem)
    agree = True
    try:
        for case in cases:
            answer = dict(case, **ask(subsystem, case))
            agree = agree and answer["answer"] == case["predicted"]
            print(json.dumps(answer))
    finally:
        os.rmdir(subsystem)
    return 0 if agree else 1


sys.exit(main())
