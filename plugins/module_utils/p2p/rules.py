# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The P2PDMA rules of a given kernel release: host-bridge whitelist, CPU rule, ACS parameters.

Read from drivers/pci/p2pdma.c and drivers/pci/pci.c of the releases themselves:
Debian's linux-source-6.1 (6.1.192) and linux-source-6.12 (6.12.117), and the mainline
tree. From 6.1 to mainline, calc_map_type_and_dist(), pci_host_bridge_dev(),
host_bridge_whitelist() and cpu_supports_p2pdma() did not change; what changes between
releases is the whitelist table (and, in the lookup, PCI_ANY_ID matching once the
Google entry needed it) and the command-line parameters that set ACS.

Each whitelist entry carries the first mainline release that has it (and the stable
updates known to have gained it), found from the commits in the kernel's history:
6.1 through 6.12 share one table; mainline added Google SoCs in 7.1 (PCI_ANY_ID
matching came with it), Intel accelerators in 7.2 (7.1.3 stable), Nvidia Vera Rubin in
7.3 and Zhaoxin in 7.4. A stable update of an older series may still gain an entry
later; the message for an unlisted host bridge names the first release that has it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Dict, Optional, Tuple

if TYPE_CHECKING:  # the rules read a node's kernel facts; the model does not need the rules
    from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.model import KernelInfo, Node

Version = Tuple[int, int, int]

PCI_VENDOR_ID_INTEL = 0x8086
PCI_VENDOR_ID_GOOGLE = 0x1AE0
PCI_VENDOR_ID_NVIDIA = 0x10DE
PCI_VENDOR_ID_ZHAOXIN = 0x1D17

# The oldest series whose p2pdma.c these rules were read from; older kernels use other code.
OLDEST_COVERED: Version = (6, 1, 0)
# Newest mainline release the table covers (the PCI tree's queue for it included).
NEWEST_KNOWN: Version = (7, 4, 0)


@dataclass(frozen=True)
class WhitelistEntry:
    """One row of pci_p2pdma_whitelist[]: the root-bus device's vendor and device."""

    vendor: int
    device: Optional[int]  # None: PCI_ANY_ID
    req_same_host_bridge: bool
    since: Version  # first mainline release with the entry
    what: str
    commit: str = ""
    stable: Tuple[Version, ...] = ()  # stable updates of older series that gained it

    def matches(self, vendor: int, device: int) -> bool:
        return vendor == self.vendor and (self.device is None or device == self.device)

    def in_release(self, version: Version) -> bool:
        if version >= self.since:
            return True
        return any(version[:2] == fixed[:2] and version[2] >= fixed[2] for fixed in self.stable)

    @property
    def ident(self) -> str:
        return "%04x:%s" % (self.vendor, "any" if self.device is None else "%04x" % self.device)

    def first_text(self) -> str:
        text = version_text(self.since)
        if self.stable:
            text += " (and stable %s)" % ", ".join(version_text(v) for v in self.stable)
        return text

    def to_dict(self) -> dict:
        return {
            "vendor": "%04x" % self.vendor,
            "device": None if self.device is None else "%04x" % self.device,
            "req_same_host_bridge": self.req_same_host_bridge,
            "since": version_text(self.since),
            "stable": [version_text(v) for v in self.stable],
            "what": self.what,
            "commit": self.commit,
        }


# Entries every covered release has. They predate 6.1; their older history is not tracked,
# so a pre-6.1 kernel is judged with them too (and its verdict says it follows 6.1).
_BASE: Version = (0, 0, 0)


def _intel(device: int, what: str, same: bool = False) -> WhitelistEntry:
    return WhitelistEntry(PCI_VENDOR_ID_INTEL, device, same, _BASE, what)


def _intel_accel(device: int, what: str) -> WhitelistEntry:
    """0ba76b19fd4c "Add Intel QAT, DSA, IAA devices to whitelist": 7.2, and 7.1.3 stable."""
    return WhitelistEntry(PCI_VENDOR_ID_INTEL, device, False, (7, 2, 0), what, "0ba76b19fd4c", ((7, 1, 3),))


