# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The P2PDMA rules of a given kernel release: host-bridge whitelist, CPU rule, ACS parameters.

Read from drivers/pci/p2pdma.c and drivers/pci/pci.c of the releases themselves:
Debian's linux-source-6.1 (6.1.192) and linux-source-6.12 (6.12.117), and the mainline
tree. From 6.1 to mainline, calc_map_type_and_dist(), pci_host_bridge_dev(),
host_bridge_whitelist() and cpu_supports_p2pdma() did not change; what changes between
releases is the whitelist table (and, in the lookup, PCI_ANY_ID matching once the
Google entry needed it) and the command-line parameters that set ACS.

A whitelist entry is listed with the first mainline release that has it. Entries that
were also marked for stable can turn up in a later stable update of an older series; the
message for an unlisted host bridge says so rather than guessing a sublevel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

Version = Tuple[int, int, int]

PCI_VENDOR_ID_AMD = 0x1022
PCI_VENDOR_ID_INTEL = 0x8086
PCI_VENDOR_ID_GOOGLE = 0x1AE0
PCI_VENDOR_ID_NVIDIA = 0x10DE
PCI_VENDOR_ID_ZHAOXIN = 0x1D17

# The oldest series whose p2pdma.c these rules were read from; older kernels use other code.
OLDEST_COVERED: Version = (6, 1, 0)
# Newest mainline release the table was read from (the PCI tree ahead of it included).
NEWEST_KNOWN: Version = (7, 2, 0)


@dataclass(frozen=True)
class WhitelistEntry:
    """One row of pci_p2pdma_whitelist[]: the root-bus device's vendor and device."""

    vendor: int
    device: Optional[int]  # None: PCI_ANY_ID
    req_same_host_bridge: bool
    since: Version  # first mainline release with the entry
    what: str
    stable_backport: bool = False  # commit carried "Cc: stable": older series may gain it

    def matches(self, vendor: int, device: int) -> bool:
        return vendor == self.vendor and (self.device is None or device == self.device)

    @property
    def ident(self) -> str:
        return "%04x:%s" % (self.vendor, "any" if self.device is None else "%04x" % self.device)

    def to_dict(self) -> dict:
        return {
            "vendor": "%04x" % self.vendor,
            "device": None if self.device is None else "%04x" % self.device,
            "req_same_host_bridge": self.req_same_host_bridge,
            "since": version_text(self.since),
            "what": self.what,
        }


def _intel(device: int, what: str, since: Version, same: bool = False, stable: bool = False) -> WhitelistEntry:
    return WhitelistEntry(PCI_VENDOR_ID_INTEL, device, same, since, what, stable)


# In the kernel's order: the lookup stops at the first vendor/device match.
ALL_ENTRIES: Tuple[WhitelistEntry, ...] = (
    _intel(0x3C00, "Intel Xeon E5/Core i7", (5, 2, 0), same=True),
    _intel(0x3C01, "Intel Xeon E5/Core i7", (5, 2, 0), same=True),
    _intel(0x2F00, "Intel Xeon E7 v3/Xeon E5 v3/Core i7", (5, 2, 0), same=True),
    _intel(0x2F01, "Intel Xeon E7 v3/Xeon E5 v3/Core i7", (5, 2, 0), same=True),
    _intel(0x2030, "Intel Skylake-E", (5, 2, 0)),
    _intel(0x2031, "Intel Skylake-E", (5, 2, 0)),
    _intel(0x2032, "Intel Skylake-E", (5, 2, 0)),
    _intel(0x2033, "Intel Skylake-E", (5, 2, 0)),
    _intel(0x2020, "Intel Skylake-E", (5, 2, 0)),
    _intel(0x09A2, "Intel Xeon since Ice Lake (3rd Gen Xeon Scalable)", (5, 13, 0)),
    _intel(0x0B25, "Intel DSA (Sapphire Rapids)", (7, 2, 0), stable=True),
    _intel(0x0CFE, "Intel IAX (Sapphire Rapids)", (7, 2, 0), stable=True),
    _intel(0x11FB, "Intel DSA (Granite Rapids-D)", (7, 2, 0), stable=True),
    _intel(0x1212, "Intel DSA (Diamond Rapids)", (7, 2, 0), stable=True),
    _intel(0x1216, "Intel IAA (Diamond Rapids)", (7, 2, 0), stable=True),
    _intel(0x4940, "Intel QAT 4xxx", (7, 2, 0), stable=True),
    _intel(0x4942, "Intel QAT 401xx", (7, 2, 0), stable=True),
    _intel(0x4944, "Intel QAT 402xx", (7, 2, 0), stable=True),
    _intel(0x4946, "Intel QAT 420xx", (7, 2, 0), stable=True),
    _intel(0x4948, "Intel QAT 6xxx", (7, 2, 0), stable=True),
    WhitelistEntry(PCI_VENDOR_ID_GOOGLE, None, False, (6, 15, 0), "Google SoCs"),
    WhitelistEntry(PCI_VENDOR_ID_NVIDIA, 0x2F95, False, (7, 2, 0), "Nvidia CPUs"),
    WhitelistEntry(PCI_VENDOR_ID_NVIDIA, 0x2F96, False, (7, 2, 0), "Nvidia CPUs"),
    WhitelistEntry(PCI_VENDOR_ID_NVIDIA, 0x2F97, False, (7, 2, 0), "Nvidia CPUs"),
    WhitelistEntry(PCI_VENDOR_ID_NVIDIA, 0x2F98, False, (7, 2, 0), "Nvidia CPUs"),
    WhitelistEntry(PCI_VENDOR_ID_ZHAOXIN, 0x1003, True, (7, 2, 0), "Zhaoxin KX-6000/KH-40000"),
    WhitelistEntry(PCI_VENDOR_ID_ZHAOXIN, 0x1005, True, (7, 2, 0), "Zhaoxin KX-6000/KH-40000"),
    WhitelistEntry(PCI_VENDOR_ID_ZHAOXIN, 0x1006, True, (7, 2, 0), "Zhaoxin KX-6000G"),
    WhitelistEntry(PCI_VENDOR_ID_ZHAOXIN, 0x1007, True, (7, 2, 0), "Zhaoxin KX-7000"),
    WhitelistEntry(PCI_VENDOR_ID_ZHAOXIN, 0x1008, False, (7, 2, 0), "Zhaoxin KH-50000"),
)

