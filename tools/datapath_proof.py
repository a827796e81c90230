"""Prove the P2P data path on a real P2PDMA kernel: boot the `switch` guest and copy through cmb0's p2pmem.

Boots the guest kernel of tools/capture_fixtures.py (6.12 with ``--kernel-source``) on the
lab's ``switch`` topology with ``nvme.use_cmb_sqes=0`` (so cmb0's whole 64 MiB CMB is
free p2pmem) and QEMU's ``pci_nvme_map_addr`` trace written to a file. In the guest,
tools/guest_datapath.sh runs ``p2pctl datapath``: a read-only 4 MiB run, 64 MiB from
plain0 to cmb1 through cmb0's p2pmem, and three refusals (cmb2 as provider, a size over
the available p2pmem, a destination with ext4), hashing cmb1 around them.

This script then reads the trace: every address a drive DMAed to, and how many bytes
of that fell inside cmb0's CMB BAR as the guest's ``resource`` file places it. A copy
through p2pmem puts 2 x 64 MiB there (plain0 writes into it, cmb1 reads from it).

Usage (root): ``.venv/bin/python tools/datapath_proof.py [--output DIR]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import List, Optional, Sequence

import capture_fixtures

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from p2pctl.lab.dmatrace import dma_events, parse_resource, qemu_trace_args, where_dma_went

KERNEL_SOURCE_6_12 = Path.home() / ".cache" / "p2pctl" / "linux-source" / "6.12" / "linux-source-6.12.tar.xz"
# QEMU's NVMe model puts the CMB in BAR 2.
CMB_BAR = 2
# Copying 64 MiB through an emulated CMB bounces every page under TCG: give it time.
GUEST_TIMEOUT_S = 2400
STEPS = ("fill", "readonly", "copy", "refuse-cmb2", "refuse-size", "mkfs", "refuse-fs")


def run_proof(kernel: Path, keep: Path) -> dict:
    fixture = replace(
        capture_fixtures.FIXTURES_BY_NAME["switch"], guest_setup="guest_datapath.sh", cmdline=("nvme.use_cmb_sqes=0",)
    )
    capture_fixtures.GUEST_TIMEOUT_S = GUEST_TIMEOUT_S
    with tempfile.TemporaryDirectory(prefix="p2pctl-datapath-") as scratch:
        work = Path(scratch)
        output_dir = work / "out"
        output_dir.mkdir()
        trace = work / "nvme-dma.trace"
        initramfs = capture_fixtures.build_initramfs(work, output_dir, fixture.guest_setup)
        argv = capture_fixtures.qemu_command(fixture, kernel, initramfs, work, output_dir)
        argv += qemu_trace_args(trace)
        print("datapath: booting the switch guest (TCG; the 64 MiB copy takes minutes)", flush=True)
        capture_fixtures.run_guest(argv, work / "console.log")
        keep.mkdir(parents=True, exist_ok=True)
        for produced in sorted(output_dir.iterdir()):
            if produced.is_file():
                shutil.copy(produced, keep / produced.name)
        shutil.copy(work / "console.log", keep / "console.log")
        (keep / "qemu-args.txt").write_text(capture_fixtures.portable_args(argv, work, output_dir, kernel))
        trace_lines = trace.read_text(errors="replace").splitlines() if trace.exists() else []
    return summarize(keep, trace_lines)


def _read(directory: Path, name: str) -> str:
    path = directory / name
    return path.read_text(errors="replace").strip() if path.exists() else ""


def summarize(keep: Path, trace_lines: List[str]) -> dict:
    status = dict(line.rsplit(" exit ", 1) for line in _read(keep, "datapath-status").splitlines() if " exit " in line)
    missing = [step for step in STEPS if step not in status]
    if missing:
        raise P2PError("the guest did not run %s" % ", ".join(missing),
                       fix="see %s (setup.log, console.log)" % keep)
    (cmb_bar,) = [bar for bar in parse_resource("cmb0", _read(keep, "cmb0-resource")) if bar.index == CMB_BAR]
    in_bar = [line for line in trace_lines if any(cmb_bar.holds(*event) for event in dma_events([line]))]
    (keep / "trace-in-cmb0-bar.txt").write_text("".join(line + "\n" for line in in_bar))
    copy = json.loads(_read(keep, "copy.out") or "null")
    readonly = json.loads(_read(keep, "readonly.out") or "null")
    summary = {
        "devices": _read(keep, "devices").splitlines(),
        "exit": {step: int(status[step]) for step in STEPS},
        "copy": copy,
        "readonly": readonly,
        "refusals": {step: _read(keep, step + ".err") for step in ("refuse-cmb2", "refuse-size", "refuse-fs")},
        "cmb1_sha256": {
            "after_copy": _read(keep, "digest-after-copy"),
            "after_refusals": _read(keep, "digest-after-refusals"),
            "after_mkfs": _read(keep, "digest-after-mkfs"),
            "after_refuse_fs": _read(keep, "digest-after-refuse-fs"),
        },
        "dma": [landing.to_dict() for landing in where_dma_went(dma_events(trace_lines), [cmb_bar])],
    }
    (keep / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kernel-source", type=Path, default=KERNEL_SOURCE_6_12,
                        help="a Debian linux-source tarball, 6.2 or later (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel jobs for the kernel build")
    parser.add_argument("--output", type=Path, default=Path("datapath-proof"),
                        help="where the guest's outputs and summary.json go (default: %(default)s)")
    options = parser.parse_args(argv)
    try:
        capture_fixtures.preflight()
        kernel = capture_fixtures.guest_kernel(options.jobs, options.kernel_source)
        summary = run_proof(kernel, options.output)
    except P2PError as exc:
        print("datapath_proof: error: %s" % exc, file=sys.stderr)
        return 2
    print(json.dumps(summary, indent=2))
    ok = summary["copy"] and summary["copy"]["p2p_used"] and any("bar" in row for row in summary["dma"])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
