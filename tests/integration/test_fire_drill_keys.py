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
