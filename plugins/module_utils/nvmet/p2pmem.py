# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Judge a namespace's p2pmem with the engine before anything is written.

nvmet's enable (nvmet_p2pmem_ns_enable(), 6.1 to 6.12) refuses with EINVAL when the
namespace is not a block device, when its queue is not an nvme-pci queue (fabrics disks,
multipath heads, dm, md, loop), when an explicit provider fails pci_p2pdma_distance()
with the namespace's device, and, for ``p2pmem=1``, when pci_p2pmem_find() finds nothing.
Writing a BDF without published p2pmem fails at once with ENODEV.

``auto`` is predicted with pci_p2pmem_find_many()'s rule: among the published providers
whose pci_p2pdma_distance_many() is not negative, the smallest distance wins and ties
are broken at random, so every tied provider is reported. This is the choice enable
checks; when a host connects, nvmet-rdma asks pci_p2pmem_find_many() again with the RDMA
device as a second client (nvmet_p2pmem_ns_add_p2p()), and that pick is not judged here yet.
"""

from __future__ import annotations

import posixpath
from typing import List, Optional, Tuple

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.model import (
    NVME_CONTROLLER_NAME,
    P2PMEM_AUTO,
    P2PMEM_KERNEL,
)
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.fs import SysRoot
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.model import Node
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.pci import parse_bdf
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.reader import read_node
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.verdict import distance_many, publication


class P2PJudge:
    """Reads the node (PCI, NVMe, block, kernel) once, on first need."""

    def __init__(self, root: SysRoot) -> None:
        self.root = root
        self._node: Optional[Node] = None

    @property
    def node(self) -> Node:
        if self._node is None:
            self._node = read_node(self.root)
        return self._node

    def kernel_has_p2pdma(self) -> bool:
        """Whether namespaces get a p2pmem attribute: CONFIG_PCI_P2PDMA, assumed when the config is unknown."""
        kernel = self.node.kernel
        return kernel.config_source is None or kernel.config_value("CONFIG_PCI_P2PDMA") == "y"

    def kernel_value(self, what: str, word: str) -> str:
        """What to write to the p2pmem file: auto -> 1, none -> 0, a controller -> its BDF."""
        if word in P2PMEM_KERNEL:
            return P2PMEM_KERNEL[word]
        if NVME_CONTROLLER_NAME.match(word):
            ctrl = self.node.nvme.get(word)
            if ctrl is None:
                raise P2PError("%s: p2pmem names NVMe controller %s, which this node does not have" % (what, word),
                               fix="name one of: %s" % (", ".join(sorted(self.node.nvme)) or "no NVMe controllers"))
            if not ctrl.is_pci or ctrl.bdf is None:
                raise P2PError("%s: p2pmem names %s, an NVMe controller over %s, not a PCI device"
                               % (what, word, ctrl.transport), fix="name a PCIe NVMe controller with a CMB")
            return ctrl.bdf
        return parse_bdf(word)

    def judge(self, what: str, device_path: str, kernel_value: str) -> dict:
        """The kernel's answer to enabling the namespace with this p2pmem, or a P2PError refusing it."""
        node = self.node
        device, client = self._client(what, device_path)
        if kernel_value == P2PMEM_KERNEL[P2PMEM_AUTO]:
            return self._auto(what, device, client)
        provider = kernel_value
        state = publication(node, provider)
        if not state["published"]:
            raise P2PError(
                "%s (device %s): provider %s has no published p2pmem, the kernel refuses it (ENODEV): %s"
                % (what, device, provider, state["why"]),
                fix="name a provider that publishes p2pmem (p2pctl topology lists them), or use p2pmem: auto",
            )
        return self._path(what, device, client, provider)

    def judge_path(self, what: str, device_path: str, kernel_value: str) -> Optional[dict]:
        """The kernel's verdict on the path alone, for a node whose kernel publishes no p2pmem yet.

        Before the P2PDMA kernel is in, the topology already tells whether an explicit provider can serve the
        namespace; which providers will publish (and so what ``auto`` takes) is known only on that kernel: None.
        """
        device, client = self._client(what, device_path)
        if kernel_value == P2PMEM_KERNEL[P2PMEM_AUTO]:
            return None
        return self._path(what, device, client, kernel_value)

    def _path(self, what: str, device: str, client: str, provider: str) -> dict:
        verdict = distance_many(self.node, provider, [client])
        pair = verdict.clients[0]
        if not verdict.supported:
            raise P2PError(
                "%s (device %s, client %s): provider %s is refused by the kernel (%s): %s"
                % (what, device, client, provider, pair.map_type, pair.reason),
                fix=pair.fix or "pick a provider that shares an upstream bridge with %s" % client,
            )
        return {
            "namespace": what, "device": device, "client": client, "p2pmem": provider, "provider": provider,
            "candidates": [provider], "map_type": pair.map_type, "distance": verdict.distance, "reason": pair.reason,
        }

    def _client(self, what: str, device_path: str) -> Tuple[str, str]:
        """The namespace's block device and the PCI function nvmet asks about; refuses anything else."""
        node = self.node
        real = self.root.realpath(device_path)
        name = posixpath.basename(real)
        known = name in node.block or self.root.exists("/sys/class/block/" + name)
        if not real.startswith("/dev/") or not known:
            raise P2PError(
                "%s: device %s is not a block device of this node: peer-to-peer DMA is not supported by non-block "
                "device namespaces (enable answers EINVAL)" % (what, device_path),
                fix="back the namespace with a whole NVMe namespace (/dev/nvmeXnY), or set p2pmem: none",
            )
        if self.root.exists("/sys/class/block/%s/partition" % name):
            raise P2PError(
                "%s: device %s is a partition; p2pmem is judged for whole nvme-pci namespaces" % (what, device_path),
                fix="export the whole namespace (/dev/nvmeXnY), or set p2pmem: none",
            )
        block = node.block.get(name)
        if block is None or not block.can_do_p2p or block.hidden or block.bdf is None:
            try:
                node.resolve(name)
                reason = "%s is a hidden multipath path node" % name
                fix = "use the controller's own namespace device"
            except P2PError as err:
                reason, fix = err.message, err.fix or ""
            raise P2PError(
                "%s: device %s cannot use p2pmem: %s; nvmet refuses it ('peer-to-peer DMA is not supported by the "
                "driver of %s', EINVAL)" % (what, device_path, reason, name),
                fix="%s, or set p2pmem: none" % fix,
            )
        return name, block.bdf

    def _auto(self, what: str, device: str, client: str) -> dict:
        node = self.node
        distances = {}
        for fn in node.providers():
            if fn.p2pmem is None or not fn.p2pmem.published:
                continue
            verdict = distance_many(node, fn.bdf, [client])
            if verdict.supported:
                distances[fn.bdf] = verdict.distance
        if not distances:
            published = [fn.bdf for fn in node.providers() if fn.p2pmem and fn.p2pmem.published]
            raise P2PError(
                "%s (device %s, client %s): p2pmem auto finds no provider: no peer-to-peer memory is available for %s "
                "(enable answers EINVAL); published providers: %s"
                % (what, device, client, device, ", ".join(published) or "none"),
                fix="publish p2pmem on a device that shares an upstream bridge with %s (an NVMe CMB behind the "
                "same switch), or set p2pmem: none" % client,
            )
        nearest = min(distances.values())
        tied: List[str] = sorted(bdf for bdf, dist in distances.items() if dist == nearest)
        reason = "pci_p2pmem_find_many() takes the nearest published provider (distance %d); at connect " \
            "nvmet-rdma picks again with the RDMA device as a second client" % nearest
        if len(tied) > 1:
            reason += "; %d are tied and the kernel picks one at random" % len(tied)
        return {
            "namespace": what, "device": device, "client": client, "p2pmem": P2PMEM_AUTO,
            "provider": tied[0] if len(tied) == 1 else None, "candidates": tied, "map_type": None,
            "distance": nearest, "reason": reason,
        }


__all__ = ["P2PJudge"]
