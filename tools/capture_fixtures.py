"""Capture real sysfs fixtures, and the kernel's own P2PDMA answers, from QEMU guests.

For each fixture topology this boots a P2PDMA guest kernel (6.1, tinyconfig +
kernel-src/configs/p2pdma.config + lab.config, built once and cached) under TCG with a
busybox initramfs. The guest mounts the host's root read-only over virtio-9p, chroots
into it with its own /proc, /sys, /dev and configfs mounted over the host's, and runs
the host's own tools there:

- tools/guest_kernel_answers.py asks the kernel, through nvmet configfs, whether each
  provider can serve each NVMe namespace (``p2pmem=<BDF>`` then ``enable=1``);
- ``p2pctl snapshot`` captures exactly what the model reads.

Results land in tests/fixtures/guests/<name>/: snapshot.tar.gz, kernel-answers.json,
dmesg.txt and qemu-args.txt. tests/unit/test_guest_fixtures.py checks the engine's
verdicts against those answers. Usage: ``.venv/bin/python tools/capture_fixtures.py
[NAME ...]`` (all fixtures by default); see docs/fixtures.md.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.common.paths import cache_root, collection_root, kernel_src
from ansible_collections.p2pdma.storage.plugins.module_utils.kernel.kconfig import (
    KconfigTree,
    merge_fragments,
    read_config,
    require_all,
)
from p2pctl.lab.cache import content_hash
from p2pctl.lab.labkernel import BUSYBOX, busybox_initramfs
from p2pctl.lab.proc import require_tool, run, tail
from p2pctl.lab.topologies import AMD_ZEN_CPU, INTEL_CPU, PRESETS, NvmeDrive, Topology, switch_ports

REPO = collection_root()
FIXTURES = REPO / "tests" / "fixtures" / "guests"
KERNEL_SOURCE = Path("/usr/src/linux-source-6.1.tar.xz")
CONFIG_FRAGMENTS = (kernel_src() / "configs" / "p2pdma.config", kernel_src() / "configs" / "lab.config")
GUEST_MEMORY_MB = 1024
# A guest that has not powered off by then is stuck; its console log says where.
GUEST_TIMEOUT_S = 900
# Slots on pcie.0 for the capture's own virtio-9p devices, clear of every topology's
# ports; placed explicitly because with a pxb-pcie present QEMU would put them on the
# expander bus.
HOSTROOT_SLOT = 0x10
OUTPUT_SLOT = 0x11
EXTRA_IMAGE_MB = 64


@dataclass(frozen=True)
class Fixture:
    """A topology to capture, with what the lab's Topology has no words for.

    ``expander_args`` are host bridges (pxb-pcie) that must exist before the ports;
    ``extra_args`` are devices added after the topology's (an NVM subsystem, SR-IOV),
    where ``{image:NAME}`` stands for a scratch drive image listed in ``extra_images``;
    ``guest_setup`` is a script under tools/ that the guest runs (chrooted into the
    host's root, so host tools such as nvme-cli work) before the kernel is asked.
    """

    topology: Topology
    covers: str
    expander_args: Tuple[str, ...] = ()
    extra_args: Tuple[str, ...] = ()
    extra_images: Tuple[str, ...] = ()
    guest_setup: Optional[str] = None
    cmdline: Tuple[str, ...] = ()

    def qemu_args(self, drive_paths: Dict[str, str]) -> List[str]:
        args = self.topology.qemu_args(drive_paths)
        first_device = args.index("-device")
        extra = list(self.extra_args)
        for name in self.extra_images:
            extra = [arg.replace("{image:%s}" % name, drive_paths[name]) for arg in extra]
        return args[:first_device] + list(self.expander_args) + args[first_device:] + extra

    def drive_sizes_mb(self) -> Dict[str, int]:
        sizes = {drive.id: drive.size_mb for drive in self.topology.drives}
        sizes.update({name: EXTRA_IMAGE_MB for name in self.extra_images})
        return sizes


def _expander(bus_id: str, bus_nr: int, slot: int) -> Tuple[str, ...]:
    return ("-device", "pxb-pcie,id=%s,bus_nr=%d,bus=pcie.0,addr=%02x.0" % (bus_id, bus_nr, slot))


_EXPANDER_PORTS = (("root", "rp1", "pcie.0", 0x04, 1), ("root", "rp2", "pxb1", 0x00, 2))
_EXPANDER_DRIVES = (NvmeDrive("cmb0", bus="rp1", cmb_mb=64), NvmeDrive("cmb1", bus="rp2", cmb_mb=64))
_EXPANDER_DIAGRAM = """\
pcie.0 (q35 host bridge 8086:29c0)
 +- rp1 root port -- nvme cmb0 CMB 64 MiB
 +- pxb-pcie pxb1 (second host bridge, bus 0x80)
     +- rp2 root port -- nvme cmb1 CMB 64 MiB
"""
_EXPANDER = Topology(
    name="expander",
    summary="a CMB drive on the q35 host bridge and one on a pxb-pcie host bridge, Intel CPU",
    cpu=INTEL_CPU,
    ports=_EXPANDER_PORTS,
    drives=_EXPANDER_DRIVES,
    diagram=_EXPANDER_DIAGRAM,
)

FIXTURES_BY_NAME: Dict[str, Fixture] = {
    name: Fixture(PRESETS[name], covers, guest_setup=setup)
    for name, covers, setup in (
        (
            "switch",
            "switch locality (distance 4), a provider on another root port, a drive without CMB, software RDMA",
            "guest_add_soft_rdma.sh",
        ),
        ("cascade", "a switch below a switch: common upstream bridge two levels up", None),
        ("rootports", "host-bridge paths on a non-whitelisted host bridge with an Intel CPU: refused", None),
        ("epyc", "host-bridge paths with an AMD family 17h CPU: accepted", None),
        ("acs", "ACS redirect set by the guest IOMMU on a root port above a multifunction device", None),
        ("pseudo-cmb", "memory on BAR 4 (PMR) without a CMB: no p2pmem, the kernel refuses it as provider", None),
    )
}
FIXTURES_BY_NAME.update(
    {
        "multifunction": Fixture(
            Topology(
                name="multifunction",
                summary="a two-function CMB device below one switch port, next to a CMB drive on a sibling port",
                cpu=INTEL_CPU,
                ports=(("root", "rp1", "pcie.0", 0x04, 1), *switch_ports("sw1", "rp1", 0, 10, 2)),
                drives=(
                    NvmeDrive("mf0", bus="sw1d0", function=0, multifunction=True, cmb_mb=32),
                    NvmeDrive("mf1", bus="sw1d0", function=1, cmb_mb=32),
                    NvmeDrive("cmb0", bus="sw1d1", cmb_mb=64),
                ),
                diagram="""\
pcie.0 (q35 host bridge)
 +- rp1 root port
     +- sw1 switch
         +- sw1d0 -+- 00.0 nvme mf0 CMB 32 MiB (multifunction)
         |         +- 00.1 nvme mf1 CMB 32 MiB
         +- sw1d1 --- nvme cmb0 CMB 64 MiB
""",
            ),
            "functions of one device (distance 2) and the same switch (distance 4), without ACS",
        ),
        "uneven": Fixture(
            Topology(
                name="uneven",
                summary="CMB drives at depths 1 and 3 below one switch, and one on a second root port",
                cpu=INTEL_CPU,
                ports=(
                    ("root", "rp1", "pcie.0", 0x04, 1),
                    *switch_ports("sw1", "rp1", 0, 10, 2),
                    *switch_ports("sw2", "sw1d1", 0, 20, 1),
                    *switch_ports("sw3", "sw2d0", 0, 30, 1),
                    ("root", "rp2", "pcie.0", 0x05, 2),
                ),
                drives=(
                    NvmeDrive("cmb0", bus="sw1d0", cmb_mb=64),
                    NvmeDrive("deep0", bus="sw3d0", cmb_mb=32),
                    NvmeDrive("plain0", bus="rp2"),
                ),
                diagram="""\
pcie.0 (q35 host bridge)
 +- rp1 root port
 |   +- sw1 switch
 |       +- sw1d0 -- nvme cmb0 CMB 64 MiB
 |       +- sw1d1 -- sw2 switch
 |                    +- sw2d0 -- sw3 switch
 |                                 +- sw3d0 -- nvme deep0 CMB 32 MiB
 +- rp2 root port -- nvme plain0
""",
            ),
            "uneven depth: distance counts both sides of the common switch (1 + 5 hops)",
        ),
        "expander": Fixture(
            _EXPANDER,
            "two host bridges, neither whitelisted, Intel CPU: refused",
            expander_args=_expander("pxb1", 0x80, 0x08),
        ),
        "expander-epyc": Fixture(
            replace(_EXPANDER, name="expander-epyc", summary="as expander, with an AMD Zen CPU model", cpu=AMD_ZEN_CPU),
            "two host bridges with an AMD family 17h CPU: accepted through the host bridge",
            expander_args=_expander("pxb1", 0x80, 0x08),
        ),
        "acs-epyc": Fixture(
            replace(PRESETS["acs"], name="acs-epyc", cpu=AMD_ZEN_CPU),
            "ACS redirect with an AMD family 17h CPU: accepted through the host bridge, the redirect still logged",
        ),
        "acs-disabled": Fixture(
            PRESETS["acs"],
            "the acs preset booted with pci=disable_acs_redir for its root port: the direct path is back",
            # rp1 of the acs preset is 00:04.0.
            cmdline=("pci=disable_acs_redir=0000:00:04.0",),
        ),
        "sriov": Fixture(
            Topology(
                name="sriov",
                summary="a CMB drive and an SR-IOV NVMe controller with two VFs below one switch",
                cpu=INTEL_CPU,
                ports=(("root", "rp1", "pcie.0", 0x04, 1), *switch_ports("sw1", "rp1", 0, 10, 2))
                + (("root", "rp2", "pcie.0", 0x05, 2),),
                drives=(NvmeDrive("cmb0", bus="sw1d0", cmb_mb=64), NvmeDrive("cmb1", bus="rp2", cmb_mb=32)),
                diagram="""\
pcie.0 (q35 host bridge)
 +- rp1 root port
 |   +- sw1 switch
 |       +- sw1d0 -- nvme cmb0 CMB 64 MiB
 |       +- sw1d1 -- nvme sriov0 (PF, no CMB: QEMU has none with SR-IOV) + 2 VFs
 +- rp2 root port -- nvme cmb1 CMB 32 MiB
""",
            ),
            "VFs as clients: the kernel walks up from a VF's PF (distance 4 to a sibling port)",
            extra_args=(
                "-device",
                "nvme-subsys,id=vfsubsys",
                "-drive",
                "file={image:vfns},if=none,id=vfns-disk,format=raw",
                # Two VFs, each with an admin and an I/O queue and one interrupt.
                "-device",
                "nvme,id=sriov0,serial=sriov0,subsys=vfsubsys,bus=sw1d1,addr=00.0,"
                "sriov_max_vfs=2,sriov_vq_flexible=4,sriov_vi_flexible=2",
                "-device",
                "nvme-ns,drive=vfns-disk,bus=sriov0,nsid=1",
            ),
            extra_images=("vfns",),
            guest_setup="guest_enable_nvme_vfs.sh",
            # One block device per controller, so that each VF's namespace is its own client;
            # SeaBIOS sizes bridge windows without the VF BARs, so Linux must redo them.
            cmdline=("nvme_core.multipath=N", "pci=realloc"),
        ),
        "multipath": Fixture(
            Topology(
                name="multipath",
                summary="a namespace shared by two CMB controllers of one NVM subsystem, next to a plain CMB drive",
                cpu=INTEL_CPU,
                ports=(("root", "rp1", "pcie.0", 0x04, 1), *switch_ports("sw1", "rp1", 0, 10, 3)),
                drives=(NvmeDrive("cmb0", bus="sw1d2", cmb_mb=64),),
                diagram="""\
pcie.0 (q35 host bridge)
 +- rp1 root port
     +- sw1 switch
         +- sw1d0 -- nvme mp0 CMB 32 MiB  (mp0 and mp1: one NVM subsystem sharing one
         +- sw1d1 -- nvme mp1 CMB 32 MiB   namespace, seen through a multipath head node)
         +- sw1d2 -- nvme cmb0 CMB 64 MiB
""",
            ),
            "a multipath head node: its queue has no P2PDMA flag in 6.1, so nvmet refuses any provider",
            # Controllers of one NVM subsystem must share its serial number.
            extra_args=(
                "-device",
                "nvme-subsys,id=mpsubsys",
                "-device",
                "nvme,id=mp0,serial=mpsubsys,subsys=mpsubsys,bus=sw1d0,addr=00.0,cmb_size_mb=32",
                "-device",
                "nvme,id=mp1,serial=mpsubsys,subsys=mpsubsys,bus=sw1d1,addr=00.0,cmb_size_mb=32",
                "-drive",
                "file={image:mpns},if=none,id=mpns-disk,format=raw",
                "-device",
                "nvme-ns,drive=mpns-disk,bus=mp0,nsid=1,shared=on",
            ),
            extra_images=("mpns",),
        ),
    }
)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def guest_kernel(jobs: int, tarball: Path = KERNEL_SOURCE) -> Path:
    """The guest bzImage, built once per kernel source tarball and config fragments."""
    if not tarball.exists():
        raise P2PError(
            "no kernel source at %s" % tarball,
            fix="apt-get install linux-source-6.1, or give a Debian linux-source-X.Y tarball",
        )
    source_hash = _sha256_file(tarball)
    key = content_hash([source_hash.encode(), b"tinyconfig"] + [fragment.read_bytes() for fragment in CONFIG_FRAGMENTS])
    kernel_dir = cache_root() / "kernels" / key
    bzimage = kernel_dir / "bzImage"
    if bzimage.exists():
        return bzimage
    tree_name = "%s-%s" % (tarball.name.split(".tar")[0], source_hash[:16])
    source = cache_root() / "src" / tree_name
    if not (source / "Makefile").exists():
        unpacking = source.with_name(tree_name + ".unpacking")
        shutil.rmtree(unpacking, ignore_errors=True)
        unpacking.mkdir(parents=True)
        run(
            ["tar", "xJf", str(tarball), "-C", str(unpacking), "--strip-components=1"],
            "unpacking the kernel source",
        )
        unpacking.rename(source)
    # One build tree per source: ccache and make's own dependency tracking keep rebuilds
    # after a fragment change short.
    build = cache_root() / "kernel-build" / tree_name
    build.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, CCACHE_DIR=str(cache_root() / "ccache"))
    make = ["make", "-C", str(source), "O=%s" % build, "CC=ccache gcc"]
    print("capture: building the guest kernel in %s (a few minutes)" % build, flush=True)
    run(make + ["tinyconfig"], "make tinyconfig", env=env)
    with open(build / ".config", "a") as config:
        for fragment in CONFIG_FRAGMENTS:
            config.write(fragment.read_text())
    run(make + ["olddefconfig"], "make olddefconfig", env=env)
    require_all(
        merge_fragments(str(fragment) for fragment in CONFIG_FRAGMENTS),
        read_config(str(build / ".config")),
        KconfigTree(str(source)),
    )
    run(make + ["-j%d" % jobs, "bzImage"], "building the guest kernel", env=env)
    kernel_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(build / ".config", kernel_dir / "config")
    shutil.copy(build / "arch" / "x86" / "boot" / "bzImage", kernel_dir / "bzImage.partial")
    (kernel_dir / "bzImage.partial").rename(bzimage)
    return bzimage


def init_script(output_dir: Path, guest_setup: Optional[str]) -> str:
    """The guest's /init: mount, chroot into the host's root, ask the kernel, snapshot, power off.

    Each step appends "<step> exit <status>" to the output's status file.
    """
    host = "/host"
    out = host + str(output_dir)
    # The guest sees the host's root at the same paths, so this very interpreter (and the
    # virtualenv's p2pctl next to it) runs there unchanged.
    python = sys.executable
    p2pctl = str(Path(sys.executable).parent / "p2pctl")
    answers = str(REPO / "tools" / "guest_kernel_answers.py")
    setup = ""
    if guest_setup:
        setup = f"""chroot {host} /bin/sh {REPO / "tools" / guest_setup} > {out}/setup.log 2>&1
echo "setup exit $?" >> {out}/status
"""
    return f"""#!/bin/busybox sh
/bin/busybox --install -s /bin
mkdir -p /proc /sys /dev {host}
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t 9p -o trans=virtio,version=9p2000.L,ro hostroot {host}
mount -t 9p -o trans=virtio,version=9p2000.L output {out}
mount -t proc proc {host}/proc
mount -t sysfs sysfs {host}/sys
mount -t configfs configfs {host}/sys/kernel/config
mount -t devtmpfs devtmpfs {host}/dev
# The host's root is read-only in here: Python's temporary files go to the output share.
export PYTHONDONTWRITEBYTECODE=1 HOME={output_dir} TMPDIR={output_dir}
{setup}chroot {host} {python} {answers} {output_dir}/kernel-answers.json > {out}/answers.log 2>&1
echo "answers exit $?" >> {out}/status
chroot {host} {p2pctl} snapshot -o {output_dir}/snapshot.tar.gz > {out}/snapshot.log 2>&1
echo "snapshot exit $?" >> {out}/status
dmesg > {out}/dmesg.txt
sync
poweroff -f
"""


def build_initramfs(work: Path, output_dir: Path, guest_setup: Optional[str]) -> Path:
    """A gzip'd newc cpio with static busybox and the capture /init."""
    return busybox_initramfs(init_script(output_dir, guest_setup), work / "initramfs.cpio.gz")


def qemu_command(fixture: Fixture, kernel: Path, initramfs: Path, work: Path, output_dir: Path) -> List[str]:
    drive_paths = {}
    for name, size_mb in fixture.drive_sizes_mb().items():
        image = work / ("%s.img" % name)
        with open(image, "wb") as handle:
            handle.truncate(size_mb << 20)
        drive_paths[name] = str(image)
    cmdline = ["console=ttyS0", "panic=-1", "rdinit=/init"] + list(fixture.topology.cmdline) + list(fixture.cmdline)
    share = "local,id=%s,path=%s,security_model=none,multidevs=remap"
    return (
        [require_tool("qemu-system-x86_64"), "-accel", "tcg", "-m", str(GUEST_MEMORY_MB), "-smp", "1"]
        + fixture.qemu_args(drive_paths)
        + ["-fsdev", share % ("hostroot", "/") + ",readonly=on"]
        + ["-device", "virtio-9p-pci,fsdev=hostroot,mount_tag=hostroot,bus=pcie.0,addr=%02x.0" % HOSTROOT_SLOT]
        + ["-fsdev", share % ("output", output_dir)]
        + ["-device", "virtio-9p-pci,fsdev=output,mount_tag=output,bus=pcie.0,addr=%02x.0" % OUTPUT_SLOT]
        + ["-kernel", str(kernel), "-initrd", str(initramfs), "-append", " ".join(cmdline)]
        + ["-display", "none", "-serial", "file:%s" % (work / "console.log"), "-no-reboot"]
    )


def portable_args(argv: Sequence[str], work: Path, output_dir: Path, kernel: Path) -> str:
    """The QEMU command as run, one argument per line, with this run's temporary paths named."""
    replacements = ((str(output_dir), "$OUTPUT"), (str(work), "$WORK"), (str(kernel), "$KERNEL"))
    lines = []
    for arg in argv:
        for path, name in replacements:
            arg = arg.replace(path, name)
        lines.append(arg)
    return "\n".join(lines) + "\n"


def run_guest(argv: List[str], console: Path) -> None:
    guest = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    print("capture: QEMU pid %d" % guest.pid, flush=True)
    try:
        qemu_output, _ = guest.communicate(timeout=GUEST_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        guest.kill()
        guest.wait()
        log = console.read_text(errors="replace") if console.exists() else ""
        raise P2PError(
            "the capture guest did not power off within %d s (QEMU pid %d, stopped)" % (GUEST_TIMEOUT_S, guest.pid),
            fix="see its console: %s" % tail(log, 8),
        ) from None
    if guest.returncode != 0:
        raise P2PError(
            "QEMU failed (exit %d): %s" % (guest.returncode, tail(qemu_output.decode(errors="replace"), 6)),
            fix="run the command in qemu-args.txt by hand",
        )


def capture(name: str, kernel: Path, into: Path = FIXTURES) -> Path:
    fixture = FIXTURES_BY_NAME[name]
    destination = into / name
    # The output directory must be reachable at the same path from the host and through
    # the guest's read-only view of the host's root, so it lives in the host's /tmp.
    with tempfile.TemporaryDirectory(prefix="p2pctl-capture-") as scratch:
        work = Path(scratch)
        output_dir = work / "out"
        output_dir.mkdir()
        initramfs = build_initramfs(work, output_dir, fixture.guest_setup)
        argv = qemu_command(fixture, kernel, initramfs, work, output_dir)
        print("capture: %s: booting (%s)" % (name, fixture.topology.summary), flush=True)
        run_guest(argv, work / "console.log")
        status = (output_dir / "status").read_text() if (output_dir / "status").exists() else ""
        steps = [line for line in status.splitlines() if line]
        if len(steps) != (3 if fixture.guest_setup else 2) or not all(line.endswith(" exit 0") for line in steps):
            logs = {
                log: (output_dir / log).read_text(errors="replace")
                for log in ("setup.log", "answers.log", "snapshot.log")
                if (output_dir / log).exists()
            }
            console = (work / "console.log").read_text(errors="replace")
            raise P2PError(
                "the %s guest did not capture everything (%s)" % (name, ", ".join(steps) or "no status"),
                fix="guest logs: %s; console: %s"
                % ("; ".join("%s: %s" % (log, tail(text, 4)) for log, text in logs.items()), tail(console, 6)),
            )
        destination.mkdir(parents=True, exist_ok=True)
        for produced in ("snapshot.tar.gz", "kernel-answers.json", "dmesg.txt"):
            shutil.copy(output_dir / produced, destination / produced)
        (destination / "qemu-args.txt").write_text(portable_args(argv, work, output_dir, kernel))
    return destination


def preflight() -> None:
    if os.geteuid() != 0:
        raise P2PError(
            "capturing fixtures needs root",
            fix="run it as root: the guest reads the host's root (Python, the repository) through QEMU's 9p export",
        )
    if not (Path(sys.executable).parent / "p2pctl").exists():
        raise P2PError(
            "no p2pctl next to %s" % sys.executable,
            fix="run this with the project's virtualenv Python (.venv/bin/python, made by scripts/bootstrap)",
        )
    for tool in (BUSYBOX, Path("/usr/bin/cpio")):
        if not tool.exists():
            raise P2PError("%s is missing" % tool, fix="apt-get install busybox-static cpio (or run scripts/bootstrap)")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description="Capture sysfs fixtures and kernel P2PDMA answers from QEMU guests.")
    parser.add_argument("names", nargs="*", help="fixtures to capture (default: all): %s" % ", ".join(FIXTURES_BY_NAME))
    parser.add_argument("--jobs", type=int, default=2, help="parallel jobs for the kernel build")
    parser.add_argument(
        "--kernel-source", type=Path, default=KERNEL_SOURCE, help="a Debian linux-source tarball (default: %(default)s)"
    )
    parser.add_argument(
        "--into", type=Path, default=FIXTURES, help="where the fixture directories go (default: %(default)s)"
    )
    options = parser.parse_args(argv)
    try:
        unknown = [name for name in options.names if name not in FIXTURES_BY_NAME]
        if unknown:
            raise P2PError(
                "unknown fixture %s" % ", ".join(unknown), fix="choose from: %s" % ", ".join(FIXTURES_BY_NAME)
            )
        preflight()
        kernel = guest_kernel(options.jobs, options.kernel_source)
        for name in options.names or list(FIXTURES_BY_NAME):
            print("capture: %s -> %s" % (name, capture(name, kernel, options.into)), flush=True)
    except P2PError as exc:
        print("capture_fixtures: error: %s" % exc, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
