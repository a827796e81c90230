# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""An NVMe-oF target as records, in nvmetcli's JSON schema plus our extensions.

nvmetcli's ``dump()`` writes ``{"hosts": [...], "ports": [...], "subsystems": [...]}``
with attributes grouped by their configfs prefix: a subsystem's ``attr_*`` files under
``attr``, a namespace's ``device_*`` under ``device``, a port's ``addr_*`` and ``param_*``
under ``addr`` and ``param``, a host's ``dhchap_*`` under ``dhchap``. It never saves
``p2pmem`` or ``buffered_io`` (no prefix group): we add them to each namespace.

Every attribute value is kept as the text configfs shows (``"1"``, ``"not specified"``);
``None`` means "not declared" in a desired record and "file absent" in a current one.
``state`` is only meaningful in desired records: ``present`` or ``absent``.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

PRESENT = "present"
ABSENT = "absent"

# Namespace values the kernel accepts only while the namespace is disabled (EBUSY;
# buffered_io answers EINVAL instead).
NS_DISABLED_ONLY = ("device_path", "device_uuid", "device_nguid", "p2pmem", "buffered_io")
# p2pmem words the user writes, and what the kernel takes and shows for them.
P2PMEM_AUTO = "auto"
P2PMEM_NONE = "none"
P2PMEM_KERNEL = {P2PMEM_AUTO: "1", P2PMEM_NONE: "0"}
# A p2pmem given as an NVMe controller (nvme0), resolved to the controller's PCI address.
NVME_CONTROLLER_NAME = re.compile(r"^nvme\d+$")
# DH-HMAC-CHAP secrets: shown masked in diffs and actions (configfs itself shows them to root).
SECRET_KEYS = ("key", "ctrl_key")
SECRET_MASK = "********"


@dataclass
class Host:
    nqn: str
    dhchap: Dict[str, Optional[str]] = field(default_factory=dict)  # key, ctrl_key, hash, dhgroup
    state: str = PRESENT

    def to_dict(self, hide_secrets: bool = False) -> dict:
        out: Dict[str, Any] = {"nqn": self.nqn}
        dhchap = {
            k: SECRET_MASK if hide_secrets and k in SECRET_KEYS and v else v
            for k, v in sorted(self.dhchap.items()) if v is not None
        }
        if dhchap:
            out["dhchap"] = dhchap
        return out


@dataclass
class AnaGroup:
    grpid: int
    ana_state: Optional[str] = None
    state: str = PRESENT

    def to_dict(self) -> dict:
        return {"grpid": self.grpid, "ana": {"state": self.ana_state}}


@dataclass
class Port:
    portid: int
    addr: Dict[str, Optional[str]] = field(default_factory=dict)  # trtype, adrfam, traddr, trsvcid, treq, tsas
    param: Dict[str, Optional[str]] = field(default_factory=dict)
    subsystems: Optional[List[str]] = None  # NQNs linked; None: not declared
    ana_groups: List[AnaGroup] = field(default_factory=list)
    state: str = PRESENT

    def ana_group(self, grpid: int) -> Optional[AnaGroup]:
        return next((g for g in self.ana_groups if g.grpid == grpid), None)

    def to_dict(self) -> dict:
        return {
            "portid": self.portid,
            "addr": {k: v for k, v in sorted(self.addr.items()) if v is not None},
            "param": {k: v for k, v in sorted(self.param.items()) if v is not None},
            "referrals": [],
            "subsystems": sorted(self.subsystems or []),
            "ana_groups": [g.to_dict() for g in sorted(self.ana_groups, key=lambda g: g.grpid)],
        }


@dataclass
class Namespace:
    nsid: int
    device: Dict[str, Optional[str]] = field(default_factory=dict)  # path, uuid, nguid
    enable: Optional[bool] = None
    ana_grpid: Optional[int] = None
    buffered_io: Optional[bool] = None
    p2pmem: Optional[str] = None  # kernel form: "0", "1" or a BDF (desired: auto, none, BDF, nvmeX)
    state: str = PRESENT

    def value(self, name: str) -> Optional[str]:
        """The configfs text of attribute ``name`` (``device_path``, ``enable``, ...), None when unknown."""
        if name.startswith("device_"):
            return self.device.get(name[len("device_"):])
        raw = getattr(self, name)
        if raw is None:
            return None
        if isinstance(raw, bool):
            return "1" if raw else "0"
        return str(raw)

    def to_dict(self) -> dict:
        out: Dict[str, Any] = {
            "nsid": self.nsid,
            "enable": 1 if self.enable else 0,
            "device": {k: v for k, v in sorted(self.device.items()) if v is not None},
        }
        if self.ana_grpid is not None:
            out["ana_grpid"] = self.ana_grpid
        if self.buffered_io is not None:
            out["buffered_io"] = 1 if self.buffered_io else 0
        if self.p2pmem is not None:
            out["p2pmem"] = p2pmem_word(self.p2pmem)
        return out


