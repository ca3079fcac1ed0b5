# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""fire_drill.yml builds its report from vmcore_info's result: every key it reads must be one
vmcore_info returns (RETURN), or the report silently loses it (it did: xen_version, cpus)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def returned_keys():
    text = (REPO / "plugins" / "modules" / "vmcore_info.py").read_text()
    doc = re.search(r'RETURN = r"""(.*?)"""', text, re.S).group(1)
    ret = yaml.safe_load(doc)
    keys = set(ret)
    for name, spec in ret.items():
        for sub in (spec.get("contains") or {}):
            keys.add("%s.%s" % (name, sub))
    return keys


def test_every_dump_key_the_drill_reads_is_returned():
    drill = (REPO / "playbooks" / "fire_drill.yml").read_text()
    used = set(re.findall(r"_dump\.([a-z_]+(?:\.[a-z_]+)?)", drill))
    assert used, "fire_drill.yml no longer reads _dump?"
    keys = returned_keys()
    missing = sorted(u for u in used if u not in keys and u.split(".")[0] not in ("failed", "msg"))
    assert not missing, "fire_drill.yml reads %s, which vmcore_info does not return" % missing


def test_the_report_carries_version_and_cpus():
    drill = (REPO / "playbooks" / "fire_drill.yml").read_text()
    assert "_dump.nr_cpus" in drill and "_dump.xen.full_version" in drill


def report_keys():
    """The keys fire_drill.yml writes into its JSON report (xenkdump_fire_drill_result)."""
    drill = yaml.safe_load((REPO / "playbooks" / "fire_drill.yml").read_text())
    for play in drill:
        for task in play.get("tasks", []):
            result = (task.get("ansible.builtin.set_fact") or {}).get("xenkdump_fire_drill_result")
            if result:
                return set(result)
    raise AssertionError("fire_drill.yml no longer builds xenkdump_fire_drill_result")


def test_every_report_key_the_e2e_reads_is_written():
    """tests/e2e/run judges the drill by its report: a key it reads that the drill does not write
    (or a contents.* key vmcore_info does not return) would fail only on the lab, after 20 min."""
    e2e = (REPO / "tests" / "e2e" / "run").read_text()
    used = set(re.findall(r'jget ([a-z_.]+) < "\$report"', e2e))
    used |= set("contents." + k for k in re.findall(r'\["contents"\]\["([a-z_]+)"\]', e2e))
    used |= set("contents." + k for k in re.findall(r'\bc\["([a-z_]+)"\]', e2e))
    assert {"valid", "size_bytes", "contents.domu_pages_excluded", "contents.pages_excluded"} <= used
    written, returned = report_keys(), returned_keys()
    missing = sorted(u for u in used if u.split(".")[0] not in written
                     or ("." in u and u not in returned))
    assert not missing, "tests/e2e/run reads %s from the drill report, which is not written" % missing


def test_the_guest_guard_is_before_the_crash():
    drill = (REPO / "playbooks" / "fire_drill.yml").read_text()
    assert drill.index("Refuse a host with running guests") < drill.index("xl debug-keys C) five seconds")
    assert "xenkdump_fire_drill_confirm_guests" in drill and "xenkdump_drill_allow_guests" in drill
