# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A node's serial console log, read while the node boots a kernel on trial.

The log only grows (QEMU's ``-serial file:``, a console server's capture). Everything the
node printed after the reboot was asked for starts at a known offset; in it, the trial boot
is the first kernel's output, from its ``Linux version`` banner to the next banner (the
node rebooted) or to the end of what is written so far. Its console tells a boot that will
never come up (a panic, initramfs-tools giving up on the root device, systemd's emergency
mode) long before any timeout would.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import List, Optional, Sequence

# printk's banner, the first line every kernel prints: "Linux version 6.12.117-p2p4cefdc2c6c27 (...".
_BANNER = re.compile(r"Linux version (\S+)")
# Cursor movement and colours of systemd's status lines.
_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# What a boot that will not reach userspace prints, from the kernel, initramfs-tools' panic() and systemd.
FAILURES = (
    "Kernel panic - not syncing",
    "Rebooting automatically due to panic= boot argument",
    "Halting automatically due to panic= boot argument",
    "Gave up waiting for root file system device",
    "Dropping to a shell!",
    "You are in emergency mode",
)


def clean_lines(text: str) -> List[str]:
    """Console text as lines without terminal escapes.

    A lone carriage return ends a line too: a new kernel's banner follows the old boot's last, unfinished
    line that way.
    """
    return [_ESCAPE.sub("", line) for line in re.split(r"\r\n|\r|\n", text)]


@dataclass(frozen=True)
class BootFailure:
    reason: str
    lines: Sequence[str]  # the console up to the line that tells


@dataclass(frozen=True)
class TrialBoot:
    """The first boot in a piece of console output, as far as it is written."""

    release: Optional[str]  # from its banner; None while no kernel has started yet
    lines: Sequence[str]  # its console lines, banner first
    next_release: Optional[str]  # the release of the boot after it, once one started

    @property
    def started(self) -> bool:
        return self.release is not None

    def failure(self, expected_release: str) -> Optional[BootFailure]:
        """Why this boot will not come up on ``expected_release``; None while nothing says so."""
        if self.release is not None and self.release != expected_release:
            return BootFailure("the node booted %s instead of %s" % (self.release, expected_release), self.lines[:1])
        for index, line in enumerate(self.lines):
            if any(marker in line for marker in FAILURES):
                return BootFailure(line.strip(), self.lines[: index + 1])
        if self.next_release is not None:
            return BootFailure(
                "the node rebooted into %s before %s answered" % (self.next_release, expected_release), self.lines
            )
        return None


def trial_boot(text: str) -> TrialBoot:
    """The first boot in ``text``, the console output since the reboot was asked for."""
    lines = clean_lines(text)
    banners = [(index, match.group(1)) for index, match in enumerate(map(_BANNER.search, lines)) if match]
    if not banners:
        return TrialBoot(None, [], None)
    (first, release), later = banners[0], banners[1:2]
    if not later:
        return TrialBoot(release, lines[first:], None)
    (second, next_release) = later[0]
    return TrialBoot(release, lines[first:second], next_release)
