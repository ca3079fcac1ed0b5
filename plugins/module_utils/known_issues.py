# -*- coding: utf-8 -*-
# Copyright (c) xenkdump.fleet developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Versions known to break a Xen crash capture, as data, and the check of a host against them.

:data:`KNOWN_ISSUES` is the table (edit it there); :func:`find` matches the versions
``xen_facts`` read (``xen_version``, ``kexec.version``, ``makedumpfile.version``) and
``xen_facts`` returns the matches as ``known_issues``.  :func:`blocking` is the role's
pre-flight refusal (:class:`KnownIssueOnHost`), minus the ids the user chose to ignore.
Pure: no host access.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ansible_collections.xenkdump.fleet.plugins.module_utils.errors import XenKdumpError

# component: which fact holds its version (xen_version | kexec | makedumpfile).
# affected / fixed_in: release versions; a version matches on its numeric part, so
# "4.21.1-pre" (a 4.21.1 development build) is treated as 4.21.1.
KNOWN_ISSUES: Tuple[Dict[str, Any], ...] = (
    {"id": "xen-4.21-kexec-parked-cpus", "component": "xen", "affected": ("4.21.0", "4.21.1"),
     "fixed_in": ("4.21.2", "4.22.0"),
     "summary": "Xen takes a #GP entering the crash kernel when CPUs are parked (smt=0 or offlined "
                "CPUs): the crash kernel never runs and no dump is written",
     "fix": "update the hypervisor to Xen 4.21.2 or 4.22.0 (or later) and reboot into it"},
    {"id": "kexec-tools-2.0.27-xen-load", "component": "kexec-tools", "affected": ("2.0.27", "2.0.28"),
     "fixed_in": ("2.0.29",),
     "summary": "kexec-tools 2.0.27 and 2.0.28 cannot load a crash kernel into Xen: nothing is loaded "
                "and a hypervisor crash is not dumped",
     "fix": "install kexec-tools 2.0.29 or later (or your distribution's build with the fix)"},
)

COMPONENT_FACT = {"xen": "xen_version", "kexec-tools": "kexec", "makedumpfile": "makedumpfile"}


class KnownIssueOnHost(XenKdumpError):
    code = "XK710"
    title = "The host runs a version with a known capture-breaking bug"
    remedy = ("Apply the fix the message names (a fixed Xen or kexec-tools), or, after checking that "
              "the bug cannot hit this host, list the issue's id in xenkdump_ignore_known_issues.")


_VERSION = re.compile(r"(\d+)((?:\.\d+)*)")


def parse_version(text: Optional[str]) -> Optional[Tuple[int, ...]]:
    """The numeric release in a version string, three fields: "4.21.1-pre" -> (4, 21, 1),
    "kexec-tools 2.0.28" -> (2, 0, 28), "4.17" -> (4, 17, 0), "1:2.0.25-3" -> (2, 0, 25).
    None when there is no number."""
    if text is None:
        return None
    text = str(text).strip()
    text = re.sub(r"^\d+:(?=\d)", "", text)                # a Debian epoch: "1:2.0.25-3"
    match = _VERSION.search(text)
    if not match:
        return None
    numbers = [int(match.group(1))] + [int(x) for x in match.group(2).split(".") if x]
    while len(numbers) < 3:
        numbers.append(0)
    return tuple(numbers[:3])


def component_versions(facts: Dict[str, Any]) -> Dict[str, Optional[str]]:
    """Component -> version string from a xen_facts dictionary (None when unknown)."""
    kexec = facts.get("kexec") or {}
    mdf = facts.get("makedumpfile") or {}
    return {"xen": facts.get("xen_version"), "kexec-tools": kexec.get("version"),
            "makedumpfile": mdf.get("version")}


def find(versions: Dict[str, Optional[str]],
         table: Sequence[Dict[str, Any]] = KNOWN_ISSUES) -> List[Dict[str, Any]]:
    """The table's issues that the versions (component -> version string) hit, each as
    {id, component, affected, fixed_in, summary, fix, version}."""
    found: List[Dict[str, Any]] = []
    for issue in table:
        raw = versions.get(issue["component"])
        have = parse_version(raw)
        if have is None:
            continue
        if any(parse_version(v) == have for v in issue["affected"]):
            found.append({"id": issue["id"], "component": issue["component"],
                          "affected": list(issue["affected"]), "fixed_in": list(issue["fixed_in"]),
                          "summary": issue["summary"], "fix": issue["fix"], "version": raw})
    return found


def blocking(issues: Sequence[Dict[str, Any]], ignore: Sequence[str] = ()) -> List[Dict[str, Any]]:
    """The issues not in ``ignore`` (ids)."""
    ignored = set(ignore or ())
    return [i for i in issues if i.get("id") not in ignored]


def refuse(issues: Sequence[Dict[str, Any]], ignore: Sequence[str] = ()) -> None:
    """Raise :class:`KnownIssueOnHost` naming every issue not ignored, with its fix."""
    left = blocking(issues, ignore)
    if not left:
        return
    parts = ["%s %s: %s (%s; fixed in %s): fix: %s" % (
        i["component"], i.get("version"), i["id"], i["summary"], ", ".join(i["fixed_in"]), i["fix"])
        for i in left]
    raise KnownIssueOnHost("Known capture-breaking bug%s on this host: %s." % (
        "s" if len(left) > 1 else "", "; ".join(parts)), ids=[i["id"] for i in left])