# In the kernel's order: the lookup stops at the first vendor/device match.
ALL_ENTRIES: Tuple[WhitelistEntry, ...] = (
    _intel(0x3C00, "Intel Xeon E5/Core i7", same=True),
    _intel(0x3C01, "Intel Xeon E5/Core i7", same=True),
    _intel(0x2F00, "Intel Xeon E7 v3/Xeon E5 v3/Core i7", same=True),
    _intel(0x2F01, "Intel Xeon E7 v3/Xeon E5 v3/Core i7", same=True),
    _intel(0x2030, "Intel Skylake-E"),
    _intel(0x2031, "Intel Skylake-E"),
    _intel(0x2032, "Intel Skylake-E"),
    _intel(0x2033, "Intel Skylake-E"),
    _intel(0x2020, "Intel Skylake-E"),
    _intel(0x09A2, "Intel Xeon since Ice Lake"),
    _intel_accel(0x0B25, "Intel DSA (Sapphire Rapids)"),
    _intel_accel(0x0CFE, "Intel IAX (Sapphire Rapids)"),
    _intel_accel(0x11FB, "Intel DSA (Granite Rapids-D)"),
    _intel_accel(0x1212, "Intel DSA (Diamond Rapids)"),
    _intel_accel(0x1216, "Intel IAA (Diamond Rapids)"),
    _intel_accel(0x4940, "Intel QAT 4xxx"),
    _intel_accel(0x4942, "Intel QAT 401xx"),
    _intel_accel(0x4944, "Intel QAT 402xx"),
    _intel_accel(0x4946, "Intel QAT 420xx"),
    _intel_accel(0x4948, "Intel QAT 6xxx"),
    # 70cf146a674c + 1a1f96e3e2a8 (wildcard device IDs): 7.1.
    WhitelistEntry(PCI_VENDOR_ID_GOOGLE, None, False, (7, 1, 0), "Google SoCs", "70cf146a674c"),
    # 894a78088fc3 "Add Nvidia Vera Rubin to whitelist": 7.3.
    WhitelistEntry(PCI_VENDOR_ID_NVIDIA, 0x2F95, False, (7, 3, 0), "Nvidia Vera Rubin", "894a78088fc3"),
    WhitelistEntry(PCI_VENDOR_ID_NVIDIA, 0x2F96, False, (7, 3, 0), "Nvidia Vera Rubin", "894a78088fc3"),
    WhitelistEntry(PCI_VENDOR_ID_NVIDIA, 0x2F97, False, (7, 3, 0), "Nvidia Vera Rubin", "894a78088fc3"),
    WhitelistEntry(PCI_VENDOR_ID_NVIDIA, 0x2F98, False, (7, 3, 0), "Nvidia Vera Rubin", "894a78088fc3"),
    # f7c220404700 "Add Zhaoxin host bridges to allowlist": queued after 7.3-rc1, so 7.4.
    WhitelistEntry(PCI_VENDOR_ID_ZHAOXIN, 0x1003, True, (7, 4, 0), "Zhaoxin KX-6000/KH-40000", "f7c220404700"),
    WhitelistEntry(PCI_VENDOR_ID_ZHAOXIN, 0x1005, True, (7, 4, 0), "Zhaoxin KX-6000/KH-40000", "f7c220404700"),
    WhitelistEntry(PCI_VENDOR_ID_ZHAOXIN, 0x1006, True, (7, 4, 0), "Zhaoxin KX-6000G", "f7c220404700"),
    WhitelistEntry(PCI_VENDOR_ID_ZHAOXIN, 0x1007, True, (7, 4, 0), "Zhaoxin KX-7000", "f7c220404700"),
    WhitelistEntry(PCI_VENDOR_ID_ZHAOXIN, 0x1008, False, (7, 4, 0), "Zhaoxin KH-50000", "f7c220404700"),
)

# drivers/pci/pci.c gained "pci=config_acs=" in v6.11 (next to disable_acs_redir).
CONFIG_ACS_SINCE: Version = (6, 11, 0)
# From 6.11 (47c8846a49ba "PCI: Extend ACS configurability") both parameters went through
# __pci_config_acs(), which until 9cf8a952d57b "PCI/ACS: Fix 'pci=config_acs=' parameter"
# (6.15; stable 6.12.23, 6.13.11, 6.14.2) computed
#   ctrl = (ctrl & ~mask) | (fw_ctrl & mask); ctrl |= flags;
# so a bit the command line asks to clear only falls back to the firmware's value: ACS
# redirect the kernel set (IOMMU) is cleared, ACS redirect the firmware set is not.
ACS_PARAM_FIRMWARE_ONLY: Tuple[Tuple[Version, Version], ...] = (
    ((6, 11, 0), (6, 12, 23)),
    ((6, 13, 0), (6, 13, 11)),
    ((6, 14, 0), (6, 14, 2)),
)
ACS_PARAM_FIX = "9cf8a952d57b (6.15; stable 6.12.23, 6.13.11, 6.14.2)"
# p2pmem/allocate (userspace mmap of p2pmem) appeared in v6.2.
P2PMEM_ALLOCATE_SINCE: Version = (6, 2, 0)

