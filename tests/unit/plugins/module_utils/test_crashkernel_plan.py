# -*- coding: utf-8 -*-
"""Sizing model anchors and the planner's verdicts."""

from __future__ import annotations

import re

import pytest

from test_crashkernel import fixture

from ansible_collections.xenkdump.fleet.plugins.module_utils import crashkernel as ck
from ansible_collections.xenkdump.fleet.plugins.module_utils.errors import XenKdumpError

FIXTURE_CMDLINE = re.search(r"^xen_commandline\s*:\s*(.*)$", fixture("xl-info.txt"), re.M).group(1)
FIXTURE_DOM0 = fixture("dom0-proc-cmdline.txt").strip()
FIXTURE_MEM = int(re.search(r"^total_memory\s*:\s*(\d+)", fixture("xl-info.txt"), re.M).group(1))
FIXTURE_CPUS = int(re.search(r"^nr_cpus\s*:\s*(\d+)", fixture("xl-info.txt"), re.M).group(1))


# ---------------------------------------------------------------------------- sizing anchors

def test_fixture_facts_are_what_the_brief_says():
    assert (FIXTURE_MEM, FIXTURE_CPUS) == (3071, 2)
    assert "crashkernel=256M@64M" in FIXTURE_CMDLINE


BOOT_INITRD = 30646731  # /boot/initrd.img-6.1.0-56-amd64 on the lab (ls -l, 2026-11-26)


def test_lab_anchor_3gib_host():
    """Measured on the lab: 3 GiB host, 2 CPUs, 256 MiB region -> valid 176 MB dump; inside
    the crash kernel `free -m`: total 202, used 53, free 87 (so ~169 MiB of the 256 in use)."""
    notes = fixture("crash-kernel-vmcore-notes.txt")
    total, used, free = map(int, re.search(r"Mem:\s+(\d+)\s+(\d+)\s+(\d+)", notes).groups())
    assert (total, used, free) == (202, 53, 87)
    in_use_at_rest = 256 - free
    # That crash kernel ran from the BOOT initrd: buff/cache was 68 MiB, which only the 30.6 MB
    # /boot/initrd.img-6.1.0-56-amd64 explains (kdump-tools' 6.9 MiB crash initrd unpacks to 19 MiB).
    result = ck.size_region(FIXTURE_MEM, FIXTURE_CPUS, "local", initrd_size=BOOT_INITRD)
    # the need covers what was in use, and 256 MiB (proven) covers the need
    assert in_use_at_rest <= result.required_mb <= 256
    assert in_use_at_rest <= result.recommended_mb <= 256
    # the kernel init_size default is Debian 12's 6.1.0-56-amd64 (the lab's kernel)
    assert result.inputs["kernel_init_size"] == 0x3f98000


def test_bitmap_is_two_bits_per_host_page():
    small = ck.size_region(4096, 1).components_mb["makedumpfile_bitmap"]
    big = ck.size_region(4 * 1024 * 1024, 1).components_mb["makedumpfile_bitmap"]
    assert small == pytest.approx(4096 / 16384.0, abs=0.01)
    assert big == pytest.approx(256.0)  # 4 TiB / 16384


def test_need_grows_with_ram_cpus_target_and_images():
    base = ck.size_region(65536, 8)
    assert ck.size_region(1 << 20, 8).required_mb > base.required_mb
    assert ck.size_region(65536, 512).required_mb > base.required_mb
    assert ck.size_region(65536, 8, "nfs").required_mb > ck.size_region(65536, 8, "ssh").required_mb \
        > base.required_mb
    assert ck.size_region(65536, 8, initrd_size=100 << 20).required_mb > base.required_mb
    assert ck.size_region(65536, 8, kernel_init_size=200 << 20).required_mb > base.required_mb


def test_headroom_and_rounding():
    plain = ck.size_region(1 << 20, 8, headroom_pct=0)
    assert plain.recommended_mb % ck.SIZING["round_mb"] == 0
    assert plain.recommended_mb >= plain.required_mb
    more = ck.size_region(1 << 20, 8, headroom_pct=0, headroom_mb=200)
    assert more.recommended_mb >= plain.required_mb + 200


def test_the_table_is_the_one_place_to_calibrate():
    result = ck.size_region(3071, 2, table={"runtime_base_mb": ck.SIZING["runtime_base_mb"] + 100, "floor_mb": 0})
    assert result.required_mb == ck.size_region(3071, 2).required_mb + 100


@pytest.mark.parametrize("kwargs", [
    {"host_memory_mb": 0, "nr_cpus": 1}, {"host_memory_mb": 4096, "nr_cpus": 0},
    {"host_memory_mb": "4096", "nr_cpus": 1}, {"host_memory_mb": 4096, "nr_cpus": 1, "dump_target": "tape"},
    {"host_memory_mb": 4096, "nr_cpus": 1, "kernel_init_size": -1},
    {"host_memory_mb": 4096, "nr_cpus": 1, "headroom_pct": -5},
    {"host_memory_mb": 4096, "nr_cpus": 1, "headroom_mb": -1},
])
def test_bad_sizing_inputs(kwargs):
    with pytest.raises(XenKdumpError) as info:
        ck.size_region(**kwargs)
    assert info.value.code == "XK210"


# ---------------------------------------------------------------------------- planner

def plan(**kw):
    args = dict(total_memory_mb=FIXTURE_MEM, nr_cpus=FIXTURE_CPUS, xen_commandline=FIXTURE_CMDLINE,
                dom0_cmdline=FIXTURE_DOM0, reserved_mb_now=256, reserved_start=0x4000000)
    args.update(kw)
    return ck.plan(**args)


