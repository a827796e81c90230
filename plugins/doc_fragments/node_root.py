# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ``root`` option and attributes of the modules that read a node without changing it."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  root:
    description:
      - The tree to read, laid out like C(/).
      - A directory (C(/) on a live node, or a copy of a node's C(/sys) and C(/proc)), or a snapshot file written by
        C(p2pctl snapshot -o FILE.tar.gz).
    type: path
    default: /
attributes:
  check_mode:
    support: full
    description: The module only reads; check mode gives the same answer.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
"""