# drivers/pci/pci.c gained "pci=config_acs=" in v6.11 (next to disable_acs_redir).
CONFIG_ACS_SINCE: Version = (6, 11, 0)
# p2pmem/allocate (userspace mmap of p2pmem) appeared in v6.2.
P2PMEM_ALLOCATE_SINCE: Version = (6, 2, 0)

_RELEASE_RE = re.compile(r"^\s*(\d+)\.(\d+)(?:\.(\d+))?")


def parse_release(release: str) -> Optional[Version]:
    """(major, minor, sublevel) of a release string such as ``6.1.0-28-amd64``."""
    match = _RELEASE_RE.match(release or "")
    if not match:
        return None
    return (int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))


def version_text(version: Version) -> str:
    return "%d.%d" % version[:2] if version[2] == 0 else "%d.%d.%d" % version


def is_x86(arch: Optional[str]) -> bool:
    return bool(arch) and bool(re.match(r"^(x86_64|amd64|i[3-6]86|x86)$", arch or ""))


class KernelRules:
    """What one kernel release decides beyond the tree walk."""

    def __init__(self, release: str, version: Version, covered: bool) -> None:
        self.release = release
        self.version = version
        # False when the release is older than the sources these rules were read from, or
        # could not be parsed: the verdict still follows 6.1's logic and says so.
        self.covered = covered
        self.whitelist: Tuple[WhitelistEntry, ...] = tuple(e for e in ALL_ENTRIES if e.since <= version)
        self.supports_config_acs = version >= CONFIG_ACS_SINCE
        self.has_p2pmem_allocate = version >= P2PMEM_ALLOCATE_SINCE
        self._lookup_cache: Dict[Tuple[int, int], Optional[WhitelistEntry]] = {}

    def __repr__(self) -> str:
        return "KernelRules(%r)" % self.release

    @classmethod
    def for_release(cls, release: Optional[str]) -> KernelRules:
        version = parse_release(release or "")
        if version is None:
            # Unknown release: judge by the newest rules known, and say so.
            return cls(release or "unknown", NEWEST_KNOWN, covered=False)
        return cls(release or version_text(version), version, covered=version >= OLDEST_COVERED)

    @property
    def version_text(self) -> str:
        return version_text(self.version)

    def lookup(self, vendor: int, device: int) -> Optional[WhitelistEntry]:
        """The first matching entry of this release's table (the kernel stops there)."""
        key = (vendor, device)
        if key not in self._lookup_cache:
            self._lookup_cache[key] = next((e for e in self.whitelist if e.matches(vendor, device)), None)
        return self._lookup_cache[key]

    @staticmethod
    def first_whitelisted(vendor: int, device: int) -> Optional[WhitelistEntry]:
        """The entry that would match in the newest known kernel, whatever this release has."""
        return next((e for e in ALL_ENTRIES if e.matches(vendor, device)), None)

    @staticmethod
    def cpu_supports_p2pdma(arch: Optional[str], cpu_vendor: Optional[str], cpu_family: Optional[int]) -> bool:
        """cpu_supports_p2pdma(): x86 AMD (vendor AuthenticAMD, not Hygon) with family >= 0x17."""
        return is_x86(arch) and cpu_vendor == "AuthenticAMD" and cpu_family is not None and cpu_family >= 0x17

    def acs_kernel_params(self, devices: Tuple[str, ...]) -> Tuple[str, ...]:
        """The command-line values that clear RR/CR/EC on ``devices`` at boot, preferred first.

        ``disable_acs_redir`` takes the devices separated by ';' (pci_dev_str_match() accepts
        the full pci_name form). ``config_acs`` (6.11+) takes one flag string per device,
        rightmost character bit 0: "0x00xx" clears EC (5), CR (3), RR (2), keeps the rest.
        """
        if not devices:
            return ()
        params = ["pci=disable_acs_redir=%s" % ";".join(devices)]
        if self.supports_config_acs:
            params.append("pci=config_acs=%s" % ";".join("0x00xx@%s" % dev for dev in devices))
        return tuple(params)
