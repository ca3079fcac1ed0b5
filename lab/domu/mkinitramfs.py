#!/usr/bin/env python
# xenkdump.fleet lab: write the fill guest's initramfs (an uncompressed newc cpio archive) holding
# /init (the static fill program), /dev/console and /dev/null. No cpio tool, no root, no mknod:
# the device nodes are entries in the archive, which the guest kernel creates when it unpacks it.
# Copyright: xenkdump.fleet developers; GPL-3.0-or-later.
"""Usage: mkinitramfs.py INIT_BINARY OUTPUT.cpio"""
import os
import stat
import sys


def entry(name: str, mode: int, data: bytes = b"", rdev: tuple = (0, 0), ino: int = 1) -> bytes:
    nameb = name.encode() + b"\0"
    fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(nameb), 0]
    head = b"070701" + b"".join(b"%08X" % f for f in fields)
    out = head + nameb
    out += b"\0" * (-len(out) % 4)
    out += data
    out += b"\0" * (-len(out) % 4)
    return out


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__ + "\n")
        return 2
    with open(argv[1], "rb") as fh:
        init = fh.read()
    parts = [
        entry("dev", stat.S_IFDIR | 0o755, ino=1),
        entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1), ino=2),
        entry("dev/null", stat.S_IFCHR | 0o666, rdev=(1, 3), ino=3),
        entry("init", stat.S_IFREG | 0o755, init, ino=4),
        entry("TRAILER!!!", 0, ino=0),
    ]
    tmp = argv[2] + ".tmp"
    with open(tmp, "wb") as fh:
        fh.write(b"".join(parts))
    os.replace(tmp, argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