def test_fixture_host_is_ok_and_needs_nothing():
    p = plan()
    assert p.verdict == "ok", p.reasons
    assert p.current == "256M@64M" and p.current_size_mb == 256 and p.reserved_mb == 256
    assert p.recommended == "256M@64M" and p.recommended_size_mb == 256
    assert p.change == {"option": "crashkernel", "value": "256M@64M", "state": "unchanged"}
    assert p.reboot_required is False
    assert p.required_mb <= 256


def test_fixture_host_from_facts_dictionary():
    facts = {"host_memory_mb": 3071, "nr_cpus": 2, "xen_commandline": FIXTURE_CMDLINE,
             "dom0_cmdline": FIXTURE_DOM0, "crash_region": {"size_mb": 256, "start": 0x4000000}}
    assert ck.plan_from_facts(facts).as_dict() == plan().as_dict()


def test_missing():
    p = plan(xen_commandline="console=com1 dom0_mem=1024M", reserved_mb_now=0, reserved_start=None)
    assert p.verdict == "missing"
    assert p.current is None and p.current_size_mb is None
    # the lab's shape with the model's estimates for kernel and initrd (no images given)
    assert p.change == {"option": "crashkernel", "value": "176M,below=4G", "state": "present"}
    assert p.recommended_size_mb == 176 and p.reboot_required is True


def test_on_dom0_cmdline_only():
    p = plan(xen_commandline="console=com1", dom0_cmdline="root=/dev/vda crashkernel=384M",
             reserved_mb_now=0, reserved_start=None)
    assert p.verdict == "on_dom0_cmdline_only"
    assert any("Ignoring crashkernel" in r for r in p.reasons)
    assert p.change["state"] == "present"


def test_too_small():
    p = plan(xen_commandline="crashkernel=128M,below=4G", reserved_mb_now=128, reserved_start=None)
    assert p.verdict == "too_small"
    assert p.change == {"option": "crashkernel", "value": "176M,below=4G", "state": "present"}
    assert p.reboot_required


def test_range_list_selecting_nothing_is_too_small():
    p = plan(xen_commandline="crashkernel=4G-:512M<4G", reserved_mb_now=None, reserved_start=None)
    assert p.current_size_mb == 0 and p.verdict == "too_small"


def test_too_large():
    p = plan(xen_commandline="crashkernel=2G,below=4G", reserved_mb_now=2048, reserved_start=None)
    assert p.verdict == "too_large"
    assert p.change["value"] == "176M,below=4G"
    edge = ck.too_large_threshold_mb(p.required_mb)
    at_edge = plan(xen_commandline="crashkernel=%dM,below=4G" % edge, reserved_mb_now=edge)
    assert at_edge.verdict == "ok"


def test_wrong_placement_without_limit():
    p = plan(xen_commandline="crashkernel=256M", reserved_mb_now=256, reserved_start=None)
    assert p.verdict == "wrong_placement"
    assert p.change == {"option": "crashkernel", "value": "176M,below=4G", "state": "present"}
    relaxed = plan(xen_commandline="crashkernel=256M", reserved_mb_now=256, reserved_start=None,
                   below_4g=False)
    assert relaxed.verdict == "ok" and relaxed.change["state"] == "unchanged"


def test_wrong_placement_from_the_actual_address():
    p = plan(xen_commandline="crashkernel=256M<8G", reserved_mb_now=256, reserved_start=0x17f000000)
    assert p.verdict == "wrong_placement"
    assert any("above 4 GiB" in r for r in p.reasons)


def test_line_right_but_not_yet_applied_needs_reboot_only():
    p = plan(xen_commandline="crashkernel=256M,below=4G", reserved_mb_now=0, reserved_start=None)
    assert p.verdict == "too_small"
    assert p.change["state"] == "unchanged" and p.reboot_required is True


def test_unknown_reservation_uses_the_line():
    p = plan(reserved_mb_now=None, reserved_start=None)
    assert p.verdict == "ok" and p.reboot_required is False
    assert any("unknown" in r for r in p.reasons)


def test_malformed_current_value_is_reported_not_raised():
    p = plan(xen_commandline="crashkernel=256Q", reserved_mb_now=0, reserved_start=None)
    assert p.current == "256Q" and p.current_size_mb is None
    assert "XK201" in p.current_error
    assert p.change["state"] == "present" and p.verdict == "too_small"


def test_repeated_option_is_flagged():
    p = plan(xen_commandline="crashkernel=128M crashkernel=256M@64M")
    assert p.current == "256M@64M"
    assert any("appears 2 times" in r for r in p.reasons)


def test_explicit_sizes():
    p = plan(size="512M")
    assert p.recommended == "512M,below=4G" and p.recommended_size_mb == 512
    assert p.change["state"] == "present"
    same = plan(xen_commandline="crashkernel=512M,below=4G", reserved_mb_now=512, size="512M")
    assert same.change["state"] == "unchanged" and same.reboot_required is False
    ranges = plan(size="0-64G:256M,64G-:512M")
    assert ranges.recommended == "0M-64G:256M,64G-:512M<4G" and ranges.recommended_size_mb == 256
    assert any("escaped" in r for r in ranges.reasons)
    small = plan(size="64M")
    assert any("less than" in r for r in small.reasons)


@pytest.mark.parametrize("size,code", [("512M@5G", "XK211"), ("512M<8G", "XK211"), ("512M@0", "XK211"),
                                       ("512Q", "XK201"), ("0-:256M,below=4G", "XK204"), ("", "XK210")])
def test_explicit_size_errors(size, code):
    with pytest.raises(XenKdumpError) as info:
        plan(size=size)
    assert info.value.code == code


def test_explicit_high_placement_allowed_when_below_4g_is_off():
    p = plan(size="512M@5G", below_4g=False)
    assert p.recommended == "512M@5G"
