# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read a node's P2P-relevant state from a :class:`SysRoot` into the records of :mod:`.model`.

Everything is read once by :func:`read_node`; nothing here writes. Anything that cannot be
read becomes a :class:`Problem` naming the path and the fix, never an exception: a snapshot
taken without root is still worth judging.
"""

from __future__ import annotations

import gzip
import os
import posixpath
import re
from typing import Dict, Iterable, List, Optional, Tuple

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.kernel.kconfig import parse_config
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.fs import SysRoot, UnreadableError
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.model import (
    NVME_PATH_NODE_RE,
    SYS_PCI_DEVICES,
    BlockDevice,
    Cmb,
    KernelInfo,
    NetDev,
    Node,
    NvmeController,
    NvmeNamespace,
    P2PMem,
    PciFunction,
    Problem,
    RdmaDevice,
    natural_key,
    split_cmdline,
)
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.pci import ConfigSpace, LinkInfo, bdf_sort_key, is_bdf

_HOST_BRIDGE_RE = re.compile(r"^pci([0-9a-f]{4,8}):([0-9a-f]{2})$")
_NVME_CTRL_RE = re.compile(r"^nvme(\d+)$")
_NVME_NS_RE = re.compile(r"^nvme(\d+)n(\d+)$")
_SPEED_RE = re.compile(r"^([0-9.]+)\s*GT/s")


class _Reader:
    def __init__(self, root: SysRoot) -> None:
        self.root = root
        self.node = Node(root)
        self.truncated_configs: List[str] = []

    def problem(self, path: str, message: str, fix: str) -> None:
        self.node.problems.append(Problem(path, message, fix))

    def safe(self, func, path: str, *args):  # type: ignore[no-untyped-def]
        try:
            return func(path, *args)
        except UnreadableError as exc:
            self.problem(path, exc.message, exc.fix or "run as root")
            return None

    def text(self, path: str) -> Optional[str]:
        return self.safe(self.root.read_text, path)

    def integer(self, path: str, base: int = 0) -> Optional[int]:
        return self.safe(self.root.read_int, path, base)

    def link_name(self, path: str) -> Optional[str]:
        target = self.root.readlink(path)
        return None if target is None else posixpath.basename(target.rstrip("/"))

    def real(self, path: str) -> str:
        """Resolve a sysfs class/bus link: one readlink and a normpath (sysfs links are relative)."""
        target = self.root.readlink(path)
        if target is None:
            return self.root.realpath(path)
        if target.startswith("/"):
            return self.root.realpath(path)
        return posixpath.normpath(posixpath.join(posixpath.dirname(path), target))

    # -- PCI -----------------------------------------------------------------------------
    def read_pci(self) -> None:
        names = self.safe(self.root.listdir, SYS_PCI_DEVICES) or []
        if not names:
            self.problem(
                SYS_PCI_DEVICES,
                "no PCI devices found",
                "point --root at a node's / (or a snapshot of one); sysfs must be mounted",
            )
        for name in names:
            if not is_bdf(name):
                continue
            path = self.real(posixpath.join(SYS_PCI_DEVICES, name))
            fn = self.read_function(name, path)
            if fn is not None:
                self.node.functions[name] = fn
        if self.truncated_configs:
            sample = ", ".join(self.truncated_configs[:4])
            more = " and %d more" % (len(self.truncated_configs) - 4) if len(self.truncated_configs) > 4 else ""
            self.problem(
                "%s/%s/config" % (SYS_PCI_DEVICES, self.truncated_configs[0]),
                "config space of %s%s could only be read in part (64 bytes): ACS, PCIe port type and links "
                "are unknown there, so verdicts through them are uncertain" % (sample, more),
                "run as root (the kernel shows non-root readers only the first 64 bytes of config space)",
            )

    def read_function(self, bdf: str, path: str) -> Optional[PciFunction]:
        parts = path.split("/")
        host_bridge = next((p for p in reversed(parts[:-1]) if _HOST_BRIDGE_RE.match(p)), None)
        if host_bridge is None:
            domain, bus = bdf.split(":")[:2]
            host_bridge = "pci%s:%s" % (domain, bus)
        parent = parts[-2] if len(parts) >= 2 else ""
        parent_bdf = parent if is_bdf(parent) else None

        try:
            entries = set(self.root.listdir(path))
        except UnreadableError as exc:
            self.problem(path, exc.message, exc.fix or "run as root")
            entries = set()

        data = self.safe(self.root.read_bytes, path + "/config") if "config" in entries else None
        config = ConfigSpace(data) if data else None
        if config is not None and config.truncated:
            self.truncated_configs.append(bdf)

        vendor = config.vendor if config is not None else None
        device = config.device if config is not None else None
        class_code = config.class_code if config is not None else None
        if vendor is None:
            vendor = self.integer(path + "/vendor", 16)
            device = self.integer(path + "/device", 16)
            class_code = self.integer(path + "/class", 16)

        physfn = self.link_name(path + "/physfn") if "physfn" in entries else None
        upstream = parent_bdf
        if physfn is not None:
            # pci_upstream_bridge() moves a VF to its PF first; the PF's bridge is the VF's
            # sysfs parent as well, so only a PF on a root bus changes the answer.
            pf_path = posixpath.normpath(posixpath.join(path, self.root.readlink(path + "/physfn") or ""))
            pf_parent = pf_path.split("/")[-2]
            upstream = pf_parent if is_bdf(pf_parent) else None

        iommu_group = None
        if "iommu_group" in entries:
            group = self.link_name(path + "/iommu_group")
            iommu_group = int(group) if group and group.isdigit() else None

        numa_node = self.integer(path + "/numa_node", 10) if "numa_node" in entries else None
        link = config.link if config is not None else None
        if link is None:
            link = self.sysfs_link(path, entries)

        p2pmem = None
        if "p2pmem" in entries:
            p2pmem = self.read_p2pmem(path + "/p2pmem")

        port_type = config.port_type if config is not None else None
        is_bridge = config.is_bridge if config is not None and config.header_type is not None else (
            class_code is not None and class_code >> 8 in (0x0604, 0x0607)
        )
        virtfns = sorted(
            (self.link_name(path + "/" + e) or "" for e in entries if e.startswith("virtfn")),
            key=lambda b: bdf_sort_key(b) if is_bdf(b) else (0, 0, 0, 0),
        )
        return PciFunction(
            bdf=bdf,
            vendor=vendor,
            device=device,
            class_code=class_code,
            port_type=port_type,
            is_bridge=bool(is_bridge),
            acs=config.acs if config is not None else None,
            upstream_bdf=upstream,
            physfn=physfn,
            driver=self.link_name(path + "/driver") if "driver" in entries else None,
            iommu_group=iommu_group,
            numa_node=numa_node,
            link=link,
            p2pmem=p2pmem,
            host_bridge=host_bridge,
            sysfs_path=path,
            parent_bdf=parent_bdf,
            subsystem_vendor=config.subsystem_vendor if config is not None else None,
            subsystem_device=config.subsystem_device if config is not None else None,
            config_bytes=len(data) if data else 0,
            virtfns=[v for v in virtfns if v],
            sriov_vf_device=config.sriov_vf_device if config is not None and virtfns else None,
        )

    def sysfs_link(self, path: str, entries: Iterable[str]) -> LinkInfo:
        present = set(entries)

        def speed(name: str) -> Optional[float]:
            if name not in present:
                return None
            text = self.text(path + "/" + name)
            match = _SPEED_RE.match(text or "")
            return float(match.group(1)) if match else None

        def width(name: str) -> Optional[int]:
            if name not in present:
                return None
            value = self.integer(path + "/" + name, 10)
            return value or None

        return LinkInfo(
            current_speed=speed("current_link_speed"),
            current_width=width("current_link_width"),
            max_speed=speed("max_link_speed"),
            max_width=width("max_link_width"),
        )

    def read_p2pmem(self, path: str) -> Optional[P2PMem]:
        size = self.integer(path + "/size", 10)
        available = self.integer(path + "/available", 10)
        published = self.integer(path + "/published", 10)
        if size is None and available is None and published is None:
            return None
        # Asked here, so that a snapshot (which packs what the reader touched) records it too.
        allocate = self.root.exists(path + "/allocate")
        return P2PMem(size=size or 0, available=available or 0, published=bool(published), allocate=allocate)

    # -- NVMe ----------------------------------------------------------------------------
    def read_nvme(self) -> None:
        for name in self.safe(self.root.listdir, "/sys/class/nvme") or []:
            if not _NVME_CTRL_RE.match(name):
                continue
            path = self.real("/sys/class/nvme/" + name)
            entries = set(self.safe(self.root.listdir, path) or [])
            transport = self.text(path + "/transport") if "transport" in entries else None
            bdf = _pci_ancestor(path)
            cmb = None
            if "cmbsz" in entries:
                cmbsz = self.integer(path + "/cmbsz", 10)
                cmbloc = self.integer(path + "/cmbloc", 10) if "cmbloc" in entries else 0
                if cmbsz is not None:
                    cmb = Cmb(cmbsz=cmbsz, cmbloc=cmbloc or 0)
            cmb_bar = None
            if cmb is not None and bdf is not None and transport in (None, "pcie"):
                cmb_bar = self.read_bar(bdf, cmb.bir)
            ctrl = NvmeController(
                name=name,
                bdf=bdf if transport in (None, "pcie") else None,
                transport=transport,
                model=_strip(self.text(path + "/model")) if "model" in entries else None,
                serial=_strip(self.text(path + "/serial")) if "serial" in entries else None,
                firmware=_strip(self.text(path + "/firmware_rev")) if "firmware_rev" in entries else None,
                state=self.text(path + "/state") if "state" in entries else None,
                subsysnqn=self.text(path + "/subsysnqn") if "subsysnqn" in entries else None,
                address=self.text(path + "/address") if "address" in entries else None,
                cmb=cmb,
                cmb_bar=cmb_bar,
                sysfs_path=path,
            )
            for entry in sorted(entries):
                if _NVME_NS_RE.match(entry):
                    ctrl.namespaces.append(NvmeNamespace(name=entry, block_device=entry))
                else:
                    match = NVME_PATH_NODE_RE.match(entry)
                    if match:
                        head = "nvme%sn%s" % (match.group(1), match.group(3))
                        ctrl.namespaces.append(
                            NvmeNamespace(name=head, block_device=head, is_multipath_head=True, path_node=entry)
                        )
            self.node.nvme[name] = ctrl

    def read_bar(self, bdf: str, index: int) -> Optional[Tuple[int, int]]:
        """(start, length) of resource ``index`` from the function's ``resource`` file."""
        fn = self.node.functions.get(bdf)
        path = (fn.sysfs_path if fn is not None else SYS_PCI_DEVICES + "/" + bdf) + "/resource"
        text = self.text(path)
        if not text:
            return None
        lines = text.splitlines()
        if index >= len(lines):
            return None
        try:
            start, end, _flags = (int(part, 16) for part in lines[index].split())
        except ValueError:
            return None
        return (start, end - start + 1) if end else (0, 0)

    # -- block ---------------------------------------------------------------------------
    def read_block(self) -> None:
        for name in self.safe(self.root.listdir, "/sys/block") or []:
            path = self.real("/sys/block/" + name)
            block = BlockDevice(name=name, kind="other", sysfs_path=path)
            parts = path.split("/")
            if name.startswith("nvme"):
                if "nvme-subsystem" in parts:
                    block.kind = "nvme-multipath"
                else:
                    ctrl_name = parts[-2] if len(parts) >= 2 else ""
                    ctrl = self.node.nvme.get(ctrl_name)
                    block.controller = ctrl_name or None
                    block.bdf = _pci_ancestor(path)
                    transport = ctrl.transport if ctrl is not None else None
                    block.hidden = bool(NVME_PATH_NODE_RE.match(name))
                    if block.bdf is not None and transport in (None, "pcie"):
                        block.kind = "nvme-pci"
                    else:
                        block.kind = "nvme-fabrics"
                        block.bdf = None
            elif name.startswith("dm-"):
                block.kind = "dm"
                block.backing = self.safe(self.root.listdir, path + "/slaves") or []
            elif name.startswith("md"):
                block.kind = "md"
                block.backing = self.safe(self.root.listdir, path + "/slaves") or []
            elif name.startswith("loop"):
                block.kind = "loop"
                backing = self.text(path + "/loop/backing_file")
                block.backing = [backing] if backing else []
            else:
                block.bdf = _pci_ancestor(path)
            self.node.block[name] = block
        # A multipath head (nvmeXnY below the nvme-subsystem) is reached through path
        # nodes nvmeXcCnY below each controller: record which controllers stand behind it.
        behind: Dict[str, List[str]] = {}
        for ctrl in self.node.nvme.values():
            for ns in ctrl.namespaces:
                if ns.path_node:
                    behind.setdefault(ns.block_device, []).append(ctrl.name)
        for head_name, controllers in behind.items():
            ordered = sorted(set(controllers), key=natural_key)
            head = self.node.block.get(head_name)
            if head is not None:
                head.backing = ordered
            for ctrl in self.node.nvme.values():
                for ns in ctrl.namespaces:
                    if ns.path_node and ns.block_device == head_name:
                        ns.controllers = ordered

    # -- RDMA and net ----------------------------------------------------------------------
    def read_rdma(self) -> None:
        for name in self.safe(self.root.listdir, "/sys/class/infiniband") or []:
            path = self.real("/sys/class/infiniband/" + name)
            entries = set(self.safe(self.root.listdir, path) or [])
            bdf = _pci_ancestor(path)
            driver = None
            if bdf is not None:
                driver = self.link_name("/sys/bus/pci/devices/%s/driver" % bdf)
            software: Optional[str] = None
            lowered = name.lower()
            if "parent" in entries or lowered.startswith("rxe"):
                software = "rxe"
            elif lowered.startswith("siw"):
                software = "siw"
            elif bdf is None:
                software = "software"
            netdevs: List[str] = []
            if "parent" in entries:
                parent = self.text(path + "/parent")
                if parent:
                    netdevs.append(parent)
            ndev = self.text(path + "/ports/1/gid_attrs/ndevs/0")
            if ndev and ndev not in netdevs:
                netdevs.append(ndev)
            if bdf is not None and software is None:
                for dev in self.safe(self.root.listdir, "/sys/bus/pci/devices/%s/net" % bdf) or []:
                    if dev not in netdevs:
                        netdevs.append(dev)
            self.node.rdma[name] = RdmaDevice(
                name=name,
                bdf=None if software else bdf,
                driver=driver if software is None else software,
                software=software,
                netdevs=netdevs,
                sysfs_path=path,
            )

    def read_net(self) -> None:
        for name in self.safe(self.root.listdir, "/sys/class/net") or []:
            path = self.real("/sys/class/net/" + name)
            self.node.netdevs[name] = NetDev(name=name, bdf=_pci_ancestor(path), sysfs_path=path)

    # -- kernel ----------------------------------------------------------------------------
    def read_kernel(self) -> None:
        release = self.text("/proc/sys/kernel/osrelease")
        version_string = self.text("/proc/version")
        cmdline = self.text("/proc/cmdline") or ""
        config, source = self.read_config(release)
        arch = self.text("/proc/sys/kernel/arch")
        if not arch and self.root.is_live:
            arch = os.uname().machine
        if not arch:
            arch = _arch_from_config(config)
        cpu_vendor, cpu_family = self.read_cpu()
        in_use, evidence = self.read_iommu(cmdline)
        version, sublevel_known = _kernel_version(release, version_string, self.text("/proc/version_signature"))
        if release is None:
            self.problem(
                "/proc/sys/kernel/osrelease",
                "kernel release unknown: verdicts use the newest whitelist known",
                "capture /proc with the snapshot (p2pctl snapshot does)",
            )
        self.node.kernel = KernelInfo(
            release=release,
            version=version,
            sublevel_known=sublevel_known,
            cmdline=cmdline,
            config=config,
            config_source=source,
            arch=arch,
            cpu_vendor=cpu_vendor,
            cpu_family=cpu_family,
            iommu_in_use=in_use,
            iommu_evidence=evidence,
            version_string=version_string,
        )

    def read_config(self, release: Optional[str]) -> Tuple[Dict[str, str], Optional[str]]:
        raw = self.safe(self.root.read_bytes, "/proc/config.gz")
        source = "/proc/config.gz"
        text: Optional[str] = None
        if raw:
            try:
                text = gzip.decompress(raw).decode("utf-8", "replace")
            except (OSError, EOFError):
                self.problem(source, "not a gzip file", "capture /proc/config.gz again")
        if text is None and release:
            source = "/boot/config-%s" % release
            text = self.text(source)
        if text is None:
            self.problem(
                "/boot/config-%s" % (release or "<release>"),
                "kernel config not found (neither /proc/config.gz nor /boot/config-<release>)",
                "install the kernel's config file in /boot, or build with CONFIG_IKCONFIG_PROC=y",
            )
            return {}, None
        try:
            return parse_config(text, origin=source), source
        except P2PError as exc:
            self.problem(source, exc.message, "capture %s again: it is not a kernel config" % source)
            return {}, None

    def read_cpu(self) -> Tuple[Optional[str], Optional[int]]:
        text = self.text("/proc/cpuinfo")
        if not text:
            self.problem("/proc/cpuinfo", "CPU vendor and family unknown", "capture /proc/cpuinfo with the snapshot")
            return None, None
        vendor = None
        family = None
        for line in text.splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "vendor_id" and vendor is None:
                vendor = value.strip()
            elif key == "cpu family" and family is None:
                try:
                    family = int(value.strip())
                except ValueError:
                    family = None
            elif not line.strip() and (vendor is not None or family is not None):
                break  # the boot CPU's block is enough: the kernel looks at cpu_data(0)
        return vendor, family

    def read_iommu(self, cmdline: str) -> Tuple[bool, List[str]]:
        evidence: List[str] = []
        units = self.safe(self.root.listdir, "/sys/class/iommu") or []
        if units:
            evidence.append("/sys/class/iommu: %s" % " ".join(units))
        groups = self.safe(self.root.listdir, "/sys/kernel/iommu_groups") or []
        if groups:
            evidence.append("/sys/kernel/iommu_groups: %d groups" % len(groups))
        for word in split_cmdline(cmdline):
            if word.split("=")[0] in ("intel_iommu", "amd_iommu", "iommu", "iommu.passthrough"):
                evidence.append("cmdline: %s" % word)
        return bool(units or groups), evidence


