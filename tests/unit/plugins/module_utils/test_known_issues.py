# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""known_issues.py: version parsing as the tools print them, the table's matches, the refusal."""

from __future__ import annotations

import pytest

from sysroot import fixture, xen417_dom0

from ansible_collections.xenkdump.fleet.plugins.module_utils import known_issues as ki
from ansible_collections.xenkdump.fleet.plugins.module_utils import xen

XEN_ID = "xen-4.21-kexec-parked-cpus"
KEXEC_ID = "kexec-tools-2.0.27-xen-load"


@pytest.mark.parametrize("text, want", [
    ("4.17.7", (4, 17, 7)),
    ("4.21.1-pre", (4, 21, 1)),
    ("4.21", (4, 21, 0)),
    ("4.21.0-rc3", (4, 21, 0)),
    ("kexec-tools 2.0.28", (2, 0, 28)),
    ("2.0.25", (2, 0, 25)),
    ("1:2.0.27-1", (2, 0, 27)),              # a Debian version with epoch
    ("4.17.5-13.el8", (4, 17, 5)),
    ("", None),
    (None, None),
    ("unknown", None),
])
def test_parse_version(text, want):
    assert ki.parse_version(text) == want


@pytest.mark.parametrize("xen_v, kexec_v, ids", [
    ("4.17.7", "2.0.25", []),                       # the lab
    ("4.21.0", "2.0.25", [XEN_ID]),
    ("4.21.1-pre", "2.0.25", [XEN_ID]),
    ("4.21.2", "2.0.25", []),
    ("4.22.0", "2.0.25", []),
    ("4.20.1", "2.0.27", [KEXEC_ID]),
    ("4.21.1", "2.0.28", [XEN_ID, KEXEC_ID]),
    ("4.19.0", "2.0.29", []),
    (None, None, []),
])
def test_find(xen_v, kexec_v, ids):
    found = ki.find({"xen": xen_v, "kexec-tools": kexec_v, "makedumpfile": "1.7.2"})
    assert [i["id"] for i in found] == ids
    for issue in found:
        assert issue["fix"] and issue["fixed_in"] and issue["version"] in (xen_v, kexec_v)


def test_refuse_names_the_fix_and_ignore_works():
    found = ki.find({"xen": "4.21.1-pre", "kexec-tools": "2.0.28"})
    with pytest.raises(ki.KnownIssueOnHost) as err:
        ki.refuse(found)
    msg = str(err.value)
    assert "[XK710]" in msg and "xen 4.21.1-pre" in msg and "4.21.2" in msg and "kexec-tools 2.0.29" in msg
    with pytest.raises(ki.KnownIssueOnHost) as err:
        ki.refuse(found, [XEN_ID])
    assert XEN_ID not in str(err.value) and KEXEC_ID in str(err.value)
    ki.refuse(found, [XEN_ID, KEXEC_ID])          # all ignored: no refusal


def test_gather_matches_the_hosts_versions(tmp_path):
    assert xen.gather(xen417_dom0(tmp_path / "lab"))["known_issues"] == []
    info = fixture("xl-info.txt").replace("xen_version            : 4.17.7", "xen_version            : 4.21.1-pre")
    kver = fixture("kexec-version.txt").replace("2.0.25", "2.0.28")
    facts = xen.gather(xen417_dom0(tmp_path / "bad", answers={"xl info": info, "kexec --version": kver}))
    assert facts["xen_version"] == "4.21.1-pre" and facts["kexec"]["version"] == "2.0.28"
    assert [i["id"] for i in facts["known_issues"]] == [XEN_ID, KEXEC_ID]


def test_not_a_dom0_has_no_known_issues(tmp_path):
    host = xen417_dom0(tmp_path, files={"/proc/xen/capabilities": "\n"},
                       answers={"kexec --version": fixture("kexec-version.txt").replace("2.0.25", "2.0.28")})
    facts = xen.gather(host)
    assert facts["is_dom0"] is False and facts["known_issues"] == []
