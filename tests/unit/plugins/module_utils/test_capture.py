# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""capture.py: makedumpfile -v (the real Debian 12 1.7.2 output), MAKEDUMP_ARGS rules read from
makedumpfile.c, the capture plan per mode and compressor set, the dump size bound from the real
Xen 4.17 dom0's xl info/xl list (and a synthetic xl list with guests), and the room check with
kdump-tools 1.8.1's pruning rule (after the save, never before)."""

from __future__ import annotations

import pytest
from hypothesis import given, strategies as st

from sysroot import MAKEDUMPFILE_DEB12, SYNTHETIC, fixture

from ansible_collections.xenkdump.fleet.plugins.module_utils import capture, xen
from ansible_collections.xenkdump.fleet.plugins.module_utils.errors import XenKdumpError

MIB = 1024 * 1024
MDF_V = fixture("makedumpfile-v.txt", MAKEDUMPFILE_DEB12)


def mdf(**compressors):
    base = {"zlib": True, "lzo": False, "snappy": False, "zstd": False}
    base.update(compressors)
    return {"present": True, "path": "/usr/bin/makedumpfile", "version": "1.7.2", "compressors": base,
            "known": True, "reason": ""}


DEB12 = capture.makedumpfile_fact("/usr/bin/makedumpfile", 0, MDF_V, "")


# ----------------------------------------------------------------------------- makedumpfile -v

def test_debian12_makedumpfile_v():
    assert DEB12 == {"present": True, "path": "/usr/bin/makedumpfile", "version": "1.7.2",
                     "compressors": {"zlib": True, "lzo": True, "snappy": False, "zstd": False},
                     "known": True, "reason": ""}


@pytest.mark.parametrize("text, version, comps", [
    ("makedumpfile: version 1.7.5 (released on 2 Apr 2024)\nlzo\tenabled\nsnappy\tenabled\nzstd\tenabled\n",
     "1.7.5", {"zlib": True, "lzo": True, "snappy": True, "zstd": True}),
    # before zstd support (1.6.x) there is no zstd line: not there
    ("makedumpfile: version 1.6.8 (released on 16 Nov 2020)\nlzo\tdisabled\nsnappy\tenabled\n",
     "1.6.8", {"zlib": True, "lzo": False, "snappy": True, "zstd": False}),
])
def test_makedumpfile_v_variants(text, version, comps):
    parsed = capture.parse_makedumpfile_version(text)
    assert parsed == {"version": version, "compressors": comps}


@pytest.mark.parametrize("rc, out, err", [
    (127, "", "makedumpfile: error while loading shared libraries: liblzo2.so.2: cannot open shared object file\n"),
    (0, "garbage\n\x00\x01", ""),
    (0, "", ""),
    (0, "makedumpfile: version (released on)\n", ""),
])
def test_makedumpfile_garbled_is_unknown_not_a_crash(rc, out, err):
    fact = capture.makedumpfile_fact("/usr/bin/makedumpfile", rc, out, err)
    assert fact["present"] is True and fact["known"] is False and fact["version"] is None
    assert set(fact["compressors"].values()) == {None}
    assert "exited %d" % rc in fact["reason"]
    # and the plan falls back to the whole-host dump
    assert capture.plan_capture(fact)["args"] == "-c -d 0"


def test_makedumpfile_absent():
    fact = capture.makedumpfile_fact(None, None, "", "")
    assert fact["present"] is False and fact["known"] is False
    assert fact["reason"] == "makedumpfile is not installed"


# ----------------------------------------------------------------------------- MAKEDUMP_ARGS

@pytest.mark.parametrize("args, level, comps, excl, syms", [
    ("-c -d 0", 0, ["zlib"], False, None),
    ("-l -X -d 1", 1, ["lzo"], True, None),
    ("-cXd1", 1, ["zlib"], True, None),
    ("-z -X -d1 --xen-syms=/boot/xen-syms", 1, ["zstd"], True, "/boot/xen-syms"),
    ("-p -d 0,1,31 --xen-syms /usr/lib/debug/xen-syms", 31, ["snappy"], False, "/usr/lib/debug/xen-syms"),
    ("-F -E -X", None, [], True, None),
    ("--message-level 31 -c", None, ["zlib"], False, None),   # 31 is the message level, not a dump level
])
def test_parse_args(args, level, comps, excl, syms):
    p = capture.parse_makedump_args(args)
    assert p["dump_level"] == level and p["compressors"] == comps
    assert p["exclude_domu"] is excl and p["xen_syms"] == syms


