# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Attributes shared by the collection's modules: the platform, and check/diff support of modules that change a node."""

from __future__ import annotations


class ModuleDocFragment:
    # Every module reads Linux sysfs, procfs, configfs or GRUB files.
    DOCUMENTATION = r"""
attributes:
  platform:
    support: full
    platforms: posix
    description: Runs on Linux nodes; the files it reads and writes (sysfs, procfs, GRUB, kernel trees) are Linux's.
"""

    # Modules that plan, then apply: check mode computes the same actions and runs none of them.
    CHANGES = r"""
attributes:
  check_mode:
    support: full
    description: Computes the same actions and returns them without running any.
  diff_mode:
    support: full
    description: Returns the state before and after the actions.
"""