def _strip(text: Optional[str]) -> Optional[str]:
    return None if text is None else text.strip()


def _pci_ancestor(path: str) -> Optional[str]:
    """The nearest PCI function above (or at) a sysfs device path: find_parent_pci_dev()."""
    for part in reversed(path.split("/")):
        if is_bdf(part):
            return part
    return None


def _arch_from_config(config: Dict[str, str]) -> Optional[str]:
    for option, arch in (
        ("X86_64", "x86_64"),
        ("ARM64", "aarch64"),
        ("PPC64", "ppc64le"),
        ("RISCV", "riscv64"),
        ("S390", "s390x"),
        ("X86_32", "i686"),
    ):
        if config.get(option) == "y":
            return arch
    return None


def _kernel_version(
    release: Optional[str], version_string: Optional[str], signature: Optional[str] = None
) -> Tuple[Optional[Tuple[int, int, int]], bool]:
    """The upstream version: distribution releases (6.1.0-28-amd64) hide the sublevel.

    Debian puts it after the build number in /proc/version ("#1 SMP ... Debian 6.1.119-1");
    the compiler's own "(Debian 12.2.0-14)" comes earlier and must not be taken for it.
    Ubuntu ends /proc/version_signature with it ("... 6.8.12").
    """
    build = (version_string or "").partition("#")[2]
    match = re.search(r"Debian (\d+)\.(\d+)\.(\d+)", build)
    if match:
        return (int(match.group(1)), int(match.group(2)), int(match.group(3))), True
    match = re.search(r"(\d+)\.(\d+)\.(\d+)\s*$", signature or "")
    if match:
        return (int(match.group(1)), int(match.group(2)), int(match.group(3))), True
    match = re.match(r"^(\d+)\.(\d+)(?:\.(\d+))?", release or "")
    if match:
        version = (int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))
        return version, not re.match(r"^\d+\.\d+\.0-\d+", release or "")
    return None, False


def read_node(root: Optional[SysRoot] = None) -> Node:
    """Read everything P2PDMA decisions depend on from ``root`` (default: this machine)."""
    reader = _Reader(root or SysRoot("/"))
    reader.read_kernel()
    reader.read_pci()
    reader.read_nvme()
    reader.read_block()
    reader.read_rdma()
    reader.read_net()
    reader.node.finish()
    return reader.node


__all__ = ["read_node"]
