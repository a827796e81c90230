"""Small storage nodes the check, CLI, snapshot and module tests share."""

from __future__ import annotations

import os
from typing import Union

from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.model import CMBSZ_RDS, CMBSZ_SQS, CMBSZ_WDS, Cmb
from tests.support.sysfs_tree import SysfsTree

# 16 MiB in 1 MiB units, WDS+RDS (published) and SQS, in BAR 2: what QEMU's cmb_size_mb=16 reports.
CMB_16M = Cmb(cmbsz=(16 << 12) | (2 << 8) | CMBSZ_WDS | CMBSZ_RDS | CMBSZ_SQS, cmbloc=0x2)
PUBLISHED_16M = (CMB_16M.size_bytes, CMB_16M.size_bytes, True)

# What kernel-src/configs/p2pdma.config gives a node: everything the kernel checks ask for.
NVMET_READY_CONFIG = {
    "CONFIG_PCI_P2PDMA": "y",
    "CONFIG_ZONE_DEVICE": "y",
    "CONFIG_BLK_DEV_NVME": "m",
    "CONFIG_CONFIGFS_FS": "y",
    "CONFIG_NVME_TARGET": "m",
    "CONFIG_NVME_TARGET_RDMA": "m",
    "CONFIG_INFINIBAND": "m",
    "CONFIG_X86_64": "y",
}


def switch_node(base: Union[str, os.PathLike], **tree_args) -> SysfsTree:  # type: ignore[no-untyped-def]
    """nvme0 (published CMB), nvme1 and mlx5_0 behind one switch; nvme2 on a second root port.

    BDFs: switch 0000:01:00.0, nvme0 0000:03:00.0, nvme1 0000:04:00.0, mlx5_0 0000:05:00.0,
    nvme2 0000:06:00.0. ``tree_args`` go to SysfsTree (the kernel config defaults to
    NVMET_READY_CONFIG).
    """
    tree = SysfsTree(base, **{"config": NVMET_READY_CONFIG, **tree_args})
    switch = tree.switch(tree.root_port("00:01.0", acs_ctrl=0), downstream=3)
    tree.nvme(switch.down[0], cmb=CMB_16M, p2pmem=PUBLISHED_16M)
    tree.nvme(switch.down[1])
    tree.rdma_nic(switch.down[2])
    tree.nvme(tree.root_port("00:02.0", acs_ctrl=0))
    return tree
