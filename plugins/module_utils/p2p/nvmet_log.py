# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the kernel log says about nvmet's use of p2pmem, and which network device an address is on.

nvmet decides per controller, when a host connects: ``nvmet_alloc_ctrl`` maps each
namespace with p2pmem to a provider and logs (drivers/nvme/target/core.c, 6.1 and 6.12)::

    nvmet: using p2pmem on 0000:03:00.0 for nsid 1
    nvmet: no peer-to-peer memory is available that's supported by mlx5_0 and /dev/nvme1n1

and right after it (fabrics-cmd.c), naming the subsystem the lines above belong to::

    nvmet: creating nvm controller 1 for subsystem nqn.x for NQN nqn.host.

Only transports that set a PCI DMA device as the P2P client (nvmet-rdma) get the first
two lines; tcp, loop and fc get only the third. An explicit provider that fails the
distance check logs the PCI core's "cannot be used for peer-to-peer DMA" warning instead.

The log is read from ``/dev/kmsg`` below the root: the kernel's ring buffer as ``dmesg``
reads it, without the dmesg binary and without blocking at its end. A tree or a test puts
the text there as a regular file, in kmsg records or in dmesg's format.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional

from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.fs import SysRoot

KERNEL_LOG = "/dev/kmsg"

_USING_RE = re.compile(r"nvmet: using p2pmem on (\S+) for nsid (\d+)")
_REFUSED_RE = re.compile(
    r"(nvmet: no peer-to-peer memory is available that's supported by .*"
    r"|cannot be used for peer-to-peer DMA as the client and provider .*)"
)
_CREATING_RE = re.compile(r"nvmet: creating nvm controller (\d+) for subsystem (\S+) for NQN (\S+?)\.?(?: |$)")


@dataclass
class Controller:
    """One controller a host connected to, with what nvmet decided for its namespaces."""

    cntlid: int
    hostnqn: str
    p2pmem: Dict[int, str] = field(default_factory=dict)  # nsid -> provider BDF
    refusals: List[str] = field(default_factory=list)  # the kernel's lines saying why no p2pmem


def _message(line: str) -> str:
    # kmsg records are "prio,seq,usec,flags;text"; dmesg prints "[ 12.345678] text".
    header, sep, text = line.partition(";")
    if sep and re.fullmatch(r"\d+,\d+,\d+,[^;]*", header):
        return text
    return re.sub(r"^\[\s*[\d.]+\]\s*", "", line)


def parse_nvmet_log(text: str) -> Dict[str, List[Controller]]:
    """Controllers created per subsystem NQN, oldest first, with the p2pmem lines logged for each."""
    controllers: Dict[str, List[Controller]] = {}
    pending = Controller(cntlid=0, hostnqn="")
    for line in text.splitlines():
        message = _message(line)
        using = _USING_RE.search(message)
        if using:
            pending.p2pmem[int(using.group(2))] = using.group(1)
            continue
        refused = _REFUSED_RE.search(message)
        if refused:
            pending.refusals.append(message.strip())
            continue
        created = _CREATING_RE.search(message)
        if created:
            pending.cntlid, pending.hostnqn = int(created.group(1)), created.group(3)
            controllers.setdefault(created.group(2), []).append(pending)
            pending = Controller(cntlid=0, hostnqn="")
    return controllers


def read_kernel_log(root: SysRoot) -> Optional[str]:
    """The kernel log below ``root``, None when there is none (raises UnreadableError when not allowed)."""
    return root.read_log(KERNEL_LOG)


def _ipv4_routes(root: SysRoot) -> List[tuple]:
    routes = []
    for line in (root.read_text("/proc/net/route") or "").splitlines()[1:]:
        cols = line.split()
        if len(cols) < 8:
            continue
        try:
            # Little-endian hex, as the kernel prints them.
            dest = ipaddress.IPv4Address(bytes.fromhex(cols[1])[::-1])
            mask = ipaddress.IPv4Address(bytes.fromhex(cols[7])[::-1])
        except ValueError:
            continue
        routes.append((cols[0], ipaddress.IPv4Network("%s/%s" % (dest, mask), strict=False)))
    return routes


def netdev_of_address(root: SysRoot, address: str) -> Optional[str]:
    """The network device that holds a local address: for IPv6 its entry in /proc/net/if_inet6, for IPv4
    the device of the narrowest directly connected route that contains it (/proc/net/route).

    None for a wildcard address (the port listens on every device) and when no device matches.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if ip.is_unspecified:
        return None
    if ip.version == 6:
        for line in (root.read_text("/proc/net/if_inet6") or "").splitlines():
            cols = line.split()
            if len(cols) >= 6 and cols[0] == ip.exploded.replace(":", ""):
                return cols[5]
        return None
    matches = [(net.prefixlen, dev) for dev, net in _ipv4_routes(root) if ip in net and net.prefixlen > 0]
    return max(matches)[1] if matches else None


def is_loopback(trtype: Optional[str], traddr: Optional[str]) -> bool:
    """Whether a port is reachable only from this node: the loop transport, or an address on lo."""
    if trtype == "loop":
        return True
    try:
        return bool(traddr) and ipaddress.ip_address(traddr or "").is_loopback
    except ValueError:
        return False


__all__ = ["KERNEL_LOG", "Controller", "is_loopback", "netdev_of_address", "parse_nvmet_log", "read_kernel_log"]
