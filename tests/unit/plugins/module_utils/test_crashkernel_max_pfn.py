# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""makedumpfile's Xen bitmaps cover page frames up to the highest RAM address (max_pfn from Xen's
e820 map), not just the RAM: the sizing uses max_pfn when xen_facts read it, and the calibrated
recommendations of the lab shapes stay where the measurements put them."""

from __future__ import annotations

import pytest

from sysroot import xen417_dom0

from ansible_collections.xenkdump.fleet.plugins.module_utils import crashkernel as ck
from ansible_collections.xenkdump.fleet.plugins.module_utils import xen

from test_sizing_calibration import LAB_KDUMP_INITRD, LAB_KERNEL_INIT_SIZE, MEASURED

MIB = 1024 * 1024
GIB = 1024 * MIB


def q35_max_pfn(mem_mb):
    """QEMU q35 (the lab's machine): above 2.75 GiB of RAM, 2 GiB stay below the 4 GiB hole and the
    rest starts at 4 GiB (the lab's 3071 MiB: top of RAM 0x140000000, the recorded e820 map)."""
    if mem_mb * MIB < 0xB0000000:
        return mem_mb * MIB // 4096
    return (4 * GIB + mem_mb * MIB - 2 * GIB) // 4096


def test_lab_shape_matches_the_recorded_map(tmp_path):
    assert xen.gather(xen417_dom0(tmp_path))["max_pfn"] == q35_max_pfn(3072) == 0x140000


def test_bitmap_uses_max_pfn():
    ram = ck.size_region(3071, 2)
    top = ck.size_region(3071, 2, max_pfn=0x140000)
    assert ram.components_mb["makedumpfile_bitmap"] == round(3071 * MIB // 4096 * 2 / 8 / MIB, 2)
    assert top.components_mb["makedumpfile_bitmap"] == round(0x140000 * 2 / 8 / MIB, 2)
    # a 1 TiB host whose RAM ends at 2 TiB (NUMA holes): twice the bitmap
    sparse = ck.size_region(1024 * 1024, 64, max_pfn=2 * 1024 * GIB // 4096)
    dense = ck.size_region(1024 * 1024, 64)
    assert sparse.components_mb["makedumpfile_bitmap"] == 2 * dense.components_mb["makedumpfile_bitmap"] == 128
    assert sparse.required_mb == dense.required_mb + 64
    # never less than host RAM's pages
    assert ck.size_region(3071, 2, max_pfn=1).components_mb == ram.components_mb


@pytest.mark.parametrize("mem, cpus, bad, good", MEASURED)
def test_calibrated_lab_shapes_do_not_move(mem, cpus, bad, good):
    before = ck.size_region(mem, cpus, kernel_init_size=LAB_KERNEL_INIT_SIZE, initrd_size=LAB_KDUMP_INITRD)
    after = ck.size_region(mem, cpus, kernel_init_size=LAB_KERNEL_INIT_SIZE, initrd_size=LAB_KDUMP_INITRD,
                           max_pfn=q35_max_pfn(mem))
    assert (after.required_mb, after.recommended_mb) == (before.required_mb, before.recommended_mb)


def test_plan_from_facts_takes_max_pfn(tmp_path):
    facts = xen.gather(xen417_dom0(tmp_path))
    plan = ck.plan_from_facts(dict(facts))
    assert plan.sizing["inputs"]["max_pfn"] == 0x140000 and plan.sizing["inputs"]["bitmap_pages"] == 0x140000
    facts["max_pfn"] = 1024 * GIB // 4096                # pretend RAM ends at 1 TiB (sparse NUMA)
    assert ck.plan_from_facts(dict(facts)).required_mb > plan.required_mb


def test_max_pfn_must_be_a_number():
    with pytest.raises(ck.SizingInputError):
        ck.size_region(3071, 2, max_pfn="lots")
