# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks of a declared target before anything is planned or written.

Every name that becomes a configfs path component (host and subsystem NQNs, port ids,
nsids, ANA group ids) and every value the kernel would refuse is checked here, so that
nothing from the input reaches configfs unchecked and a bad value fails before any change.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from typing import Dict, List, Optional, Set

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.model import (
    ABSENT,
    NVME_CONTROLLER_NAME,
    P2PMEM_AUTO,
    P2PMEM_NONE,
    Namespace,
    Port,
    Subsystem,
    Target,
)
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.pci import parse_bdf

NQN_MAX_BYTES = 223  # NVMF_NQN_SIZE
DISCOVERY_NQN = "nqn.2014-08.org.nvmexpress.discovery"
NSID_MAX = 0xFFFFFFFE  # 0 and NVME_NSID_ALL (0xffffffff) are refused by nvmet_ns_make()
ANA_GRPID_MAX = 128  # NVMET_MAX_ANAGRPS
PORTID_MAX = 0xFFFF  # kstrtou16 in nvmet_ports_make()

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
# NVMe base spec 4.5: nqn.yyyy-mm.<reverse domain>:<anything>, or the UUID form.
_NQN_RE = re.compile(r"^nqn\.(\d{4})-(0[1-9]|1[0-2])\.%s(?:\.%s)*:\S.*$" % (_LABEL, _LABEL))
_UUID_NQN_RE = re.compile(r"^nqn\.2014-08\.org\.nvmexpress:uuid:[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")
_UUID_RE = re.compile(r"^[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")
_NGUID_RE = re.compile(r"^(?:[0-9a-fA-F]{2}[-:]?){15}[0-9a-fA-F]{2}$")
_FC_ADDR_RE = re.compile(r"^nn-0x[0-9a-fA-F]{16}:pn-0x[0-9a-fA-F]{16}$")
_DHCHAP_KEY_RE = re.compile(r"^DHHC-1:0[0-3]:[A-Za-z0-9+/]+={0,2}:$")

TRTYPES = ("rdma", "tcp", "loop", "fc")
# nvmetcli saves a loop port's unset adrfam, traddr, trsvcid and tsas as "": empty means "not set" here.
ADRFAMS = {"rdma": ("ipv4", "ipv6", "ib"), "tcp": ("ipv4", "ipv6"), "fc": ("fc",), "loop": ("loop",)}
TREQ = ("not specified", "required", "not required")
TSAS = {"tcp": ("none", "tls1.3"), "rdma": ("connected", "datagram")}
ANA_STATES = ("optimized", "non-optimized", "inaccessible", "persistent-loss", "change")
DHCHAP_HASHES = ("hmac(sha256)", "hmac(sha384)", "hmac(sha512)")
DHCHAP_GROUPS = ("null", "ffdhe2048", "ffdhe3072", "ffdhe4096", "ffdhe6144", "ffdhe8192")
SERIAL_MAX = 20  # NVMET_SN_MAX_SIZE
MODEL_MAX = 40  # NVMET_MN_MAX_SIZE


def check_nqn(nqn: str, what: str) -> None:
    """An NQN usable as a configfs directory name and accepted by initiators."""
    fix = "use nqn.yyyy-mm.<reverse domain>:<name> (e.g. nqn.2026-01.com.example:store1) or " \
        "nqn.2014-08.org.nvmexpress:uuid:<uuid>, at most %d bytes" % NQN_MAX_BYTES
    if len(nqn.encode("utf-8")) > NQN_MAX_BYTES:
        raise P2PError("%s NQN %r is %d bytes, more than the %d the NVMe spec allows"
                       % (what, nqn[:40] + "...", len(nqn.encode("utf-8")), NQN_MAX_BYTES), fix=fix)
    if "/" in nqn or "\x00" in nqn or "\n" in nqn:
        raise P2PError("%s NQN %r contains '/', a newline or NUL, which cannot name a configfs directory"
                       % (what, nqn), fix=fix)
    if not (_UUID_NQN_RE.match(nqn) or _NQN_RE.match(nqn)):
        raise P2PError("%s NQN %r is not in the NVMe spec's format" % (what, nqn), fix=fix)


def check_device_path(path: str, what: str) -> None:
    fix = "give the absolute path of a block device or file, e.g. /dev/disk/by-path/pci-0000:05:00.0-nvme-1"
    if not path.startswith("/"):
        raise P2PError("%s: device path %r is not absolute" % (what, path), fix=fix)
    if ".." in path.split("/") or posixpath.normpath(path) != path.rstrip("/") or "\n" in path or "\x00" in path:
        raise P2PError("%s: device path %r is not a plain absolute path (no '..', '//', newline or NUL)"
                       % (what, path), fix=fix)


