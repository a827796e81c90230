# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The saved target (/etc/nvmet/config.json) and its restore at boot.

The file is nvmetcli's JSON schema (what ``read_target().to_dict()`` gives), so nvmetcli
can still read it; namespaces carry ``p2pmem`` and ``buffered_io`` and hosts their
``dhchap`` values, which nvmetcli's reader passes over or writes as attributes.

At boot the restore waits, with a deadline, for what the saved target names: each
namespace's backing device, each p2pmem provider the engine must accept (``auto`` too),
and each local port address. Unlike ``nvmetcli restore`` it does not stop at the first
missing thing nor hide it: what is ready is restored through the same planner and applier
as the module, what is not is listed, and the exit status is non-zero.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import re
import socket
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.common.files import write_atomic
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.configfs import (
    NVMET,
    ConfigfsWriter,
    apply_actions,
    is_loaded,
    read_target,
)
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.model import (
    P2PMEM_NONE,
    Port,
    Target,
    target_from_dict,
)
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.p2pmem import P2PJudge
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.plan import plan_target
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.fs import SysRoot

SAVED_CONFIG = "/etc/nvmet/config.json"
# Readable by root only: configfs shows DH-HMAC-CHAP secrets to root, and they are saved.
SAVED_MODE = 0o600
RESTORE_UNIT = "p2pdma-nvmet-restore.service"
# The kernel modules a port's transport needs (nvme-loop is the host and target of loop).
TRANSPORT_MODULES = {"tcp": "nvmet-tcp", "rdma": "nvmet-rdma", "loop": "nvme-loop", "fc": "nvmet-fc"}
WILDCARD_ADDRESSES = ("0.0.0.0", "::")
# The TLS PSKs of tcp ports with tsas tls1.3, saved by the role (root only) for the boot-time restore:
# the kernel's .nvme keyring, where tlshd finds them, is empty after every boot.
TLS_PSK_FILE = "/etc/nvmet/tls-psks.json"
_PSK_RE = re.compile(r"^NVMeTLSkey-1:(0[12]):[A-Za-z0-9+/]+={0,2}:$")

Runner = Callable[[List[str]], Tuple[int, str, str]]


def saved_text(target: Target) -> str:
    return json.dumps(target.to_dict(), indent=2, sort_keys=True) + "\n"


def holds(path: str, text: str) -> bool:
    """Whether the file at ``path`` holds exactly ``text``."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read() == text
    except FileNotFoundError:
        return False


def write_if_changed(path: str, text: str, mode: int, check_mode: bool = False) -> bool:
    """Write ``text`` to ``path`` atomically unless it already holds it; True when it changes (or would)."""
    if holds(path, text):
        return False
    if not check_mode:
        write_atomic(path, text, mode)
    return True


def load_target(path: str) -> Target:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        return target_from_dict(data)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise P2PError("cannot read the saved nvmet target %s: %s" % (path, exc),
                       fix="save it again with the p2pdma.storage.nvmet role (or nvmetcli save)") from exc


def transport_modules(target: Target) -> List[str]:
    """nvmet and the transport modules the target's ports need, in modprobe order."""
    return ["nvmet"] + sorted({TRANSPORT_MODULES[trtype] for p in target.ports
                               for trtype in [p.addr.get("trtype") or ""] if trtype in TRANSPORT_MODULES})


def local_address(port: Port) -> Optional[str]:
    """The address a tcp/rdma port must find on this node before it can be enabled (None: any will do)."""
    if port.addr.get("adrfam") not in ("ipv4", "ipv6") or not port.addr.get("traddr"):
        return None
    address = str(port.addr["traddr"])
    return None if address in WILDCARD_ADDRESSES else address


def address_is_local(address: str) -> bool:
    """Whether this node has ``address``: binding to it succeeds exactly when an interface holds it."""
    family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((address, 0))
        except OSError:
            return False
    return True


# --------------------------------------------------------------------------------------
# TLS PSKs
# --------------------------------------------------------------------------------------
def psk_identity(psk: Dict[str, str]) -> str:
    """The description nvme-cli gives the retained PSK in the .nvme keyring, which the kernel looks up."""
    match = _PSK_RE.match(psk.get("key", ""))
    if not match:
        raise P2PError("the TLS PSK for host %s and subsystem %s is not in the NVMe TLS PSK interchange format"
                       % (psk.get("hostnqn"), psk.get("subnqn")),
                       fix="generate it with nvme gen-tls-key (NVMeTLSkey-1:01:...:)")
    return "NVMe0R%s %s %s" % (match.group(1), psk["hostnqn"], psk["subnqn"])


def load_psks(path: str) -> List[Dict[str, str]]:
    try:
        with open(path, encoding="utf-8") as handle:
            psks = json.load(handle)
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise P2PError("cannot read the TLS PSKs in %s: %s" % (path, exc),
                       fix="write them again with the p2pdma.storage.nvmet role") from exc
    return [dict(psk) for psk in psks]