@dataclass
class Subsystem:
    nqn: str
    attr: Dict[str, Optional[str]] = field(default_factory=dict)  # allow_any_host, serial, model, version, ...
    allowed_hosts: Optional[List[str]] = None  # None: not declared
    namespaces: List[Namespace] = field(default_factory=list)
    state: str = PRESENT

    def namespace(self, nsid: int) -> Optional[Namespace]:
        return next((ns for ns in self.namespaces if ns.nsid == nsid), None)

    def to_dict(self) -> dict:
        return {
            "nqn": self.nqn,
            "attr": {k: v for k, v in sorted(self.attr.items()) if v is not None},
            "allowed_hosts": sorted(self.allowed_hosts or []),
            "namespaces": [ns.to_dict() for ns in sorted(self.namespaces, key=lambda n: n.nsid)],
        }


@dataclass
class Target:
    """A whole target: what configfs holds, or what the user declared."""

    hosts: List[Host] = field(default_factory=list)
    ports: List[Port] = field(default_factory=list)
    subsystems: List[Subsystem] = field(default_factory=list)

    def host(self, nqn: str) -> Optional[Host]:
        return next((h for h in self.hosts if h.nqn == nqn), None)

    def port(self, portid: int) -> Optional[Port]:
        return next((p for p in self.ports if p.portid == portid), None)

    def subsystem(self, nqn: str) -> Optional[Subsystem]:
        return next((s for s in self.subsystems if s.nqn == nqn), None)

    def copy(self) -> Target:
        return copy.deepcopy(self)

    def to_dict(self, hide_secrets: bool = False) -> dict:
        """nvmetcli's dump() shape, sorted so that two dumps of one state compare equal."""
        return {
            "hosts": [h.to_dict(hide_secrets) for h in sorted(self.hosts, key=lambda h: h.nqn)],
            "ports": [p.to_dict() for p in sorted(self.ports, key=lambda p: p.portid)],
            "subsystems": [s.to_dict() for s in sorted(self.subsystems, key=lambda s: s.nqn)],
        }


def p2pmem_word(kernel_value: str) -> str:
    """What the user writes for a p2pmem value the kernel shows (``1`` -> ``auto``)."""
    for word, value in P2PMEM_KERNEL.items():
        if kernel_value == value:
            return word
    return kernel_value


def _text(value: Any) -> Optional[str]:
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _texts(values: Optional[Dict[str, Any]]) -> Dict[str, Optional[str]]:
    return {str(k): _text(v) for k, v in (values or {}).items() if v is not None}


def _flag(value: Any) -> Optional[bool]:
    """kstrtobool's reading of 1/0, y/n, on/off, true/false."""
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "y", "yes", "on", "true"):
        return True
    if text in ("0", "n", "no", "off", "false"):
        return False
    raise ValueError("%r is not a boolean" % value)


def _int(value: Any) -> Optional[int]:
    return None if value is None else int(value)


def target_from_dict(data: Dict[str, Any], default_state: str = PRESENT) -> Target:
    """A desired target from nvmetcli's JSON schema (as argument_spec hands it over).

    Raises ValueError for values of the wrong kind; the planner's validation turns
    every semantic problem into a P2PError naming the object.
    """
    target = Target()
    for item in data.get("hosts") or []:
        target.hosts.append(
            Host(nqn=item["nqn"], dhchap=_texts(item.get("dhchap")), state=item.get("state") or default_state)
        )
    for item in data.get("ports") or []:
        if item.get("referrals"):
            raise ValueError("port %s: referrals are not managed by this module yet" % item.get("portid"))
        groups = [
            AnaGroup(
                grpid=int(group["grpid"]),
                ana_state=_text((group.get("ana") or {}).get("state")),
                state=group.get("state") or PRESENT,
            )
            for group in item.get("ana_groups") or []
        ]
        subsystems = item.get("subsystems")
        target.ports.append(
            Port(
                portid=int(item["portid"]),
                addr=_texts(item.get("addr")),
                param=_texts(item.get("param")),
                subsystems=None if subsystems is None else [str(s) for s in subsystems],
                ana_groups=groups,
                state=item.get("state") or default_state,
            )
        )
    for item in data.get("subsystems") or []:
        attr = _texts(item.get("attr"))
        if "allow_any_host" in attr:
            attr["allow_any_host"] = _text(_flag(attr["allow_any_host"]))
        hosts = item.get("allowed_hosts")
        subsystem = Subsystem(
            nqn=item["nqn"],
            attr=attr,
            allowed_hosts=None if hosts is None else [str(h) for h in hosts],
            state=item.get("state") or default_state,
        )
        for ns in item.get("namespaces") or []:
            enable = _flag(ns.get("enable"))
            subsystem.namespaces.append(
                Namespace(
                    nsid=int(ns["nsid"]),
                    device=_texts(ns.get("device")),
                    enable=True if enable is None else enable,
                    ana_grpid=_int(ns.get("ana_grpid")),
                    buffered_io=_flag(ns.get("buffered_io")),
                    p2pmem=_text(ns.get("p2pmem")),
                    state=ns.get("state") or PRESENT,
                )
            )
        target.subsystems.append(subsystem)
    return target


__all__ = [
    "ABSENT",
    "AnaGroup",
    "Host",
    "NS_DISABLED_ONLY",
    "Namespace",
    "P2PMEM_AUTO",
    "P2PMEM_KERNEL",
    "P2PMEM_NONE",
    "PRESENT",
    "SECRET_KEYS",
    "SECRET_MASK",
    "Port",
    "Subsystem",
    "Target",
    "p2pmem_word",
    "target_from_dict",
]
