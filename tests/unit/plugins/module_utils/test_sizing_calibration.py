# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sizing model against what was MEASURED on the Xen lab (benchmarks/sizing_calibration.py,
results in benchmarks/results/sizing-calibration.json, table in docs/performance.md).

Each row: a host shape, the largest crash region with which the fire drill did NOT yield a valid
dump (None when none was tried below the passing one) and the smallest one with which it did, with
the lab's own crash kernel (Debian 12 6.1.0-56-amd64, init_size 0x3f98000) and kdump-tools' crash
initrd (7216519 bytes) as the model's inputs, which is what xen_facts reads on that host (crash_images) for the planner.
"""

from __future__ import annotations

import pytest

from ansible_collections.xenkdump.fleet.plugins.module_utils import crashkernel as ck

LAB_KERNEL_INIT_SIZE = 0x3f98000
LAB_KDUMP_INITRD = 7216519

# (host RAM MiB, CPUs, largest failing MiB, smallest passing MiB)
MEASURED = [
    (2048, 1, 112, 128),   # 112: OOM panic unpacking the initramfs; 128: valid 153 MB dump
    (8192, 2, 112, 128),   # 112: the same OOM panic; 128: valid 256 MB dump
    (4096, 2, 112, 128),   # 112: the same OOM panic; 128: valid 188 MB dump
    (2048, 2, 112, 128),   # 112: the same OOM panic; 128: valid 154 MB dump
    (4096, 1, 112, 128),   # 112: the same OOM panic; 128: valid 189 MB dump
    (8192, 1, 112, 128),   # 112: the same OOM panic; 128: valid 272 MB dump
    (3071, 2, None, 144),  # the e2e tier's lab host: its recommended 144 MiB, valid 174 MB dump (not bisected)
]


@pytest.mark.parametrize("mem, cpus, bad, good", MEASURED)
def test_recommendation_is_enough_and_not_wasteful(mem, cpus, bad, good):
    r = ck.size_region(mem, cpus, kernel_init_size=LAB_KERNEL_INIT_SIZE, initrd_size=LAB_KDUMP_INITRD)
    assert r.recommended_mb >= good, "recommends less than the smallest region that worked"
    assert r.recommended_mb <= 1.25 * good, "recommends more than 1.25x the smallest region that worked"
    if bad is not None:
        assert r.required_mb > bad, "the model calls a region that failed big enough"


@pytest.mark.parametrize("mem, cpus, bad, good", MEASURED)
def test_the_anchors_waste_what_the_model_saves(mem, cpus, bad, good):
    # XCP-ng/XenServer and RHEL (2-64 GiB) reserve a flat 256 MiB on such hosts.
    r = ck.size_region(mem, cpus, kernel_init_size=LAB_KERNEL_INIT_SIZE, initrd_size=LAB_KDUMP_INITRD)
    assert r.recommended_mb < 256


def test_floor_is_the_smallest_region_measured_to_work():
    assert ck.SIZING["floor_mb"] == min(good for _m, _c, _b, good in MEASURED)


def test_estimates_before_kdump_tools_exists_stay_on_the_safe_side():
    # before kdump-tools built its initrd the model uses its estimate: never less than with the real one
    for mem, cpus, _bad, good in MEASURED:
        est = ck.size_region(mem, cpus)
        assert est.recommended_mb >= good
        # and the region it leads to is accepted later, with the real initrd (no second reboot)
        real = ck.size_region(mem, cpus, kernel_init_size=LAB_KERNEL_INIT_SIZE, initrd_size=LAB_KDUMP_INITRD)
        assert real.required_mb <= est.recommended_mb <= ck.too_large_threshold_mb(real.required_mb)
