#!/usr/bin/python3
"""Print nvmet's whole configfs: every directory, link (with its target) and readable file (with its text)."""

import os

ROOT = "/sys/kernel/config/nvmet"
for directory, dirs, files in sorted(os.walk(ROOT)):
    dirs.sort()
    print("d %s" % directory)
    for name in sorted(files):
        path = os.path.join(directory, name)
        if os.path.islink(path):
            print("l %s -> %s" % (path, os.readlink(path)))
            continue
        try:
            with open(path) as handle:
                print("f %s = %r" % (path, handle.read()))
        except OSError as exc:
            print("f %s unreadable (%s)" % (path, exc.strerror))
    for name in dirs:
        path = os.path.join(directory, name)
        if os.path.islink(path):
            print("l %s -> %s" % (path, os.readlink(path)))
