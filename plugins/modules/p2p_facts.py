#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: p2p_facts
short_description: Gather the PCIe peer-to-peer DMA model of a node as facts
version_added: "0.1.0"
description:
  - Reads the node the way the kernel's P2PDMA code sees it and returns it as C(ansible_facts.p2pdma).
  - Per PCI function it reports vendor, device and class, PCIe port type, ACS capability and control, the bridges
    up to the host bridge, SR-IOV parent, driver, IOMMU group, NUMA node, link speed and width, and p2pmem
    size, available, published and whether p2pmem/allocate exists (user-space mapping, Linux 6.2+).
  - It also reports NVMe controllers with their decoded CMB registers and namespaces, RDMA devices (software
    C(rxe)/C(siw) devices included), network devices, block devices, and the kernel (release, command line,
    config, CPU, IOMMU use).
  - Files that could not be read (typically PCI config space beyond 64 bytes when not run as root) are listed in
    C(problems) instead of failing the task.
  - Nothing is changed on the node.
author:
  - p2pdma.storage maintainers (@p2pdma)
options: {}
extends_documentation_fragment:
  - p2pdma.storage.attributes
  - p2pdma.storage.node_root
notes:
  - Run with C(become=true); ACS state is unknown to unprivileged readers.
seealso:
  - module: p2pdma.storage.p2p_check
"""

EXAMPLES = r"""
- name: Gather the P2PDMA model of the node
  become: true
  p2pdma.storage.p2p_facts:

- name: Show the providers that publish p2pmem
  ansible.builtin.debug:
    msg: >-
      {{ ansible_facts.p2pdma.functions | dict2items
         | selectattr('value.p2pmem') | selectattr('value.p2pmem.published')
         | map(attribute='key') | list }}

- name: Judge a snapshot attached to a bug report, on the controller
  delegate_to: localhost
  p2pdma.storage.p2p_facts:
    root: /tmp/node7-snapshot.tar.gz
"""

RETURN = r"""
ansible_facts:
  description: Facts to add to C(ansible_facts).
  returned: always
  type: dict
  contains:
    p2pdma:
      description: The node model.
      returned: always
      type: dict
      contains:
        functions:
          description:
            - PCI functions by BDF (C(dddd:bb:dd.f)), each with C(vendor), C(device), C(class_code), C(port_type),
              C(is_bridge), C(acs) (null when unknown), C(upstream_bdf), C(physfn), C(driver), C(iommu_group),
              C(numa_node), link speed and width, C(p2pmem) (null without a p2pmem pool) and C(host_bridge).
          type: dict
          sample:
            "0000:02:00.0":
              vendor: "1b36"
              device: "0010"
              class: "010802"
              driver: nvme
              iommu_group: null
              p2pmem: {size: 67108864, available: 67108864, published: true, allocate: true}
        nvme:
          description: NVMe controllers by name, with transport, PCI function, decoded CMB and namespaces.
          type: dict
        rdma:
          description: RDMA devices by name, with the PCI function (null for software devices) and software kind.
          type: dict
        netdevs:
          description: Network devices by name, with their PCI function.
          type: dict
        block:
          description: Block devices by name, with their kind (nvme-pci, nvme-fabrics, nvme-multipath, dm, md, loop).
          type: dict
        kernel:
          description: Kernel release, command line, config options, architecture, CPU vendor and family, IOMMU use.
          type: dict
        problems:
          description: Files that exist but could not be read, with the reason.
          type: list
          elements: str
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError  # noqa: E402
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.reader import read_node  # noqa: E402
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.snapshot import open_root  # noqa: E402


def main() -> None:
    module = AnsibleModule(
        argument_spec={"root": {"type": "path", "default": "/"}},
        supports_check_mode=True,
    )
    try:
        node = read_node(open_root(module.params["root"]))
    except P2PError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, ansible_facts={"p2pdma": node.to_dict()})


if __name__ == "__main__":
    main()
