#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: p2p_check
short_description: Check a node for PCIe peer-to-peer DMA and predict the kernel's verdicts
version_added: "0.1.0"
description:
  - Runs the node's P2PDMA checks and returns the node report (format C(p2pdma.storage/report/v1)), the same
    report C(p2pctl check --json) prints. Each check is PASS, WARN or FAIL with why, fix and the evidence read
    (sysfs and procfs paths and their values).
  - The checks cover the kernel (C(CONFIG_PCI_P2PDMA) and what an NVMe-oF RDMA target needs), the architecture,
    the IOMMU and ACS state, unreadable PCI config space, every provider's p2pmem (present, published, size and
    free memory, and why a CMB is not published, the pseudo-CMB quirk included), the locality of the providers
    and clients as the kernel's C(calc_map_type_and_dist) decides it, competing providers, IOMMU groups shared
    with passthrough devices, software RDMA devices and namespaces on block devices that cannot do P2P.
  - The report lists the provider/client pairs judged. Without I(clients), every published provider is judged
    against every NVMe controller and RDMA device.
  - The verdicts follow the rules (host-bridge whitelist, ACS parameters) of the kernel the node runs.
  - Every WARN that is not accepted becomes an Ansible warning. The task fails according to I(fail_on); C(msg)
    names the first FAIL and its fix. Nothing is changed on the node.
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
      - When empty, every NVMe controller and RDMA device is a client of the pair matrix, and no locality check is
        made.
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
  accept:
    description:
      - Known WARNs to accept, as check id (for example C(rdma:rxe0)) to the reason they are fine on this node.
      - An accepted WARN stays in the report with C(accepted=true) and its C(accept_reason), is not turned into an
        Ansible warning, and no longer counts for C(status) or I(fail_on). Only a WARN can be accepted.
    type: dict
    default: {}
  fail_on:
    description:
      - C(fail) fails the task when any check reports FAIL.
      - C(warn) fails it on a WARN that is not accepted as well.
      - C(never) returns the report without failing, so that a role can print every non-PASS check before it fails
        the host (the p2pdma.storage.p2p_check role does).
    type: str
    choices: [warn, fail, never]
    default: fail
extends_documentation_fragment:
  - p2pdma.storage.attributes
  - p2pdma.storage.node_root
notes:
  - Run with C(become=true); ACS state needs root, and without it the task warns about unreadable config space.
  - Check ids and what each one means are listed in the collection's docs/checks.md.
  - On a local connection without become (snapshots judged on the controller with O(root), or the controller
    itself), the module's action judges in Ansible's own process instead of starting the module, with the same
    options and the same result, and without a Python process per host.
  - The p2pdma.storage.p2p_check role runs this module with O(fail_on=never), prints every non-PASS check with its
    fix, and then fails the host.
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
    accept:
      rdma:rxe0: soft-RoCE carries the management network only

- name: Judge a snapshot attached to a bug report, without failing
  delegate_to: localhost
  p2pdma.storage.p2p_check:
    root: /tmp/node7-snapshot.tar.gz
    providers: ["0000:03:00.0"]
    clients: ["0000:05:00.0"]
    fail_on: never
  register: node7

- name: Show why
  ansible.builtin.debug:
    msg: "{{ node7.checks | rejectattr('status', 'eq', 'PASS') | list }}"
"""

RETURN = r"""
msg:
  description: The status and counts in one line, and the first FAIL with its fix.
  returned: always
  type: str
  sample: "FAIL: 9 PASS, 1 WARN, 1 FAIL; first FAIL locality:0000:03:00.0: ...; fix: ..."
format:
  description: The report's format and version.
  returned: always
  type: str
  sample: p2pdma.storage/report/v1
host:
  description: The node's host name as its kernel gives it (C(/proc/sys/kernel/hostname)); null when unnamed.
  returned: always
  type: str
  sample: storage7
root:
  description: The tree judged, C(/) or the snapshot's path.
  returned: always
  type: str
  sample: /
kernel:
  description: The running kernel and the P2PDMA rules it was judged with.
  returned: always
  type: dict
  contains:
    release:
      description: C(/proc/sys/kernel/osrelease).
      type: str
      sample: 6.1.0-28-amd64
    version:
      description: The upstream version (from C(/proc/version) where the release hides the sublevel).
      type: str
      sample: 6.1.119
    rules:
      description: C(version) of the rules applied, C(whitelist_entries) (host bridges whitelisted) and C(note)
        (why the rules are less certain than usual, or null).
      type: dict
      sample: {"version": "6.1.119", "whitelist_entries": 10, "note": null}
