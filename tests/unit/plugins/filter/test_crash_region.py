# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The crash_region filter (controller side) gives what the xen_crash_region module gives on the
host, from the facts xen_facts gathers (the real fixture outputs of the Xen 4.17 dom0)."""

from __future__ import annotations

import json
import os

import pytest

from ansible.errors import AnsibleFilterError

import coredump_builder as cb
import modrun
import sysroot

from ansible_collections.xenkdump.fleet.plugins.filter.crash_region import FilterModule, crash_region
from ansible_collections.xenkdump.fleet.plugins.module_utils import crashkernel as ck
from ansible_collections.xenkdump.fleet.plugins.module_utils import hostio, xen
from ansible_collections.xenkdump.fleet.plugins.modules import xen_crash_region

REL = "6.1.0-56-amd64"


def gathered(tmp_path, initrd_size=None):
    host = sysroot.xen417_dom0(tmp_path, files={"/proc/sys/kernel/osrelease": REL + "\n"})
    root = host.root
    os.makedirs(os.path.join(root, "boot"), exist_ok=True)
    with open(os.path.join(root, "boot", "vmlinuz-" + REL), "wb") as fh:
        fh.write(cb.bzimage(version=0x020F, setup_sects=39, init_size=0x3f98000, xloadflags=0x7F))
    if initrd_size is not None:
        os.makedirs(os.path.join(root, "var/lib/kdump"), exist_ok=True)
        with open(os.path.join(root, "var/lib/kdump", "initrd.img-" + REL), "wb") as fh:
            fh.truncate(initrd_size)
    return host, xen.gather(host)


@pytest.mark.parametrize("initrd_size", [None, 7216519, 40 << 20])
@pytest.mark.parametrize("policy", [
    {},
    {"size": "512M"},
    {"size": "128M", "below_4g": False},
    {"dump_target": "ssh", "headroom_mb": 32},
])
def test_filter_equals_module_on_the_host(tmp_path, capsys, monkeypatch, initrd_size, policy):
    host, facts = gathered(tmp_path, initrd_size)
    assert facts["crash_images"]["kernel_init_size"] == 0x3f98000
    assert facts["crash_images"]["initrd_size"] == initrd_size
    monkeypatch.setattr(hostio, "host_from_module", lambda module: host)
    rc, module_result = modrun.run_module(capsys, xen_crash_region.main, dict(policy))
    assert rc == 0, module_result
    filtered = crash_region(json.loads(json.dumps(facts)), **policy)
    assert module_result["inputs_source"] == filtered["inputs_source"] == "facts"
    for key, value in filtered.items():
        assert module_result[key] == value, key
    # the host's own images were used, not the model's estimates
    assert filtered["sizing"]["inputs"]["initrd_size_default"] is (initrd_size is None)
    assert filtered["sizing"]["inputs"]["kernel_init_size"] == 0x3f98000


def test_the_fixture_dom0_plan(tmp_path):
    dummy, facts = gathered(tmp_path, 7216519)
    plan = crash_region(facts)
    assert plan["current"] == "256M@64M" and plan["reserved_mb"] == 256
    assert plan["required_mb"] == ck.plan_from_facts(facts).required_mb
    assert plan["image_sizes"] == {"kernel": "/boot/vmlinuz-" + REL,
                                   "initrd": "/var/lib/kdump/initrd.img-" + REL, "notes": []}


def test_string_options_from_inventory(tmp_path):
    dummy, facts = gathered(tmp_path)
    assert crash_region(facts, size="auto", below_4g="yes", headroom_mb="0", headroom_pct="10") == crash_region(facts)


@pytest.mark.parametrize("facts_update, kwargs, needle", [
    ({"is_dom0": False, "host_memory_mb": None, "reason": "not running under Xen"}, {}, "not running under Xen"),
    ({"nr_cpus": None, "problems": ["xl is not installed: install package xen-utils-common"]}, {}, "xl is not installed"),
    ({}, {"size": "256Q"}, "XK201"),
    ({}, {"size": "512M@5G"}, "XK211"),
    ({}, {"dump_target": "tape"}, "dump_target must be one of"),
    ({}, {"below_4g": "maybe"}, "below_4g must be a boolean"),
    ({}, {"headroom_mb": "lots"}, "headroom_mb must be an integer"),
])
def test_bad_input_is_a_clear_filter_error(tmp_path, facts_update, kwargs, needle):
    dummy, facts = gathered(tmp_path)
    facts.update(facts_update)
    with pytest.raises(AnsibleFilterError) as exc:
        crash_region(facts, **kwargs)
    assert needle in str(exc.value)


def test_not_a_dictionary():
    with pytest.raises(AnsibleFilterError, match="expected the xen_facts dictionary"):
        crash_region("3071")


def test_registered():
    assert FilterModule().filters()["crash_region"] is crash_region


def test_module_options_replace_the_live_facts(tmp_path, capsys, monkeypatch):
    host, facts = gathered(tmp_path, 7216519)
    monkeypatch.setattr(hostio, "host_from_module", lambda module: host)
    rc, module_result = modrun.run_module(capsys, xen_crash_region.main, {"reserved_mb": 0, "nr_cpus": 64})
    assert rc == 0, module_result
    facts.update(nr_cpus=64, crash_region={"size_mb": 0, "start": None})
    filtered = crash_region(facts)
    assert module_result["verdict"] == filtered["verdict"] == "too_small"
    for key, value in filtered.items():
        assert module_result[key] == value, key
