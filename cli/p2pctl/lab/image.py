"""The lab node's base disk: Debian 13 from debootstrap, booting its stock kernel through GRUB.

The disk is what a real storage node has: an MBR partition table, one ext4 root found by
its label, GRUB in the MBR and Debian's own kernel and initramfs. That is what lets the
kernel role install a new kernel, ``grub-reboot`` into it once, and fall back.

The image is built once per content hash (Debian suite, package lists, the SSH key it
trusts and this file, which holds every build step) under
``~/.cache/p2pctl/lab-image/<hash>/disk.raw``; every node boots a qcow2 overlay of it.
The build needs root and loop devices, but no udev: partitions come from ``losetup -P``
and, where devtmpfs does not create them, ``partx``.
"""

from __future__ import annotations

import os
import shutil
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Tuple

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.common.paths import cache_root
from p2pctl.lab.cache import content_hash
from p2pctl.lab.proc import require_tool, run

SUITE = "trixie"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
ROOT_LABEL = "p2plab-root"
DISK_SIZE = "6G"
HOSTNAME = "p2plab"
# Part of the cache key: raise it when a build step changes what ends up on the disk.
BUILD_STEPS_VERSION = 1

# What a provisioned storage node needs: Ansible (python3, sudo), SSH, systemd with udev
# (whose networkd runs DHCP on the management NIC), and the tools the checks and roles call.
BASE_PACKAGES: Tuple[str, ...] = (
    "python3",
    "openssh-server",
    "systemd-sysv",
    "udev",
    "kmod",
    "iproute2",
    "nvme-cli",
    "pciutils",
    "sudo",
)
# Installed in a second step, inside the chroot with /dev, /proc and /sys mounted, because
# their maintainer scripts build the initramfs and probe the boot disk.
BOOT_PACKAGES: Tuple[str, ...] = ("linux-image-amd64", "grub-pc", "initramfs-tools")

Log = Callable[[str], None]


@dataclass(frozen=True)
class ImageSpec:
    ssh_public_key: str
    suite: str = SUITE
    mirror: str = DEFAULT_MIRROR
    base_packages: Tuple[str, ...] = BASE_PACKAGES
    boot_packages: Tuple[str, ...] = BOOT_PACKAGES

    def cache_key(self) -> str:
        # The mirror is left out: any Debian mirror serves the same suite.
        guest_files = guest_config_files(self)
        return content_hash(
            [
                str(BUILD_STEPS_VERSION).encode(),
                self.suite.encode(),
                " ".join(self.base_packages).encode(),
                " ".join(self.boot_packages).encode(),
                *(("%s\n%s" % (path, guest_files[path])).encode() for path in sorted(guest_files)),
            ]
        )

    @property
    def disk_path(self) -> Path:
        return cache_root() / "lab-image" / self.cache_key() / "disk.raw"


@dataclass(frozen=True)
class BaseImage:
    path: Path
    built: bool
    seconds: float


def debian_mirror() -> str:
    return os.environ.get("P2PCTL_DEBIAN_MIRROR", DEFAULT_MIRROR)


def ensure_image(spec: ImageSpec, log: Log) -> BaseImage:
    """The cached base disk for ``spec``, built first if it is not there yet."""
    started = time.monotonic()
    disk = spec.disk_path
    if disk.exists():
        return BaseImage(disk, built=False, seconds=time.monotonic() - started)
    if os.geteuid() != 0:
        raise P2PError(
            "building the lab image %s needs root (debootstrap, loop devices, mount)" % disk,
            fix="run p2pctl lab up as root once; later runs reuse the cached image",
        )
    for tool in ("debootstrap", "sfdisk", "losetup", "partx", "mkfs.ext4"):
        require_tool(tool)
    partial = disk.parent.with_name(disk.parent.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    _build(spec, partial / disk.name, partial / "root", log)
    # Renaming the finished directory is atomic: an interrupted build never looks cached.
    os.rename(partial, disk.parent)
    return BaseImage(disk, built=True, seconds=time.monotonic() - started)


def _build(spec: ImageSpec, disk: Path, mountpoint: Path, log: Log) -> None:
    log("lab image: creating a %s disk with one partition" % DISK_SIZE)
    run(["truncate", "-s", DISK_SIZE, str(disk)], "truncate")
    run(["sfdisk", "--quiet", str(disk)], "sfdisk", input_text="label: dos\n,,L,*\n")
    with ExitStack() as cleanup:
        loop = run(["losetup", "-fP", "--show", str(disk)], "losetup").strip()
        cleanup.callback(run, ["losetup", "-d", loop], "losetup -d")
        partition = _first_partition(loop)
        run(["mkfs.ext4", "-q", "-L", ROOT_LABEL, partition], "mkfs.ext4")
        mountpoint.mkdir()
        _mount(cleanup, ["mount", partition, str(mountpoint)])

        log("lab image: debootstrap %s (%d packages)" % (spec.suite, len(spec.base_packages)))
        run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=" + ",".join(spec.base_packages),
                spec.suite,
                str(mountpoint),
                spec.mirror,
            ],
            "debootstrap %s" % spec.suite,
        )
        for argv in (
            ["mount", "--bind", "/dev", str(mountpoint / "dev")],
            ["mount", "--bind", "/dev/pts", str(mountpoint / "dev/pts")],
            ["mount", "-t", "proc", "proc", str(mountpoint / "proc")],
            ["mount", "-t", "sysfs", "sysfs", str(mountpoint / "sys")],
        ):
            _mount(cleanup, argv)
        _configure(mountpoint, spec)

        log("lab image: installing %s" % " ".join(spec.boot_packages))
        chroot_env = {
            "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
            "DEBIAN_FRONTEND": "noninteractive",
            "LANG": "C.UTF-8",
        }
        run(
            ["chroot", str(mountpoint), "debconf-set-selections"],
            "debconf-set-selections",
            env=chroot_env,
            input_text="grub-pc grub-pc/install_devices_empty boolean true\n",
        )
        run(
            [
                "chroot",
                str(mountpoint),
                "apt-get",
                "install",
                "-y",
                "-q",
                "--no-install-recommends",
                *spec.boot_packages,
            ],
            "apt-get install in the image",
            env=chroot_env,
        )
        run(["chroot", str(mountpoint), "systemctl", "enable", "systemd-networkd"], "enable networkd", env=chroot_env)
        log("lab image: installing GRUB")
        run(["chroot", str(mountpoint), "grub-install", "--target=i386-pc", loop], "grub-install", env=chroot_env)
        run(["chroot", str(mountpoint), "update-grub"], "update-grub", env=chroot_env)
        _check_grub_root(mountpoint / "boot/grub/grub.cfg")
        run(["chroot", str(mountpoint), "apt-get", "clean"], "apt-get clean", env=chroot_env)
        # Each node then gets its own machine-id on first boot.
        (mountpoint / "etc/machine-id").write_text("")
    mountpoint.rmdir()
    os.sync()