def validate(desired: Target, current: Target) -> None:
    """Raise P2PError for the first problem in ``desired``; ``current`` tells which names exist."""
    _unique(desired)
    for host in desired.hosts:
        check_nqn(host.nqn, "host")
        if host.state != ABSENT:
            _check_dhchap(host.nqn, host.dhchap)
    present_hosts = {h.nqn for h in current.hosts} | {h.nqn for h in desired.hosts if h.state != ABSENT}
    present_hosts -= {h.nqn for h in desired.hosts if h.state == ABSENT}
    present_subsystems = {s.nqn for s in current.subsystems} | {
        s.nqn for s in desired.subsystems if s.state != ABSENT
    }
    present_subsystems -= {s.nqn for s in desired.subsystems if s.state == ABSENT}
    for subsystem in desired.subsystems:
        if subsystem.nqn == DISCOVERY_NQN:
            raise P2PError("subsystem %s is the discovery NQN, which the kernel reserves" % subsystem.nqn,
                           fix="choose another NQN for the subsystem")
        check_nqn(subsystem.nqn, "subsystem")
        if subsystem.state != ABSENT:
            _check_subsystem(subsystem, present_hosts)
    for port in desired.ports:
        if not 0 <= port.portid <= PORTID_MAX:
            raise P2PError("port %d: the port id must be 0..%d (kstrtou16)" % (port.portid, PORTID_MAX),
                           fix="choose a port id in 0..65535")
        if port.state != ABSENT:
            _check_port(port, present_subsystems)


def _unique(desired: Target) -> None:
    """Every name declared twice, in one error, so that one correction fixes them all."""
    problems: List[str] = []
    fixes: List[str] = []

    def once(kind: str, names: list, fix: str) -> None:
        seen: Set[str] = set()
        for name in names:
            if name in seen:
                problems.append("%s %s is declared twice" % (kind, name))
                if fix not in fixes:
                    fixes.append(fix)
            seen.add(name)

    once("host", [h.nqn for h in desired.hosts], "declare each host once")
    once("port id", [str(p.portid) for p in desired.ports], "give each port its own id")
    once("subsystem", [s.nqn for s in desired.subsystems], "declare each subsystem once")
    for subsystem in desired.subsystems:
        once("nsid", [str(ns.nsid) for ns in subsystem.namespaces],
             "give each namespace of subsystem %s its own nsid" % subsystem.nqn)
    for port in desired.ports:
        once("ANA group", [str(g.grpid) for g in port.ana_groups], "declare each ANA group of port %d once"
             % port.portid)
    if problems:
        raise P2PError("; ".join(problems), fix="; ".join(fixes))


def _check_dhchap(nqn: str, dhchap: Dict[str, Optional[str]]) -> None:
    for name in ("key", "ctrl_key"):
        value = dhchap.get(name)
        if value and not _DHCHAP_KEY_RE.match(value):
            raise P2PError("host %s: dhchap %s is not a DH-HMAC-CHAP secret" % (nqn, name),
                           fix="generate one with 'nvme gen-dhchap-key' (DHHC-1:0N:<base64>:)")
    if dhchap.get("ctrl_key") and not dhchap.get("key"):
        raise P2PError("host %s: a dhchap ctrl_key needs a host key" % nqn, fix="set dhchap.key as well")
    _choice("host %s: dhchap hash" % nqn, dhchap.get("hash"), DHCHAP_HASHES)
    _choice("host %s: dhchap dhgroup" % nqn, dhchap.get("dhgroup"), DHCHAP_GROUPS)


def _choice(what: str, value: Optional[str], choices: tuple) -> None:
    if value is not None and value not in choices:
        raise P2PError("%s %r is not one the kernel knows" % (what, value),
                       fix="use one of: %s" % ", ".join(repr(c) for c in choices))


