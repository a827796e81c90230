# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PCI addresses and the binary configuration space, decoded the way the kernel reads them.

The decoder follows drivers/pci/pci.c: the capability list walk of
``__pci_find_next_cap_ttl`` (48 steps, pointers below 0x40 end it) and the extended
capability walk of ``pci_find_next_ext_capability`` (starts at 0x100, 480 steps, a zero
header means none, a next pointer below 0x100 ends it). ACS redirect is the test of
``pci_bridge_has_acs_redir`` in drivers/pci/p2pdma.c: ACS Control & (RR | CR | EC).

What a reader can see depends on who reads: sysfs returns only the first 64 bytes of
``config`` to a process without CAP_SYS_ADMIN. The decoder therefore tells "absent" from
"could not be read" for every capability it reports.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import Dict, List, Optional

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError

LEGACY_CONFIG_BYTES = 256
EXTENDED_CONFIG_BYTES = 4096

PCI_CAP_ID_EXP = 0x10
PCI_EXT_CAP_ID_ACS = 0x000D
PCI_EXT_CAP_ID_SRIOV = 0x0010

ACS_SV = 0x0001
ACS_TB = 0x0002
ACS_RR = 0x0004
ACS_CR = 0x0008
ACS_UF = 0x0010
ACS_EC = 0x0020
ACS_DT = 0x0040
ACS_REDIRECT_BITS = ACS_RR | ACS_CR | ACS_EC
ACS_BIT_NAMES = (
    (ACS_SV, "SV"),
    (ACS_TB, "TB"),
    (ACS_RR, "RR"),
    (ACS_CR, "CR"),
    (ACS_UF, "UF"),
    (ACS_EC, "EC"),
    (ACS_DT, "DT"),
)

# PCIe Capabilities register bits 7:4 (PCI_EXP_TYPE_* in include/uapi/linux/pci_regs.h).
PORT_TYPES: Dict[int, str] = {
    0x0: "endpoint",
    0x1: "legacy_endpoint",
    0x4: "root_port",
    0x5: "switch_upstream",
    0x6: "switch_downstream",
    0x7: "pcie_to_pci_bridge",
    0x8: "pci_to_pcie_bridge",
    0x9: "rciep",
    0xA: "rc_event_collector",
}
PORT_TYPE_CODES: Dict[str, int] = {name: code for code, name in PORT_TYPES.items()}

# Link speed encodings of LNKCAP/LNKSTA bits 3:0, in GT/s (pcie_link_speed[] in probe.c).
LINK_SPEEDS_GTS: Dict[int, float] = {1: 2.5, 2: 5.0, 3: 8.0, 4: 16.0, 5: 32.0, 6: 64.0}

HEADER_TYPE_NORMAL = 0
HEADER_TYPE_BRIDGE = 1
HEADER_TYPE_CARDBUS = 2

_CAP_TTL = 48
_EXT_CAP_TTL = (EXTENDED_CONFIG_BYTES - LEGACY_CONFIG_BYTES) // 8

_BDF_RE = re.compile(
    r"^(?:(?P<domain>[0-9a-fA-F]{1,8}):)?(?P<bus>[0-9a-fA-F]{1,2}):(?P<dev>[0-9a-fA-F]{1,2})\.(?P<fn>[0-7])$"
)


def parse_bdf(text: str) -> str:
    """The canonical ``dddd:bb:dd.f`` form of a PCI address (domain 0000 when omitted).

    Raises P2PError naming the text and the expected form when it is not an address.
    """
    candidate = (text or "").strip()
    match = _BDF_RE.match(candidate)
    if not match or int(match.group("dev"), 16) > 0x1F:
        raise P2PError(
            "%r is not a PCI address" % text,
            fix="give it as domain:bus:device.function, e.g. 0000:01:00.0 (or bus:device.function, e.g. 01:00.0)",
        )
    domain = int(match.group("domain") or "0", 16)
    return "%04x:%02x:%02x.%d" % (
        domain,
        int(match.group("bus"), 16),
        int(match.group("dev"), 16),
        int(match.group("fn")),
    )


def is_bdf(text: str) -> bool:
    """True when ``text`` is already a canonical sysfs PCI device name."""
    return bool(_CANONICAL_RE.match(text))


_CANONICAL_RE = re.compile(r"^[0-9a-f]{4,8}:[0-9a-f]{2}:[0-1][0-9a-f]\.[0-7]$")


def bdf_sort_key(bdf: str) -> tuple:
    """Numeric order of canonical addresses (domain, bus, device, function)."""
    domain, bus, rest = bdf.split(":")
    dev, fn = rest.split(".")
    return (int(domain, 16), int(bus, 16), int(dev, 16), int(fn))


def devfn_of(bdf: str) -> int:
    """PCI_DEVFN(slot, func) of a canonical address."""
    rest = bdf.rsplit(":", 1)[1]
    dev, fn = rest.split(".")
    return (int(dev, 16) << 3) | int(fn)


def acs_flag_names(bits: int) -> List[str]:
    return [name for bit, name in ACS_BIT_NAMES if bits & bit]


