# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The link limit of a peer-to-peer transfer: the narrowest PCIe link its bytes cross.

A transfer between a provider and a client crosses the links the engine's path names:
each function's link to the bridge above it, except where the step stays inside a
switch (a downstream port below its upstream port) or inside the root complex (a root
port and its host bridge). A path through the host bridge climbs both chains to the
root ports. The link status the model holds is what sysfs prints as
``current_link_speed``/``current_link_width`` (both read the Link Status register).

Usable bytes per second per lane are the transfer rate less the line encoding:
8b/10b at 2.5 and 5 GT/s, 128b/130b at 8, 16 and 32 GT/s, and none (1b/1b, PAM4 in
FLIT mode) at 64 GT/s. Packet framing (TLP/DLLP headers, FLIT CRC and FEC) is not
subtracted at any rate, so the limit is an upper bound on what the payload can reach.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Dict, List, Optional, Sequence

from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.model import Node
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.verdict import MapType, PairVerdict

# GT/s -> payload bits per transferred bit.
ENCODING_EFFICIENCY: Dict[float, Fraction] = {
    2.5: Fraction(8, 10),
    5.0: Fraction(8, 10),
    8.0: Fraction(128, 130),
    16.0: Fraction(128, 130),
    32.0: Fraction(128, 130),
    64.0: Fraction(1, 1),
}
# Steps to a bridge that stay inside a switch or the root complex: no link is crossed.
_NO_LINK_ABOVE = ("switch_downstream", "root_port", "rciep", "rc_event_collector")


def lane_bytes_per_second(speed_gts: float) -> Optional[float]:
    """Usable bytes/s of one lane at ``speed_gts``, None for a rate without a known encoding."""
    efficiency = ENCODING_EFFICIENCY.get(speed_gts)
    if efficiency is None:
        return None
    return float(Fraction(str(speed_gts)) * 10**9 * efficiency / 8)


def link_bytes_per_second(speed_gts: float, width: int) -> Optional[float]:
    lane = lane_bytes_per_second(speed_gts)
    return None if lane is None else lane * width


@dataclass(frozen=True)
class Hop:
    """One PCIe link: ``below`` is the function whose Link Status describes it, ``above`` its bridge."""

    below: str
    above: str
    speed_gts: Optional[float]
    width: Optional[int]

    @property
    def bytes_per_second(self) -> Optional[float]:
        if self.speed_gts is None or self.width is None:
            return None
        return link_bytes_per_second(self.speed_gts, self.width)

    def describe(self) -> str:
        speed = "%g GT/s" % self.speed_gts if self.speed_gts else "? GT/s"
        width = "x%d" % self.width if self.width else "x?"
        return "%s -- %s (%s %s)" % (self.below, self.above, speed, width)

    def to_dict(self) -> dict:
        return {
            "below": self.below,
            "above": self.above,
            "speed_gts": self.speed_gts,
            "width": self.width,
            "bytes_per_second": self.bytes_per_second,
        }


@dataclass(frozen=True)
class LinkLimit:
    """The narrowest link of the hops crossed (None when no hop's speed and width are known)."""

    hops: List[Hop]
    limiting: Optional[Hop]

    @property
    def bytes_per_second(self) -> Optional[float]:
        return None if self.limiting is None else self.limiting.bytes_per_second

    def to_dict(self) -> dict:
        return {
            "bytes_per_second": self.bytes_per_second,
            "limiting_hop": None if self.limiting is None else self.limiting.describe(),
            "hops": [hop.to_dict() for hop in self.hops],
        }


def transfer_path(node: Node, pair: PairVerdict) -> List[str]:
    """The functions (and host bridges) a supported pair's bytes pass, provider first.

    With bus addresses that is the engine's path, which turns at the common upstream
    bridge. Through the host bridge the bytes climb both chains to the root complex even
    when the chains share a bridge (ACS redirect sends them up past it).
    """
    if pair.map_type == MapType.BUS_ADDR or pair.client is None:
        return list(pair.path)
    provider = node.functions[pair.provider]
    client = node.functions[pair.client]
    hosts = [provider.host_bridge] + ([client.host_bridge] if client.host_bridge != provider.host_bridge else [])
    return list(node.chain(pair.provider)) + hosts + list(reversed(node.chain(pair.client)))


def hops_of(node: Node, path: Sequence[str]) -> List[Hop]:
    """The PCIe links crossed walking ``path`` (consecutive members are a function and its bridge)."""
    hops: List[Hop] = []
    for first, second in zip(path, path[1:]):
        below = _below(node, first, second)
        if below is None:
            continue
        fn = node.functions[below]
        if fn.port_type in _NO_LINK_ABOVE:
            continue
        # A VF has no link of its own: it shares its PF's.
        link = node.functions[fn.physfn].link if fn.physfn in node.functions else fn.link
        hops.append(Hop(below, first if below == second else second, link.current_speed, link.current_width))
    return hops


def _below(node: Node, first: str, second: str) -> Optional[str]:
    """Which of two neighbours on a path hangs below the other; None for a host bridge step."""
    a = node.functions.get(first)
    b = node.functions.get(second)
    if a is None or b is None:
        return None
    if a.upstream_bdf == second:
        return first
    if b.upstream_bdf == first:
        return second
    return None


def narrowest(hops: Sequence[Hop]) -> LinkLimit:
    """The hop with the fewest usable bytes/s; hops with an unknown speed or width do not count."""
    known = [hop for hop in hops if hop.bytes_per_second is not None]
    limiting = min(known, key=lambda hop: hop.bytes_per_second or 0.0) if known else None
    return LinkLimit(hops=list(hops), limiting=limiting)


def link_limit(node: Node, pairs: Sequence[PairVerdict]) -> LinkLimit:
    """The narrowest link over the paths of ``pairs`` (each link counted once)."""
    seen: Dict[str, Hop] = {}
    for pair in pairs:
        for hop in hops_of(node, transfer_path(node, pair)):
            seen.setdefault(hop.below, hop)
    return narrowest(list(seen.values()))