@pytest.mark.parametrize("args", ['-d "1', "-d high", "-d 32"])
def test_parse_args_refuses_nonsense(args):
    with pytest.raises(capture.MakedumpArgsInvalid):
        capture.parse_makedump_args(args)


@pytest.mark.parametrize("args, is_dom0, needle", [
    ("-l -X -d 1", True, None),
    ("-z -X -d 1", True, None),
    ("-p -X -d 1", True, None),
    ("-c -X -d 1", True, None),
    ("-c -d 0", True, None),
    ("-c -X --xen-syms /boot/xen-syms", True, None),          # the role's old xen-syms default: level 0
    ("-E -X -d 1", True, None),                               # ELF without guests: allowed by the source
    ("-c -d 31", True, "dump level 31 needs dom0's Linux vmcoreinfo"),
    ("-c -X -d 31 --xen-syms /boot/xen-syms", True, "(--xen-syms does not provide it)"),
    ("-l -X -d 2", True, "dump level 2"),
    ("-E -c -d 0", True, "refuses -E (ELF output) with a compression flag (-c)"),
    ("-c -l -X -d 1", True, "more than one compression flag"),
    ("", True, "MAKEDUMP_ARGS is not set"),
    (None, True, "writes an empty dump on Xen"),
    ('-d "1', True, "cannot be split"),
    ("-c -d 31", False, None),                                # a plain Linux host has vmcoreinfo
    ("-c -X -d 1", False, "-X works only on a Xen crash dump"),
])
def test_args_problems(args, is_dom0, needle):
    problems = capture.args_problems(args, is_dom0=is_dom0)
    if needle is None:
        assert problems == []
    else:
        assert any(needle in p for p in problems), problems


def test_args_problems_compressor_the_binary_lacks():
    problems = capture.args_problems("-z -X -d 1", compressors=DEB12["compressors"])
    assert problems == ["-z -X -d 1: this host's makedumpfile is built without zstd (-z is ignored: the dump "
                        "is written uncompressed)"]
    assert capture.args_problems("-l -X -d 1", compressors=DEB12["compressors"]) == []


# ----------------------------------------------------------------------------- plan_capture

@pytest.mark.parametrize("facts, mode, args, comp", [
    (DEB12, "auto", "-l -X -d 1", "lzo"),                                   # the lab's makedumpfile
    (mdf(lzo=True, zstd=True, snappy=True), "auto", "-l -X -d 1", "lzo"),
    (mdf(zstd=True, snappy=True), "auto", "-z -X -d 1", "zstd"),
    (mdf(snappy=True), "xen-dom0", "-p -X -d 1", "snappy"),
    (mdf(), "auto", "-c -X -d 1", "zlib"),
    (DEB12, "full", "-c -d 0", "zlib"),
    (capture.unknown_makedumpfile(None, "makedumpfile is not installed"), "auto", "-c -d 0", "zlib"),
    (capture.unknown_makedumpfile(None, "makedumpfile is not installed"), "xen-dom0", "-c -X -d 1", "zlib"),
    (None, "auto", "-c -d 0", "zlib"),
])
def test_plan_modes_and_compressors(facts, mode, args, comp):
    plan = capture.plan_capture(facts, mode=mode)
    assert plan["args"] == args and plan["compressor"] == comp
    assert plan["dump_level"] == (1 if "-X" in args else 0)
    assert plan["exclude_domu"] is ("-X" in args)
    assert capture.args_problems(plan["args"], compressors=(facts or {}).get("compressors")
                                 if (facts or {}).get("known") else None) == []


