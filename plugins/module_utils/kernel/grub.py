# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""GRUB's generated menu and environment block, read to boot a kernel release once or by default.

``grub-reboot`` and ``grub-set-default`` take a menu entry path such as
``gnulinux-advanced-UUID>gnulinux-6.1.0-advanced-UUID``: the ids of the submenu and of
the entry, which stay valid when update-grub reorders the menu for a newer kernel
(plain indexes would not).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Optional

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError

_OPEN = re.compile(r"^\s*(menuentry|submenu)\s+(?:'([^']*)'|\"([^\"]*)\").*?\$menuentry_id_option\s+'([^']+)'.*\{\s*$")
_LINUX = re.compile(r"^\s*linux(?:efi|16)?\s+\S*/vmlinuz-(\S+)")


@dataclass(frozen=True)
class MenuEntry:
    title: str
    path: str  # ids joined with '>', as grub-reboot takes them
    release: Optional[str]
    recovery: bool


def parse_menu(grub_cfg: str) -> List[MenuEntry]:
    """Every menu entry of a generated grub.cfg, with the kernel release it boots."""
    entries: List[MenuEntry] = []
    stack: List[str] = []  # ids of the open submenus, then of the open entry
    kinds: List[str] = []
    current: Optional[Dict[str, object]] = None
    for line in grub_cfg.splitlines():
        opened = _OPEN.match(line)
        if opened:
            kind, title, entry_id = opened.group(1), opened.group(2) or opened.group(3), opened.group(4)
            stack.append(entry_id)
            kinds.append(kind)
            if kind == "menuentry":
                current = {"title": title, "path": ">".join(stack), "release": None}
            continue
        if current is not None:
            linux = _LINUX.match(line)
            if linux:
                current["release"] = linux.group(1)
        if line.strip() == "}" and kinds:
            if kinds.pop() == "menuentry" and current is not None:
                title = str(current["title"])
                entries.append(
                    MenuEntry(
                        title=title,
                        path=str(current["path"]),
                        release=current["release"],  # type: ignore[arg-type]
                        recovery="recovery mode" in title,
                    )
                )
                current = None
            stack.pop()
    return entries


def entry_for(entries: List[MenuEntry], release: str) -> MenuEntry:
    """The normal (not recovery) entry inside a submenu that boots ``release``; it names the release exactly."""
    candidates = [entry for entry in entries if entry.release == release and not entry.recovery]
    if not candidates:
        known = sorted({entry.release for entry in entries if entry.release})
        raise P2PError(
            "GRUB has no menu entry for kernel %s (entries boot: %s)" % (release, ", ".join(known) or "none"),
            fix="install the kernel package and run update-grub",
        )
    # The "Advanced options" entry carries the release in its id; the top "simple" one follows the newest kernel.
    candidates.sort(key=lambda entry: ">" not in entry.path)
    return candidates[0]


def parse_grubenv(text: str) -> Dict[str, str]:
    """The variables of a grubenv block (saved_entry, next_entry, ...); the # padding is ignored."""
    values = {}
    for line in text.splitlines():
        if line.startswith("#") or "=" not in line:
            continue
        name, value = line.split("=", 1)
        values[name] = value
    return values