@dataclass(frozen=True)
class AcsState:
    """The ACS extended capability of one function, as read from its config space.

    ``present`` False means the function has no ACS capability (known, not guessed);
    a function whose ACS could not be read has no AcsState at all.
    """

    present: bool
    offset: int = 0
    cap: int = 0
    ctrl: int = 0

    @property
    def redirects(self) -> bool:
        """What pci_bridge_has_acs_redir() answers: RR, CR or EC enabled."""
        return self.present and bool(self.ctrl & ACS_REDIRECT_BITS)

    @property
    def redirect_flags(self) -> List[str]:
        return acs_flag_names(self.ctrl & ACS_REDIRECT_BITS)

    @property
    def capability_flags(self) -> List[str]:
        return acs_flag_names(self.cap)

    @property
    def control_flags(self) -> List[str]:
        return acs_flag_names(self.ctrl)

    def to_dict(self) -> dict:
        return {
            "present": self.present,
            "offset": self.offset,
            "cap": self.cap,
            "ctrl": self.ctrl,
            "capability": self.capability_flags,
            "control": self.control_flags,
            "redirects": self.redirects,
        }


NO_ACS = AcsState(present=False)


@dataclass(frozen=True)
class LinkInfo:
    """Link speed (GT/s) and width, current and maximum; None where unknown."""

    current_speed: Optional[float] = None
    current_width: Optional[int] = None
    max_speed: Optional[float] = None
    max_width: Optional[int] = None

    def to_dict(self) -> dict:
        return {
            "current_speed": self.current_speed,
            "current_width": self.current_width,
            "max_speed": self.max_speed,
            "max_width": self.max_width,
        }

    def describe(self) -> str:
        if self.current_speed is None and self.max_speed is None:
            return "no link"
        current = link_text(self.current_speed, self.current_width)
        return "%s (max %s)" % (current, link_text(self.max_speed, self.max_width))


def link_text(speed: Optional[float], width: Optional[int]) -> str:
    """One link as lspci words it: ``8 GT/s x4``, with ``?`` for what is unknown."""
    return "%s x%s" % (("%g GT/s" % speed) if speed else "?", width or "?")