def test_auto_without_makedumpfile_says_why():
    plan = capture.plan_capture(capture.unknown_makedumpfile(None, "makedumpfile is not installed"))
    assert plan["mode"] == "full" and "makedumpfile is not installed" in plan["reason"]
    assert "xenkdump_capture_mode: xen-dom0" in plan["reason"]


def test_preference_is_the_one_constant(monkeypatch):
    monkeypatch.setattr(capture, "COMPRESSOR_PREFERENCE", ("zstd", "snappy", "lzo", "zlib"))
    assert capture.plan_capture(mdf(lzo=True, zstd=True))["args"] == "-z -X -d 1"
    monkeypatch.setattr(capture, "COMPRESSOR_PREFERENCE", ("zlib",))
    assert capture.plan_capture(mdf(lzo=True, zstd=True))["args"] == "-c -X -d 1"


def test_xen_syms_present_is_added_and_absent_is_not():
    with_syms = capture.plan_capture(DEB12, xen_syms="/boot/xen-syms-4.17", xen_syms_present=True)
    assert with_syms["args"] == "-l -X -d 1 --xen-syms /boot/xen-syms-4.17"
    assert capture.plan_capture(DEB12, xen_syms="/boot/xen-syms-4.17")["args"] == "-l -X -d 1"


def test_measured_figures_ride_along_with_their_mode():
    plan = capture.plan_capture(DEB12, mode="full")
    assert [(m["domu_memory_mb"], m["dump_bytes"]) for m in plan["measured"]] == [(3072, 3036269077)]
    auto = capture.plan_capture(DEB12)["measured"]              # -l -X -d 1: with and without guests
    assert sorted((m["domu_memory_mb"], m["args"]) for m in auto) == [(0, "-l -X -d 1"), (3072, "-l -X -d 1")]
    assert capture.plan_capture(DEB12, makedump_args="-c -X -d 1")["measured"] == []  # zlib -X: none recorded


@pytest.mark.parametrize("args", ["-l -X -d 1", "-c -d 0", "-E -X -d 1", "-z -X -d 1 --xen-syms /boot/x"])
def test_explicit_good_args_are_kept(args):
    plan = capture.plan_capture(mdf(lzo=True, zstd=True), makedump_args="  %s " % args)
    assert plan["args"] == args and plan["mode"] == "explicit"


@pytest.mark.parametrize("args, error, needle", [
    ("-c -d 31", capture.MakedumpLevelNeedsVmcoreinfo, "dump level 31 on a Xen dom0"),
    ("-c -X -d 31 --xen-syms /boot/xen-syms", capture.MakedumpLevelNeedsVmcoreinfo, "dump level 31"),
    ("-E -l -d 0", capture.MakedumpArgsInvalid, "refuses -E"),
    ("-z -X -d 1", capture.MakedumpArgsInvalid, "built without zstd"),
])
def test_explicit_bad_args_are_refused_on_a_dom0(args, error, needle):
    with pytest.raises(error) as err:
        capture.plan_capture(DEB12, makedump_args=args)
    assert needle in str(err.value) and "[XK70" in str(err.value) and "Fix: " in str(err.value)


@pytest.mark.parametrize("kw, args", [
    ({}, "-c -d 0"),
    ({"xen_syms": "/boot/xen-syms", "xen_syms_present": True}, "-c -X --xen-syms /boot/xen-syms"),
    ({"makedump_args": "-c -d 31"}, "-c -d 31"),       # a plain Linux host: -d 31 is fine there
    ({"mode": "full"}, "-c -d 0"),
])
def test_non_dom0_keeps_what_the_role_always_wrote(kw, args):
    assert capture.plan_capture(DEB12, is_dom0=False, **kw)["args"] == args


def test_unknown_mode_is_refused():
    with pytest.raises(capture.CapturePolicyInvalid) as err:
        capture.plan_capture(DEB12, mode="fast")
    assert "XK700" in str(err.value)


# ----------------------------------------------------------------------------- estimate_dump