def insert_psks(root: SysRoot, psks: List[Dict[str, str]], run: Runner) -> List[str]:
    """Put each PSK the keyring lacks into it (nvme check-tls-key --insert); returns the identities inserted."""
    keys = root.read_text("/proc/keys") or ""
    inserted = []
    for psk in psks:
        identity = psk_identity(psk)
        if identity + ":" in keys:
            continue
        argv = ["nvme", "check-tls-key", "--hostnqn=" + psk["hostnqn"], "--subsysnqn=" + psk["subnqn"],
                "--keydata=" + psk["key"], "--insert"]
        rc, _out, err = run(argv)
        if rc != 0:
            raise P2PError("nvme check-tls-key --insert for %s failed: %s" % (identity, err.strip()),
                           fix="check the key, and that the kernel has CONFIG_NVME_TARGET_TCP_TLS")
        inserted.append(identity)
    return inserted


def run_command(argv: List[str]) -> Tuple[int, str, str]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    return done.returncode, done.stdout, done.stderr


# --------------------------------------------------------------------------------------
# The systemd unit
# --------------------------------------------------------------------------------------
def systemd_escape_path(path: str) -> str:
    """``systemd-escape --path``: the unit name stem systemd gives a path (/dev/sda -> dev-sda)."""
    parts = []
    for part in (part for part in path.split("/") if part):
        parts.append("".join(
            char if (char.isascii() and char.isalnum()) or char in ":_." else
            "".join("\\x%02x" % byte for byte in char.encode("utf-8"))
            for char in part
        ))
    escaped = "-".join(parts)
    # Only a leading dot is escaped (it would make a hidden file name).
    return "\\x2e" + escaped[1:] if escaped.startswith(".") else escaped or "-"


def device_units(target: Target) -> List[str]:
    """The .device units of the block devices the namespaces are backed by (files have none)."""
    paths = sorted({path for s in target.subsystems for ns in s.namespaces
                    for path in [ns.device.get("path") or ""] if path.startswith("/dev/")})
    return [systemd_escape_path(path) + ".device" for path in paths]


