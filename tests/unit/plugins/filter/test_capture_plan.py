# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The capture_plan and makedump_args_problems filters (controller side) give what capture.py
gives, from the facts xen_facts gathers on the real Xen 4.17 dom0 fixtures."""

from __future__ import annotations

import copy

import pytest

from ansible.errors import AnsibleFilterError

import sysroot

from ansible_collections.xenkdump.fleet.plugins.filter import capture_plan as cp_filter
from ansible_collections.xenkdump.fleet.plugins.filter import makedump_args_problems as map_filter
from ansible_collections.xenkdump.fleet.plugins.module_utils import capture, xen

MIB = 1024 * 1024


@pytest.fixture
def facts(tmp_path):
    return xen.gather(sysroot.xen417_dom0(tmp_path, answers={"xl list": sysroot.fixture(
        "xl-list-domus.txt", sysroot.SYNTHETIC)}))


def test_filters_are_registered():
    assert cp_filter.FilterModule().filters() == {"capture_plan": cp_filter.capture_plan}
    assert map_filter.FilterModule().filters() == {"makedump_args_problems": map_filter.makedump_args_problems}


@pytest.mark.parametrize("kw", [
    {},
    {"mode": "full", "room_check": "warn"},
    {"num_dumps": 3, "dump_target": "nfs"},
    {"makedump_args": "-c -X -d 1", "xen_syms": "/boot/xen-syms", "xen_syms_present": True},
])
def test_filter_is_the_module_utils_logic(facts, kw):
    want = capture.plan_from_facts(copy.deepcopy(facts), **kw)
    got = cp_filter.capture_plan(facts, **kw)
    assert got == want


def test_lab_facts_give_lzo_without_guests_and_fit(facts):
    facts["dump_target"]["free_bytes"] = 100 * 1024 * MIB
    got = cp_filter.capture_plan(facts)
    assert got["capture"]["args"] == "-l -X -d 1" and got["capture"]["mode"] == "xen-dom0"
    assert got["estimate"]["inputs"]["domu_count"] == 4
    assert got["room"]["verdict"] == "ok" and got["refusals"] == []
    assert got["known_issues"] == {"found": [], "ignored": [], "blocking": []}


def test_too_small_target_is_a_refusal_not_an_exception(facts):
    facts["dump_target"].update(free_bytes=100 * MIB, dumps=[])
    got = cp_filter.capture_plan(facts, mode="full")
    assert got["room"]["verdict"] == "refuse"
    assert len(got["refusals"]) == 1 and "[XK703]" in got["refusals"][0]
    assert "has 100 MiB free" in got["refusals"][0] and "xenkdump_capture_mode: xen-dom0" in got["refusals"][0]
    assert cp_filter.capture_plan(facts, mode="full", room_check="warn")["refusals"] == []
    assert cp_filter.capture_plan(facts, mode="full", room_check=False)["room"]["verdict"] == "off"


def test_known_issue_is_a_refusal_unless_ignored(facts):
    facts["dump_target"]["free_bytes"] = 100 * 1024 * MIB
    facts["known_issues"] = capture.ki.find({"xen": "4.21.0"})
    got = cp_filter.capture_plan(facts)
    assert got["known_issues"]["blocking"] == ["xen-4.21-kexec-parked-cpus"]
    assert any("[XK710]" in r and "4.21.2" in r for r in got["refusals"])
    ignored = cp_filter.capture_plan(facts, ignore_known_issues=["xen-4.21-kexec-parked-cpus"])
    assert ignored["refusals"] == []
    assert ignored["known_issues"]["ignored"] == ["xen-4.21-kexec-parked-cpus"]


@pytest.mark.parametrize("kw, needle", [
    ({"makedump_args": "-c -d 31"}, "XK701"),
    ({"makedump_args": "-E -c"}, "XK702"),
    ({"mode": "fast"}, "XK700"),
    ({"room_check": "maybe"}, "XK700"),
    ({"num_dumps": "many"}, "num_dumps must be an integer"),
    ({"ignore_known_issues": "xen-4.21-kexec-parked-cpus"}, "must be a list"),
    ({"xen_syms_present": "perhaps"}, "must be a boolean"),
])
def test_filter_errors(facts, kw, needle):
    with pytest.raises(AnsibleFilterError) as err:
        cp_filter.capture_plan(facts, **kw)
    assert needle in str(err.value) and str(err.value).startswith("capture_plan: ")


def test_filter_needs_the_facts_dict():
    with pytest.raises(AnsibleFilterError):
        cp_filter.capture_plan("facts")


def test_not_a_dom0_keeps_the_old_default(tmp_path):
    facts = xen.gather(sysroot.build(tmp_path, files={"/etc/os-release": sysroot.DEBIAN12_OS_RELEASE}))
    got = cp_filter.capture_plan(facts)
    assert got["capture"]["args"] == "-c -d 0" and got["room"]["verdict"] == "unchecked"
    assert got["refusals"] == []


@pytest.mark.parametrize("args, is_dom0", [("-l -X -d 1", True), ("-c -d 31", True), ("", True),
                                           (None, True), ("-c -X -d 1", False), ("-E -z", False)])
def test_makedump_args_problems_filter_is_the_rule(args, is_dom0):
    assert map_filter.makedump_args_problems(args, is_dom0=is_dom0) == capture.args_problems(args, is_dom0=is_dom0)


def test_makedump_args_problems_filter_bad_input():
    with pytest.raises(AnsibleFilterError):
        map_filter.makedump_args_problems("-c", is_dom0="perhaps")
    with pytest.raises(AnsibleFilterError):
        map_filter.makedump_args_problems("-c", compressors=["lzo"])
