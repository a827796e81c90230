"""Lab nodes: QEMU VMs that boot the lab image and answer SSH on a forwarded local port.

A node's state lives in ``~/.cache/p2pctl/lab/nodes/<name>/``: its qcow2 overlay of the
base image, the backing files of its NVMe drives, its serial console log, QEMU's pidfile
and QMP socket, and ``node.json`` (topology and SSH port). QEMU is started daemonized
with a pidfile, and only ever stopped by that PID, after checking that the PID is still
the QEMU of this node.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.common.files import write_atomic
from p2pctl.lab.cache import lab_dir, ssh_key_path
from p2pctl.lab.dmatrace import TRACE_FILE, qemu_trace_args
from p2pctl.lab.image import ImageSpec, debian_mirror, ensure_image
from p2pctl.lab.labkernel import ROOT_DEVICE, build_initramfs, lab_kernel
from p2pctl.lab.proc import require_tool, run, tail
from p2pctl.lab.ssh import ensure_ssh_config
from p2pctl.lab.topologies import BOOT_DISK_SLOT, MGMT_NIC_SLOT, Topology, get_topology

DEFAULT_NODE = "node1"
DEFAULT_TOPOLOGY = "switch"
GUEST_MEMORY_MB = 1536
GUEST_CPUS = 2
# A cold TCG boot answers SSH in about 50 s on an idle 2-core host; the bound leaves room
# for a host busy with kernel builds and other VMs.
SSH_TIMEOUT = 300.0
SHUTDOWN_TIMEOUT = 60.0
SEABIOS = Path("/usr/share/seabios/bios-256k.bin")
SERIAL_TAIL_LINES = 15
# Differs on every boot of the guest: how a reboot is told from the boot before it.
BOOT_ID = "/proc/sys/kernel/random/boot_id"
# How a node boots, chosen when it is created. grub: SeaBIOS, the disk's GRUB, Debian's stock
# kernel and systemd, for what is about the bootloader, systemd or packages. lab-kernel: QEMU
# loads the lab's P2PDMA kernel itself and a minimal init starts sshd on the same disk, in seconds.
BOOT_GRUB = "grub"
BOOT_LAB_KERNEL = "lab-kernel"
BOOT_MODES = (BOOT_GRUB, BOOT_LAB_KERNEL)

Log = Callable[[str], None]


def no_log(_message: str) -> None:
    """The default log: library callers that want progress pass their own."""


@dataclass(frozen=True)
class NodeConfig:
    topology: str
    ssh_port: int
    base_image: str
    boot: str = BOOT_GRUB
    trace_dma: bool = False  # record QEMU's pci_nvme_map_addr events into <node dir>/dma.trace
    kernel_args: Tuple[str, ...] = ()  # appended to the lab kernel's command line (boot lab-kernel)


class LabNode:
    """One lab VM, addressed by name."""

    def __init__(self, name: str) -> None:
        if not name or not all(ch.isalnum() or ch in "-_" for ch in name):
            raise P2PError(
                "invalid lab node name %r" % name,
                fix="use letters, digits, '-' and '_' only (it becomes a directory and an inventory host name)",
            )
        self.name = name
        self.dir = lab_dir() / "nodes" / name

    # -- paths -------------------------------------------------------------------------
    @property
    def overlay(self) -> Path:
        return self.dir / "disk.qcow2"

    @property
    def serial_log(self) -> Path:
        return self.dir / "serial.log"

    @property
    def pidfile(self) -> Path:
        return self.dir / "qemu.pid"

    @property
    def qmp_socket(self) -> Path:
        return self.dir / "qmp.sock"

    @property
    def config_file(self) -> Path:
        return self.dir / "node.json"

    @property
    def initramfs(self) -> Path:
        return self.dir / "initramfs.cpio.gz"

    # -- state -------------------------------------------------------------------------
    def exists(self) -> bool:
        return self.config_file.exists()

    def config(self) -> NodeConfig:
        if not self.exists():
            raise P2PError(
                "there is no lab node named %r" % self.name,
                fix="see p2pctl lab status for the nodes there are, or create it with p2pctl lab up --name %s"
                % self.name,
            )
        saved = json.loads(self.config_file.read_text())
        # The lab directory is shared: a node made by another p2pctl version may carry settings this one lacks.
        known = {field.name for field in fields(NodeConfig)}
        settings = {key: value for key, value in saved.items() if key in known}
        return NodeConfig(**dict(settings, kernel_args=tuple(settings.get("kernel_args", ()))))

    def pid(self) -> Optional[int]:
        """The PID of this node's QEMU if it is running, else None (a stale pidfile is ignored)."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        try:
            cmdline = Path("/proc/%d/cmdline" % pid).read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            return None
        # The PID may have been reused by another process since: only our QEMU has our overlay open.
        return pid if str(self.overlay).encode() in cmdline else None

    def is_running(self) -> bool:
        return self.pid() is not None

    def require_running(self) -> None:
        if not self.is_running():
            raise P2PError("lab node %r is not running" % self.name, fix="p2pctl lab up --name %s" % self.name)

    def serial_tail(self, lines: int = SERIAL_TAIL_LINES) -> str:
        try:
            text = self.serial_log.read_text(errors="replace")
        except FileNotFoundError:
            return "(no serial console output)"
        kept = [line.rstrip() for line in text.replace("\r", "\n").splitlines() if line.strip()][-lines:]
        return "\n".join(kept) if kept else "(no serial console output)"

    # -- lifecycle ---------------------------------------------------------------------
    def up(
        self,
        topology_name: Optional[str] = None,
        ssh_port: Optional[int] = None,
        ssh_timeout: float = SSH_TIMEOUT,
        log: Log = no_log,
        boot: Optional[str] = None,
    ) -> None:
        """Start the node (creating it on first use) and wait until it answers SSH."""
        if self.start(topology_name, ssh_port, log, boot):
            self.wait_ready(ssh_timeout, log)
        else:
            self.wait_ssh(ssh_timeout)

    def start(
        self,
        topology_name: Optional[str] = None,
        ssh_port: Optional[int] = None,
        log: Log = no_log,
        boot: Optional[str] = None,
        trace_dma: bool = False,
        kernel_args: Sequence[str] = (),
    ) -> bool:
        """Start the node's QEMU (creating the node on first use); False if it was running already.

        A node keeps its topology and boot mode for life: its drives and disk belong to it.
        """
        if boot is not None and boot not in BOOT_MODES:
            raise P2PError("unknown lab boot mode %r" % boot, fix="choose one of: %s" % ", ".join(BOOT_MODES))
        if self.is_running():
            if trace_dma and not self.config().trace_dma:
                raise P2PError(
                    "lab node %r runs without the DMA trace" % self.name,
                    fix="p2pctl lab down %s, then p2pctl lab up --trace-dma" % self.name,
                )
            log("%s: already running (ssh port %d)" % (self.name, self.config().ssh_port))
            return False
        if self.exists():
            config = self.config()
            if topology_name and topology_name != config.topology:
                raise P2PError(
                    "lab node %r was created with topology %r, not %r" % (self.name, config.topology, topology_name),
                    fix="use another --name, or p2pctl lab destroy %s first" % self.name,
                )
            if boot and boot != config.boot:
                raise P2PError(
                    "lab node %r was created to boot %s, not %s" % (self.name, config.boot, boot),
                    fix="use another --name, or p2pctl lab destroy %s first" % self.name,
                )
            topology = get_topology(config.topology)
            if not Path(config.base_image).exists():
                raise P2PError(
                    "the base image of lab node %r is gone (%s)" % (self.name, config.base_image),
                    fix="p2pctl lab destroy %s, then p2pctl lab up again" % self.name,
                )
        else:
            topology = get_topology(topology_name or DEFAULT_TOPOLOGY)
        qemu = require_tool("qemu-system-x86_64")
        require_tool("qemu-img")
        require_tool("ssh")
        if not SEABIOS.exists():
            raise P2PError(
                "QEMU's BIOS firmware %s is missing" % SEABIOS,
                fix="apt-get install seabios (it comes with qemu-system-x86)",
            )
        port = _claim_port(ssh_port)
        if not self.exists():
            self._create(topology, boot or BOOT_GRUB, log)
        config = replace(self.config(), ssh_port=port, trace_dma=trace_dma, kernel_args=tuple(kernel_args))
        if config.kernel_args and config.boot != BOOT_LAB_KERNEL:
            raise P2PError(
                "lab node %r boots through GRUB: --kernel-arg applies to --boot lab-kernel" % self.name,
                fix="set kernel arguments of a GRUB node with the kernel_install role",
            )
        self._save(config)
        self._start_qemu(qemu, topology, config, log)
        return True

    def wait_ready(self, ssh_timeout: float = SSH_TIMEOUT, log: Log = no_log) -> None:
        """Wait for SSH after start(), then boot into the topology's kernel arguments if it has any.

        Nothing half-started is left behind: a node that does not come up is stopped.
        """
        config = self.config()
        try:
            self.wait_ssh(ssh_timeout)
            if config.boot == BOOT_GRUB:
                self._apply_topology_cmdline(get_topology(config.topology), ssh_timeout, log)
        except BaseException:
            self._kill()
            raise
        log("%s: up, ssh port %d" % (self.name, self.config().ssh_port))

    def _create(self, topology: Topology, boot: str, log: Log) -> None:
        key = ensure_ssh_key()
        spec = ImageSpec(ssh_public_key=key.with_suffix(".pub").read_text(), mirror=debian_mirror())
        image = ensure_image(spec, log)
        if image.built:
            log("lab image built in %.0f s: %s" % (image.seconds, image.path))
        self.dir.mkdir(parents=True, exist_ok=True)
        run(
            ["qemu-img", "create", "-q", "-f", "qcow2", "-F", "raw", "-b", str(image.path), str(self.overlay)],
            "qemu-img create (overlay of %s)" % self.name,
        )
        for drive in topology.drives:
            with open(self._drive_path(drive.id), "wb") as backing:
                backing.truncate(drive.size_mb * 1024 * 1024)
        self._save(NodeConfig(topology=topology.name, ssh_port=0, base_image=str(image.path), boot=boot))

    def _drive_path(self, drive_id: str) -> Path:
        return self.dir / ("nvme-%s.raw" % drive_id)

    def _save(self, config: NodeConfig) -> None:
        write_atomic(self.config_file, json.dumps(asdict(config), indent=2) + "\n")

    def qemu_argv(
        self,
        qemu: str,
        topology: Topology,
        ssh_port: int,
        direct_kernel: Optional[Path] = None,
        trace_dma: bool = False,
        kernel_args: Sequence[str] = (),
    ) -> List[str]:
        """QEMU's command line; with ``direct_kernel``, QEMU loads that kernel and the lab initramfs itself."""
        drive_paths = {drive.id: str(self._drive_path(drive.id)) for drive in topology.drives}
        direct: List[str] = []
        if direct_kernel is not None:
            cmdline = ["console=ttyS0,115200", "root=%s" % ROOT_DEVICE, *topology.cmdline, *kernel_args]
            direct = ["-kernel", str(direct_kernel), "-initrd", str(self.initramfs), "-append", " ".join(cmdline)]
        return [
            qemu,
            "-name", "p2plab-%s" % self.name,
            # Multi-threaded TCG let a vCPU run a stale translation of kernel text that the
            # other vCPU had just live-patched (static keys): "Oops: int3" at boot, seen in CI.
            # One TCG thread keeps code changes coherent across vCPUs; boot to SSH costs ~7 s more.
            "-accel", "tcg,thread=single",
            "-m", str(GUEST_MEMORY_MB),
            "-smp", str(GUEST_CPUS),
            *topology.qemu_args(drive_paths),
            "-drive", "file=%s,if=none,id=boot,format=qcow2,discard=unmap" % self.overlay,
            # With -kernel, QEMU's own boot ROM takes boot index 0 and the disk is only the root.
            "-device", "virtio-blk-pci,drive=boot,bus=pcie.0,addr=%02x.0%s"
            % (BOOT_DISK_SLOT, "" if direct else ",bootindex=0"),
            "-netdev", "user,id=mgmt,hostfwd=tcp:127.0.0.1:%d-:22" % ssh_port,
            "-device", "virtio-net-pci,netdev=mgmt,bus=pcie.0,addr=%02x.0,romfile=" % MGMT_NIC_SLOT,
            "-display", "none",
            "-vga", "none",
            "-serial", "file:%s" % self.serial_log,
            "-monitor", "none",
            "-qmp", "unix:%s,server=on,wait=off" % self.qmp_socket,
            "-pidfile", str(self.pidfile),
            "-daemonize",
            *direct,
            *(qemu_trace_args(self.dir / TRACE_FILE) if trace_dma else []),
        ]  # fmt: skip

    def _start_qemu(self, qemu: str, topology: Topology, config: NodeConfig, log: Log) -> None:
        for stale in (self.pidfile, self.qmp_socket, self.serial_log):
            stale.unlink(missing_ok=True)
        direct_kernel = None
        if config.boot == BOOT_LAB_KERNEL:
            kernel = lab_kernel()
            build_initramfs(self.initramfs)
            direct_kernel = kernel.bzimage
        argv = self.qemu_argv(qemu, topology, config.ssh_port, direct_kernel, config.trace_dma, config.kernel_args)
        log(
            "%s: starting QEMU (topology %s, ssh port %d, boot %s)"
            % (self.name, topology.name, config.ssh_port, config.boot)
        )
        # With -daemonize QEMU returns once the VM is set up, with a non-zero exit if the
        # machine could not be built (bad device, port taken), so nothing runs on failure.
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            message = tail(done.stderr or done.stdout, 4)
            if "hostfwd" in message or "host forwarding" in message:
                raise P2PError(
                    "QEMU could not forward 127.0.0.1:%d to lab node %r: %s" % (config.ssh_port, self.name, message),
                    fix="the port is in use: pick another with --ssh-port, or omit it to get a free one",
                )
            raise P2PError(
                "QEMU did not start lab node %r: %s" % (self.name, message),
                fix="run it by hand to see the whole output: %s" % " ".join(argv),
            )

    def wait_ssh(self, timeout: float = SSH_TIMEOUT, not_boot: Optional[str] = None) -> None:
        """Wait until the guest runs a command over SSH; a bounded wait that shows the console if it fails.

        With ``not_boot``, wait until a boot other than that one (a boot_id) answers.
        """
        deadline = time.monotonic() + timeout
        while True:
            if not self.is_running():
                raise P2PError(
                    "the QEMU of lab node %r exited; last serial console lines:\n%s" % (self.name, self.serial_tail()),
                    fix="see %s" % self.serial_log,
                )
            # The old boot may still answer SSH while it shuts down, and then cut the next
            # connection ("Connection reset by peer"): a failed probe only means "not yet".
            probe = subprocess.run(
                self.ssh_argv(["cat", BOOT_ID], connect_timeout=5),
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                check=False,
            )
            if probe.returncode == 0 and probe.stdout.strip() != not_boot:
                return
            if time.monotonic() >= deadline:
                waited_for = (
                    "come back from its reboot" if not_boot else "answer SSH on 127.0.0.1:%d" % self.config().ssh_port
                )
                raise P2PError(
                    "lab node %r did not %s within %d s; last serial console lines:\n%s"
                    % (self.name, waited_for, timeout, self.serial_tail()),
                    fix="see %s; a busy host may need a longer --timeout" % self.serial_log,
                )
            time.sleep(2)

    def _apply_topology_cmdline(self, topology: Topology, ssh_timeout: float, log: Log) -> None:
        """Add the topology's kernel arguments to the guest's GRUB, and reboot once into them.

        The node boots through its own GRUB, so its kernel command line lives on its disk.
        """
        if not topology.cmdline:
            return
        booted = self.run(["cat", "/proc/cmdline"]).split()
        if all(arg in booted for arg in topology.cmdline):
            return
        log("%s: adding %s to the guest's kernel command line, rebooting" % (self.name, " ".join(topology.cmdline)))
        snippet = 'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX %s"\n' % " ".join(topology.cmdline)
        self.run(["tee", "/etc/default/grub.d/60-p2plab-topology.cfg"], input_text=snippet)
        self.run(["update-grub"])
        self.reboot(ssh_timeout)
        booted = self.run(["cat", "/proc/cmdline"]).split()
        missing = [arg for arg in topology.cmdline if arg not in booted]
        if missing:
            raise P2PError(
                "lab node %r rebooted without %s on its kernel command line" % (self.name, " ".join(missing)),
                fix="see /etc/default/grub.d/ and /boot/grub/grub.cfg in the guest (p2pctl lab ssh %s)" % self.name,
            )

    def reboot(self, timeout: float = SSH_TIMEOUT) -> None:
        """Reboot the guest from inside and wait until a new boot answers SSH."""
        boot_id = self.run(["cat", BOOT_ID]).strip()
        # The SSH session may be cut, or left hanging, by the reboot itself: its exit status says nothing.
        with contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run(
                self.ssh_argv(self._guest_power_command("reboot")),
                capture_output=True,
                stdin=subprocess.DEVNULL,
                timeout=60,
                check=False,
            )
        self.wait_ssh(timeout, not_boot=boot_id)

    def ssh_argv(self, command: Sequence[str] = (), connect_timeout: int = 10) -> List[str]:
        config = self.config()
        return [
            "ssh",
            "-F", str(ensure_ssh_config()),
            "-i", str(ssh_key_path()),
            "-p", str(config.ssh_port),
            "-o", "BatchMode=yes",
            "-o", "ConnectTimeout=%d" % connect_timeout,
            "root@127.0.0.1",
            *command,
        ]  # fmt: skip

    def run(self, command: Sequence[str], input_text: Optional[str] = None, timeout: float = 600) -> str:
        """Run ``command`` (an argv list) as root in the guest and return its stdout."""
        self.require_running()
        return run(
            self.ssh_argv(command),
            "%s on lab node %r" % (" ".join(command), self.name),
            input_text=input_text,
            timeout=timeout,
        )

    def down(self, log: Log = no_log) -> bool:
        """Power the node off (ACPI, then SIGTERM to its PID). False if it was not running."""
        self.config()
        pid = self.pid()
        if pid is None:
            self.pidfile.unlink(missing_ok=True)
            return False
        log("%s: powering off (QEMU pid %d)" % (self.name, pid))
        self._request_poweroff()
        if not _wait_exit(pid, SHUTDOWN_TIMEOUT):
            self._kill()
        self.pidfile.unlink(missing_ok=True)
        return True

    def destroy(self, log: Log = no_log) -> None:
        """Stop the node and delete its disk, drives and logs. The cached base image stays."""
        self.down(log)
        for path in sorted(self.dir.iterdir(), reverse=True):
            path.unlink()
        self.dir.rmdir()

    def _kill(self) -> None:
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGTERM)
        if not _wait_exit(pid, 10):
            os.kill(pid, signal.SIGKILL)
            _wait_exit(pid, 10)

    def _request_poweroff(self) -> None:
        """Ask the guest to shut down cleanly: by systemd over SSH, and by the ACPI power button.

        Both, because the minimal image has no logind to act on the button, and SSH may be down.
        """
        # The session ends with the guest, so its exit status says nothing.
        with contextlib.suppress(subprocess.TimeoutExpired):
            subprocess.run(
                self.ssh_argv(self._guest_power_command("poweroff"), connect_timeout=5),
                capture_output=True,
                stdin=subprocess.DEVNULL,
                timeout=30,
                check=False,
            )
        self._qmp_powerdown()

    def _guest_power_command(self, action: str) -> List[str]:
        """The guest command that reboots or powers off: systemd's, or the lab init's signal (as busybox init)."""
        if self.config().boot == BOOT_LAB_KERNEL:
            # Detached and a second later, so the SSH session ends before the init stops sshd: a session
            # cut by the guest going away is never reset under user networking and would hang.
            # A node booted into systemd (labkernel.SYSTEMD_MARKER) is asked through systemctl instead.
            signal_name = "TERM" if action == "reboot" else "USR2"
            script = "sleep 1; if [ -d /run/systemd/system ]; then systemctl %s; else kill -%s 1; fi"
            return ["setsid", "-f", "sh", "-c", script % (action, signal_name)]
        return ["systemctl", action]

    def _qmp_powerdown(self) -> bool:
        """Ask QEMU for an ACPI power button press, so the guest shuts its filesystems down cleanly."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as qmp:
                qmp.settimeout(5)
                qmp.connect(str(self.qmp_socket))
                reader = qmp.makefile("r")
                reader.readline()  # the greeting
                for command in ("qmp_capabilities", "system_powerdown"):
                    qmp.sendall(json.dumps({"execute": command}).encode() + b"\n")
                    while "return" not in json.loads(reader.readline()):
                        pass  # asynchronous events come before the reply
            return True
        except (OSError, ValueError):
            return False


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not Path("/proc/%d" % pid).exists():
            return True
        time.sleep(0.5)
    return not Path("/proc/%d" % pid).exists()


def _claim_port(requested: Optional[int]) -> int:
    """A free local TCP port for the SSH forward: the requested one if it is free, else any."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind(("127.0.0.1", requested or 0))
        except OSError:
            raise P2PError(
                "port 127.0.0.1:%d is already in use" % (requested or 0),
                fix="pick another with --ssh-port, or omit it to get a free one",
            ) from None
        return int(probe.getsockname()[1])


def ensure_ssh_key() -> Path:
    """The lab's SSH key, generated on first use."""
    key = ssh_key_path()
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True)
        run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "p2pctl-lab", "-f", str(key)],
            "ssh-keygen",
        )
    return key