class ConfigSpace:
    """A decoded copy of a function's configuration space (the sysfs ``config`` file).

    ``size`` is the size the file claims (its stat size; sysfs reports 256 or 4096), when
    known. Fewer bytes than that means the reader was not privileged.
    """

    __slots__ = (
        "data",
        "size",
        "_cap_offsets",
        "_ext_caps",
    )

    def __init__(self, data: bytes, size: Optional[int] = None) -> None:
        self.data = bytes(data)
        self.size = size
        self._cap_offsets: Optional[Dict[int, int]] = None
        self._ext_caps: Optional[Dict[int, int]] = None

    # -- raw access -------------------------------------------------------------------
    def _u8(self, off: int) -> Optional[int]:
        return self.data[off] if off < len(self.data) else None

    def _u16(self, off: int) -> Optional[int]:
        if off + 2 > len(self.data):
            return None
        return int(struct.unpack_from("<H", self.data, off)[0])

    def _u32(self, off: int) -> Optional[int]:
        if off + 4 > len(self.data):
            return None
        return int(struct.unpack_from("<I", self.data, off)[0])

    # -- what could be read ----------------------------------------------------------
    @property
    def truncated(self) -> bool:
        """True when the reader saw less than the kernel has (an unprivileged read).

        The kernel gives CAP_SYS_ADMIN the whole space (256 or 4096 bytes) and everyone
        else 64 (128 for CardBus), so anything shorter than 256 bytes was cut.
        """
        if len(self.data) < LEGACY_CONFIG_BYTES:
            return True
        return self.size is not None and len(self.data) < self.size

    @property
    def readable_extended(self) -> bool:
        """True when the extended space (0x100 and up) is in the data."""
        return len(self.data) > LEGACY_CONFIG_BYTES

    @property
    def extended_known(self) -> bool:
        """True when the extended capabilities the kernel sees are known.

        A 256-byte config space read in full is the kernel's own view of a function
        without extended config space (cfg_size 256): pci_find_ext_capability() finds
        nothing there either, so "no ACS" is then an answer, not a guess.
        """
        if self.readable_extended:
            return True
        return len(self.data) == LEGACY_CONFIG_BYTES and not self.truncated

    # -- header ----------------------------------------------------------------------
    @property
    def vendor(self) -> Optional[int]:
        return self._u16(0x00)

    @property
    def device(self) -> Optional[int]:
        return self._u16(0x02)

    @property
    def status(self) -> Optional[int]:
        return self._u16(0x06)

    @property
    def subsystem_vendor(self) -> Optional[int]:
        """Subsystem Vendor ID of a type 0 header (a bridge has none at 0x2C)."""
        return self._u16(0x2C) if self.header_type == HEADER_TYPE_NORMAL else None

    @property
    def subsystem_device(self) -> Optional[int]:
        return self._u16(0x2E) if self.header_type == HEADER_TYPE_NORMAL else None

    @property
    def class_code(self) -> Optional[int]:
        """24-bit class (base, sub, prog-if), as sysfs ``class`` shows it."""
        if len(self.data) < 0x0C:
            return None
        return self.data[0x09] | (self.data[0x0A] << 8) | (self.data[0x0B] << 16)

    @property
    def header_type(self) -> Optional[int]:
        value = self._u8(0x0E)
        return None if value is None else value & 0x7F

    @property
    def is_bridge(self) -> bool:
        return self.header_type in (HEADER_TYPE_BRIDGE, HEADER_TYPE_CARDBUS)

    # -- capability list -------------------------------------------------------------
    def capabilities(self) -> Optional[Dict[int, int]]:
        """Capability ID -> offset (first occurrence), None when the list runs past the data."""
        if self._cap_offsets is not None:
            return self._cap_offsets
        status = self.status
        if status is None:
            return None
        found: Dict[int, int] = {}
        if not status & 0x10:
            self._cap_offsets = found
            return found
        start = 0x14 if self.header_type == HEADER_TYPE_CARDBUS else 0x34
        pos = self._u8(start)
        if pos is None:
            return None
        ttl = _CAP_TTL
        while ttl:
            ttl -= 1
            if pos < 0x40:
                break
            pos &= ~3
            entry = self._u16(pos)
            if entry is None:
                return None
            cap_id = entry & 0xFF
            if cap_id == 0xFF:
                break
            found.setdefault(cap_id, pos)
            pos = entry >> 8
        self._cap_offsets = found
        return found

    @property
    def pcie_offset(self) -> Optional[int]:
        caps = self.capabilities()
        return None if caps is None else caps.get(PCI_CAP_ID_EXP)

    @property
    def port_type_code(self) -> Optional[int]:
        pos = self.pcie_offset
        if pos is None:
            return None
        flags = self._u16(pos + 2)
        return None if flags is None else (flags >> 4) & 0xF

    @property
    def port_type(self) -> Optional[str]:
        """The PCIe device/port type name, None for conventional PCI or when unreadable."""
        code = self.port_type_code
        if code is None:
            return None
        return PORT_TYPES.get(code, "unknown_%x" % code)

    @property
    def link(self) -> Optional[LinkInfo]:
        """Link capabilities and status from the PCIe capability, None when not readable."""
        pos = self.pcie_offset
        if pos is None:
            return None
        lnkcap = self._u32(pos + 0x0C)
        lnksta = self._u16(pos + 0x12)
        if lnkcap is None or lnksta is None:
            return None
        if self.port_type in ("rciep", "rc_event_collector"):
            return LinkInfo()
        # pcie_get_speed_cap(): the Supported Link Speeds vector of LNKCAP2 when non-zero.
        max_code = lnkcap & 0xF
        lnkcap2 = self._u32(pos + 0x2C) or 0
        vector = (lnkcap2 >> 1) & 0x7F
        if vector:
            max_code = vector.bit_length()
        return LinkInfo(
            current_speed=LINK_SPEEDS_GTS.get(lnksta & 0xF),
            current_width=((lnksta >> 4) & 0x3F) or None,
            max_speed=LINK_SPEEDS_GTS.get(max_code),
            max_width=((lnkcap >> 4) & 0x3F) or None,
        )

    # -- extended capabilities -------------------------------------------------------
    def extended_capabilities(self) -> Optional[Dict[int, int]]:
        """Extended capability ID -> offset; None when the extended space is unknown."""
        if self._ext_caps is not None:
            return self._ext_caps
        if not self.extended_known:
            return None
        found: Dict[int, int] = {}
        if not self.readable_extended:
            self._ext_caps = found
            return found
        pos = LEGACY_CONFIG_BYTES
        header = self._u32(pos)
        if header is None or header == 0:
            self._ext_caps = found
            return found
        ttl = _EXT_CAP_TTL
        while ttl > 0:
            ttl -= 1
            found.setdefault(header & 0xFFFF, pos)
            pos = (header >> 20) & 0xFFC
            if pos < LEGACY_CONFIG_BYTES:
                break
            header = self._u32(pos)
            if header is None:
                break
        self._ext_caps = found
        return found

    @property
    def sriov_vf_device(self) -> Optional[int]:
        """The SR-IOV capability's VF Device ID (offset 0x1a), None without one."""
        caps = self.extended_capabilities()
        if not caps or PCI_EXT_CAP_ID_SRIOV not in caps:
            return None
        return self._u16(caps[PCI_EXT_CAP_ID_SRIOV] + 0x1A)

    @property
    def acs(self) -> Optional[AcsState]:
        """The ACS capability (``present`` False when there is none); None when unknown."""
        caps = self.extended_capabilities()
        if caps is None:
            return None
        pos = caps.get(PCI_EXT_CAP_ID_ACS)
        if pos is None:
            return NO_ACS
        cap = self._u16(pos + 4)
        ctrl = self._u16(pos + 6)
        if cap is None or ctrl is None:
            return None
        return AcsState(present=True, offset=pos, cap=cap, ctrl=ctrl)
