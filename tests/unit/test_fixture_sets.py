# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every recorded fixture set (tests/fixtures/xen-<version>-dom0, real outputs of a lab host) goes
through the same parsers, so a new Xen version is one `tests/fixtures/record.sh` away from being
tested. Each set says in its README what the host was; the assertions tie the parsed values to
what the raw files say independently (the version string in xl info, the package list)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ansible_collections.xenkdump.fleet.plugins.module_utils import capture, xen

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SETS = sorted(p for p in FIXTURES.glob("xen-*-dom0") if p.is_dir())


def test_there_are_sets_for_both_debian_xens():
    assert {p.name for p in SETS} >= {"xen-4.17-dom0", "xen-4.20-dom0"}


@pytest.mark.parametrize("fx", SETS, ids=[p.name for p in SETS])
def test_xl_info_parses_and_matches_the_set(fx):
    info = xen.parse_xl_info((fx / "xl-info.txt").read_text())
    want = fx.name.split("-")[1]                           # "4.17", "4.20"
    assert str(info["xen_version"]).startswith(want + ".")
    raw_total = int(re.search(r"^total_memory\s*:\s*(\d+)", (fx / "xl-info.txt").read_text(), re.M).group(1))
    assert info["total_memory"] == raw_total and 1024 < raw_total
    assert info["nr_cpus"] >= 1


@pytest.mark.parametrize("fx", SETS, ids=[p.name for p in SETS])
def test_xl_list_has_dom0_and_the_recorded_guests(fx):
    text = (fx / "xl-list.txt").read_text()
    rows = xen.parse_xl_list(text)
    dom0 = xen.dom0_row(rows)
    assert dom0 is not None and dom0["id"] == 0 and dom0["mem_mb"] == 1024
    guests = [line.split()[0] for line in text.splitlines()[1:] if line.strip() and not line.startswith("Domain-0")]
    assert sorted(r["name"] for r in rows if r["id"] != 0) == sorted(guests)
    assert sorted(d["name"] for d in xen.domu_rows(rows)) == sorted(guests)


@pytest.mark.parametrize("fx", SETS, ids=[p.name for p in SETS])
def test_kdump_line_is_the_reservation(fx):
    line = (fx / "xl-dmesg-kdump-lines.txt").read_text()
    got = xen.parse_kdump_line(line)
    mb = int(re.search(r"Kdump: (\d+)MB", line).group(1))
    assert got is not None and got["reserved"] is True and got["size_bytes"] == mb * 1024 * 1024


@pytest.mark.parametrize("fx", [p for p in SETS if (p / "makedumpfile-v.txt").exists()],
                         ids=lambda p: p.name)
def test_makedumpfile_caps_match_the_packages(fx):
    text = (fx / "makedumpfile-v.txt").read_text()
    fact = capture.makedumpfile_fact("/usr/bin/makedumpfile", 0, text.split("[exit=")[0], "")
    assert fact["known"] is True
    pkgs = dict(line.split(" ", 1) for line in (fx / "packages.txt").read_text().splitlines())
    assert pkgs["makedumpfile"].split(":")[-1].startswith(fact["version"])
    assert fact["compressors"]["lzo"] is ("lzo\tenabled" in text)
    assert fact["compressors"]["zstd"] is ("zstd\tenabled" in text)