policy:
  description: The policy judged with.
  returned: always
  type: str
  sample: kernel
status:
  description: The worst status of all checks, accepted WARNs left out.
  returned: always
  type: str
  sample: WARN
summary:
  description: How many checks are C(PASS), C(WARN) and C(FAIL) (accepted WARNs left out), and how many are
    C(accepted).
  returned: always
  type: dict
  sample: {"PASS": 12, "WARN": 1, "FAIL": 0, "accepted": 1}
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
    accepted:
      description: Whether the WARN was accepted with I(accept).
      type: bool
      sample: false
    accept_reason:
      description: The reason given in I(accept); null when not accepted.
      type: str
      sample: soft-RoCE carries the management network only
pairs:
  description:
    - The provider/client pairs judged, with the key names of C(p2pctl distance --json).
  returned: always
  type: list
  elements: dict
  contains:
    provider:
      description: The provider's PCI address.
      type: str
      sample: "0000:03:00.0"
    client:
      description: The client's PCI address; null for a client that is not a PCI device.
      type: str
      sample: "0000:05:00.0"
    client_name:
      description: The name the client was given by (C(mlx5_0), C(nvme1)), null when given as an address.
      type: str
      sample: mlx5_0
    map_type:
      description: C(bus_addr), C(thru_host_bridge) or C(not_supported).
      type: str
      sample: bus_addr
    distance:
      description: The kernel's distance, -1 when not supported.
      type: int
      sample: 4
    acs_redirect:
      description: The devices on the path whose ACS redirects.
      type: list
      elements: str
      sample: []
    path:
      description: The PCI functions (and host bridges) the transfer crosses, provider first.
      type: list
      elements: str
      sample: ["0000:03:00.0", "0000:02:00.0", "0000:01:00.0", "0000:02:02.0", "0000:05:00.0"]
    reason:
      description: Why the kernel decides so.
      type: str
      sample: 0000:03:00.0 and 0000:05:00.0 share upstream bridge 0000:01:00.0 ...
    kernel_params:
      description: Boot parameters the path needs, preferred first (those that would clear its ACS redirect, or
        those on the command line that already keep it clear).
      type: list
      elements: str
      sample: ["pci=disable_acs_redir=0000:02:00.0;0000:02:02.0"]
    fix:
      description: What to do when the pair is refused or goes through the host bridge; null otherwise.
      type: str
      sample: null
tree:
  description:
    - The PCI functions the judged pairs involve, parents first, enough to draw their part of the PCI tree (the
      fleet report's picture), that is every provider and client and each bridge above it up to its host bridge.
  returned: always
  type: list
  elements: dict
  contains:
    bdf:
      description: The function's PCI address.
      type: str
      sample: "0000:02:00.0"
    parent:
      description: The bridge above it; null on a root bus.
      type: str
      sample: "0000:01:00.0"
    host_bridge:
      description: The host bridge it is below.
      type: str
      sample: pci0000:00
    port_type:
      description: The PCIe port type (C(root_port), C(switch_upstream), C(switch_downstream), C(endpoint), ...).
      type: str
      sample: switch_downstream
    role:
      description: C(provider), C(client) or C(bridge).
      type: str
      sample: bridge
    name:
      description: The client's name as judged, or the NVMe controller on the function; null for a bridge.
      type: str
      sample: nvme1
accept_unmatched:
  description: Entries of I(accept) that matched no WARN (a check that passes now, or a typo).
  returned: always
  type: dict
  sample: {}
verdicts:
  description:
    - The kernel's verdict for each provider of a locality check and the clients (C(pci_p2pdma_distance_many)),
      with C(provider), C(supported), C(distance) and per client the fields of I(pairs).
    - Empty without I(clients).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError  # noqa: E402
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.check_task import (  # noqa: E402
    ARGUMENT_SPEC,
    run_check_task,
)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        outcome = run_check_task(module.params)
    except P2PError as exc:
        module.fail_json(msg=str(exc))
    for warning in outcome.warnings:
        module.warn(warning)
    if outcome.failed:
        module.fail_json(**outcome.result)
    module.exit_json(changed=False, **outcome.result)


if __name__ == "__main__":
    main()
