#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: p2p_check
short_description: Check a node for PCIe peer-to-peer DMA and predict the kernel's verdicts
version_added: "0.1.0"
description:
  - Runs the node's P2PDMA checks and reports each as PASS, WARN or FAIL with why, fix and the evidence read
    (sysfs and procfs paths and their values).
  - The checks cover the kernel (C(CONFIG_PCI_P2PDMA) and what an NVMe-oF RDMA target needs), the architecture,
    the IOMMU and ACS state, unreadable PCI config space, every provider's p2pmem (present, published, size and
    free memory, and why a CMB is not published), the locality of the providers and clients as the kernel's
    C(calc_map_type_and_dist) decides it, competing providers, IOMMU groups shared with passthrough devices,
    software RDMA devices and namespaces on block devices that cannot do P2P.
  - The locality verdicts follow the rules (host-bridge whitelist, ACS parameters) of the kernel release found on
    the node.
  - The task fails when a check reports FAIL (or WARN, with I(fail_on=warn)). Nothing is changed on the node.
author:
  - p2pdma.storage maintainers (@p2pdma)
options:
  providers:
    description:
      - The p2pmem providers to judge, as PCI addresses (C([domain:]bus:dev.fn)) or NVMe controller names (C(nvme0)).
      - When empty, every device with p2pmem is judged, and locality asks whether some published provider serves
        all I(clients), which is what nvmet's C(p2pmem=1) does.
    type: list
    elements: str
    default: []
  clients:
    description:
      - The peer-to-peer clients, as PCI addresses or names, C(nvme0), C(nvme0n1), an RDMA device (C(mlx5_0)) or a
        network device.
      - Without clients no locality is judged.
    type: list
    elements: str
    default: []
  policy:
    description:
      - C(kernel) accepts every path the kernel accepts (C(bus_addr) and C(thru_host_bridge)).
      - C(switch) requires C(bus_addr), a path that turns at a PCIe switch or bridge below the host bridge, as the
        original P2PDMA series did.
    type: str
    choices: [kernel, switch]
    default: kernel
  fail_on:
    description:
      - C(fail) fails the task when any check reports FAIL.
      - C(warn) fails it on WARN as well.
    type: str
    choices: [warn, fail]
    default: fail
extends_documentation_fragment:
  - p2pdma.storage.attributes
  - p2pdma.storage.node_root
notes:
  - Run with C(become=true); ACS state needs root, and without it the task warns about unreadable config space.
  - Check ids and what each one means are listed in the collection's docs/checks.md.
seealso:
  - module: p2pdma.storage.p2p_facts
"""

EXAMPLES = r"""
- name: Check that the NIC can use the CMB of nvme0 through the switch
  become: true
  p2pdma.storage.p2p_check:
    providers: [nvme0]
    clients: [mlx5_0, nvme1n1]
    policy: switch

- name: Check that some published provider serves the NVMe-oF namespaces, and fail on warnings too
  become: true
  p2pdma.storage.p2p_check:
    clients: [mlx5_0, nvme1n1, nvme2n1]
    fail_on: warn

- name: Judge a snapshot attached to a bug report, without failing
  delegate_to: localhost
  p2pdma.storage.p2p_check:
    root: /tmp/node7-snapshot.tar.gz
    providers: ["0000:03:00.0"]
    clients: ["0000:05:00.0"]
  register: node7
  ignore_errors: true

- name: Show why
  ansible.builtin.debug:
    msg: "{{ node7.checks | rejectattr('status', 'eq', 'PASS') | list }}"
"""

RETURN = r"""
status:
  description: The worst status of all checks.
  returned: always
  type: str
  sample: WARN
checks:
  description: One record per check.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: The check, and after a colon the device it is about (see docs/checks.md).
      type: str
      sample: provider:0000:03:00.0
    status:
      description: C(PASS), C(WARN) or C(FAIL).
      type: str
      sample: PASS
    why:
      description: What was found and what it means.
      type: str
      sample: 0000:03:00.0 (nvme0) publishes 16 MiB of p2pmem, 16 MiB free
    fix:
      description: What to do about a WARN or FAIL; null on PASS.
      type: str
      sample: add nvme.use_cmb_sqes=0 to the kernel command line
    evidence:
      description: The paths read and their values, or the verdict behind a locality check.
      type: dict
      sample: {"/sys/bus/pci/devices/0000:03:00.0/p2pmem/published": 1}
verdicts:
  description:
    - The kernel's verdict for each judged provider and the clients (C(pci_p2pdma_distance_many)).
    - Empty without I(clients).
  returned: always
  type: list
  elements: dict
  contains:
    provider:
      description: The provider's PCI address.
      type: str
      sample: "0000:03:00.0"
    supported:
      description: Whether the kernel accepts every client.
      type: bool
      sample: true
    distance:
      description: The sum of the clients' distances, -1 if any client is not supported.
      type: int
      sample: 8
    clients:
      description:
        - Per client, C(client) (PCI address), C(map_type) (C(bus_addr), C(thru_host_bridge) or C(not_supported)),
          C(distance), C(common_upstream), C(acs_redirect) (the devices whose ACS redirects), C(path), C(reason),
          C(fix) and C(kernel_params) (boot parameters the path needs, that is those that would clear its ACS redirect,
          or those on the command line that already keep it clear).
      type: list
      elements: dict
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError  # noqa: E402
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.checks import (  # noqa: E402
    FAIL,
    PASS,
    POLICIES,
    run_checks,
    worst_status,
)
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.reader import read_node  # noqa: E402
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.snapshot import open_root  # noqa: E402


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "providers": {"type": "list", "elements": "str", "default": []},
            "clients": {"type": "list", "elements": "str", "default": []},
            "policy": {"type": "str", "choices": list(POLICIES), "default": "kernel"},
            "root": {"type": "path", "default": "/"},
            "fail_on": {"type": "str", "choices": ["warn", "fail"], "default": "fail"},
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        results = run_checks(
            read_node(open_root(params["root"])), params["providers"], params["clients"], params["policy"]
        )
    except P2PError as exc:
        module.fail_json(msg=str(exc))
    checks = [result.to_dict() for result in results]
    verdicts = [verdict.to_dict() for result in results for verdict in result.verdicts]
    status = worst_status(results)
    failed = [r for r in results if r.status == FAIL or (params["fail_on"] == "warn" and r.status != PASS)]
    if failed:
        module.fail_json(
            msg="%d P2PDMA check(s) failed: %s" % (len(failed), "; ".join("%s: %s" % (r.id, r.why) for r in failed)),
            status=status,
            checks=checks,
            verdicts=verdicts,
        )
    module.exit_json(changed=False, status=status, checks=checks, verdicts=verdicts)


if __name__ == "__main__":
    main()
