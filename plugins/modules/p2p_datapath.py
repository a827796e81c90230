#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: p2p_datapath
short_description: Prove the PCIe peer-to-peer data path by copying bytes through a provider's p2pmem
version_added: "0.1.0"
description:
  - Maps the p2pmem of O(provider) into the process (C(/sys/bus/pci/devices/<bdf>/p2pmem/allocate), Linux 6.2 and
    later), reads O(size) bytes at O(offset) of O(source) into it with O_DIRECT and writes them to O(destination)
    with O_DIRECT, so that the drives DMA into and out of the provider's BAR.
  - Verifies the copy by comparing the sha256 of the source range with the destination range read back through
    host memory, then runs the same copy through a host-memory buffer and reports both throughputs and the link
    limit (the narrowest PCIe link on the peer-to-peer path, less line encoding).
  - RV(p2p_used) is what the kernel did, not what the module expected. It is true only when the I/O with p2pmem
    pages succeeded and C(p2pmem/available) dropped by the buffer while it was mapped.
  - Before any I/O it refuses, with the reason and the fix, a pair the kernel's distance check rejects, a multipath
    head node or fabrics namespace (no P2PDMA queue, the kernel would answer EREMOTEIO), a kernel without
    C(p2pmem/allocate), an unpublished provider, and a size larger than the provider's available p2pmem.
  - B(The copy destroys the destination's data in that range.) A destination that is mounted, held (C(holders/)),
    or carries a partition table or a filesystem signature is refused unless O(force=true).
  - Without O(destination) only the read half runs, and the bytes that landed in p2pmem are checked against the
    source.
author:
  - p2pdma.storage maintainers (@p2pdma)
options:
  source:
    description:
      - The NVMe namespace to read, as C(nvme2n1) or C(/dev/nvme2n1). It must belong to a PCIe NVMe controller.
    type: str
    required: true
  destination:
    description:
      - The NVMe namespace to overwrite, as C(nvme1n1) or C(/dev/nvme1n1).
      - Omit it to read into p2pmem only.
    type: str
  provider:
    description:
      - The device whose p2pmem is the buffer, as a PCI address (C(0000:03:00.0)) or an NVMe controller (C(nvme0)).
    type: str
    required: true
  size:
    description:
      - Bytes to copy, in bytes or with a binary unit (C(64M), C(1G)).
      - A multiple of the page size and of both namespaces' logical block size; at most the provider's
        C(p2pmem/available). The whole size is mapped as one buffer.
    type: str
    required: true
  offset:
    description:
      - Byte offset of the range in both namespaces; a multiple of their logical block size.
    type: str
    default: "0"
  force:
    description:
      - Overwrite a destination that is mounted, held, or carries a partition table or filesystem signature.
    type: bool
    default: false
  root:
    description:
      - The tree laid out like C(/) that holds C(/sys), C(/proc) and C(/dev); C(/) on a live node.
    type: path
    default: /
attributes:
  check_mode:
    support: full
    description: Runs every refusal and returns what would be written in RV(would_write); reads and writes nothing.
  diff_mode:
    support: full
    description: The diff names the destination range before and after.
notes:
  - Needs root, a kernel with C(CONFIG_PCI_P2PDMA=y) of release 6.2 or later, and a provider that publishes p2pmem.
seealso:
  - module: p2pdma.storage.p2p_check
"""

EXAMPLES = r"""
- name: Copy 64 MiB from plain0 to cmb1 through cmb0's p2pmem and verify it
  become: true
  p2pdma.storage.p2p_datapath:
    source: /dev/nvme2n1
    destination: /dev/nvme1n1
    provider: nvme0
    size: 64M
  register: copy

- name: Fail unless the kernel really used p2pmem
  ansible.builtin.assert:
    that:
      - copy.p2p_used
      - copy.sha256.source == copy.sha256.destination

- name: Say what would be overwritten, without any I/O
  p2pdma.storage.p2p_datapath:
    source: nvme2n1
    destination: nvme1n1
    provider: "0000:03:00.0"
    size: 16M
    offset: 1G
  check_mode: true

- name: Prove only the read half (nothing is written)
  become: true
  p2pdma.storage.p2p_datapath:
    source: nvme2n1
    provider: nvme0
    size: 4M
"""

RETURN = r"""
bytes:
  description: Bytes copied (or read, without a destination).
  returned: success, not in check mode
  type: int
  sample: 67108864
p2p_used:
  description: True when the I/O with p2pmem pages succeeded and p2pmem/available dropped by the buffer while held.
  returned: success, not in check mode
  type: bool
  sample: true
sha256:
  description: Checksums of the source range and of the destination range read back through host memory.
  returned: success, not in check mode
  type: dict
  contains:
    source:
      description: sha256 of the source range.
      type: str
    destination:
      description: sha256 of the destination range; null without a destination.
      type: str
seconds:
  description: Seconds the copy through p2pmem took, fsync included.
  returned: success, not in check mode
  type: float
throughput:
  description: Bytes per second through p2pmem.
  returned: success, not in check mode
  type: float
host_memory_throughput:
  description: Bytes per second of the same copy through a host-memory buffer.
  returned: success, not in check mode
  type: float
ratio_to_host_memory:
  description: RV(throughput) divided by RV(host_memory_throughput).
  returned: success, not in check mode
  type: float
ratio_to_link_limit:
  description: RV(throughput) divided by the link limit (null when no link speed is known).
  returned: success, not in check mode
  type: float
link_limit:
  description: The narrowest PCIe link on the peer-to-peer path, in bytes per second less line encoding.
  returned: always
  type: dict
  contains:
    bytes_per_second:
      description: Usable bytes per second of the limiting link.
      type: float
    limiting_hop:
      description: The limiting link, as C(function -- bridge (speed width)).
      type: str
    hops:
      description: Every link crossed, with its speed, width and bytes per second.
      type: list
      elements: dict
  sample:
    bytes_per_second: 250000000.0
    limiting_hop: "0000:03:00.0 -- 0000:02:00.0 (2.5 GT/s x1)"
path:
  description: Per namespace, the PCI functions (and host bridges) between the provider and that namespace.
  returned: always
  type: dict
  sample: {"nvme2n1": ["0000:03:00.0", "0000:02:00.0", "0000:01:00.0", "0000:02:02.0", "0000:05:00.0"]}
evidence:
  description: What was read and measured to reach RV(p2p_used) and the checksum verdict.
  returned: success, not in check mode
  type: list
  elements: str
would_write:
  description: What the copy reads and which bytes of which device it overwrites.
  returned: always
  type: str
  sample: "read 67108864 bytes at offset 0 of /dev/nvme2n1 (0000:05:00.0) into p2pmem of 0000:03:00.0; ..."
actions:
  description: The writes done (or, in check mode, that would be done).
  returned: always
  type: list
  elements: str
plan:
  description: The resolved source, destination, provider, sizes and what O(force) let through.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError  # noqa: E402
from ansible_collections.p2pdma.storage.plugins.module_utils.datapath.copy import run_copy  # noqa: E402
from ansible_collections.p2pdma.storage.plugins.module_utils.datapath.plan import (  # noqa: E402
    CopyPlan,
    parse_size,
    plan_copy,
)
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.reader import read_node  # noqa: E402
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.snapshot import open_root  # noqa: E402


def _diff(plan: CopyPlan) -> dict:
    if plan.destination is None:
        return {}
    where = "%s bytes %d-%d" % (plan.destination.device, plan.offset, plan.offset + plan.size - 1)
    return {
        "before": "%s: what the device holds\n" % where,
        "after": "%s: a copy of %s bytes %d-%d\n"
        % (where, plan.source.device, plan.offset, plan.offset + plan.size - 1),
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "source": {"type": "str", "required": True},
            "destination": {"type": "str"},
            "provider": {"type": "str", "required": True},
            "size": {"type": "str", "required": True},
            "offset": {"type": "str", "default": "0"},
            "force": {"type": "bool", "default": False},
            "root": {"type": "path", "default": "/"},
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        root = open_root(params["root"])
        plan = plan_copy(
            read_node(root),
            params["source"],
            params["destination"],
            params["provider"],
            parse_size(params["size"]),
            parse_size(params["offset"]),
            params["force"],
        )
    except P2PError as exc:
        module.fail_json(msg=str(exc))
    summary = plan.to_dict()
    actions = [plan.describe()] if plan.destination is not None else []
    result = {
        "would_write": plan.describe(),
        "actions": actions,
        "plan": summary,
        "link_limit": summary["link_limit"],
        "path": summary["path"],
        "diff": _diff(plan),
    }
    if module.check_mode:
        module.exit_json(changed=bool(actions), **result)
    try:
        result.update(run_copy(plan, root))
    except P2PError as exc:
        module.fail_json(msg=str(exc), **result)
    module.exit_json(changed=bool(actions), **result)


if __name__ == "__main__":
    main()
