"""PID 1 of a directly booted lab node, run by the guest's own python3 (standard library only).

The lab initramfs copies this file to /run/p2plab-init in the node's Debian root and switches to it.
It does what the tests need of systemd, and nothing else: kernel filesystems, hostname, the
management NIC (QEMU user networking's fixed addresses) and sshd. As PID 1 it reaps orphans.
Signals, as busybox init: SIGTERM reboots, SIGUSR2 powers off (``kill -USR2 1`` over SSH).
"""

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time

MGMT_NIC_PCI = "0000:00:03.0"
# QEMU user networking: the guest's address, the host's gateway, the built-in DNS.
GUEST_ADDRESS = "10.0.2.15/24"
GATEWAY = "10.0.2.2"
REBOOT = 0x01234567
POWER_OFF = 0x4321FEDC
MOUNTS = (
    ("proc", "/proc", "proc", "nosuid,nodev,noexec"),
    ("sysfs", "/sys", "sysfs", "nosuid,nodev,noexec"),
    ("devpts", "/dev/pts", "devpts", "gid=5,mode=620,ptmxmode=000"),
    ("tmpfs", "/dev/shm", "tmpfs", "nosuid,nodev"),
    ("configfs", "/sys/kernel/config", "configfs", ""),
)


def say(message):
    print("p2plab-init: %s" % message, file=sys.stderr, flush=True)


def command(*argv):
    done = subprocess.run(argv, check=False)
    if done.returncode != 0:
        say("%s exited %d" % (" ".join(argv), done.returncode))


def mount_kernel_filesystems():
    for source, target, fstype, options in MOUNTS:
        os.makedirs(target, exist_ok=True)
        argv = ["mount", "-t", fstype] + (["-o", options] if options else []) + [source, target]
        command(*argv)


def management_nic():
    for name in os.listdir("/sys/class/net"):
        # e.g. /sys/devices/pci0000:00/0000:00:03.0/virtio0/net/eth0
        if "/%s/" % MGMT_NIC_PCI in os.path.realpath("/sys/class/net/%s" % name):
            return name
    return None


def configure_network():
    command("ip", "link", "set", "lo", "up")
    nic = management_nic()
    if nic is None:
        say("no NIC at %s: no SSH" % MGMT_NIC_PCI)
        return
    command("ip", "link", "set", nic, "up")
    command("ip", "address", "add", GUEST_ADDRESS, "dev", nic)
    command("ip", "route", "add", "default", "via", GATEWAY)


def start_sshd():
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    return subprocess.Popen(["/usr/sbin/sshd", "-D", "-e"]).pid


def shut_down(how):
    say("stopping every process, then %s" % ("power off" if how == POWER_OFF else "reboot"))
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.kill(-1, sig)
        time.sleep(1)
    os.sync()
    subprocess.run(["mount", "-o", "remount,ro", "/"], check=False)
    os.sync()
    ctypes.CDLL(None, use_errno=True).reboot(how)


def main():
    signal.signal(signal.SIGTERM, lambda _sig, _frame: shut_down(REBOOT))
    signal.signal(signal.SIGUSR2, lambda _sig, _frame: shut_down(POWER_OFF))
    mount_kernel_filesystems()
    with open("/etc/hostname") as handle:
        hostname = handle.read().strip()
    with open("/proc/sys/kernel/hostname", "w") as handle:
        handle.write(hostname)
    configure_network()
    sshd = start_sshd()
    say("sshd started")
    while True:
        try:
            pid, _status = os.wait()
        except ChildProcessError:
            time.sleep(1)
            continue
        if pid == sshd:
            say("sshd exited, starting it again")
            time.sleep(1)
            sshd = start_sshd()


main()