def lab_facts(**over):
    info = xen.parse_xl_info(fixture("xl-info.txt"))
    rows = xen.parse_xl_list(fixture("xl-list.txt"))
    facts = {"host_memory_mb": info["total_memory"], "host_free_memory_mb": info["free_memory"],
             "dom0_memory_mb": xen.dom0_row(rows)["mem_mb"], "domains": xen.domu_rows(rows),
             "max_pfn": 0x140000}
    facts.update(over)
    return facts


def guests_facts():
    rows = xen.parse_xl_list(fixture("xl-list-domus.txt", SYNTHETIC))
    # 32 GiB host: dom0 1024 + guests 4096+16384+2048+512 = 23040 MiB used by domains, 8000 free
    return lab_facts(host_memory_mb=32768, host_free_memory_mb=8000, domains=xen.domu_rows(rows),
                     max_pfn=(32768 + 2048) * MIB // 4096)


def test_estimate_lab_host_both_modes():
    full = capture.estimate_dump(lab_facts(), capture.plan_capture(DEB12, mode="full"))
    dom0 = capture.estimate_dump(lab_facts(), capture.plan_capture(DEB12))
    # no guests on the lab: both bound the same page data, 3071 - 1758 = 1313 MiB
    assert full["data_bytes"] == dom0["data_bytes"] == 1313 * MIB
    assert dom0["inputs"]["xen_own_mb"] == 3071 - 1758 - 1024
    # the measured 176 MB zlib dump of that host is under the bound
    assert full["bytes"] > 176005632
    # descriptors for every host page in full mode (-d 0), for the kept pages with -X
    assert full["metadata_bytes"] == 3071 * MIB // 4096 * 24 + 2 * (0x140000 // 8) + 4 * 4096
    assert dom0["metadata_bytes"] == 1313 * MIB // 4096 * 24 + 2 * (0x140000 // 8) + 4 * 4096
    assert "max_pfn 1310720" in dom0["derivation"]


def test_estimate_with_guests_leaves_them_out():
    facts = guests_facts()
    full = capture.estimate_dump(facts, capture.plan_capture(DEB12, mode="full"))
    dom0 = capture.estimate_dump(facts, capture.plan_capture(DEB12))
    assert full["data_bytes"] == (32768 - 8000) * MIB
    domu = 4096 + 16384 + 2048 + 512
    assert dom0["inputs"]["domu_memory_mb"] == domu and dom0["inputs"]["domu_count"] == 4
    assert dom0["data_bytes"] == (1024 + (32768 - 8000 - 1024 - domu)) * MIB
    assert dom0["bytes"] < full["bytes"] / 10
    assert "4 guest(s) 23040 MiB" in dom0["derivation"]


def test_estimate_unknown_without_xl_facts():
    est = capture.estimate_dump({"is_dom0": False}, capture.plan_capture(None, is_dom0=False))
    assert est["bytes"] is None and est["known"] is False and "no xl info" in est["derivation"]


# ----------------------------------------------------------------------------- check_room

def target(free_mib, dumps=(), path="/var/crash"):
    return {"path": path, "exists": True, "statvfs_path": path, "free_bytes": free_mib * MIB,
            "total_bytes": 4 * free_mib * MIB, "dumps": [dict(d) for d in dumps], "dumps_count": len(dumps),
            "dumps_truncated": False, "error": ""}


EST = {"bytes": 1000 * MIB, "mib": 1000, "mode": "full", "derivation": "full: test"}
OLD = [{"name": "202601011200", "bytes": 700 * MIB, "files": 1, "mtime": 1},
       {"name": "202603011200", "bytes": 700 * MIB, "files": 1, "mtime": 2},
       {"name": "lost+found", "bytes": 0, "files": 0, "mtime": 0}]


@pytest.mark.parametrize("free, policy, dumps, num, verdict", [
    (2000, "refuse", (), 0, "ok"),
    (1000, "refuse", (), 0, "ok"),          # exactly enough
    (999, "warn", (), 0, "warn"),
    (999, "off", (), 0, "off"),
    (500, "warn", OLD, 1, "warn"),          # pruning to 1 happens AFTER the save: no extra room
])
def test_room_verdicts(free, policy, dumps, num, verdict):
    room = capture.check_room(EST, target(free, dumps), num_dumps=num, policy=policy)
    assert room["verdict"] == verdict


def test_room_refuse_names_both_numbers_and_the_fixes():
    with pytest.raises(capture.DumpTargetTooSmall) as err:
        capture.check_room(EST, target(999, OLD), num_dumps=2, policy="refuse")
    msg = str(err.value)
    assert "up to 1000 MiB" in msg and "/var/crash has 999 MiB free" in msg
    assert "[XK703]" in msg and "xenkdump_capture_mode: xen-dom0" in msg
    assert "delete old dumps in /var/crash (3, 1400 MiB" in msg
    room = err.value.data["room"]
    assert room["verdict"] == "refuse" and room["room_mib"] == 999


def test_pruning_is_after_the_save_only_names_what_goes():
    # kdump-tools 1.8.1: find -name '2*' | sort -V | head -n (count_after_save - KDUMP_NUM_DUMPS)
    room = capture.check_room(EST, target(5000, OLD), num_dumps=2)
    assert room["pruned_after_save"] == ["202601011200"] and room["pruned_after_save_bytes"] == 700 * MIB
    assert room["room_bytes"] == room["free_bytes"] == 5000 * MIB and room["prunes_before_save"] is False
    assert capture.check_room(EST, target(5000, OLD), num_dumps=3)["pruned_after_save"] == []
    assert capture.check_room(EST, target(5000, OLD), num_dumps=0)["pruned_after_save"] == []
    assert capture.check_room(EST, target(5000, OLD), num_dumps=1)["pruned_after_save"] == \
        ["202601011200", "202603011200"]


def test_xen_dom0_fix_not_offered_when_already_xen_dom0():
    est = dict(EST, mode="xen-dom0")
    with pytest.raises(capture.DumpTargetTooSmall) as err:
        capture.check_room(est, target(10), policy="refuse", capture_mode="xen-dom0")
    assert "xenkdump_capture_mode: xen-dom0" not in err.value.detail


@pytest.mark.parametrize("dump_target", ["nfs", "ssh"])
def test_remote_targets_are_unchecked(dump_target):
    room = capture.check_room(EST, target(1), policy="refuse", dump_target=dump_target)
    assert room["verdict"] == "unchecked" and dump_target in room["message"] and "1000 MiB" in room["message"]
    assert room["free_bytes"] is None


def test_unknown_figures_are_unchecked_not_refused():
    assert capture.check_room({"bytes": None, "derivation": "x"}, target(1))["verdict"] == "unchecked"
    room = capture.check_room(EST, {"path": "/var/crash", "free_bytes": None, "error": "statvfs failed"})
    assert room["verdict"] == "unchecked" and "statvfs failed" in room["message"]


@pytest.mark.parametrize("kw", [{"policy": "maybe"}, {"num_dumps": -1}, {"num_dumps": True},
                                {"dump_target": "ftp"}])
def test_room_bad_policy(kw):
    with pytest.raises(XenKdumpError) as err:
        capture.check_room(EST, target(1), **kw)
    assert err.value.code == "XK700"


# ----------------------------------------------------------------------------- any text

_WORDS = st.sampled_from(["-c", "-l", "-p", "-z", "-X", "-E", "-F", "-d", "1", "31", "0,1", "-d1", "-cXd1",
                          "--xen-syms", "--xen-syms=/x", "/boot/xen-syms", "--message-level", "'", '"', "-x",
                          "--num-threads", "-", "--", "x y"])


@given(st.lists(_WORDS, max_size=8).map(" ".join) | st.text(max_size=40))
def test_any_makedump_args_give_problems_or_a_documented_error(text):
    problems = capture.args_problems(text, compressors=DEB12["compressors"])    # never raises
    assert isinstance(problems, list) and all(isinstance(p, str) and p for p in problems)
    try:
        plan = capture.plan_capture(DEB12, makedump_args=text)
    except (capture.MakedumpArgsInvalid, capture.MakedumpLevelNeedsVmcoreinfo):
        assert problems or not text.strip()
        return
    # accepted on a dom0 only when the shared rule finds nothing wrong
    if text.strip():
        assert problems == [] and plan["args"] == text.strip()