def restore_unit(target: Target, program: str, timeout: int) -> str:
    """The unit that restores the saved target at boot, ordered after what it names."""
    after = ["sys-kernel-config.mount", "systemd-modules-load.service"] + device_units(target)
    wants = list(device_units(target))
    if any(local_address(port) for port in target.ports):
        after.append("network-online.target")
        wants.append("network-online.target")
    lines = [
        "# Written by the p2pdma.storage.nvmet role from %s; it lists what that file names." % SAVED_CONFIG,
        "[Unit]",
        "Description=Restore the NVMe-oF target saved in %s (p2pdma.storage.nvmet)" % SAVED_CONFIG,
        "ConditionPathExists=%s" % SAVED_CONFIG,
        # nvmetcli's own unit restores the same file by clearing configfs: only one of them may run.
        "Conflicts=nvmet.service",
        "After=%s" % " ".join(after),
    ]
    if wants:
        lines.append("Wants=%s" % " ".join(wants))
    lines += [
        "",
        "[Service]",
        "Type=oneshot",
        "RemainAfterExit=yes",
        # A module built into the kernel has nothing to load: modprobe's failure then is not an error.
        "ExecStartPre=-/sbin/modprobe -a %s" % " ".join(transport_modules(target)),
        "ExecStart=%s restore --config %s --timeout %d" % (program, SAVED_CONFIG, timeout),
        # The program's own deadline comes first, so that it can say what was missing.
        "TimeoutStartSec=%d" % (timeout + 60),
        "",
        "[Install]",
        "WantedBy=multi-user.target",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------
# Restore
# --------------------------------------------------------------------------------------
@dataclass
class RestoreReport:
    waited_seconds: float = 0.0
    waited_for: List[str] = field(default_factory=list)
    failed: List[str] = field(default_factory=list)
    actions: int = 0

    def lines(self) -> List[str]:
        out = ["waited %.1f s for %s" % (self.waited_seconds, ", ".join(self.waited_for) or "nothing")]
        out.append("restore: %d configfs change(s) made" % self.actions)
        out += ["FAILED: %s" % failure for failure in self.failed]
        return out


def _missing(root: SysRoot, target: Target) -> Dict[Tuple[str, object], str]:
    """What the target names that is not there yet, keyed by the object that needs it."""
    missing: Dict[Tuple[str, object], str] = {}
    judge = P2PJudge(root)
    for subsystem in target.subsystems:
        for ns in subsystem.namespaces:
            what = "subsystem %s namespace %d" % (subsystem.nqn, ns.nsid)
            path = ns.device.get("path")
            if not ns.enable or not path:
                continue
            if not root.exists(path):
                missing[("ns", (subsystem.nqn, ns.nsid))] = "%s: device %s does not exist" % (what, path)
            elif ns.p2pmem is not None and ns.p2pmem != P2PMEM_NONE and judge.kernel_has_p2pdma():
                try:
                    judge.judge(what, path, judge.kernel_value(what, ns.p2pmem))
                except P2PError as exc:
                    missing[("ns", (subsystem.nqn, ns.nsid))] = exc.message
    for port in target.ports:
        address = local_address(port)
        if address and not address_is_local(address):
            missing[("port", port.portid)] = "port %d: address %s is not on this node" % (port.portid, address)
    return missing


def _needs(target: Target) -> List[str]:
    needs = []
    for subsystem in target.subsystems:
        for ns in subsystem.namespaces:
            if ns.enable and ns.device.get("path"):
                needs.append("device %s" % ns.device["path"])
                if ns.p2pmem is not None and ns.p2pmem != P2PMEM_NONE:
                    needs.append("p2pmem %s for %s" % (ns.p2pmem, ns.device["path"]))
    needs += ["address %s" % address for address in filter(None, map(local_address, target.ports))]
    return needs


def restore(
    root: SysRoot,
    saved: Target,
    timeout: float,
    poll: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    writer: Optional[ConfigfsWriter] = None,
) -> RestoreReport:
    """Make configfs hold ``saved``, after waiting up to ``timeout`` s for what it names.

    Namespaces whose device or provider never came, and ports whose address never came, are
    left out and reported; everything else is restored (purging what is not saved).
    """
    report = RestoreReport(waited_for=_needs(saved))
    if not is_loaded(root):
        report.failed.append("nvmet is not loaded: %s does not exist; modprobe %s" % (
            NVMET, " ".join(transport_modules(saved))))
        return report
    start = clock()
    missing = _missing(root, saved)
    while missing and clock() - start < timeout:
        sleep(poll)
        missing = _missing(root, saved)
    report.waited_seconds = clock() - start
    report.failed = sorted(missing.values())
    ready = saved.copy()
    for subsystem in ready.subsystems:
        subsystem.namespaces = [ns for ns in subsystem.namespaces if ("ns", (subsystem.nqn, ns.nsid)) not in missing]
    ready.ports = [port for port in ready.ports if ("port", port.portid) not in missing]
    try:
        plan = plan_target(ready, read_target(root), P2PJudge(root), purge=True)
        report.actions = len(apply_actions(writer or ConfigfsWriter(root), plan.actions))
    except P2PError as exc:
        report.failed.append(str(exc))
    return report


def main(argv: Sequence[str]) -> int:
    """The node's entry point: ``restore`` (the unit's ExecStart) and ``unit`` (write the unit file)."""
    parser = argparse.ArgumentParser(prog="p2pdma-nvmet")
    commands = parser.add_subparsers(dest="command", required=True)
    restore_cmd = commands.add_parser("restore", help="restore the saved target into configfs")
    restore_cmd.add_argument("--config", default=SAVED_CONFIG)
    restore_cmd.add_argument("--timeout", type=float, default=90)
    restore_cmd.add_argument("--root", default="/")
    restore_cmd.add_argument("--tls-psks", default=TLS_PSK_FILE)
    psks_cmd = commands.add_parser("psks", help="put the saved TLS PSKs the .nvme keyring lacks into it")
    psks_cmd.add_argument("--tls-psks", default=TLS_PSK_FILE)
    unit_cmd = commands.add_parser("unit", help="write the restore unit for the saved target")
    unit_cmd.add_argument("--config", default=SAVED_CONFIG)
    unit_cmd.add_argument("--program", required=True)
    unit_cmd.add_argument("--timeout", type=int, default=90)
    unit_cmd.add_argument("--output", required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "psks":
            inserted = insert_psks(SysRoot("/"), load_psks(args.tls_psks), run_command)
            print("inserted %s" % ", ".join(inserted) if inserted else "present")
            return 0
        saved = load_target(args.config)
        if args.command == "unit":
            written = write_if_changed(args.output, restore_unit(saved, args.program, args.timeout), 0o644)
            print("written %s" % args.output if written else "unchanged")
            return 0
        root = SysRoot(args.root)
        psk_failure = None
        try:
            inserted = insert_psks(root, load_psks(args.tls_psks), run_command) if root.is_live else []
            if inserted:
                print("TLS PSKs put in the .nvme keyring: %s" % ", ".join(inserted), flush=True)
        except P2PError as exc:
            psk_failure = str(exc)
        report = restore(root, saved, args.timeout)
        if psk_failure:
            report.failed.append(psk_failure)
    except P2PError as exc:
        print("FAILED: %s" % exc)
        return 1
    for line in report.lines():
        print(line, flush=True)
    return 1 if report.failed else 0


__all__ = [
    "RESTORE_UNIT",
    "TLS_PSK_FILE",
    "insert_psks",
    "load_psks",
    "psk_identity",
    "run_command",
    "RestoreReport",
    "SAVED_CONFIG",
    "SAVED_MODE",
    "TRANSPORT_MODULES",
    "address_is_local",
    "device_units",
    "load_target",
    "local_address",
    "restore",
    "restore_unit",
    "write_if_changed",
    "holds",
    "main",
    "saved_text",
    "systemd_escape_path",
    "transport_modules",
]
