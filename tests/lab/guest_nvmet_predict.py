"""Runs inside a lab guest (``python3 -`` over SSH, the collection's module_utils on PYTHONPATH): the
nvmet module's prediction for every p2pmem choice a namespace of this node can be given.

One case per whole NVMe namespace and per choice: each published p2pmem provider, and auto. Prints
one ``device,p2pmem,predicted`` argument per line (predicted: accepted or refused), the input of
molecule/nvmet/kernel_answer.py, which then asks the kernel.
"""

import os
import re

from ansible_collections.p2pdma.storage.plugins.module_utils.common.errors import P2PError
from ansible_collections.p2pdma.storage.plugins.module_utils.nvmet.p2pmem import P2PJudge
from ansible_collections.p2pdma.storage.plugins.module_utils.p2p.fs import SysRoot


def main():
    judge = P2PJudge(SysRoot("/"))
    # The model's providers, as the module's auto rule walks them.
    published = [fn.bdf for fn in judge.node.providers() if fn.p2pmem is not None and fn.p2pmem.published]
    # Namespace block devices only (nvme0c0n1-style multipath paths have no /dev node).
    devices = sorted("/dev/" + name for name in os.listdir("/sys/block") if re.match(r"^nvme\d+n\d+$", name))
    for device in devices:
        for p2pmem in published + ["auto"]:
            what = "namespace on %s" % device
            try:
                judge.judge(what, device, judge.kernel_value(what, p2pmem))
                predicted = "accepted"
            except P2PError:
                predicted = "refused"
            print("%s,%s,%s" % (device, p2pmem, predicted))


main()
