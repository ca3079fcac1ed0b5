# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kexec.crash_image_sizes: the sizing model's inputs read from the host (sysroot)."""

from __future__ import annotations

import coredump_builder as cb
from ansible_collections.xenkdump.fleet.plugins.module_utils import kexec
from ansible_collections.xenkdump.fleet.plugins.module_utils.hostio import CommandResult, Host

REL = "6.1.0-56-amd64"


def host(tmp_path, kernel=True, kdump_initrd=7216519, release=REL):
    root = tmp_path / "root"
    (root / "proc/sys/kernel").mkdir(parents=True)
    if release:
        (root / "proc/sys/kernel/osrelease").write_text(release + "\n")
    (root / "boot").mkdir()
    (root / "boot" / ("initrd.img-" + REL)).write_bytes(b"\0" * 4096)  # the boot initrd is never used for sizing
    if kernel:
        (root / "boot" / ("vmlinuz-" + REL)).write_bytes(
            cb.bzimage(version=0x020F, setup_sects=39, init_size=0x3f98000, xloadflags=0x7F))
    if kdump_initrd is not None:
        (root / "var/lib/kdump").mkdir(parents=True)
        with open(root / "var/lib/kdump" / ("initrd.img-" + REL), "wb") as fh:
            fh.truncate(kdump_initrd)
    return Host(run=lambda argv: CommandResult(1, "", "unexpected"), root=str(root))


def test_reads_kernel_init_size_and_kdump_initrd(tmp_path):
    sizes = kexec.crash_image_sizes(host(tmp_path))
    assert sizes["kernel"] == "/boot/vmlinuz-" + REL and sizes["kernel_init_size"] == 0x3f98000
    assert sizes["initrd"] == "/var/lib/kdump/initrd.img-" + REL and sizes["initrd_size"] == 7216519
    assert sizes["notes"] == []


def test_no_kdump_initrd_yet_means_estimate(tmp_path):
    sizes = kexec.crash_image_sizes(host(tmp_path, kdump_initrd=None))
    assert sizes["initrd_size"] is None and sizes["initrd"] is None
    assert "no crash initrd" in sizes["notes"][0]
    assert sizes["kernel_init_size"] == 0x3f98000


def test_unreadable_kernel_and_release_never_raise(tmp_path):
    sizes = kexec.crash_image_sizes(host(tmp_path, kernel=False))
    assert sizes["kernel_init_size"] is None and "init_size unknown" in sizes["notes"][0]
    (tmp_path / "x").mkdir()
    sizes = kexec.crash_image_sizes(host(tmp_path / "x", release=None))
    assert sizes["kernel"] is None and sizes["notes"]