def _first_partition(loop: str) -> str:
    partition = loop + "p1"
    if not os.path.exists(partition):
        # No udev and no devtmpfs node: ask the kernel to add the partition explicitly.
        run(["partx", "-a", loop], "partx -a")
    if not os.path.exists(partition):
        raise P2PError(
            "the partition %s of the lab image did not appear" % partition,
            fix="check that the host kernel has loop partition support (losetup -P) and /dev is devtmpfs",
        )
    return partition


def _mount(cleanup: ExitStack, argv: List[str]) -> None:
    run(argv, " ".join(argv[:2]))
    cleanup.callback(run, ["umount", argv[-1]], "umount %s" % argv[-1])


def guest_config_files(spec: ImageSpec) -> Dict[str, str]:
    """The files the build writes into the guest, by path relative to its root."""
    return {
        "etc/hostname": HOSTNAME + "\n",
        "etc/hosts": "127.0.0.1 localhost\n127.0.1.1 %s\n" % HOSTNAME,
        "etc/fstab": "LABEL=%s / ext4 errors=remount-ro 0 1\n" % ROOT_LABEL,
        # The management NIC sits at 00:03.0 (topologies.MGMT_NIC_SLOT); the topology's own
        # NIC stays unconfigured for the roles to use. networkd rather than ifupdown, whose
        # `udevadm settle` before any interface comes up costs 20 s of every TCG boot.
        "etc/systemd/network/10-mgmt.network": "[Match]\nPath=pci-0000:00:03.0\n\n[Network]\nDHCP=ipv4\n",
        # update-grub probes the root device; on the build host that is a loop device,
        # in the guest a virtio disk. A label is right in both places, also for the kernels
        # the kernel role installs later.
        # Numbered, so that later snippets (the node's topology arguments, the kernel
        # role's) are read after it and can extend it.
        "etc/default/grub.d/10-p2plab.cfg": "\n".join(
            [
                "GRUB_TIMEOUT=1",
                'GRUB_CMDLINE_LINUX_DEFAULT=""',
                'GRUB_CMDLINE_LINUX="console=ttyS0,115200"',
                'GRUB_TERMINAL="serial console"',
                'GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"',
                'GRUB_DEVICE="LABEL=%s"' % ROOT_LABEL,
                "GRUB_DISABLE_LINUX_UUID=true",
                "GRUB_DISABLE_LINUX_PARTUUID=true",
                "GRUB_DISABLE_OS_PROBER=true",
                "",
            ]
        ),
        "root/.ssh/authorized_keys": spec.ssh_public_key.strip() + "\n",
    }


def _configure(root: Path, spec: ImageSpec) -> None:
    (root / "root/.ssh").mkdir(mode=0o700, exist_ok=True)
    for relative, text in guest_config_files(spec).items():
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(0o600 if relative.startswith("root/") else 0o644)


def _check_grub_root(grub_cfg: Path) -> None:
    text = grub_cfg.read_text()
    if "root=LABEL=%s" % ROOT_LABEL not in text:
        raise P2PError(
            "update-grub in the lab image did not boot the root filesystem by its label (%s)" % grub_cfg,
            fix="check etc/default/grub.d/10-p2plab.cfg in the image against the installed GRUB's 10_linux",
        )