_RELEASE_RE = re.compile(r"^\s*(\d+)\.(\d+)(?:\.(\d+))?")
# Debian (6.1.0-28-amd64) and Ubuntu (6.8.0-52-generic) ABI names: the ".0" is not the sublevel.
_ABI_RELEASE_RE = re.compile(r"^\s*\d+\.\d+\.0-\d+")


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


def runs_on_x86(kernel: KernelInfo) -> bool:
    """The arch when it is known; else /proc/cpuinfo: only x86 prints ``vendor_id`` and ``cpu family``."""
    if kernel.arch:
        return is_x86(kernel.arch)
    return kernel.cpu_vendor is not None and kernel.cpu_family is not None


def cpu_supports_p2pdma(kernel: KernelInfo) -> bool:
    """cpu_supports_p2pdma(): x86 AMD (vendor AuthenticAMD, not Hygon) with family >= 0x17 (Zen and later)."""
    return (
        runs_on_x86(kernel)
        and kernel.cpu_vendor == "AuthenticAMD"
        and kernel.cpu_family is not None
        and kernel.cpu_family >= 0x17
    )


def rules_for(node: Node) -> KernelRules:
    """The one rule set topology, distance and check judge a node with.

    The upstream version comes from /proc/version where the release name hides the
    sublevel (Debian's 7.1.0-3-amd64 runs 7.1.5), so every command sees the same
    whitelist. Cached on the node.
    """
    cached = node.__dict__.get("_kernel_rules")
    if cached is None:
        kernel = node.kernel
        cached = KernelRules.for_kernel(kernel.release, kernel.version, kernel.sublevel_known)
        node.__dict__["_kernel_rules"] = cached
    return cached


class KernelRules:
    """What one kernel release decides beyond the tree walk."""

    def __init__(self, release: str, version: Version, covered: bool, sublevel_known: bool = True) -> None:
        self.release = release
        self.version = version
        # False for distribution ABI names such as 6.1.0-28-amd64 or 6.8.0-52-generic, whose
        # ".0" is not the upstream sublevel; rules that stable updates changed then say so.
        self.sublevel_known = sublevel_known
        # False when the release is older than the sources these rules were read from, or
        # could not be parsed: the verdict still follows 6.1's logic and says so.
        self.covered = covered
        self.whitelist: Tuple[WhitelistEntry, ...] = tuple(e for e in ALL_ENTRIES if e.in_release(version))
        self.supports_config_acs = version >= CONFIG_ACS_SINCE
        self.has_p2pmem_allocate = version >= P2PMEM_ALLOCATE_SINCE
        # True where the ACS parameters cannot clear redirect bits the firmware set; None when
        # that depends on a sublevel the release name hides.
        self.acs_param_firmware_only: Optional[bool] = any(
            low <= version < high for low, high in ACS_PARAM_FIRMWARE_ONLY
        )
        if not sublevel_known:
            whole_series = any(low <= version[:2] + (999,) < high for low, high in ACS_PARAM_FIRMWARE_ONLY)
            touched = any(low[:2] <= version[:2] <= high[:2] for low, high in ACS_PARAM_FIRMWARE_ONLY)
            self.acs_param_firmware_only = True if whole_series else (None if touched else False)
        self._lookup_cache: Dict[Tuple[int, int], Optional[WhitelistEntry]] = {}

    @property
    def coverage_note(self) -> Optional[str]:
        """Why a verdict under these rules is less certain than usual, if it is."""
        if self.covered:
            return None
        if parse_release(self.release) is None:
            return "kernel release %r is unknown, so the newest rules known (%s) were applied" % (
                self.release,
                version_text(NEWEST_KNOWN),
            )
        return "kernel %s predates 6.1, the oldest release these rules were read from; the verdict follows 6.1" % (
            self.release
        )

    def __repr__(self) -> str:
        return "KernelRules(%r)" % self.release

    @classmethod
    def for_release(cls, release: Optional[str]) -> KernelRules:
        version = parse_release(release or "")
        if version is None:
            # Unknown release: judge by the newest rules known, and say so.
            return cls(release or "unknown", NEWEST_KNOWN, covered=False)
        return cls(
            release or version_text(version),
            version,
            covered=version >= OLDEST_COVERED,
            sublevel_known=not _ABI_RELEASE_RE.match(release or ""),
        )

    @classmethod
    def for_kernel(
        cls, release: Optional[str], version: Optional[Version] = None, sublevel_known: bool = True
    ) -> KernelRules:
        """Rules for a running kernel: its upstream version (Debian's /proc/version has the
        sublevel that the release 6.1.0-28-amd64 hides) when known, else its release."""
        if version is None or not sublevel_known:
            return cls.for_release(release)
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
