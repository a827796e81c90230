"""Where the lab's NVMe drives DMAed: QEMU's ``pci_nvme_map_addr`` trace, mapped onto the guest's PCI BARs.

QEMU's NVMe model logs ``pci_nvme_map_addr addr 0x<bus address> len <bytes>`` for every
PRP or SGL segment a drive reads or writes, so a copy through a peer's CMB shows up as
addresses inside that peer's CMB BAR, and one through host memory as addresses in RAM.
With no IOMMU in the lab guest, bus addresses are the addresses of the guest's
``/sys/bus/pci/devices/<bdf>/resource`` file (one line per BAR: start, end, flags).

Debian 12's qemu-system-x86 7.2 is built with QEMU's default ``log`` trace backend (the
binary has no simpletrace code): ``-trace enable=...,file=F`` writes text lines to F,
line by line while the guest runs, with no rebuild and no simpletrace.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError

TRACE_EVENT = "pci_nvme_map_addr"
TRACE_FILE = "dma.trace"
# sysfs resource lines 0-5 are the BARs; 6 is the expansion ROM, then bridge windows.
_BAR_LINES = 6
_EVENT_RE = re.compile(TRACE_EVENT + r" addr 0x([0-9a-f]+) len (\d+)")
# What the guest prints for every PCI function: a "== <bdf>" line, then its resource file.
GUEST_RESOURCES_COMMAND = (
    "for d in /sys/bus/pci/devices/*; do echo \"== ${d##*/}\"; cat \"$d/resource\"; done"
)


def qemu_trace_args(trace_file: Path) -> List[str]:
    """QEMU arguments that record every NVMe DMA address into ``trace_file``."""
    return ["-trace", "enable=%s,file=%s" % (TRACE_EVENT, trace_file)]


@dataclass(frozen=True)
class Bar:
    bdf: str
    index: int
    first: int
    last: int

    def holds(self, address: int, length: int) -> bool:
        return self.first <= address and address + length - 1 <= self.last


def dma_events(lines: Iterable[str]) -> Iterator[Tuple[int, int]]:
    """(bus address, length) of each ``pci_nvme_map_addr`` line; other lines are skipped."""
    for line in lines:
        match = _EVENT_RE.search(line)
        if match:
            yield int(match.group(1), 16), int(match.group(2))


def parse_resource(bdf: str, text: str) -> List[Bar]:
    """The memory BARs a sysfs ``resource`` file lists (unused BARs read as zeros and are left out)."""
    bars = []
    for index, line in enumerate(text.splitlines()[:_BAR_LINES]):
        start, end, _flags = (int(part, 16) for part in line.split())
        if end > start:
            bars.append(Bar(bdf, index, start, end))
    return bars


def parse_guest_resources(text: str) -> List[Bar]:
    """Every BAR from the output of :data:`GUEST_RESOURCES_COMMAND`."""
    bars: List[Bar] = []
    for block in text.split("== ")[1:]:
        bdf, _, resource = block.partition("\n")
        bars.extend(parse_resource(bdf.strip(), resource))
    return bars


@dataclass
class Landing:
    """DMA that fell inside one BAR (or, with ``bar`` None, inside none: system memory)."""

    bar: Optional[Bar]
    events: int = 0
    bytes: int = 0

    def to_dict(self) -> Dict[str, object]:
        if self.bar is None:
            return {"where": "system memory", "events": self.events, "bytes": self.bytes}
        return {
            "where": "%s BAR %d" % (self.bar.bdf, self.bar.index),
            "bdf": self.bar.bdf,
            "bar": self.bar.index,
            "range": "0x%x-0x%x" % (self.bar.first, self.bar.last),
            "events": self.events,
            "bytes": self.bytes,
        }


def where_dma_went(events: Iterable[Tuple[int, int]], bars: Sequence[Bar]) -> List[Landing]:
    """Events and bytes per BAR they fell in, BARs first (in bdf order), system memory last."""
    by_bar: Dict[Optional[Bar], Landing] = {}
    for address, length in events:
        bar = next((b for b in bars if b.holds(address, length)), None)
        landing = by_bar.setdefault(bar, Landing(bar))
        landing.events += 1
        landing.bytes += length
    in_bars = [by_bar[bar] for bar in sorted((b for b in by_bar if b is not None), key=lambda b: (b.bdf, b.index))]
    return in_bars + ([by_bar[None]] if None in by_bar else [])


def landings(trace_lines: Iterable[str], guest_resources: str) -> List[Landing]:
    """Where the traced DMA went, given the output of :data:`GUEST_RESOURCES_COMMAND` in the guest."""
    return where_dma_went(dma_events(trace_lines), parse_guest_resources(guest_resources))


def read_trace(trace_file: Path) -> List[str]:
    try:
        return trace_file.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        raise P2PError(
            "there is no DMA trace at %s" % trace_file,
            fix="start the node with p2pctl lab up --trace-dma (stop it first with p2pctl lab down)",
        ) from None


__all__ = [
    "GUEST_RESOURCES_COMMAND",
    "TRACE_EVENT",
    "TRACE_FILE",
    "Bar",
    "Landing",
    "dma_events",
    "landings",
    "parse_guest_resources",
    "parse_resource",
    "qemu_trace_args",
    "read_trace",
    "where_dma_went",
]