def _check_subsystem(subsystem: Subsystem, present_hosts: Set[str]) -> None:
    name = "subsystem %s" % subsystem.nqn
    attr = subsystem.attr
    if attr.get("allow_any_host") == "1" and subsystem.allowed_hosts:
        raise P2PError("%s: allow_any_host and allowed_hosts exclude each other (the kernel answers EINVAL)" % name,
                       fix="drop allow_any_host, or empty allowed_hosts")
    for host in subsystem.allowed_hosts or []:
        check_nqn(host, "%s: allowed host" % name)
        if host not in present_hosts:
            raise P2PError("%s: allowed host %s is not a host on the target" % (name, host),
                           fix="declare it under hosts")
    serial = attr.get("serial")
    if serial is not None and not (0 < len(serial) <= SERIAL_MAX and serial.isascii() and serial.isprintable()):
        raise P2PError("%s: serial %r must be 1..%d printable ASCII characters" % (name, serial, SERIAL_MAX),
                       fix="shorten or correct the serial")
    model = attr.get("model")
    if model is not None and not (0 < len(model) <= MODEL_MAX and model.isascii() and model.isprintable()):
        raise P2PError("%s: model %r must be 1..%d printable ASCII characters" % (name, model, MODEL_MAX),
                       fix="shorten or correct the model")
    version = attr.get("version")
    if version is not None and not re.match(r"^\d+\.\d+(\.\d+)?$", version):
        raise P2PError("%s: version %r is not major.minor[.tertiary]" % (name, version), fix="e.g. 1.3")
    for ns in subsystem.namespaces:
        _check_namespace(subsystem.nqn, ns)


def _check_namespace(nqn: str, ns: Namespace) -> None:
    name = "subsystem %s namespace %d" % (nqn, ns.nsid)
    if not 1 <= ns.nsid <= NSID_MAX:
        raise P2PError("%s: the nsid must be 1..%d" % (name, NSID_MAX), fix="choose an nsid in that range")
    if ns.state == ABSENT:
        return
    path = ns.device.get("path")
    if path is None:
        raise P2PError("%s has no device path" % name, fix="set device.path")
    check_device_path(path, name)
    uuid = ns.device.get("uuid")
    if uuid is not None and not _UUID_RE.match(uuid):
        raise P2PError("%s: device uuid %r is not a UUID" % (name, uuid),
                       fix="give one like 7f2c1f1e-0b7d-4f4e-9c55-9d1c7a2b3e4f (uuidgen)")
    nguid = ns.device.get("nguid")
    if nguid is not None and not _NGUID_RE.match(nguid):
        raise P2PError("%s: device nguid %r is not 16 bytes of hex" % (name, nguid),
                       fix="give 32 hex digits, optionally grouped like a UUID")
    if ns.ana_grpid is not None and not 1 <= ns.ana_grpid <= ANA_GRPID_MAX:
        raise P2PError("%s: ana_grpid %d is not 1..%d" % (name, ns.ana_grpid, ANA_GRPID_MAX),
                       fix="use an ANA group id in 1..128")
    p2pmem = ns.p2pmem
    if p2pmem is not None and p2pmem not in (P2PMEM_AUTO, P2PMEM_NONE) and ":" in p2pmem:
        try:
            parse_bdf(p2pmem)
        except P2PError as err:
            raise P2PError("%s: p2pmem %s" % (name, err.message), fix=err.fix) from err
    elif p2pmem is not None and p2pmem not in (P2PMEM_AUTO, P2PMEM_NONE) and not NVME_CONTROLLER_NAME.match(p2pmem):
        raise P2PError("%s: p2pmem %r is neither auto, none, a PCI address nor an NVMe controller" % (name, p2pmem),
                       fix="use auto, none, a PCI address such as 0000:03:00.0, or a controller such as nvme0")


