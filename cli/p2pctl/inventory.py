"""Starter inventories and node additions that keep the user's file as it was written.

``p2pctl inventory init`` writes a commented hosts.yml and group_vars/all.yml; ``add-node`` edits a
YAML inventory through a ruamel.yaml round trip, so comments, order and quoting survive.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.common.files import write_atomic

DEFAULT_GROUP = "storage"

HOSTS_YML = """\
---
# The storage nodes that `p2pctl provision --inventory {directory}` takes from a stock Debian to a verified
# NVMe-oF target with p2pmem (or: ansible-playbook -i {directory} p2pdma.storage.site).
#
# Add a node:   p2pctl inventory add-node NAME --address ADDRESS [--port 22] [--user root] --inventory {directory}
# Variables for every node are in group_vars/all.yml, for one node in host_vars/NAME.yml.
all:
  children:
    # The nodes the site playbook provisions. The kernel is built once, on this controller
    # (kernel_build_hosts, default localhost), and installed on each of them. A node looks like:
    #   node1:
    #     ansible_host: 192.0.2.11
    #     ansible_user: root
    {group}:
      hosts: {{}}
"""

GROUP_VARS_YML = """\
---
# Variables for every node. Each one is documented, with its default, in its role's meta/argument_specs.yml
# (docs/provision.md lists them by phase); the defaults are safe. Uncomment what you change.
# A misspelt name is refused by the validation that runs before any change.

# Phase kernel_build: the P2PDMA kernel, built once on the controller.
# kernel_build_version: "6.12"                  # the series: kernel-src/patches/6.12
# kernel_build_extra_fragments: []              # more config fragments after p2pdma.config

# Phase kernel_install: the kernel command line, the trial boot and what it must show.
# kernel_install_use_cmb_sqes: false            # nvme.use_cmb_sqes=0: every CMB stays free for p2pmem
# kernel_install_pseudo_cmb_ids: ["1b36:0010"]  # PCI ids whose BAR 4 is used as a CMB (the pseudo-CMB quirk)
# kernel_install_expected_p2pmem:               # devices that must publish p2pmem after the trial boot
#   - device: "0000:03:00.0"
# kernel_install_p2p_clients: ["0000:05:00.0"]  # P2P clients whose paths set the ACS parameters

# Phase nvmet: the NVMe-oF target, in nvmetcli's JSON schema (usually per node, in host_vars/NAME.yml).
# nvmet_config:
#   hosts:
#     - nqn: nqn.2026-01.com.example:client1
#   subsystems:
#     - nqn: nqn.2026-01.com.example:store1
#       allowed_hosts: [nqn.2026-01.com.example:client1]
#       namespaces:
#         - nsid: 1
#           device: {{path: /dev/disk/by-path/pci-0000:05:00.0-nvme-1}}
#           p2pmem: auto
#   ports:
#     - portid: 1
#       addr: {{trtype: rdma, adrfam: ipv4, traddr: 192.0.2.11, trsvcid: "4420"}}
#       subsystems: [nqn.2026-01.com.example:store1]

# Phase verify: the P2PDMA checks after everything else.
# p2p_check_accept:                             # known WARNs, check id -> reason
#   "rdma:rxe0": soft-RoCE carries the management network only
"""


def init(directory: Path, group: str = DEFAULT_GROUP) -> List[Path]:
    """Write hosts.yml and group_vars/all.yml under ``directory``; refuses to overwrite either."""
    files = {directory / "hosts.yml": HOSTS_YML, directory / "group_vars" / "all.yml": GROUP_VARS_YML}
    existing = [str(path) for path in files if path.exists()]
    if existing:
        raise P2PError("%s already exist%s" % (" and ".join(existing), "s" if len(existing) == 1 else ""),
                       fix="add nodes with 'p2pctl inventory add-node', or init another directory")
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(str(path), text.format(directory=directory, group=group))
    return list(files)


def inventory_file(path: Path) -> Path:
    """The YAML file of an inventory given as a file or as a directory holding hosts.yml."""
    candidate = path / "hosts.yml" if path.is_dir() else path
    if not candidate.is_file():
        raise P2PError("no inventory file %s" % candidate,
                       fix="write one with 'p2pctl inventory init %s', or pass --inventory" % path)
    if candidate.suffix not in (".yml", ".yaml"):
        raise P2PError("%s is not a YAML inventory: add-node edits YAML inventories only" % candidate,
                       fix="convert it (ansible-inventory -i %s --list -y) or add the node by hand" % candidate)
    return candidate


def add_node(path: Path, name: str, address: str, port: Optional[int] = None, user: Optional[str] = None,
             group: str = DEFAULT_GROUP) -> Path:
    """Add ``name`` to ``group`` of the YAML inventory at ``path``; comments and order are kept."""
    target = inventory_file(path)
    yaml = _round_trip()
    with open(target, encoding="utf-8") as handle:
        document = yaml.load(handle)
    if not isinstance(document, dict) or not isinstance(document.get("all"), dict):
        raise P2PError("%s has no 'all' group at the top" % target,
                       fix="start from 'p2pctl inventory init', which writes all: children: %s: hosts:" % group)
    for where, host, values in _hosts(document["all"], "all"):
        if host == name:
            raise P2PError("node %s is already in %s (group %s)" % (name, target, where),
                           fix="pick another name, or edit that entry in %s" % target)
        if isinstance(values, dict) and values.get("ansible_host", host) == address \
                and values.get("ansible_port") == port:
            raise P2PError("address %s%s is already node %s in %s (group %s)"
                           % (address, ":%d" % port if port else "", host, target, where),
                           fix="give each node its own address, or edit %s" % target)
    hosts = _group_hosts(document["all"], group)
    entry = CommentedMap([("ansible_host", address)])
    if port is not None:
        entry["ansible_port"] = port
    if user is not None:
        entry["ansible_user"] = user
    hosts[name] = entry
    text = _dump(yaml, document)
    write_atomic(str(target), text)
    return target


def _round_trip() -> YAML:
    yaml = YAML()  # round-trip mode: comments, order and quotes are kept
    yaml.preserve_quotes = True
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.explicit_start = True
    return yaml


def _dump(yaml: YAML, document: Any) -> str:
    stream = io.StringIO()
    yaml.dump(document, stream)
    return stream.getvalue()


def _hosts(group: Dict[str, Any], name: str) -> Iterator[Tuple[str, str, Any]]:
    """(group, host, its variables) for every host below ``group``."""
    for host, values in (group.get("hosts") or {}).items():
        yield name, host, values
    for child, sub in (group.get("children") or {}).items():
        yield from _hosts(sub or {}, child)


def _group_hosts(top: CommentedMap, group: str) -> CommentedMap:
    """The hosts map of ``group`` (a child of all), made when missing."""
    if top.get("children") is None:
        top["children"] = CommentedMap()
    children = top["children"]
    if children.get(group) is None:
        children[group] = CommentedMap()
    if children[group].get("hosts") is None:
        children[group]["hosts"] = CommentedMap()
    hosts = children[group]["hosts"]
    if not hosts:
        hosts.fa.set_block_style()  # init's "hosts: {}" grows into a block, like the rest of the file
    return hosts


__all__ = ["DEFAULT_GROUP", "add_node", "init", "inventory_file"]
