"""The lab's own P2PDMA kernel, booted directly by QEMU (``-kernel``), and the tiny initramfs that starts it.

The kernel is the one the kernel role installs on lab nodes: series 6.12, ``tinyconfig`` plus
kernel-src/configs/lab.config and lab-nvmet.config, everything built in. It is built by the kernel_build role, so
it lands in the same content-hash cache (``~/.cache/p2pctl/kernel-pkg/<hash>``) that the
molecule scenarios use: one build per series and config on a machine. Its bzImage is taken out of
the ``linux-image`` package once, next to nothing else, under ``~/.cache/p2pctl/lab-kernel/<hash>``.

A directly booted node skips SeaBIOS, GRUB, Debian's initramfs and systemd: a busybox initramfs
mounts the node's own Debian disk and hands over to ``fast_init.py`` (PID 1 in the Debian root),
which mounts the kernel filesystems, configures the management NIC and runs sshd.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.common.paths import cache_root, kernel_src
from p2pctl.commands.kernel import build_run
from p2pctl.lab.proc import require_tool
from p2pctl.runner import run_playbook

LAB_KERNEL_SERIES = "6.12"
# In this order, after kernel_build's own p2pdma.config.
LAB_FRAGMENTS = [kernel_src() / "configs" / "lab.config", kernel_src() / "configs" / "lab-nvmet.config"]
BUSYBOX = Path("/bin/busybox")
FAST_INIT = Path(__file__).with_name("fast_init.py")
# The Debian disk's root partition as the lab kernel sees it: virtio-blk, first disk, first partition.
ROOT_DEVICE = "/dev/vda1"
# A file in the node's Debian root; when it says "systemd", the initramfs starts systemd instead of fast_init.py.
SYSTEMD_MARKER = "/etc/p2plab/init"


@dataclass(frozen=True)
class LabKernel:
    release: str
    bzimage: Path


@functools.cache
def lab_kernel() -> LabKernel:
    """The lab kernel's bzImage: kernel_build's cached package (built first if needed), unpacked once.

    Cached per process: the role run costs seconds even when nothing is built.
    """
    require_tool("dpkg-deb")
    with tempfile.TemporaryDirectory(prefix="p2pctl-labkernel-") as scratch:
        result_file = Path(scratch) / "result.json"
        run = build_run(
            {
                "kernel_build_version": LAB_KERNEL_SERIES,
                "kernel_build_config_base": "tinyconfig",
                "kernel_build_extra_fragments": [str(fragment) for fragment in LAB_FRAGMENTS],
                "kernel_build_result_file": str(result_file),
            },
            check=False,
        )
        try:
            for _event in run_playbook(run):
                pass
        except P2PError as error:
            raise P2PError(
                "building the lab kernel with the kernel_build role failed: %s" % error.message,
                fix="p2pctl kernel build --series %s --config-base tinyconfig %s shows the whole run"
                % (LAB_KERNEL_SERIES, " ".join("--fragment %s" % fragment for fragment in LAB_FRAGMENTS)),
            ) from error
        result = json.loads(result_file.read_text())
    output_dir = Path(result["output_dir"])
    release = str(result["release"])
    images = [name for name in result["packages"] if name.startswith("linux-image-") and "-dbg" not in name]
    if len(images) != 1:
        raise P2PError(
            "the lab kernel build in %s has %d linux-image packages, not one" % (output_dir, len(images)),
            fix="remove %s and build again" % output_dir,
        )
    bzimage = cache_root() / "lab-kernel" / output_dir.name / ("vmlinuz-%s" % release)
    if not bzimage.exists():
        bzimage.parent.mkdir(parents=True, exist_ok=True)
        partial = bzimage.with_suffix(".partial")
        with open(partial, "wb") as handle:
            tar = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(output_dir / images[0])], stdout=subprocess.PIPE)
            extracted = subprocess.run(
                ["tar", "-xO", "./boot/vmlinuz-%s" % release], stdin=tar.stdout, stdout=handle, check=False
            )
            tar.wait()
        if extracted.returncode != 0 or tar.returncode != 0 or partial.stat().st_size == 0:
            raise P2PError(
                "no /boot/vmlinuz-%s in %s" % (release, output_dir / images[0]),
                fix="dpkg-deb -c %s lists what the package holds" % (output_dir / images[0]),
            )
        os.replace(partial, bzimage)
    return LabKernel(release, bzimage)


def init_script(fast_init: str) -> str:
    """The initramfs /init: mount the node's disk and hand over to the fast init in its /run."""
    return f"""#!/bin/busybox sh
bb=/bin/busybox
$bb mkdir -p /proc /dev /newroot
$bb mount -t devtmpfs devtmpfs /dev
$bb mount -t proc proc /proc
if ! $bb mount -t ext4 -o rw {ROOT_DEVICE} /newroot; then
  echo "p2plab: cannot mount {ROOT_DEVICE}"; $bb sleep 5; $bb poweroff -f
fi
$bb mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /newroot/run
# A node whose disk says so boots Debian's systemd, for tests of units that run at boot.
if [ "$($bb cat /newroot{SYSTEMD_MARKER} 2>/dev/null)" = systemd ]; then
  $bb umount /proc
  $bb mount --move /dev /newroot/dev
  exec $bb switch_root /newroot /lib/systemd/systemd
fi
$bb cat > /newroot/run/p2plab-init <<'P2PLAB_INIT'
{fast_init}P2PLAB_INIT
$bb umount /proc
$bb mount --move /dev /newroot/dev
exec $bb switch_root /newroot /usr/bin/python3 /run/p2plab-init
"""


def build_initramfs(destination: Path) -> Path:
    """The lab initramfs: static busybox and the /init above."""
    return busybox_initramfs(init_script(FAST_INIT.read_text()), destination)


def busybox_initramfs(init: str, destination: Path) -> Path:
    """A gzip'd newc cpio (what the kernel unpacks as initramfs) with static busybox and ``init`` as /init."""
    if not BUSYBOX.exists():
        raise P2PError("%s is missing" % BUSYBOX, fix="apt-get install busybox-static (or run scripts/bootstrap)")
    require_tool("cpio")
    with tempfile.TemporaryDirectory(prefix="p2pctl-initramfs-") as scratch:
        tree = Path(scratch)
        (tree / "bin").mkdir()
        shutil.copy(BUSYBOX, tree / "bin" / "busybox")
        (tree / "init").write_text(init)
        (tree / "init").chmod(0o755)
        names = sorted(str(path.relative_to(tree)) for path in tree.rglob("*"))
        archive = subprocess.run(
            ["cpio", "--quiet", "-o", "-H", "newc"],
            cwd=tree,
            input=("\n".join(names) + "\n").encode(),
            capture_output=True,
            check=True,
        ).stdout
    destination.write_bytes(gzip.compress(archive))
    return destination
