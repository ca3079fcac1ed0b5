# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The facts xen_facts gathers for the capture side, on the real fixtures: makedumpfile -v
(Debian 12's 1.7.2), xl list with and without guests (the real dom0 row, a synthetic guest list
in xl's format), Xen's e820 map from the recorded boot console, and the dump target read with a
real statvfs on a temporary directory."""

from __future__ import annotations

import os

import pytest

from sysroot import SYNTHETIC, fixture, xen417_dom0

from ansible_collections.xenkdump.fleet.plugins.module_utils import xen

MIB = 1024 * 1024
GUESTS = fixture("xl-list-domus.txt", SYNTHETIC)


def test_makedumpfile_fact_from_the_real_output(tmp_path):
    host = xen417_dom0(tmp_path)
    facts = xen.gather(host)
    assert facts["makedumpfile"] == {"present": True, "path": "/usr/bin/makedumpfile", "version": "1.7.2",
                                     "compressors": {"zlib": True, "lzo": True, "snappy": False, "zstd": False},
                                     "known": True, "reason": ""}
    assert host.runner.ran("makedumpfile -v") == 1


@pytest.mark.parametrize("answer, missing, present", [
    ((127, "", "makedumpfile: error while loading shared libraries: liblzo2.so.2\n"), (), True),
    ((0, "\x00\x01 not a version\n", ""), (), True),
    (None, ("/usr/bin/makedumpfile",), False),
])
def test_makedumpfile_unknown_or_absent_is_reported_not_raised(tmp_path, answer, missing, present):
    answers = {"makedumpfile -v": answer} if answer is not None else {"makedumpfile -v": None}
    facts = xen.gather(xen417_dom0(tmp_path, answers=answers, missing=missing))
    mdf = facts["makedumpfile"]
    assert mdf["present"] is present and mdf["known"] is False and mdf["version"] is None
    assert mdf["reason"]
    assert facts["problems"] == []        # not a problem of the host: the plan falls back


def test_one_xl_list_gives_dom0_and_the_guests(tmp_path):
    lab = xen.gather(xen417_dom0(tmp_path / "lab"))
    with_guests = xen.gather(xen417_dom0(tmp_path / "g", answers={"xl list": GUESTS}))
    assert lab["domains"] == []
    assert lab["dom0_memory_mb"] == with_guests["dom0_memory_mb"] == 1024
    assert with_guests["domains"] == [
        {"name": "web01", "domid": 1, "mem_mb": 4096, "vcpus": 2, "state": "-b----"},
        {"name": "db-primary", "domid": 2, "mem_mb": 16384, "vcpus": 8, "state": "r-----"},
        {"name": "build runner", "domid": 5, "mem_mb": 2048, "vcpus": 1, "state": "--p---"},
        {"name": "(null)", "domid": 7, "mem_mb": 512, "vcpus": 1, "state": "--ps-d"},
    ]
    # every other fact is what it was without guests
    for key in set(lab) - {"domains", "dump_target"}:
        assert lab[key] == with_guests[key], key


def test_e820_from_the_recorded_boot_console(tmp_path):
    facts = xen.gather(xen417_dom0(tmp_path))
    # "(XEN)  [0000000100000000, 000000013fffffff] (usable)" is the top RAM range of the lab
    assert facts["highest_ram_address"] == 0x13fffffff
    assert facts["max_pfn"] == 0x140000
    ranges = xen.parse_e820(fixture("xen-console-boot.txt"))
    assert ranges[0] == {"start": 0, "end": 0x9fc00, "type": "usable"}
    assert sum(r["end"] - r["start"] for r in ranges if r["type"] == "usable") // MIB == 3071


def test_e820_older_xen_format_and_a_rotated_ring():
    old = ("(XEN) Xen-e820 RAM map:\n(XEN)  0000000000000000 - 000000000009fc00 (usable)\n"
           "(XEN)  0000000000100000 - 00000000bfff0000 (usable)\n(XEN)  00000000fec00000 - 0000000100000000 (reserved)\n"
           "(XEN) System RAM: 3071MB (3145276kB)\n")
    assert xen.highest_ram(old) == {"max_pfn": 0xbfff0, "highest_ram_address": 0xbffeffff}
    tail = "\n".join(fixture("xen-console-boot.txt").splitlines()[100:]) + "\n"
    assert xen.highest_ram(tail) == {"max_pfn": None, "highest_ram_address": None}


def test_rotated_ring_leaves_max_pfn_unknown(tmp_path):
    tail = "\n".join(fixture("xen-console-boot.txt").splitlines()[100:]) + "\n"
    facts = xen.gather(xen417_dom0(tmp_path, answers={"xl dmesg": tail}))
    assert facts["max_pfn"] is None and facts["highest_ram_address"] is None


def test_dump_target_is_a_real_statvfs_through_the_host_root(tmp_path):
    host = xen417_dom0(tmp_path)
    crash = os.path.join(host.root, "var", "crash")
    for name, size in (("202601011200", 3000), ("202603011200", 5000)):
        os.makedirs(os.path.join(crash, name))
        with open(os.path.join(crash, name, "dump." + name), "wb") as fh:
            fh.truncate(size)
    with open(os.path.join(crash, "202603011200", "dmesg.202603011200"), "w") as fh:
        fh.write("x" * 10)
    os.makedirs(os.path.join(crash, "202603011200", "nested"))        # not walked into
    with open(os.path.join(crash, "202603011200", "nested", "big"), "wb") as fh:
        fh.truncate(10 ** 6)
    with open(os.path.join(crash, "kexec_cmd"), "w") as fh:           # a file, not a dump directory
        fh.write("kexec -p ...\n")
    os.symlink("/", os.path.join(crash, "202612312359"))             # a symlink is not followed
    facts = xen.gather(host, dump_path="/var/crash")
    target = facts["dump_target"]
    st = os.statvfs(crash)
    assert target["exists"] is True and target["statvfs_path"] == "/var/crash"
    assert target["total_bytes"] == st.f_blocks * st.f_frsize
    assert abs(target["free_bytes"] - st.f_bavail * st.f_frsize) < 64 * MIB
    assert [(d["name"], d["bytes"], d["files"]) for d in target["dumps"]] == [
        ("202601011200", 3000, 1), ("202603011200", 5010, 2)]
    assert target["dumps_count"] == 2 and target["dumps_truncated"] is False and target["error"] == ""


def test_dump_target_not_created_yet_measures_its_parent(tmp_path):
    host = xen417_dom0(tmp_path)
    os.makedirs(os.path.join(host.root, "srv"))
    target = xen.dump_target_facts(host, "/srv/crash/dumps")
    assert target["exists"] is False and target["statvfs_path"] == "/srv"
    assert target["free_bytes"] > 0 and target["dumps"] == []


def test_dump_target_listing_is_bounded(tmp_path):
    host = xen417_dom0(tmp_path)
    for i in range(7):
        os.makedirs(os.path.join(host.root, "var", "crash", "2026010112%02d" % i))
    target = xen.dump_target_facts(host, "/var/crash", limit=3)
    assert [d["name"] for d in target["dumps"]] == ["202601011200", "202601011201", "202601011202"]
    assert target["dumps_count"] == 7 and target["dumps_truncated"] is True


def test_dump_target_relative_path_is_an_error_not_a_crash(tmp_path):
    target = xen.dump_target_facts(xen417_dom0(tmp_path), "var/crash")
    assert target["free_bytes"] is None and "not an absolute path" in target["error"]