def _check_port(port: Port, present_subsystems: Set[str]) -> None:
    name = "port %d" % port.portid
    addr = port.addr
    trtype = addr.get("trtype")
    if trtype is None:
        raise P2PError("%s has no addr.trtype" % name, fix="set addr.trtype to one of %s" % ", ".join(TRTYPES))
    _choice("%s: trtype" % name, trtype, TRTYPES)
    adrfam = addr.get("adrfam")
    if adrfam and adrfam not in ADRFAMS[trtype]:
        raise P2PError("%s: adrfam %r does not go with trtype %s" % (name, adrfam, trtype),
                       fix="use adrfam %s" % " or ".join(ADRFAMS[trtype]))
    traddr = addr.get("traddr")
    if trtype in ("tcp", "rdma") and adrfam in ("ipv4", "ipv6"):
        if traddr is None:
            raise P2PError("%s: a %s port needs addr.traddr" % (name, trtype), fix="set the IP address to listen on")
        try:
            ip = ipaddress.ip_address(traddr)
        except ValueError as exc:
            raise P2PError("%s: traddr %r is not an IP address" % (name, traddr),
                           fix="give an %s address" % adrfam) from exc
        if ip.version != (4 if adrfam == "ipv4" else 6):
            raise P2PError("%s: traddr %s is not an %s address" % (name, traddr, adrfam),
                           fix="match adrfam and traddr")
    if trtype == "fc" and traddr and not _FC_ADDR_RE.match(traddr):
        raise P2PError("%s: traddr %r is not an FC address" % (name, traddr), fix="nn-0x<16 hex>:pn-0x<16 hex>")
    trsvcid = addr.get("trsvcid")
    valid_port = trsvcid is not None and trsvcid.isdigit() and 1 <= int(trsvcid) <= 65535
    if trtype in ("tcp", "rdma") and not valid_port:
        raise P2PError("%s: trsvcid %r is not a TCP/UDP port 1..65535" % (name, trsvcid),
                       fix="use 4420, the NVMe-oF port (8009 for discovery)")
    _choice("%s: treq" % name, addr.get("treq"), TREQ)
    tsas = addr.get("tsas")
    if tsas:
        _choice("%s: tsas for %s" % (name, trtype), tsas, TSAS.get(trtype, ()))
    for group in port.ana_groups:
        if not 1 <= group.grpid <= ANA_GRPID_MAX:
            raise P2PError("%s: ANA group %d is not 1..%d" % (name, group.grpid, ANA_GRPID_MAX),
                           fix="use ANA group ids 2..128 (1 is the port's default group)")
        if group.grpid == 1 and group.state == ABSENT:
            raise P2PError("%s: ANA group 1 is the port's default group, the kernel never removes it (EPERM)"
                           % name, fix="leave group 1 present; set its ana.state instead")
        _choice("%s: ANA group %d state" % (name, group.grpid), group.ana_state, ANA_STATES)
    for nqn in port.subsystems or []:
        if nqn not in present_subsystems:
            raise P2PError("%s: subsystem %s is not on the target" % (name, nqn), fix="declare it under subsystems")


def is_loopback_port(port: Port) -> bool:
    """Whether only this node can reach the port: trtype loop, or tcp/rdma on a loopback address."""
    if port.addr.get("trtype") == "loop":
        return True
    try:
        return ipaddress.ip_address(port.addr.get("traddr") or "").is_loopback
    except ValueError:
        return False


def exposures(target: Target) -> List[str]:
    """A warning for each subsystem that lets any host in through a port other hosts can reach."""
    warnings = []
    for subsystem in target.subsystems:
        if subsystem.attr.get("allow_any_host") != "1":
            continue
        for port in target.ports:
            if subsystem.nqn in (port.subsystems or []) and not is_loopback_port(port):
                warnings.append(
                    "subsystem %s allows any host (allow_any_host) and is offered on port %d (%s %s:%s): every "
                    "host that reaches that address can connect and read and write its namespaces; list the hosts "
                    "in allowed_hosts instead" % (subsystem.nqn, port.portid, port.addr.get("trtype"),
                                                  port.addr.get("traddr"), port.addr.get("trsvcid"))
                )
    return warnings


# Block device names the kernel hands out in probe or setup order: NVMe namespaces (controllers probe
# asynchronously), SCSI and virtio disks, loop and dm devices. The same name can be another disk at the
# next boot, and the saved configuration is restored by name.
_ORDER_NAMED_DEVICE = re.compile(r"^/dev/(nvme\d+n\d+|sd[a-z]+|vd[a-z]+|xvd[a-z]+|loop\d+|dm-\d+)$")


def unstable_names(target: Target) -> List[str]:
    """A warning for each declared namespace named by what the kernel numbers in probe order."""
    warnings = []
    for subsystem in target.subsystems:
        for ns in subsystem.namespaces:
            what = "namespace %d of %s" % (ns.nsid, subsystem.nqn)
            path = ns.device.get("path") or ""
            if _ORDER_NAMED_DEVICE.match(path):
                warnings.append(
                    "%s: device %s is a name the kernel gives in probe order, so after a reboot it can be another "
                    "disk, and the restore at boot exports whatever disk has the name then; name it by "
                    "/dev/disk/by-id/ (the drive's model and serial) or /dev/disk/by-path/ (its PCI address and "
                    "namespace)" % (what, path)
                )
            if ns.p2pmem is not None and NVME_CONTROLLER_NAME.match(ns.p2pmem):
                warnings.append(
                    "%s: p2pmem %s names a controller in probe order; it is resolved to its PCI address on each "
                    "run, which can be another drive after a reboot; give the provider's PCI address "
                    "(p2pctl topology lists them)" % (what, ns.p2pmem)
                )
    return warnings
